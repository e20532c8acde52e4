"""Board protocols: ``leaderboards/<board>/protocol.yaml`` pins everything an entry is scored by.

A protocol names the env (id and its full Gymnasium spec, the prompt split and batch size),
the base policy (name and sha256 of its weights), the sampling protocol (number of samples,
seed, decoding), the held-out perplexity text, the metrics with their direction, sane range
and reproduction tolerance, the inference methods an entry may use, and the ranking rule.
Any change to what is measured is a new ``version``; entries name the version they were
evaluated under and are refused under another.

Example:
    >>> from prefgym.leaderboard.protocol import Tolerance
    >>> Tolerance(abs=0.01, rel=0.0).allows(0.50, 0.505), Tolerance(abs=0.01).allows(0.5, 0.52)
    (True, False)
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

from prefgym.leaderboard.errors import SubmissionError

BOARD_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
METHODS = ("sample", "best_of_n", "uniform")
# Protocol metrics every board reports (DESIGN §7); a board may add more (e.g. score parts).
REQUIRED_METRICS = ("gold_score", "kl_to_base", "perplexity", "distinct_1", "distinct_2")


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """Reproduction tolerance: a re-run value ``b`` matches ``a`` when ``|a-b| <= abs + rel*|b|``."""

    abs: float = 0.0
    rel: float = 0.0

    def allows(self, submitted: float, rerun: float) -> bool:
        return abs(submitted - rerun) <= self.abs + self.rel * abs(rerun)


@dataclasses.dataclass(frozen=True)
class MetricRule:
    """One reported metric: which way is better, the range a sane value lies in, its tolerance."""

    name: str
    direction: str  # "max" or "min"
    low: float
    high: float
    tolerance: Tolerance
    label: str = ""

    def in_range(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclasses.dataclass(frozen=True)
class Protocol:
    """A parsed, checked ``protocol.yaml`` (see the module docstring and docs/leaderboards.md)."""

    board: str
    version: int
    title: str
    description: str
    env_id: str
    env_spec: dict[str, Any]
    split: str
    batch_size: int
    base_policy: str
    base_sha256: str
    num_samples: int
    seed: int
    decoding: dict[str, float]
    heldout: dict[str, Any]
    metrics: dict[str, MetricRule]
    methods: dict[str, dict[str, Any]]
    ranking: dict[str, Any]
    max_checkpoint_mb: float
    default_tolerance: Tolerance  # for metrics the protocol does not list (score parts, ...)
    root: Path  # the board folder (relative paths in the protocol resolve against it)

    @property
    def id(self) -> str:
        """``<board>@v<version>``, the string a result file carries."""
        return f"{self.board}@v{self.version}"


def load_protocol(board_dir: str | Path) -> Protocol:
    """Read and check ``board_dir/protocol.yaml``; a :class:`SubmissionError` lists every problem.

    Example:
        >>> p = load_protocol("leaderboards/pep8")  # doctest: +SKIP
        >>> p.id  # doctest: +SKIP
        'pep8@v1'
    """
    import yaml

    root = Path(board_dir)
    path = root / "protocol.yaml"
    if not path.is_file():
        raise SubmissionError(f"no protocol.yaml in {root} (a board folder holds protocol.yaml, submissions/)",
                              where=str(root))
    raw = yaml.safe_load(path.read_text()) or {}  # safe_load: a protocol is data too
    return parse_protocol(raw, root)


def parse_protocol(raw: dict[str, Any], root: Path) -> Protocol:
    """Build a :class:`Protocol` from the YAML mapping, checking names, numbers and the env spec."""
    problems: list[str] = []
    try:
        protocol = _build(raw, root)
    except (KeyError, TypeError, ValueError) as err:
        raise SubmissionError(f"protocol.yaml is malformed: {err!r} (see docs/leaderboards.md for the fields)",
                              where=f"{root}/protocol.yaml") from err
    if not BOARD_NAME.match(protocol.board):
        problems.append(f"board name {protocol.board!r} must match {BOARD_NAME.pattern}")
    if protocol.board != root.name:
        problems.append(f"board {protocol.board!r} must equal its folder name {root.name!r}")
    missing = [m for m in REQUIRED_METRICS if m not in protocol.metrics]
    if missing:
        problems.append(f"metrics {missing} are required on every board")
    unknown = sorted(set(protocol.methods) - set(METHODS))
    if unknown:
        problems.append(f"unknown inference methods {unknown}; known: {list(METHODS)}")
    if protocol.num_samples % protocol.batch_size:
        problems.append(f"eval.num_samples ({protocol.num_samples}) must be a multiple of env.batch_size "
                        f"({protocol.batch_size})")
    for key in ("primary", "constraint"):
        if protocol.ranking.get(key) not in protocol.metrics:
            problems.append(f"ranking.{key} must name one of the metrics, got {protocol.ranking.get(key)!r}")
    for name, bounds in dict(protocol.ranking.get("require") or {}).items():
        if not (isinstance(bounds, list) and len(bounds) == 2 and all(isinstance(b, (int, float)) for b in bounds)):
            problems.append(f"ranking.require.{name} must be [low, high], got {bounds!r}")
    problems += _check_env_spec(protocol)
    if problems:
        raise SubmissionError(problems, where=f"{root}/protocol.yaml")
    return protocol


def _build(raw: dict[str, Any], root: Path) -> Protocol:
    env, ev = raw["env"], raw["eval"]
    metrics = {}
    for name, rule in raw["metrics"].items():
        low, high = (float(v) for v in rule["range"])
        tol = rule.get("tolerance", {})
        metrics[name] = MetricRule(name, str(rule["direction"]), low, high,
                                   Tolerance(float(tol.get("abs", 0.0)), float(tol.get("rel", 0.0))),
                                   str(rule.get("label", name)))
        if metrics[name].direction not in ("max", "min") or not (math.isfinite(low) or math.isfinite(high)):
            raise ValueError(f"metric {name}: direction must be max/min and the range finite on one side")
    return Protocol(
        board=str(raw["board"]), version=int(raw["version"]), title=str(raw.get("title", raw["board"])),
        description=str(raw.get("description", "")).strip(), env_id=str(env["id"]), env_spec=dict(env["spec"]),
        split=str(env.get("split", "eval")), batch_size=int(env["batch_size"]),
        base_policy=str(raw["base_policy"]["name"]), base_sha256=str(raw["base_policy"]["sha256"]),
        num_samples=int(ev["num_samples"]), seed=int(ev["seed"]),
        decoding={k: float(v) for k, v in raw.get("decoding", {}).items()},
        heldout=dict(ev["heldout"]), metrics=metrics,
        methods={k: dict(v or {}) for k, v in raw["methods"].items()}, ranking=dict(raw["ranking"]),
        max_checkpoint_mb=float(raw.get("max_checkpoint_mb", 8)),
        default_tolerance=Tolerance(**{k: float(v) for k, v in raw.get("default_tolerance", {}).items()}),
        root=root,
    )


def _check_env_spec(protocol: Protocol) -> list[str]:
    """The pinned spec must name the id, use prefgym's own entry points, and equal the registered one.

    The registry check catches a released env that was edited in place (a new reward or prompt
    set must be a new env version, and then a new protocol version).
    """
    import json

    import gymnasium as gym

    import prefgym  # noqa: F401  (registers the built-in ids)

    spec, problems = protocol.env_spec, []
    if spec.get("id") != protocol.env_id:
        problems.append(f"env.spec.id {spec.get('id')!r} differs from env.id {protocol.env_id!r}")
    for key in ("entry_point", "vector_entry_point"):
        if not str(spec.get(key, "")).startswith("prefgym."):
            problems.append(f"env.spec.{key} must be one of prefgym's own entry points, got {spec.get(key)!r}")
    if protocol.env_id in gym.registry:
        registered = json.loads(gym.spec(protocol.env_id).to_json())
        if registered != spec:
            changed = sorted(k for k in set(registered) | set(spec) if registered.get(k) != spec.get(k))
            problems.append(f"env.spec differs from the registered {protocol.env_id} in {changed}: the env changed "
                            "since this protocol was written; register a new env version and bump the protocol")
    else:
        problems.append(f"env id {protocol.env_id!r} is not registered (import the package that registers it)")
    return problems


def spec_of(env_id: str) -> dict[str, Any]:
    """The registered spec of ``env_id`` as plain data (what ``protocol.yaml`` pins under ``env.spec``)."""
    import json

    import gymnasium as gym

    import prefgym  # noqa: F401

    return json.loads(gym.spec(env_id).to_json())


def find_boards(root: str | Path = "leaderboards") -> list[Path]:
    """Board folders under ``root`` (those holding a ``protocol.yaml``), sorted by name."""
    root = Path(root)
    return sorted(p.parent for p in root.glob("*/protocol.yaml")) if root.is_dir() else []
