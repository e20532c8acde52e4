"""Pretraining with human feedback (Korbak et al. 2023): the six objectives as pure losses.

Conventions (all losses): ``logits`` (B, T, V) already aligned with ``labels`` (B, T) —
``logits[b, t]`` predicts ``labels[b, t]``, ``-100`` marks ignored positions;
``token_scores`` (B, T) is the preference score of the segment the *label* token belongs
to, **higher is better** (PEP8: ``-violations / len(line)``; the paper's code uses the
opposite sign, so its thresholds appear negated here). Each returns ``(loss, logs)``.

Objectives (config dataclasses, Hydra presets in ``conf/objective/``, paper PEP8 defaults):
  * MLE — plain cross-entropy.
  * Filtering — MLE on documents whose score is >= ``threshold`` (paper: 0.002361 violations/char).
  * Conditional — ``<|good|>``/``<|bad|>`` before each segment by score >= ``threshold``; a
    ``drop_token_fraction`` of segments gets no token; sample with ``<|good|>`` and ``<|bad|>`` blocked.
  * Unlikelihood — MLE on good tokens, ``alpha * -log(1 - p)`` on bad ones.
  * RWR — cross-entropy weighted by ``exp(score / beta)``; no value head and no baseline
    (the paper's code routed RWR through AWR with ``alpha=1``: its value head got no loss
    yet was still subtracted as a baseline; here RWR simply has none).
  * AWR — weights ``exp((score - V) / beta)`` with ``V`` from a linear value head on the last
    hidden state, trained by ``(1 - alpha) * MSE(V, score)`` with gradients into the LM body
    (the paper's ``is_detached: false``); ``logs["value_loss"]`` shows it learning.

Example:
    >>> import torch
    >>> logits = torch.zeros(1, 2, 4); labels = torch.tensor([[1, -100]])
    >>> loss, logs = mle_loss(logits, labels)
    >>> round(loss.item(), 4)  # log(4)
    1.3863
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.functional import masked_mean
from prefgym.models.blocks import TokenizedDocument
from prefgym.models.control import control_token_ids

if TYPE_CHECKING:
    import torch

IGNORE = -100


# --------------------------------------------------------------------------- pure math


def token_log_probs(logits: "torch.Tensor", labels: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
    """``(log p(label), mask)``, both (B, T); ignored positions get log-prob 0 and mask 0."""
    import torch

    mask = labels != IGNORE  # (B, T)
    safe = torch.where(mask, labels, torch.zeros_like(labels))
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)  # (B, T)
    return logp * mask, mask.float()


def mle_loss(logits: "torch.Tensor", labels: "torch.Tensor", token_scores: Any = None,
             values: Any = None) -> tuple["torch.Tensor", dict]:
    """Mean negative log-likelihood of the labels."""
    logp, mask = token_log_probs(logits, labels)
    loss = masked_mean(-logp, mask)
    return loss, {"nll": loss.detach()}


def unlikelihood_loss(logits: "torch.Tensor", labels: "torch.Tensor", token_scores: "torch.Tensor",
                      values: Any = None, threshold: float = 0.0, alpha: float = 0.01) -> tuple["torch.Tensor", dict]:
    """``-log p`` on tokens with score >= threshold, ``-alpha * log(1 - p)`` on the rest."""
    import torch

    logp, mask = token_log_probs(logits, labels)
    good = (token_scores >= threshold).float()  # (B, T)
    one_minus_p = torch.clamp(1.0 - logp.exp(), min=1e-20)  # clamp: p -> 1 would give log(0)
    per_token = good * -logp + alpha * (1.0 - good) * -one_minus_p.log()  # (B, T)
    loss = masked_mean(per_token, mask)
    return loss, {"good_fraction": masked_mean(good, mask).detach(), "nll": masked_mean(-logp, mask).detach()}


def rwr_loss(logits: "torch.Tensor", labels: "torch.Tensor", token_scores: "torch.Tensor", values: Any = None,
             beta: float = 10.0, clip_weight_max: float = 1000.0) -> tuple["torch.Tensor", dict]:
    """Reward-weighted regression: ``mean(exp(score / beta) * -log p)``, weights clipped."""
    import torch

    logp, mask = token_log_probs(logits, labels)
    weights = torch.clamp(torch.exp(token_scores.float() / beta), max=clip_weight_max)  # (B, T)
    loss = masked_mean(weights * -logp, mask)
    return loss, {"weight_mean": masked_mean(weights, mask).detach(), "nll": masked_mean(-logp, mask).detach()}


def awr_loss(logits: "torch.Tensor", labels: "torch.Tensor", token_scores: "torch.Tensor", values: "torch.Tensor",
             alpha: float = 0.05, beta: float = 1.0, clip_weight_max: float = 1000.0) -> tuple["torch.Tensor", dict]:
    """Advantage-weighted regression with a learned value baseline.

    ``alpha * mean(exp((score - V) / beta) * -log p) + (1 - alpha) * mean((V - score)^2)``;
    the weights use a detached ``V`` so only the MSE term trains the value head.
    """
    import torch

    if values is None:
        raise ValueError("AWR needs values from a value head; the pretrain loop adds one when value_head=True")
    logp, mask = token_log_probs(logits, labels)
    scores = token_scores.float()
    advantage = scores - values.detach()  # (B, T)
    weights = torch.clamp(torch.exp(advantage / beta), max=clip_weight_max)  # (B, T)
    lm = masked_mean(weights * -logp, mask)
    value_loss = masked_mean((values - scores) ** 2, mask)
    loss = alpha * lm + (1.0 - alpha) * value_loss
    return loss, {"weighted_nll": lm.detach(), "value_loss": value_loss.detach(),
                  "weight_mean": masked_mean(weights, mask).detach(), "nll": masked_mean(-logp, mask).detach()}


def filter_documents(docs: list[TokenizedDocument], threshold: float) -> list[TokenizedDocument]:
    """Documents whose score is >= ``threshold``; an error naming the fix if none survive."""
    kept = [d for d in docs if d.doc_score >= threshold]
    if not kept:
        best = max((d.doc_score for d in docs), default=float("nan"))
        raise ValueError(f"filtering at threshold {threshold} keeps no documents (best score {best:.6g}); lower it")
    return kept


def add_control_tokens(doc: TokenizedDocument, good_id: int, bad_id: int, threshold: float = 0.0,
                       drop_token_fraction: float = 0.1, rng: np.random.Generator | None = None) -> TokenizedDocument:
    """Insert ``good_id``/``bad_id`` before the first token of each segment (score >= threshold is good).

    Each segment independently gets no token with probability ``drop_token_fraction``. The
    inserted token carries its segment's score; the plain token sequence is unchanged.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    starts = np.flatnonzero(doc.segment_start)  # (S,)
    keep = rng.random(len(starts)) >= drop_token_fraction
    starts = starts[keep]
    controls = np.where(doc.scores[starts] >= threshold, good_id, bad_id)
    ids = np.insert(doc.ids, starts, controls)
    scores = np.insert(doc.scores, starts, doc.scores[starts])
    seg = np.insert(doc.segment_start, starts, True)
    seg[starts + np.arange(len(starts)) + 1] = False  # the control token now starts the segment
    return TokenizedDocument(ids, scores, seg, doc.doc_score, doc.source)


