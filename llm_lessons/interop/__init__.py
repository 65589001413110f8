"""Bridges to Hugging Face ``transformers``: the book's models, checked against the library's.

A model written from scratch is only trusted once an independent implementation gives the same
numbers. Each module here maps weights one to one between a book model and its ``transformers``
counterpart (nothing is downloaded: the Hugging Face model is built from a translated config,
or loaded from a package that ships its weights). In reading order:

- :mod:`~llm_lessons.interop.bert` — our :class:`~llm_lessons.bert.MaskedLM` to and from
  ``BertForMaskedLM`` (2.3, the masked LM, and 3.3, its training)
- :mod:`~llm_lessons.interop.hf_tokenizer` — the book's character tokenizers as Hugging Face
  tokenizers, so that ``pipeline("text-generation")`` and ``pipeline("fill-mask")`` run the
  book's converted models and give the book's answers (7, tools)
- :mod:`~llm_lessons.interop.hf_datasets` — the corpus as a ``datasets.DatasetDict`` of
  speeches, split by plays as the book splits it, saved as Arrow offline (7, tools)
- :mod:`~llm_lessons.interop.hf_bpe` — a ``tokenizers`` BPE trained on the corpus and set up
  like the book's :class:`~llm_lessons.tokenizers.BPETokenizer`, to compare merges,
  compression and speed (7.2)
- :mod:`~llm_lessons.interop.hf_accelerate` — the book's training loop run through
  ``accelerate``, step for step the same as the plain loop (7.3)
- :mod:`~llm_lessons.interop.onnx_export` — the GPT exported to ONNX and run with ONNX Runtime:
  the same logits and the same greedy text without PyTorch (7.4)
- :mod:`~llm_lessons.interop.gpt2` — our :class:`~llm_lessons.gpt.GPT` to and from
  ``GPT2LMHeadModel``, and loading real GPT-2 weights for readers who are online (3.2, 5)
- :mod:`~llm_lessons.interop.llama` — the modern decoder
  (:class:`~llm_lessons.frontiers.modern_gpt.ModernGPT`) to and from Llama, Mistral and Mixtral (8)
- :mod:`~llm_lessons.interop.minilm` — real attention from the shipped all-MiniLM-L6-v2, and
  one of its layers copied into our :class:`~llm_lessons.attention.MultiHeadAttention`
  (4.1 attention, 4.2 positional encodings; 2.4 relevance embeds with it)

``transformers``, ``tokenizers``, ``accelerate``, ``onnx`` and ``onnxruntime`` are imported inside
the functions, so importing this wing stays cheap.
"""
