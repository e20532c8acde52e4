"""The PHF reproduction report: table values, the hand-written text around it is kept, PNG written."""

from __future__ import annotations

import json

import pytest

from prefgym.models.report import END, START, write_report


def fake_result(name: str, vpc: float, ppl: float) -> dict:
    scen = {"violations_per_char": vpc, "max_misalignment_over_k": 2 * vpc, "fraction_with_violation": 0.5,
            "distinct_2": 0.9, "ast_parse_rate": 0.3, "misalignment_mean": vpc}
    return {"objective": name, "parameters": 10, "train": {"tokens_per_s": 1000.0, "step": 5},
            "eval": {"perplexity": ppl, "prompted": scen, "unconditional": scen, "examples": {}}}


def test_report_ratios_and_markers(tmp_path):
    for i, (name, vpc, ppl) in enumerate([("conditional", 0.005, 11.0), ("mle", 0.02, 10.0)]):
        (tmp_path / str(i)).mkdir()
        (tmp_path / str(i) / "results.json").write_text(json.dumps(fake_result(name, vpc, ppl)))
    md = tmp_path / "phf.md"
    md.write_text(f"# Intro\n{START}\nold table\n{END}\nNotes stay.\n")
    table = write_report(tmp_path, md)["table"]
    rows = table.splitlines()
    assert rows[2].startswith("| mle |") and rows[3].startswith("| conditional |")  # paper order
    assert "4.00×" in rows[3] and "+10.0%" in rows[3]
    text = md.read_text()
    assert text.startswith("# Intro\n") and text.endswith("Notes stay.\n") and "old table" not in text
    assert (tmp_path / "pareto.png").stat().st_size > 1000 and (tmp_path / "phf.png").exists()


def test_report_without_results_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="did the sweep run"):
        write_report(tmp_path)
