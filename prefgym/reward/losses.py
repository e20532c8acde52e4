"""Pure losses and metrics of preference learning (Bradley-Terry, Plackett-Luce, calibration).

Conventions: ``scores`` (B, K) are reward-model scores of K completions per comparison,
ordered best first; ``mask`` (B, K) is 1 on real completions (K-wise groups are padded to
the batch's largest K); ``tie`` (B,) marks pairs judged equal.

* Pairs: the Bradley-Terry loss ``-log sigmoid(s_chosen - s_rejected)``.
* Ties: the soft label 0.5, ``-(log sigmoid(d) + log sigmoid(-d)) / 2``, which pulls the two
  scores together.
* K-wise rankings: the Plackett-Luce likelihood ``-sum_k log softmax(s_k, ..., s_K)[k]``;
  for K = 2 it is exactly the Bradley-Terry loss.

Example:
    >>> import torch
    >>> loss, logs = preference_loss(torch.tensor([[1.0, 0.0]]), torch.ones(1, 2), torch.tensor([False]))
    >>> round(loss.item(), 4)  # -log sigmoid(1)
    0.3133
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def plackett_luce_nll(scores: "torch.Tensor", mask: "torch.Tensor") -> "torch.Tensor":
    """Per-row negative log-likelihood of the ranking best-first, shape (B,)."""
    import torch

    neg_inf = torch.finfo(scores.dtype).min
    s = scores.masked_fill(mask == 0, neg_inf)  # (B, K)
    # log-sum-exp over each suffix s_k..s_K: flip, cumulative logsumexp, flip back
    suffix = torch.logcumsumexp(s.flip(-1), dim=-1).flip(-1)  # (B, K)
    terms = (s - suffix) * mask  # (B, K)
    last = mask.sum(-1, keepdim=True).long() - 1  # (B, 1) the last item's term is log 1 = 0
    terms = terms.scatter(-1, last, 0.0)
    return -terms.sum(-1)  # (B,)


def preference_loss(scores: "torch.Tensor", mask: "torch.Tensor", tie: "torch.Tensor",
                    ) -> tuple["torch.Tensor", dict[str, float]]:
    """Mean loss over a batch of pairs, ties and K-wise rankings; returns ``(loss, logs)``.

    ``logs`` holds ``accuracy`` (top completion scored highest, over non-tie rows) and
    ``margin`` (mean s_best - s_second).
    """
    import torch
    import torch.nn.functional as F

    tie = tie.bool()
    nll = plackett_luce_nll(scores, mask)  # (B,)
    diff = scores[:, 0] - scores[:, 1]  # (B,)
    tie_nll = -0.5 * (F.logsigmoid(diff) + F.logsigmoid(-diff))  # (B,)
    loss = torch.where(tie, tie_nll, nll).mean()
    with torch.no_grad():
        strict = ~tie
        best = scores.masked_fill(mask == 0, float("-inf")).argmax(-1) == 0  # (B,)
        accuracy = best[strict].float().mean().item() if strict.any() else float("nan")
    return loss, {"loss": loss.item(), "accuracy": accuracy, "margin": diff.mean().item()}


def expected_calibration_error(p_chosen: np.ndarray, labels: np.ndarray,
                               n_bins: int = 10) -> tuple[float, dict[str, np.ndarray]]:
    """ECE of binary predictions, with the reliability-diagram bins.

    ``p_chosen`` (N,) is the predicted P(first completion preferred); ``labels`` (N,) is 1 when
    it was preferred. Each prediction counts by its confidence ``max(p, 1 - p)`` in
    ``n_bins`` equal bins over [0.5, 1]; ECE = sum_b (n_b / N) |accuracy_b - confidence_b|.

    Example:
        >>> ece, _ = expected_calibration_error(np.array([0.9, 0.9, 0.2, 0.6]), np.array([1, 0, 0, 1]))
        >>> round(ece, 3)  # (1/4)|1 - 0.6| + (1/4)|1 - 0.8| + (2/4)|0.5 - 0.9|
        0.35
    """
    p = np.asarray(p_chosen, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    if p.shape != y.shape or p.ndim != 1 or p.size == 0:
        raise ValueError(f"need two equal non-empty 1-D arrays, got {p.shape} and {y.shape}")
    confidence = np.maximum(p, 1 - p)
    correct = ((p >= 0.5) == (y == 1)).astype(np.float64)
    edges = np.linspace(0.5, 1.0, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=False), 0, n_bins - 1)
    count = np.bincount(which, minlength=n_bins).astype(np.float64)
    conf_sum = np.bincount(which, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(which, weights=correct, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf, mean_acc = conf_sum / count, acc_sum / count
    filled = count > 0
    ece = float(np.sum(count[filled] / p.size * np.abs(mean_acc[filled] - mean_conf[filled])))
    return ece, {"edges": edges, "count": count, "confidence": mean_conf, "accuracy": mean_acc}


def plot_reliability(bins: dict[str, np.ndarray], path: str, title: str = "reward model calibration") -> None:
    """Write a reliability diagram (accuracy vs confidence per bin, with counts) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from prefgym.utils.io import atomic_open

    edges, count = bins["edges"], bins["count"]
    centers = (edges[:-1] + edges[1:]) / 2
    filled = count > 0
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0.5, 1.0], [0.5, 1.0], "k--", lw=1, label="perfectly calibrated")
    ax.bar(centers[filled], bins["accuracy"][filled], width=np.diff(edges)[filled] * 0.9,
           alpha=0.7, edgecolor="k", label="accuracy in bin")
    for x, y, n in zip(centers[filled], bins["accuracy"][filled], count[filled]):
        ax.annotate(f"{int(n)}", (x, y), ha="center", va="bottom", fontsize=7)
    ax.set(xlim=(0.5, 1.0), ylim=(0.0, 1.05), xlabel="confidence  max(p, 1-p)", ylabel="accuracy", title=title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)
