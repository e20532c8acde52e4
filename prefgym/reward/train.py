"""Training and evaluating a Bradley-Terry reward model on comparisons.

Two modes: fine-tune the whole model, or ``freeze_backbone=True``: compute each distinct
``prompt + completion``'s pooled features once, then train only the head on the cached
features (seconds instead of minutes; good with a strong pretrained encoder such as MiniLM).

Metrics on held-out comparisons: ``accuracy`` (the labelled-chosen completion scored higher,
against the dataset's possibly noisy labels), ``ece`` (expected calibration error of
``sigmoid(s_chosen - s_rejected)``), and ``noiseless_accuracy`` / ``noiseless_ece`` against
the noiseless simulated annotator (the sign of the stored gold scores) where rows carry them.
K-wise rows count as all their ordered pairs; ties are left out of accuracy.

Example:
    >>> from prefgym.reward.data import Comparison
    >>> from prefgym.reward.model import RewardModel
    >>> rm = RewardModel.build({"tokenizer": "prefgym/toy-chars", "n_layer": 1, "n_embd": 16, "n_head": 2})
    >>> data = [Comparison("x ", ("aaa", "bbb")), Comparison("y ", ("aa", "b"))] * 4
    >>> history = train_reward_model(rm, data, data, RewardTrainConfig(epochs=1, batch_size=4, progress=False))
    >>> sorted(history[-1])[:3]
    ['accuracy', 'ece', 'epoch']
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from prefgym.reward.data import Comparison
from prefgym.reward.losses import expected_calibration_error, preference_loss
from prefgym.reward.model import RewardModel


@dataclass
class RewardTrainConfig:
    """Optimisation settings of reward-model training."""

    epochs: int = 2
    """Passes over the training comparisons."""
    batch_size: int = 16
    """Comparisons per optimiser step (each contributes K texts)."""
    lr: float = 3e-4
    """AdamW learning rate (backbone and head; the head alone when the backbone is frozen)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_steps: int = 20
    """Linear warm-up steps, then cosine decay to 10% of ``lr``."""
    freeze_backbone: bool = False
    """Train only the head, on features cached once per distinct text."""
    grad_clip: float = 1.0
    """Gradient-norm clip."""
    seed: int = 0
    """Seed of initialisation order and shuffling."""
    eval_batch_size: int = 64
    """Texts per forward when scoring for evaluation or caching features."""
    progress: bool = True
    """Show a progress bar."""


