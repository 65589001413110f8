"""Any model of the book's interface, evaluated by lm-evaluation-harness (``lm_eval``), offline.

Shapes use fixed letters: B batch (requests), T time (tokens), V vocabulary.

lm-evaluation-harness asks a model three questions, as *strings* (tokenization is the model's
business): ``loglikelihood`` (log p(continuation | context), multiple choice), ``loglikelihood_
rolling`` (log p(text) for perplexity, with rolling windows) and ``generate_until`` (greedy text).
:func:`make_lm` wraps a model (``forward(idx) -> (logits, loss)``, ``block_size``) and a
tokenizer (``encode``/``decode``) in an ``lm_eval.api.model.TemplateLM`` subclass registered as
``"llm-lessons"``. Its windows come from the harness's own ``get_rolling_token_windows``, so
agreement with :mod:`llm_lessons.evaluation.likelihood` checks our windowing against theirs.

The prefix token (the harness's end-of-text token, which its rolling windows put before the
first token) is ``"\\n"`` for our character models: a new document starts after a line break.

Local tasks ship in ``resources/lm_eval_tasks/`` (YAML + JSON lines, built by
``scripts/make_eval_tasks.py``): ``shakespeare_ppl`` (rolling perplexity),
``shakespeare_next_line`` and ``shakespeare_cloze`` (multiple choice). :func:`run_lm_eval` runs
``lm_eval.simple_evaluate`` on them with the Hugging Face hub and datasets set offline.

``lm_eval`` is imported inside the functions only: importing this module stays light.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F

from llm_lessons.configs import block_size_of
from llm_lessons.reproducibility import eval_mode, model_device
from llm_lessons.validation import check_batch_size, check_int

MODEL_NAME = "llm-lessons"
TASK_DIR = Path(__file__).resolve().parent.parent / "resources" / "lm_eval_tasks"
TASKS = ("shakespeare_ppl", "shakespeare_next_line", "shakespeare_cloze")


def load_task_docs(data_file: str) -> list[dict]:
    """The rows of a shipped task file, e.g. ``load_task_docs("shakespeare_ppl.jsonl")``.

    >>> docs = load_task_docs("shakespeare_next_line.jsonl")
    >>> len(docs), sorted(docs[0])
    (60, ['choices', 'context', 'label', 'play'])
    """
    path = TASK_DIR / data_file
    if path.parent != TASK_DIR or not path.is_file():
        known = sorted(p.name for p in TASK_DIR.glob("*.jsonl"))
        raise ValueError(f"unknown task data file {data_file!r}; shipped: {known}")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path.name}:{n} is not a complete JSON line (half-written?): "
                                 f"{err}") from None
    return rows


def task_dataset(data_file: str, **_unused):
    """The task YAMLs' ``custom_dataset``: a shipped file as a ``datasets.DatasetDict`` (one
    "test" split), built in memory, so no path, cache or network is involved."""
    import datasets

    return datasets.DatasetDict({"test": datasets.Dataset.from_list(load_task_docs(data_file))})


@cache
def adapter_class():
    """The ``TemplateLM`` subclass (created, and registered as ``"llm-lessons"``, on first use)."""
    from lm_eval import utils as lm_utils
    from lm_eval.api.model import TemplateLM
    from lm_eval.api.registry import register_model

    from llm_lessons.sampling import generate

    class LessonLM(TemplateLM):
        """lm-evaluation-harness's view of a book model: strings in, log-likelihoods out."""

        def __init__(self, model, tokenizer, max_length: int | None = None, batch_size: int = 32,
                     prefix_token: str = "\n", max_gen_toks: int = 128):
            super().__init__()
            self.model, self.tokenizer = model, tokenizer
            self._max_length = check_int(max_length or block_size_of(model), "max_length", low=1)
            self.batch_size = check_batch_size(batch_size)
            self.max_gen_toks = check_int(max_gen_toks, "max_gen_toks", low=0)
            prefix = tokenizer.encode(prefix_token)
            if len(prefix) != 1:
                raise ValueError(f"prefix_token {prefix_token!r} must encode to one token, got {prefix}")
            self._prefix_id = prefix[0]
            self._device = model_device(model)

        @property
        def eot_token_id(self) -> int:
            return self._prefix_id

        @property
        def max_length(self) -> int:
            return self._max_length

        def tok_encode(self, string: str, add_special_tokens=None, **kwargs) -> list[int]:
            return list(self.tokenizer.encode(string))

        def tok_decode(self, tokens) -> str:
            return self.tokenizer.decode(list(tokens))

        @torch.no_grad()
        def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs):
            """Each request ``(key, context_ids, continuation_ids)``: the model reads the last
            ``max_length`` tokens before the end and scores the continuation's positions."""
            for _, ctx, cont in requests:
                if not ctx or not cont or len(cont) > self.max_length:
                    raise ValueError(f"a request needs 1+ context tokens and 1..max_length="
                                     f"{self.max_length} continuation tokens, got {len(ctx)} and {len(cont)}")
            with eval_mode(self.model):
                return self._score(requests)

        def _score(self, requests) -> list[tuple[float, bool]]:
            out = []
            for i in range(0, len(requests), self.batch_size):
                chunk = requests[i:i + self.batch_size]
                inps = [(list(ctx) + list(cont))[-(self.max_length + 1):][:-1] for _, ctx, cont in chunk]
                L = max(len(x) for x in inps)
                batch = torch.zeros(len(inps), L, dtype=torch.long)  # (B, T), right-padded
                for b, x in enumerate(inps):
                    batch[b, :len(x)] = torch.tensor(x)
                logits, _ = self.model(batch.to(self._device))
                logp = F.log_softmax(logits.double(), dim=-1).cpu()  # (B, T, V)
                for b, (_, _, cont) in enumerate(chunk):
                    n, end = len(cont), len(inps[b])
                    rows = logp[b, end - n:end]  # (n, V): the positions that predict the continuation
                    target = torch.tensor(list(cont))
                    out.append((float(rows.gather(-1, target[:, None]).sum()),
                                bool((rows.argmax(-1) == target).all())))
            return out

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            windows, owner = [], []
            for r, (string,) in enumerate(req.args for req in requests):
                for ctx, cont in map(lm_utils.make_disjoint_window, lm_utils.get_rolling_token_windows(
                        token_list=self.tok_encode(string), prefix_token=self.prefix_token_id,
                        max_seq_len=self.max_length, context_len=1)):
                    windows.append((None, ctx, cont))
                    owner.append(r)
            totals = [0.0] * len(requests)
            for r, (ll, _) in zip(owner, self._loglikelihood_tokens(windows), strict=True):
                totals[r] += ll
            return totals

        def generate_until(self, requests, disable_tqdm: bool = False):
            """Greedy continuation of each context, cut at the first stop string (``until``); at most
            ``max_gen_toks`` tokens. Sampling options are ignored: this adapter decodes greedily."""
            out = []
            for context, gen_kwargs in (req.args for req in requests):
                kwargs = dict(gen_kwargs or {})
                until = kwargs.get("until", [])
                until = [until] if isinstance(until, str) else list(until)
                n_new = int(kwargs.get("max_gen_toks", self.max_gen_toks))
                ids = self.tok_encode(context) or [self.prefix_token_id]
                idx = torch.tensor(ids[-self.max_length:], device=self._device)[None]  # (1, T)
                new = generate(self.model, idx, n_new, greedy=True)[0, idx.shape[1]:].tolist()
                text = self.tok_decode(new)
                cuts = [text.find(s) for s in until if s and s in text]
                out.append(text[:min(cuts)] if cuts else text)
            return out

    with contextlib.suppress(ValueError):  # already registered by an earlier import of this module
        register_model(MODEL_NAME)(LessonLM)
    return LessonLM


