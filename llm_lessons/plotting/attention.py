"""Attention maps, heatmaps of heads and positional encodings, and bertviz views (sections 4.1-4.2)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt

from llm_lessons.plotting.style import as_numpy, book_style, heatmap, new_axes


def plot_attention(weights, tokens: Sequence[str], ax: plt.Axes | None = None, *,
                   query_tokens: Sequence[str] | None = None, title: str = "",
                   annotate: bool = False, colorbar: bool = True) -> plt.Axes:
    """Heatmap of one head's attention weights (T, S): row = query token, column = key token.

    ``tokens`` label the S keys (and the queries too, unless ``query_tokens`` is given, as with
    a key-value cache or cross-attention). Colours run from 0 to 1, the range of a weight.

    >>> ax = plot_attention([[1.0, 0.0], [0.3, 0.7]], ["I", "am"])
    >>> ax.get_ylabel()
    'query'
    """
    w = as_numpy(weights)
    if w.ndim != 2:
        raise ValueError(f"plot_attention takes one head's weights (T, S), got shape {w.shape}")
    rows = list(tokens) if query_tokens is None else list(query_tokens)
    if len(tokens) != w.shape[1] or len(rows) != w.shape[0]:
        raise ValueError(f"weights of shape {w.shape} need {w.shape[0]} query and {w.shape[1]} key "
                         f"tokens, got {len(rows)} and {len(tokens)}")
    return heatmap(w, ax, xlabels=tokens, ylabels=rows, xlabel="key", ylabel="query", title=title,
                   cmap="Blues", vmin=0.0, vmax=1.0, colorbar=colorbar, annotate=annotate)


def plot_attention_heads(weights, tokens: Sequence[str], *, ncols: int = 4,
                         titles: Sequence[str] | None = None, size: float = 2.6):
    """One small attention heatmap per head of a layer (nh, T, S); returns the Axes array.

    >>> axes = plot_attention_heads([[[1.0, 0.0], [0.5, 0.5]]] * 2, ["a", "b"], ncols=2)
    >>> [ax.get_title() for ax in axes.flat]
    ['head 0', 'head 1']
    """
    import numpy as np

    w = as_numpy(weights)
    if w.ndim != 3:
        raise ValueError(f"plot_attention_heads takes one layer's weights (nh, T, S), got {w.shape}")
    nh = w.shape[0]
    titles = [f"head {h}" for h in range(nh)] if titles is None else list(titles)
    ncols = min(ncols, nh)
    nrows = -(-nh // ncols)
    with book_style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False,
                                 layout="constrained")
    for h, ax in enumerate(axes.flat):
        if h >= nh:
            ax.set_axis_off()
            continue
        plot_attention(w[h], tokens, ax, title=titles[h], colorbar=False)
        if h % ncols:
            ax.set_ylabel("")
            ax.set_yticklabels([])
        if h < nh - ncols:
            ax.set_xlabel("")
    return np.asarray(axes)


def plot_encoding_dimensions(pe, dims: Sequence[int], start: int = 0, ax: plt.Axes | None = None,
                             *, title: str = "") -> plt.Axes:
    """Plot columns ``dims`` of a positional-encoding table (positions, d) against position.

    ``start`` is the position of the table's first row (to show a window of a long table).

    >>> import numpy as np
    >>> plot_encoding_dimensions(np.zeros((5, 4)), dims=[0, 1]).get_xlabel()
    'position'
    """
    import numpy as np

    table = as_numpy(pe)
    if table.ndim != 2:
        raise ValueError(f"expected an encoding table (positions, d), got shape {table.shape}")
    bad = [d for d in dims if not 0 <= d < table.shape[1]]
    if bad:
        raise ValueError(f"dimensions {bad} out of range for a table with {table.shape[1]} columns")
    ax = new_axes(ax)
    pos = np.arange(start, start + table.shape[0])
    for d in dims:
        ax.plot(pos, table[:, d], label=f"dim {d} ({'sin' if d % 2 == 0 else 'cos'})")
    ax.set(xlabel="position", ylabel="encoding value", title=title, ylim=(-1.1, 1.1))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: the curves fill the box
    return ax


def bertviz_view(weights, tokens: Sequence[str], kind: str = "head", decimals: int = 3):
    """A bertviz ``head_view`` or ``model_view`` of attention (L, nh, T, T), as displayable HTML.

    Weights are rounded to ``decimals`` (in float64, so the page stays small and the same on
    every machine). ``model_view`` uses bertviz's light mode, to match the page. The view loads
    require.js and d3 from a CDN when the page is opened.
    """
    import torch
    from bertviz import head_view, model_view

    w = torch.as_tensor(as_numpy(weights))
    if w.dim() == 3:
        w = w[None]  # (nh, T, T) -> (1, nh, T, T): a single layer
    if w.dim() != 4 or w.shape[-1] != w.shape[-2] or w.shape[-1] != len(tokens):
        raise ValueError(f"expected self-attention weights (L, nh, T, T) for {len(tokens)} tokens, "
                         f"got shape {tuple(w.shape)}")
    layers = tuple(layer[None].round(decimals=decimals) for layer in w)  # L x (1, nh, T, T)
    if kind == "head":
        return head_view(layers, list(tokens), html_action="return")
    if kind == "model":  # bertviz draws model_view on black by default; match the light page
        return model_view(layers, list(tokens), display_mode="light", html_action="return")
    raise ValueError(f"kind must be 'head' or 'model', got {kind!r}")


