"""The shared checks: hand-worked cases of each option, and one token-id rule for every caller."""

import numpy as np
import pytest
import torch

from llm_lessons.beam_search import beam_search
from llm_lessons.bert import BertConfig, MaskedLM
from llm_lessons.data import mask_tokens
from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.mlm_decoding import fill_mask
from llm_lessons.validation import check_int, check_real, check_token_tensor, token_ids


def test_check_int_says_why_its_range_is_what_it_is():
    assert check_int(np.int64(3), "n", low=2, reason="two make a pair") == 3
    with pytest.raises(ValueError, match=r"^n must be an int >= 2 \(two make a pair\), got 1$"):
        check_int(1, "n", low=2, reason="two make a pair")
    with pytest.raises(ValueError, match=r"^n must be an int in \[1, 3\], got True \(bool\)$"):
        check_int(True, "n", low=1, high=3)


def test_check_real_raises_the_kind_error_asked_for_and_a_value_error_for_the_range():
    for kind_error in (TypeError, ValueError):
        with pytest.raises(kind_error, match="top_p must be a finite number > 0.0 and <= 1.0"):
            check_real("0.5", "top_p", low=0.0, high=1.0, low_open=True, kind_error=kind_error)
        with pytest.raises(ValueError, match="got 0.0$"):
            check_real(0.0, "top_p", low=0.0, high=1.0, low_open=True, kind_error=kind_error)


def test_token_ids_are_never_negative_and_their_kind_error_can_be_a_value_error():
    assert token_ids([0, np.int64(5)]) == [0, 5]
    with pytest.raises(ValueError, match="token id -1 at position 1 of ids is negative"):
        token_ids([0, -1])
    with pytest.raises(ValueError, match=r"token id 3 at position 0 of mask_id is outside .* range\(0, 3\)"):
        token_ids([3], "mask_id", 3)
    for bad in ([1.0], [True], "12", torch.tensor([1.0])):
        with pytest.raises(TypeError, match="token ids"):
            token_ids(bad)
        with pytest.raises(ValueError, match="token ids"):
            token_ids(bad, kind_error=ValueError)
    with pytest.raises(TypeError, match="a sequence of token ids"):  # not ids of a wrong kind: no ids
        token_ids(5, kind_error=ValueError)


def test_check_token_tensor_with_any_shape():
    assert check_token_tensor(torch.zeros(2, 0, 3, dtype=torch.long), "ids", 4, dims=None).shape == (2, 0, 3)
    with pytest.raises(ValueError, match=r"prev_ids must hold ids in range\(0, 4\), got ids from 0 to 4"):
        check_token_tensor(torch.tensor([[0], [4]]), "prev_ids", 4, dims=None)
    with pytest.raises(TypeError, match="integer tensor"):
        check_token_tensor(torch.zeros(3), "ids", 4, dims=None)


@pytest.mark.parametrize("mask_id", [7, -1, 1.0, True])
def test_a_bad_mask_id_is_the_same_value_error_in_masking_and_mask_filling(mask_id):
    bert = MaskedLM(BertConfig(vocab_size=7, block_size=4, n_layer=1, n_head=1, n_embd=4))
    ids = torch.tensor([[1, 2, 3]])
    with pytest.raises(ValueError, match="mask_id") as masking:
        mask_tokens(ids, mask_id, 7)
    with pytest.raises(ValueError, match="mask_id") as filling:
        fill_mask(bert, ids, mask_id)
    assert str(masking.value) == str(filling.value)


def test_an_end_token_is_a_token_id():
    gpt = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4))
    for eos_id in (-1, 1.0, True):
        with pytest.raises(ValueError, match="eos_id"):
            beam_search(gpt, torch.tensor([[1, 2]]), 2, beam_width=2, eos_id=eos_id)
