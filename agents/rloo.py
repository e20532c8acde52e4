"""RLOO: REINFORCE with a leave-one-out baseline (Kool et al. 2019; Ahmadian et al. 2024).

``k`` completions per prompt; the sequence reward is the score minus ``kl_coef`` times the
sequence KL to a frozen reference (k1, summed over tokens); a completion's advantage is its
reward minus the mean reward of the other ``k - 1`` completions of its prompt. The loss is
``-advantage * log pi(completion)``: one on-policy gradient step per batch, as in the paper.

Example:
    >>> import torch
    >>> from agents.rloo import rloo_loss
    >>> loss, _ = rloo_loss(torch.tensor([[-1.0, -1.0], [-2.0, 0.0]]), torch.tensor([1.0, -1.0]), torch.ones(2, 2))
    >>> float(loss)  # -(1 * -2 + -1 * -2) / 2
    0.0
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch

from agents import functional as AF


@dataclasses.dataclass
class RLOOConfig:
    """RLOO hyperparameters; defaults follow Ahmadian et al. (2024) and TRL's RLOOConfig."""

    batch_size: int = 64  # completions per iteration (= prompts x group_size)
    group_size: int = 4  # completions per prompt (the paper's k; TRL's rloo_k)
    lr: float = 3e-6  # Adam learning rate (TRL default)
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


def rloo_loss(logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """REINFORCE: ``mean_b(-A_b * sum_t log pi_t)`` with sequence advantages (B,) and token log-probs (B, N)."""
    seq_logprobs = AF.masked_sum(logprobs, mask, dim=1)  # (B,)
    loss = -(advantages * seq_logprobs).mean()
    return loss, {"losses/policy": float(loss.detach())}


def sequence_rewards(scores: torch.Tensor, kl: torch.Tensor | None, kl_coef: float) -> torch.Tensor:
    """Scores (B,) minus ``kl_coef`` times the summed per-token KL (B, N), when given."""
    return scores if kl is None else scores - kl_coef * kl.sum(-1)


class RLOOAgent:
    """RLOO on a prefgym env (prompts drawn from the env's split, ``group_size`` samples each).

    Example:
        >>> from prefgym.models import build_policy
        >>> from prefgym.rollout import make_rollout_env
        >>> env = make_rollout_env("prefgym/ToyTarget-v0", num_envs=4)
        >>> agent = RLOOAgent(RLOOConfig(batch_size=4, group_size=2),
        ...                   build_policy("prefgym/toy-chars", n_layer=1, n_embd=32, n_head=2))
        >>> "losses/policy" in agent.train_step(env, iteration=0)[1]
        True
    """

    def __init__(self, config: RLOOConfig, policy: torch.nn.Module, ref_policy: torch.nn.Module | None = None):
        if config.batch_size % config.group_size:
            raise ValueError(f"batch_size ({config.batch_size}) must be a multiple of group_size ({config.group_size})")
        self.config = config
        self.batch_size = config.batch_size
        self.device = AF.resolve_device(config.device)
        self.policy = policy.to(self.device)
        self.ref_policy = None
        if config.kl_coef != 0.0:
            self.ref_policy = copy.deepcopy(policy) if ref_policy is None else ref_policy.to(self.device)
            self.ref_policy.eval().requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.lr)

    def act(self, env: Any, *, prompts: list[str] | None = None, seed: int | None = None):
        """Sample completions for ``prompts`` (or the env's own draw) from the current policy."""
        from prefgym.rollout import generate_rollout

        self.policy.eval()
        c = self.config
        with AF.autocast(self.device, c.mixed_precision):
            return generate_rollout(self.policy, env, temperature=c.temperature, top_k=c.top_k, top_p=c.top_p,
                                    prompts=prompts, seed=seed)

    def learn(self, env: Any, iterations: int, callback: Any = None) -> "RLOOAgent":
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
        """Sample ``k`` completions per prompt, leave-one-out advantages, one REINFORCE step."""
        from prefgym.agent import iteration_seed, rollout_metrics

        c = self.config
        seed = iteration_seed(c.seed, iteration)
        split = getattr(env, "unwrapped", env).prompt_split
        prompts = AF.grouped_prompts(split, c.batch_size // c.group_size, c.group_size, seed)
        rollout = self.act(env, prompts=prompts, seed=seed)
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
            advantages = rewards - AF.group_baseline(rewards, c.group_size, leave_one_out=True)
            if c.whiten_advantages:
                advantages = AF.masked_whiten(advantages, torch.ones_like(advantages))
            loss, stats = rloo_loss(logprobs, advantages, b["mask"])
        AF.check_finite(loss, "RLOO loss", iteration)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        stats["losses/grad_norm"] = AF.clip_grad(self.policy.parameters(), c.max_grad_norm)
        self.optimizer.step()
        self.policy.eval()
        if kl is not None:
            stats["kl/ref"] = float(kl.sum(-1).mean())
        stats["rewards/total"] = float(rewards.mean())
        return rollout, {**rollout_metrics(rollout), **stats}
