"""Token-level PPO for language models with a per-token KL penalty to a frozen reference.

The InstructGPT / Stiennon et al. (2020) recipe, as in OpenAI's lm-human-preferences:
each generated token is an action; the reward of token ``t`` is ``-beta * KL_t`` (k1 estimate
``log pi - log ref``) plus the env's reward (the preference score on the last token, or dense
segment rewards); a value head on the policy's final hidden state gives GAE advantages; the
policy and value losses are clipped. ``beta`` is fixed or adapted towards a KL target
(Ziegler et al. 2019).

Cost per iteration: one cached generation (the value head reads the hidden states the
generation computes anyway), one reference forward, and ``ppo_epochs`` forward/backward passes.

Example:
    >>> import torch
    >>> from agents.ppo import ppo_loss
    >>> ones = torch.ones(1, 2)
    >>> loss, stats = ppo_loss(0 * ones, 0 * ones, 0 * ones, 0 * ones, ones, ones, ones)
    >>> round(float(loss), 3), stats["losses/clipfrac"]
    (-0.95, 0.0)
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch

from agents import functional as AF


@dataclasses.dataclass
class PPOConfig:
    """PPO hyperparameters; defaults follow lm-human-preferences / TRL's PPOConfig."""

    batch_size: int = 64  # episodes (completions) per iteration
    lr: float = 1.41e-5  # Adam learning rate (TRL / lm-human-preferences)
    ppo_epochs: int = 4  # optimisation passes over each batch
    num_minibatches: int = 1  # minibatches per epoch
    clip_range: float = 0.2  # policy ratio clip epsilon
    clip_range_value: float = 0.2  # value prediction clip around the old value
    vf_coef: float = 0.1  # value loss weight
    gamma: float = 1.0  # discount (episodes are short; lm-human-preferences uses 1)
    lam: float = 0.95  # GAE lambda
    init_kl_coef: float = 0.2  # beta, the per-token KL penalty weight
    adaptive_kl: bool = True  # adapt beta towards kl_target (Ziegler et al. 2019)
    kl_target: float = 6.0  # target KL per sequence (nats) for the adaptive controller
    kl_horizon: int = 10000  # adaptive controller horizon (episodes)
    reward_scale: float = 1.0  # multiply env rewards (scores of ~1e-2 need scaling against the KL term)
    whiten_advantages: bool = True  # normalise advantages per batch
    entropy_coef: float = 0.0  # entropy bonus (0 in the paper)
    max_grad_norm: float = 1.0  # gradient clipping (<= 0 disables)
    micro_batch_size: int = 0  # rows per forward/backward (gradient accumulation; 0 = whole minibatch)
    temperature: float = 1.0  # sampling temperature (training log-probs use the same)
    top_k: int = 0  # 0 = no top-k filtering
    top_p: float = 1.0  # 1 = no nucleus filtering
    block_eos: bool = False  # never sample EOS (HF's min_new_tokens for the whole episode): no early exits
    seed: int = 0  # seeds prompts, sampling and minibatch order of every iteration
    device: str = "auto"  # "auto", "cuda" or "cpu"
    mixed_precision: bool = False  # bf16 autocast on CUDA


