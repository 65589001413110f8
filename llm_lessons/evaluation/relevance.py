"""Relevance of a continuation to its prompt (or a reference), measured in embedding space.

Shapes use fixed letters: B batch (texts), T time (tokens), C channels (384 for MiniLM).

Two measures, both from the shipped all-MiniLM-L6-v2 encoder (:mod:`llm_lessons.interop.minilm`):

* **Sentence-embedding cosine.** A text's vector is the mean of its contextual token vectors
  (padding excluded), scaled to unit length, which is exactly what sentence-transformers does
  for this model (modules: Transformer → mean Pooling → Normalize). Relevance = cos(u, v) = u·v.
* **BERTScore-style matching** (Zhang et al., 2020). Each token of one text is greedily matched
  to its most similar token of the other (cosine of contextual vectors):

      R = (1/|x|) Σ_{x_i in ref}  max_{y_j in cand} cos(x_i, y_j)
      P = (1/|y|) Σ_{y_j in cand} max_{x_i in ref}  cos(x_i, y_j)        F = 2PR / (P + R)

  optionally weighting tokens by inverse document frequency, idf(w) = ln((M + 1) / (df(w) + 1))
  over the M references, so rare words count more than "the". (The original also rescales with
  a baseline and uses a larger encoder; the numbers here are MiniLM's own and only comparable
  with each other.)

>>> cand = torch.tensor([[1.0, 0.0]])                   # one token
>>> ref = torch.tensor([[1.0, 0.0], [0.0, 1.0]])        # two tokens, one of them matched
>>> s = greedy_match(cand, ref)
>>> s.precision, s.recall, round(s.fmeasure, 4)
(1.0, 0.5, 0.6667)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from llm_lessons.evaluation.text_metrics import Score, _texts
from llm_lessons.validation import check_batch_size, check_int


class MiniLMEncoder:
    """Sentence and token embeddings from the shipped MiniLM (loaded offline, eval mode, no grad).

    ``encoder.embed(["a text", ...])`` -> (B, 384) unit vectors; ``encoder.tokens("a text")`` ->
    (contextual token vectors (T, 384), token strings), [CLS] and [SEP] left out
    (``token_vectors`` does the same for a list of texts, in batches).
    """

    def __init__(self, model=None, tokenizer=None, max_length: int = 256, batch_size: int = 32):
        if (model is None) != (tokenizer is None):
            raise ValueError("pass both model and tokenizer, or neither (then the shipped MiniLM loads)")
        if model is None:
            from llm_lessons.interop.minilm import load_minilm

            model, tokenizer = load_minilm()
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_length = check_int(max_length, "max_length", low=1)
        self.batch_size = check_batch_size(batch_size)

    @torch.no_grad()
    def _run(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        hidden = self.model(**enc).last_hidden_state  # (B, T, C)
        return hidden, enc["attention_mask"], enc["input_ids"]

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """(B, C) mean-pooled, L2-normalised sentence embeddings."""
        texts = _texts(texts, "texts")
        out = []
        for i in range(0, len(texts), self.batch_size):
            hidden, mask, _ = self._run(texts[i:i + self.batch_size])
            m = mask[..., None].to(hidden.dtype)  # (B, T, 1)
            mean = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)  # (B, T, C) -> (B, C)
            out.append(F.normalize(mean, dim=-1))
        return torch.cat(out)

    def token_vectors(self, texts: Sequence[str]) -> list[tuple[torch.Tensor, list[str]]]:
        """Per text: contextual vectors (T, C) of its word pieces and the pieces, [CLS]/[SEP] left out."""
        texts = _texts(texts, "texts")
        special = torch.tensor(self.tokenizer.all_special_ids)
        out = []
        for i in range(0, len(texts), self.batch_size):
            hidden, mask, ids = self._run(texts[i:i + self.batch_size])
            for b in range(len(hidden)):
                keep = mask[b].bool() & ~torch.isin(ids[b], special)  # (T,)
                if not keep.any():
                    raise ValueError(f"text {texts[i + b]!r} has no tokens besides special ones")
                out.append((hidden[b, keep], self.tokenizer.convert_ids_to_tokens(ids[b, keep].tolist())))
        return out

    def tokens(self, text: str) -> tuple[torch.Tensor, list[str]]:
        """Contextual vectors (T, C) of one text's word pieces and the pieces themselves."""
        return self.token_vectors([text])[0]


