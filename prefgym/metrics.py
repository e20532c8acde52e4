"""Plain metric functions shared by pretraining and agent evaluation.

Example:
    >>> distinct_n(["a b c", "a b d"], n=1)
    0.6666666666666666
    >>> distinct_n(["a b c", "a b d"], n=2)
    0.75
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def distinct_n(texts: Sequence[str], n: int = 2, tokenize: Any = str.split) -> float:
    """Distinct n-grams over all n-grams across ``texts`` (Li et al. 2016); 0 when there are none."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    total, seen = 0, set()
    for text in texts:
        words = tokenize(text)
        grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def token_nll(model: Any, input_ids: Any, labels: Any, blocked_ids: Sequence[int] = ()) -> tuple[float, int]:
    """Summed NLL (nats) of ``labels`` (B, T; -100 ignored) given ``input_ids`` (B, T), and the token count.

    ``blocked_ids`` are removed from the distribution before scoring (renormalised without
    them), so a conditional model is scored as the sampler uses it: without control tokens.
    """
    import torch

    with torch.no_grad():
        # An explicit all-ones mask: EOS (= pad) inside the text is real text here, not padding.
        logits = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits.float()  # (B, T, V)
        if blocked_ids:
            logits[..., list(blocked_ids)] = float("-inf")
        logp = torch.log_softmax(logits, dim=-1)  # (B, T, V)
        mask = labels != -100  # (B, T)
        picked = logp.gather(-1, torch.where(mask, labels, 0).unsqueeze(-1)).squeeze(-1)  # (B, T)
        return float(-(picked * mask).sum()), int(mask.sum())


def perplexity(model: Any, blocks: dict[str, np.ndarray], batch_size: int = 8, max_blocks: int | None = None,
               blocked_ids: Sequence[int] = ()) -> float:
    """Perplexity of ``model`` on ``blocks`` (``input_ids``/``labels`` arrays, as ``make_blocks`` returns).

    Example:
        >>> from prefgym.models import build_policy
        >>> m = build_policy(n_layer=1, n_embd=32, n_head=2, n_positions=16)
        >>> x = np.random.default_rng(0).integers(0, 8192, (2, 16))
        >>> 1000 < perplexity(m, {"input_ids": x, "labels": x}) < 100000  # untrained: ~vocab size
        True
    """
    import torch

    n = len(blocks["input_ids"]) if max_blocks is None else min(max_blocks, len(blocks["input_ids"]))
    if n == 0:
        raise ValueError("no held-out blocks to compute perplexity on")
    total, count = 0.0, 0
    model.eval()
    for start in range(0, n, batch_size):
        sl = slice(start, min(start + batch_size, n))
        ids = torch.as_tensor(blocks["input_ids"][sl], dtype=torch.long)
        labels = torch.as_tensor(blocks["labels"][sl], dtype=torch.long)
        nll, k = token_nll(model, ids, labels, blocked_ids)
        total, count = total + nll, count + k
    return math.exp(total / max(count, 1))


def summarize_scores(scores: np.ndarray, violations: np.ndarray | None = None) -> dict[str, float]:
    """Mean score, and (with violation counts) the fraction of samples with any violation.

    ``scores`` (P, K): K samples for each of P prompts, higher is better. The misalignment
    is ``-score``; ``max_misalignment_over_k`` is the worst of K samples, averaged over prompts
    (Korbak et al.'s "expected maximum score").
    """
    scores = np.asarray(scores, dtype=float).reshape(len(scores), -1)  # (P, K)
    out = {"misalignment_mean": float(-scores.mean()),
           "max_misalignment_over_k": float((-scores).max(axis=1).mean()),
           "k": int(scores.shape[1])}
    if violations is not None:
        out["fraction_with_violation"] = float((np.asarray(violations) > 0).mean())
    return out
