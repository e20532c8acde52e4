"""Run a board's protocol on one entry: build the env from the pinned spec, sample, measure.

The entry is data only: an inference ``method`` (``sample``, ``best_of_n`` with ``n``, or
``uniform`` for the random baseline; ``conditional`` for PHF control-token models) and a
checked safetensors checkpoint applied onto the board's base policy. No agent code and no
``_target_`` from the submission is ever run: every component comes from ``protocol.yaml``.
The metrics are those of :mod:`prefgym.evaluate` (gold score, KL to the base policy, held-out
perplexity, distinct-n), sampled on one torch thread with the protocol's seeds, so a re-run on
the same machine reproduces them exactly and another machine within the protocol's tolerance.

Example:
    >>> best_of_n_kl(1), round(best_of_n_kl(4), 4)
    (0.0, 0.6363)
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from prefgym.leaderboard.errors import SubmissionError
from prefgym.leaderboard.protocol import Protocol

if TYPE_CHECKING:
    import torch

    from prefgym.rollout import Rollout


def best_of_n_kl(n: int) -> float:
    """KL(best-of-n || base) bound, ``log n - (n - 1) / n`` nats (Stiennon et al. 2020)."""
    return math.log(n) - (n - 1) / n


def build_env(protocol: Protocol) -> Any:
    """The eval env, rebuilt from the protocol's pinned spec (its prompt split, in order)."""
    import gymnasium as gym
    from gymnasium.envs.registration import EnvSpec

    spec = EnvSpec.from_json(json.dumps(protocol.env_spec))
    return gym.make_vec(spec, num_envs=protocol.batch_size, vectorization_mode="vector_entry_point",
                        autoreset_mode="disabled", split=protocol.split, prompt_order="sequential")


def base_weights(protocol: Protocol) -> Path:
    """The base policy's ``model.safetensors`` (a shipped ``prefgym/<name>`` or a folder beside the board)."""
    from prefgym.models import resolve_model_path

    name = protocol.base_policy
    folder = Path(resolve_model_path(name)) if name.startswith("prefgym/") else protocol.root / name
    return folder / "model.safetensors"


def load_base(protocol: Protocol) -> "torch.nn.Module":
    """Load the base policy, refusing it if its weights are not the ones the protocol pins."""
    from prefgym.leaderboard.weights import sha256_file
    from prefgym.models import load_policy

    path = base_weights(protocol)
    if not path.is_file():
        raise SubmissionError(f"base policy {protocol.base_policy!r} has no weights at {path}", where=protocol.id)
    actual = sha256_file(path)
    if actual != protocol.base_sha256:
        raise SubmissionError(f"base policy {protocol.base_policy} has sha256 {actual}, but {protocol.id} pins "
                              f"{protocol.base_sha256}: the base model changed, so the board needs a new "
                              "protocol version", where=protocol.id)
    return load_policy(str(path.parent), device="cpu")


