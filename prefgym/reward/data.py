"""Comparison datasets for reward models and DPO: pairs, ties and K-wise rankings.

Three row shapes are accepted (JSONL lines, HF ``datasets`` rows, or dicts):

* **pair** (TRL's format, what :func:`prefgym.preferences.make_preference_dataset` writes):
  ``{"prompt", "chosen", "rejected"}`` plus optional ``annotator``, ``margin``,
  ``score_chosen``, ``score_rejected`` (the labelling scorer's noiseless scores).
* **tie**: a pair row with ``"tie": true`` (neither completion preferred; trained with a
  soft 0.5 label).
* **K-wise**: ``{"prompt", "ranked": [best, ..., worst]}`` plus optional ``scores``
  (one per ranked completion), trained with the Plackett-Luce likelihood.

Every row becomes a :class:`Comparison` (completions ordered best first). Invalid rows
raise a ``ValueError`` listing each bad line/row number: nothing is dropped silently.

Example:
    >>> rows = [{"prompt": "p", "chosen": "a", "rejected": "b"},
    ...         {"prompt": "q", "ranked": ["x", "y", "z"]}]
    >>> [c.completions for c in comparisons_from_rows(rows)]
    [('a', 'b'), ('x', 'y', 'z')]
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_MAX_ERRORS = 20  # listed in one error message; the rest are counted
VALIDATION_SPLITS = ("validation", "valid", "eval", "test")


@dataclass(frozen=True)
class Comparison:
    """One labelled comparison: ``completions`` ordered best first (K >= 2).

    ``tie`` marks a pair whose two completions were judged equal. ``gold`` holds the
    labelling scorer's noiseless scores aligned with ``completions`` when known.
    """

    prompt: str
    completions: tuple[str, ...]
    tie: bool = False
    annotator: str | None = None
    gold: tuple[float, ...] | None = None

    @property
    def k(self) -> int:
        return len(self.completions)

    def to_row(self) -> dict[str, Any]:
        """The JSON row this comparison was read from (pair/tie or K-wise shape)."""
        row: dict[str, Any] = {"prompt": self.prompt}
        if self.k == 2:
            row.update(chosen=self.completions[0], rejected=self.completions[1])
            if self.tie:
                row["tie"] = True
            if self.gold is not None:
                row.update(score_chosen=self.gold[0], score_rejected=self.gold[1])
        else:
            row["ranked"] = list(self.completions)
            if self.gold is not None:
                row["scores"] = list(self.gold)
        if self.annotator is not None:
            row["annotator"] = self.annotator
        return row


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _pair_errors(row: Mapping[str, Any]) -> list[str]:
    errors = [f"missing field {k!r}" for k in ("chosen", "rejected") if k not in row]
    errors += [f"field {k!r} must be a string, got {type(row[k]).__name__}"
               for k in ("chosen", "rejected") if k in row and not isinstance(row[k], str)]
    if not errors and row["chosen"] == row["rejected"]:
        errors.append("chosen == rejected (a pair needs two different completions; "
                      "mark equally good different completions with \"tie\": true)")
    for key in ("margin", "score_chosen", "score_rejected"):
        if key in row and not _is_number(row[key]):
            errors.append(f"field {key!r} must be a finite number, got {row[key]!r}")
    if "tie" in row and not isinstance(row["tie"], bool):
        errors.append(f"field 'tie' must be true or false, got {row['tie']!r}")
    return errors


def _ranked_errors(row: Mapping[str, Any]) -> list[str]:
    ranked = row["ranked"]
    if not isinstance(ranked, list) or len(ranked) < 2 or not all(isinstance(c, str) for c in ranked):
        return [f"field 'ranked' must be a list of >= 2 strings (best first), got {ranked!r:.80}"]
    errors = []
    if len(set(ranked)) != len(ranked):
        errors.append("field 'ranked' repeats a completion (each ranked completion must differ)")
    if "scores" in row:
        scores = row["scores"]
        if not isinstance(scores, list) or len(scores) != len(ranked) or not all(_is_number(s) for s in scores):
            errors.append(f"field 'scores' must be {len(ranked)} finite numbers aligned with 'ranked'")
    if "tie" in row:
        errors.append("'tie' is only defined for pairs, not for 'ranked' rows")
    return errors


def row_errors(row: Any) -> list[str]:
    """Everything wrong with one row (empty when it is valid).

    Example:
        >>> row_errors({"prompt": "p", "chosen": "a"})
        ["missing field 'rejected'"]
    """
    if not isinstance(row, Mapping):
        return [f"expected a JSON object, got {type(row).__name__}"]
    errors = [] if isinstance(row.get("prompt"), str) else (
        ["missing field 'prompt'"] if "prompt" not in row else
        [f"field 'prompt' must be a string, got {type(row['prompt']).__name__}"])
    if "ranked" in row:
        if "chosen" in row or "rejected" in row:
            return errors + ["a row has either 'ranked' or 'chosen'/'rejected', not both"]
        errors += _ranked_errors(row)
    else:
        errors += _pair_errors(row)
    if row.get("annotator") is not None and not isinstance(row["annotator"], str):
        errors.append(f"field 'annotator' must be a string, got {type(row['annotator']).__name__}")
    return errors


def comparison_from_row(row: Mapping[str, Any]) -> Comparison:
    """A :class:`Comparison` from one row already checked by :func:`row_errors`."""
    annotator = row.get("annotator")
    if "ranked" in row:
        gold = tuple(float(s) for s in row["scores"]) if "scores" in row else None
        return Comparison(row["prompt"], tuple(row["ranked"]), False, annotator, gold)
    gold = None
    if "score_chosen" in row and "score_rejected" in row:
        gold = (float(row["score_chosen"]), float(row["score_rejected"]))
    return Comparison(row["prompt"], (row["chosen"], row["rejected"]), bool(row.get("tie", False)), annotator, gold)


def _raise_if_errors(errors: list[str], where: str) -> None:
    if not errors:
        return
    more = f"\n  ... and {len(errors) - _MAX_ERRORS} more" if len(errors) > _MAX_ERRORS else ""
    raise ValueError(
        f"{where}: {len(errors)} malformed row(s); each needs a string 'prompt' and either string "
        "'chosen'/'rejected' (different) or 'ranked' (a list of >= 2 different strings):\n  "
        + "\n  ".join(errors[:_MAX_ERRORS]) + more
    )


def comparisons_from_rows(rows: Iterable[Any], where: str = "rows", first: int = 0,
                          unit: str = "row") -> list[Comparison]:
    """Validate rows and return comparisons; every bad row is reported as ``{unit} N``."""
    out, errors = [], []
    for number, row in enumerate(rows, start=first):
        problems = row_errors(row)
        errors += [f"{unit} {number}: {p}" for p in problems]
        if not problems:
            out.append(comparison_from_row(row))
    _raise_if_errors(errors, where)
    return out


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def read_jsonl(path: str | os.PathLike) -> list[Comparison]:
    """Read a comparisons JSONL file; bad lines are reported with their 1-based line numbers.

    Blank lines are skipped; invalid JSON or an invalid row fails the whole load.
    """
    path = Path(path)
    rows: list[Any] = []
    numbers: list[int] = []
    errors: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line, parse_constant=_refuse_constant))
                numbers.append(number)
            except ValueError as exc:
                errors.append(f"line {number}: invalid JSON ({exc})")
    out = []
    for number, row in zip(numbers, rows):
        problems = row_errors(row)
        errors += [f"line {number}: {p}" for p in problems]
        if not problems:
            out.append(comparison_from_row(row))
    errors.sort(key=lambda e: int(e.split(":")[0].split()[1]))
    _raise_if_errors(errors, str(path))
    if not out:
        raise ValueError(f"{path}: no comparisons (the file is empty)")
    return out


def write_jsonl(path: str | os.PathLike, comparisons: Sequence[Comparison]) -> None:
    """Write comparisons as JSONL rows (atomic)."""
    from prefgym.utils.io import atomic_write_jsonl

    atomic_write_jsonl(path, [c.to_row() for c in comparisons])


def _hf_rows(dataset: Any, where: str) -> list[Comparison]:
    # HF rows have every column (None where a row lacks it): drop the Nones before validating.
    rows = [{k: v for k, v in row.items() if v is not None} for row in dataset]
    return comparisons_from_rows(rows, where=where, unit="row")


def load_comparisons(source: Any, split: str = "train") -> list[Comparison]:
    """Comparisons from a JSONL path, a ``save_to_disk`` folder, a HF dataset, or a list of rows.

    ``source`` may also be a dict of ``datasets.load_dataset`` arguments (e.g.
    ``{"path": "json", "data_files": "prefs.jsonl"}``). ``split`` picks the split of a
    ``DatasetDict``.

    Example:
        >>> load_comparisons([{"prompt": "p", "chosen": "a", "rejected": "b", "tie": True}])[0].tie
        True
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            import datasets

            return load_comparisons(datasets.load_from_disk(str(path)), split)
        if not path.exists():
            raise FileNotFoundError(f"no comparison data at {path}: pass a JSONL file or a save_to_disk folder")
        return read_jsonl(path)
    if isinstance(source, Mapping) and "path" in source:
        import datasets

        return load_comparisons(datasets.load_dataset(**dict(source)), split)
    if hasattr(source, "keys") and hasattr(source, "column_names") and isinstance(source.column_names, dict):
        if split not in source:
            raise ValueError(f"dataset has splits {sorted(source.keys())}, not {split!r}")
        return _hf_rows(source[split], f"split {split!r}")
    if hasattr(source, "column_names"):
        return _hf_rows(source, "dataset")
    if isinstance(source, (list, tuple)):
        return comparisons_from_rows(source)
    raise TypeError(f"cannot load comparisons from {type(source).__name__}: pass a JSONL path, a "
                    "save_to_disk folder, a HF Dataset/DatasetDict, load_dataset kwargs, or a list of rows")


