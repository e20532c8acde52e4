"""The rollout fast path: any HF causal LM drives a :class:`TokenVectorEnv`, keeping its KV cache.

One prefill of the left-padded prompts, then one cached forward per generated token for the
whole batch; the env appends tokens, checks stops and scores finished episodes in one call.

Example:
    >>> import torch, gymnasium as gym, prefgym
    >>> from transformers import GPT2Config, GPT2LMHeadModel
    >>> from prefgym.rollout import generate_rollout, make_rollout_env
    >>> env = make_rollout_env("prefgym/ToyTarget-v0", num_envs=4)
    >>> policy = GPT2LMHeadModel(GPT2Config(vocab_size=len(env.tokenizer), n_layer=1, n_embd=32, n_head=2))
    >>> rollout = generate_rollout(policy, env, seed=0)
    >>> rollout.tokens.shape[0], len(rollout.completions)
    (4, 4)
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any

import numpy as np
import torch


@dataclasses.dataclass
class Rollout:
    """A batch of finished episodes. ``N`` is the number of steps actually taken (≤ max_new_tokens)."""

    prompt_ids: torch.Tensor  # (B, P) left-padded prompt tokens
    prompt_mask: torch.Tensor  # (B, P) 1 on real prompt tokens
    tokens: torch.Tensor  # (B, N) sampled token ids; pad after an episode ended
    token_mask: torch.Tensor  # (B, N) 1 on tokens that were real env steps (the final EOS included)
    logprobs: torch.Tensor  # (B, N) log-prob of each sampled token under the sampling distribution
    rewards: torch.Tensor  # (B, N) env reward of each step (terminal mode: only the last one is non-zero)
    scores: torch.Tensor  # (B,) the preference model's score of the final completion
    prompts: list[str]
    completions: list[str]
    infos: dict[str, np.ndarray]  # (B,) per key: the score's parts (and gold/* when the env has a gold scorer)

    @property
    def lengths(self) -> torch.Tensor:
        return self.token_mask.sum(-1)  # (B,)

    @property
    def num_tokens(self) -> int:
        return int(self.token_mask.sum())


def make_rollout_env(env_id: str, num_envs: int, **kwargs: Any):
    """``gymnasium.make_vec`` with the batched entry point and autoreset disabled (synchronous episodes)."""
    import gymnasium as gym

    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                        autoreset_mode="disabled", **kwargs)


def sample_tokens(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample one token per row; return ``(tokens, logprobs)``, both ``(B,)``.

    ``temperature=0`` is greedy (log-prob 0). The log-prob is that of the distribution sampled
    from, after temperature, top-k and top-p.

    Example:
        >>> tokens, logp = sample_tokens(torch.tensor([[0.0, 5.0, 0.0]]), temperature=0)
        >>> tokens.tolist(), logp.tolist()
        ([1], [0.0])
    """
    logits = logits.float()  # (B, V)
    if temperature == 0:
        return logits.argmax(-1), torch.zeros(logits.shape[0], device=logits.device)
    logits = logits / temperature
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # Drop a token when the mass before it already reaches top_p (the top token always stays).
        drop_sorted = (cumulative - sorted_logits.softmax(-1)) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    logprobs = torch.log_softmax(logits, dim=-1)  # (B, V)
    # Inverse-CDF sampling: one uniform number per row. torch.multinomial (and the Gumbel
    # trick) draw one random number per vocabulary entry, which dominates a CPU decode step.
    cdf = logprobs.exp().cumsum(-1)  # (B, V)
    uniform = torch.rand(cdf.shape[0], 1, generator=generator, device=cdf.device)  # (B, 1)
    # right=True skips zero-probability tokens (flat stretches of the CDF).
    tokens = torch.searchsorted(cdf, uniform * cdf[:, -1:], right=True).squeeze(-1)  # (B,)
    tokens = tokens.clamp_(max=cdf.shape[-1] - 1)
    return tokens, logprobs.gather(-1, tokens[:, None]).squeeze(-1)


@functools.lru_cache(maxsize=32)
def _forward_arguments(model_class: type) -> tuple[str, bool]:
    # transformers 5.x renamed `past_key_values` to `cache` in forward(); older releases and
    # many remote models still use the old name. `logits_to_keep` (when there) saves the
    # vocabulary projection of every prompt position at prefill.
    params = inspect.signature(model_class.forward).parameters
    return ("cache" if "cache" in params else "past_key_values"), "logits_to_keep" in params


def model_step(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               position_ids: torch.Tensor, cache: Any = None) -> tuple[torch.Tensor, Any]:
    """One cached forward; return ``(last-position logits (B, V), cache)`` on any transformers version."""
    kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids,
              "use_cache": True}
    cache_name, has_logits_to_keep = _forward_arguments(type(model))
    if has_logits_to_keep:
        kwargs["logits_to_keep"] = 1
    if cache is not None:
        kwargs[cache_name] = cache
    out = model(**kwargs)
    new_cache = getattr(out, "cache", None)
    if new_cache is None:
        new_cache = out.past_key_values
    return out.logits[:, -1, :], new_cache


