"""Chapter 7's tools check: the shipped models, converted, run through transformers' own
pipelines with the book's tokenizers converted, and give exactly the book's answers."""

import pytest
import torch

transformers = pytest.importorskip("transformers")

from llm_lessons.interop.bert import bert_to_hf  # noqa: E402
from llm_lessons.interop.gpt2 import gpt_to_hf  # noqa: E402
from llm_lessons.interop.hf_tokenizer import char_tokenizer_to_hf, masked_char_tokenizer_to_hf  # noqa: E402
from llm_lessons.resources import load_bert_shakespeare, load_gpt_shakespeare, shakespeare_char_data  # noqa: E402
from llm_lessons.sampling import generate  # noqa: E402


@pytest.fixture(scope="module")
def gpt():
    return load_gpt_shakespeare()


def test_the_converted_tokenizer_gives_the_books_ids_on_real_text(gpt):
    _, tok = gpt
    hf = char_tokenizer_to_hf(tok)
    _, _, val = shakespeare_char_data()
    text = tok.decode(val[:5000].tolist())
    assert hf(text)["input_ids"] == tok.encode(text)  # newlines, spaces and punctuation included
    assert hf.decode(tok.encode(text)) == text
    with pytest.raises(Exception, match="UNK"):  # no silent id for a character the model never saw
        hf("café")


@pytest.mark.parametrize("prompt", ["ROMEO:\nWhat light", "KING HENRY V:\nOnce more unto the "])
def test_the_text_generation_pipeline_writes_the_books_greedy_text(gpt, prompt):
    """Up to the context length: past it the book's generate crops the prompt from the left, while
    Hugging Face's GPT-2 runs out of position embeddings (an IndexError)."""
    model, tok = gpt
    pipe = transformers.pipeline("text-generation", model=gpt_to_hf(model),
                                 tokenizer=char_tokenizer_to_hf(tok), device="cpu")
    n = model.block_size - len(prompt)
    theirs = pipe(prompt, max_new_tokens=n, do_sample=False, pad_token_id=0)[0]["generated_text"]
    ours = tok.decode(generate(model, torch.tensor([tok.encode(prompt)]), n, greedy=True)[0].tolist())
    assert theirs == ours


def test_the_fill_mask_pipeline_ranks_characters_as_the_book_does():
    model, tok = load_bert_shakespeare()
    pipe = transformers.pipeline("fill-mask", model=bert_to_hf(model),
                                 tokenizer=masked_char_tokenizer_to_hf(tok), device="cpu")
    text = "KING HENRY V:\nOnce more unto the breach, dear friends"
    for position in (31, 17, 44):  # the "e" of "the", the "c" of "Once", a space
        ids = torch.tensor([tok.encode(text)])
        ids[0, position] = tok.mask_id
        theirs = pipe(tok.decode(ids[0].tolist()), top_k=5)
        with torch.no_grad():
            probs = model(ids)[0][0, position].softmax(-1)  # (V,)
        top = probs.topk(5)
        assert [r["token"] for r in theirs] == top.indices.tolist()
        assert [r["score"] for r in theirs] == pytest.approx(top.values.tolist(), abs=1e-5)