def ppo_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, values: torch.Tensor, old_values: torch.Tensor,
             advantages: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, clip_range: float = 0.2,
             clip_range_value: float = 0.2, vf_coef: float = 0.1) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped PPO policy loss plus ``vf_coef`` times the clipped value loss, token means over ``mask``.

    All inputs (B, N). Returns the loss and ``losses/*`` statistics.
    """
    ratio = torch.exp(logprobs - old_logprobs)  # (B, N)
    pg1 = -advantages * ratio
    pg2 = -advantages * ratio.clamp(1.0 - clip_range, 1.0 + clip_range)
    policy_loss = AF.masked_mean(torch.maximum(pg1, pg2), mask)
    values_clipped = old_values + (values - old_values).clamp(-clip_range_value, clip_range_value)
    vf1, vf2 = (values - returns) ** 2, (values_clipped - returns) ** 2
    value_loss = 0.5 * AF.masked_mean(torch.maximum(vf1, vf2), mask)
    with torch.no_grad():
        stats = {
            "losses/policy": float(policy_loss),
            "losses/value": float(value_loss),
            "losses/clipfrac": float(AF.masked_mean((pg2 > pg1).float(), mask)),
            "losses/value_clipfrac": float(AF.masked_mean((vf2 > vf1).float(), mask)),
            "losses/approx_kl": float(AF.masked_mean(0.5 * (logprobs - old_logprobs) ** 2, mask)),
        }
    return policy_loss + vf_coef * value_loss, stats


def adaptive_kl_coef(coef: float, kl: float, target: float, horizon: int, n_steps: int) -> float:
    """Ziegler et al. (2019): move ``coef`` by ``clip(kl/target - 1, ±0.2) * n_steps/horizon``.

    Example:
        >>> round(adaptive_kl_coef(0.2, kl=12.0, target=6.0, horizon=100, n_steps=10), 4)  # KL too high
        0.204
    """
    error = min(max(kl / target - 1.0, -0.2), 0.2)
    return coef * (1.0 + error * n_steps / horizon)


class PPOAgent:
    """PPO with a value head on the policy's final hidden state and a frozen reference copy.

    Example:
        >>> from prefgym.models import build_policy
        >>> from prefgym.rollout import make_rollout_env
        >>> env = make_rollout_env("prefgym/ToyTarget-v0", num_envs=4)
        >>> agent = PPOAgent(PPOConfig(batch_size=4, lr=1e-3),
        ...                  build_policy("prefgym/toy-chars", n_layer=1, n_embd=32, n_head=2))
        >>> rollout, metrics = agent.train_step(env, iteration=0)
        >>> "kl/ref" in metrics and "losses/value" in metrics
        True
    """

    def __init__(self, config: PPOConfig, policy: torch.nn.Module, ref_policy: torch.nn.Module | None = None):
        self.config = config
        self.batch_size = config.batch_size
        self.device = AF.resolve_device(config.device)
        self.policy = policy.to(self.device)
        self.ref_policy = copy.deepcopy(policy) if ref_policy is None else ref_policy.to(self.device)
        self.ref_policy.eval().requires_grad_(False)
        hidden = self.policy.get_output_embeddings().in_features
        self.value_head = torch.nn.Linear(hidden, 1).to(self.device)
        torch.nn.init.zeros_(self.value_head.weight)  # V = 0 at the start: no bias from a random head
        torch.nn.init.zeros_(self.value_head.bias)
        params = list(self.policy.parameters()) + list(self.value_head.parameters())
        self.optimizer = torch.optim.Adam(params, lr=config.lr, eps=1e-5)
        self.kl_coef = config.init_kl_coef
        eos = getattr(policy.config, "eos_token_id", None)
        self.blocked_token_ids: tuple[int, ...] = (int(eos),) if config.block_eos and eos is not None else ()

    # -- protocol -------------------------------------------------------------------------
    def act(self, env: Any, *, prompts: list[str] | None = None, seed: int | None = None):
        """Sample one batch of completions from the current policy (see :func:`prefgym.rollout.generate_rollout`)."""
        from prefgym.rollout import generate_rollout

        self.policy.eval()
        c = self.config
        with AF.autocast(self.device, c.mixed_precision):
            return generate_rollout(self.policy, env, temperature=c.temperature, top_k=c.top_k, top_p=c.top_p,
                                    blocked_token_ids=self.blocked_token_ids, prompts=prompts, seed=seed)

    def learn(self, env: Any, iterations: int, callback: Any = None) -> "PPOAgent":
        from prefgym.agent import learn

        return learn(self, env, iterations, callback=callback)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"policy": self.policy, "value_head": self.value_head}

    def extra_state(self) -> dict[str, Any]:
        return {"kl_coef": self.kl_coef}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.kl_coef = float(state["kl_coef"])

    def save(self, path: str) -> None:
        from prefgym.checkpoint import save_agent

        save_agent(self, path)

    def load(self, path: str) -> None:
        from prefgym.checkpoint import load_agent

        load_agent(self, path)

    # -- training -------------------------------------------------------------------------
    def train_step(self, env: Any, iteration: int) -> tuple[Any, dict[str, float]]:
        """Collect one batch, compute KL-penalised rewards and GAE, run the PPO epochs."""
        from prefgym.agent import iteration_seed, rollout_metrics

        c = self.config
        seed = iteration_seed(c.seed, iteration)
        with AF.capture_final_hidden(self.policy) as hidden:
            rollout = self.act(env, seed=seed)
        batch = self._prepare(rollout, hidden)
        stats = self._update(batch, seed, iteration)
        seq_kl = float(AF.masked_sum(batch["kl"], batch["mask"], dim=1).mean())
        metrics = {**rollout_metrics(rollout), **stats, "kl/ref": seq_kl, "kl/coef": self.kl_coef,
                   "rewards/total": float(batch["rewards"].sum(1).mean())}
        if c.adaptive_kl:
            self.kl_coef = adaptive_kl_coef(self.kl_coef, seq_kl, c.kl_target, c.kl_horizon, c.batch_size)
        return rollout, metrics

    @torch.no_grad()
    def _prepare(self, rollout: Any, hidden: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        c, dev = self.config, self.device
        batch = {"prompt_ids": rollout.prompt_ids.to(dev), "prompt_mask": rollout.prompt_mask.to(dev),
                 "tokens": rollout.tokens.to(dev), "mask": rollout.token_mask.to(dev).float()}
        n = batch["tokens"].shape[1]
        states = torch.cat([h[:, -1:] for h in hidden[:n]], dim=1).float()  # (B, N, H)
        old_values = self.value_head(states).squeeze(-1) * batch["mask"]  # (B, N)
        with AF.autocast(dev, c.mixed_precision):
            if c.top_k or c.top_p < 1.0:  # sampled from a filtered distribution: recompute under the full one
                old_logprobs = AF.chunked_logprobs(self.policy, batch, c.temperature, c.micro_batch_size,
                                                   self.blocked_token_ids)
            else:
                old_logprobs = rollout.logprobs.to(dev) * batch["mask"]
            ref_logprobs = AF.chunked_logprobs(self.ref_policy, batch, c.temperature, c.micro_batch_size,
                                               self.blocked_token_ids)
        kl = AF.kl_estimate(old_logprobs, ref_logprobs, "k1") * batch["mask"]  # (B, N)
        rewards = rollout.rewards.to(dev) * c.reward_scale - self.kl_coef * kl  # (B, N)
        advantages, returns = AF.gae(rewards, old_values, batch["mask"], c.gamma, c.lam)
        if c.whiten_advantages:
            advantages = AF.masked_whiten(advantages, batch["mask"])
        batch.update(old_logprobs=old_logprobs, old_values=old_values, advantages=advantages,
                     returns=returns, kl=kl, rewards=rewards)
        return batch

    def _update(self, batch: dict[str, torch.Tensor], seed: int, iteration: int) -> dict[str, float]:
        c = self.config
        self.policy.train()
        size = batch["tokens"].shape[0]
        generator = torch.Generator().manual_seed(seed)
        totals: dict[str, float] = {}
        count = 0
        for _ in range(c.ppo_epochs):
            order = torch.randperm(size, generator=generator)
            for rows in order.chunk(max(1, c.num_minibatches)):
                stats = self._minibatch_step({k: v[rows.to(v.device)] for k, v in batch.items()}, iteration)
                for key, value in stats.items():
                    totals[key] = totals.get(key, 0.0) + value
                count += 1
        self.policy.eval()
        return {key: value / count for key, value in totals.items()}

    def _minibatch_step(self, mb: dict[str, torch.Tensor], iteration: int) -> dict[str, float]:
        c = self.config
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        for chunk, _, weight in AF.micro_batches(mb, c.micro_batch_size):  # the loss is a token mean
            with AF.autocast(self.device, c.mixed_precision):
                out = AF.token_logprobs(self.policy, chunk["prompt_ids"], chunk["prompt_mask"], chunk["tokens"],
                                        chunk["mask"], temperature=c.temperature, with_hidden=True, with_entropy=True,
                                        blocked_token_ids=self.blocked_token_ids)
                values = self.value_head(out["hidden"].float()).squeeze(-1)  # (B, N)
                loss, stats = ppo_loss(out["logprobs"], chunk["old_logprobs"], values, chunk["old_values"],
                                       chunk["advantages"], chunk["returns"], chunk["mask"], c.clip_range,
                                       c.clip_range_value, c.vf_coef)
                entropy = AF.masked_mean(out["entropy"], chunk["mask"])
                loss = loss - c.entropy_coef * entropy
            AF.check_finite(loss, "PPO loss", iteration)
            (loss * weight).backward()
            stats.update({"losses/total": float(loss.detach()), "losses/entropy": float(entropy)})
            for key, value in stats.items():
                totals[key] = totals.get(key, 0.0) + weight * value
        totals["losses/grad_norm"] = AF.clip_grad(list(self.policy.parameters()) + list(self.value_head.parameters()),
                                                  c.max_grad_norm)
        self.optimizer.step()
        return totals
