"""Votes files, side shuffling, the rating widgets (clicked programmatically), and the shipped,
simulated vote set: it is exactly what its documented simulation produces, and the analysis
recovers the simulation's truth."""

import importlib.util
import json
import pathlib

import numpy as np
import pytest

from llm_lessons.evaluation.agreement import bootstrap_ci, bradley_terry
from llm_lessons.evaluation.human_eval import (
    PairwiseTask,
    Votes,
    append_record,
    left_preference,
    likert_matrix,
    likert_widget,
    load_votes,
    outcome,
    pairwise_outcomes,
    pairwise_tasks,
    pairwise_widget,
)

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_pairwise_tasks_cover_every_pair_once_with_balanced_seeded_sides():
    items = [f"p{i}" for i in range(200)]
    tasks = pairwise_tasks(items, ["A", "B", "C", "D"], seed=3)
    assert len(tasks) == 200 * 6
    assert len({(t.item, frozenset((t.left, t.right))) for t in tasks}) == 200 * 6
    left_is_first = np.mean([t.left < t.right for t in tasks])
    assert 0.45 < left_is_first < 0.55  # a fair coin per task
    assert tasks == pairwise_tasks(items, ["A", "B", "C", "D"], seed=3)
    assert tasks != pairwise_tasks(items, ["A", "B", "C", "D"], seed=4)


def test_outcome_maps_sides_to_systems():
    t = PairwiseTask("p", left="X", right="Y")
    got = [outcome(t, c) for c in ("left", "right", "tie")]
    assert got == [("X", "Y", 1.0), ("X", "Y", 0.0), ("X", "Y", 0.5)]


def test_round_trip_and_matrix(tmp_path):
    path = tmp_path / "votes.jsonl"
    append_record(path, {"type": "sample", "item": "p0", "system": "A", "prompt": "p", "text": "t"})
    for rater, f in (("r1", 4), ("r2", 5)):
        append_record(path, {"type": "likert", "rater": rater, "item": "p0", "system": "A",
                             "fluency": f, "relevance": 3})
    append_record(path, {"type": "likert", "rater": "r1", "item": "p1", "system": "A",
                         "fluency": 2, "relevance": 2})
    append_record(path, {"type": "pairwise", "rater": "r1", "item": "p0", "left": "B", "right": "A",
                         "choice": "tie"})
    votes = load_votes(path)
    m, raters, units = likert_matrix(votes, "fluency")
    assert raters == ["r1", "r2"] and units == [("p0", "A"), ("p1", "A")]
    np.testing.assert_array_equal(m, [[4, 2], [5, np.nan]])
    assert pairwise_outcomes(votes) == [("B", "A", 0.5)]
    assert votes.systems == ["A", "B"]


def test_bad_records_raise(tmp_path):
    with pytest.raises(ValueError, match=r"Likert score fluency must be an int in \[1, 5\], got 6"):
        append_record(tmp_path / "x", {"type": "likert", "rater": "r", "item": "i", "system": "s",
                                       "fluency": 6, "relevance": 3})
    with pytest.raises(ValueError, match="lacks"):
        append_record(tmp_path / "x", {"type": "pairwise", "rater": "r", "item": "i", "left": "a"})
    with pytest.raises(ValueError, match="choice"):
        append_record(tmp_path / "x", {"type": "pairwise", "rater": "r", "item": "i", "left": "a",
                                       "right": "b", "choice": "both"})
    with pytest.raises(ValueError, match="unknown record type"):
        append_record(tmp_path / "x", {"type": "vote"})
    path = tmp_path / "only_samples.jsonl"
    sample = {"type": "sample", "item": "i", "system": "s", "prompt": "", "text": ""}
    path.write_text(json.dumps(sample) + "\n")
    with pytest.raises(ValueError, match="no likert or pairwise votes"):
        load_votes(path)
    with pytest.raises(ValueError, match="two distinct systems"):
        pairwise_tasks(["p"], ["A", "A"])
    with pytest.raises(ValueError, match="aspect"):
        likert_matrix(load_votes(), "coherence")


def test_widgets_write_records_when_clicked(tmp_path):
    pytest.importorskip("ipywidgets")
    samples = [{"type": "sample", "item": "p0", "system": s, "prompt": "Hi", "text": f"text {s}"}
               for s in "AB"]
    votes = Votes({}, samples, [], [])
    path = tmp_path / "mine.jsonl"
    box = likert_widget(samples, path, rater="me")
    save = box.children[3]
    save.click()
    save.click()
    assert save.disabled  # both samples rated
    tasks = pairwise_tasks(["p0"], ["A", "B"], seed=1)
    pair_box = pairwise_widget(votes, tasks, path, rater="me")
    pair_box.children[1].children[0].click()  # "Left is better"
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["type"] for r in records] == ["likert", "likert", "pairwise"]
    assert {r["system"] for r in records[:2]} == {"A", "B"}
    assert records[2]["left"] == tasks[0].left and records[2]["choice"] == "left"


def test_shipped_votes_are_labelled_simulated_and_complete():
    votes = load_votes()
    assert votes.header["simulated"] is True and "SIMULATED" in votes.header["description"]
    systems = sorted(votes.header["systems"])
    items = sorted({s["item"] for s in votes.samples})
    assert votes.systems == systems
    assert {(s["item"], s["system"]) for s in votes.samples} == {(i, s) for i in items for s in systems}
    n_pairs = len(systems) * (len(systems) - 1) // 2
    assert len(votes.pairwise) == len(items) * n_pairs * len(votes.header["raters"])


def _script():
    path = ROOT / "scripts" / "make_human_votes.py"
    spec = importlib.util.spec_from_file_location("make_human_votes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_votes_are_exactly_the_documented_simulation():
    votes = load_votes()
    script = _script()
    likert, pairwise = script.simulate(votes.samples)
    assert likert == votes.likert and pairwise == votes.pairwise
    assert votes.header["true_fluency"] == script.TRUE_FLUENCY and votes.header["raters"] == script.RATERS


def test_analysis_recovers_the_simulated_truth():
    votes = load_votes()
    truth = votes.header["true_fluency"]
    outcomes = pairwise_outcomes(votes)
    bt = bradley_terry(outcomes)
    ci = bootstrap_ci(outcomes, lambda v: bradley_terry(v, bt.systems, tol=1e-8).theta, n_boot=200, seed=0)
    true = np.array([truth[s] for s in bt.systems])
    assert np.all((ci.low <= true) & (true <= ci.high))
    assert [s for s in sorted(bt.systems, key=bt.__getitem__)] == sorted(truth, key=truth.get)
    assert left_preference(votes)["rater-3"] > 0.55  # the simulated position bias is visible


def test_shipped_samples_come_from_the_shipped_checkpoint():
    from llm_lessons import checkpoint
    from llm_lessons.resources import GPT_SHAKESPEARE, resource_path

    shipped = checkpoint.load_metadata(resource_path(GPT_SHAKESPEARE))["sha256"]
    assert load_votes().header["model_sha256"] == shipped, (
        "the shipped GPT changed since the votes file was made: rerun scripts/make_human_votes.py")
