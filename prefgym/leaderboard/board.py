"""A board folder's operations: read entries, ``validate``, ``submit`` and ``verify`` them.

* :func:`validate_board` — the static checks (:func:`~prefgym.leaderboard.schema.validate_result`)
  on every filed entry; what CI runs.
* :func:`submit` — check a result file (and its checkpoint) and file both under the board,
  atomically, checkpoint first, so a crash never leaves an entry without its weights.
* :func:`verify` — re-run the protocol from the entry's method and checkpoint and refuse it
  when any metric is off by more than the protocol's tolerance.

Example:
    $ prefgym leaderboard submit result.json --board leaderboards/pep8
    $ prefgym leaderboard verify leaderboards/pep8 base-policy
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

from prefgym.leaderboard.errors import SubmissionError
from prefgym.leaderboard.protocol import Protocol, load_protocol
from prefgym.leaderboard.schema import checkpoint_file, check_name, validate_result

MAX_RESULT_BYTES = 2 * 2 ** 20


def read_result(path: str | Path) -> dict[str, Any]:
    """Parse a result file (plain JSON, at most 2 MiB); a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"no result file at {path}", where=str(path))
    if path.stat().st_size > MAX_RESULT_BYTES:
        raise SubmissionError(f"result file is over {MAX_RESULT_BYTES >> 20} MiB", where=str(path))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise SubmissionError(f"not a JSON result file: {err}", where=str(path)) from err
    if not isinstance(data, dict):
        raise SubmissionError("a result file must hold one JSON object", where=str(path))
    return data


def entries(board_dir: str | Path) -> list[Path]:
    """The filed entries of a board, sorted by name."""
    folder = Path(board_dir) / "submissions"
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def validate_board(board_dir: str | Path) -> dict[str, str | None]:
    """Check every filed entry; returns ``{file name: None or the refusal message}``.

    Example:
        >>> validate_board("leaderboards/pep8")  # doctest: +SKIP
        {'base-policy.json': None, 'random.json': None}
    """
    board_dir = Path(board_dir)
    protocol = load_protocol(board_dir)
    report: dict[str, str | None] = {}
    used: set[str] = set()
    for path in entries(board_dir):
        try:
            result = read_result(path)
            used.add(str(result.get("checkpoint", {}).get("path")))
            validate_result(result, protocol, board_dir, filename=path.name)
            report[path.name] = None
        except (SubmissionError, AttributeError) as err:
            report[path.name] = str(err)
    folder = board_dir / "checkpoints"
    for orphan in sorted(folder.iterdir()) if folder.is_dir() else []:
        if f"checkpoints/{orphan.name}" not in used:  # weights no entry vouches for: remove them
            report[f"checkpoints/{orphan.name}"] = f"{orphan} belongs to no entry; delete it"
    return report


def submit(result_path: str | Path, board_dir: str | Path, checkpoint: str | Path | None = None,
           replace: bool = False) -> Path:
    """Validate ``result_path`` (with its checkpoint) and file it as ``submissions/<name>.json``.

    ``checkpoint`` defaults to the result's ``checkpoint.path``, relative to the result file.
    An existing entry of the same name is refused unless ``replace``.
    """
    from prefgym.utils.io import atomic_write_bytes, atomic_write_json

    board_dir, result_path = Path(board_dir), Path(result_path)
    protocol = load_protocol(board_dir)
    result = read_result(result_path)
    reason = check_name(result.get("name"))
    if reason:
        raise SubmissionError(reason, where=str(result_path))
    validate_result(result, protocol)  # everything but the checkpoint file, before touching the board
    target = board_dir / "submissions" / f"{result['name']}.json"
    if target.exists() and not replace:
        raise SubmissionError(f"{protocol.board} already has an entry named {result['name']!r}; pick another "
                              "name or pass --replace", where=str(result_path))
    source = _source_checkpoint(result, result_path, checkpoint)
    if source is not None:
        result["checkpoint"]["path"] = f"checkpoints/{result['name']}.safetensors"
        staged = board_dir / "checkpoints" / f".{result['name']}.incoming.safetensors"
        staged.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, staged)
        try:
            _check_staged(result, protocol, board_dir, staged)
            atomic_write_bytes(board_dir / result["checkpoint"]["path"], staged.read_bytes())
        finally:
            staged.unlink(missing_ok=True)
    validate_result(result, protocol, board_dir, filename=target.name)
    atomic_write_json(target, result)
    return target


