"""``prefgym rollout ENV_ID``: a policy generates on a registered env; scored completions are printed.

The policy defaults to the shipped base policy for the env (``prefgym/tiny-code`` for code
envs), else a small random-init GPT-2 of the env's vocabulary (toy envs).

Example:
    $ prefgym rollout prefgym/PEP8-v0 --episodes 8 --seed 0
"""

from __future__ import annotations

import argparse
import json
import time


def _policy_for(env_id: str, name: str | None, vocab_size: int):
    from prefgym.envs.registration import DEFAULT_POLICIES

    name = name or DEFAULT_POLICIES.get(env_id)
    if name is None:
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel

        torch.manual_seed(0)
        config = GPT2Config(vocab_size=vocab_size, n_layer=2, n_embd=64, n_head=2, n_positions=256,
                            bos_token_id=0, eos_token_id=0)
        return GPT2LMHeadModel(config).eval(), "random-init GPT-2 (2x64)"
    from prefgym.models import load_policy

    policy = load_policy(name)
    if policy.get_input_embeddings().num_embeddings < vocab_size:
        raise ValueError(
            f"policy {name!r} has {policy.get_input_embeddings().num_embeddings} token embeddings but the env's "
            f"tokenizer has {vocab_size} tokens; use a policy trained with the env's tokenizer"
        )
    return policy, name


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="prefgym rollout", description=__doc__.splitlines()[0])
    parser.add_argument("env_id", nargs="?", default="prefgym/PEP8-v0")
    parser.add_argument("--policy", default=None, help="built-in name, local folder or cached hub name")
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--split", default="eval", choices=["train", "eval"])
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: PREFGYM_NUM_THREADS or 1)")
    parser.add_argument("--json", action="store_true", help="print the episodes as JSON lines")
    args = parser.parse_args(argv)

    import prefgym  # noqa: F401
    from prefgym.rollout import generate_rollout, make_rollout_env
    from prefgym.utils.torch_threads import configure_threads

    configure_threads(args.threads)
    env = make_rollout_env(args.env_id, num_envs=args.episodes, split=args.split)
    policy, policy_name = _policy_for(args.env_id, args.policy, len(env.unwrapped.tokenizer))
    start = time.perf_counter()
    rollout = generate_rollout(policy, env, temperature=args.temperature, top_k=args.top_k,
                               top_p=args.top_p, seed=args.seed)
    elapsed = time.perf_counter() - start
    if args.json:
        for i, completion in enumerate(rollout.completions):
            parts = {k: float(v[i]) for k, v in rollout.infos.items()}
            print(json.dumps({"prompt": rollout.prompts[i], "completion": completion, **parts}))
        return 0
    _print_table(args.env_id, policy_name, rollout, elapsed)
    return 0


def _print_table(env_id: str, policy_name: str, rollout, elapsed: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{env_id} — policy {policy_name}", show_lines=True)
    table.add_column("prompt", overflow="fold", max_width=40)
    table.add_column("completion", overflow="fold", max_width=60)
    table.add_column("score", justify="right")
    for prompt, completion, score in zip(rollout.prompts, rollout.completions, rollout.scores.tolist()):
        table.add_row(prompt.rstrip("\n"), completion, f"{score:.4f}")
    console = Console()
    console.print(table)
    console.print(f"mean score {rollout.scores.mean():.4f} over {len(rollout.completions)} episodes; "
                  f"{rollout.num_tokens} tokens in {elapsed:.2f}s ({rollout.num_tokens / elapsed:.0f} tokens/s)")
