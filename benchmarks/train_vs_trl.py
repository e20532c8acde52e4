"""Training throughput: prefgym's GRPO and PPO against TRL's GRPOTrainer and PPOTrainer.

Same tiny GPT-2 (4 layers, width 256, vocab 8192 = prefgym/bpe-8k, random init, fp32 on both
sides), batch 64, 16-token prompts, 32 new tokens, the same reward function (fraction of
generated characters equal to "e", prefgym's TargetCharScorer), temperature 1, the same
number of update epochs, and a KL-to-reference term on both sides (PPO, coefficient 0.05) or on
neither (GRPO, beta 0: TRL's default). Each configuration runs in its own process, one after
the other; a worker reports the median step time after warm-up and its peak RSS.

``floor`` measures the compute floor of a one-epoch update in the same run: one HF
``generate`` of the batch plus one forward/backward over prompt + completion, timed apart.
A configuration with ``k`` update epochs has the floor ``generate + k * forward/backward``;
its "floor fraction" is floor / step time (1.0 = no overhead beyond that floor).

TRL is an optional dependency (``pip install 'prefgym[bench]'``; 1.12.0 is the last release
with PPO, as ``trl.experimental.ppo``, which needs a reward *model* and a value model: the
reward function is wrapped in a parameter-free module, and TRL's value model is a separate
GPT-2 of the same size, as its PPO requires). ``--trl-python`` picks the interpreter that has
TRL (default: ``.venv-bench/bin/python`` when it exists).

Usage:
    $ python benchmarks/train_vs_trl.py --json benchmarks/results/train_vs_trl.json
    $ python benchmarks/train_vs_trl.py --configs floor,ours_grpo --steps 2   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH, PROMPT_TOKENS, NEW_TOKENS, GROUP = 64, 16, 32, 8
CONFIGS = ("floor", "ours_grpo", "trl_grpo", "ours_ppo", "trl_ppo", "ours_ppo_1epoch", "trl_ppo_1epoch")
TARGET = "e"


# -- shared setup (inside a worker) ----------------------------------------------------------
def setup(threads: int):
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    sys.path.insert(0, str(ROOT))
    from prefgym.models import build_policy
    from prefgym.tokenization import load_tokenizer

    tokenizer = load_tokenizer("prefgym/bpe-8k")
    model = build_policy(tokenizer, n_layer=4, n_embd=256, n_head=4, n_positions=256, seed=0).float()
    return tokenizer, model, prompts_of_exact_length(tokenizer, 256)


def prompts_of_exact_length(tokenizer, count: int) -> list[str]:
    """Stdlib code windows that re-tokenize to exactly PROMPT_TOKENS tokens (so both sides agree)."""
    from prefgym.data.corpora import load_corpus

    prompts: list[str] = []
    for doc in load_corpus("code", split="heldout", max_files=20):
        ids = tokenizer(doc.text)["input_ids"]
        for start in range(0, len(ids) - PROMPT_TOKENS, PROMPT_TOKENS * 3):
            text = tokenizer.decode(ids[start:start + PROMPT_TOKENS])
            if len(tokenizer(text)["input_ids"]) == PROMPT_TOKENS:
                prompts.append(text)
            if len(prompts) == count:
                return prompts
    raise RuntimeError(f"found only {len(prompts)} prompts of {PROMPT_TOKENS} tokens")


def reward_fn(prompts, completions, **kwargs) -> list[float]:
    from prefgym.preferences import TargetCharScorer

    return TargetCharScorer(target=TARGET).score(list(prompts), list(completions)).tolist()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


# -- workers ---------------------------------------------------------------------------------
def run_floor(args) -> dict:
    import torch

    tokenizer, model, prompts = setup(args.threads)
    tokenizer.padding_side = "left"
    enc = tokenizer(prompts[:BATCH], return_tensors="pt", padding=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-6)
    generate_s, update_s = [], []
    for _ in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=True,
                                 pad_token_id=tokenizer.pad_token_id)
        t1 = time.perf_counter()
        mask = torch.ones_like(out)
        loss = model(input_ids=out, attention_mask=mask, labels=out).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        generate_s.append(t1 - t0)
        update_s.append(time.perf_counter() - t1)
    gen, upd = statistics.median(generate_s[args.warmup:]), statistics.median(update_s[args.warmup:])
    return {"step_s": gen + upd, "generate_s": gen, "update_s": upd}


def epochs_of(name: str) -> int:
    """Update epochs of a configuration (GRPO and the *_1epoch configs: 1; PPO: 4)."""
    return 4 if name.endswith("_ppo") else 1


def make_env(tokenizer, prompts):
    from prefgym.envs.vector_env import TokenVectorEnv

    return TokenVectorEnv(num_envs=BATCH, tokenizer=tokenizer, prompts={"train": prompts},
                          preference={"_target_": "prefgym.preferences.TargetCharScorer", "target": TARGET},
                          max_prompt_tokens=PROMPT_TOKENS, max_new_tokens=NEW_TOKENS, autoreset_mode="disabled")


def run_ours(args, algo: str, epochs: int) -> dict:
    from agents.grpo import GRPOAgent, GRPOConfig
    from agents.ppo import PPOAgent, PPOConfig

    tokenizer, model, prompts = setup(args.threads)
    env = make_env(tokenizer, prompts)
    if algo == "grpo":
        agent = GRPOAgent(GRPOConfig(batch_size=BATCH, group_size=GROUP, lr=1e-6, beta=0.0, loss_type="dapo",
                                     num_iterations=epochs, micro_batch_size=args.micro_batch, device="cpu"), model)
    else:
        agent = PPOAgent(PPOConfig(batch_size=BATCH, lr=3e-6, ppo_epochs=epochs, init_kl_coef=0.05,
                                   adaptive_kl=False, micro_batch_size=args.micro_batch, device="cpu"), model)
    times = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        agent.train_step(env, i)
        times.append(time.perf_counter() - t0)
    return {"step_s": statistics.median(times[args.warmup:])}


class _StepTimer:
    def __init__(self):
        self.stamps = [time.perf_counter()]

    def hook(self):
        from transformers import TrainerCallback

        timer = self

        class Callback(TrainerCallback):
            def on_train_begin(self, *a, **k):
                timer.stamps = [time.perf_counter()]

            def on_step_end(self, *a, **k):
                timer.stamps.append(time.perf_counter())

        return Callback()

    def step_times(self) -> list[float]:
        return [b - a for a, b in zip(self.stamps, self.stamps[1:])]


def run_trl_grpo(args) -> dict:
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    tokenizer, model, prompts = setup(args.threads)
    tokenizer.padding_side = "left"
    timer = _StepTimer()
    config = GRPOConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=BATCH, num_generations=GROUP,
                        max_completion_length=NEW_TOKENS, beta=0.0, num_iterations=1, learning_rate=1e-6,
                        temperature=1.0, max_steps=args.warmup + args.steps, use_cpu=True, bf16=False, fp16=False,
                        logging_steps=10_000, save_strategy="no", report_to=[], dataloader_num_workers=0,
                        disable_dropout=True, seed=0)
    trainer = GRPOTrainer(model=model, reward_funcs=[reward_fn], args=config, processing_class=tokenizer,
                          train_dataset=Dataset.from_dict({"prompt": prompts}), callbacks=[timer.hook()])
    trainer.train()
    return {"step_s": statistics.median(timer.step_times()[args.warmup:])}


def run_trl_ppo(args, epochs: int) -> dict:
    import torch
    from datasets import Dataset
    from transformers import GPT2ForSequenceClassification
    from trl.experimental.ppo import PPOConfig, PPOTrainer

    tokenizer, model, prompts = setup(args.threads)
    tokenizer.padding_side = "left"

    class FunctionRewardModel(torch.nn.Module):
        """The reward function as the 'reward model' TRL's PPO asks for (no parameters learn)."""

        base_model_prefix = "backbone"

        def __init__(self):
            super().__init__()
            self.backbone = _IdsAsHidden()
            self.dummy = torch.nn.Parameter(torch.zeros(1), requires_grad=False)

        def score(self, hidden):  # hidden: (B, T, 1) token ids as floats
            ids = hidden[..., 0].long()
            texts = [tokenizer.decode(row[PROMPT_TOKENS:], skip_special_tokens=True) for row in ids]
            rewards = torch.tensor(reward_fn(["" for _ in texts], texts))  # (B,)
            return rewards[:, None, None].expand(ids.shape[0], ids.shape[1], 1)

    class _IdsAsHidden(torch.nn.Module):
        def forward(self, input_ids, **kwargs):
            from types import SimpleNamespace

            return SimpleNamespace(hidden_states=[input_ids[..., None].float()])

    value_config = model.config.__class__(**{**model.config.to_dict(), "num_labels": 1})
    value_model = GPT2ForSequenceClassification(value_config).float()
    timer = _StepTimer()
    config = PPOConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=BATCH, gradient_accumulation_steps=1,
                       num_mini_batches=1, num_ppo_epochs=epochs, total_episodes=BATCH * (args.warmup + args.steps),
                       response_length=NEW_TOKENS, temperature=1.0, kl_coef=0.05, learning_rate=3e-6,
                       num_sample_generations=0, local_rollout_forward_batch_size=BATCH, use_cpu=True, bf16=False,
                       fp16=False, report_to=[], save_strategy="no", logging_steps=10_000, seed=0)
    ids = [tokenizer(p)["input_ids"] for p in prompts]
    trainer = PPOTrainer(args=config, processing_class=tokenizer, model=model, ref_model=None,
                         reward_model=FunctionRewardModel(), value_model=value_model,
                         train_dataset=Dataset.from_dict({"input_ids": ids}), callbacks=[timer.hook()])
    trainer.train()
    return {"step_s": statistics.median(timer.step_times()[args.warmup:])}