def _source_checkpoint(result: dict[str, Any], result_path: Path, checkpoint: str | Path | None) -> Path | None:
    if checkpoint is not None:
        return Path(checkpoint)
    rel = result.get("checkpoint", {}).get("path")
    return None if rel is None else (result_path.parent / rel)


def _check_staged(result: dict[str, Any], protocol: Protocol, board_dir: Path, staged: Path) -> None:
    """Run the checkpoint checks on the staged copy before it takes the entry's real file name."""
    probe = {**result, "checkpoint": {**result["checkpoint"], "path": f"checkpoints/{staged.name}"}}
    validate_result(probe, protocol, board_dir)


def compare_metrics(submitted: dict[str, float], rerun: dict[str, float], protocol: Protocol) -> list[str]:
    """Every metric that does not reproduce (or that the re-run does not produce), with values and tolerance.

    A metric the re-run has but the entry lacks is fine unless the protocol lists it: a newer
    prefgym may measure more than the code that wrote the entry.
    """
    problems = []
    for name in sorted(set(submitted) | set(protocol.metrics)):
        if name not in rerun:
            problems.append(f"metrics.{name} is not produced by the protocol (remove it)")
            continue
        if name not in submitted:
            problems.append(f"metrics.{name} is missing (the re-run gives {rerun[name]:.6g})")
            continue
        tol = protocol.metrics[name].tolerance if name in protocol.metrics else protocol.default_tolerance
        a, b = submitted[name], rerun[name]
        if not (math.isfinite(a) and tol.allows(a, b)):
            problems.append(f"metrics.{name} does not reproduce: submitted {a:.6g}, re-run gives {b:.6g} "
                            f"(tolerance abs {tol.abs:g} + rel {tol.rel:g})")
    return problems


def verify(board_dir: str | Path, name: str, record: bool = False) -> dict[str, Any]:
    """Re-run the protocol for entry ``name``; raise :class:`SubmissionError` unless every metric reproduces.

    Returns ``{"name", "wall_time_s", "max_abs_diff", "metrics"}``; with ``record`` the entry
    gets a ``verification`` block (code revision, time, deviations) written back.
    """
    from prefgym.leaderboard.runner import run_protocol

    board_dir = Path(board_dir)
    reason = check_name(name)
    if reason:
        raise SubmissionError(reason, where=str(board_dir))
    protocol = load_protocol(board_dir)
    path = board_dir / "submissions" / f"{name}.json"
    result = read_result(path)
    validate_result(result, protocol, board_dir, filename=path.name)
    start = time.perf_counter()
    rerun = run_protocol(protocol, result["method"], checkpoint_file(result, board_dir))
    wall = round(time.perf_counter() - start, 2)
    problems = compare_metrics(result["metrics"], rerun["metrics"], protocol)
    if problems:
        raise SubmissionError(problems, where=f"{protocol.board}/{name} (verify)")
    diffs = {k: abs(result["metrics"][k] - v) for k, v in rerun["metrics"].items() if k in result["metrics"]}
    report = {"name": name, "wall_time_s": wall, "max_abs_diff": max(diffs.values(), default=0.0),
              "metrics": rerun["metrics"]}
    if record:
        _record(path, result, report)
    return report


def _record(path: Path, result: dict[str, Any], report: dict[str, Any]) -> None:
    from prefgym.leaderboard.entry import provenance
    from prefgym.utils.io import atomic_write_json

    info = provenance()
    result["verification"] = {"verified_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "code_revision": info["code_revision"], "wall_time_s": report["wall_time_s"],
                              "max_abs_diff": report["max_abs_diff"]}
    atomic_write_json(path, result)
