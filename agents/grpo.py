"""GRPO: group-relative policy optimisation (Shao et al. 2024, DeepSeekMath).

Each iteration draws ``batch_size / group_size`` prompts and samples ``group_size``
completions of each; a completion's advantage is its score minus its group's mean, divided
by the group's std (``scale_rewards``); every token of the completion gets that advantage.
The loss is PPO's clipped surrogate per token plus ``beta`` times the k3 KL estimate to a
frozen reference, averaged per sequence then over the batch (``loss_type="grpo"``, the
paper's) or over all tokens (``"dapo"``). No value model.

Example:
    >>> import torch
    >>> from agents.grpo import grpo_loss
    >>> lp = torch.zeros(2, 3)
    >>> loss, _ = grpo_loss(lp, lp, None, torch.tensor([1.0, -1.0]), torch.ones(2, 3))
    >>> float(loss)
    0.0
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch

from agents import functional as AF


@dataclasses.dataclass
class GRPOConfig:
    """GRPO hyperparameters; defaults follow the DeepSeekMath paper and TRL's GRPOConfig."""

    batch_size: int = 64  # completions per iteration (= prompts x group_size)
    group_size: int = 8  # completions per prompt (TRL's num_generations)
    lr: float = 1e-6  # Adam learning rate (TRL default)
    beta: float = 0.04  # KL-to-reference weight (paper 0.04; 0 skips the reference forward)
    epsilon: float = 0.2  # ratio clip
    num_iterations: int = 1  # optimisation passes per batch (the paper's mu)
    num_minibatches: int = 1  # minibatches per pass
    scale_rewards: bool = True  # divide by the group std (Dr. GRPO argues for False)
    loss_type: str = "grpo"  # "grpo": per-sequence token mean; "dapo": token mean over the batch
    reward_scale: float = 1.0  # multiply env scores
    max_grad_norm: float = 1.0  # gradient clipping (<= 0 disables)
    micro_batch_size: int = 0  # rows per forward/backward (gradient accumulation; 0 = whole minibatch)
    temperature: float = 1.0  # sampling temperature
    top_k: int = 0
    top_p: float = 1.0
    block_eos: bool = False  # never sample EOS (HF's min_new_tokens for the whole episode): no early exits
    seed: int = 0
    device: str = "auto"
    mixed_precision: bool = False


def group_advantages(scores: torch.Tensor, group_size: int, scale: bool = True, eps: float = 1e-4) -> torch.Tensor:
    """``(r - mean_group) / (std_group + eps)`` for consecutive groups of ``group_size`` (B,) -> (B,).

    Example:
        >>> group_advantages(torch.tensor([1.0, 3.0, 5.0, 5.0]), 2, scale=False).tolist()
        [-1.0, 1.0, 0.0, 0.0]
    """
    groups = scores.view(-1, group_size)  # (G, K)
    centred = groups - groups.mean(-1, keepdim=True)
    if scale:
        centred = centred / (groups.std(-1, keepdim=True) + eps)
    return centred.reshape(-1)


