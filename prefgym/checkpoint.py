"""Atomic checkpoints of an agent: safetensors weights, optimizer, RNG state, step, extra state.

A checkpoint is a folder ``step-000042/`` holding ``weights.safetensors`` (every module of
``agent.modules()``, keys ``<module>.<param>``), ``optimizer.pt`` (loaded with
``weights_only=True``: tensors and numbers only, never pickled code) and ``state.json`` (step,
RNG states, the agent's ``extra_state()``, anything the trainer adds). It is written into a
hidden temporary folder and renamed into place, so a crash at any moment leaves either the
previous checkpoints or the new complete one — never a partial file under a real name.

Example:
    >>> import tempfile, torch
    >>> from types import SimpleNamespace
    >>> net = torch.nn.Linear(2, 1)
    >>> agent = SimpleNamespace(modules=lambda: {"net": net}, optimizer=None,
    ...                         extra_state=lambda: {}, load_extra_state=lambda s: None)
    >>> root = tempfile.mkdtemp()
    >>> path = save_checkpoint(root, agent, step=3)
    >>> latest_checkpoint(root).name, load_checkpoint(path, agent)["step"]
    ('step-000003', 3)
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

WEIGHTS = "weights.safetensors"
OPTIMIZER = "optimizer.pt"
STATE = "state.json"
PREFIX = "step-"


def rng_state() -> dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) RNG states as JSON-able data."""
    import torch

    np_state = np.random.get_state(legacy=False)
    state = {
        "python": _to_json(random.getstate()),
        "numpy": {"bit_generator": np_state["bit_generator"], "key": np_state["state"]["key"].tolist(),
                  "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                  "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    import torch

    random.setstate(_to_tuple(state["python"]))
    np_state = state["numpy"]
    np.random.set_state({"bit_generator": np_state["bit_generator"],
                         "state": {"key": np.asarray(np_state["key"], dtype=np.uint32), "pos": np_state["pos"]},
                         "has_gauss": np_state["has_gauss"], "gauss": np_state["gauss"]})
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def _to_json(value: Any) -> Any:
    return [_to_json(v) for v in value] if isinstance(value, (tuple, list)) else value


def _to_tuple(value: Any) -> Any:
    return tuple(_to_tuple(v) for v in value) if isinstance(value, list) else value


def module_tensors(agent: Any) -> dict[str, Any]:
    """All parameters and buffers of ``agent.modules()``, keyed ``<module>.<name>``, contiguous, on CPU."""
    tensors = {}
    for prefix, module in agent.modules().items():
        for name, tensor in module.state_dict().items():
            tensors[f"{prefix}.{name}"] = tensor.detach().cpu().contiguous()
    return tensors


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(root: str | os.PathLike, agent: Any, step: int, extra: dict[str, Any] | None = None,
                    keep: int = 2) -> Path:
    """Write ``root/step-<step>/`` atomically and keep only the newest ``keep`` checkpoints."""
    import torch
    from safetensors.torch import save_file

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{PREFIX}{step:06d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=root))
    try:
        # Tied weights (GPT-2's lm_head = wte) share storage; safetensors refuses shared tensors.
        save_file({k: v.clone() for k, v in module_tensors(agent).items()}, tmp / WEIGHTS)
        if getattr(agent, "optimizer", None) is not None:
            torch.save(agent.optimizer.state_dict(), tmp / OPTIMIZER)
        state = {"step": int(step), "rng": rng_state(), "agent": agent.extra_state(), **(extra or {})}
        (tmp / STATE).write_text(json.dumps(state, allow_nan=False))
        for path in tmp.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        if final.exists():  # re-saving a step (e.g. after a resume): replace it whole
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(root: str | os.PathLike) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first (temporary folders of a crashed save are ignored)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and (p / STATE).is_file()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def latest_checkpoint(root: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint under ``root``, or ``None``."""
    found = list_checkpoints(root)
    return found[-1] if found else None


def remove_partial(root: str | os.PathLike) -> list[Path]:
    """Delete temporary folders a killed save left behind; return what was removed."""
    root = Path(root)
    removed = [p for p in root.glob(f".{PREFIX}*.tmp")] if root.is_dir() else []
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def load_checkpoint(path: str | os.PathLike, agent: Any, restore_rng: bool = True) -> dict[str, Any]:
    """Load weights, optimizer, extra state (and RNG) into ``agent``; return the ``state.json`` dict."""
    import torch
    from safetensors.torch import load_file

    path = Path(path)
    if not (path / STATE).is_file():
        raise FileNotFoundError(f"{path} is not a complete prefgym checkpoint (no {STATE})")
    tensors = load_file(path / WEIGHTS)
    for prefix, module in agent.modules().items():
        own = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
        missing, unexpected = module.load_state_dict(own, strict=False)
        if unexpected or [m for m in missing if m not in _tied_names(module)]:
            raise ValueError(f"checkpoint {path} does not match module {prefix!r}: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]} (was it saved by a different agent or policy?)")
    if getattr(agent, "optimizer", None) is not None and (path / OPTIMIZER).is_file():
        agent.optimizer.load_state_dict(torch.load(path / OPTIMIZER, weights_only=True))
    state = json.loads((path / STATE).read_text())
    agent.load_extra_state(state.get("agent", {}))
    if restore_rng:
        set_rng_state(state["rng"])
    return state


def _tied_names(module: Any) -> set[str]:
    keys = getattr(module, "_tied_weights_keys", None) or []
    return set(keys if isinstance(keys, (list, tuple, set)) else keys.keys())


def save_agent(agent: Any, path: str | os.PathLike) -> Path:
    """``agent.save(path)``: one checkpoint folder at exactly ``path`` (written atomically)."""
    path = Path(path)
    saved = save_checkpoint(path.parent / f".{path.name}.build", agent, step=0, keep=1)
    if path.exists():
        shutil.rmtree(path)
    os.replace(saved, path)
    shutil.rmtree(saved.parent, ignore_errors=True)
    return path


def load_agent(agent: Any, path: str | os.PathLike) -> dict[str, Any]:
    """``agent.load(path)``: weights, optimizer and extra state from a checkpoint folder (RNG untouched)."""
    return load_checkpoint(path, agent, restore_rng=False)
