"""Training under faults: Ctrl-C returns the partial history, a resumed run ends with exactly
the weights of an uninterrupted one, a non-finite loss stops at its step with the weights
untouched, and bad configs are refused by name."""

import math

import pytest
import torch

from llm_lessons.bert import BertConfig, MaskedLM
from llm_lessons.gpt import GPT, GPTConfig
from llm_lessons.mlm_data import MaskedWindows
from llm_lessons.training import NonFiniteLossError, TrainConfig, evaluate, random_windows, train

CFG = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16, dropout=0.1)
DATA = (torch.arange(300) * 7 + torch.arange(300) // 5) % 11
RUN = TrainConfig(max_steps=12, batch_size=4, warmup_steps=2, eval_interval=4, eval_batches=2,
                  eval_batch_size=4, progress=False)


def _gpt(seed=0, cls=GPT):
    torch.manual_seed(seed)
    return cls(CFG)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _interrupt_at(call):
    calls = [0]

    def batch_fn(*args):
        calls[0] += 1
        if calls[0] == call:
            raise KeyboardInterrupt
        return random_windows(*args)
    return batch_fn


@pytest.mark.parametrize("stop_step, saved_steps", [(6, [0, 4]), (1, [0])])
def test_resume_after_ctrl_c_gives_exactly_the_uninterrupted_weights(tmp_path, stop_step, saved_steps):
    reference = _gpt()
    torch.manual_seed(123)  # dropout draws from the global RNG
    full = train(reference, DATA, DATA, RUN)
    state = tmp_path / "run_state"
    model = _gpt()
    torch.manual_seed(123)
    # 2 x 2 evaluation batches are drawn first; call 4 + s + 1 is training step s
    partial = train(model, DATA, DATA, RUN, batch_fn=_interrupt_at(4 + stop_step + 1), state_path=state)
    assert partial.interrupted_at == stop_step and not model.training
    assert len(partial.step_loss) == stop_step and partial.steps == saved_steps
    torch.manual_seed(999)  # a different global RNG (dropout) and a different model: both restored
    resumed_model = _gpt(seed=5)
    resumed = train(resumed_model, DATA, DATA, RUN, state_path=state)
    assert resumed.interrupted_at is None
    for k, v in _weights(reference).items():
        assert torch.equal(v, resumed_model.state_dict()[k]), k
    assert resumed.step_loss == full.step_loss and resumed.val_loss == full.val_loss
    assert resumed.steps == full.steps == [0, 4, 8, 12]
    again = train(_gpt(seed=7), DATA, DATA, RUN, state_path=state)  # a finished run stays finished
    assert again.step_loss == full.step_loss


def test_resume_refuses_another_config(tmp_path):
    state = tmp_path / "s"
    train(_gpt(), DATA, DATA, RUN, state_path=state)
    with pytest.raises(ValueError, match=r"differs in \['lr'\]"):
        train(_gpt(), DATA, DATA, TrainConfig(**{**RUN.__dict__, "lr": 1e-3}), state_path=state)


class _Flaky(GPT):
    """A GPT whose 4th training forward returns a NaN loss; it remembers its weights then."""

    calls, snapshot = 0, None

    def forward(self, idx, targets=None, cache=None):
        logits, loss = super().forward(idx, targets, cache)
        if self.training:
            type(self).calls += 1
            if type(self).calls == 4:
                type(self).snapshot = _weights(self)
                loss = loss * float("nan")
        return logits, loss


def test_non_finite_loss_stops_at_its_step_with_the_weights_untouched():
    model = _gpt(cls=_Flaky)
    with pytest.raises(NonFiniteLossError, match="training loss is not finite at step 3") as err:
        train(model, DATA, DATA, RUN)
    assert err.value.step == 3 and len(err.value.history.step_loss) == 3
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in _Flaky.snapshot.items())
    assert all(math.isfinite(x) for x in err.value.history.step_loss) and not model.training


class _NaNGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("nan")


class _BadGrad(GPT):
    def forward(self, idx, targets=None, cache=None):
        logits, loss = super().forward(idx, targets, cache)
        return logits, _NaNGrad.apply(loss)


def test_non_finite_gradient_stops_before_the_optimizer_step():
    model = _gpt(cls=_BadGrad)
    before = _weights(model)
    with pytest.raises(NonFiniteLossError, match="gradient norm is not finite at step 0"):
        train(model, DATA, DATA, RUN)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_other_exceptions_leave_eval_mode_and_carry_the_history():
    def boom(*args, calls=[0]):  # noqa: B006 - a counter
        calls[0] += 1
        if calls[0] == 4 + 3:
            raise RuntimeError("disk gone")
        return random_windows(*args)
    model = _gpt()
    with pytest.raises(RuntimeError, match="disk gone") as err:
        train(model, DATA, DATA, RUN, batch_fn=boom)
    assert len(err.value.history.step_loss) == 2 and not model.training


@pytest.mark.parametrize("change, error", [
    ({"lr": float("inf")}, ValueError), ({"lr": float("nan")}, ValueError), ({"lr": 0}, ValueError),
    ({"grad_clip": -1.0}, ValueError), ({"betas": (1.0, 0.9)}, ValueError), ({"seed": True}, ValueError),
    ({"batch_size": 0}, ValueError), ({"max_steps": 1.5}, ValueError), ({"weight_decay": -0.1}, ValueError),
    ({"min_lr_ratio": float("nan")}, ValueError), ({"progress": "yes"}, TypeError),
    ({"lr": "3e-3"}, TypeError),
])
def test_bad_configs_are_refused_by_name(change, error):
    name = next(iter(change))
    with pytest.raises(error, match=name):
        TrainConfig(**{**RUN.__dict__, **change})


def test_evaluate_refuses_empty_batches():
    model = _gpt()
    for kwargs in ({"num_batches": 0}, {"batch_size": 0}, {"num_batches": -1}, {"batch_size": 2.0}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            evaluate(model, DATA, **kwargs)


def test_masked_lm_training_with_tiny_batches_always_has_a_target():
    fn = MaskedWindows(mask_id=11, vocab_size=12, p=0.05)
    gen = torch.Generator().manual_seed(0)
    assert all(bool((fn(DATA, 1, 4, gen)[1] != -100).any()) for _ in range(200))
    torch.manual_seed(0)
    model = MaskedLM(BertConfig(vocab_size=12, block_size=4, n_layer=1, n_head=2, n_embd=8))
    history = train(model, DATA, DATA, TrainConfig(**{**RUN.__dict__, "batch_size": 1, "block_size": 4,
                                                      "eval_batch_size": 1}), batch_fn=fn)
    assert len(history.step_loss) == RUN.max_steps and all(map(math.isfinite, history.step_loss))
    with pytest.raises(ValueError, match="selected no position"):
        MaskedWindows(mask_id=11, vocab_size=12, p=1e-12)(DATA, 1, 2, gen)