def grpo_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, ref_logprobs: torch.Tensor | None,
              advantages: torch.Tensor, mask: torch.Tensor, epsilon: float = 0.2, beta: float = 0.04,
              loss_type: str = "grpo") -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped surrogate with sequence advantages (B,) broadcast over tokens (B, N), plus ``beta`` k3 KL."""
    ratio = torch.exp(logprobs - old_logprobs)  # (B, N)
    adv = advantages[:, None]  # (B, 1)
    per_token = -torch.minimum(ratio * adv, ratio.clamp(1 - epsilon, 1 + epsilon) * adv)  # (B, N)
    kl = None
    if ref_logprobs is not None and beta != 0.0:
        kl = AF.kl_estimate(logprobs, ref_logprobs, "k3")  # (B, N)
        per_token = per_token + beta * kl
    if loss_type == "grpo":
        loss = (AF.masked_mean(per_token, mask, dim=1)).mean()
    elif loss_type == "dapo":
        loss = AF.masked_mean(per_token, mask)
    else:
        raise ValueError(f"unknown loss_type {loss_type!r}; choose 'grpo' or 'dapo'")
    with torch.no_grad():
        clipped = ((ratio < 1 - epsilon) & (adv < 0)) | ((ratio > 1 + epsilon) & (adv > 0))
        stats = {"losses/policy": float(loss), "losses/clipfrac": float(AF.masked_mean(clipped.float(), mask))}
        if kl is not None:
            stats["kl/k3"] = float(AF.masked_mean(kl, mask))
    return loss, stats


class GRPOAgent:
    """GRPO on a prefgym env (prompts drawn from the env's split, ``group_size`` samples each).

    Example:
        >>> from prefgym.models import build_policy
        >>> from prefgym.rollout import make_rollout_env
        >>> env = make_rollout_env("prefgym/ToyTarget-v0", num_envs=4)
        >>> agent = GRPOAgent(GRPOConfig(batch_size=4, group_size=2),
        ...                   build_policy("prefgym/toy-chars", n_layer=1, n_embd=32, n_head=2))
        >>> rollout, metrics = agent.train_step(env, iteration=0)
        >>> len(rollout.prompts), rollout.prompts[0] == rollout.prompts[1]
        (4, True)
    """

    def __init__(self, config: GRPOConfig, policy: torch.nn.Module, ref_policy: torch.nn.Module | None = None):
        if config.batch_size % config.group_size:
            raise ValueError(f"batch_size ({config.batch_size}) must be a multiple of group_size ({config.group_size})")
        self.config = config
        self.batch_size = config.batch_size
        self.device = AF.resolve_device(config.device)
        self.policy = policy.to(self.device)
        self.ref_policy = None
        if config.beta != 0.0:  # no reference forward at all when the KL term is off
            self.ref_policy = copy.deepcopy(policy) if ref_policy is None else ref_policy.to(self.device)
            self.ref_policy.eval().requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.lr)
        eos = getattr(policy.config, "eos_token_id", None)
        self.blocked_token_ids: tuple[int, ...] = (int(eos),) if config.block_eos and eos is not None else ()

    def act(self, env: Any, *, prompts: list[str] | None = None, seed: int | None = None):
        """Sample completions for ``prompts`` (or the env's own draw) from the current policy."""
        from prefgym.rollout import generate_rollout

        self.policy.eval()
        c = self.config
        with AF.autocast(self.device, c.mixed_precision):
            return generate_rollout(self.policy, env, temperature=c.temperature, top_k=c.top_k, top_p=c.top_p,
                                    blocked_token_ids=self.blocked_token_ids, prompts=prompts, seed=seed)

    def learn(self, env: Any, iterations: int, callback: Any = None) -> "GRPOAgent":
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
        """Sample groups, compute group-relative advantages, run ``num_iterations`` clipped updates."""
        from prefgym.agent import iteration_seed, rollout_metrics

        c = self.config
        seed = iteration_seed(c.seed, iteration)
        split = getattr(env, "unwrapped", env).prompt_split
        prompts = AF.grouped_prompts(split, c.batch_size // c.group_size, c.group_size, seed)
        rollout = self.act(env, prompts=prompts, seed=seed)
        batch = AF.rollout_batch(rollout, self.device)
        batch["advantages"] = group_advantages(batch["scores"] * c.reward_scale, c.group_size, c.scale_rewards)
        if self.ref_policy is not None:
            with AF.autocast(self.device, c.mixed_precision):
                batch["ref_logprobs"] = AF.chunked_logprobs(self.ref_policy, batch, c.temperature, c.micro_batch_size,
                                                            self.blocked_token_ids)
        stats = self._update(batch, seed, iteration)
        return rollout, {**rollout_metrics(rollout), **stats}

    def _update(self, batch: dict[str, torch.Tensor], seed: int, iteration: int) -> dict[str, float]:
        c = self.config
        self.policy.train()
        generator = torch.Generator().manual_seed(seed)
        totals: dict[str, float] = {}
        count = 0
        for _ in range(c.num_iterations):
            order = torch.randperm(batch["tokens"].shape[0], generator=generator)
            for rows in order.chunk(max(1, c.num_minibatches)):
                mb = {k: v[rows.to(v.device)] for k, v in batch.items()}
                for key, value in self._minibatch_step(mb, iteration).items():
                    totals[key] = totals.get(key, 0.0) + value
                count += 1
        self.policy.eval()
        return {key: value / count for key, value in totals.items()}

    def _minibatch_step(self, mb: dict[str, torch.Tensor], iteration: int) -> dict[str, float]:
        c = self.config
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        for chunk, row_w, token_w in AF.micro_batches(mb, c.micro_batch_size):
            weight = row_w if c.loss_type == "grpo" else token_w  # per-sequence mean vs token mean
            with AF.autocast(self.device, c.mixed_precision):
                logprobs = AF.token_logprobs(self.policy, chunk["prompt_ids"], chunk["prompt_mask"], chunk["tokens"],
                                             chunk["mask"], c.temperature,
                                             blocked_token_ids=self.blocked_token_ids)["logprobs"]  # (B, N)
                # With one pass the "old" policy is the current one (ratio 1, as TRL does); with more,
                # the sampling log-probs are the old policy's.
                old = logprobs.detach() if c.num_iterations == 1 else chunk["sample_logprobs"]
                loss, stats = grpo_loss(logprobs, old, chunk.get("ref_logprobs"), chunk["advantages"],
                                        chunk["mask"], c.epsilon, c.beta, c.loss_type)
            AF.check_finite(loss, "GRPO loss", iteration)
            (loss * weight).backward()
            for key, value in stats.items():
                totals[key] = totals.get(key, 0.0) + weight * value
        totals["losses/grad_norm"] = AF.clip_grad(self.policy.parameters(), c.max_grad_norm)
        self.optimizer.step()
        return totals
