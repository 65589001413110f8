"""Evaluating language models (chapter 2.4, 语言模型评估): the wing of the package that measures.

Every module takes a model of the book's interface (``forward(idx, targets=None) -> (logits,
loss)``) or plain text, so the same measurements apply to an n-gram, the nano GPT, the nano
masked LM or a Hugging Face model. In reading order, with the section each serves:

Perplexity (2.4, notebook 02_4):

- :mod:`~llm_lessons.evaluation.markov_source` — a synthetic source whose entropy rate is known
  exactly, so a measured cross-entropy has a floor to compare with
- :mod:`~llm_lessons.evaluation.likelihood` — per-token NLL, perplexity with sliding windows,
  bits per token and per byte, word perplexity
- :mod:`~llm_lessons.evaluation.harness` — any model run by lm-evaluation-harness, offline
- :mod:`~llm_lessons.evaluation.contamination` — how much of a test text the training text holds

Fluency, diversity and relevance (2.4, notebook 02_4b):

- :mod:`~llm_lessons.evaluation.text_stats` — distinct-n, repetition rate, loops
- :mod:`~llm_lessons.evaluation.text_metrics` — fluency as a scorer model's loss, BLEU,
  self-BLEU, ROUGE, and the sacreBLEU/chrF cross-checks
- :mod:`~llm_lessons.evaluation.relevance` — relevance to a prompt in MiniLM's embedding space

Human and downstream evaluation (2.4, notebook 02_4c):

- :mod:`~llm_lessons.evaluation.human_eval` — collecting ratings and pairwise votes, stored
- :mod:`~llm_lessons.evaluation.agreement` — Cohen's κ, Krippendorff's α, Bradley–Terry and
  Elo rankings from votes, bootstrap intervals
- :mod:`~llm_lessons.evaluation.multiple_choice` — multiple-choice scoring by log-likelihood
- :mod:`~llm_lessons.evaluation.calibration` — reliability diagrams' bins and the expected
  calibration error of next-token predictions
- :mod:`~llm_lessons.evaluation.probe` — linear probes on frozen features, with a control task

Heavy libraries (``lm_eval``, ``transformers``, ``nltk``) are imported inside the functions that
need them, so importing a module of this wing stays cheap (``tests/test_evaluation.py`` checks
that importing the harness adapter does not import ``lm_eval``).
"""
