"""Data for masked language models: BERT's special tokens on a character vocabulary, and batches.

Shapes use fixed letters: B batch, T time (positions), N tokens in a dataset.

:class:`MaskedCharTokenizer` adds [PAD], [MASK], [CLS] and [SEP] after the characters of a
:class:`~llm_lessons.tokenizers.CharTokenizer`, so character ids stay those of the GPT trained
on the same text. :class:`MaskedWindows` is the batch function that plugs masked-LM training
into the book's one training loop (:func:`llm_lessons.training.train`): random windows of the
corpus, corrupted by :func:`llm_lessons.data.mask_tokens`.

>>> tok = MaskedCharTokenizer(CharTokenizer("to be or not"))
>>> ids = torch.tensor(tok.encode("to be or not to be"))
>>> x, y = MaskedWindows(tok.mask_id, tok.vocab_size, tok.special_ids, p=0.3)(
...     ids, batch_size=2, block_size=8, generator=torch.Generator().manual_seed(3))
>>> tok.decode(x[0], mask="_"), tok.decode(y[0][y[0] != -100])   # "not to b": n kept, o random
('nrt_to b', 'no ')
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from llm_lessons.data import mask_tokens
from llm_lessons.reproducibility import eval_mode
from llm_lessons.tokenizers import CharTokenizer
from llm_lessons.validation import check_batch_size, check_int, token_ids

MAX_REDRAWS = 1000


@dataclass(frozen=True)
class MaskedWindows:
    """A batch function for masked-LM training: random windows of a 1-D id tensor, then masking.

    Every batch has at least one position to predict (a batch that selected none is masked
    again), so the loss is always defined.

    Called as ``batch_fn(data, batch_size, block_size, generator) -> (x, y)`` (the interface of
    :func:`llm_lessons.training.train`): x (B, T) the corrupted windows, y (B, T) the original
    ids at the selected positions and -100 elsewhere (:func:`llm_lessons.data.mask_tokens`).

    >>> fn = MaskedWindows(mask_id=10, vocab_size=11, p=0.5)
    >>> x, y = fn(torch.arange(10), 2, 4, torch.Generator().manual_seed(0))
    >>> x.shape, bool(((y == -100) | (y < 10)).all())
    (torch.Size([2, 4]), True)
    """

    mask_id: int
    vocab_size: int
    special_ids: tuple[int, ...] = ()
    p: float = 0.15

    def __call__(self, data: torch.Tensor, batch_size: int, block_size: int,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(data, torch.Tensor) or data.dim() != 1 or data.is_floating_point():
            raise TypeError("data must be a 1-D integer tensor of token ids")
        if len(data) < block_size:
            raise ValueError(f"data has {len(data)} tokens, fewer than one window of {block_size}")
        check_batch_size(batch_size)
        check_int(block_size, "block_size", low=1)
        starts = torch.randint(len(data) - block_size + 1, (batch_size,), generator=generator)  # (B,)
        windows = data[starts[:, None] + torch.arange(block_size)]  # (B, T)
        # A small batch can select no position at all, and a loss over nothing is undefined:
        # mask again (only then, so every other batch is drawn exactly as before).
        for _ in range(MAX_REDRAWS):
            x, y = mask_tokens(windows, self.mask_id, self.vocab_size, self.special_ids, self.p,
                               generator=generator)
            if (y != -100).any():
                return x, y
        raise ValueError(f"{MAX_REDRAWS} maskings of a ({batch_size}, {block_size}) batch selected no "
                         f"position (p={self.p}, and special ids are never selected): use a larger "
                         "batch, block or p")


#: BERT's special tokens, appended after the characters so character ids match a plain
#: :class:`~llm_lessons.tokenizers.CharTokenizer` (and the GPT trained with it).
SPECIAL_TOKENS = ("[PAD]", "[MASK]", "[CLS]", "[SEP]")


class MaskedCharTokenizer:
    """A character tokenizer plus BERT's special tokens [PAD], [MASK], [CLS], [SEP].

    Characters keep the ids the wrapped :class:`CharTokenizer` gives them; the special tokens
    take the next four ids. Special tokens never occur in text, so ``encode`` never makes them.

    >>> tok = MaskedCharTokenizer(CharTokenizer("abc"))
    >>> tok.vocab_size, tok.mask_id, tok.special_ids
    (7, 4, (3, 4, 5, 6))
    >>> tok.decode([0, 4, 2]), tok.decode([0, 4, 2], mask="_")
    ('a[MASK]c', 'a_c')
    """

    def __init__(self, chars: CharTokenizer):
        if not isinstance(chars, CharTokenizer):
            raise TypeError(f"MaskedCharTokenizer wraps a CharTokenizer, got {type(chars).__name__}")
        self.chars = chars
        n = chars.vocab_size
        self.pad_id, self.mask_id, self.cls_id, self.sep_id = range(n, n + len(SPECIAL_TOKENS))
        self.special_ids: tuple[int, ...] = tuple(range(n, n + len(SPECIAL_TOKENS)))

    @property
    def vocab_size(self) -> int:
        return self.chars.vocab_size + len(SPECIAL_TOKENS)

    def encode(self, text: str) -> list[int]:
        return self.chars.encode(text)

    def decode(self, ids: Iterable[int], mask: str | None = None) -> str:
        """Text of ids; special tokens print as their names, or [MASK] as ``mask`` if given."""
        n, out = self.chars.vocab_size, []
        for i in token_ids(ids, "ids", vocab_size=self.vocab_size):
            if i < n:
                out.append(self.chars.itos[i])
            else:
                out.append(mask if i == self.mask_id and mask is not None else SPECIAL_TOKENS[i - n])
        return "".join(out)


@torch.no_grad()
def masked_token_scores(model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor,
                        batch_size: int = 64) -> tuple[float, float]:
    """Mean cross-entropy (nats) and accuracy of the argmax over the labelled positions.

    inputs, labels: (B, T) from a masking function (labels -100 where nothing is asked).
    Runs the model in eval mode and restores its mode.

    >>> class Sure(torch.nn.Module):   # always predicts id 1, with probability ~1
    ...     def forward(self, idx, targets=None):
    ...         return torch.nn.functional.one_hot(torch.ones_like(idx), 3).float() * 50, None
    >>> masked_token_scores(Sure(), torch.zeros(1, 4, dtype=torch.long), torch.tensor([[1, -100, 2, -100]]))
    (25.0, 0.5)
    """
    check_batch_size(batch_size)
    if inputs.shape != labels.shape or inputs.dim() != 2:
        raise ValueError(f"inputs and labels must share a (B, T) shape, got {tuple(inputs.shape)} "
                         f"and {tuple(labels.shape)}")
    total, correct, count = 0.0, 0, 0
    with eval_mode(model):
        for s in range(0, len(inputs), batch_size):
            x, y = inputs[s:s + batch_size], labels[s:s + batch_size]
            logits, _ = model(x)
            keep = y != -100  # (b, T)
            logp = logits[keep].float().log_softmax(dim=-1)  # (n, V)
            total -= logp.gather(1, y[keep][:, None]).sum().item()
            correct += (logp.argmax(dim=-1) == y[keep]).sum().item()
            count += int(keep.sum())
    if count == 0:
        raise ValueError("labels hold no position to score (all -100)")
    return total / count, correct / count
