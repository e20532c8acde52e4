"""The result file (``prefgym.result/v1``) and every static check a submission must pass.

A result file is one JSON object; ``docs/leaderboards.md`` describes each field. The checks
here need no model run: schema and types, the entry name, the protocol match (board, protocol
version, env spec, eval settings, base policy, inference method), finite metrics inside the
protocol's ranges, and the checkpoint (safetensors, inside the board, size, sha256).
:func:`validate_result` collects *every* problem before raising, so one run tells a submitter
all that must change. Whether the numbers are true is :func:`prefgym.leaderboard.board.verify`'s job.

Example:
    >>> check_name("ppo-seed0"), check_name("../../etc/passwd") is not None
    (None, True)
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from prefgym.leaderboard.errors import SubmissionError
from prefgym.leaderboard.protocol import Protocol
from prefgym.leaderboard.weights import DELTA, FULL, checkpoint_format, sha256_file

SCHEMA = "prefgym.result/v1"
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
RESERVED = {"index", "readme", "protocol", "con", "nul", "aux", "prn"}
MAX_SAMPLES = 8
# field -> type(s); nested objects are checked by their own functions below.
TOP_LEVEL: dict[str, type | tuple[type, ...]] = {
    "schema": str, "name": str, "board": str, "protocol_version": int, "submitter": str, "created": str,
    "method": dict, "checkpoint": dict, "base_policy": dict, "env_spec": dict, "eval": dict, "metrics": dict,
    "cost": dict, "samples": list, "provenance": dict,
}
OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "description": str, "training": (dict, type(None)), "verification": (dict, type(None)),
}


def check_name(name: Any) -> str | None:
    """``None`` when ``name`` is a valid entry name, else the reason (names become file names)."""
    if not isinstance(name, str):
        return f"name must be a string, got {type(name).__name__}"
    if "/" in name or "\\" in name or ".." in name or "\x00" in name:
        return f"name {name!r} contains a path separator or '..': names become file names under submissions/"
    if not NAME.match(name) or name.lower() in RESERVED:
        return (f"name {name!r} must be 1-48 characters of lowercase letters, digits, '-' or '_', starting with a "
                "letter or digit (e.g. 'ppo-tiny-code-seed0'), and not a reserved name")
    return None


def _types(result: dict[str, Any]) -> list[str]:
    problems = []
    for key, kind in TOP_LEVEL.items():
        if key not in result:
            problems.append(f"missing field {key!r}")
        elif not isinstance(result[key], kind) or (kind is int and isinstance(result[key], bool)):
            expected = getattr(kind, "__name__", kind)
            problems.append(f"field {key!r} must be {expected}, got {type(result[key]).__name__}")
    for key, kind in OPTIONAL.items():
        if key in result and not isinstance(result[key], kind):
            problems.append(f"field {key!r} has the wrong type ({type(result[key]).__name__})")
    return problems


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers(node: Any, where: str) -> list[str]:
    """Every number anywhere under ``node`` must be finite (JSON has no NaN; Python's json writes it anyway)."""
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _numbers(v, f"{where}.{k}")]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _numbers(v, f"{where}[{i}]")]
    if isinstance(node, float) and not math.isfinite(node):
        return [f"{where} is {node}: every number must be finite"]
    return []


def _metrics(result: dict[str, Any], protocol: Protocol) -> list[str]:
    problems, metrics = [], result.get("metrics", {})
    for key, value in metrics.items():
        if not _is_number(value):
            problems.append(f"metrics.{key} must be a number, got {value!r}")
    for name, rule in protocol.metrics.items():
        value = metrics.get(name)
        if value is None:
            problems.append(f"metrics.{name} is missing (the {protocol.id} protocol reports it)")
        elif _is_number(value) and math.isfinite(value) and not rule.in_range(value):
            problems.append(f"metrics.{name} = {value} is outside the sane range [{rule.low}, {rule.high}]")
    return problems


def _protocol_match(result: dict[str, Any], protocol: Protocol) -> list[str]:
    problems = []
    if result.get("board") != protocol.board:
        problems.append(f"entry is for board {result.get('board')!r}, not {protocol.board!r}")
    version = result.get("protocol_version")
    if version != protocol.version:
        problems.append(f"entry was evaluated under protocol version {version!r}, but board {protocol.board!r} "
                        f"is at version {protocol.version}: re-evaluate it under {protocol.id} "
                        f"(prefgym leaderboard evaluate {protocol.board} ...)")
    if result.get("env_spec") != protocol.env_spec:
        problems.append(f"env_spec differs from the spec pinned by {protocol.id}")
    expected = expected_eval(protocol)
    got = result.get("eval", {})
    for key, value in expected.items():
        if got.get(key) != value:
            problems.append(f"eval.{key} is {got.get(key)!r}; {protocol.id} requires {value!r}")
    base = result.get("base_policy", {})
    if base.get("sha256") != protocol.base_sha256 or base.get("name") != protocol.base_policy:
        problems.append(f"base_policy {base} is not the board's ({protocol.base_policy}, sha256 "
                        f"{protocol.base_sha256[:12]}...)")
    return problems + _method(result.get("method", {}), protocol)


def expected_eval(protocol: Protocol) -> dict[str, Any]:
    """The ``eval`` object every entry of ``protocol`` must carry, exactly."""
    return {"num_samples": protocol.num_samples, "seed": protocol.seed, "batch_size": protocol.batch_size,
            "split": protocol.split, "decoding": dict(protocol.decoding), "heldout": dict(protocol.heldout)}


