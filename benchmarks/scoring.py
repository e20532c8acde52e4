"""Scoring throughput (texts/s) of every prefgym scorer, and PEP8 serial vs process pool.

Completions are realistic and built offline: for PEP8, function bodies cut from the Python
standard library's own source (signature = prompt, 200-400 characters of body = completion,
cut mid-line as a generation would be); for the prose scorers, stdlib docstrings; for
arithmetic, "a + b =" problems with right and wrong answers.

Usage:
    python benchmarks/scoring.py                      # table + benchmarks/results/scoring.json
    python benchmarks/scoring.py --batch 64 --repeats 5 --json /tmp/scoring.json
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import random
import statistics
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

from prefgym.preferences import (
    ArithmeticScorer,
    LengthScorer,
    PEP8Scorer,
    PIIScorer,
    SentimentScorer,
    TargetCharScorer,
    WeightedSum,
    shutdown_pool,
)
from prefgym.utils.io import atomic_write_json

STDLIB_FILES = ["textwrap.py", "argparse.py", "json/decoder.py", "difflib.py", "inspect.py", "calendar.py"]


def stdlib_functions(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """(prompts, completions): a signature line and 200-400 chars of the function's body."""
    rng = random.Random(seed)
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    pairs = []
    for name in STDLIB_FILES:
        source = (stdlib / name).read_text(encoding="utf-8")
        lines = source.splitlines(keepends=True)
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef) and node.body and node.end_lineno - node.lineno > 4:
                head = "".join(lines[node.lineno - 1:node.body[0].lineno - 1])
                body = "".join(lines[node.body[0].lineno - 1:node.end_lineno])
                if head and len(body) >= 200:
                    pairs.append((head, body[:rng.randint(200, 400)]))
    rng.shuffle(pairs)
    pairs = (pairs * (n // len(pairs) + 1))[:n]
    return [p for p, _ in pairs], [c for _, c in pairs]


def stdlib_prose(n: int, seed: int = 0) -> list[str]:
    """Docstring paragraphs of 100-300 characters, a stand-in for English completions."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for name in STDLIB_FILES:
        for node in ast.walk(ast.parse((stdlib / name).read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(node):
                doc = " ".join(ast.get_docstring(node).split())
                if len(doc) >= 100:
                    texts.append(doc[:300])
    random.Random(seed).shuffle(texts)
    texts[::8] = [t + " Write to jane.doe@example.com or call (650) 253-0000." for t in texts[::8]]
    return (texts * (n // len(texts) + 1))[:n]


def arithmetic(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    prompts, completions = [], []
    for _ in range(n):
        a, b = rng.randint(0, 99), rng.randint(0, 99)
        prompts.append(f"{a} + {b} =")
        completions.append(f" {a + b + rng.choice([0, 0, 1, -1])} and so on")
    return prompts, completions


def texts_per_second(fn: Callable[[], object], n: int, repeats: int) -> float:
    fn()  # warm-up: lazy imports, pool start, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return n / statistics.median(times)


def run(batch: int, repeats: int) -> list[dict]:
    code_prompts, code = stdlib_functions(batch)
    prose = stdlib_prose(batch)
    empty = [""] * batch
    ar_prompts, ar_completions = arithmetic(batch)
    cases = [
        ("pep8 (serial)", PEP8Scorer(n_workers=1), code_prompts, code),
        ("pep8 (2 workers)", PEP8Scorer(n_workers=2, parallel_threshold=2, adaptive=False), code_prompts, code),
        ("pep8 (default: adaptive)", PEP8Scorer(), code_prompts, code),
        ("sentiment (VADER)", SentimentScorer(), empty, prose),
        ("pii (scrubadub)", PIIScorer(), empty, prose),
        ("arithmetic", ArithmeticScorer(), ar_prompts, ar_completions),
        ("target_char", TargetCharScorer(), empty, prose),
        ("length", LengthScorer(), empty, prose),
        ("weighted_sum(sentiment, length)", WeightedSum({
            "sentiment": {"scorer": {"_target_": "prefgym.preferences.SentimentScorer"}, "weight": 1.0},
            "length": {"scorer": {"_target_": "prefgym.preferences.LengthScorer"}, "weight": 0.1}}),
         empty, prose),
    ]
    results = []
    for label, scorer, prompts, completions in cases:
        rate = texts_per_second(lambda: scorer.score(prompts, completions), len(completions), repeats)
        results.append({"scorer": label, "batch": len(completions), "texts_per_s": rate,
                        "ms_per_batch": 1000 * len(completions) / rate,
                        "mean_chars": sum(map(len, completions)) / len(completions)})
    return results


def pool_threshold(repeats: int, sizes: tuple[int, ...] = (16, 24, 32, 64, 128, 256)) -> list[dict]:
    """PEP8 in-process vs split across 2 pool workers, per batch size (picks parallel_threshold).

    Serial and pooled runs alternate so that load from other processes hits both alike.
    """
    serial_scorer = PEP8Scorer(n_workers=1)
    pooled_scorer = PEP8Scorer(n_workers=2, parallel_threshold=2, adaptive=False)
    rows = []
    for size in sizes:
        prompts, code = stdlib_functions(size, seed=size)
        times: dict[str, list[float]] = {"serial": [], "pool": []}
        pooled_scorer.score(prompts, code)
        for _ in range(repeats):
            for key, scorer in (("serial", serial_scorer), ("pool", pooled_scorer)):
                start = time.perf_counter()
                scorer.score(prompts, code)
                times[key].append(time.perf_counter() - start)
        serial, pooled = (size / statistics.median(times[k]) for k in ("serial", "pool"))
        rows.append({"batch": size, "serial_texts_per_s": serial, "pool_texts_per_s": pooled,
                     "speedup": pooled / serial})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", default="benchmarks/results/scoring.json")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    load_before = os.getloadavg()[0]  # other processes on a shared machine skew the pool figures
    start = time.perf_counter()
    PEP8Scorer(n_workers=2, parallel_threshold=2, adaptive=False).score(*stdlib_functions(4))
    pool_start_s = time.perf_counter() - start  # one-off: fork 2 workers
    results = run(args.batch, args.repeats)
    threshold = pool_threshold(2 * args.repeats + 1)
    shutdown_pool()

    table = Table(title=f"Scoring throughput, batch {args.batch} (median of {args.repeats})")
    for col in ("scorer", "texts/s", "ms/batch", "mean chars"):
        table.add_column(col, justify="left" if col == "scorer" else "right")
    for r in results:
        table.add_row(r["scorer"], f"{r['texts_per_s']:,.0f}", f"{r['ms_per_batch']:.2f}", f"{r['mean_chars']:.0f}")
    pool_table = Table(title="PEP8: in-process vs 2 pool workers")
    for col in ("batch", "serial texts/s", "2-worker texts/s", "speedup"):
        pool_table.add_column(col, justify="right")
    for r in threshold:
        pool_table.add_row(str(r["batch"]), f"{r['serial_texts_per_s']:,.0f}", f"{r['pool_texts_per_s']:,.0f}",
                           f"{r['speedup']:.2f}x")
    console = Console()
    console.print(table)
    console.print(pool_table)
    console.print(f"pool start-up (once per process): {pool_start_s:.2f} s; "
                  f"load average before/after: {load_before:.2f}/{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    atomic_write_json(args.json, {
        "batch": args.batch, "repeats": args.repeats, "results": results, "pep8_pool_by_batch": threshold,
        "pool_start_s": pool_start_s, "cpu_count": os.cpu_count(), "load_avg": list(os.getloadavg()),
        "python": platform.python_version(), "machine": platform.machine(),
    })
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
