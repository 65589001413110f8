"""SFT data (chapter 8): examples built from the corpus by a stated rule, a chat template in the
corpus's own dialogue format, and a loss that counts the response only."""

import pytest
import torch
import torch.nn.functional as F

from llm_lessons.frontiers.instructions import (
    END,
    Example,
    encode_example,
    make_examples,
    prompt_text,
    sft_batch,
)
from llm_lessons.tokenizers import CharTokenizer

ROWS = [{"play": "hamlet", "speaker": "HAMLET", "text": "To be, or not to be\nthat is the question"},
        {"play": "macbeth", "speaker": "WITCHES", "text": "Fair is foul"},
        {"play": "macbeth", "speaker": "MACBETH", "text": "So foul and fair a day\nI have not seen"}]
TOK = CharTokenizer("".join(sorted(set("".join(r["text"] + r["speaker"] + r["play"] for r in ROWS)
                                     + "USERASSISTANT:\n Whospakthiln?Cpcyfm-"))))


def test_examples_follow_the_stated_rules_and_repeat_with_their_seed():
    examples = make_examples(ROWS, 30, seed=4)
    assert examples == make_examples(ROWS, 30, seed=4) and examples != make_examples(ROWS, 30, seed=5)
    assert [e.task for e in examples[:3]] == ["continue", "speaker", "play"]
    for e in examples:
        row_lines = {r["play"] + r["speaker"]: r["text"].split("\n") for r in ROWS}
        line = e.instruction.split("\n", 1)[1]
        if e.task == "continue":  # the first line of a speech of two or more lines, then the second
            speaker = e.instruction.split(" by ", 1)[1].split(":")[0]
            assert row_lines[e.play + speaker][:2] == [line, e.response]
        elif e.task == "speaker":
            assert line in row_lines[e.play + e.response]
        else:
            assert e.response == e.play and any(line in lines for key, lines in row_lines.items()
                                                if key.startswith(e.play))


def test_only_the_response_and_its_end_are_learned():
    ex = Example("speaker", "hamlet", "Who speaks this line?\nTo be, or not to be", "HAMLET")
    inputs, targets = encode_example(ex, TOK.encode)
    learned = "".join(TOK.decode([t]) for t in targets if t != -100)
    assert learned == "HAMLET" + END
    assert TOK.decode(inputs) + END[-1] == prompt_text(ex) + "HAMLET" + END
    first = targets.index(next(t for t in targets if t != -100))
    assert TOK.decode(inputs[: first + 1]) == prompt_text(ex)  # the first learned target follows the prompt


def test_the_batch_loss_is_the_mean_over_response_characters_only():
    examples = make_examples(ROWS, 6, seed=1)
    x, y = sft_batch(examples, TOK.encode, block_size=128, pad_id=0)
    logits = torch.randn(*x.shape, TOK.vocab_size, generator=torch.Generator().manual_seed(0))
    loss = F.cross_entropy(logits.view(-1, TOK.vocab_size), y.view(-1), ignore_index=-100)
    keep = y != -100
    by_hand = -logits.log_softmax(-1)[keep].gather(-1, y[keep][:, None]).mean()
    assert torch.allclose(loss, by_hand)
    assert keep.sum() == sum(len(e.response) + len(END) for e in examples)


def test_too_long_or_unknown_requests_are_refused():
    with pytest.raises(ValueError, match="longer than block_size 16"):
        sft_batch(make_examples(ROWS, 2), TOK.encode, block_size=16, pad_id=0)
    with pytest.raises(ValueError, match="unknown task"):
        make_examples(ROWS, 2, tasks=("translate",))
    with pytest.raises(ValueError, match="no speeches"):
        make_examples([], 2)
