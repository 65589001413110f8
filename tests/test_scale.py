"""Tests for llm_lessons.scale: the table of published model sizes and the formulas of scale.

Oracles: the numbers the papers state (independent of the table's own arithmetic), arXiv ids
(whose first four digits are the year and month of submission), the book's bibliography,
``numpy.polyfit``, and Hugging Face's GPT-2 counting its own parameters.
"""

from __future__ import annotations

import math
import pathlib
import re

import numpy as np
import pytest

from llm_lessons.scale import (
    CHINCHILLA_TOKENS_PER_PARAMETER,
    COLUMNS,
    WEIGHTS,
    decimal_year,
    fit_log_growth,
    gpt_param_count,
    load_model_sizes,
    parse_model_sizes,
    training_flops,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent
ARXIV = re.compile(r"^arXiv:(\d{2})(\d{2})\.\d{4,5}$")


@pytest.fixture(scope="module")
def rows():
    return load_model_sizes()


def by_name(rows, name):
    return next(r for r in rows if r.model == name)


def test_table_parses_with_unique_models(rows):
    assert 12 <= len(rows) <= 20
    assert len({r.model for r in rows}) == len(rows)
    assert {r.weights for r in rows} <= set(WEIGHTS)


def test_dates_are_valid_and_sorted(rows):
    years = [r.year for r in rows]
    assert years == sorted(years)
    for r in rows:
        year, month = map(int, r.date.split("-"))
        assert 2017 <= year <= 2025 and 1 <= month <= 12, r


def test_every_row_has_a_source_and_arxiv_dates_match_their_ids(rows):
    for r in rows:
        match = ARXIV.match(r.source)
        assert match or r.source.startswith("https://"), r.source
        if match:  # an arXiv id starts with the year and month of its first version
            assert r.date == f"20{match[1]}-{match[2]}", (r.model, r.date, r.source)


def test_every_arxiv_source_is_in_the_bibliography(rows):
    bib = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    eprints = set(re.findall(r"eprint\s*=\s*\{([\d.]+)\}", bib))
    missing = [r.source for r in rows if r.source.startswith("arXiv:") and r.source[6:] not in eprints]
    assert not missing, f"add these to book/references.bib: {missing}"


def test_every_model_is_in_the_chapter_1_source_table(rows):
    chapter = (ROOT / "book" / "01_background.md").read_text(encoding="utf-8")
    missing = [r.model for r in rows if f"* - {r.model}\n" not in chapter]
    assert not missing, f"add these rows, with their sources, to book/01_background.md: {missing}"


def test_sizes_are_positive_and_in_a_plausible_range(rows):
    for r in rows:
        assert 1e7 < r.parameters < 1e13, r
        assert r.training_tokens is None or 1e9 < r.training_tokens < 1e14, r


def test_chinchilla_is_compute_optimal_by_its_own_rule():
    rows = load_model_sizes()
    chinchilla = by_name(rows, "Chinchilla")
    assert chinchilla.tokens_per_parameter == pytest.approx(1.4e12 / 70e9)
    assert chinchilla.tokens_per_parameter == pytest.approx(CHINCHILLA_TOKENS_PER_PARAMETER)
    gopher = by_name(rows, "Gopher")  # same budget, 4x the parameters, a quarter of the ratio
    assert gopher.tokens_per_parameter < chinchilla.tokens_per_parameter / 10


def test_unknown_tokens_give_no_ratio(rows):
    assert by_name(rows, "GPT-2").training_tokens is None
    assert by_name(rows, "GPT-2").tokens_per_parameter is None


def test_six_n_d_matches_the_compute_the_papers_state(rows):
    gpt3, llama3 = by_name(rows, "GPT-3"), by_name(rows, "Llama 3 405B")
    assert training_flops(gpt3.parameters, gpt3.training_tokens) == pytest.approx(3.14e23, rel=0.01)
    assert training_flops(llama3.parameters, llama3.training_tokens) == pytest.approx(3.8e25, rel=0.01)


def test_param_formula_agrees_with_the_table_for_known_architectures(rows):
    # GPT-1: 12 layers, 768 dims, 40,478 BPE tokens, 512 positions; GPT-3: 96 x 12288, 2048.
    assert gpt_param_count(12, 768, 40478, 512) == pytest.approx(by_name(rows, "GPT-1").parameters, rel=0.01)
    assert gpt_param_count(96, 12288, 50257, 2048) == pytest.approx(by_name(rows, "GPT-3").parameters,
                                                                     rel=0.01)


@pytest.mark.parametrize("n_layer,d_model,vocab_size,block_size", [(1, 8, 11, 5), (2, 16, 65, 32),
                                                                    (3, 24, 100, 7)])
def test_exact_param_count_equals_huggingface_gpt2(n_layer, d_model, vocab_size, block_size):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=n_layer, n_embd=d_model, n_head=2, vocab_size=vocab_size,
                                     n_positions=block_size, tie_word_embeddings=True)
    model = transformers.GPT2LMHeadModel(config)
    hf_count = sum(p.numel() for p in model.parameters())  # tied weights are listed once
    assert gpt_param_count(n_layer, d_model, vocab_size, block_size, exact=True) == hf_count
    biases_and_norms = 13 * n_layer * d_model + 2 * d_model
    assert gpt_param_count(n_layer, d_model, vocab_size, block_size) == hf_count - biases_and_norms


