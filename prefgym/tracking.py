"""Run tracking: wandb (offline by default, no account), the same metrics in local JSONL/CSV,
a table of sample completions, a progress bar, and PNG plots when the run ends.

Metric names are namespaced: ``rewards/`` (scores, gold scores), ``losses/``, ``kl/``,
``charts/`` (lengths, timings). Files in the run directory:

* ``metrics.jsonl`` — one row per iteration (``{"step": i, ...}``), appended and flushed;
  on resume, rows at or after the resumed step are dropped so the file matches an
  uninterrupted run. ``metrics.csv`` is rewritten from it when the run ends.
* ``samples.jsonl`` — sample completions (step, prompt, completion, score); also a wandb Table.
* ``plots/training.png`` — reward, gold score and KL over training.

Example:
    >>> import tempfile
    >>> tracker = Tracker(tempfile.mkdtemp(), wandb=False, progress=False)
    >>> tracker.log(0, {"rewards/score_mean": 0.5})
    >>> tracker.finish()["rewards/score_mean"]
    0.5
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import uuid
from pathlib import Path
from typing import Any

from prefgym.utils.io import atomic_write_text

NAMESPACES = ("rewards/", "losses/", "kl/", "charts/", "eval/")


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a JSONL file (a torn last line from a killed run is skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


class Tracker:
    """Log metrics to JSONL/CSV (always) and wandb (``wandb=True``, offline unless ``mode`` says otherwise).

    Args:
        run_dir: where the files go.
        wandb / mode / project / name / tags: wandb settings (``mode`` "offline", "online" or "disabled").
        run_config: the resolved run config, stored with the wandb run.
        total: iterations, for the progress bar; ``progress`` turns it off.
        start: the first iteration (a resumed run drops rows from ``start`` on).
    """

    def __init__(self, run_dir: str | os.PathLike, wandb: bool = True, mode: str = "offline",
                 project: str = "prefgym", name: str | None = None, tags: list[str] | None = None,
                 run_config: dict[str, Any] | None = None, total: int | None = None, start: int = 0,
                 progress: bool = True):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.samples_path = self.run_dir / "samples.jsonl"
        self._truncate(self.metrics_path, start)
        self._truncate(self.samples_path, start)
        self._last: dict[str, float] = {}
        self._wandb = self._init_wandb(mode, project, name, tags, run_config) if wandb else None
        self._progress = self._init_progress(total, start) if progress else None

    @staticmethod
    def _truncate(path: Path, start: int) -> None:
        rows = [r for r in read_jsonl(path) if r.get("step", -1) < start]
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))

    def _init_wandb(self, mode: str, project: str, name: str | None, tags: list[str] | None,
                    config: dict[str, Any] | None) -> Any:
        os.environ.setdefault("WANDB_MODE", mode)  # offline unless the user asked otherwise
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        id_file = self.run_dir / "wandb_id.txt"
        run_id = id_file.read_text().strip() if id_file.is_file() else uuid.uuid4().hex[:8]
        atomic_write_text(id_file, run_id)
        return wandb.init(project=project, name=name, tags=tags, config=config, dir=str(self.run_dir),
                          id=run_id, resume="allow", mode=os.environ["WANDB_MODE"])

    def _init_progress(self, total: int | None, start: int) -> Any:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            TextColumn("{task.fields[status]}"), transient=False)
        progress.start()
        self._task = progress.add_task("train", total=total, completed=start, status="")
        return progress

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Record one iteration's metrics (every name must be namespaced, every value finite)."""
        bad = [k for k in metrics if not k.startswith(NAMESPACES)]
        if bad:
            raise ValueError(f"metric names must start with one of {NAMESPACES}; got {bad}")
        clean = {k: float(v) for k, v in metrics.items()}
        with open(self.metrics_path, "a") as handle:
            handle.write(json.dumps({"step": int(step), **clean}, allow_nan=True) + "\n")
            handle.flush()
        self._last = clean
        if self._wandb is not None:
            self._wandb.log(clean, step=int(step))
        if self._progress is not None:
            status = "  ".join(f"{k.split('/')[-1]}={clean[k]:.4g}" for k in ("rewards/score_mean", "kl/ref")
                               if k in clean)
            self._progress.update(self._task, completed=step + 1, status=status)

    def log_samples(self, step: int, prompts: list[str], completions: list[str], scores: list[float],
                    limit: int = 4) -> None:
        """Keep the first ``limit`` completions of this step (JSONL now, a wandb Table at the end)."""
        with open(self.samples_path, "a") as handle:
            for prompt, completion, score in list(zip(prompts, completions, scores))[:limit]:
                row = {"step": int(step), "prompt": prompt, "completion": completion, "score": float(score)}
                handle.write(json.dumps(row) + "\n")

    def summary(self, values: dict[str, Any]) -> None:
        """Attach final values (e.g. evaluation results) to the wandb run summary."""
        if self._wandb is not None:
            for key, value in values.items():
                self._wandb.summary[key] = value

    def finish(self) -> dict[str, float]:
        """Stop the progress bar, write ``metrics.csv`` and the plots, close wandb; return the last metrics."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        rows = read_jsonl(self.metrics_path)
        write_csv(self.run_dir / "metrics.csv", rows)
        if rows:
            plot_training(rows, self.run_dir / "plots" / "training.png")
        if self._wandb is not None:
            import wandb

            samples = read_jsonl(self.samples_path)
            if samples:
                table = wandb.Table(columns=["step", "prompt", "completion", "score"],
                                    data=[[s["step"], s["prompt"], s["completion"], s["score"]] for s in samples])
                self._wandb.log({"charts/samples": table})
            self._wandb.finish()
            self._wandb = None
        return self._last


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rows as CSV (columns: step, then every metric name in first-seen order)."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def plot_training(rows: list[dict[str, Any]], path: Path) -> Path:
    """Reward (and gold score), KL to the reference, and completion length against iterations."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    gold_keys = sorted({k for r in rows for k in r if k.startswith("rewards/gold/")})
    panels = [("reward", ["rewards/score_mean"] + gold_keys[:2]),
              ("KL to reference (nats / sequence)", ["kl/ref", "kl/coef"]),
              ("completion tokens", ["charts/completion_tokens"])]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6))
    for ax, (title, keys) in zip(axes, panels):
        for key in keys:
            ys = [r.get(key, math.nan) for r in rows]
            if any(not math.isnan(y) for y in ys):
                ax.plot(steps, ys, label=key)
        ax.set_title(title)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path
