"""DPO from scratch (chapter 8) against trl's DPOTrainer on the same batch: the book's GPT and its
frozen reference, converted to GPT-2 with the book's tokenizer, give trl the same loss."""

import warnings

import pytest
import torch

trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

from llm_lessons.frontiers.preference import dpo_loss, sequence_logprob  # noqa: E402
from llm_lessons.gpt import GPT, GPTConfig  # noqa: E402
from llm_lessons.interop.gpt2 import gpt_to_hf  # noqa: E402
from llm_lessons.interop.hf_tokenizer import char_tokenizer_to_hf  # noqa: E402
from llm_lessons.tokenizers import CharTokenizer  # noqa: E402

TOK = CharTokenizer("abcdefghijklmnopqrstuvwxyz .\n")
PAIRS = {"prompt": ["to be or", "what light", "fair is"],
         "chosen": [" not to be", " through yonder", " foul"],
         "rejected": [" yes", " dark", " fair and foul and fair"]}


def _gpt(seed):
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=TOK.vocab_size, block_size=64, n_layer=2, n_head=2, n_embd=16)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))  # far from uniform, so the log-probabilities differ
    return model


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_the_dpo_loss_is_trls_on_the_same_batch(beta, tmp_path):
    policy, reference = _gpt(0), _gpt(1)
    tokenizer = char_tokenizer_to_hf(TOK)
    tokenizer.pad_token, tokenizer.eos_token = "\n", "."  # trl ends every answer with eos
    args = trl.DPOConfig(output_dir=str(tmp_path), report_to=[], per_device_train_batch_size=3, beta=beta,
                         use_cpu=True, max_length=64, precompute_ref_log_probs=False,
                         bf16=False)  # trl turns on bf16 where the CPU has it; the comparison is in fp32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = trl.DPOTrainer(model=gpt_to_hf(policy), ref_model=gpt_to_hf(reference), args=args,
                                 train_dataset=datasets.Dataset.from_dict(PAIRS), processing_class=tokenizer)
        batch = next(iter(trainer.get_train_dataloader()))  # rows: 3 chosen, then 3 rejected
        theirs = trainer.compute_loss(trainer.model, batch)
    idx, mask = batch["input_ids"], batch["completion_mask"]
    # the same rows, read by the book's own models (right padding cannot affect a causal model)
    ours_policy, ours_ref = sequence_logprob(policy, idx, mask), sequence_logprob(reference, idx, mask)
    chosen, rejected = ours_policy.chunk(2), ours_ref.chunk(2)
    loss, reward_chosen, reward_rejected = dpo_loss(chosen[0], chosen[1], rejected[0], rejected[1], beta)
    assert loss.item() == pytest.approx(theirs.item(), abs=1e-5)
    assert torch.equal(reward_chosen, beta * (chosen[0] - rejected[0]).detach())


def test_the_sequence_logprob_sums_the_completion_only():
    model = _gpt(2)
    idx = torch.tensor([TOK.encode("to be or not")])
    mask = torch.zeros_like(idx)
    mask[0, 8:] = 1  # " not"
    logits, _ = model(idx)
    by_hand = sum(logits[0, t - 1].log_softmax(-1)[idx[0, t]] for t in range(8, idx.shape[1]))
    assert sequence_logprob(model, idx, mask).item() == pytest.approx(by_hand.item(), abs=1e-5)
    with pytest.raises(ValueError, match="one shape"):
        sequence_logprob(model, idx, mask[:, :-1])
    with pytest.raises(ValueError, match="beta must be positive"):
        dpo_loss(*(torch.zeros(1) for _ in range(4)), beta=0.0)
