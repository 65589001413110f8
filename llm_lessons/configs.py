"""What every model config shares: named size presets, a dict round trip and size checks.

A model's config is a typed dataclass that inherits :class:`ModelConfig` and names its presets
and its family (used in error messages):

>>> from dataclasses import dataclass
>>> @dataclass
... class ToyConfig(ModelConfig):
...     family = "toy"
...     presets = {"tiny": {"n_embd": 8}}
...     vocab_size: int = 0
...     n_embd: int = 4
>>> ToyConfig.preset("tiny", vocab_size=5)
ToyConfig(vocab_size=5, n_embd=8)
>>> ToyConfig.from_dict({"vocab_size": 5, "n_embd": 8}).to_dict()
{'vocab_size': 5, 'n_embd': 8}
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import ClassVar


class ModelConfig:
    """Mixin for model-config dataclasses (``family`` and ``presets`` are class attributes)."""

    family: ClassVar[str] = "model"
    presets: ClassVar[dict[str, dict]] = {}

    @classmethod
    def preset(cls, name: str, **overrides):
        """A named size with ``overrides`` applied; ``vocab_size`` is required unless preset."""
        if name not in cls.presets:
            raise ValueError(f"unknown {cls.family} preset {name!r}; choose from {sorted(cls.presets)}")
        values = {**cls.presets[name], **overrides}
        if "vocab_size" not in values:
            raise ValueError(f"preset {name!r} needs vocab_size=..., the tokenizer's vocabulary size")
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        """Rebuild a config from :meth:`to_dict`'s output, refusing unknown fields by name."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; expected {sorted(known)}")
        return cls(**values)

    def check_positive_ints(self, *names: str) -> None:
        """Raise a ValueError naming the first of ``names`` that is not a positive int."""
        for name in names:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{type(self).__name__}.{name} must be a positive int, got {value!r}")
