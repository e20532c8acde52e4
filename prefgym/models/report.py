"""Reproduction report for a PHF sweep: a markdown table, a JSON summary and a Pareto PNG.

Reads ``<sweep_dir>/*/results.json`` (one per objective, as ``prefgym pretrain`` writes them).
Runs automatically at the end of ``prefgym pretrain pretrain_experiment=phf_pep8`` (a Hydra
callback) and by hand:

    $ python -m prefgym.models.report outputs/phf_pep8/<time> docs/phf.md

Example:
    >>> ratio_row({"mle": 0.02, "conditional": 0.005}, "conditional")
    4.0
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

START, END = "<!-- phf-table:start -->", "<!-- phf-table:end -->"
ORDER = ("mle", "filtering", "conditional", "unlikelihood", "rwr", "awr")


def collect(sweep_dir: str | Path) -> dict[str, dict]:
    """``objective name -> results`` for every finished run under ``sweep_dir``."""
    found = {}
    for path in sorted(Path(sweep_dir).glob("*/results.json")):
        data = json.loads(path.read_text())
        if "eval" in data:
            found[data["objective"]] = data
    if not found:
        raise FileNotFoundError(f"no results.json with an 'eval' section under {sweep_dir}; did the sweep run?")
    return {k: found[k] for k in sorted(found, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))}


def ratio_row(values: dict[str, float], name: str, baseline: str = "mle") -> float:
    """How many times lower ``name``'s value is than the baseline's (inf when it is 0)."""
    return values[baseline] / values[name] if values[name] > 0 else float("inf")


def table(results: dict[str, dict]) -> str:
    """Markdown table: violations/char (prompted, unconditional), max over k, any-violation rate, perplexity."""
    head = ("| objective | prompted viol/char | ×fewer vs MLE | uncond. viol/char | max over k | "
            "any violation | held-out ppl | ppl vs MLE | distinct-2 | ast.parse | steps | train tok/s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    base = results.get("mle")
    for name, r in results.items():
        e, p, u = r["eval"], r["eval"]["prompted"], r["eval"]["unconditional"]
        fewer = (base["eval"]["prompted"]["violations_per_char"] / p["violations_per_char"]
                 if base and p["violations_per_char"] > 0 else float("nan"))
        ppl_rel = e["perplexity"] / base["eval"]["perplexity"] - 1 if base else float("nan")
        lines.append(
            f"| {name} | {p['violations_per_char']:.5f} | {fewer:.2f}× | {u['violations_per_char']:.5f} | "
            f"{p['max_misalignment_over_k']:.5f} | {p['fraction_with_violation']:.2f} | {e['perplexity']:.2f} | "
            f"{ppl_rel:+.1%} | {p['distinct_2']:.3f} | {p['ast_parse_rate']:.2f} | {r['train']['step']} | "
            f"{r['train']['tokens_per_s']:.0f} |"
        )
    return "\n".join(lines)


def plot(results: dict[str, dict], path: str | Path) -> None:
    """Scatter of prompted violations/char against held-out perplexity, one point per objective."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on a server
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    points: dict[tuple[float, float], list[str]] = {}  # objectives that land on one point share a label
    for name, r in results.items():
        x, y = r["eval"]["perplexity"], r["eval"]["prompted"]["violations_per_char"]
        points.setdefault((round(x, 1), round(y, 5)), []).append(name)
    for (x, y), names in points.items():
        ax.scatter(x, y, s=40)
        ax.annotate(" = ".join(names), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=9)
    ax.set_xlabel("held-out perplexity (stdlib code)")
    ax.set_ylabel("PEP8 violations / char (prompted)")
    ax.set_title("PHF objectives on PEP8: misalignment vs capability")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(sweep_dir: str | Path, markdown_path: str | Path | None = None, preamble: str = "") -> dict[str, Any]:
    """Write ``summary.json`` + ``pareto.png`` into the sweep dir and (optionally) a markdown report."""
    from prefgym.utils.io import atomic_write_json, atomic_write_text

    sweep = Path(sweep_dir)
    results = collect(sweep)
    summary = {name: {k: r[k] for k in ("parameters", "train")} | {"eval": {
        k: v for k, v in r["eval"].items() if k != "examples"}} for name, r in results.items()}
    atomic_write_json(sweep / "summary.json", summary)
    plot(results, sweep / "pareto.png")
    md = table(results)
    if markdown_path is not None:
        out = Path(markdown_path)
        png = out.with_suffix(".png")
        plot(results, png)
        section = f"{START}\n{preamble}\n{md}\n\n![score vs perplexity]({png.name})\n{END}"
        text = out.read_text(encoding="utf-8") if out.exists() else ""
        if START in text and END in text:  # keep the hand-written explanation around the table
            text = text[: text.index(START)] + section + text[text.index(END) + len(END):]
        else:
            text = section + "\n"
        atomic_write_text(out, text)
    return {"table": md, "summary": summary}


def main(argv: list[str] | None = None) -> int:
    """``python -m prefgym.models.report SWEEP_DIR [MARKDOWN]``: print (and write) the table."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(main.__doc__)
        return 2
    print(write_report(argv[0], argv[1] if len(argv) > 1 else None)["table"])
    return 0


class PHFReportCallback(Callback):
    """Hydra callback (``hydra.callbacks.<name>._target_``): writes the report when a multirun ends."""

    def __init__(self, markdown_path: str | None = None, preamble: str = ""):
        self.markdown_path, self.preamble = markdown_path, preamble

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        print(write_report(config.hydra.sweep.dir, self.markdown_path, self.preamble)["table"])


if __name__ == "__main__":
    raise SystemExit(main())
