"""Chapter 8, the frontiers (前沿): what changed in language models after GPT-2, built small.

In reading order:

- :mod:`~llm_lessons.frontiers.scaling` — training compute counted exactly (and as 6ND),
  Chinchilla's parametric fit L(N, D) with bootstrap intervals, IsoFLOP minima (8, scaling laws)
- :mod:`~llm_lessons.frontiers.layers` — RMSNorm and the SwiGLU feed-forward layer (8, the
  modern decoder)
- :mod:`~llm_lessons.frontiers.gqa` — grouped-query attention with rotary positions, the
  smaller key-value cache it buys, and sliding-window masks (8, the modern decoder)
- :mod:`~llm_lessons.frontiers.moe` — a mixture-of-experts feed-forward layer: top-k router,
  load-balancing loss (8, the modern decoder)
- :mod:`~llm_lessons.frontiers.flash_attention` — the online softmax, tiled as FlashAttention
  tiles it: the same numbers as ``scaled_dot_product_attention`` without the T x T matrix, and
  the memory traffic it saves, counted (8, efficient attention)
- :mod:`~llm_lessons.frontiers.modern_gpt` — the book's GPT with those substitutions, a
  Llama-shaped decoder with the book's ``forward(idx, targets=None) -> (logits, loss)``; its
  oracles are ``transformers``' Llama, Mistral and Mixtral (:mod:`llm_lessons.interop.llama`)
- :mod:`~llm_lessons.frontiers.lora` — LoRA: a frozen model fine-tuned through low-rank updates,
  merged and unmerged; ``peft`` is its oracle (8, fine-tuning)
- :mod:`~llm_lessons.frontiers.instructions` — instruction data built from the corpus by code,
  a chat template in the plays' own dialogue format, the loss on the response only (8, SFT)
- :mod:`~llm_lessons.frontiers.preference` — direct preference optimisation: sequence
  log-probabilities and the DPO loss with its implicit rewards; ``trl`` is its oracle (8,
  preference tuning)
- :mod:`~llm_lessons.frontiers.quantization` — int8 and int4 weights with absmax scales per
  tensor, channel or group; PyTorch's quantized tensors are its oracle (8, quantization)
- :mod:`~llm_lessons.frontiers.distributed` — the book's training loop, unchanged, under DDP or
  FSDP with ``torchrun``: two processes train exactly like one with the global batch (8,
  distributed training)
- :mod:`~llm_lessons.frontiers.muon` — Muon: momentum orthogonalised by five Newton–Schulz
  steps for the blocks' matrices, AdamW for the rest, in one optimizer; ``torch.optim.Muon`` is
  its oracle (8, the CPU speedrun; chapter 3.2 trains with it)
- :mod:`~llm_lessons.frontiers.speedrun` — the speedrun's rules: recipes raced to a validation
  loss with the evaluation's time on the clock, and a run-time probe of bfloat16 (8, the CPU
  speedrun; ``benchmarks/speedrun.py`` writes the record table)
"""
