"""The book's exercises: checkers that say what is wrong, in the order of the chapters.

Each ``check_*`` takes the function a student wrote, runs it on cases whose answers the checker
computes with its own reference (edge cases included), and returns a one-line success message
or raises ``ExerciseFailed`` (an ``AssertionError``) naming the mistake: "your weights do not
sum to 1 over the keys: did you apply softmax over the last dimension?". The package functions
that are the answer are forbidden while the student's code runs, so a check cannot be passed by
calling them.

Modules:

- `llm_lessons.exercises.checking`: cases, named mistakes, forbidden shortcuts, ``run_check``.
- `llm_lessons.exercises.scale_and_quality`: chapters 1 and 2.4b, the compute-optimal size,
  a doubling time, distinct-n and BLEU's clipped precision.
- `llm_lessons.exercises.likelihoods`: chapters 2.2, 2.3 and 3.3, a text's log-probability by
  the chain rule, the pseudo-log-likelihood, the MLM loss and masked accuracy.
- `llm_lessons.exercises.model_arithmetic`: chapters 1, 3.1, 3.2 and 3.3, a GPT's parameter
  count, GELU, one AdamW step, the output bias at the log-frequencies.
- `llm_lessons.exercises.counting_and_tokens`: chapters 2.1, 2.1b, 2.4 and 2.4c, interpolated
  bigrams, encoding with BPE merges, one loss in three units, the expected calibration error.
- `llm_lessons.exercises.text_models`: chapters 2.1, 2.1b, 2.4 and 2.4c, Kneser–Ney's
  continuation probability, byte fallback, a Markov source's entropy rate, multiple choice.
- `llm_lessons.exercises.generation_steps`: chapters 2.2, 2.3, 2.4b and 5, greedy generation
  within a block size, the MLM targets, BLEU's brevity penalty, batch-first positions.
- `llm_lessons.exercises.blocks_and_masks`: chapters 3.1, 4.1 and 5, the MLP, the padding mask,
  the token-to-position norm ratio of the article's listing.
- `llm_lessons.exercises.foundations`: chapter 2, add-k smoothing, BPE (the most frequent pair,
  a merge), shifted targets, BERT's 80/10/10 masking, bits per byte.
- `llm_lessons.exercises.evaluation`: chapter 2.4, perplexity and one Elo update.
- `llm_lessons.exercises.search_and_scores`: chapters 2.4 and 4.3, windowed NLL, Cohen's κ,
  min-p, the repetition penalty, one step of beam search.
- `llm_lessons.exercises.transformer`: chapters 3 and 4.2, the pre-norm block, sinusoidal
  encodings, RoPE, and appending to a key–value cache.
- `llm_lessons.exercises.optimisation`: chapter 3.2, the learning-rate schedule (warmup, then
  a cosine) and gradient-norm clipping.
- `llm_lessons.exercises.layers`: chapters 3.1 and 4.2, layer normalisation and ALiBi's
  distance biases.
- `llm_lessons.exercises.attention`: chapter 4.1, the causal mask, attention (plain and
  masked), splitting and merging heads.
- `llm_lessons.exercises.decoding`: chapter 4.3, top-k and top-p truncation.
- `llm_lessons.exercises.mlm_filling`: chapter 4.4, filling masks from one forward pass, and
  mask-predict's re-masking (which positions, how many).
- `llm_lessons.exercises.article_fixes`: chapter 5, the float mask ``nn.MultiheadAttention``
  expects, and measuring whether a model reads the future.
- `llm_lessons.exercises.semantic_search`: chapter 6.1, recall@k and the mean reciprocal rank,
  reciprocal rank fusion, a BM25 score.
- `llm_lessons.exercises.retrieval_augmented`: chapter 6.2, fitting a retrieved passage into the
  window, targets that score only the continuation, a paired bootstrap of a difference.
- `llm_lessons.exercises.autocomplete`: chapter 6.3, the keystrokes a suggestion saves, the
  top-k word completions of a character model, the median speed-up of a cache.
- `llm_lessons.exercises.text_classification`: chapter 6.4, naive Bayes log-scores with Laplace
  smoothing, a cluster bootstrap's accuracies, the macro F1.
- `llm_lessons.exercises.small_model_limits`: chapter 6.5, the characters a prompt may not use,
  a multiple-choice answer by log-likelihood, the word overlap of an output with its input.
- `llm_lessons.exercises.pipelines`: chapter 7.1, fill-mask's top k from logits, a safetensors
  file's byte ranges, greedy decoding with a cropped context.
- `llm_lessons.exercises.tokenizer_tools`: chapter 7.2, one BPE training step, characters per
  token, a split by whole plays without leakage.
- `llm_lessons.exercises.training_tools`: chapter 7.3, the break-even step of a compile,
  gradient accumulation, each process's slice of the global batch.
- `llm_lessons.exercises.deployment`: chapter 7.4, the bytes of a weights file, the windows a
  cache-free greedy loop feeds a graph, the element-wise tolerance test.
- `llm_lessons.exercises.scaling_laws`: chapter 8.1, exact training FLOPs, the
  compute-optimal split of a scaling law, the vertex of an IsoFLOP parabola.
- `llm_lessons.exercises.modern_decoder`: chapter 8.2, RMSNorm, the SwiGLU layer, and
  key/value heads repeated for grouped-query attention.
- `llm_lessons.exercises.efficient_attention`: chapter 8.3, one step of the online softmax,
  the key-value cache's bytes per token, a sliding-window causal mask.
- `llm_lessons.exercises.challenges`: chapter 8.4, how often confident predictions are wrong,
  a benchmark's contamination rate, the compute and energy of a training run.
- `llm_lessons.exercises.finetuning`: chapter 8.5, LoRA's trainable-parameter count, its
  forward pass and the merged weight.
- `llm_lessons.exercises.alignment`: chapter 8.6, the loss on response tokens only, the DPO
  loss, the per-character KL to the reference.
- `llm_lessons.exercises.quantization`: chapter 8.7, absmax quantization per channel,
  group-wise dequantization, unpacking int4.
- `llm_lessons.exercises.distributed`: chapter 8.8, combining unequal shards' gradients,
  reduce-scatter, the bytes each process sends per step.
- `llm_lessons.exercises.speedrun`: chapter 8.9, Muon's Newton–Schulz iteration, the time to
  a target loss from a race's evaluations, one step of Muon.
- `llm_lessons.exercises.notebooks`: the instructor and student editions of a notebook
  (nbgrader's solution and hidden-test markers), and the answer key.
- `llm_lessons.exercises.grading`: the autograder: a folder of submissions in, a CSV of scores
  and per-student feedback out.

For teachers, ``scripts/classroom.py`` builds the student edition and the answer keys of every
notebook, and grades a folder of submissions.

>>> import torch
>>> try:
...     check_causal_mask(lambda T: torch.ones(T, T).triu().bool())
... except ExerciseFailed as failure:
...     print(str(failure)[:66])
check_causal_mask, T = 2: your mask is upper-triangular: query i w
"""

