"""Torch thread count: rollout and train-step time with 1 vs 2 threads, alone and beside a busy core.

Backs the default of ``PREFGYM_NUM_THREADS`` (1): on a 2-core machine that also runs scorer
processes, other jobs or a second training run, intra-op threads spin against each other.
Each measurement runs in its own process (thread pools cannot be resized reliably in-process).

    python benchmarks/threads.py --json benchmarks/results/threads.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import subprocess
import sys
import time
from pathlib import Path

WORKER = r"""
import json, sys, time, torch
from transformers import GPT2Config, GPT2LMHeadModel
torch.set_num_threads(int(sys.argv[1]))
torch.manual_seed(0)
model = GPT2LMHeadModel(GPT2Config(vocab_size=8192, n_layer=4, n_embd=256, n_head=4, n_positions=128,
                                   bos_token_id=0, eos_token_id=0))
ids = torch.randint(1, 8192, (64, 16))
def rollout():
    with torch.no_grad():
        model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, max_new_tokens=32,
                       min_new_tokens=32, pad_token_id=0, top_k=0)
batch = torch.randint(1, 8192, (64, 48))
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
def train_step():
    loss = model(input_ids=batch, labels=batch).loss
    loss.backward(); opt.step(); opt.zero_grad()
out = {}
for name, fn in (("rollout_s", rollout), ("train_step_s", train_step)):
    fn()
    times = []
    for _ in range(int(sys.argv[2])):
        start = time.perf_counter(); fn(); times.append(time.perf_counter() - start)
    out[name] = sorted(times)[len(times) // 2]
print(json.dumps(out))
"""


def _busy(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x += 1


def measure(threads: int, repeats: int, loaded: bool) -> dict:
    busy = None
    if loaded:
        busy = mp.Process(target=_busy, args=(time.time() + 600,), daemon=True)
        busy.start()
    try:
        out = subprocess.run([sys.executable, "-c", WORKER, str(threads), str(repeats)],
                             capture_output=True, text=True, check=True)
    finally:
        if busy is not None:
            busy.terminate()
            busy.join()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/threads.json"))
    args = parser.parse_args()
    rows = []
    for loaded in (False, True):
        for threads in (1, 2):
            rows.append({"threads": threads, "busy_core": loaded, **measure(threads, args.repeats, loaded)})
    from rich.console import Console
    from rich.table import Table

    table = Table(title="GPT-2 4x256, batch 64: seconds (median)")
    for column in ("threads", "busy core beside", "rollout 32 tokens", "train step (48 tokens)"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(str(row["threads"]), str(row["busy_core"]), f"{row['rollout_s']:.2f}", f"{row['train_step_s']:.2f}")
    Console().print(table)
    from prefgym.utils.io import atomic_write_json

    atomic_write_json(args.json, {"benchmark": "threads", "machine": platform.machine(),
                                  "cpus": mp.cpu_count(), "rows": rows})
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
