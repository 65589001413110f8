"""The book's character tokenizers as Hugging Face tokenizers, so that ``transformers``' own
tools (``pipeline("text-generation")``, ``pipeline("fill-mask")``, ``generate``, ``lm_eval``)
run the book's models exactly as the book's code does.

A ``tokenizers.Tokenizer`` is a pipeline: normalise, pre-tokenise, apply a model, post-process;
decode with a decoder. A character tokenizer needs only three of those pieces: a pre-tokeniser
that splits *every* character off (newlines included), a ``WordLevel`` model whose vocabulary is
the book's ``stoi`` (so every id means the same in both worlds), and a ``Fuse`` decoder that
joins the pieces back without spaces. Special tokens ([MASK], ...) are registered as such, so
the text "[MASK]" becomes one id, not six characters. A character outside the vocabulary is
refused, as the book's tokenizer refuses it (``tokenizers`` says "Missing [UNK] token": there is
no unknown-character id to map it to silently).

>>> from llm_lessons.tokenizers import CharTokenizer
>>> ours = CharTokenizer.from_text("to be, or not to be")
>>> theirs = char_tokenizer_to_hf(ours)
>>> theirs("be not")["input_ids"] == ours.encode("be not"), theirs.decode(ours.encode("to be"))
(True, 'to be')
"""

from __future__ import annotations

from llm_lessons.mlm_data import SPECIAL_TOKENS, MaskedCharTokenizer
from llm_lessons.tokenizers import CharTokenizer


def _fast(vocab: dict[str, int], **special: str):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers  # noqa: PLC0415
    from transformers import PreTrainedTokenizerFast  # noqa: PLC0415

    core = Tokenizer(models.WordLevel(vocab, unk_token=None))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # one piece per char
    core.decoder = decoders.Fuse()  # "a", "b" -> "ab": characters join without spaces
    # clean_up_tokenization_spaces would rewrite " ." as "." in decoded text: never for characters
    return PreTrainedTokenizerFast(tokenizer_object=core, clean_up_tokenization_spaces=False, **special)


def char_tokenizer_to_hf(tok: CharTokenizer):
    """A ``PreTrainedTokenizerFast`` giving every character the id ``tok`` gives it."""
    if not isinstance(tok, CharTokenizer):
        raise TypeError(f"char_tokenizer_to_hf needs a CharTokenizer, got {type(tok).__name__}")
    return _fast(dict(tok.stoi))


def masked_char_tokenizer_to_hf(tok: MaskedCharTokenizer):
    """The same for the masked LM's tokenizer, with [PAD], [MASK], [CLS] and [SEP] as special
    tokens at the book's ids (no [CLS]/[SEP] added around texts: the book's MLM reads raw windows)."""
    if not isinstance(tok, MaskedCharTokenizer):
        raise TypeError(f"masked_char_tokenizer_to_hf needs a MaskedCharTokenizer, got {type(tok).__name__}")
    vocab = dict(tok.chars.stoi)
    vocab.update({name: tok.chars.vocab_size + i for i, name in enumerate(SPECIAL_TOKENS)})
    return _fast(vocab, pad_token="[PAD]", mask_token="[MASK]", cls_token="[CLS]", sep_token="[SEP]")
