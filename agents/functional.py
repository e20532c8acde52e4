"""Shared math of the agents, as plain functions (no base classes).

Log-probs of sampled tokens under a causal LM, masked statistics, GAE, the three KL
estimators of Schulman ("Approximating KL divergence", 2020), and a few helpers every agent
uses (device choice, autocast, NaN guard, group-wise prompt sampling).

Shapes: ``B`` batch, ``P`` prompt width, ``N`` generated tokens, ``V`` vocabulary, ``H`` hidden.

Example:
    >>> import torch
    >>> from agents.functional import masked_mean, kl_estimate
    >>> masked_mean(torch.tensor([1.0, 2.0, 9.0]), torch.tensor([1, 1, 0]))
    tensor(1.5000)
    >>> kl_estimate(torch.tensor([0.0]), torch.tensor([0.0]), "k3")
    tensor([0.])
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


class NonFiniteLossError(FloatingPointError):
    """A loss or gradient became NaN/inf: training stops instead of silently corrupting the policy."""


def check_finite(loss: torch.Tensor, name: str, step: int | None = None) -> None:
    """Raise :class:`NonFiniteLossError` with a hint when ``loss`` is NaN or inf."""
    if not torch.isfinite(loss).all():
        where = f" at iteration {step}" if step is not None else ""
        raise NonFiniteLossError(
            f"{name} is {loss.item()}{where}: lower the learning rate, check the rewards for NaN/inf, "
            "or enable gradient clipping (max_grad_norm)"
        )


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"``/``"cuda"`` give CUDA when available, else CPU; anything else is taken as is."""
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    if device in ("auto", "cuda", "cpu"):
        return torch.device("cpu")
    return torch.device(device)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when ``enabled``; a no-op on CPU (fp32 there: bf16 matmuls are slow)."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def masked_sum(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Sum of ``x`` where ``mask`` is 1."""
    x = x * mask
    return x.sum() if dim is None else x.sum(dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``x`` over entries where ``mask`` is 1 (0 when the mask is empty)."""
    mask = mask.to(x.dtype)
    if dim is None:
        return masked_sum(x, mask) / mask.sum().clamp(min=1.0)
    return masked_sum(x, mask, dim) / mask.sum(dim).clamp(min=1.0)


def masked_var(x: torch.Tensor, mask: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
    """Variance of ``x`` over masked entries (Bessel-corrected by default)."""
    mask = mask.to(x.dtype)
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    n = mask.sum()
    if unbiased and n > 1:
        var = var * n / (n - 1)
    return var


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """Normalise masked entries to unit variance (and zero mean when ``shift_mean``); zeros elsewhere."""
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    whitened = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over a right-padded batch; returns ``(advantages, returns)``.

    The value after the last real token of a row is 0 (the episode ended).

    Example:
        >>> adv, ret = gae(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.5]]), torch.ones(1, 2), 1.0, 1.0)
        >>> adv.tolist(), ret.tolist()
        ([[0.5, 0.5]], [[1.0, 1.0]])
    """
    mask = mask.to(values.dtype)
    values = values * mask  # (B, N)
    advantages = torch.zeros_like(values)
    last = torch.zeros_like(values[:, 0])  # (B,)
    for t in reversed(range(values.shape[1])):
        next_value = values[:, t + 1] if t + 1 < values.shape[1] else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = (delta + gamma * lam * last) * mask[:, t]
        advantages[:, t] = last
    return advantages, (advantages + values) * mask


def kl_estimate(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, kind: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(pi || ref) from samples of pi (Schulman 2020).

    ``k1 = log r`` (unbiased, can be negative), ``k2 = (log r)^2 / 2`` (low variance, biased),
    ``k3 = (r' - 1) - log r'`` with ``r' = ref/pi`` (unbiased, always >= 0; GRPO's choice),
    where ``log r = logprobs - ref_logprobs``.
    """
    log_ratio = logprobs - ref_logprobs
    if kind == "k1":
        return log_ratio
    if kind == "k2":
        return 0.5 * log_ratio ** 2
    if kind == "k3":
        return torch.expm1(-log_ratio) + log_ratio
    raise ValueError(f"unknown KL estimator {kind!r}; choose 'k1', 'k2' or 'k3'")


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of each categorical row of ``logits`` (..., V) -> (...)."""
    probs = F.softmax(logits.float(), dim=-1)
    return -torch.special.xlogy(probs, probs).sum(-1)  # 0 log 0 = 0 for blocked (-inf) tokens


def sequence_inputs(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, tokens: torch.Tensor,
                    token_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Concatenate left-padded prompts and right-padded completions; return ids, mask, positions.

    Prompt columns that are padding in every row are dropped first: envs pad prompts to a fixed
    width (64 for PEP8) and short prompts would otherwise double the cost of every forward.
    """
    real = prompt_mask.bool().any(0).nonzero()
    first = int(real[0]) if len(real) else prompt_ids.shape[1] - 1
    prompt_ids, prompt_mask = prompt_ids[:, first:], prompt_mask[:, first:]  # (B, P')
    input_ids = torch.cat([prompt_ids, tokens], dim=1)  # (B, P'+N)
    attention_mask = torch.cat([prompt_mask, token_mask], dim=1).long()  # (B, P+N)
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # (B, P+N)
    return input_ids, attention_mask, positions


@contextlib.contextmanager
def capture_final_hidden(model: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    """Record the input of the LM head (the final hidden states) of every forward of ``model``.

    Works for any HF causal LM (the LM head's input is the last normalised hidden state), so a
    value head can read it during generation and training without a second forward pass.
    """
    captured: list[torch.Tensor] = []
    head = model.get_output_embeddings()
    handle = head.register_forward_pre_hook(lambda _module, args: captured.append(args[0]))
    try:
        yield captured
    finally:
        handle.remove()


def token_logprobs(model: torch.nn.Module, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                   tokens: torch.Tensor, token_mask: torch.Tensor, temperature: float = 1.0,
                   with_hidden: bool = False, with_entropy: bool = False,
                   blocked_token_ids: tuple[int, ...] = ()) -> dict[str, torch.Tensor]:
    """Log-probs of the completion tokens under ``model`` (one forward over prompt + completion).

    Returns ``logprobs`` (B, N), and ``hidden`` (B, N, H) — the state each token was chosen
    from — when ``with_hidden``, ``entropy`` (B, N) when ``with_entropy``. ``blocked_token_ids``
    are removed from the distribution (as :func:`prefgym.rollout.generate_rollout` does).

    Example:
        >>> from transformers import GPT2Config, GPT2LMHeadModel
        >>> m = GPT2LMHeadModel(GPT2Config(vocab_size=5, n_layer=1, n_embd=8, n_head=2))
        >>> out = token_logprobs(m, torch.ones(2, 3, dtype=torch.long), torch.ones(2, 3),
        ...                      torch.ones(2, 4, dtype=torch.long), torch.ones(2, 4))
        >>> tuple(out["logprobs"].shape)
        (2, 4)
    """
    n = tokens.shape[1]
    input_ids, attention_mask, positions = sequence_inputs(prompt_ids, prompt_mask, tokens, token_mask)
    with capture_final_hidden(model) as captured:
        # Only the positions that predict a completion token need logits: the last N+1.
        out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                    use_cache=False, logits_to_keep=n + 1)
    logits = out.logits[:, -(n + 1):-1].float()  # (B, N, V)
    if temperature != 1.0:  # skip a (B, N, V) copy in the common case
        logits = logits / temperature
    if blocked_token_ids:  # tokens the sampler can never draw: renormalise without them, as it did
        logits = logits.index_fill(-1, torch.as_tensor(list(blocked_token_ids), device=logits.device), float("-inf"))
    logprobs = torch.log_softmax(logits, dim=-1).gather(-1, tokens[..., None]).squeeze(-1)  # (B, N)
    result = {"logprobs": logprobs * token_mask}
    if with_hidden:
        # The LM head saw the last N+1 positions (or all, on models without logits_to_keep).
        result["hidden"] = captured[-1][:, -(n + 1):-1]  # (B, N, H)
    if with_entropy:
        result["entropy"] = entropy_from_logits(logits.detach())
    return result


@torch.no_grad()
def chunked_logprobs(model: torch.nn.Module, batch: dict[str, torch.Tensor], temperature: float = 1.0,
                     chunk_size: int = 0, blocked_token_ids: tuple[int, ...] = ()) -> torch.Tensor:
    """:func:`token_logprobs` without gradients, ``chunk_size`` rows at a time (bounded memory); (B, N)."""
    parts = [token_logprobs(model, c["prompt_ids"], c["prompt_mask"], c["tokens"], c["mask"], temperature,
                            blocked_token_ids=blocked_token_ids)["logprobs"]
             for c, _, _ in micro_batches(batch, chunk_size)]
    return torch.cat(parts, dim=0)


def grouped_prompts(prompts: list[str], num_groups: int, group_size: int, seed: int) -> list[str]:
    """``num_groups`` prompts drawn (seeded) from ``prompts``, each repeated ``group_size`` times in a row."""
    rng = np.random.default_rng(seed)
    chosen = rng.integers(len(prompts), size=num_groups)
    return [prompts[i] for i in chosen for _ in range(group_size)]


def group_baseline(scores: torch.Tensor, group_size: int, leave_one_out: bool) -> torch.Tensor:
    """Per-sample baseline within consecutive groups: the group mean, or the mean of the others."""
    groups = scores.view(-1, group_size)  # (G, K)
    if leave_one_out:
        if group_size < 2:
            raise ValueError("a leave-one-out baseline needs group_size >= 2")
        baseline = (groups.sum(-1, keepdim=True) - groups) / (group_size - 1)
    else:
        baseline = groups.mean(-1, keepdim=True).expand_as(groups)
    return baseline.reshape(-1)


def rollout_batch(rollout: Any, device: torch.device) -> dict[str, torch.Tensor]:
    """The tensors of a :class:`prefgym.rollout.Rollout` that a loss needs, on ``device``."""
    return {"prompt_ids": rollout.prompt_ids.to(device), "prompt_mask": rollout.prompt_mask.to(device),
            "tokens": rollout.tokens.to(device), "mask": rollout.token_mask.to(device).float(),
            "sample_logprobs": rollout.logprobs.to(device), "scores": rollout.scores.to(device).float()}


def micro_batches(batch: dict[str, torch.Tensor], size: int) -> Iterator[tuple[dict[str, torch.Tensor], float, float]]:
    """Split a minibatch into row chunks of ``size`` (0 = one chunk) for gradient accumulation.

    Yields ``(chunk, row_fraction, token_fraction)``: weight a chunk's loss by the fraction that
    matches how the loss averages (over rows or over tokens), and the summed gradients equal
    those of the whole minibatch. Peak memory then scales with ``size``, not the batch: the
    (rows, tokens, vocabulary) logits dominate it.
    """
    rows = batch["tokens"].shape[0]
    size = rows if size <= 0 else size
    total_tokens = float(batch["mask"].sum().clamp(min=1.0))
    for start in range(0, rows, size):
        chunk = {k: v[start:start + size] for k, v in batch.items()}
        yield chunk, chunk["tokens"].shape[0] / rows, float(chunk["mask"].sum()) / total_tokens


def clip_grad(parameters: Any, max_norm: float) -> float:
    """Clip gradients to ``max_norm`` (skipped when <= 0) and return the pre-clip norm."""
    params = [p for p in parameters if p.grad is not None]
    if max_norm and max_norm > 0:
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    norm = torch.norm(torch.stack([p.grad.detach().norm() for p in params])) if params else torch.tensor(0.0)
    return float(norm)


def best_of_n_kl(n: int) -> float:
    """Analytic KL(best-of-n || base) upper bound, ``log n - (n - 1) / n`` (Stiennon et al. 2020)."""
    return math.log(n) - (n - 1) / n
