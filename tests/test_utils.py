import pytest
import torch

from llm_lessons import get_device, set_seed


def test_cpu_always_available():
    assert get_device("cpu") == torch.device("cpu")


def test_env_var_overrides_automatic_choice(monkeypatch):
    monkeypatch.setenv("LLM_LESSONS_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")


def test_automatic_choice_prefers_accelerators(monkeypatch):
    monkeypatch.delenv("LLM_LESSONS_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert get_device().type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_device_raises_clearly(monkeypatch):
    with pytest.raises(RuntimeError, match="not available"):
        get_device("cuda")
    monkeypatch.setenv("LLM_LESSONS_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="LLM_LESSONS_DEVICE"):
        get_device()


def test_malformed_device_string_raises():
    with pytest.raises(RuntimeError):
        get_device("gpu-please")


def test_set_seed_repeats_random_streams():
    set_seed(123)
    a = (torch.rand(3), torch.randn(2))
    set_seed(123)
    b = (torch.rand(3), torch.randn(2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
