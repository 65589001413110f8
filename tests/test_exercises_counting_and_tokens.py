"""The checkers of chapter 2's counting exercises (an interpolated bigram model, BPE encoding with
a merge list, perplexity units, the expected calibration error): an independent solution passes,
a stub is "not implemented yet", each plausible wrong answer fails with words that name its
mistake, the references agree with the package's tokenizer, likelihood report and calibration
functions, and the functions that are the answer cannot be used to pass."""

from __future__ import annotations

import math

import pytest
import torch
from checker_contract import contract

from llm_lessons.evaluation import calibration
from llm_lessons.evaluation.likelihood import LikelihoodReport, bits_per_token
from llm_lessons.exercises import counting_and_tokens as ct
from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.counting_and_tokens import (
    check_bpe_encode,
    check_calibration_error,
    check_interpolated_bigram,
    check_perplexity_units,
)
from llm_lessons.tokenizers import BPETokenizer, merge_pair

# --- the interpolated bigram model ---


def my_interpolation(bigram, unigram, lam):
    rows = bigram.sum(dim=1, keepdim=True).float()  # (V, 1)
    p_uni = unigram.float() / unigram.sum()  # (V,)
    p_bi = torch.nan_to_num(bigram.float() / rows)  # (V, V); an unseen row: 0 / 0 -> 0
    mixed = lam * p_bi + (1 - lam) * p_uni
    return torch.where(rows > 0, mixed, p_uni.expand_as(mixed))


def interpolation_swapped(bigram, unigram, lam):
    return my_interpolation(bigram, unigram, 1 - lam)


def interpolation_of_raw_counts(bigram, unigram, lam):
    rows = bigram.sum(dim=1, keepdim=True).float()
    mixed = lam * torch.nan_to_num(bigram.float() / rows) + (1 - lam) * unigram.float()
    return torch.where(rows > 0, mixed, unigram.float().expand_as(mixed))


def interpolation_by_columns(bigram, unigram, lam):
    p_uni = unigram.float() / unigram.sum()
    mixed = lam * bigram.float() / bigram.sum(dim=0, keepdim=True) + (1 - lam) * p_uni
    return torch.where(bigram.sum(dim=1, keepdim=True) > 0, mixed, p_uni.expand_as(mixed))


def interpolation_unseen_scaled(bigram, unigram, lam):
    rows = bigram.sum(dim=1, keepdim=True).clamp(min=1).float()
    return lam * bigram.float() / rows + (1 - lam) * unigram.float() / unigram.sum()


# --- BPE encoding with a merge list ---


def my_encode(word, merges):
    tokens = list(word)
    for a, b in merges:
        i = 0
        while i < len(tokens) - 1:
            if tokens[i] == a and tokens[i + 1] == b:
                tokens[i:i + 2] = [a + b]  # the next look starts after the new token
            i += 1
    return tokens


def encode_first_only(word, merges):
    tokens = list(word)
    for a, b in merges:
        for i in range(len(tokens) - 1):
            if tokens[i] == a and tokens[i + 1] == b:
                tokens[i:i + 2] = [a + b]
                break
    return tokens


def encode_right_to_left(word, merges):
    tokens = list(word)
    for a, b in merges:
        i = len(tokens) - 1
        while i > 0:
            if tokens[i - 1] == a and tokens[i] == b:
                tokens[i - 1:i + 1] = [a + b]
                i -= 1
            i -= 1
    return tokens


def encode_reversed(word, merges):
    return my_encode(word, merges[::-1])


def encode_from_characters(word, merges):
    tokens = list(word)
    for pair in merges:
        tokens = my_encode(word, [pair])  # forgets the tokens of the earlier merges
    return tokens


def encode_with_the_package(word, merges):
    ids = {chr(i): i for i in range(128)}  # ASCII: one byte per character
    pairs = []
    for a, b in merges:
        pairs.append((ids[a], ids[b]))
        ids[a + b] = 255 + len(pairs)
    tok = BPETokenizer.from_merges(pairs, pattern="none")
    return [tok.vocab[i].decode() for i in tok.encode(word)]


def encode_with_merge_pair(word, merges):
    tokens = list(word)
    for a, b in merges:
        tokens = merge_pair(tokens, (a, b), a + b)
    return tokens


# --- perplexity units ---


def my_units(total_nll, n_tokens, n_chars):
    per_char = total_nll / n_chars
    return math.exp(total_nll / n_tokens), math.exp(per_char), per_char * math.log2(math.e)


