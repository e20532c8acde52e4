"""Rollout throughput: the env-API fast path vs raw ``model.generate`` vs a naive no-cache loop.

Same model (GPT-2 config: 4 layers, width 256, vocab 8192, random init), same 16-token
prompts, 32 new tokens (EOS blocked on every side so all runs generate exactly 32), batch
1/16/64. "ours" is :func:`prefgym.rollout.generate_rollout` on ``prefgym/PEP8-v0`` — env
steps, stop checks and PEP8 scoring of every completion included. Each cell is the median
of ``--repeats`` runs, interleaved so that load from other processes hits all sides alike.

    python benchmarks/rollout.py --json benchmarks/results/rollout.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

NEW_TOKENS = 32
PROMPT_TOKENS = 16


def build_model(vocab_size: int) -> torch.nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=vocab_size, n_layer=4, n_embd=256, n_head=4, n_positions=128,
                        bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(config).eval()


def short_prompts(tokenizer, count: int) -> list[str]:
    from prefgym.data.prompts import stdlib_function_prompts

    fits = [p for p in stdlib_function_prompts()["train"]
            if len(tokenizer(p, add_special_tokens=False)["input_ids"]) <= PROMPT_TOKENS]
    return (fits * (count // len(fits) + 1))[:count]


def time_ours(model, env, prompts, eos_id) -> float:
    from prefgym.rollout import generate_rollout

    start = time.perf_counter()
    rollout = generate_rollout(model, env, prompts=prompts, blocked_token_ids=[eos_id], seed=0)
    elapsed = time.perf_counter() - start
    assert rollout.tokens.shape[1] == NEW_TOKENS, rollout.tokens.shape
    return elapsed


def left_padded(tokenizer, prompts):
    tokenizer.padding_side = "left"
    return tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)


@torch.no_grad()
def time_generate(model, tokenizer, prompts, eos_id) -> float:
    batch = left_padded(tokenizer, prompts)
    start = time.perf_counter()
    out = model.generate(**batch, do_sample=True, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=eos_id, top_k=0)
    elapsed = time.perf_counter() - start
    assert out.shape[1] - batch["input_ids"].shape[1] == NEW_TOKENS
    return elapsed


@torch.no_grad()
def time_naive(model, tokenizer, prompts, eos_id) -> float:
    """No KV cache: every step re-runs the whole sequence (what RL4LMs-style rollouts do)."""
    batch = left_padded(tokenizer, prompts)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    start = time.perf_counter()
    for _ in range(NEW_TOKENS):
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1]
        logits[:, eos_id] = float("-inf")
        token = torch.multinomial(logits.softmax(-1), 1)
        ids = torch.cat([ids, token], dim=1)
        mask = torch.cat([mask, torch.ones_like(token)], dim=1)
    return time.perf_counter() - start


def run(batch_sizes: list[int], repeats: int, threads: int) -> dict:
    import prefgym  # noqa: F401
    from prefgym.rollout import make_rollout_env
    from prefgym.utils.torch_threads import configure_threads

    configure_threads(threads)
    rows = []
    for batch_size in batch_sizes:
        env = make_rollout_env("prefgym/PEP8-v0", num_envs=batch_size, max_prompt_tokens=PROMPT_TOKENS,
                               max_new_tokens=NEW_TOKENS, stop_strings=[])
        tokenizer = env.unwrapped.tokenizer
        model = build_model(len(tokenizer))
        eos_id = tokenizer.eos_token_id
        prompts = short_prompts(tokenizer, batch_size)
        time_ours(model, env, prompts, eos_id)  # warm-up (tokenizer caches, allocator)
        times: dict[str, list[float]] = {"ours": [], "generate": [], "naive": []}
        for _ in range(repeats):
            times["generate"].append(time_generate(model, tokenizer, prompts, eos_id))
            times["ours"].append(time_ours(model, env, prompts, eos_id))
            times["naive"].append(time_naive(model, tokenizer, prompts, eos_id))
        tps = {k: batch_size * NEW_TOKENS / statistics.median(v) for k, v in times.items()}
        rows.append({"batch": batch_size, "tokens_per_s": tps,
                     "ours_vs_generate": tps["ours"] / tps["generate"],
                     "naive_vs_generate": tps["naive"] / tps["generate"],
                     "ours_vs_naive": tps["ours"] / tps["naive"]})
    return {"benchmark": "rollout", "new_tokens": NEW_TOKENS, "prompt_tokens": PROMPT_TOKENS,
            "model": "GPT-2 4x256, vocab 8192, random init", "threads": threads, "repeats": repeats,
            "torch": torch.__version__, "machine": platform.machine(), "processor": platform.processor(),
            "rows": rows}


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"rollout tokens/s ({result['new_tokens']} new tokens, {result['threads']} thread(s))")
    for column in ("batch", "ours (env API)", "raw generate", "naive no-cache", "ours / generate", "naive / generate"):
        table.add_column(column, justify="right")
    for row in result["rows"]:
        tps = row["tokens_per_s"]
        table.add_row(str(row["batch"]), f"{tps['ours']:.0f}", f"{tps['generate']:.0f}", f"{tps['naive']:.0f}",
                      f"{row['ours_vs_generate']:.2f}x", f"{row['naive_vs_generate']:.2f}x")
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/rollout.json"))
    args = parser.parse_args()
    result = run(args.batch, args.repeats, args.threads)
    print_table(result)
    from prefgym.utils.io import atomic_write_json

    atomic_write_json(args.json, result)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
