"""Is the shipped base code model recognisably Python? ``ast.parse`` pass rate vs a random init.

Samples unconditional completions and completions of held-out ``def name(args):`` signatures
from the shipped base models (``prefgym/tiny-code-v2``, ``prefgym/tiny-code``) and from a random-init model of the same size (gpt2-5m preset),
trims each to complete lines, and counts how many parse (with at least one completed line) and
how many are valid prefixes (Python's incomplete-input test: cut inside an open block, bracket or
string is fine, a syntax error is not).
Also reports PEP8 violations/char and distinct-2.

    $ python benchmarks/pretrain_base_quality.py --n 64 --json benchmarks/results/base_quality.json
"""

from __future__ import annotations

import argparse
import json
import time


def evaluate(model, tokenizer, scorer, prompts, n: int, max_new_tokens: int) -> dict:
    from prefgym.models.evaluation import scenario

    t0 = time.time()
    uncond, ex_u = scenario(model, tokenizer, scorer, [""] * n, 1, False, max_new_tokens, seed=0)
    prompted, ex_p = scenario(model, tokenizer, scorer, prompts[:n], 1, False, max_new_tokens, seed=1)
    return {"unconditional": uncond, "prompted": prompted, "seconds": time.time() - t0,
            "example_unconditional": ex_u[0]["completion"], "example_prompted": ex_p[0]}


def main(argv: list[str] | None = None) -> int:
    from prefgym.data.prompts import stdlib_function_prompts
    from prefgym.models import build_policy, load_policy
    from prefgym.preferences import PEP8Scorer
    from prefgym.tokenization import load_tokenizer
    from prefgym.utils.io import atomic_write_json
    from prefgym.utils.torch_threads import configure_threads

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="prefgym/tiny-code-v2,prefgym/tiny-code",
                        help="comma-separated base models to compare with a random init")
    parser.add_argument("--n", type=int, default=64, help="samples per scenario")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    configure_threads()
    tokenizer, scorer = load_tokenizer("prefgym/bpe-8k"), PEP8Scorer()
    prompts = stdlib_function_prompts()["eval"]
    rows = {name: evaluate(load_policy(name), tokenizer, scorer, prompts, args.n, args.max_new_tokens)
            for name in args.models.split(",")}
    rows["random-init gpt2-5m"] = evaluate(build_policy(), tokenizer, scorer, prompts, args.n, args.max_new_tokens)
    print(f"{'model':<22} {'scenario':<14} {'ast.parse':>9} {'valid prefix':>12} {'viol/char':>9} {'distinct-2':>10}")
    for name, row in rows.items():
        for scen in ("unconditional", "prompted"):
            m = row[scen]
            print(f"{name:<22} {scen:<14} {m['ast_parse_rate']:>9.2f} {m['valid_prefix_rate']:>12.2f} "
                  f"{m['violations_per_char']:>9.4f} "
                  f"{m['distinct_2']:>10.3f}")
    if args.json:
        atomic_write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