def worker(args) -> None:
    name = args.worker
    if name == "floor":
        out = run_floor(args)
    elif name.startswith("ours_"):
        out = run_ours(args, "grpo" if "grpo" in name else "ppo", epochs_of(name))
    elif name == "trl_grpo":
        out = run_trl_grpo(args)
    else:
        out = run_trl_ppo(args, epochs_of(name))
    out.update(name=name, samples_per_s=BATCH / out["step_s"], peak_rss_mb=peak_rss_mb(), steps=args.steps)
    print("RESULT " + json.dumps(out), flush=True)


# -- driver ----------------------------------------------------------------------------------
def run_config(name: str, args) -> dict:
    python = args.trl_python if name.startswith("trl_") else sys.executable
    cmd = [python, str(Path(__file__).resolve()), "--worker", name, "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--threads", str(args.threads), "--micro-batch", str(args.micro_batch)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false", "WANDB_MODE": "disabled"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"name": name, "error": (proc.stderr or proc.stdout)[-2000:]}


def floor_s(results: dict[str, dict], name: str) -> float | None:
    """A configuration's compute floor: one ``generate`` plus one forward/backward per update epoch."""
    floor = results.get("floor", {})
    if "generate_s" not in floor:
        return floor.get("step_s")
    return floor["generate_s"] + epochs_of(name) * floor["update_s"]


def table(results: dict[str, dict]) -> str:
    lines = [f"{'config':<18}{'samples/s':>11}{'step s':>9}{'peak RSS MB':>13}{'RSS vs TRL':>11}"
             f"{'floor frac':>12}{'vs TRL':>9}"]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"{name:<18} ERROR: {r['error'].splitlines()[-1][:80] if r['error'] else '?'}")
            continue
        floor = floor_s(results, name)
        frac = f"{floor / r['step_s']:.2f}" if floor and name != "floor" else ""
        rival = results.get(name.replace("ours_", "trl_"), {}) if name.startswith("ours_") else {}
        ratio = f"{r['samples_per_s'] / rival['samples_per_s']:.2f}x" if rival.get("samples_per_s") else ""
        rss = f"{r['peak_rss_mb'] / rival['peak_rss_mb']:.0%}" if rival.get("peak_rss_mb") else ""
        lines.append(f"{name:<18}{r['samples_per_s']:>11.1f}{r['step_s']:>9.2f}{r['peak_rss_mb']:>13.0f}{rss:>11}"
                     f"{frac:>12}{ratio:>9}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {CONFIGS}")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per configuration (after warm-up)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads in every worker")
    # GRPO, 1 thread, measured: 16 rows 755 MB peak; 8 rows 630 MB at the same step time; 4 rows
    # 586 MB, ~10% slower. The (rows, 32, 8192) fp32 logits, their log-softmax and gradients are
    # most of the working set above the ~410 MB that torch + the model take before any step.
    parser.add_argument("--micro-batch", type=int, default=4,
                        help="our agents' rows per forward/backward (gradient accumulation; same update)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per configuration")
    default_trl = ROOT / ".venv-bench" / "bin" / "python"
    parser.add_argument("--trl-python", default=str(default_trl) if default_trl.exists() else sys.executable)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    results = {}
    for name in args.configs.split(","):
        results[name] = run_config(name, args)
        print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
    print(table(results))
    if args.json:
        meta = {"batch": BATCH, "prompt_tokens": PROMPT_TOKENS, "new_tokens": NEW_TOKENS, "group": GROUP,
                "threads": args.threads, "steps": args.steps, "warmup": args.warmup, "micro_batch": args.micro_batch,
                "model": "GPT-2 4x256, vocab 8192, random init, fp32", "reward": f"TargetCharScorer({TARGET!r})"}
        from prefgym.utils.io import atomic_write_json  # a crash mid-write never leaves half a file

        atomic_write_json(args.json, {"settings": meta, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
