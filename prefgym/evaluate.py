"""Evaluation after training: gold preference score, KL to the base policy, held-out
perplexity and distinct-n, on the env's fixed ``eval`` prompt split, written as JSON.

The protocol is fixed and seeded: ``num_samples`` completions for the eval prompts taken in
order (cycling), sampling seeds ``seed + batch``. Everything under ``metrics`` is a pure
function of (checkpoint, config, seed); timings live apart under ``cost``. ``directions``
says which way is better for each metric, so a leaderboard can rank without guessing.

Metrics:
  * ``score`` — the env's preference model (the training reward); every numeric score part
    (``violations_per_char``, ...) is reported too as ``score/<part>``.
  * ``gold_score`` — the env's held-out gold scorer when it has one, else ``score``.
  * ``kl_to_base`` — KL(agent || base policy) in nats per completion: the mean over samples of
    ``sum_t log pi(y_t) - log base(y_t)`` (k1; unbiased), with ``kl_to_base_k3`` beside it.
  * ``perplexity`` — of the agent's policy on held-out text (``heldout.kind``: stdlib code,
    prose, or the eval prompts), in blocks of ``heldout.block_size`` tokens.
  * ``distinct_1/2/3`` — distinct word n-grams over all completions.
  * ``completion_tokens`` and ``empty_fraction`` — mean length and the share of blank
    completions (a policy that writes nothing has no violations per character).

Usage:
    $ prefgym evaluate RUN_DIR [--num-samples 128] [--seed 0] [--out RUN_DIR/eval.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = "prefgym.eval/v1"
DIRECTIONS = {"score": "max", "gold_score": "max", "kl_to_base": "min", "kl_to_base_k3": "min",
              "perplexity": "min", "distinct_1": "max", "distinct_2": "max", "distinct_3": "max"}


def heldout_blocks(tokenizer: Any, kind: str = "code", block_size: int = 128, max_blocks: int = 16,
                   prompts: list[str] | None = None, max_docs: int = 40) -> dict[str, np.ndarray]:
    """Non-overlapping ``block_size`` token blocks of held-out text (``input_ids``/``labels``, (B, T)).

    ``kind``: ``"code"`` / ``"prose"`` (the corpora's held-out split, files in sorted order) or
    ``"prompts"`` (the env's eval prompts, for toy envs without a corpus).
    """
    if kind == "prompts":
        if not prompts:
            raise ValueError("heldout kind 'prompts' needs the env's eval prompts")
        texts = list(prompts) * max(1, (block_size * max_blocks) // max(1, sum(map(len, prompts))) + 1)
    else:
        from prefgym.data.corpora import load_corpus

        texts = [d.text for d in load_corpus(kind, split="heldout", max_files=max_docs)]
    eos = tokenizer.eos_token_id
    ids: list[int] = []
    for text in texts:
        ids += tokenizer(text)["input_ids"] + ([eos] if eos is not None else [])
        if len(ids) > (block_size + 1) * max_blocks:
            break
    n = min(max_blocks, len(ids) // (block_size + 1))
    if n == 0:
        raise ValueError(f"held-out {kind!r} text has {len(ids)} tokens, fewer than one block of {block_size + 1}")
    blocks = np.asarray(ids[: n * (block_size + 1)], dtype=np.int64).reshape(n, block_size + 1)
    return {"input_ids": blocks[:, :-1], "labels": blocks[:, 1:]}


def eval_prompts(env: Any, num_samples: int) -> list[str]:
    """The first ``num_samples`` prompts of the env's split, in order, cycling."""
    split = getattr(env, "unwrapped", env).prompt_split
    return [split[i % len(split)] for i in range(num_samples)]


def _numeric_parts(infos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v.astype(np.float64) for k, v in infos.items() if v.dtype.kind in "fiub"}


def sample_metrics(agent: Any, env: Any, base_policy: Any, num_samples: int, seed: int) -> dict[str, Any]:
    """Sample ``num_samples`` completions with ``agent.act`` on the eval prompts and score them.

    Returns ``metrics`` (means over samples), ``completions`` and ``env_steps``.
    """
    prompts = eval_prompts(env, num_samples)
    batch = getattr(env, "unwrapped", env).num_envs
    if num_samples % batch:
        raise ValueError(f"eval num_samples ({num_samples}) must be a multiple of the eval batch size ({batch})")
    scores, kl1, kl3, completions, steps = [], [], [], [], 0
    parts: dict[str, list[np.ndarray]] = {}
    for k in range(num_samples // batch):
        rollout = agent.act(env, prompts=prompts[k * batch:(k + 1) * batch], seed=seed + k)
        scores.append(rollout.scores.double().numpy())
        for key, values in _numeric_parts(rollout.infos).items():
            parts.setdefault(key, []).append(values)
        a, b = _kl_per_sequence(rollout.logprobs, base_policy, rollout, *sampling_of(agent))
        kl1.append(a.double().numpy())
        kl3.append(b.double().numpy())
        completions += rollout.completions
        steps += rollout.num_tokens
    from prefgym.metrics import distinct_n

    score = np.concatenate(scores)
    metrics = {"score": float(score.mean()), "score_std": float(score.std())}
    metrics.update({f"score/{k}": float(np.concatenate(v).mean()) for k, v in sorted(parts.items())
                    if not k.startswith("gold/") and k != "score"})
    gold = parts.get("gold/score")
    metrics["gold_score"] = float(np.concatenate(gold).mean()) if gold else metrics["score"]
    metrics.update({f"gold/{k[5:]}": float(np.concatenate(v).mean()) for k, v in sorted(parts.items())
                    if k.startswith("gold/") and k != "gold/score"})
    metrics["kl_to_base"] = float(np.concatenate(kl1).mean())
    metrics["kl_to_base_k3"] = float(np.concatenate(kl3).mean())
    metrics.update({f"distinct_{n}": distinct_n(completions, n) for n in (1, 2, 3)})
    metrics["completion_tokens"] = steps / num_samples
    # Writing nothing is a classic hack of per-character scores: make it visible next to the score.
    metrics["empty_fraction"] = sum(not c.strip() for c in completions) / num_samples
    return {"metrics": metrics, "completions": completions, "prompts": prompts, "env_steps": steps}


def evaluate_agent(agent: Any, env: Any, base_policy: Any, num_samples: int = 128, seed: int = 0,
                   heldout: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the whole protocol on ``agent``; returns ``metrics``, ``samples`` (the first 8) and ``cost``.

    Example:
        >>> import prefgym, torch
        >>> from types import SimpleNamespace
        >>> from prefgym.models import build_policy
        >>> from prefgym.rollout import generate_rollout, make_rollout_env
        >>> env = make_rollout_env("prefgym/ToyTarget-v0", num_envs=2, split="eval")
        >>> policy = build_policy("prefgym/toy-chars", n_layer=1, n_embd=32, n_head=2, n_positions=64)
        >>> agent = SimpleNamespace(policy=policy, act=lambda env, prompts, seed: generate_rollout(
        ...     policy, env, prompts=prompts, seed=seed))
        >>> out = evaluate_agent(agent, env, policy, num_samples=2, heldout={"kind": "prompts", "block_size": 8,
        ...                      "max_blocks": 2})
        >>> round(out["metrics"]["kl_to_base"], 4)  # the agent is the base policy
        0.0
    """
    from prefgym.metrics import perplexity

    start = time.perf_counter()
    heldout = {"kind": "code", "block_size": 128, "max_blocks": 16, **(heldout or {})}
    out = sample_metrics(agent, env, base_policy, num_samples, seed)
    tokenizer = getattr(env, "unwrapped", env).tokenizer
    split = getattr(env, "unwrapped", env).prompt_split
    blocks = heldout_blocks(tokenizer, heldout["kind"], heldout["block_size"], heldout["max_blocks"], prompts=split)
    out["metrics"]["perplexity"] = perplexity(agent.policy, blocks, batch_size=4)
    samples = [{"prompt": p, "completion": c} for p, c in zip(out["prompts"][:8], out["completions"][:8])]
    return {"metrics": out["metrics"], "samples": samples, "heldout": heldout,
            "cost": {"env_steps": out["env_steps"], "wall_time_s": round(time.perf_counter() - start, 3)}}


def env_spec_of(env: Any) -> dict[str, Any] | None:
    """The env's Gymnasium spec as JSON data (id and kwargs), when it has one."""
    spec = getattr(env, "spec", None) or getattr(getattr(env, "unwrapped", env), "spec", None)
    if spec is None:
        return None
    try:
        return json.loads(spec.to_json())
    except (ValueError, TypeError):
        return {"id": spec.id, "kwargs": {k: repr(v) for k, v in spec.kwargs.items()}}


def checksum(path: str | Path | None) -> str | None:
    """sha256 of a checkpoint's weights file (or of any file), for the result file."""
    import hashlib

    if path is None:
        return None
    path = Path(path)
    path = path / "weights.safetensors" if path.is_dir() else path
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def cli(argv: list[str] | None = None) -> int:
    """``prefgym evaluate RUN_DIR``: rebuild a finished (or resumed) run from its config and evaluate it."""
    parser = argparse.ArgumentParser(prog="prefgym evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a `prefgym train` run directory (holds config.yaml and checkpoints/)")
    parser.add_argument("--checkpoint", help="checkpoint folder (default: the run's latest)")
    parser.add_argument("--num-samples", type=int, help="override eval.num_samples")
    parser.add_argument("--seed", type=int, help="override eval.seed")
    parser.add_argument("--out", help="result JSON path (default: RUN_DIR/eval.json)")
    args = parser.parse_args(argv)
    from omegaconf import OmegaConf

    from prefgym import train

    run_dir = Path(args.run_dir)
    cfg = OmegaConf.load(run_dir / "config.yaml")
    if args.num_samples is not None:
        cfg.eval.num_samples = args.num_samples
    if args.seed is not None:
        cfg.eval.seed = args.seed
    result = train.evaluate_run(cfg, run_dir, checkpoint=args.checkpoint, out=args.out)
    print(json.dumps(result["metrics"], indent=2))
    return 0


def sampling_of(agent: Any) -> tuple[float, tuple[int, ...]]:
    """How ``agent`` samples: ``(temperature, blocked token ids)``; (1.0, ()) when it does not say.

    The base policy is the base model sampled the same way (the agent's iteration 0): against the
    raw model, a T=0.7 agent would sit ~10 nats from its own starting point.

    Example:
        >>> from types import SimpleNamespace
        >>> sampling_of(SimpleNamespace(config=SimpleNamespace(temperature=0.7), blocked_token_ids=(0,)))
        (0.7, (0,))
    """
    temperature = float(getattr(getattr(agent, "config", None), "temperature", 1.0) or 1.0)
    return temperature, tuple(getattr(agent, "blocked_token_ids", ()) or ())


def _kl_per_sequence(policy_logprobs: Any, base_policy: Any, rollout: Any, temperature: float = 1.0,
                     blocked_token_ids: tuple[int, ...] = ()) -> tuple[Any, Any]:
    """Sequence KL estimates (k1 sum, k3 sum) of the sampled tokens: agent log-probs vs the base's.

    The base's distribution is its logits / ``temperature`` with ``blocked_token_ids`` removed
    (top-k / top-p truncation is not applied: with it, k1 is an approximation).
    """
    import torch

    device = next(base_policy.parameters()).device
    tokens, mask = rollout.tokens.to(device), rollout.token_mask.to(device)
    ids = torch.cat([rollout.prompt_ids.to(device), tokens], 1)  # (B, P+N)
    attn = torch.cat([rollout.prompt_mask.to(device), mask], 1).long()  # (B, P+N)
    positions = (attn.cumsum(-1) - 1).clamp(min=0)
    n = tokens.shape[1]
    with torch.no_grad():
        logits = base_policy(input_ids=ids, attention_mask=attn, position_ids=positions).logits  # (B, P+N, V)
        logits = logits[:, -(n + 1):-1].float() / temperature  # (B, N, V)
        if blocked_token_ids:
            logits[..., list(blocked_token_ids)] = float("-inf")
        base = torch.log_softmax(logits, -1).gather(-1, tokens[..., None]).squeeze(-1)  # (B, N)
    log_ratio = (policy_logprobs.to(device) - base) * mask  # (B, N)
    k3 = (torch.expm1(-log_ratio) + log_ratio) * mask
    return log_ratio.sum(-1).cpu(), k3.sum(-1).cpu()