def _method(method: dict[str, Any], protocol: Protocol) -> list[str]:
    name = method.get("name")
    if name not in protocol.methods:
        return [f"method {name!r} is not allowed on {protocol.id}; allowed: {sorted(protocol.methods)}"]
    problems, rules = [], protocol.methods[name]
    n = method.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= int(rules.get("max_n", 1)):
        problems.append(f"method.n must be an integer in [1, {rules.get('max_n', 1)}] for {name}, got {n!r}")
    conditional = method.get("conditional", False)
    if not isinstance(conditional, bool) or (conditional and not rules.get("conditional", False)):
        problems.append(f"method.conditional={conditional!r} is not allowed for {name} on {protocol.id}")
    unknown = sorted(set(method) - {"name", "n", "conditional"})
    if unknown:
        problems.append(f"method has unknown keys {unknown}")
    return problems


def checkpoint_file(result: dict[str, Any], board_dir: Path) -> Path | None:
    """The checkpoint path of a filed entry, resolved inside ``board_dir/checkpoints`` (or refused)."""
    rel = result.get("checkpoint", {}).get("path")
    if rel is None:
        return None
    if not isinstance(rel, str) or rel.startswith(("/", "\\")) or ".." in Path(rel).parts or "\\" in rel:
        raise SubmissionError(f"checkpoint.path {rel!r} must be a relative path inside the board's checkpoints/",
                              where=str(board_dir))
    root = (board_dir / "checkpoints").resolve()
    path = (board_dir / rel).resolve()
    if path.parent != root:
        raise SubmissionError(f"checkpoint.path {rel!r} must point into {board_dir.name}/checkpoints/",
                              where=str(board_dir))
    return path


def _checkpoint(result: dict[str, Any], protocol: Protocol, board_dir: Path) -> list[str]:
    ckpt = result.get("checkpoint", {})
    sha = ckpt.get("sha256")
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
        return [f"checkpoint.sha256 must be 64 lowercase hex digits, got {sha!r}"]
    try:
        path = checkpoint_file(result, board_dir)
    except SubmissionError as err:
        return err.problems
    if path is None:  # the entry evaluates the base policy itself
        if ckpt.get("format") != "base" or sha != protocol.base_sha256:
            return ["an entry without checkpoint.path evaluates the base policy: checkpoint.format must be 'base' "
                    "and checkpoint.sha256 the base policy's"]
        return []
    if not path.is_file():
        return [f"checkpoint file {ckpt['path']!r} is missing from {board_dir.name}/ (submit it with --checkpoint)"]
    try:
        meta = checkpoint_format(path)
    except SubmissionError as err:
        return err.problems
    problems = []
    size_mb = path.stat().st_size / 2 ** 20
    if size_mb > protocol.max_checkpoint_mb:
        problems.append(f"checkpoint is {size_mb:.1f} MB, over the board's {protocol.max_checkpoint_mb} MB: "
                        "store it as an int8 delta (prefgym leaderboard evaluate writes one)")
    actual = sha256_file(path)
    if actual != sha:
        problems.append(f"checkpoint {ckpt['path']!r} does not match its checksum: sha256 is {actual}, "
                        f"the entry says {sha}")
    if ckpt.get("format") != meta["format"] or meta["format"] not in (FULL, DELTA):
        problems.append(f"checkpoint.format {ckpt.get('format')!r} differs from the file's {meta['format']!r}")
    return problems


def validate_result(result: Any, protocol: Protocol, board_dir: str | Path | None = None,
                    filename: str | None = None) -> None:
    """Raise :class:`SubmissionError` with every problem of ``result`` under ``protocol``; else return.

    ``board_dir`` enables the checkpoint checks (file inside the board, sha256, size);
    ``filename`` (a filed entry's file name) must be ``<name>.json``.
    """
    where = filename or (result.get("name") if isinstance(result, dict) else None) or "submission"
    if not isinstance(result, dict):
        raise SubmissionError("a result file must hold one JSON object", where=str(where))
    if result.get("schema") != SCHEMA:
        raise SubmissionError(f"schema is {result.get('schema')!r}; this prefgym reads {SCHEMA!r} "
                              "(write the file with `prefgym leaderboard evaluate`)", where=str(where))
    problems = _types(result)
    reason = check_name(result.get("name"))
    problems += [reason] if reason else []
    if filename is not None and not reason and filename != f"{result['name']}.json":
        problems.append(f"file {filename!r} must be named after the entry: {result['name']}.json")
    problems += _numbers(result, "result")
    if not problems:  # the deeper checks assume the right types
        problems += _protocol_match(result, protocol) + _metrics(result, protocol)
        if len(result["samples"]) > MAX_SAMPLES or not all(
                isinstance(s, dict) and all(isinstance(v, str) for v in s.values()) for s in result["samples"]):
            problems.append(f"samples must be at most {MAX_SAMPLES} objects of strings")
        if board_dir is not None:
            problems += _checkpoint(result, protocol, Path(board_dir))
    unknown = sorted(set(result) - set(TOP_LEVEL) - set(OPTIONAL))
    if unknown:
        problems.append(f"unknown fields {unknown} (schema {SCHEMA} has no such fields)")
    if problems:
        raise SubmissionError(problems, where=str(where))
