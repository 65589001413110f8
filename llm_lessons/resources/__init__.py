"""What the book ships, and loaders for it: nothing here is downloaded, everything is in the package.

The files in this folder, with the section that uses each:

- ``gpt_nano_shakespeare.safetensors`` + ``.json`` — the nano GPT of 3.2, trained by
  ``scripts/train_checkpoints.py`` with 3.2's recipe before the speedrun of 8.9 (``TrainConfig()``:
  AdamW, 1,200 steps of 8 windows): :func:`load_gpt_shakespeare`
- ``bert_nano_shakespeare.safetensors`` + ``.json`` — the nano masked LM of 3.3, trained by
  ``scripts/train_mlm_checkpoint.py``: :func:`load_bert_shakespeare`
- ``model_sizes.csv`` — published sizes of well-known models (1, :mod:`llm_lessons.scale`)
- ``human_votes.jsonl`` — the simulated rater study of 2.4 (:mod:`llm_lessons.evaluation.human_eval`)
- ``lm_eval_tasks/`` — the book's lm-evaluation-harness tasks (2.4,
  :mod:`llm_lessons.evaluation.harness`), written by ``scripts/make_eval_tasks.py``
- ``scaling_sweep.csv`` + ``.json`` — the IsoFLOP ladder of 8.1: 25 tiny GPTs at four compute
  budgets, their FLOPs and validation losses, written by ``scripts/scaling_sweep.py``
  (:mod:`llm_lessons.frontiers.scaling`)
- ``modern_ablation.csv`` + ``.json`` — the modern decoder's ablation of 8.2, one change per row,
  two seeds each, written by ``scripts/modern_ablation.py`` (:mod:`llm_lessons.frontiers.modern_gpt`)
- ``speedrun_records.csv`` + ``.json`` — the CPU speedrun's record table of 8.9, one change per
  row, three seeds each, with the machine it was measured on, written by
  ``benchmarks/speedrun.py --write`` (:mod:`llm_lessons.frontiers.speedrun`)

:func:`llm_lessons.files.resource_path` finds any of them. ``shakespeare_char_data()`` is the
nano GPT's data: the play-wise split, encoded by characters.

>>> model, tok = load_gpt_shakespeare()
>>> tok.decode(model.generate(torch.tensor([tok.encode("ROMEO:")]), 11, greedy=True)[0].tolist())
'ROMEO:\\nI will the'
"""

from __future__ import annotations

import torch

from llm_lessons import checkpoint
from llm_lessons.files import resource_path
from llm_lessons.gpt import GPT
from llm_lessons.tokenizers import CharTokenizer

GPT_SHAKESPEARE = "gpt_nano_shakespeare.safetensors"


def shakespeare_char_data(val_fraction: float = 0.1, seed: int = 1337,
                          ) -> tuple[CharTokenizer, torch.Tensor, torch.Tensor]:
    """(tokenizer, train ids, validation ids) for character-level Shakespeare, split by plays.

    The tokenizer's characters come from the training plays (every validation character also
    occurs there: 73 symbols in all with the default split).
    """
    from llm_lessons.data import train_val_split

    split = train_val_split(val_fraction=val_fraction, seed=seed)
    tok = CharTokenizer(split.train)
    train = torch.tensor(tok.encode(split.train), dtype=torch.long)
    val = torch.tensor(tok.encode(split.val), dtype=torch.long)
    return tok, train, val


def load_gpt_shakespeare(device: torch.device | str | None = None) -> tuple[GPT, CharTokenizer]:
    """The shipped nano GPT (eval mode, on ``device``) and its character tokenizer.

    ``checkpoint.load_metadata(resource_path(GPT_SHAKESPEARE))["extra"]["training"]`` holds how
    it was trained and its validation loss.
    """
    path = resource_path(GPT_SHAKESPEARE)
    model = checkpoint.load(path, device=device)
    chars = checkpoint.load_metadata(path)["extra"]["tokenizer"]["chars"]
    return model, CharTokenizer("".join(chars))


# --------------------------------------------------------------------------------------------
# The nano masked LM of section 3.3, trained by scripts/train_mlm_checkpoint.py (the recipe of
# notebook 03_3), for the MLM decoding chapter and later ones.

BERT_SHAKESPEARE = "bert_nano_shakespeare.safetensors"


def load_bert_shakespeare(device: torch.device | str | None = None):
    """The shipped nano masked LM (eval mode, on ``device``) and its tokenizer.

    The tokenizer is the GPT's characters plus [PAD], [MASK], [CLS] and [SEP]
    (:class:`llm_lessons.mlm_data.MaskedCharTokenizer`), so character ids are the GPT's.
    ``checkpoint.load_metadata(resource_path(BERT_SHAKESPEARE))["extra"]["training"]`` holds
    how it was trained and its held-out masked loss and accuracy.

    >>> from llm_lessons.mlm_decoding import fill_mask
    >>> model, tok = load_bert_shakespeare()
    >>> ids = torch.tensor(tok.encode("KING HENRY V:\\nOnce more unto the breach, dear friends"))
    >>> ids[31] = tok.mask_id                                  # hide the "e" of "the"
    >>> tok.decode(ids, mask="_")[14:39]
    'Once more unto th_ breach'
    >>> tok.decode(fill_mask(model, ids, tok.mask_id, special_ids=tok.special_ids))[14:39]
    'Once more unto the breach'
    """
    from llm_lessons.mlm_data import MaskedCharTokenizer

    path = resource_path(BERT_SHAKESPEARE)
    model = checkpoint.load(path, device=device)
    chars = checkpoint.load_metadata(path)["extra"]["tokenizer"]["chars"]
    return model, MaskedCharTokenizer(CharTokenizer("".join(chars)))
