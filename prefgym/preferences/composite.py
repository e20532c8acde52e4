"""Weighted combinations of scorers, for conflicting objectives.

Example:
    >>> from prefgym.preferences import WeightedSum
    >>> ws = WeightedSum({
    ...     "as": {"scorer": {"_target_": "prefgym.preferences.TargetCharScorer", "target": "a"}, "weight": 1.0},
    ...     "short": {"scorer": {"_target_": "prefgym.preferences.LengthScorer", "target_chars": 2}, "weight": 0.5},
    ... })
    >>> ws.score(["p"], ["aaaa"]).tolist()  # 1.0 * 1.0 + 0.5 * -(4 - 2) / 2
    [0.5]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from prefgym.preferences.base import Scorer, build_scorer, plain_config


class WeightedSum(Scorer):
    """Score = sum of ``weight * component score``; parts keep every component's parts.

    Args:
        components: ``{name: {"scorer": <_target_ dict or scorer object>, "weight": float}}``.
            Each component's parts appear as ``"<name>/<part>"`` (``"<name>/score"`` included),
            so a conflict between objectives stays visible in logs.
    """

    name = "weighted_sum"

    def __init__(self, components: Mapping[str, Any], name: str | None = None, temperature: float = 1.0) -> None:
        super().__init__(name=name, temperature=temperature)
        components = plain_config(components)
        if not isinstance(components, Mapping) or not components:
            raise ValueError("components must be a non-empty dict {name: {'scorer': ..., 'weight': float}}")
        self.components: dict[str, dict[str, Any]] = {}
        self._scorers: dict[str, Any] = {}
        for key, entry in components.items():
            entry = plain_config(entry)
            if not isinstance(entry, Mapping) or set(entry) - {"scorer", "weight"} or "scorer" not in entry:
                raise ValueError(
                    f"component {key!r} must be {{'scorer': <_target_ dict or scorer>, 'weight': float}}, got {entry!r}"
                )
            weight = float(entry.get("weight", 1.0))
            if not math.isfinite(weight):
                raise ValueError(f"component {key!r} has non-finite weight {weight}")
            self._scorers[key] = build_scorer(entry["scorer"])
            self.components[key] = {"scorer": entry["scorer"], "weight": weight}

    def _score(self, prompts: list[str], completions: list[str]) -> dict[str, np.ndarray]:
        total = np.zeros(len(completions))
        parts: dict[str, np.ndarray] = {}
        for key, scorer in self._scorers.items():
            if hasattr(scorer, "score_parts"):
                child = scorer.score_parts(prompts, completions)
            else:  # a bare PreferenceModel (e.g. a learned reward model) has only score()
                child = {"score": scorer.score(prompts, completions)}
            total += self.components[key]["weight"] * child["score"]
            parts.update({f"{key}/{part}": value for part, value in child.items()})
        return {"score": total, **parts}
