"""Simulated annotators: a scorer plus a realistic noise model.

* ``BoltzmannAnnotator``: Boltzmann-rational choice, P(a) = sigmoid((s_a - s_b) / T)
  (T = 0 is a hard argmax with random tie breaks), then a label flip with probability
  ``flip_prob`` (AlpacaFarm's simulated annotators flip 25% of training labels).
* ``AnnotatorPool``: every comparison goes to one annotator drawn from a pool whose members
  disagree (different scorers, temperatures, flip rates); the annotator id is recorded.

Labels are deterministic given ``seed``: each call consumes the random stream in order.

Example:
    >>> from prefgym.preferences import BoltzmannAnnotator
    >>> ann = BoltzmannAnnotator({"_target_": "prefgym.preferences.LengthScorer", "target_chars": 3},
    ...                          temperature=0.0)
    >>> ann.label("p", "abc", "abcdef")  # choice 0 = a preferred; margin = |s_a - s_b|
    (0, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from prefgym.preferences.base import build_scorer, plain_config


@dataclass
class Annotations:
    """Labels for N comparisons of ``a`` against ``b``; all arrays have shape (N,)."""

    choice: np.ndarray  # int64: 0 = a preferred, 1 = b preferred
    margin: np.ndarray  # float64: |s_a - s_b| under the labelling annotator's scorer
    score_a: np.ndarray
    score_b: np.ndarray
    annotator_id: np.ndarray  # int64: index in the pool (0 for a single annotator)
    annotator_names: list[str]  # annotator_names[annotator_id[i]] labelled comparison i


def _check_pairs(prompts: Sequence[str], a: Sequence[str], b: Sequence[str]) -> None:
    if isinstance(prompts, str) or isinstance(a, str) or isinstance(b, str):
        raise TypeError("label_batch takes lists of prompts and completions; use label() for one pair")
    if not len(prompts) == len(a) == len(b):
        raise ValueError(
            f"got {len(prompts)} prompts, {len(a)} completions a and {len(b)} completions b; "
            "pass one prompt per pair"
        )


class BoltzmannAnnotator:
    """A Boltzmann-rational annotator with label flips, on top of any scorer.

    Args:
        scorer: a ``_target_`` dict, a scorer object, or a reward callable.
        temperature: Bradley-Terry temperature; 0 = always pick the higher score.
        flip_prob: probability that the (already sampled) label is flipped, in [0, 1].
        seed: seed of this annotator's random stream.
        name: id written into preference datasets; defaults to one built from the settings.

    Example:
        >>> ann = BoltzmannAnnotator({"_target_": "prefgym.preferences.TargetCharScorer"}, seed=1)
        >>> choices, margins = ann.label_batch(["p", "p"], ["aaaa", "bbbb"], ["bbbb", "aaaa"])
        >>> margins.tolist()
        [1.0, 1.0]
    """

    def __init__(self, scorer: Any, temperature: float = 1.0, flip_prob: float = 0.0, seed: int = 0,
                 name: str | None = None) -> None:
        if not (temperature >= 0 and math.isfinite(temperature)):
            raise ValueError(f"temperature must be a finite float >= 0, got {temperature}")
        if not 0.0 <= flip_prob <= 1.0:
            raise ValueError(f"flip_prob must be in [0, 1], got {flip_prob}")
        self.scorer = plain_config(scorer)
        self._scorer = build_scorer(self.scorer)
        self.temperature = float(temperature)
        self.flip_prob = float(flip_prob)
        self.seed = int(seed)
        scorer_name = getattr(self._scorer, "name", type(self._scorer).__name__)
        self.name = name or f"{scorer_name}(T={self.temperature:g},flip={self.flip_prob:g})"
        self._rng = np.random.default_rng(self.seed)

    def reset(self, seed: int | None = None) -> None:
        """Restart the random stream (from ``seed`` or the constructor's seed)."""
        self._rng = np.random.default_rng(self.seed if seed is None else seed)

    def choose(self, score_a: np.ndarray, score_b: np.ndarray) -> np.ndarray:
        """Sampled choices (0 = a) for given scores; consumes 2 uniforms per comparison."""
        u = self._rng.random((len(score_a), 2))  # same draws whatever the temperature: reproducible
        diff = score_a - score_b
        if self.temperature == 0:
            prefer_a = np.where(diff == 0, u[:, 0] < 0.5, diff > 0)
        else:
            # sigmoid via tanh: stable for any diff / T, no overflow warnings
            p_a = 0.5 * (1.0 + np.tanh(0.5 * diff / self.temperature))
            prefer_a = u[:, 0] < p_a
        flip = u[:, 1] < self.flip_prob
        return np.where(prefer_a ^ flip, 0, 1).astype(np.int64)

    def annotate(self, prompts: Sequence[str], a: Sequence[str], b: Sequence[str]) -> Annotations:
        """Label N comparisons and return choices, margins, both scores and annotator ids."""
        _check_pairs(prompts, a, b)
        n = len(prompts)
        scores = self._scorer.score(list(prompts) * 2, list(a) + list(b))  # one batched call
        score_a, score_b = scores[:n], scores[n:]
        return Annotations(
            choice=self.choose(score_a, score_b), margin=np.abs(score_a - score_b),
            score_a=score_a, score_b=score_b, annotator_id=np.zeros(n, np.int64), annotator_names=[self.name],
        )

    def label_batch(self, prompts: Sequence[str], a: Sequence[str], b: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(choices, margins) for N comparisons: int64 0/1 (0 = a preferred) and float64 |s_a - s_b|."""
        out = self.annotate(prompts, a, b)
        return out.choice, out.margin

    def label(self, prompt: str, a: str, b: str) -> tuple[int, float]:
        """(choice, margin) for one comparison: choice 0 means ``a`` is preferred."""
        choice, margin = self.label_batch([prompt], [a], [b])
        return int(choice[0]), float(margin[0])

    def to_config(self) -> dict[str, Any]:
        scorer = self._scorer.to_config() if hasattr(self._scorer, "to_config") else self.scorer
        return {"_target_": "prefgym.preferences.BoltzmannAnnotator", "scorer": scorer,
                "temperature": self.temperature, "flip_prob": self.flip_prob, "seed": self.seed, "name": self.name}


class AnnotatorPool:
    """Each comparison is labelled by one annotator drawn from a pool (weights = draw odds).

    Args:
        annotators: ``BoltzmannAnnotator`` objects or their ``_target_`` dicts; names must differ.
        weights: relative draw probabilities (default uniform).
        seed: seed of the draw of annotators (each annotator keeps its own label stream).

    Example:
        >>> length = {"_target_": "prefgym.preferences.LengthScorer", "target_chars": 2}
        >>> pool = AnnotatorPool([BoltzmannAnnotator(length, 0.0, name="strict"),
        ...                       BoltzmannAnnotator(length, 0.0, flip_prob=1.0, name="contrarian")])
        >>> out = pool.annotate(["p"] * 4, ["ab"] * 4, ["abcd"] * 4)
        >>> [pool.names[i] for i in out.annotator_id] == [["strict", "contrarian"][c] for c in out.choice]
        True
    """

    def __init__(self, annotators: Sequence[Any], weights: Sequence[float] | None = None, seed: int = 0) -> None:
        annotators = plain_config(annotators)
        if not annotators:
            raise ValueError("an AnnotatorPool needs at least one annotator")
        self.annotators = [self._build(a) for a in annotators]
        self.names = [a.name for a in self.annotators]
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"annotator names must be unique in a pool, got {self.names}; pass name=... to each")
        w = np.ones(len(self.annotators)) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (len(self.annotators),) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(
                f"weights must be {len(self.annotators)} finite non-negative numbers, not all 0; got {weights}")
        self.weights = (w / w.sum()).tolist()
        self.seed = int(seed)
        self.name = "pool(" + ",".join(self.names) + ")"
        self._rng = np.random.default_rng(self.seed)

    @staticmethod
    def _build(spec: Any) -> BoltzmannAnnotator:
        if isinstance(spec, Mapping):
            from hydra.utils import instantiate

            return instantiate(dict(spec), _recursive_=False, _convert_="all")
        if not hasattr(spec, "annotate"):
            raise TypeError(
                f"pool members need annotate(); got {type(spec).__name__} (wrap scorers in BoltzmannAnnotator)")
        return spec

    def annotate(self, prompts: Sequence[str], a: Sequence[str], b: Sequence[str]) -> Annotations:
        """Label N comparisons, each by a drawn annotator; ``annotator_id`` says which."""
        _check_pairs(prompts, a, b)
        n = len(prompts)
        ids = self._rng.choice(len(self.annotators), size=n, p=self.weights).astype(np.int64)
        out = Annotations(np.zeros(n, np.int64), np.zeros(n), np.zeros(n), np.zeros(n), ids, list(self.names))
        for k, annotator in enumerate(self.annotators):
            idx = np.flatnonzero(ids == k)
            if idx.size == 0:
                continue
            sub = annotator.annotate([prompts[i] for i in idx], [a[i] for i in idx], [b[i] for i in idx])
            out.choice[idx], out.margin[idx] = sub.choice, sub.margin
            out.score_a[idx], out.score_b[idx] = sub.score_a, sub.score_b
        return out

    def label_batch(self, prompts: Sequence[str], a: Sequence[str], b: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(choices, margins) as ``BoltzmannAnnotator.label_batch``."""
        out = self.annotate(prompts, a, b)
        return out.choice, out.margin

    def label(self, prompt: str, a: str, b: str) -> tuple[int, float]:
        """(choice, margin) for one comparison by one drawn annotator."""
        choice, margin = self.label_batch([prompt], [a], [b])
        return int(choice[0]), float(margin[0])

    def to_config(self) -> dict[str, Any]:
        return {"_target_": "prefgym.preferences.AnnotatorPool", "annotators": [a.to_config() for a in self.annotators],
                "weights": list(self.weights), "seed": self.seed}