def uniform_policy(vocab_size: int) -> "torch.nn.Module":
    """The random baseline's "LM": zero logits, so every token has probability ``1 / vocab_size``."""
    import torch

    class UniformLM(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = SimpleNamespace(vocab_size=vocab_size)
            self.anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # gives it a device

        def forward(self, input_ids: torch.Tensor, logits_to_keep: int = 0, **kwargs: Any) -> SimpleNamespace:
            width = min(logits_to_keep, input_ids.shape[1]) if logits_to_keep else input_ids.shape[1]
            logits = self.anchor.new_zeros(input_ids.shape[0], width, vocab_size)  # (B, T, V)
            return SimpleNamespace(logits=logits, past_key_values=None, cache=None)

    return UniformLM().eval()


def entry_policy(protocol: Protocol, method: dict[str, Any], checkpoint: Path | None) -> "torch.nn.Module":
    """The policy an entry samples from: the base policy with the checkpoint applied, or uniform."""
    from prefgym.leaderboard.weights import apply_weights

    base = load_base(protocol)
    if method["name"] == "uniform":
        return uniform_policy(int(base.config.vocab_size))
    return base if checkpoint is None else apply_weights(base, checkpoint, protocol.base_sha256)


def _pick_rows(rollouts: list["Rollout"], choice: "torch.Tensor") -> "Rollout":
    """Row ``b`` of ``rollouts[choice[b]]`` for every ``b`` (rollouts of one batch of prompts)."""
    import numpy as np
    import torch

    from prefgym.rollout import Rollout

    width, rows = max(r.tokens.shape[1] for r in rollouts), torch.arange(len(choice))

    def pick(name: str) -> torch.Tensor:
        padded = [torch.nn.functional.pad(getattr(r, name), (0, width - getattr(r, name).shape[1])) for r in rollouts]
        return torch.stack(padded)[choice, rows]  # (B, N)

    keys = set.intersection(*(set(r.infos) for r in rollouts))
    infos = {k: np.stack([r.infos[k] for r in rollouts])[choice.numpy(), rows.numpy()] for k in sorted(keys)}
    first = rollouts[0]
    return Rollout(first.prompt_ids, first.prompt_mask, pick("tokens"), pick("token_mask"), pick("logprobs"),
                   pick("rewards"), torch.stack([r.scores for r in rollouts])[choice, rows], list(first.prompts),
                   [rollouts[int(c)].completions[b] for b, c in enumerate(choice)], infos)


def make_sampler(policy: "torch.nn.Module", method: dict[str, Any], protocol: Protocol, tokenizer: Any,
                 counter: dict[str, int]) -> SimpleNamespace:
    """An object with ``policy`` and ``act(env, prompts, seed)``, as :mod:`prefgym.evaluate` expects."""
    import torch

    from prefgym.rollout import generate_rollout

    dec = protocol.decoding
    blocked: list[int] = []
    if method.get("conditional"):
        from prefgym.models.control import blocked_ids

        blocked = blocked_ids(tokenizer, "bad")
    n = int(method.get("n", 1)) if method["name"] == "best_of_n" else 1

    def act(env: Any, prompts: list[str] | None = None, seed: int | None = None) -> "Rollout":
        if method.get("conditional"):
            from prefgym.models.control import conditional_prompt

            prompts = [conditional_prompt(p, prefix_first=True) for p in prompts or []] or None
        rollouts = [generate_rollout(policy, env, temperature=dec.get("temperature", 1.0),
                                     top_k=int(dec.get("top_k", 0)), top_p=dec.get("top_p", 1.0),
                                     blocked_token_ids=blocked, prompts=prompts, seed=(seed or 0) + 104_729 * k)
                    for k in range(n)]
        counter["env_steps"] += sum(r.num_tokens for r in rollouts)
        if method.get("conditional"):
            rollouts = [_drop_control_suffix(r, _good_ids(tokenizer)[0]) for r in rollouts]
        if n == 1:
            return rollouts[0]
        return _pick_rows(rollouts, torch.stack([r.scores for r in rollouts]).argmax(0))

    return SimpleNamespace(policy=policy, act=act, blocked=blocked)


def _drop_control_suffix(rollout: "Rollout", good_id: int) -> "Rollout":
    """The rollout with the trailing ``<|good|>`` removed from its (left-padded) prompts and the
    ``<|good|>`` tokens it generated (before each line) left out of the token mask.

    The KL term then compares the conditional policy's text with the base policy given the plain
    prompt: the base model never learned control tokens, so each one would add ~15 nats of
    "KL" that says nothing about the text (control tokens are annotations, stripped on decoding).
    """
    import dataclasses

    import torch

    if not bool((rollout.prompt_ids[:, -1] == good_id).all()):
        raise ValueError("conditional prompts must end with <|good|> (a tokenizer without it as one token?)")
    ids = torch.nn.functional.pad(rollout.prompt_ids[:, :-1], (1, 0), value=0)  # masked out below
    mask = torch.nn.functional.pad(rollout.prompt_mask[:, :-1], (1, 0), value=0)  # (B, P): one more pad slot
    token_mask = rollout.token_mask.masked_fill(rollout.tokens == good_id, 0)  # (B, N)
    return dataclasses.replace(rollout, prompt_ids=ids, prompt_mask=mask, token_mask=token_mask)


def run_protocol(protocol: Protocol, method: dict[str, Any], checkpoint: Path | None) -> dict[str, Any]:
    """Evaluate one entry under ``protocol``: returns ``metrics``, ``samples`` (first 8) and ``cost``."""
    import torch

    from prefgym.evaluate import heldout_blocks, sample_metrics
    from prefgym.metrics import perplexity

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: reductions in a fixed order, so re-runs match bit for bit
    try:
        start = time.perf_counter()
        env = build_env(protocol)
        base = load_base(protocol)
        policy = entry_policy(protocol, method, checkpoint)
        tokenizer = env.unwrapped.tokenizer
        counter = {"env_steps": 0}
        sampler = make_sampler(policy, method, protocol, tokenizer, counter)
        out = sample_metrics(sampler, env, base, protocol.num_samples, protocol.seed)
        metrics = out["metrics"]
        if method["name"] == "best_of_n":  # the sampled estimate is ~0 for base weights; report the bound
            metrics["kl_to_base_sampled"] = metrics["kl_to_base"]
            metrics["kl_to_base"] = best_of_n_kl(int(method.get("n", 1))) + max(metrics["kl_to_base"], 0.0)
        h = protocol.heldout
        blocks = heldout_blocks(tokenizer, h["kind"], int(h["block_size"]), int(h["max_blocks"]),
                                prompts=env.unwrapped.prompt_split)
        ppl_blocked = sampler.blocked + ([] if not sampler.blocked else _good_ids(tokenizer))
        metrics["perplexity"] = perplexity(policy, blocks, batch_size=4, blocked_ids=ppl_blocked)
        samples = [{"prompt": p, "completion": c} for p, c in zip(out["prompts"][:8], out["completions"][:8])]
        cost = {"eval_env_steps": counter["env_steps"], "eval_wall_time_s": round(time.perf_counter() - start, 2),
                "eval_device": "cpu"}
        env.close()
        return {"metrics": {k: float(v) for k, v in sorted(metrics.items())}, "samples": samples, "cost": cost}
    finally:
        torch.set_num_threads(threads)


def _good_ids(tokenizer: Any) -> list[int]:
    from prefgym.models.control import control_token_ids

    return [control_token_ids(tokenizer)[0]]
