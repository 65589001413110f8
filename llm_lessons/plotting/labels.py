"""Point labels that do not collide: place them, and check a finished figure for collisions.

A label is a text beside a marker (a model name on a timeline, a temperature beside a point).
:func:`place_labels` tries a few positions around each point, in order, and keeps the first
where the label overlaps no other label, no marker and stays inside the axes.
:func:`label_overlaps` is the check: it lists every collision on an Axes, so a notebook can
``assert not label_overlaps(ax)`` next to its figure.

>>> import matplotlib.pyplot as plt
>>> fig, ax = plt.subplots(figsize=(3, 2))
>>> _ = ax.plot([0, 1, 2], [0, 1, 0], "o")
>>> _ = place_labels(ax, [0, 1, 2], [0, 1, 0], ["a", "b", "c"])
>>> label_overlaps(ax)
[]
>>> _ = ax.annotate("b again", (1, 1))  # over the top marker, and past the top of the axes
>>> for problem in label_overlaps(ax):
...     print(problem)
'b again' covers a marker at (1, 1)
'b again' runs outside the axes
>>> plt.close(fig)
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import PathCollection
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox

#: Offsets (dx, dy) in points from the point, tried in this order; the alignment follows the sign.
CANDIDATES: tuple[tuple[float, float], ...] = (
    (3, 4), (3, -4), (-3, 4), (-3, -4), (0, 7), (0, -7), (6, 0), (-6, 0),
    (3, 12), (3, -12), (-3, 12), (-3, -12), (0, 18), (0, -18),
)


def _alignment(dx: float, dy: float) -> dict:
    ha = "left" if dx > 0 else "right" if dx < 0 else "center"
    va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
    return dict(ha=ha, va=va)


def _markers(ax: plt.Axes) -> list[tuple[Bbox, tuple[float, float]]]:
    """Display-space boxes of every marker drawn on ax (scatter points and line markers)."""
    boxes = []
    points_to_px = ax.figure.dpi / 72
    for coll in ax.collections:
        if not isinstance(coll, PathCollection) or len(coll.get_offsets()) == 0:
            continue
        sizes = coll.get_sizes() if len(coll.get_sizes()) else [20.0]
        for k, xy in enumerate(np.asarray(coll.get_offsets())):
            r = np.sqrt(sizes[k % len(sizes)]) / 2 * points_to_px  # s is an area in points^2
            px, py = ax.transData.transform(xy)
            boxes.append((Bbox.from_extents(px - r, py - r, px + r, py + r), tuple(xy)))
    for line in ax.lines:
        if line.get_marker() in (None, "None", "", " "):
            continue
        r = line.get_markersize() / 2 * points_to_px
        for xy in np.column_stack([line.get_xdata(), line.get_ydata()]):
            px, py = ax.transData.transform(xy)
            boxes.append((Bbox.from_extents(px - r, py - r, px + r, py + r), tuple(xy)))
    return boxes


def _text_box(text: Annotation, renderer) -> Bbox:
    return text.get_window_extent(renderer)


def _fmt(xy) -> str:
    return "(" + ", ".join(f"{v:.3g}" for v in xy) + ")"


def place_labels(ax: plt.Axes, x: Sequence[float], y: Sequence[float], labels: Sequence[str], *,
                 candidates: Sequence[tuple[float, float]] = CANDIDATES, **text_kw) -> list[Annotation]:
    """Write labels[i] beside (x[i], y[i]) where it collides with nothing; returns the texts.

    Call it after the markers are drawn and the axis limits are set. Each label takes the first
    of ``candidates`` (offsets in points) that overlaps no label placed before it, no marker and
    stays inside the axes; if none does, the one with the least overlap.
    """
    if not len(x) == len(y) == len(labels):
        raise ValueError(f"x, y and labels must be equally long, got {len(x)}, {len(y)}, {len(labels)}")
    text_kw = {"fontsize": 7, **text_kw}
    renderer = ax.figure.canvas.get_renderer()
    ax.figure.canvas.draw()
    obstacles = [box for box, _ in _markers(ax)]
    obstacles += [_text_box(t, renderer) for t in ax.texts if isinstance(t, Annotation)]
    if ax.get_legend() is not None:
        obstacles.append(ax.get_legend().get_window_extent(renderer))
    inside = ax.get_window_extent(renderer)
    placed: list[Annotation] = []
    for xi, yi, label in zip(x, y, labels, strict=True):
        best, best_cost = None, None
        for dx, dy in candidates:
            text = ax.annotate(label, (xi, yi), xytext=(dx, dy), textcoords="offset points",
                               **_alignment(dx, dy), **text_kw)
            box = _text_box(text, renderer)
            cost = sum(_area(box, o) for o in obstacles) + _outside(box, inside)
            if best_cost is None or cost < best_cost:
                if best is not None:
                    best.remove()
                best, best_cost = text, cost
            else:
                text.remove()
            if cost == 0:
                break
        obstacles.append(_text_box(best, renderer))
        placed.append(best)
    return placed


def _area(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0.0) * max(h, 0.0)


def _outside(box: Bbox, frame: Bbox) -> float:
    return box.width * box.height - _area(box, frame)


def label_overlaps(ax: plt.Axes, tolerance: float = 0.5) -> list[str]:
    """Every collision of the annotations on ax: with each other, with markers, with the frame.

    Only :class:`~matplotlib.text.Annotation` texts count (tick labels and the legend are laid
    out by matplotlib). Overlaps smaller than ``tolerance`` square pixels are ignored.
    """
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    texts = [t for t in ax.texts if isinstance(t, Annotation) and t.get_visible()]
    boxes = [_text_box(t, renderer) for t in texts]
    frame = ax.get_window_extent(renderer)
    found = []
    for i, (ti, bi) in enumerate(zip(texts, boxes, strict=True)):
        for tj, bj in zip(texts[i + 1:], boxes[i + 1:], strict=True):
            if _area(bi, bj) > tolerance:
                found.append(f"{ti.get_text()!r} overlaps {tj.get_text()!r}")
        for box, xy in _markers(ax):
            if _area(bi, box) > tolerance:
                found.append(f"{ti.get_text()!r} covers a marker at {_fmt(xy)}")
        if _outside(bi, frame) > tolerance:
            found.append(f"{ti.get_text()!r} runs outside the axes")
    return found