def make_lm(model, tokenizer, **kwargs):
    """An lm-evaluation-harness ``LM`` for ``model`` + ``tokenizer`` (keywords: ``max_length``,
    ``batch_size``, ``prefix_token``, ``max_gen_toks``)."""
    for name in ("encode", "decode"):
        if not callable(getattr(tokenizer, name, None)):
            raise TypeError(f"tokenizer must have an {name}() method, got {type(tokenizer).__name__}")
    if not callable(model):
        raise TypeError(f"model must be callable with an int block_size, got {type(model).__name__}")
    block_size_of(model)  # a TypeError naming the model if it states no block_size
    return adapter_class()(model, tokenizer, **kwargs)


@contextlib.contextmanager
def offline_environment():
    """Hub and datasets offline, Hugging Face caches in a temporary folder, for the block only."""
    keys = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with tempfile.TemporaryDirectory(prefix="llm_lessons_lm_eval_") as home:
        keys["HF_HOME"] = home
        saved = {k: os.environ.get(k) for k in keys}
        os.environ.update(keys)
        try:
            yield home
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def run_lm_eval(model, tokenizer, tasks=TASKS, *, limit: int | None = None, log_samples: bool = False,
                include_path: str | Path = TASK_DIR, quiet: bool = True, **lm_kwargs) -> dict:
    """Run ``lm_eval.simple_evaluate`` on local tasks; returns its output dict.

    ``out["results"][task]`` holds the metrics, e.g. ``"bits_per_byte,none"`` for
    ``shakespeare_ppl`` and ``"acc,none"`` / ``"acc_norm,none"`` for the multiple-choice tasks.
    Standard errors are not bootstrapped (``bootstrap_iters=0``): this is about exact numbers.
    ``quiet`` swallows the harness's progress bars and log lines (they go to stderr).
    """
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    if not tasks:
        raise ValueError("tasks is empty: name at least one task, e.g. 'shakespeare_ppl'")
    lm = make_lm(model, tokenizer, **lm_kwargs)
    with offline_environment():
        import logging

        from lm_eval import simple_evaluate
        from lm_eval.tasks import TaskManager

        manager = TaskManager(include_path=str(include_path), include_defaults=False)
        unknown = [t for t in tasks if t not in manager.all_tasks]
        if unknown:
            raise ValueError(f"unknown task(s) {unknown}; local tasks: {sorted(manager.all_tasks)}")
        level = logging.getLogger("lm_eval").level
        logging.getLogger("lm_eval").setLevel(logging.ERROR)
        sink = contextlib.redirect_stderr(io.StringIO()) if quiet else contextlib.nullcontext()
        try:
            with sink:
                return simple_evaluate(model=lm, tasks=tasks, task_manager=manager, limit=limit,
                                       bootstrap_iters=0, log_samples=log_samples)
        finally:
            logging.getLogger("lm_eval").setLevel(level)
