"""The agent protocol: what the trainer, the evaluator and the leaderboard may call on an agent.

Agents live in the top-level ``agents/`` package and reach prefgym only through Hydra
``_target_`` strings, so this module never imports them. An agent is any object with:

* ``policy`` — the causal LM it samples from (``torch.nn.Module``), and ``batch_size``;
* ``act(env, *, prompts=None, seed=None)`` — one synchronous batch of episodes, a
  :class:`prefgym.rollout.Rollout` (for best-of-n: the chosen completions);
* ``train_step(env, iteration)`` — collect one batch and update; returns ``(rollout, metrics)``
  with metric names namespaced ``rewards/``, ``losses/``, ``kl/``, ``charts/``;
* ``learn(env, iterations, callback=None)`` — ``train_step`` in a loop (see :func:`learn`);
* ``modules()`` / ``optimizer`` / ``extra_state()`` / ``load_extra_state()`` — what a
  checkpoint holds; ``save(path)`` / ``load(path)`` write and read it (:mod:`prefgym.checkpoint`).

No base class: :func:`learn`, :func:`iteration_seed` and :func:`check_agent` are plain
functions that the agents call.

Example:
    >>> from prefgym.agent import iteration_seed
    >>> iteration_seed(0, 3) == iteration_seed(0, 3) != iteration_seed(1, 3)
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from prefgym.rollout import Rollout

Callback = Callable[[int, "Rollout", dict[str, float]], None]
REQUIRED = ("policy", "batch_size", "act", "train_step", "learn", "modules", "extra_state",
            "load_extra_state", "save", "load")


@runtime_checkable
class Agent(Protocol):
    """Structural type of a prefgym agent (see the module docstring)."""

    policy: "torch.nn.Module"
    batch_size: int
    optimizer: "torch.optim.Optimizer | None"

    def act(self, env: Any, *, prompts: list[str] | None = None, seed: int | None = None) -> "Rollout": ...

    def train_step(self, env: Any, iteration: int) -> tuple["Rollout", dict[str, float]]: ...

    def learn(self, env: Any, iterations: int, callback: Callback | None = None) -> "Agent": ...

    def modules(self) -> dict[str, "torch.nn.Module"]: ...

    def extra_state(self) -> dict[str, Any]: ...

    def load_extra_state(self, state: dict[str, Any]) -> None: ...

    def save(self, path: str) -> None: ...

    def load(self, path: str) -> None: ...


def check_agent(agent: Any) -> Any:
    """Return ``agent`` if it has every protocol member, else raise a ``TypeError`` naming the missing ones."""
    missing = [name for name in REQUIRED if not hasattr(agent, name)]
    if missing:
        raise TypeError(f"{type(agent).__name__} is not a prefgym agent: it lacks {missing} "
                        "(see prefgym.agent for the protocol)")
    return agent


def iteration_seed(seed: int, iteration: int) -> int:
    """The sampling seed of one training iteration: a pure function, so a resumed run draws the same."""
    return (int(seed) * 1_000_003 + int(iteration) * 7_919 + 17) % (2 ** 31 - 1)


def learn(agent: Any, env: Any, iterations: int, start: int = 0, callback: Callback | None = None) -> Any:
    """Run ``agent.train_step`` for iterations ``start .. iterations-1``, calling ``callback(i, rollout, metrics)``."""
    for iteration in range(start, iterations):
        rollout, metrics = agent.train_step(env, iteration)
        if callback is not None:
            callback(iteration, rollout, metrics)
    return agent


def rollout_metrics(rollout: "Rollout") -> dict[str, float]:
    """Reward and length statistics of a rollout, namespaced ``rewards/`` and ``charts/``."""
    scores = rollout.scores.double()
    metrics = {
        "rewards/score_mean": float(scores.mean()),
        "rewards/score_std": float(scores.std()) if len(scores) > 1 else 0.0,
        "charts/completion_tokens": float(rollout.lengths.double().mean()),
    }
    for key, values in rollout.infos.items():
        if key.startswith("gold/") and values.dtype.kind in "fiub":
            metrics[f"rewards/{key}"] = float(values.astype(float).mean())
    return metrics