from llm_lessons.exercises.alignment import (
    check_dpo_loss,
    check_response_kl,
    check_response_loss,
)
from llm_lessons.exercises.article_fixes import check_future_leak, check_subsequent_mask
from llm_lessons.exercises.attention import (
    check_attention,
    check_causal_mask,
    check_masked_attention,
    check_merge_heads,
    check_split_heads,
)
from llm_lessons.exercises.autocomplete import (
    check_median_speedup,
    check_saved_keystrokes,
    check_top_k_completions,
)
from llm_lessons.exercises.blocks_and_masks import (
    check_mlp,
    check_norm_ratio,
    check_padding_mask,
)
from llm_lessons.exercises.challenges import (
    check_confident_errors,
    check_contamination_rate,
    check_training_cost,
)
from llm_lessons.exercises.checking import ExerciseFailed
from llm_lessons.exercises.counting_and_tokens import (
    check_bpe_encode,
    check_calibration_error,
    check_interpolated_bigram,
    check_perplexity_units,
)
from llm_lessons.exercises.decoding import check_top_k, check_top_p
from llm_lessons.exercises.deployment import (
    check_close_mask,
    check_file_bytes,
    check_window_lengths,
)
from llm_lessons.exercises.distributed import (
    check_bytes_per_step,
    check_combine_shard_gradients,
    check_reduce_scatter,
)
from llm_lessons.exercises.efficient_attention import (
    check_kv_cache_bytes,
    check_online_softmax_step,
    check_window_mask,
)
from llm_lessons.exercises.evaluation import check_elo_update, check_perplexity
from llm_lessons.exercises.finetuning import (
    check_lora_count,
    check_lora_forward,
    check_lora_merge,
)
from llm_lessons.exercises.foundations import (
    check_add_k_bigram,
    check_bits_per_byte,
    check_bpe_merge,
    check_mask_80_10_10,
    check_most_frequent_pair,
    check_shift_targets,
)
from llm_lessons.exercises.generation_steps import (
    check_brevity_penalty,
    check_embed_with_positions,
    check_greedy_generate,
    check_mlm_targets,
)
from llm_lessons.exercises.layers import check_alibi_bias, check_layer_norm
from llm_lessons.exercises.likelihoods import (
    check_masked_accuracy,
    check_mlm_loss,
    check_pseudo_log_likelihood,
    check_sequence_log_prob,
)
from llm_lessons.exercises.mlm_filling import check_fill_masks, check_remask, check_remask_counts
from llm_lessons.exercises.model_arithmetic import (
    check_adamw_step,
    check_gelu,
    check_gpt_param_count,
    check_unigram_bias,
)
from llm_lessons.exercises.modern_decoder import check_repeat_kv, check_rms_norm, check_swiglu
from llm_lessons.exercises.optimisation import check_clip_grad_norm, check_lr_schedule
from llm_lessons.exercises.pipelines import (
    check_fill_mask_top_k,
    check_greedy_decode,
    check_safetensors_ranges,
)
from llm_lessons.exercises.quantization import (
    check_absmax_per_channel,
    check_dequantize_groups,
    check_unpack_int4,
)
from llm_lessons.exercises.retrieval_augmented import (
    check_continuation_targets,
    check_fit_window,
    check_paired_bootstrap,
)
from llm_lessons.exercises.scale_and_quality import (
    check_clipped_precision,
    check_compute_optimal,
    check_distinct_n,
    check_doubling_time,
)
from llm_lessons.exercises.scaling_laws import (
    check_compute_optimal_split,
    check_isoflop_vertex,
    check_training_flops,
)
from llm_lessons.exercises.search_and_scores import (
    check_beam_step,
    check_cohen_kappa,
    check_min_p,
    check_repetition_penalty,
    check_windowed_nll,
)
from llm_lessons.exercises.semantic_search import (
    check_bm25,
    check_recall_and_mrr,
    check_rrf,
)
from llm_lessons.exercises.small_model_limits import (
    check_pick_choice,
    check_unknown_characters,
    check_word_overlap,
)
from llm_lessons.exercises.speedrun import (
    check_muon_update,
    check_newton_schulz,
    check_time_to_target,
)
from llm_lessons.exercises.text_classification import (
    check_cluster_accuracies,
    check_macro_f1,
    check_nb_scores,
)
from llm_lessons.exercises.text_models import (
    check_byte_fallback,
    check_continuation_prob,
    check_entropy_rate,
    check_multiple_choice,
)
from llm_lessons.exercises.tokenizer_tools import (
    check_bpe_step,
    check_chars_per_token,
    check_split_by_play,
)
from llm_lessons.exercises.training_tools import (
    check_accumulated_gradients,
    check_break_even_steps,
    check_process_batch,
)
from llm_lessons.exercises.transformer import (
    check_kv_cache_append,
    check_pre_norm_block,
    check_rope,
    check_sinusoidal_encoding,
)