def units_char_ppl_per_token(total_nll, n_tokens, n_chars):
    return math.exp(total_nll / n_tokens), math.exp(total_nll / n_tokens), total_nll / n_chars / math.log(2)


def units_in_nats(total_nll, n_tokens, n_chars):
    return math.exp(total_nll / n_tokens), math.exp(total_nll / n_chars), total_nll / n_chars


def units_with_log10(total_nll, n_tokens, n_chars):
    return math.exp(total_nll / n_tokens), math.exp(total_nll / n_chars), total_nll / n_chars / math.log10(2)


def units_bits_per_token(total_nll, n_tokens, n_chars):
    return math.exp(total_nll / n_tokens), math.exp(total_nll / n_chars), total_nll / n_tokens / math.log(2)


def units_with_the_report(total_nll, n_tokens, n_chars):
    r = LikelihoodReport(total_nll, n_tokens, n_chars, n_bytes=n_chars, n_words=1)
    return r.token_perplexity, 2 ** r.bits_per_char, r.bits_per_char


# --- the expected calibration error ---


def my_ece(confidence, correct, n_bins):
    groups: dict[int, list] = {}
    for c, ok in zip(confidence.tolist(), correct.tolist(), strict=True):
        groups.setdefault(int(c * n_bins), []).append((c, ok))  # 1.0 -> n_bins: a bin of its own
    N = len(confidence)
    return sum(len(g) / N * abs(sum(ok for _, ok in g) / len(g) - sum(c for c, _ in g) / len(g))
               for g in groups.values())


def bin_gaps(confidence, correct, bins):
    """(share of the predictions, accuracy - mean confidence) of each non-empty bin."""
    return [((bins == b).float().mean(), correct[bins == b].float().mean() - confidence[bins == b].mean())
            for b in bins.unique()]


def ece_unweighted(confidence, correct, n_bins):
    gaps = bin_gaps(confidence, correct, (confidence * n_bins).long())
    return float(sum(gap.abs() for _, gap in gaps) / len(gaps))


def ece_signed(confidence, correct, n_bins):
    gaps = bin_gaps(confidence, correct, (confidence * n_bins).long())
    return float(sum(share * gap for share, gap in gaps))


def ece_global(confidence, correct, n_bins):
    return float((correct.float().mean() - confidence.mean()).abs())


def ece_one_in_last_bin(confidence, correct, n_bins):
    bins = (confidence * n_bins).long().clamp(max=n_bins - 1)
    return float(sum(share * gap.abs() for share, gap in bin_gaps(confidence, correct, bins)))


def ece_empty_bins_counted(confidence, correct, n_bins):
    gaps = bin_gaps(confidence, correct, (confidence * n_bins).long())
    return float(sum(gap.abs() for _, gap in gaps) / n_bins)


def ece_with_the_package(confidence, correct, n_bins):
    return calibration.expected_calibration_error(confidence, correct, n_bins)


CHECKERS = {
    check_interpolated_bigram: (my_interpolation, [(interpolation_swapped, "lam weighs the wrong term"),
                                                   (interpolation_of_raw_counts, "raw unigram counts"),
                                                   (interpolation_by_columns, "column sums"),
                                                   (interpolation_unseen_scaled, "sums to 1 - lam")]),
    check_bpe_encode: (my_encode, [(encode_first_only, "only the first occurrence"),
                                   (encode_right_to_left, "scanned from the right"),
                                   (encode_reversed, "in reverse order"),
                                   (encode_from_characters, "started again from the word's characters")]),
    check_perplexity_units: (my_units, [(units_char_ppl_per_token, "token perplexity again"),
                                        (units_in_nats, "nats per character"),
                                        (units_with_log10, "divided by log10(2)"),
                                        (units_bits_per_token, "bits per TOKEN")]),
    check_calibration_error: (my_ece, [(ece_unweighted, "equal weights"), (ece_signed, "signed gaps"),
                                       (ece_global, "overall accuracy"),
                                       (ece_one_in_last_bin, "bin of its own"),
                                       (ece_empty_bins_counted, "the empty ones counted as 0")]),
}

(test_an_independent_solution_passes_quickly, test_a_stub_is_not_implemented_yet,
 test_each_wrong_answer_is_named) = contract(CHECKERS)