def test_growth_fit_recovers_an_exact_exponential_and_matches_polyfit():
    years = np.array([2018.0, 2018.5, 2019.25, 2021.0])
    fit = fit_log_growth(years, 3.0 * 10 ** (0.7 * (years - 2018)))
    assert fit.orders_per_year == pytest.approx(0.7)
    assert fit.predict(2020.0) == pytest.approx(3.0 * 10**1.4)
    assert fit.doublings_per_year == pytest.approx(0.7 / math.log10(2))
    assert fit.doubling_time_months == pytest.approx(12 / fit.doublings_per_year)
    rng = np.random.default_rng(0)
    values = 10 ** rng.uniform(6, 12, size=9)
    x = rng.uniform(2018, 2024, size=9)
    slope, intercept = np.polyfit(x, np.log10(values), 1)
    fit = fit_log_growth(x, values)
    assert fit.orders_per_year == pytest.approx(slope)
    assert fit.intercept == pytest.approx(intercept)


def test_flat_growth_never_doubles():
    assert fit_log_growth([2020, 2021], [5.0, 5.0]).doubling_time_months == math.inf


def csv_text(*lines):
    return "\n".join([",".join(COLUMNS), *lines])


GOOD = "Tiny,Us,2026-01,8e5,1e9,open,arXiv:2601.00001,"


@pytest.mark.parametrize("line,message", [
    ("Tiny,Us,2026-13,8e5,,open,x,", "month"),
    ("Tiny,Us,26-01,8e5,,open,x,", "YYYY-MM"),
    ("Tiny,Us,2026-01,-8e5,,open,x,", "parameters must be a positive"),
    ("Tiny,Us,2026-01,many,,open,x,", "parameters must be a number"),
    ("Tiny,Us,2026-01,8e5,0,open,x,", "training_tokens must be a positive"),
    ("Tiny,Us,2026-01,8e5,,open,,", "source"),
    ("Tiny,Us,2026-01,8e5,,leaked,x,", "weights"),
    (",Us,2026-01,8e5,,open,x,", "model name"),
    ("Tiny,Us,2026-01,8e5,,open", "fields"),
    (GOOD + "\n" + GOOD, "unique"),
])
def test_bad_rows_raise_naming_the_problem(line, message):
    with pytest.raises(ValueError, match=message):
        parse_model_sizes(csv_text(line))


def test_bad_header_and_a_good_row():
    with pytest.raises(ValueError, match="header"):
        parse_model_sizes("model,params\nx,1\n")
    (row,) = parse_model_sizes(csv_text(GOOD))
    assert (row.parameters, row.training_tokens, row.tokens_per_parameter) == (8e5, 1e9, 1250.0)


@pytest.mark.parametrize("call", [
    lambda: decimal_year(2020),
    lambda: fit_log_growth([2020, 2020], [1.0, 2.0]),
    lambda: fit_log_growth([2020, 2021], [1.0, 0.0]),
    lambda: fit_log_growth([2020, 2021, 2022], [1.0, 2.0]),
    lambda: training_flops(0, 1e9),
    lambda: gpt_param_count(0, 8, 10, 4),
    lambda: gpt_param_count(2, 8.0, 10, 4),
    lambda: gpt_param_count(True, 8, 10, 4),
])
def test_bad_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()