def cosine_relevance(encoder: MiniLMEncoder, prompts: Sequence[str],
                     continuations: Sequence[str]) -> torch.Tensor:
    """(B,) cosine similarity of each continuation's sentence embedding to its prompt's."""
    prompts, continuations = _texts(prompts, "prompts"), _texts(continuations, "continuations")
    if len(prompts) != len(continuations):
        raise ValueError(f"{len(prompts)} prompts but {len(continuations)} continuations")
    return (encoder.embed(prompts) * encoder.embed(continuations)).sum(-1)  # (B, C) -> (B,)


def greedy_match(cand: torch.Tensor, ref: torch.Tensor, cand_weights: torch.Tensor | None = None,
                 ref_weights: torch.Tensor | None = None) -> Score:
    """BERTScore's greedy matching between candidate (Tc, C) and reference (Tr, C) token vectors.

    Vectors are L2-normalised here, so dot products are cosines. Weights (Tc,) / (Tr,) default
    to uniform; each side's weights are normalised to sum to 1.
    """
    for name, x in (("cand", cand), ("ref", ref)):
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[0] == 0:
            raise ValueError(f"{name} must be a (T, C) tensor with T >= 1, got {getattr(x, 'shape', x)}")
    if cand.shape[1] != ref.shape[1]:
        raise ValueError(f"cand {tuple(cand.shape)} and ref {tuple(ref.shape)} differ in channels C")
    # (Tc, C) @ (C, Tr) -> (Tc, Tr): cosine of every candidate token with every reference token
    sim = F.normalize(cand.double(), dim=-1) @ F.normalize(ref.double(), dim=-1).T
    wc = torch.ones(len(cand), dtype=sim.dtype) if cand_weights is None else cand_weights.to(sim.dtype)
    wr = torch.ones(len(ref), dtype=sim.dtype) if ref_weights is None else ref_weights.to(sim.dtype)
    if wc.shape != (len(cand),) or wr.shape != (len(ref),) or wc.sum() <= 0 or wr.sum() <= 0:
        raise ValueError("weights must be (Tc,) and (Tr,) non-negative tensors with a positive sum")
    precision = float((sim.max(dim=1).values * wc).sum() / wc.sum())  # best match per candidate token
    recall = float((sim.max(dim=0).values * wr).sum() / wr.sum())  # best match per reference token
    return Score(precision, recall)


def idf_weights(token_lists: Sequence[Sequence[str]]) -> dict[str, float]:
    """idf(w) = ln((M + 1) / (df(w) + 1)) over M documents; unseen words get ln(M + 1).

    >>> {w: round(v, 4) for w, v in idf_weights([["a", "b"], ["a"], ["a", "c"]]).items()}
    {'a': 0.0, 'b': 0.6931, 'c': 0.6931}
    """
    if len(token_lists) == 0:
        raise ValueError("idf needs at least one document")
    M = len(token_lists)
    df = Counter(w for toks in token_lists for w in set(toks))
    return {w: math.log((M + 1) / (n + 1)) for w, n in sorted(df.items())}


def bert_score(encoder: MiniLMEncoder, cands: Sequence[str], refs: Sequence[str],
               idf: bool = False) -> list[Score]:
    """BERTScore-style precision/recall/F1 of each candidate against its reference.

    With ``idf=True`` the weights come from the references' word pieces (:func:`idf_weights`).
    """
    cands, refs = _texts(cands, "cands"), _texts(refs, "refs")
    if len(cands) != len(refs):
        raise ValueError(f"{len(cands)} candidates but {len(refs)} references")
    cand_tok, ref_tok = encoder.token_vectors(cands), encoder.token_vectors(refs)
    table = idf_weights([t for _, t in ref_tok]) if idf else None
    unseen = math.log(len(refs) + 1)

    def weights(tokens):
        return None if table is None else torch.tensor([table.get(t, unseen) for t in tokens])

    out = []
    for (cv, ct), (rv, rt) in zip(cand_tok, ref_tok, strict=True):
        wc, wr = weights(ct), weights(rt)
        if table is not None and (wc.sum() == 0 or wr.sum() == 0):
            raise ValueError(f"idf weights of {ct if wc.sum() == 0 else rt} are all zero: every one of "
                             "their tokens occurs in every reference; idf needs several references")
        out.append(greedy_match(cv, rv, wc, wr))
    return out
