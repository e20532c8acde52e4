"""Learned preference models: comparison datasets, Bradley-Terry reward models, over-optimisation.

Importing this package is cheap (torch loads on first use of a model).

* :mod:`prefgym.reward.data` — pairs, ties and K-wise rankings from JSONL / HF datasets, splits.
* :mod:`prefgym.reward.losses` — Bradley-Terry / Plackett-Luce losses, ECE, reliability plots.
* :mod:`prefgym.reward.model` — backbone + scalar head, safetensors save/load.
* :mod:`prefgym.reward.train` — training (full or on cached features) and held-out metrics.
* :mod:`prefgym.reward.learned` — ``LearnedRewardModel``: a trained model as an env's reward.
* :mod:`prefgym.reward.pairs` — simulated comparison datasets (PEP8 corpus, a policy's samples).
* :mod:`prefgym.reward.overopt` — proxy vs gold reward against KL (Gao et al. 2022).
* ``prefgym reward ...`` — the command line (:mod:`prefgym.reward.cli`).

Example:
    >>> from prefgym.reward import load_comparisons
    >>> load_comparisons([{"prompt": "p", "chosen": "a", "rejected": "b"}])[0].completions
    ('a', 'b')
"""

from __future__ import annotations

from typing import Any

from prefgym.reward.data import Comparison, load_comparisons, load_splits, split_by_prompt

_LAZY = {
    "LearnedRewardModel": "prefgym.reward.learned",
    "RewardModel": "prefgym.reward.model",
    "TokenizerMismatchError": "prefgym.reward.model",
    "load_reward_model": "prefgym.reward.model",
    "save_reward_model": "prefgym.reward.model",
    "RewardTrainConfig": "prefgym.reward.train",
    "train_reward_model": "prefgym.reward.train",
    "evaluate_reward_model": "prefgym.reward.train",
}

__all__ = ["Comparison", "load_comparisons", "load_splits", "split_by_prompt", *_LAZY]


def __getattr__(name: str) -> Any:
    # torch-backed pieces load on first use, so `import prefgym.reward` stays cheap
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'prefgym.reward' has no attribute {name!r}")
