"""Preference datasets: TRL's pair format plus who labelled each pair and by what margin.

A row is ``{"prompt", "chosen", "rejected"}`` (as TRL's reward and DPO trainers read it)
plus ``annotator``, ``margin`` (|s_a - s_b| under the labelling annotator's scorer),
``score_chosen`` and ``score_rejected``. Humans labelling in the web app write the same
three required fields; the extra fields are optional when loading.

Example:
    >>> import tempfile, pathlib
    >>> from prefgym.preferences import BoltzmannAnnotator, make_preference_dataset, load_preference_dataset
    >>> ann = BoltzmannAnnotator({"_target_": "prefgym.preferences.TargetCharScorer"}, temperature=0.0, name="a-lover")
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "prefs.jsonl"
    >>> rows = make_preference_dataset(["p"], ["bbb"], ["aab"], ann, path=path)
    >>> load_preference_dataset(path)[0]["chosen"], rows[0]["annotator"]
    ('aab', 'a-lover')
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefgym.preferences.annotators import AnnotatorPool
from prefgym.utils.io import atomic_write_jsonl

REQUIRED_FIELDS = ("prompt", "chosen", "rejected")
NUMERIC_FIELDS = ("margin", "score_chosen", "score_rejected")
_MAX_ERRORS = 20  # listed in one ValueError; the rest are counted


def make_preference_dataset(
    prompts: Sequence[str],
    completions_a: Sequence[str],
    completions_b: Sequence[str],
    annotator: Any,
    path: str | os.PathLike | None = None,
) -> list[dict[str, Any]]:
    """Label each (prompt, a, b) with ``annotator`` and return (and optionally write) pair rows.

    ``annotator`` is a ``BoltzmannAnnotator``, an ``AnnotatorPool``, a list of annotators (made
    into a pool) or a ``_target_`` dict of either. Identical pairs (a == b) carry no preference
    and raise. With ``path`` the rows are written atomically as JSONL.
    """
    annotator = _build_annotator(annotator)
    same = [i for i, (a, b) in enumerate(zip(completions_a, completions_b)) if a == b]
    if same:
        raise ValueError(
            f"{len(same)} pair(s) have identical completions (indices {same[:10]}); a pair needs two "
            "different completions: sample again or drop those pairs before labelling"
        )
    out = annotator.annotate(prompts, completions_a, completions_b)
    rows = []
    for i, prompt in enumerate(prompts):
        a_wins = out.choice[i] == 0
        rows.append({
            "prompt": prompt,
            "chosen": completions_a[i] if a_wins else completions_b[i],
            "rejected": completions_b[i] if a_wins else completions_a[i],
            "annotator": out.annotator_names[out.annotator_id[i]],
            "margin": float(out.margin[i]),
            "score_chosen": float(out.score_a[i] if a_wins else out.score_b[i]),
            "score_rejected": float(out.score_b[i] if a_wins else out.score_a[i]),
        })
    if path is not None:
        atomic_write_jsonl(path, rows)
    return rows


def _build_annotator(spec: Any) -> Any:
    if isinstance(spec, (list, tuple)):
        return AnnotatorPool(list(spec))
    if isinstance(spec, dict):
        from hydra.utils import instantiate

        return instantiate(spec, _recursive_=False, _convert_="all")
    if not hasattr(spec, "annotate"):
        raise TypeError(
            f"annotator must be a BoltzmannAnnotator or AnnotatorPool (got {type(spec).__name__}); "
            "wrap a scorer as BoltzmannAnnotator(scorer, temperature=..., flip_prob=...)"
        )
    return spec


def _row_errors(row: Any) -> list[str]:
    if not isinstance(row, dict):
        return [f"expected a JSON object, got {type(row).__name__}"]
    errors = [f"missing field {key!r}" for key in REQUIRED_FIELDS if key not in row]
    errors += [f"field {key!r} must be a string, got {type(row[key]).__name__}"
               for key in REQUIRED_FIELDS if key in row and not isinstance(row[key], str)]
    if not errors and row["chosen"] == row["rejected"]:
        errors.append("chosen == rejected (a pair needs two different completions)")
    for key in NUMERIC_FIELDS:
        value = row.get(key)
        if key in row and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            errors.append(f"field {key!r} must be a finite number, got {value!r}")
    if "annotator" in row and not isinstance(row["annotator"], str):
        errors.append(f"field 'annotator' must be a string, got {type(row['annotator']).__name__}")
    return errors


def load_preference_dataset(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read and validate a preference JSONL file; every malformed line is reported by number.

    Blank lines are skipped; any other bad line (invalid JSON, missing or mistyped field,
    chosen == rejected, non-finite margin) makes the whole load fail with a ValueError that
    lists the line numbers, so no row is ever dropped silently.
    """
    path = Path(path)
    rows, errors = [], []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                # JSON has no NaN/Infinity: refuse the tokens Python's json would accept
                row = json.loads(line, parse_constant=_refuse_constant)
            except ValueError as exc:
                errors.append(f"line {line_number}: invalid JSON ({exc})")
                continue
            problems = _row_errors(row)
            errors += [f"line {line_number}: {p}" for p in problems]
            if not problems:
                rows.append(row)
    if errors:
        more = f"\n  ... and {len(errors) - _MAX_ERRORS} more" if len(errors) > _MAX_ERRORS else ""
        raise ValueError(
            f"{path}: {len(errors)} malformed line(s); each line must be a JSON object with string "
            f"fields {list(REQUIRED_FIELDS)} (chosen != rejected):\n  " + "\n  ".join(errors[:_MAX_ERRORS]) + more
        )
    return rows


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")