__all__ = ["ExerciseFailed", "check_absmax_per_channel", "check_accumulated_gradients",
           "check_adamw_step", "check_add_k_bigram", "check_alibi_bias", "check_attention",
           "check_beam_step", "check_bits_per_byte", "check_bm25", "check_bpe_encode",
           "check_bpe_merge", "check_bpe_step", "check_break_even_steps", "check_brevity_penalty",
           "check_byte_fallback", "check_bytes_per_step", "check_calibration_error",
           "check_causal_mask", "check_chars_per_token", "check_clip_grad_norm",
           "check_clipped_precision", "check_close_mask", "check_cluster_accuracies",
           "check_cohen_kappa", "check_combine_shard_gradients", "check_compute_optimal",
           "check_compute_optimal_split", "check_confident_errors", "check_contamination_rate",
           "check_continuation_prob", "check_continuation_targets", "check_dequantize_groups",
           "check_distinct_n", "check_doubling_time", "check_dpo_loss", "check_elo_update",
           "check_embed_with_positions", "check_entropy_rate", "check_file_bytes",
           "check_fill_mask_top_k", "check_fill_masks", "check_fit_window", "check_future_leak",
           "check_gelu", "check_gpt_param_count", "check_greedy_decode", "check_greedy_generate",
           "check_interpolated_bigram", "check_isoflop_vertex", "check_kv_cache_append",
           "check_kv_cache_bytes", "check_layer_norm", "check_lora_count", "check_lora_forward",
           "check_lora_merge", "check_lr_schedule", "check_macro_f1", "check_mask_80_10_10",
           "check_masked_accuracy", "check_masked_attention", "check_median_speedup",
           "check_merge_heads", "check_min_p", "check_mlm_loss", "check_mlm_targets", "check_mlp",
           "check_most_frequent_pair", "check_multiple_choice", "check_muon_update",
           "check_nb_scores", "check_newton_schulz", "check_norm_ratio", "check_online_softmax_step",
           "check_padding_mask",
           "check_paired_bootstrap", "check_perplexity", "check_perplexity_units",
           "check_pick_choice", "check_pre_norm_block", "check_process_batch",
           "check_pseudo_log_likelihood", "check_recall_and_mrr", "check_reduce_scatter",
           "check_remask", "check_remask_counts", "check_repeat_kv", "check_repetition_penalty",
           "check_response_kl", "check_response_loss", "check_rms_norm", "check_rope", "check_rrf",
           "check_safetensors_ranges", "check_saved_keystrokes", "check_sequence_log_prob",
           "check_shift_targets", "check_sinusoidal_encoding", "check_split_by_play",
           "check_split_heads", "check_subsequent_mask", "check_swiglu", "check_time_to_target",
           "check_top_k",
           "check_top_k_completions", "check_top_p", "check_training_cost", "check_training_flops",
           "check_unigram_bias", "check_unknown_characters", "check_unpack_int4",
           "check_window_lengths", "check_window_mask", "check_windowed_nll", "check_word_overlap"]
