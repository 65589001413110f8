"""Chapter 2's checkers: an independent solution passes, a stub is "not implemented yet", each
plausible wrong answer fails with words that name its mistake, and the package function that is
the answer cannot be used to pass."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from checker_contract import contract

from llm_lessons import data, tokenizers
from llm_lessons.data import mask_tokens as imported_mask_tokens
from llm_lessons.evaluation import likelihood
from llm_lessons.exercises import foundations as ex
from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.tokenizers import merge_pair as imported_merge_pair


def my_add_k(counts, k):
    c = counts.float()
    return (c + k) / (c.sum(-1, keepdim=True) + k * c.shape[-1])


def my_merge(ids, pair, new_id):
    out, skip = [], False
    for i, token in enumerate(ids):
        if skip:
            skip = False
        elif tuple(ids[i:i + 2]) == tuple(pair):
            out.append(new_id)
            skip = True
        else:
            out.append(token)
    return out


def merge_overlapping(ids, pair, new_id):
    out = []
    for i, token in enumerate(ids):
        if tuple(ids[i:i + 2]) == tuple(pair):
            out.append(new_id)
        elif i == 0 or tuple(ids[i - 1:i + 1]) != tuple(pair):
            out.append(token)
    return out


def merge_first_only(ids, pair, new_id):
    for i in range(len(ids) - 1):
        if (ids[i], ids[i + 1]) == tuple(pair):
            return ids[:i] + [new_id] + ids[i + 2:]
    return list(ids)


def merge_checking_a(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):
        if ids[i] == pair[0] and i + 1 < len(ids):
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def my_most_frequent(ids):
    counts = Counter(zip(ids, ids[1:], strict=False))
    return max(counts, key=counts.get)  # max keeps the first of equals: the pair seen first


def most_frequent_at_even_positions(ids):
    counts = Counter((ids[i], ids[i + 1]) for i in range(0, len(ids) - 1, 2))
    return max(counts, key=counts.get)


def my_shift(ids, T):
    window = ids[:T + 1]
    return window[:-1], window[1:]


def masker(p_select=0.15, p_mask=0.8, p_random=0.1, skip_specials=True, targets_everywhere=False,
           use_generator=True, targets_corrupted=False):
    """BERT's masking written independently; the arguments give the usual wrong versions."""
    def mask(ids, mask_id, vocab_size, special_ids, generator):
        gen = generator if use_generator else None
        special = torch.zeros_like(ids, dtype=torch.bool)
        for s in special_ids if skip_specials else ():
            special |= ids == s
        selected = (torch.rand(ids.shape, generator=gen) < p_select) & ~special
        how = torch.rand(ids.shape, generator=gen)
        random_ids = torch.randint(vocab_size, ids.shape, generator=gen)
        corrupted = torch.where(selected & (how < p_mask), mask_id, ids)
        corrupted = torch.where(selected & (how >= p_mask) & (how < p_mask + p_random), random_ids,
                                corrupted)
        targets = torch.where(selected, corrupted if targets_corrupted else ids, -100)
        return corrupted, ids.clone() if targets_everywhere else targets
    return mask


def my_bits_per_byte(total, text):
    return total / (len(text.encode("utf-8")) * math.log(2))