# --------------------------------------------------------------------------- configs


@dataclass
class MLEConfig:
    """Maximum likelihood: the baseline every PHF objective is compared with."""

    name: str = "mle"
    value_head: bool = False
    conditional: bool = False

    def prepare(self, docs: list[TokenizedDocument], tokenizer: Any, seed: int = 0) -> list[TokenizedDocument]:
        return docs

    def loss(self, logits: Any, labels: Any, token_scores: Any, values: Any = None) -> tuple[Any, dict]:
        return mle_loss(logits, labels)


@dataclass
class FilteringConfig:
    """MLE on documents scoring >= ``threshold`` (PEP8 paper value: 0.002361 violations/char)."""

    threshold: float = -0.002361
    name: str = "filtering"
    value_head: bool = False
    conditional: bool = False

    def prepare(self, docs: list[TokenizedDocument], tokenizer: Any, seed: int = 0) -> list[TokenizedDocument]:
        return filter_documents(docs, self.threshold)

    def loss(self, logits: Any, labels: Any, token_scores: Any, values: Any = None) -> tuple[Any, dict]:
        return mle_loss(logits, labels)


@dataclass
class ConditionalConfig:
    """Conditional training: control tokens per segment (paper: threshold 0, drop 10%)."""

    threshold: float = 0.0
    drop_token_fraction: float = 0.1
    name: str = "conditional"
    value_head: bool = False
    conditional: bool = True

    def prepare(self, docs: list[TokenizedDocument], tokenizer: Any, seed: int = 0) -> list[TokenizedDocument]:
        good, bad = control_token_ids(tokenizer)
        rng = np.random.default_rng(seed)
        return [add_control_tokens(d, good, bad, self.threshold, self.drop_token_fraction, rng) for d in docs]

    def loss(self, logits: Any, labels: Any, token_scores: Any, values: Any = None) -> tuple[Any, dict]:
        return mle_loss(logits, labels)


@dataclass
class UnlikelihoodConfig:
    """Unlikelihood on tokens of bad segments (paper: threshold 0, alpha 0.01)."""

    threshold: float = 0.0
    alpha: float = 0.01
    name: str = "unlikelihood"
    value_head: bool = False
    conditional: bool = False

    def prepare(self, docs: list[TokenizedDocument], tokenizer: Any, seed: int = 0) -> list[TokenizedDocument]:
        return docs

    def loss(self, logits: Any, labels: Any, token_scores: Any, values: Any = None) -> tuple[Any, dict]:
        return unlikelihood_loss(logits, labels, token_scores, threshold=self.threshold, alpha=self.alpha)


@dataclass
class RWRConfig:
    """Reward-weighted regression (paper: beta 10)."""

    beta: float = 10.0
    clip_weight_max: float = 1000.0
    name: str = "rwr"
    value_head: bool = False
    conditional: bool = False

    def prepare(self, docs: list[TokenizedDocument], tokenizer: Any, seed: int = 0) -> list[TokenizedDocument]:
        return docs

    def loss(self, logits: Any, labels: Any, token_scores: Any, values: Any = None) -> tuple[Any, dict]:
        return rwr_loss(logits, labels, token_scores, beta=self.beta, clip_weight_max=self.clip_weight_max)


@dataclass
class AWRConfig:
    """Advantage-weighted regression with a trained value head (paper: alpha 0.05, beta 1)."""

    alpha: float = 0.05
    beta: float = 1.0
    clip_weight_max: float = 1000.0
    name: str = "awr"
    value_head: bool = True
    conditional: bool = False

    def prepare(self, docs: list[TokenizedDocument], tokenizer: Any, seed: int = 0) -> list[TokenizedDocument]:
        return docs

    def loss(self, logits: Any, labels: Any, token_scores: Any, values: Any = None) -> tuple[Any, dict]:
        return awr_loss(logits, labels, token_scores, values, alpha=self.alpha, beta=self.beta,
                        clip_weight_max=self.clip_weight_max)


OBJECTIVES = {c.name: c for c in (MLEConfig(), FilteringConfig(), ConditionalConfig(), UnlikelihoodConfig(),
                                  RWRConfig(), AWRConfig())}
