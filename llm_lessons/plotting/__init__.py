"""The book's figures (presentation layer): one house style and small helpers that return Axes.

Every helper draws on an Axes it is given (or makes one) and *returns* it, so lessons can
compose figures and tests can inspect them; nothing here calls ``plt.show()``. The helpers live
in one module per topic and are all importable from here:

- :mod:`~llm_lessons.plotting.style`: the style, line plots, reference lines, heatmaps (every
  chapter; first in 1, model sizes over time)
- :mod:`~llm_lessons.plotting.attention`: attention maps, positional encodings, bertviz views
  (2.3, 4.1, 4.2)
- :mod:`~llm_lessons.plotting.decoding`: what a decoding filter keeps (4.3)
- :mod:`~llm_lessons.plotting.training`: loss curves, live during training (3.2, 3.3)
- :mod:`~llm_lessons.plotting.evaluation`: reliability diagrams, intervals, evaluation windows
  (2.4)
- :mod:`~llm_lessons.plotting.labels`: point labels placed without collisions, and the check
  (1, 4.3)

Two interactive modules build on these (ipywidgets is imported inside their functions, and
each also draws a static figure for the rendered book); they are imported by name, not here:

- :mod:`~llm_lessons.plotting.widgets`: attention and positional-encoding explorers (4.1, 4.2)
- :mod:`~llm_lessons.plotting.playground`: the decoding playground, every knob (4.3)
"""

from llm_lessons.plotting.attention import (
    bertviz_view,
    plot_attention,
    plot_attention_heads,
    plot_encoding_dimensions,
)
from llm_lessons.plotting.decoding import plot_distribution_filter, readable_token
from llm_lessons.plotting.evaluation import plot_intervals, plot_reliability, plot_token_windows
from llm_lessons.plotting.labels import label_overlaps, place_labels
from llm_lessons.plotting.style import (
    PALETTE,
    STYLE,
    as_numpy,
    book_style,
    heatmap,
    labelled_scatter,
    line_plot,
    new_axes,
    reference_lines,
    use_book_style,
)
from llm_lessons.plotting.training import LiveLossPlot, plot_history

__all__ = [
    "PALETTE", "STYLE", "LiveLossPlot", "as_numpy", "bertviz_view", "book_style", "heatmap",
    "label_overlaps", "labelled_scatter", "line_plot", "new_axes", "place_labels",
    "plot_attention", "plot_attention_heads", "plot_distribution_filter",
    "plot_encoding_dimensions", "plot_history", "plot_intervals", "plot_reliability",
    "plot_token_windows", "readable_token", "reference_lines", "use_book_style",
]
