"""One preset mechanism for every config, and one answer to "how long a context does this model take"."""

import numpy as np
import pytest
import torch

from llm_lessons.bert import BertConfig
from llm_lessons.configs import ModelConfig, Presets, block_size_of
from llm_lessons.evaluation.markov_source import MarkovConfig
from llm_lessons.evaluation.probe import ProbeConfig
from llm_lessons.frontiers.modern_gpt import ModernConfig
from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.ngram import NGramLM
from llm_lessons.plotting.playground import DecodingSettings
from llm_lessons.training import TrainConfig

CONFIGS = [TrainConfig, MarkovConfig, ProbeConfig, DecodingSettings, GPTConfig, BertConfig, ModernConfig]


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
    assert TrainConfig.preset("nano", max_steps=10, warmup_steps=5, seq_warmup_steps=5).max_steps == 10


def test_block_size_of_reads_and_checks_what_the_model_states():
    gpt = GPT(GPTConfig(vocab_size=5, block_size=7, n_layer=1, n_head=1, n_embd=4))
    assert block_size_of(gpt) == 7
    assert block_size_of(NGramLM(order=3)) == 2  # an n-gram's context: order - 1 tokens

    class Stated:
        block_size = np.int64(4)

    assert block_size_of(Stated()) == 4 and type(block_size_of(Stated())) is int
    for bad in (None, 0, True, 2.0, "8"):
        Stated.block_size = bad
        with pytest.raises(TypeError, match=r"Stated must expose block_size \(an int >= 1\)"):
            block_size_of(Stated())
    with pytest.raises(TypeError, match="Linear must expose block_size"):
        block_size_of(torch.nn.Linear(2, 2))
