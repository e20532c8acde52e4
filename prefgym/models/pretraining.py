"""The pretraining loop: any objective, periodic atomic checkpoints, exact resume.

An *objective* is any object with (``agents.phf`` has the six PHF ones):
  * ``loss(logits, labels, token_scores, values) -> (loss, logs)`` — logits (B, T, V) already
    aligned with labels (B, T) (``-100`` = ignore), token scores (B, T) higher-is-better,
    values (B, T) or ``None``;
  * ``value_head: bool`` — whether the loop should train a value head for it;
  * ``prepare(docs, tokenizer, seed) -> docs`` — per-objective data changes (filtering,
    control tokens) on ``TokenizedDocument``s;
  * ``conditional: bool`` — samples must be conditioned on ``<|good|>``.

Checkpoints hold model, value head, optimizer, torch RNG and step in one file written
atomically; the batch order depends only on (seed, step), so a resumed run continues the
exact sequence of batches. Resuming with a different config is refused.

Example:
    >>> settings = TrainSettings(steps=2, batch_size=2)  # then: pretrain(model, objective, blocks, settings, "out")
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prefgym.models.blocks import batch_indices
from prefgym.utils.io import atomic_open, atomic_write_json

CHECKPOINT = "checkpoint.pt"
# Keys that may differ between a run and its resumption (they do not change the result).
RESUMABLE_KEYS = frozenset({"resume", "time_budget_s", "stop_step", "num_threads", "progress", "log_every",
                            "checkpoint_every"})


@dataclass
class TrainSettings:
    """Optimisation settings of one pretraining run."""

    steps: int = 1000  # optimizer steps (the LR schedule spans them all)
    batch_size: int = 8  # blocks per step
    lr: float = 1e-3  # peak AdamW learning rate
    weight_decay: float = 0.1
    warmup_steps: int = 50  # linear warmup, then cosine decay to 10% of lr
    grad_clip: float = 1.0
    checkpoint_every: int = 100  # steps between atomic checkpoints
    log_every: int = 10
    seed: int = 0
    time_budget_s: float | None = None  # stop early (with a checkpoint) after this much wall time
    stop_step: int | None = None  # stop early at this step (schedule unchanged): replays a budget-stopped run
    progress: bool = True


def lr_at(step: int, settings: TrainSettings) -> float:
    """Warmup-then-cosine learning rate at ``step``."""
    if step < settings.warmup_steps:
        return settings.lr * (step + 1) / settings.warmup_steps
    frac = (step - settings.warmup_steps) / max(settings.steps - settings.warmup_steps, 1)
    return settings.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


def check_resume_config(saved: dict, current: dict) -> None:
    """Refuse to resume a run whose config differs (apart from ``RESUMABLE_KEYS``)."""
    keys = (set(saved) | set(current)) - RESUMABLE_KEYS
    diff = {k: (saved.get(k), current.get(k)) for k in sorted(keys) if saved.get(k) != current.get(k)}
    if diff:
        lines = "\n".join(f"  {k}: checkpoint={a!r} now={b!r}" for k, (a, b) in diff.items())
        raise ValueError(
            f"cannot resume: the config differs from the checkpoint's:\n{lines}\n"
            "Resume with the original settings, or start a new run in another run_dir "
            "(the existing checkpoint is left untouched)."
        )


def _save_checkpoint(path: Path, model: Any, head: Any, optimizer: Any, step: int, config: dict) -> None:
    import torch

    state = {
        "model": model.state_dict(),
        "value_head": head.state_dict() if head is not None else {},
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "step": step,
        "config_json": json.dumps(config, sort_keys=True),
    }
    with atomic_open(path, "wb") as handle:
        torch.save(state, handle)


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by the loop (tensors and plain data only; no pickled code)."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def _forward_loss(model: Any, head: Any, objective: Any, batch: dict) -> tuple[Any, dict]:
    out = model(input_ids=batch["input_ids"], output_hidden_states=head is not None)
    values = head(out.hidden_states[-1]).squeeze(-1) if head is not None else None  # (B, T)
    return objective.loss(out.logits, batch["labels"], batch["token_scores"], values)


def _batch(blocks: dict[str, np.ndarray], step: int, settings: TrainSettings) -> dict:
    import torch

    idx = batch_indices(len(blocks["input_ids"]), settings.batch_size, step, settings.seed)
    return {k: torch.from_numpy(np.ascontiguousarray(v[idx])) for k, v in blocks.items()}


def _start(out: Path, model: Any, head: Any, optimizer: Any, config: dict, resume: bool) -> int:
    import torch

    ckpt = out / CHECKPOINT
    if not ckpt.exists():
        if resume:
            print(f"resume=true but no checkpoint in {out}; starting from step 0")
        return 0
    if not resume:
        raise FileExistsError(
            f"{ckpt} exists: pass resume=true to continue that run, or choose another run_dir "
            "(nothing was overwritten)"
        )
    state = load_checkpoint(ckpt)
    check_resume_config(json.loads(state["config_json"]), config)
    model.load_state_dict(state["model"])
    if head is not None:
        head.load_state_dict(state["value_head"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"])


def pretrain(model: Any, objective: Any, blocks: dict[str, np.ndarray], settings: TrainSettings,
             out_dir: str | Path, config: dict | None = None, resume: bool = False) -> dict:
    """Train ``model`` in place on ``blocks`` (see ``make_blocks``) with ``objective``; return a summary.

    Writes ``out_dir/checkpoint.pt`` every ``checkpoint_every`` steps and at the end, and
    ``out_dir/train_log.jsonl``. ``config`` (plain data) is stored to check resumption.
    """
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = dict(config if config is not None else asdict(settings))
    head = None
    if objective.value_head:
        with torch.random.fork_rng(devices=[]):  # seeded, so a run does not depend on earlier RNG use
            torch.manual_seed(settings.seed)
            head = torch.nn.Linear(model.config.hidden_size, 1)
    params = list(model.parameters()) + (list(head.parameters()) if head is not None else [])
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay, betas=(0.9, 0.95))
    step = _start(out, model, head, optimizer, config, resume)
    model.train()
    log_path, t0, tokens = out / "train_log.jsonl", time.time(), 0
    bar = _Progress(settings, step)
    while step < settings.steps:
        batch = _batch(blocks, step, settings)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, settings)
        loss, logs = _forward_loss(model, head, objective, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss is {loss.item()} at step {step}; lower lr or check the scores (last checkpoint kept)"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
        optimizer.step()
        step, tokens = step + 1, tokens + batch["input_ids"].numel()
        elapsed = time.time() - t0
        if step % settings.log_every == 0 or step == settings.steps:
            row = {"step": step, "loss": loss.item(), "lr": lr_at(step - 1, settings),
                   "tokens_per_s": tokens / elapsed, **{k: float(v) for k, v in logs.items()}}
            with open(log_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
        bar.update(step, loss.item(), tokens / elapsed)
        over_budget = (settings.time_budget_s is not None and elapsed > settings.time_budget_s) or (
            settings.stop_step is not None and step >= settings.stop_step)
        if step % settings.checkpoint_every == 0 or step == settings.steps or over_budget:
            _save_checkpoint(out / CHECKPOINT, model, head, optimizer, step, config)
        if over_budget:
            break
    bar.close()
    model.eval()
    summary = {"step": step, "finished": step >= settings.steps, "wall_s": time.time() - t0,
               "tokens": tokens, "tokens_per_s": tokens / max(time.time() - t0, 1e-9)}
    atomic_write_json(out / "train_summary.json", summary)
    return {**summary, "value_head": head}


class _Progress:
    """A rich progress bar (or nothing, when disabled) showing loss and tokens/s."""

    def __init__(self, settings: TrainSettings, start: int):
        self.bar = None
        if settings.progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("pretrain"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                TextColumn("{task.fields[info]}"))
            self.bar.start()
            self.task = self.bar.add_task("train", total=settings.steps, completed=start, info="")

    def update(self, step: int, loss: float, tok_s: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, info=f"loss {loss:.3f}  {tok_s:,.0f} tok/s")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
