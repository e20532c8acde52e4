"""Best-of-n sampling: the inference-time baseline (no training).

For each prompt, sample ``n`` completions from the base policy and keep the one the env's
preference model scores highest. It needs no gradient step, and its KL to the base policy
is at most ``log n - (n - 1) / n`` nats (Stiennon et al. 2020), so it marks the
reward/KL frontier that a trained agent should beat. ``train_step`` only samples and
reports, so the trainer treats it like every other agent.

Example:
    >>> import torch
    >>> from agents.best_of_n import best_indices
    >>> best_indices(torch.tensor([[0.1, 0.9], [0.5, 0.2]])).tolist()  # (n, B) scores -> best sample per row
    [1, 0]
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from agents import functional as AF


@dataclasses.dataclass
class BestOfNConfig:
    """Best-of-n settings."""

    batch_size: int = 64  # prompts per iteration
    n: int = 4  # samples per prompt
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    device: str = "auto"
    mixed_precision: bool = False


def best_indices(scores: torch.Tensor) -> torch.Tensor:
    """Which of the ``n`` samples is best for each row: scores (n, B) -> (B,) (first one on ties)."""
    return scores.argmax(0)


def select_rows(rollouts: list[Any], choice: torch.Tensor) -> Any:
    """One :class:`~prefgym.rollout.Rollout` whose row ``b`` is row ``b`` of ``rollouts[choice[b]]``."""
    import numpy as np

    from prefgym.rollout import Rollout

    width = max(r.tokens.shape[1] for r in rollouts)

    def pad(t: torch.Tensor, value: float) -> torch.Tensor:
        return torch.nn.functional.pad(t, (0, width - t.shape[1]), value=value)

    rows = torch.arange(len(choice))
    first = rollouts[0]
    pad_id = int(first.tokens[first.token_mask == 0][0]) if (first.token_mask == 0).any() else 0

    def pick(name: str, value: float) -> torch.Tensor:
        return torch.stack([pad(getattr(r, name), value) for r in rollouts])[choice, rows]  # (B, N)

    keys = set.intersection(*(set(r.infos) for r in rollouts))
    infos = {k: np.stack([r.infos[k] for r in rollouts])[choice.numpy(), rows.numpy()] for k in keys}
    return Rollout(first.prompt_ids, first.prompt_mask, pick("tokens", pad_id), pick("token_mask", 0),
                   pick("logprobs", 0.0), pick("rewards", 0.0),
                   torch.stack([r.scores for r in rollouts])[choice, rows], list(first.prompts),
                   [rollouts[int(c)].completions[b] for b, c in enumerate(choice)], infos)


class BestOfNAgent:
    """Sample ``n`` completions per prompt from the (frozen) policy, keep the best-scored one.

    Example:
        >>> from prefgym.models import build_policy
        >>> from prefgym.rollout import make_rollout_env
        >>> env = make_rollout_env("prefgym/ToyTarget-v0", num_envs=4)
        >>> agent = BestOfNAgent(BestOfNConfig(batch_size=4, n=3),
        ...                      build_policy("prefgym/toy-chars", n_layer=1, n_embd=32, n_head=2))
        >>> round(agent.train_step(env, 0)[1]["kl/best_of_n_bound"], 3)
        0.432
    """

    def __init__(self, config: BestOfNConfig, policy: torch.nn.Module):
        if config.n < 1:
            raise ValueError(f"n must be >= 1, got {config.n}")
        self.config = config
        self.batch_size = config.batch_size
        self.device = AF.resolve_device(config.device)
        self.policy = policy.to(self.device).eval()
        self.optimizer = None  # nothing is trained

    def act(self, env: Any, *, prompts: list[str] | None = None, seed: int | None = None):
        """Best of ``n`` samples per prompt: the prompts of the first draw, ``n`` seeds."""
        from prefgym.rollout import generate_rollout

        c = self.config
        base_seed = 0 if seed is None else seed
        rollouts = []
        with AF.autocast(self.device, c.mixed_precision):
            for k in range(c.n):
                rollouts.append(generate_rollout(self.policy, env, temperature=c.temperature, top_k=c.top_k,
                                                 top_p=c.top_p, prompts=prompts, seed=base_seed + 104_729 * k))
                prompts = rollouts[0].prompts  # every sample answers the same prompts
        return select_rows(rollouts, best_indices(torch.stack([r.scores for r in rollouts])))

    def learn(self, env: Any, iterations: int, callback: Any = None) -> "BestOfNAgent":
        from prefgym.agent import learn

        return learn(self, env, iterations, callback=callback)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"policy": self.policy}

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def save(self, path: str) -> None:
        from prefgym.checkpoint import save_agent

        save_agent(self, path)

    def load(self, path: str) -> None:
        from prefgym.checkpoint import load_agent

        load_agent(self, path)

    def train_step(self, env: Any, iteration: int) -> tuple[Any, dict[str, float]]:
        """No update: sample best-of-n once and report its scores and KL bound."""
        from prefgym.agent import iteration_seed, rollout_metrics

        rollout = self.act(env, seed=iteration_seed(self.config.seed, iteration))
        return rollout, {**rollout_metrics(rollout), "kl/best_of_n_bound": AF.best_of_n_kl(self.config.n)}
