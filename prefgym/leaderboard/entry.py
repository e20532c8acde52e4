"""Write a result file (``prefgym.result/v1``) for a board: the glue from a checkpoint to an entry.

Three sources of weights, all ending as a safetensors file beside the result:

* the base policy itself (``checkpoint.format: base``; no file, only its sha256);
* a ``prefgym train`` run directory: the latest checkpoint's ``policy.*`` tensors, stored as an
  int8 delta against the base policy; the training config and cost ride along as metadata;
* any safetensors state dict of the base architecture (e.g. a PHF-pretrained ``model.safetensors``).

Example:
    $ prefgym leaderboard evaluate leaderboards/pep8 --name base-policy --base
    $ prefgym leaderboard evaluate leaderboards/pep8 --name ppo --run-dir runs/pep8/ppo/x
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

from prefgym.leaderboard.errors import SubmissionError
from prefgym.leaderboard.protocol import Protocol
from prefgym.leaderboard.schema import SCHEMA, expected_eval, validate_result

PACKAGES = ("prefgym", "torch", "transformers", "gymnasium", "numpy", "tokenizers", "safetensors", "pycodestyle",
            "vaderSentiment")


def provenance() -> dict[str, Any]:
    """Code revision (git sha, dirty flag), package versions, python and platform."""
    import subprocess
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    revision: dict[str, Any] = {"git_sha": None, "git_dirty": None}
    root = Path(__file__).resolve().parents[2]
    try:
        run = dict(cwd=root, capture_output=True, text=True, timeout=10, check=True)
        revision["git_sha"] = subprocess.run(["git", "rev-parse", "HEAD"], **run).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "prefgym"], **run)
        revision["git_dirty"] = bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass  # an installed wheel: the versions still pin the code
    return {"code_revision": revision, "versions": versions, "python": platform.python_version(),
            "platform": platform.platform()}


def make_result(protocol: Protocol, name: str, method: dict[str, Any], checkpoint: Path | None,
                submitter: str = "anonymous", description: str = "",
                training: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the protocol on ``checkpoint`` (``None``: the base policy) and return the result object.

    ``checkpoint.path`` is written relative to the file's future folder: set it with
    :func:`write_result`, which keeps the checkpoint beside the result file.
    """
    from prefgym.leaderboard.runner import run_protocol
    from prefgym.leaderboard.weights import checkpoint_format, sha256_file

    method = {"name": method["name"], "n": int(method.get("n", 1)), "conditional": bool(method.get("conditional"))}
    evaluated = run_protocol(protocol, method, checkpoint)
    ckpt: dict[str, Any] = {"path": None, "sha256": protocol.base_sha256, "format": "base"}
    if checkpoint is not None:
        ckpt = {"path": checkpoint.name, "sha256": sha256_file(checkpoint),
                "format": checkpoint_format(checkpoint)["format"]}
    training = training or {}
    cost = {**evaluated["cost"], "train_env_steps": training.pop("env_steps", None),
            "train_wall_time_s": training.pop("wall_time_s", None), "train_device": training.pop("device", None)}
    result = {
        "schema": SCHEMA, "name": name, "board": protocol.board, "protocol_version": protocol.version,
        "submitter": submitter, "description": description,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "method": method, "checkpoint": ckpt,
        "base_policy": {"name": protocol.base_policy, "sha256": protocol.base_sha256},
        "env_spec": protocol.env_spec, "eval": expected_eval(protocol), "metrics": evaluated["metrics"],
        "cost": cost, "samples": evaluated["samples"], "training": training or None, "provenance": provenance(),
    }
    validate_result(result, protocol)
    return result


def write_result(result: dict[str, Any], out: str | Path) -> Path:
    """Write ``result`` to ``out`` (a ``.json`` path) atomically; returns the path."""
    from prefgym.utils.io import atomic_write_json

    out = Path(out)
    atomic_write_json(out, result)
    return out


def export_weights(state: dict[str, Any], protocol: Protocol, out: Path) -> Path:
    """Store a policy state dict for ``protocol`` as an int8 delta against its base policy."""
    from safetensors.torch import load_file

    from prefgym.leaderboard.runner import base_weights
    from prefgym.leaderboard.weights import write_delta

    base = load_file(str(base_weights(protocol)))
    write_delta(state, base, out, base_sha256=protocol.base_sha256)
    return out


def from_run_dir(run_dir: str | Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``(method, policy state dict, training metadata)`` of a ``prefgym train`` run's latest checkpoint.

    The agent config is recorded, never instantiated: the method follows from the agent's
    ``_target_`` name (best-of-n, random) and is plain sampling otherwise.
    """
    import yaml
    from safetensors.torch import load_file

    from prefgym.checkpoint import latest_checkpoint

    run_dir = Path(run_dir)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    latest = latest_checkpoint(run_dir / "checkpoints")
    if latest is None:
        raise SubmissionError(f"{run_dir} has no checkpoint (train it first, or pass --weights)", where=str(run_dir))
    tensors = load_file(str(latest / "weights.safetensors"))
    state = {k[len("policy."):]: v for k, v in tensors.items() if k.startswith("policy.")}
    agent = config.get("agent", {})
    target = str(agent.get("_target_", ""))
    method: dict[str, Any] = {"name": "sample"}
    if target.endswith("BestOfNAgent"):
        method = {"name": "best_of_n", "n": int(agent["config"]["n"])}
    elif target.endswith("RandomAgent"):
        method = {"name": "uniform"}
    step_state = json.loads((latest / "state.json").read_text())
    training = {"agent": target, "run_dir": str(run_dir), "step": step_state.get("step"), "config": config,
                "env_steps": step_state.get("env_steps"), "wall_time_s": step_state.get("elapsed_s"),
                "device": config.get("device")}
    return method, state, training


def check_decoding(config: dict[str, Any], protocol: Protocol) -> None:
    """Refuse a trained agent whose sampling settings differ from the board's decoding."""
    agent_cfg = (config.get("agent") or {}).get("config") or {}
    wrong = {k: agent_cfg[k] for k, v in protocol.decoding.items() if k in agent_cfg and float(agent_cfg[k]) != v}
    if wrong:
        raise SubmissionError(f"the agent samples with {wrong}, but {protocol.id} evaluates with "
                              f"{protocol.decoding}", where=protocol.id)
