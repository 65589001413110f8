"""The corpus as a Hugging Face dataset (chapter 7): the same text, the same split, offline."""

import pytest

datasets = pytest.importorskip("datasets")

from llm_lessons.data import load_plays, play_genres, train_val_split  # noqa: E402
from llm_lessons.interop.hf_datasets import corpus_dataset, play_text, speech_rows  # noqa: E402


@pytest.fixture(scope="module")
def ds():
    return corpus_dataset()


def test_every_play_is_its_rows_joined_back_character_for_character(ds):
    plays = load_plays()
    for part in ds.values():
        by_play: dict[str, list] = {}
        for row in part:
            by_play.setdefault(row["play"], []).append(row)
        for play, rows in by_play.items():
            assert play_text(rows) == plays[play], play
    assert len(ds["train"]) + len(ds["validation"]) > 30_000  # speeches, not lines or plays


def test_the_split_is_the_books_split_by_whole_plays(ds):
    split = train_val_split()
    assert set(ds["train"]["play"]) == set(split.train_plays)
    assert set(ds["validation"]["play"]) == set(split.val_plays)
    assert set(ds["train"]["genre"]) <= set(play_genres().values())


def test_filter_map_and_arrow_files_on_disk_work_offline(ds, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    histories = ds["train"].filter(lambda genres: [g == "histories" for g in genres], input_columns="genre",
                                   batched=True)
    genres = play_genres()
    assert set(histories["play"]) == {p for p in set(ds["train"]["play"]) if genres[p] == "histories"}
    sized = histories.map(lambda batch: {"chars": [len(t) for t in batch["text"]]}, batched=True)
    assert sum(sized["chars"]) == sum(len(t) for t in histories["text"])
    ds.save_to_disk(str(tmp_path / "corpus"))
    assert list((tmp_path / "corpus" / "train").glob("*.arrow"))
    back = datasets.load_from_disk(str(tmp_path / "corpus"))
    assert back["validation"][:5] == ds["validation"][:5] and len(back["train"]) == len(ds["train"])


def test_a_block_that_is_not_a_speech_is_refused():
    with pytest.raises(ValueError, match="not 'SPEAKER"):
        speech_rows({"x": "just a line\n"}, {"x": "comedies"})
