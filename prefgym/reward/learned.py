"""A trained reward model behind the preference protocol, so any env can use it as its reward.

``LearnedRewardModel(path)`` implements ``score(prompts, completions) -> (N,) float64`` and
``compare(prompt, a, b) -> P(a preferred)`` (Bradley-Terry on raw scores). Scores are
normalised to mean 0 / std 1 on the model's training texts. Built from plain data, so an
env holds it as ``{"_target_": "prefgym.reward.LearnedRewardModel", "path": ...}`` and
reports its simulated scorer as ``gold/*`` beside it.

Example:
    >>> import gymnasium as gym, prefgym
    >>> env = gym.make("prefgym/PEP8-Learned-v0")  # doctest: +SKIP
    >>> LearnedRewardModel("prefgym/pep8-rm").score(["def f(a):\\n"], ["    return a\\n"]).shape  # doctest: +SKIP
    (1,)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np


class LearnedRewardModel:
    """A saved reward model (folder or ``prefgym/<name>``) as a preference model.

    Args:
        path: folder written by ``prefgym reward train`` or a shipped ``prefgym/<name>``.
        device: torch device to score on.
        batch_size: texts per forward pass.
        normalize: map scores to mean 0 / std 1 on the training data (recommended for RL).
        name: label in error messages and datasets.
    """

    def __init__(self, path: str | os.PathLike, device: str = "cpu", batch_size: int = 64,
                 normalize: bool = True, name: str | None = None) -> None:
        from prefgym.reward.model import load_reward_model

        self.path, self.device, self.batch_size, self.normalize = str(path), device, int(batch_size), bool(normalize)
        self.name = name or f"learned({os.path.basename(self.path.rstrip('/'))})"
        self.model = load_reward_model(self.path, device=device)

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """Scores of shape ``(N,)``, float64, finite; higher is preferred."""
        from prefgym.preferences.base import _check_inputs, check_scores

        prompts, completions = _check_inputs(prompts, completions, self.name)
        raw = self.model.score_texts(prompts, completions, self.batch_size).double().numpy()
        if self.normalize:
            raw = (raw - float(self.model.score_mean)) / float(self.model.score_std)
        return check_scores(raw, len(completions), self.name, completions)

    def score_parts(self, prompts: Sequence[str], completions: Sequence[str]) -> dict[str, np.ndarray]:
        """``{"score": ...}``: a learned model has no interpretable parts."""
        return {"score": self.score(prompts, completions)}

    def compare(self, prompt: str, a: str, b: str) -> float:
        """P(a preferred over b) = sigmoid(raw score difference), as the model was trained."""
        s_a, s_b = self.score([prompt, prompt], [a, b])
        diff = (s_a - s_b) * (float(self.model.score_std) if self.normalize else 1.0)
        return 1.0 / (1.0 + math.exp(-diff)) if diff >= 0 else math.exp(diff) / (1.0 + math.exp(diff))

    def to_config(self) -> dict[str, Any]:
        """The ``_target_`` dict that rebuilds this model."""
        return {"_target_": "prefgym.reward.LearnedRewardModel", "path": self.path, "device": self.device,
                "batch_size": self.batch_size, "normalize": self.normalize, "name": self.name}

    def __repr__(self) -> str:
        return f"LearnedRewardModel(path={self.path!r})"
