"""One preset mechanism for every config."""

import pytest

from llm_lessons.bert import BertConfig
from llm_lessons.configs import ModelConfig, Presets
from llm_lessons.evaluation.markov_source import MarkovConfig
from llm_lessons.evaluation.probe import ProbeConfig
from llm_lessons.gpt import GPTConfig
from llm_lessons.plotting.playground import DecodingSettings
from llm_lessons.training import TrainConfig

CONFIGS = [TrainConfig, MarkovConfig, ProbeConfig, DecodingSettings, GPTConfig, BertConfig]


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_config_builds_its_presets_with_the_one_mixin(cls):
    assert issubclass(cls, Presets)
    assert cls.preset.__func__ is Presets.preset.__func__  # no private copy of preset()
    extra = {"vocab_size": 11} if issubclass(cls, ModelConfig) else {}
    for name, values in cls.presets.items():
        assert cls.preset(name, **extra) == cls(**{**values, **extra})  # the dict, field for field
    with pytest.raises(ValueError, match=rf"unknown {cls.family} preset 'huge'; choose from "):
        cls.preset("huge")


def test_overrides_win_and_a_model_preset_needs_the_vocabulary_size():
    assert TrainConfig.preset("small", lr=1e-4).lr == 1e-4
    assert GPTConfig.preset("nano", vocab_size=11, n_layer=1).n_layer == 1
    with pytest.raises(ValueError, match=r"preset 'nano' needs vocab_size=\.\.\., the tokenizer's"):
        GPTConfig.preset("nano")
    assert TrainConfig.preset("nano") == TrainConfig()  # only model configs require a field

