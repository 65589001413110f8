"""Chapter 6, applications (实际应用场景): the book's small models and the shipped MiniLM
encoder put to work, each application measured on held-out plays against a baseline.

In reading order:

- :mod:`~llm_lessons.applications.search` — semantic search: MiniLM embeddings against BM25,
  and the two fused; recall@k and MRR with bootstrap intervals (6.1)
- :mod:`~llm_lessons.applications.rag` — retrieval-augmented generation: the book's GPT
  conditioned on retrieved passages, against no retrieval and random passages (6.2)
- :mod:`~llm_lessons.applications.autocomplete` — a writing assistant: next-word and
  next-line suggestions from the KV-cached GPT, with their latency (6.3)
- :mod:`~llm_lessons.applications.classify` — knowledge extraction as classification: genre
  from a passage by naive Bayes and MiniLM features, with intervals that resample plays (6.4)
- :mod:`~llm_lessons.applications.fine_tuning` — the tiny BERT with a classification head,
  fine-tuned on the genres (6.4)

Libraries beyond the core (``bm25s``, ``faiss``, ``transformers``) are imported inside the
functions that need them, so importing this wing stays cheap.
"""