def _unwrap_vector_env(env: Any) -> Any:
    from gymnasium.vector import AutoresetMode

    base = getattr(env, "unwrapped", env)
    if not hasattr(base, "_batch") or base.metadata.get("autoreset_mode") != AutoresetMode.DISABLED:
        raise ValueError(
            "generate_rollout needs a prefgym TokenVectorEnv with autoreset disabled; make one with "
            "prefgym.rollout.make_rollout_env(env_id, num_envs) or gymnasium.make_vec(env_id, num_envs, "
            "vectorization_mode='vector_entry_point', autoreset_mode='disabled')"
        )
    return base


@torch.no_grad()
def generate_rollout(policy: torch.nn.Module, env: Any, *, temperature: float = 1.0, top_k: int = 0,
                     top_p: float = 1.0, blocked_token_ids: tuple[int, ...] | list[int] = (),
                     prompts: list[str] | None = None, seed: int | None = None) -> Rollout:
    """Run one synchronous batch of episodes of ``env`` with ``policy`` sampling every token.

    ``blocked_token_ids`` can never be sampled (e.g. conditional-training control tokens).
    ``prompts`` fixes the batch's prompts; otherwise the env draws them (seeded by ``seed``).
    """
    base = _unwrap_vector_env(env)
    device = next(policy.parameters()).device
    options = None if prompts is None else {"prompts": prompts}
    obs, _ = env.reset(seed=seed, options=options)
    width_p, max_new = base.config.max_prompt_tokens, base.config.max_new_tokens
    batch_size = obs["input_ids"].shape[0]
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device).manual_seed(seed)
    prompt_ids = torch.from_numpy(obs["input_ids"][:, :width_p]).to(device)  # (B, P)
    mask = torch.zeros(batch_size, width_p + max_new, dtype=torch.long, device=device)  # (B, P+N)
    mask[:, :width_p] = torch.from_numpy(obs["attention_mask"][:, :width_p]).to(device)
    positions = (mask[:, :width_p].cumsum(-1) - 1).clamp(min=0)  # (B, P)
    logits, cache = model_step(policy, prompt_ids, mask[:, :width_p], positions)
    next_position = positions[:, -1:] + 1  # (B, 1)

    tokens = torch.full((batch_size, max_new), base._batch.pad_id, dtype=torch.long)
    token_mask = torch.zeros(batch_size, max_new, dtype=torch.long)
    logprobs = torch.zeros(batch_size, max_new)
    rewards = torch.zeros(batch_size, max_new)
    done = np.zeros(batch_size, dtype=bool)
    scores = np.zeros(batch_size)
    completions: list[str] = [""] * batch_size
    infos: dict[str, np.ndarray] = {}
    blocked = torch.as_tensor(list(blocked_token_ids), dtype=torch.long, device=device)
    steps = 0
    for t in range(max_new):
        if len(blocked):
            logits[:, blocked] = float("-inf")
        sampled, sampled_logp = sample_tokens(logits, temperature, top_k, top_p, generator)
        actions = sampled.cpu().numpy()
        _, step_rewards, terminated, truncated, info = env.step(actions)
        live = torch.from_numpy(~done)
        tokens[live, t] = sampled.cpu()[live]
        token_mask[live, t] = 1
        logprobs[live, t] = sampled_logp.cpu()[live]
        rewards[:, t] = torch.from_numpy(step_rewards).float()
        _collect_ends(info, scores, completions, infos, batch_size)
        done |= terminated | truncated
        steps = t + 1
        if done.all():
            break
        mask[:, width_p + t] = 1
        logits, cache = model_step(policy, sampled[:, None], mask[:, :width_p + t + 1], next_position, cache)
        next_position = next_position + 1
    return Rollout(prompt_ids.cpu(), mask[:, :width_p].cpu(), tokens[:, :steps], token_mask[:, :steps],
                   logprobs[:, :steps], rewards[:, :steps], torch.from_numpy(scores).float(),
                   list(base._batch.prompts), completions, infos)


def _collect_ends(info: dict, scores: np.ndarray, completions: list[str], infos: dict, batch_size: int) -> None:
    if "_completion" not in info:
        return
    rows = np.flatnonzero(info["_completion"])
    for row in rows:
        completions[row] = info["completion"][row]
    scores[rows] = info["score"][rows]
    for key, values in info.items():
        if key.startswith("_") or key in ("prompt", "completion") or values.dtype == object:
            continue
        infos.setdefault(key, np.zeros(batch_size, dtype=values.dtype))[rows] = values[rows]
