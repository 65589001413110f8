"""Point labels: placed without collisions, and collisions found when they exist."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from llm_lessons.plotting import label_overlaps, labelled_scatter, place_labels  # noqa: E402


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_placed_labels_collide_with_nothing(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 10, 12), rng.uniform(0, 10, 12)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(x, y, "o")
    ax.set(xlim=(-1, 11), ylim=(-1, 11))
    texts = place_labels(ax, x, y, [f"point {i}" for i in range(12)])
    assert [t.get_text() for t in texts] == [f"point {i}" for i in range(12)]
    assert label_overlaps(ax) == []
    plt.close(fig)


def test_collisions_are_reported():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([1, 2], [1, 1], "o")
    ax.set(xlim=(0, 3), ylim=(0, 2))
    ax.annotate("same place", (1, 1), xytext=(5, 5), textcoords="offset points")
    ax.annotate("same place too", (1, 1), xytext=(5, 5), textcoords="offset points")
    ax.annotate("on a marker", (2, 1), ha="center", va="center")
    ax.annotate("off the edge", (2.9, 1.9))
    found = label_overlaps(ax)
    assert "'same place' overlaps 'same place too'" in found
    assert "'on a marker' covers a marker at (2, 1)" in found
    assert "'off the edge' runs outside the axes" in found
    plt.close(fig)


def test_labelled_scatter_places_names_apart():
    fig, ax = plt.subplots(figsize=(5, 3))
    labelled_scatter([2020, 2020.05, 2020.1], [1e9, 1.1e9, 1.2e9], ["a model", "b model", "c model"],
                     logy=True, ax=ax, place=True, xlim=(2019, 2021), ylim=(1e8, 1e10))
    assert label_overlaps(ax) == []
    plt.close(fig)