def validation_split_of(source: Any) -> str | None:
    """The name of a validation split a ``DatasetDict`` (or folder) already has, else ``None``."""
    keys: list[str] = []
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        keys = [p.name for p in Path(source).iterdir() if p.is_dir()]
    elif hasattr(source, "keys") and hasattr(source, "column_names") and isinstance(source.column_names, dict):
        keys = list(source.keys())
    return next((k for k in VALIDATION_SPLITS if k in keys), None)


def _bucket(prompt: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{prompt}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_prompt(comparisons: Sequence[Comparison], validation_fraction: float = 0.1,
                    seed: int = 0) -> tuple[list[Comparison], list[Comparison]]:
    """(train, validation) with every prompt wholly on one side (no prompt leaks into both).

    Example:
        >>> rows = [Comparison(f"p{i}", ("a", "b")) for i in range(100)]
        >>> train, val = split_by_prompt(rows, 0.2)
        >>> len(train) + len(val), not ({c.prompt for c in train} & {c.prompt for c in val})
        (100, True)
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    train = [c for c in comparisons if _bucket(c.prompt, seed) >= validation_fraction]
    val = [c for c in comparisons if _bucket(c.prompt, seed) < validation_fraction]
    if not train or not val:
        raise ValueError(
            f"splitting {len(comparisons)} comparisons over {len({c.prompt for c in comparisons})} prompt(s) "
            f"at validation_fraction={validation_fraction} left one side empty; add prompts or pass a validation file"
        )
    return train, val


def load_splits(train: Any, validation: Any = None, validation_fraction: float = 0.1,
                seed: int = 0) -> tuple[list[Comparison], list[Comparison]]:
    """(train, validation) comparisons: a given validation source, the source's own validation
    split, or a split of the training data by prompt."""
    if validation is not None:
        return load_comparisons(train), load_comparisons(validation)
    own = validation_split_of(train)
    if own is not None:
        return load_comparisons(train, "train"), load_comparisons(train, own)
    return split_by_prompt(load_comparisons(train), validation_fraction, seed)


def noiseless_labels(comparisons: Sequence[Comparison]) -> list[int | None]:
    """Per pair: 1 if the noiseless scorer prefers the labelled-chosen completion, 0 if the
    rejected one, ``None`` when unknown (no gold scores, a K-wise row, or a gold tie)."""
    out: list[int | None] = []
    for c in comparisons:
        if c.gold is None or c.k != 2 or c.tie or c.gold[0] == c.gold[1]:
            out.append(None)
        else:
            out.append(int(c.gold[0] > c.gold[1]))
    return out