def test_interpolated_rows_sum_to_one():
    bigram, unigram = ct._bigram_counts([3, 0, 1, 0, 2, 1, 3, 4], 5)  # 4 is never followed
    for lam in (0.0, 0.3, 1.0):
        p = ct._interpolated(bigram, unigram, lam)
        torch.testing.assert_close(p.sum(dim=1), torch.ones(5, dtype=torch.float64))
        torch.testing.assert_close(p, my_interpolation(bigram, unigram, lam).double())
    torch.testing.assert_close(p[4], unigram.double() / 8)  # the unseen context: unigram alone


def package_merges(seed):
    """String merges the package's own BPE training learns from a random text of words."""
    g = torch.Generator().manual_seed(seed)
    words = ["".join("abcd"[i] for i in torch.randint(0, 4, (int(torch.randint(2, 9, (), generator=g)),),
                                                       generator=g)) for _ in range(12)]
    tok = BPETokenizer("whitespace").train(" ".join(words), vocab_size=256 + 10)
    return words, [(tok.vocab[a].decode(), tok.vocab[b].decode()) for a, b in tok.merges]


@pytest.mark.parametrize("seed", range(6))
def test_the_bpe_reference_agrees_with_the_package_tokenizer(seed):
    """BPETokenizer.encode applies the earliest-learned merge present until none is: for a merge
    list learned in order, the same tokens as applying each merge in turn."""
    words, merges = package_merges(seed)
    assert len({a + b for a, b in merges}) == len(merges)  # every token string has one id
    for word in [*words, "abcdabcdaabb", "dddd", "a"]:
        want = encode_with_the_package(word, merges)
        assert ct._encode(word, merges) == want == my_encode(word, merges), word


def test_the_package_encoder_and_merge_pair_are_refused():
    merges = [("a", "a"), ("a", "b"), ("aa", "ab")]
    assert encode_with_the_package("aaabdaaabac", merges) == ["aaab", "d", "aaab", "a", "c"]
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.tokenizers.BPETokenizer.encode"):
        check_bpe_encode(encode_with_the_package)
    assert encode_with_merge_pair("aaa", [("a", "a")]) == ["aa", "a"]
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.tokenizers.merge_pair"):
        check_bpe_encode(encode_with_merge_pair)
    assert BPETokenizer.from_merges([(97, 97)]).encode("aaa") == [256, 97]  # put back afterwards


def test_the_units_reference_agrees_with_the_likelihood_report():
    for args in [(400 * math.log(2), 100, 400), (123.4, 37, 150), (8.0, 8, 8)]:
        want = units_with_the_report(*args)
        for got in (ct._units(*args), my_units(*args)):
            assert all(math.isclose(x, y, rel_tol=1e-12) for x, y in zip(got, want, strict=True))
        assert math.isclose(bits_per_token(args[0], args[2]), want[2], rel_tol=1e-12)  # of characters
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.evaluation.likelihood.Likelihood"):
        check_perplexity_units(units_with_the_report)


def test_the_calibration_reference_agrees_with_the_package():
    """Random confidences, some exactly on an edge or exactly 1, binned as the package bins them."""
    g = torch.Generator().manual_seed(0)
    for n_bins in (1, 3, 4, 10, 15):
        conf = torch.rand(50, generator=g)
        conf[:6] = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0, 1.0])
        correct = torch.rand(50, generator=g) < conf
        want = calibration.expected_calibration_error(conf, correct, n_bins)
        assert math.isclose(ct._ece(conf, correct, n_bins), want, rel_tol=1e-5, abs_tol=1e-7)  # float32 sums
        if n_bins in (1, 4):  # exact edges: a loop with floor(c * n_bins) bins them the same way
            assert math.isclose(my_ece(conf, correct, n_bins), want, rel_tol=1e-6)


def test_the_package_calibration_is_refused():
    with pytest.raises(ExerciseFailed, match="without calling llm_lessons.evaluation.calibration"):
        check_calibration_error(ece_with_the_package)


def test_torchmetrics_is_the_same_answer_and_refused_once_imported():
    C = pytest.importorskip("torchmetrics.functional.classification")

    def ece_with_torchmetrics(confidence, correct, n_bins):
        return float(C.binary_calibration_error(confidence, correct.long(), n_bins=n_bins))

    conf, correct = torch.tensor([1.0, 0.8, 0.3, 0.5]), torch.tensor([False, True, False, True])
    assert math.isclose(ece_with_torchmetrics(conf, correct, 4), ct._ece(conf, correct, 4), rel_tol=1e-6)
    with pytest.raises(ExerciseFailed, match="without calling torchmetrics"):
        check_calibration_error(ece_with_torchmetrics)
