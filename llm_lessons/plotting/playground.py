"""The decoding playground of section 4.3: every knob, its next-token distribution and its text.

Presentation layer: matplotlib comes through ``llm_lessons.plotting`` and ipywidgets is
imported inside :func:`decoding_playground`. :func:`draw_decoding` draws the same panel
statically, for the rendered book.

>>> DecodingSettings.preset("nucleus").top_p
0.9
"""

from __future__ import annotations

import textwrap
from dataclasses import asdict, dataclass, replace
from typing import ClassVar

import torch

from llm_lessons.configs import Presets, block_size_of
from llm_lessons.plotting import new_axes, plot_distribution_filter
from llm_lessons.reproducibility import eval_mode, model_device
from llm_lessons.sampling import generate, process_logits

#: Named settings: argmax; the model's own distribution; common "safe" recipes.
PRESETS: dict[str, dict] = {
    "greedy": dict(temperature=0.0),
    "pure": dict(),
    "cold": dict(temperature=0.5),
    "top_k": dict(top_k=10),
    "nucleus": dict(top_p=0.9),
    "min_p": dict(min_p=0.1),
    "penalised": dict(temperature=0.7, repetition_penalty=1.3),
}


@dataclass
class DecodingSettings(Presets):
    """Knobs of :func:`llm_lessons.sampling.generate`; ``None`` or 1.0 switch a knob off."""

    family: ClassVar[str] = "decoding"
    presets: ClassVar[dict[str, dict]] = PRESETS

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    repetition_penalty: float = 1.0
    seed: int = 0
    max_new_tokens: int = 160

    def knobs(self) -> dict:
        """The keyword arguments of process_logits/generate (no seed or length)."""
        d = asdict(self)
        d.pop("seed"), d.pop("max_new_tokens")
        return d


def _encode(model, tokenizer, prompt: str) -> torch.Tensor:
    ids = tokenizer.encode(prompt)
    if not ids:
        raise ValueError("the prompt is empty: give the model at least one token to continue")
    return torch.tensor([ids], dtype=torch.long, device=model_device(model))  # (1, T)


@torch.no_grad()
def continue_text(model, tokenizer, prompt: str,
                  settings: DecodingSettings) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The next-token logits after ``prompt`` (V,), the same after the knobs, and the continuation."""
    idx = _encode(model, tokenizer, prompt)
    with eval_mode(model):
        logits = model(idx[:, -block_size_of(model):])[0][0, -1].float()  # (1, T, V) -> (V,)
    knobs = settings.knobs()
    filtered = process_logits(logits, idx[0], **knobs)
    gen = torch.Generator(device=idx.device).manual_seed(settings.seed)
    out = generate(model, idx, settings.max_new_tokens, generator=gen, **knobs)
    return logits, filtered, tokenizer.decode(out[0, idx.shape[1]:].tolist())


def draw_decoding(model, tokenizer, prompt: str, settings: DecodingSettings, *, top: int = 20,
                  width: int = 44, axes=None):
    """Left: the filtered next-token distribution after ``prompt``; right: the generated text.

    Returns the two Axes. ``width`` is the text column's wrap width in characters.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1.25, 1]})
    logits, filtered, text = continue_text(model, tokenizer, prompt, settings)
    labels = [tokenizer.decode([i]) for i in range(logits.shape[-1])]
    shown = {k: v for k, v in settings.knobs().items() if v not in (None, 1.0)}
    plot_distribution_filter(logits, filtered, labels, top=top, ax=axes[0],
                             title=", ".join(f"{k}={v}" for k, v in shown.items()) or "no filter")
    ax = new_axes(axes[1])
    ax.axis("off")
    lines = [piece for line in (prompt + "|" + text).split("\n")
             for piece in (textwrap.wrap(line, width, drop_whitespace=False) or [""])]
    ax.text(0, 1, "\n".join(lines[:18]), family="monospace", fontsize=8, va="top", ha="left",
            transform=ax.transAxes)
    ax.set_title(f"prompt|continuation (seed {settings.seed})", fontsize=9)
    return axes


def decoding_playground(model, tokenizer, prompt: str = "ROMEO:\n", settings: DecodingSettings | None = None):
    """Widgets for the prompt and every knob, above the panel :func:`draw_decoding` draws.

    top-k 0 and top-p 1 mean "off". Returns an ``ipywidgets.VBox``: make it a cell's last value.
    """
    import ipywidgets as widgets
    from IPython.display import display

    s = settings or DecodingSettings()
    style = {"description_width": "110px"}
    controls = dict(
        prompt=widgets.Textarea(value=prompt, description="prompt", style=style),
        temperature=widgets.FloatSlider(value=s.temperature, min=0.0, max=2.0, step=0.05,
                                        description="temperature", style=style),
        top_k=widgets.IntSlider(value=s.top_k or 0, min=0, max=50, description="top-k (0 = off)",
                                style=style),
        top_p=widgets.FloatSlider(value=s.top_p or 1.0, min=0.05, max=1.0, step=0.05,
                                  description="top-p", style=style),
        repetition_penalty=widgets.FloatSlider(value=s.repetition_penalty, min=0.5, max=2.0, step=0.05,
                                               description="repetition pen.", style=style),
        seed=widgets.IntText(value=s.seed, description="seed", style=style),
    )
    out = widgets.Output()

    def redraw(**values):
        chosen = replace(s, temperature=values["temperature"], top_k=values["top_k"] or None,
                         top_p=None if values["top_p"] >= 1.0 else values["top_p"],
                         repetition_penalty=values["repetition_penalty"], seed=values["seed"])
        with out:
            out.clear_output(wait=True)
            import matplotlib.pyplot as plt

            try:
                axes = draw_decoding(model, tokenizer, values["prompt"], chosen)
                display(axes[0].figure)
                plt.close(axes[0].figure)
            except ValueError as err:  # e.g. an empty prompt: say so instead of failing silently
                print(err)

    interactive = widgets.interactive_output(redraw, controls)
    return widgets.VBox([widgets.HBox([widgets.VBox(list(controls.values())[:3]),
                                       widgets.VBox(list(controls.values())[3:])]), out, interactive])