def pack(comparisons: Sequence[Comparison]) -> tuple[list[tuple[str, str]], torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flatten a batch: distinct (prompt, completion) texts, ``index`` (B, K) into them (-1 = pad),
    ``mask`` (B, K) and ``tie`` (B,)."""
    k_max = max(c.k for c in comparisons)
    texts: dict[tuple[str, str], int] = {}
    index = torch.full((len(comparisons), k_max), -1, dtype=torch.long)  # (B, K)
    for row, c in enumerate(comparisons):
        for j, completion in enumerate(c.completions):
            index[row, j] = texts.setdefault((c.prompt, completion), len(texts))
    mask = (index >= 0).float()  # (B, K)
    tie = torch.tensor([c.tie for c in comparisons], dtype=torch.bool)  # (B,)
    return list(texts), index, mask, tie


def _gather(flat: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return flat[index.clamp(min=0)] * (index >= 0)  # (B, K); padded slots are masked anyway


def cache_features(model: RewardModel, texts: Sequence[tuple[str, str]], batch_size: int = 64,
                   progress: bool = False) -> torch.Tensor:
    """Pooled features of every (prompt, completion), (N, H), computed once without gradients."""
    out = []
    model.eval()
    steps = range(0, len(texts), batch_size)
    with torch.no_grad():
        for i in _progress(steps, "caching features", progress):
            chunk = texts[i:i + batch_size]
            enc = model.encode([p for p, _ in chunk], [c for _, c in chunk])
            out.append(model.features(**enc).float().cpu())
    return torch.cat(out)


def _progress(iterable: Any, description: str, enabled: bool) -> Any:
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=description, leave=False)


def _schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _batches(comparisons: Sequence[Comparison], batch_size: int, rng: random.Random) -> list[list[Comparison]]:
    order = list(range(len(comparisons)))
    rng.shuffle(order)
    return [[comparisons[i] for i in order[s:s + batch_size]] for s in range(0, len(order), batch_size)]


def train_reward_model(model: RewardModel, train: Sequence[Comparison], validation: Sequence[Comparison],
                       config: RewardTrainConfig | None = None,
                       on_epoch: Callable[[dict], None] | None = None) -> list[dict]:
    """Train ``model`` in place; evaluate after each epoch; return the per-epoch metrics.

    Also sets the model's score normalisation (mean/std of its scores on training texts).
    """
    config = config or RewardTrainConfig()
    if not train or not validation:
        raise ValueError(f"need training and validation comparisons, got {len(train)} and {len(validation)}")
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    scorer = _feature_scorer(model, train, validation, config) if config.freeze_backbone else None
    params = model.head.parameters() if config.freeze_backbone else model.parameters()
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    total = config.epochs * math.ceil(len(train) / config.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _schedule(s, total, config.warmup_steps))
    history = []
    for epoch in range(config.epochs):
        model.train()
        losses = []
        for batch in _progress(_batches(train, config.batch_size, rng), f"epoch {epoch + 1}", config.progress):
            texts, index, mask, tie = pack(batch)
            flat = scorer(texts) if scorer else model(**model.encode([p for p, _ in texts], [c for _, c in texts]))
            loss, _ = preference_loss(_gather(flat, index), mask, tie)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"reward-model loss is {loss.item()} at epoch {epoch}; lower lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            sched.step()
            losses.append(loss.item())
        metrics = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
                   **evaluate_reward_model(model, validation, config.eval_batch_size, scorer)}
        history.append(metrics)
        if on_epoch:
            on_epoch(metrics)
    set_normalisation(model, train, config.eval_batch_size, scorer)
    return history


def _feature_scorer(model: RewardModel, train: Sequence[Comparison], validation: Sequence[Comparison],
                    config: RewardTrainConfig) -> Callable[[list[tuple[str, str]]], torch.Tensor]:
    """Cache features of every text once; return texts -> head scores (through the cache)."""
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    texts = list(dict.fromkeys((c.prompt, x) for c in [*train, *validation] for x in c.completions))
    features = cache_features(model, texts, config.eval_batch_size, config.progress)  # (N, H)
    row = {t: i for i, t in enumerate(texts)}

    def score(batch_texts: list[tuple[str, str]]) -> torch.Tensor:
        idx = torch.tensor([row[t] for t in batch_texts], dtype=torch.long)
        device = next(model.head.parameters()).device
        return model.head(features[idx].to(device)).squeeze(-1)  # (n,)

    return score


def _score_all(model: RewardModel, comparisons: Sequence[Comparison], batch_size: int,
               scorer: Callable | None) -> list[torch.Tensor]:
    texts, index, _, _ = pack(list(comparisons))
    with torch.no_grad():
        if scorer is not None:
            flat = torch.cat([scorer(texts[i:i + 4096]) for i in range(0, len(texts), 4096)]).cpu()
        else:
            flat = model.score_texts([p for p, _ in texts], [c for _, c in texts], batch_size)
    return [flat[index[r, :c.k]] for r, c in enumerate(comparisons)]


def set_normalisation(model: RewardModel, comparisons: Sequence[Comparison], batch_size: int = 64,
                      scorer: Callable | None = None) -> None:
    """Store the mean and std of the model's scores on these comparisons' texts."""
    scores = torch.cat(_score_all(model, comparisons, batch_size, scorer))
    model.score_mean.fill_(scores.mean().item())
    model.score_std.fill_(max(scores.std().item(), 1e-6) if scores.numel() > 1 else 1.0)


def evaluate_reward_model(model: RewardModel, comparisons: Sequence[Comparison], batch_size: int = 64,
                          scorer: Callable | None = None, reliability_png: str | None = None) -> dict[str, float]:
    """Held-out accuracy and ECE against the labels and against the noiseless annotator."""
    scores = _score_all(model, comparisons, batch_size, scorer)
    p_first, noiseless_p, noiseless_y, tie_gaps = [], [], [], []
    for c, s in zip(comparisons, scores):
        if c.tie:
            tie_gaps.append(abs(float(s[0] - s[1])))
            continue
        for i in range(c.k):
            for j in range(i + 1, c.k):
                p = float(torch.sigmoid(s[i] - s[j]))
                p_first.append(p)
                if c.gold is not None and c.gold[i] != c.gold[j]:
                    noiseless_p.append(p)
                    noiseless_y.append(int(c.gold[i] > c.gold[j]))
    metrics: dict[str, float] = {"n_pairs": len(p_first), "n_ties": len(tie_gaps)}
    if p_first:
        p = np.array(p_first)
        ece, bins = expected_calibration_error(p, np.ones_like(p, dtype=np.int64))
        metrics.update(accuracy=float(np.mean(p > 0.5)), ece=ece)
        if reliability_png:
            from prefgym.reward.losses import plot_reliability

            plot_reliability(bins, reliability_png, "held-out labels")
    if noiseless_p:
        p, y = np.array(noiseless_p), np.array(noiseless_y)
        ece, bins = expected_calibration_error(p, y)
        metrics.update(noiseless_accuracy=float(np.mean((p > 0.5) == (y == 1))), noiseless_ece=ece,
                       n_noiseless=len(p))
        if reliability_png:
            from prefgym.reward.losses import plot_reliability

            plot_reliability(bins, reliability_png.replace(".png", "_noiseless.png"), "noiseless annotator")
    if tie_gaps:
        metrics["tie_mean_gap"] = float(np.mean(tie_gaps))
    return metrics
