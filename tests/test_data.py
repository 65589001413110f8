import pytest

from llm_lessons import data


def test_markdown_conversion_keeps_dialogue_drops_directions():
    md = ("# Play\n\n## ACT I\n\n_Enter HAMLET_\n\n**HAMLET**  \nTo be, or not to be,  \n"
          "_Aside_  \nthat is the question.\n\n**OPHELIA**  \nGood my lord\\[\\]\n\n_Exeunt_\n")
    assert data.markdown_to_dialogue(md) == (
        "HAMLET:\nTo be, or not to be,\nthat is the question.\n\nOPHELIA:\nGood my lord[]\n")


def test_corpus_is_the_38_plays_as_plain_dialogue():
    names = data.play_names()
    assert len(names) == 38 and "hamlet" in names
    text = data.load_shakespeare()
    assert 4_000_000 < len(text) < 6_000_000
    assert "**" not in text and "#" not in text and "_" not in text
    # every speech opens with a "SPEAKER:" line
    assert text.count(":\n") > 20_000


def test_split_is_by_whole_plays_deterministic_and_disjoint():
    a, b = data.train_val_split(), data.train_val_split()
    assert a == b
    assert set(a.train_plays).isdisjoint(a.val_plays)
    assert sorted(a.train_plays + a.val_plays) == data.play_names()
    total = len(a.train) + len(a.val)
    assert 0.1 <= len(a.val) / total < 0.2
    # no validation speech line appears verbatim in training... except common short ones
    long_val_lines = [ln for ln in a.val.splitlines() if len(ln) > 60][:200]
    assert sum(ln in a.train for ln in long_val_lines) < 5
    assert data.train_val_split(seed=1) != a


def test_bad_input_raises():
    with pytest.raises(ValueError, match="unknown play"):
        data.load_plays(["not-a-play"])
    with pytest.raises(ValueError, match="empty corpus"):
        data.load_shakespeare([])
    with pytest.raises(ValueError, match="val_fraction"):
        data.train_val_split(val_fraction=1.5)
    with pytest.raises(ValueError, match="two plays"):
        data.train_val_split(names=["hamlet"])
