"""Instruction data for supervised fine-tuning (SFT), built from the corpus by code, and the
loss mask that teaches only the answers.

Shapes use fixed letters: B batch, T time.

A pretrained model continues text; an assistant answers requests. SFT closes the gap with
pairs of (instruction, response) written in a fixed **chat template**, trained with the usual
next-token loss but only on the response: the instruction is given, never predicted (its
targets are -100, which the book's loss ignores). The template here speaks the corpus's own
dialogue format, so a model pretrained on the plays already knows its shape::

    USER:
    Who speaks this line?
    O Romeo, Romeo! wherefore art thou Romeo?

    ASSISTANT:
    JULIET

Three tasks, each built from one speech of the dataset (:mod:`llm_lessons.interop.hf_datasets`
rows) with a seeded generator, so the same seed gives the same examples:

- ``continue``: "Continue this speech by SPEAKER:" + its first line -> its second line;
- ``speaker``: "Who speaks this line?" + a line -> the speaker's name;
- ``play``: "Which play is this line from?" + a line -> the play's name (``romeo-and-juliet``).

Build training examples from training plays and evaluation examples from held-out plays: then
a correct answer to ``continue`` cannot be recalled from the training data.

>>> ex = Example("speaker", "hamlet", "Who speaks this line?\\nTo be, or not to be", "HAMLET")
>>> print(prompt_text(ex) + ex.response + END, end="")
USER:
Who speaks this line?
To be, or not to be
<BLANKLINE>
ASSISTANT:
HAMLET
<BLANKLINE>
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

TEMPLATE = "USER:\n{instruction}\n\nASSISTANT:\n"
END = "\n\n"  # a blank line ends a speech in the corpus, and ends the answer here
TASKS = ("continue", "speaker", "play")


@dataclass(frozen=True)
class Example:
    task: str
    play: str
    instruction: str
    response: str


def prompt_text(example: Example) -> str:
    """The instruction in the chat template, up to where the answer starts."""
    return TEMPLATE.format(instruction=example.instruction)


def make_examples(rows: Sequence[dict], n: int, seed: int = 0, tasks: Sequence[str] = TASKS) -> list[Example]:
    """``n`` examples from speech rows (``play``, ``speaker``, ``text``), tasks in turn."""
    unknown = set(tasks) - set(TASKS)
    if unknown:
        raise ValueError(f"unknown task(s) {sorted(unknown)}; choose from {TASKS}")
    if not rows:
        raise ValueError("no speeches to build examples from")
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        task = tasks[len(out) % len(tasks)]
        row = rows[rng.randrange(len(rows))]
        lines = row["text"].split("\n")
        if task == "continue":
            if len(lines) < 2:
                continue  # a one-line speech has no second line to ask for
            out.append(Example(task, row["play"], f"Continue this speech by {row['speaker']}:\n{lines[0]}",
                               lines[1]))
        else:
            line = lines[rng.randrange(len(lines))]
            question = "Who speaks this line?" if task == "speaker" else "Which play is this line from?"
            answer = row["speaker"] if task == "speaker" else row["play"]
            out.append(Example(task, row["play"], f"{question}\n{line}", answer))
    return out


def encode_example(example: Example, encode) -> tuple[list[int], list[int]]:
    """(inputs, targets) of one example: targets are the next ids, -100 wherever the next
    character still belongs to the prompt, so only the response and its END are learned."""
    prompt, full = encode(prompt_text(example)), encode(prompt_text(example) + example.response + END)
    if full[:len(prompt)] != prompt:  # a subword tokenizer may merge across the boundary
        raise ValueError("the tokenizer encodes the prompt differently inside the full text; "
                         "the loss mask needs a prompt that stays a prefix")
    inputs, targets = full[:-1], full[1:]
    masked = [-100 if t < len(prompt) - 1 else y for t, y in enumerate(targets)]  # t predicts t + 1
    return inputs, masked


def sft_batch(examples: Sequence[Example], encode, block_size: int,
              pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y) of shape (B, T), right-padded with ``pad_id`` inputs and -100 targets. An example
    longer than ``block_size`` is refused: cropping would cut the answer off silently."""
    pairs = [encode_example(ex, encode) for ex in examples]
    too_long = [len(x) for x, _ in pairs if len(x) > block_size]
    if too_long:
        raise ValueError(f"{len(too_long)} example(s) longer than block_size {block_size} "
                         f"(up to {max(too_long)} tokens): filter them or use a longer context")
    T = max(len(x) for x, _ in pairs)
    x = torch.full((len(pairs), T), pad_id, dtype=torch.long)  # (B, T)
    y = torch.full((len(pairs), T), -100, dtype=torch.long)  # (B, T)
    for i, (inputs, targets) in enumerate(pairs):
        x[i, :len(inputs)] = torch.tensor(inputs)
        y[i, :len(targets)] = torch.tensor(targets)
    return x, y
