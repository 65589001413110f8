"""Interactive explorers for the attention and positional-encoding lessons (presentation layer).

ipywidgets is imported inside each function, so importing this module stays cheap. Each
explorer returns an ``ipywidgets.interactive``: display it (or make it a cell's last value) and
move the controls. Every figure an explorer draws comes from an ``llm_lessons.plotting``
helper, so a notebook can draw the same figure statically for readers without a kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from llm_lessons.plotting import new_axes, plot_attention, plot_encoding_dimensions
from llm_lessons.positional import inverse_frequencies, sinusoidal_encoding

AttentionFn = Callable[[str], "tuple[torch.Tensor, list[str]]"]


def _show() -> None:
    """Show the callback's figure now, inside the widget's output area.

    ipywidgets flushes inline figures itself only while matplotlib's interactive mode is on,
    and a ``plt.rc_context`` that first loads the inline backend switches it off again on exit.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    if matplotlib.get_backend().lower() != "agg":  # Agg (tests, scripts) has nowhere to show
        plt.show()


def attention_explorer(sentences: Sequence[str], attention_fn: AttentionFn):
    """Pick a sentence, a layer and a head; see that head's attention heatmap.

    ``attention_fn(sentence)`` returns ``(weights (L, nh, T, T), tokens)``, e.g.
    ``lambda s: attention_maps(model, tokenizer, s)`` from :mod:`llm_lessons.interop.minilm`. Results
    are computed once per sentence and remembered while the explorer lives.
    """
    import ipywidgets as widgets

    if not sentences:
        raise ValueError("attention_explorer needs at least one sentence")
    seen: dict[str, tuple[torch.Tensor, list[str]]] = {}

    def maps(sentence: str) -> tuple[torch.Tensor, list[str]]:
        if sentence not in seen:
            weights, tokens = attention_fn(sentence)
            if weights.dim() != 4:
                raise ValueError("attention_fn must return weights (L, nh, T, T), "
                                 f"got {tuple(weights.shape)}")
            seen[sentence] = weights, tokens
        return seen[sentence]

    L, nh = maps(sentences[0])[0].shape[:2]

    def show(sentence: str, layer: int, head: int):
        weights, tokens = maps(sentence)
        ax = new_axes(figsize=(5.2, 4.4))
        plot_attention(weights[layer, head], tokens, ax, title=f"layer {layer}, head {head}")
        _show()

    return widgets.interactive(
        show,
        sentence=widgets.Dropdown(options=list(sentences), description="sentence",
                                  layout=widgets.Layout(width="95%")),
        layer=widgets.IntSlider(min=0, max=L - 1, value=0, description="layer"),
        head=widgets.IntSlider(min=0, max=nh - 1, value=0, description="head"),
    )


def draw_encoding_window(d_model: int, dim: int, start: int, stop: int, base: float = 10000.0):
    """The static figure behind :func:`encoding_explorer`: columns ``dim`` and its sin/cos
    partner of the sinusoidal table over positions start .. stop-1, titled with the pair's
    wavelength. Returns the Axes."""
    if not 0 <= dim < d_model or not 0 <= start < stop:
        raise ValueError(f"need 0 <= dim < d_model and 0 <= start < stop, got dim={dim}, "
                         f"d_model={d_model}, start={start}, stop={stop}")
    pair = dim // 2
    wavelength = 2 * torch.pi / inverse_frequencies(d_model, base)[pair].item()
    pe = sinusoidal_encoding(stop, d_model, base)[start:]  # (stop - start, d_model)
    ax = new_axes(figsize=(6.4, 3.0))
    return plot_encoding_dimensions(pe, [2 * pair, 2 * pair + 1], start=start, ax=ax,
                                    title=f"pair {pair} of d_model={d_model}: wavelength "
                                          f"{wavelength:,.1f} positions")


def encoding_explorer(d_model: int = 64, max_position: int = 2048, base: float = 10000.0):
    """Slide over dimensions and position windows of the sinusoidal encoding.

    Low dimensions oscillate every few positions; high ones barely move over thousands.
    """
    import ipywidgets as widgets

    def show(dim: int, window: tuple[int, int]):
        draw_encoding_window(d_model, dim, window[0], window[1] + 1, base)
        _show()

    return widgets.interactive(
        show,
        dim=widgets.IntSlider(min=0, max=d_model - 1, value=0, description="dimension"),
        window=widgets.IntRangeSlider(min=0, max=max_position - 1, value=(0, 100),
                                      description="positions", layout=widgets.Layout(width="95%")),
    )
