"""What every config shares (named presets), what every model config adds (a dict round trip
and size checks), and the one reading of a model's context length (:func:`block_size_of`).

A config is a typed dataclass that inherits :class:`Presets` and names its presets and its
family (used in error messages); a model's config inherits :class:`ModelConfig`, whose presets
leave ``vocab_size`` to the tokenizer:

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
>>> ToyConfig.preset("huge")
Traceback (most recent call last):
...
ValueError: unknown toy preset 'huge'; choose from ['tiny']
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import ClassVar

from llm_lessons.validation import check_int

#: Upper bounds on sizes: far above any model of the book (GPT-2 XL has 48 layers and 1600
#: channels), low enough that a hostile checkpoint config cannot make a loader build a model of
#: absurd size. A size not named here is bounded by ``MAX_SIZE``.
MAX_SIZES: dict[str, int] = {"vocab_size": 2**20, "block_size": 2**20, "n_layer": 256,
                             "n_head": 1024, "n_embd": 2**15, "type_vocab_size": 2**10}
MAX_SIZE = 2**20


class Presets:
    """Mixin for config dataclasses: ``preset(name, **overrides)`` builds one from a named dict.

    Class attributes: ``family`` (what the presets are of, for messages), ``presets`` (name ->
    field values) and ``required`` (field -> what it is): fields no preset may fix, so a preset
    call must pass them (a model's vocabulary size is its tokenizer's, never a preset's).
    """

    family: ClassVar[str] = "config"
    presets: ClassVar[dict[str, dict]] = {}
    required: ClassVar[dict[str, str]] = {}

    @classmethod
    def preset(cls, name: str, **overrides):
        """The named preset with ``overrides`` applied on top."""
        if name not in cls.presets:
            raise ValueError(f"unknown {cls.family} preset {name!r}; choose from {sorted(cls.presets)}")
        values = {**cls.presets[name], **overrides}
        for field, what in cls.required.items():
            if field not in values:
                raise ValueError(f"preset {name!r} needs {field}=..., {what}")
        return cls(**values)


class ModelConfig(Presets):
    """Mixin for model-config dataclasses (``family`` and ``presets`` are class attributes)."""

    family: ClassVar[str] = "model"
    required: ClassVar[dict[str, str]] = {"vocab_size": "the tokenizer's vocabulary size"}

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

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
        """Raise a ValueError naming the first of ``names`` that is not an int in [1, its bound]."""
        for name in names:
            value, bound = getattr(self, name), MAX_SIZES.get(name, MAX_SIZE)
            try:
                check_int(value, name, low=1, high=bound)
            except ValueError:
                raise ValueError(f"{type(self).__name__}.{name} must be a positive int <= {bound}, "
                                 f"got {value!r}") from None


def block_size_of(model) -> int:
    """The longest context a model accepts: the ``block_size`` every model of the book states.

    A TypeError (not a ValueError) when it is missing or no positive int: the model, not an
    argument, is then of the wrong kind.

    >>> class Bigram:
    ...     block_size = 1
    >>> block_size_of(Bigram())
    1
    >>> block_size_of(object())
    Traceback (most recent call last):
    ...
    TypeError: object must expose block_size (an int >= 1), got None
    """
    size = getattr(model, "block_size", None)
    try:
        return check_int(size, "block_size", low=1)
    except ValueError:
        raise TypeError(f"{type(model).__name__} must expose block_size (an int >= 1), "
                        f"got {size!r}") from None
