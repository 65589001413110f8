"""Numeric fingerprints and the re-run check used by the training notebooks."""

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.reproducibility import compare_to_reference, numeric_fingerprint, same_numeric_path
from llm_lessons.resources import BERT_SHAKESPEARE, GPT_SHAKESPEARE, resource_path

TINY = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16)


def fingerprint_in_subprocess(**env: str) -> dict:
    code = ("import json; from llm_lessons.reproducibility import numeric_fingerprint as f; "
            "print(json.dumps(f()))")
    clean = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def test_fingerprint_names_what_decides_the_bits():
    fp = numeric_fingerprint()
    assert fp["torch"] == torch.__version__
    assert fp["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert all(isinstance(v, str) and v for k, v in fp.items() if k != "cpu_features")
    assert same_numeric_path(fp) and not same_numeric_path(None)
    assert not same_numeric_path({**fp, "blas": "x"})


def test_simulated_other_cpu_has_another_fingerprint():
    """The environment variables the test command uses to simulate another CPU change the fingerprint."""
    here = fingerprint_in_subprocess()
    other = fingerprint_in_subprocess(ATEN_CPU_CAPABILITY="default", MKL_CBWR="COMPATIBLE")
    assert other["cpu_capability"] == "DEFAULT" and other["blas_mode"] == "COMPATIBLE"
    assert here["blas_mode"] == "auto"
    assert not same_numeric_path(here, other)
    assert {k: v for k, v in here.items() if k not in ("cpu_capability", "blas_mode")} == \
        {k: v for k, v in other.items() if k not in ("cpu_capability", "blas_mode")}


def models(seed_a: int, seed_b: int) -> tuple[GPT, GPT]:
    torch.manual_seed(seed_a)
    a = GPT(TINY).eval()
    torch.manual_seed(seed_b)
    return a, GPT(TINY).eval()


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, TINY.vocab_size, (4, TINY.block_size), generator=g), \
        torch.randint(0, TINY.vocab_size, (4, TINY.block_size), generator=g)


def test_same_path_demands_bit_identity():
    a, b = models(0, 0)
    x, y = batch()
    assert compare_to_reference(a, b, x, y, numeric_fingerprint()).ok
    with torch.no_grad():
        b.lm_head.weight[0, 0] += 1e-6  # one weight, one part in a million: still not the same run
    result = compare_to_reference(a, b, x, y, numeric_fingerprint())
    assert not result.bit_identical and not result.ok
    assert "bit-identical weights: False" in result.report()


def test_other_path_uses_tolerances_and_says_so():
    a, b = models(0, 0)
    with torch.no_grad():
        for p in b.parameters():
            p.mul_(1 + 1e-5)  # the size of drift another CPU produces in a short run
    x, y = batch()
    result = compare_to_reference(a, b, x, y, recorded={"torch": "another machine"})
    assert not result.same_path and not result.bit_identical and result.ok
    assert "another numeric path" in result.report()
    # the loss it reports is the ordinary cross-entropy, computed here independently
    with torch.no_grad():
        expected = F.cross_entropy(a(x)[0].flatten(0, 1), y.flatten()).item()
    assert result.loss == pytest.approx(expected, abs=1e-6)


def test_a_model_from_another_seed_is_refused():
    """Top-1 agreement tells a faithful re-run from an unrelated model of similar loss."""
    a, b = models(0, 1)
    x, y = batch()
    result = compare_to_reference(a, b, x, y, recorded=None, loss_tol=1.0)
    assert abs(result.loss - result.reference_loss) < 1.0  # the loss test alone would pass
    assert result.top1 < 0.9 and not result.ok


def test_ignored_targets_are_left_out_of_the_top1_count():
    a, b = models(0, 0)
    x, y = batch()
    y[:, ::2] = -100
    result = compare_to_reference(a, b, x, y, recorded=None)
    assert result.top1 == 1.0 and result.ok


def test_bad_shapes_and_mismatched_models_are_refused():
    a, _ = models(0, 0)
    x, y = batch()
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        compare_to_reference(a, a, x[0], y[0], None)
    other = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16))
    with pytest.raises(ValueError, match="different parameters"):
        compare_to_reference(a, other, x, y, None)


@pytest.mark.parametrize("name", [GPT_SHAKESPEARE, BERT_SHAKESPEARE])
def test_shipped_checkpoints_record_their_fingerprint(name):
    meta = json.loads(resource_path(name).with_suffix(".json").read_text(encoding="utf-8"))
    recorded = meta["extra"]["training"]["numeric_fingerprint"]
    assert set(recorded) == set(numeric_fingerprint())
    assert recorded["torch"] == meta["extra"]["training"]["torch"]
