"""Loss curves: after training, and live while a notebook trains (section 3.2)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt

from llm_lessons.plotting.style import STYLE, book_style, new_axes, reference_lines


def plot_history(history, references: Mapping[str, float] | None = None, *, title: str = "",
                 minibatch: bool = False, ax: plt.Axes | None = None) -> plt.Axes:
    """Train and validation loss of a :class:`llm_lessons.training.History` against the step.

    ``references`` draws labelled horizontal lines (e.g. the uniform, unigram and bigram losses);
    ``minibatch=True`` adds every step's minibatch loss as a thin grey line behind the curves.

    >>> from types import SimpleNamespace
    >>> h = SimpleNamespace(steps=[0, 100], train_loss=[4.2, 2.5], val_loss=[4.2, 2.6])
    >>> [line.get_label() for line in plot_history(h, {"bigram": 2.48}).get_lines()][:2]
    ['train', 'validation']
    """
    ax = new_axes(ax)
    if minibatch:
        ax.plot(range(len(history.step_loss)), history.step_loss, color="0.75", linewidth=0.5,
                label="minibatch (each step)")
    ax.plot(history.steps, history.train_loss, label="train")
    ax.plot(history.steps, history.val_loss, label="validation")
    if references:
        reference_lines(ax, references)
    ax.set(xlabel="step", ylabel="loss (nats per token)", title=title)
    ax.legend(loc="center")
    return ax


class LiveLossPlot:
    """A ``train(..., callback=LiveLossPlot(...))`` callback that redraws the loss curves in place.

    It shows one figure in the notebook and updates it at every evaluation (an IPython display
    handle), so readers watch the curves fall during training. Outside IPython it draws nothing.
    """

    def __init__(self, references: Mapping[str, float] | None = None, title: str = ""):
        from matplotlib.figure import Figure

        self.references, self.title = references, title
        with book_style():
            self.figure = Figure(figsize=STYLE["figure.figsize"], dpi=STYLE["figure.dpi"])
            self.ax = self.figure.add_subplot()
        self.handle = None

    def __call__(self, history) -> None:
        try:
            from IPython.display import display
        except ImportError:
            return None
        self.ax.clear()
        with book_style():
            plot_history(history, self.references, title=self.title, ax=self.ax)
        if self.handle is None:
            self.handle = display(self.figure, display_id=True)
        else:
            self.handle.update(self.figure)
        return None