# checker -> (a correct solution written here, [(a wrong answer, words its failure must say)])
CASES = {
    ex.check_add_k_bigram: (my_add_k, [
        (lambda c, k: (c + k) / c.sum(-1, keepdim=True), "k*V"),
        (lambda c, k: (c + k) / (c.sum(-1, keepdim=True) + k), "added k once"),
        (lambda c, k: (lambda z: z / z.sum(-1, keepdim=True))(torch.where(c == 0, k, c.float())),
         "only to the zero counts"),
        (lambda c, k: (c + k) / (c.sum(0, keepdim=True) + k * len(c)), "columns sum to 1"),
    ]),
    ex.check_bpe_merge: (my_merge, [
        (merge_overlapping, "merges overlap"),
        (merge_first_only, "only the first occurrence"),
        (merge_checking_a, "check that the next token is b"),
        (lambda ids, p, n: tokenizers.merge_pair(ids, p, n),
         "without calling llm_lessons.tokenizers.merge_pair"),
    ]),
    ex.check_most_frequent_pair: (my_most_frequent, [
        (lambda ids: max(Counter(zip(ids, ids[1:], strict=False)).items(), key=lambda pn: (pn[1], pn[0]))[0],
         "largest ids"),
        (most_frequent_at_even_positions, "even positions"),
        (lambda ids: max(reversed(Counter(zip(ids, ids[1:], strict=False)).items()), key=lambda pn: pn[1])[0],
         "seen last"),
        (lambda ids: max(tokenizers.pair_counts(ids).items(), key=lambda pn: pn[1])[0],
         "without calling llm_lessons.tokenizers.pair_counts"),
    ]),
    ex.check_shift_targets: (my_shift, [
        (lambda ids, T: (ids[:T], ids[:T].clone()), "targets equal your inputs"),
        (lambda ids, T: (ids[1:T + 1], ids[:T]), "wrong way"),
        (lambda ids, T: (ids[:T - 1], ids[1:T]), "one token short"),
        (lambda ids, T: (ids[len(ids) - T - 1:-1], ids[len(ids) - T:]), "last window"),
    ]),
    ex.check_mask_80_10_10: (masker(), [
        (masker(p_mask=1.0, p_random=0.0), "replaced every selected token by [MASK]"),
        (masker(skip_specials=False), "you masked special tokens"),
        (masker(targets_everywhere=True), "targets hold a token at every position"),
        (masker(p_select=1.0), "you applied 80/10/10 to every position"),
        (masker(use_generator=False), "generator you are given"),
        (masker(targets_corrupted=True), "not the corrupted token"),
        (masker(p_random=0.2), "become a random token"),
        (masker(p_select=0.3), "select each with probability 0.15"),
        (lambda ids, m, V, s, g: data.mask_tokens(ids, m, V, s, generator=g),
         "without calling llm_lessons.data.mask_tokens"),
    ]),
    ex.check_bits_per_byte: (my_bits_per_byte, [
        (lambda total, text: total / (len(text) * math.log(2)), "number of characters"),
        (lambda total, text: total / len(text.encode()), "nats per byte"),
        (lambda total, text: total / (math.log10(2) * len(text.encode())), "log10(2)"),
        (lambda total, text: likelihood.bits_per_byte(total, text),
         "without calling llm_lessons.evaluation.likelihood.bits_per_byte"),
    ]),
}
(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CASES)


def test_the_package_answer_would_pass_so_forbidding_it_matters():
    """The forbidden functions solve their exercises: outside a check they give the right answers."""
    assert tokenizers.merge_pair([1, 1, 1], (1, 1), 9) == my_merge([1, 1, 1], (1, 1), 9) == [9, 1]
    assert likelihood.bits_per_byte(10.0, "你好🙂") == pytest.approx(my_bits_per_byte(10.0, "你好🙂"))


def cheat_merge(ids, pair, new_id):
    return imported_merge_pair(ids, pair, new_id)  # bound before the check, so patching cannot reach it


def cheat_mask(ids, mask_id, vocab_size, special_ids, generator):
    return imported_mask_tokens(ids, mask_id, vocab_size, special_ids, generator=generator)


def test_a_forbidden_function_held_under_a_global_name_is_caught():
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.tokenizers.merge_pair"):
        ex.check_bpe_merge(cheat_merge)
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.data.mask_tokens"):
        ex.check_mask_80_10_10(cheat_mask)


def test_a_wrong_shape_from_the_masker_is_refused():
    with pytest.raises(ExerciseFailed, match="two integer tensors"):
        ex.check_mask_80_10_10(lambda ids, m, V, s, g: ids.float())


def test_bits_per_byte_counts_bytes_not_characters_on_the_cases():
    """The checker's own cases: '你好，世界' is 5 characters but 15 UTF-8 bytes."""
    assert ex._utf8_bytes("你好，世界") == 15 and ex._utf8_bytes("🙂") == 4
