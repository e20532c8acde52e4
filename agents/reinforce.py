"""REINFORCE with a baseline (Williams 1992), the simplest policy gradient for LMs.

One completion per prompt; the sequence reward is the score minus ``kl_coef`` times the
sequence KL to a frozen reference; the baseline is an exponential moving average of past
batch-mean rewards (``baseline="ema"``) or the current batch mean (``"batch"``). The loss is
``-(R - b) * log pi(completion)``.

Example:
    >>> from agents.reinforce import ema_update
    >>> ema_update(None, 2.0, 0.9), ema_update(1.0, 2.0, 0.9)
    (2.0, 1.1)
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch

from agents import functional as AF
from agents.rloo import rloo_loss as reinforce_loss
from agents.rloo import sequence_rewards

__all__ = ["REINFORCEAgent", "REINFORCEConfig", "ema_update", "reinforce_loss"]


@dataclasses.dataclass
class REINFORCEConfig:
    """REINFORCE hyperparameters."""

    batch_size: int = 64  # completions per iteration
    lr: float = 1e-5  # Adam learning rate
    baseline: str = "ema"  # "ema" (moving average of rewards), "batch" (batch mean) or "none"
    ema_decay: float = 0.9  # weight of the old baseline in the moving average
    kl_coef: float = 0.05  # sequence KL penalty weight (0 skips the reference forward)
    reward_scale: float = 1.0  # multiply env scores
    whiten_advantages: bool = False  # normalise advantages per batch
    max_grad_norm: float = 1.0  # gradient clipping (<= 0 disables)
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    device: str = "auto"
    mixed_precision: bool = False


def ema_update(baseline: float | None, value: float, decay: float) -> float:
    """``decay * baseline + (1 - decay) * value``; the first value starts the average."""
    return value if baseline is None else round(decay * baseline + (1.0 - decay) * value, 12)


class REINFORCEAgent:
    """REINFORCE with a moving-average (or batch-mean) baseline and a KL penalty.

    Example:
        >>> from prefgym.models import build_policy
        >>> from prefgym.rollout import make_rollout_env
        >>> env = make_rollout_env("prefgym/ToyTarget-v0", num_envs=4)
        >>> agent = REINFORCEAgent(REINFORCEConfig(batch_size=4),
        ...                        build_policy("prefgym/toy-chars", n_layer=1, n_embd=32, n_head=2))
        >>> _ = agent.train_step(env, iteration=0); agent.baseline is not None
        True
    """

    def __init__(self, config: REINFORCEConfig, policy: torch.nn.Module, ref_policy: torch.nn.Module | None = None):
        if config.baseline not in ("ema", "batch", "none"):
            raise ValueError(f"unknown baseline {config.baseline!r}; choose 'ema', 'batch' or 'none'")
        self.config = config
        self.batch_size = config.batch_size
        self.device = AF.resolve_device(config.device)
        self.policy = policy.to(self.device)
        self.ref_policy = None
        if config.kl_coef != 0.0:
            self.ref_policy = copy.deepcopy(policy) if ref_policy is None else ref_policy.to(self.device)
            self.ref_policy.eval().requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.lr)
        self.baseline: float | None = None

    def act(self, env: Any, *, prompts: list[str] | None = None, seed: int | None = None):
        """Sample completions for ``prompts`` (or the env's own draw) from the current policy."""
        from prefgym.rollout import generate_rollout

        self.policy.eval()
        c = self.config
        with AF.autocast(self.device, c.mixed_precision):
            return generate_rollout(self.policy, env, temperature=c.temperature, top_k=c.top_k, top_p=c.top_p,
                                    prompts=prompts, seed=seed)

    def learn(self, env: Any, iterations: int, callback: Any = None) -> "REINFORCEAgent":
        from prefgym.agent import learn

        return learn(self, env, iterations, callback=callback)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"policy": self.policy}

    def extra_state(self) -> dict[str, Any]:
        return {"baseline": self.baseline}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.baseline = state.get("baseline")

    def save(self, path: str) -> None:
        from prefgym.checkpoint import save_agent

        save_agent(self, path)

    def load(self, path: str) -> None:
        from prefgym.checkpoint import load_agent

        load_agent(self, path)

    def _baseline(self, rewards: torch.Tensor) -> torch.Tensor:
        c = self.config
        if c.baseline == "batch":
            return rewards.mean().expand_as(rewards)
        if c.baseline == "none":
            return torch.zeros_like(rewards)
        # EMA of past batches only, so the baseline does not depend on this batch's samples.
        value = float(rewards.mean()) if self.baseline is None else self.baseline
        self.baseline = ema_update(self.baseline, float(rewards.mean()), c.ema_decay)
        return torch.full_like(rewards, value)

    def train_step(self, env: Any, iteration: int) -> tuple[Any, dict[str, float]]:
        """Sample one completion per prompt, subtract the baseline, one policy-gradient step."""
        from prefgym.agent import iteration_seed, rollout_metrics

        c = self.config
        rollout = self.act(env, seed=iteration_seed(c.seed, iteration))
        b = AF.rollout_batch(rollout, self.device)
        self.policy.train()
        with AF.autocast(self.device, c.mixed_precision):
            logprobs = AF.token_logprobs(self.policy, b["prompt_ids"], b["prompt_mask"], b["tokens"], b["mask"],
                                         c.temperature)["logprobs"]  # (B, N)
            kl = None
            if self.ref_policy is not None:
                with torch.no_grad():
                    ref = AF.token_logprobs(self.ref_policy, b["prompt_ids"], b["prompt_mask"], b["tokens"],
                                            b["mask"], c.temperature)["logprobs"]
                kl = AF.kl_estimate(logprobs.detach(), ref, "k1") * b["mask"]  # (B, N)
            rewards = sequence_rewards(b["scores"] * c.reward_scale, kl, c.kl_coef)  # (B,)
            advantages = rewards - self._baseline(rewards)
            if c.whiten_advantages:
                advantages = AF.masked_whiten(advantages, torch.ones_like(advantages))
            loss, stats = reinforce_loss(logprobs, advantages, b["mask"])
        AF.check_finite(loss, "REINFORCE loss", iteration)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        stats["losses/grad_norm"] = AF.clip_grad(self.policy.parameters(), c.max_grad_norm)
        self.optimizer.step()
        self.policy.eval()
        if kl is not None:
            stats["kl/ref"] = float(kl.sum(-1).mean())
        stats["rewards/total"] = float(rewards.mean())
        stats["rewards/baseline"] = float(self.baseline) if self.baseline is not None else 0.0
        return rollout, {**rollout_metrics(rollout), **stats}
