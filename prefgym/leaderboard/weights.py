"""Submitted weights: safetensors only, checked by sha256, stored whole or as an int8 delta.

A leaderboard never loads a pickle (``.bin``/``.pt``/``.pkl``, or a ``torch.save`` zip
renamed to ``.safetensors``): :func:`sniff_safetensors` reads the 8-byte header length and
the JSON header before anything else touches the file, and refuses anything else.

Two layouts, named in the safetensors metadata (``format``):

* ``prefgym.full/v1`` — the policy's whole state dict (tied weights stored once);
* ``prefgym.delta-int8/v1`` — ``trained - base`` per tensor as int8 with a float32 scale per
  row (``<name>`` and ``<name>.scale``), plus ``base_sha256``. A tiny-code fine-tune is ~21 MB
  as fp32 and ~5 MB as a delta, small enough to keep in git. The entry *is* the dequantized
  model: its metrics are measured on ``base + delta``, so quantization never hides anything.

Example:
    >>> import tempfile, torch
    >>> base = torch.nn.Linear(3, 2); trained = torch.nn.Linear(3, 2)
    >>> path = tempfile.mkdtemp() + "/w.safetensors"
    >>> write_delta(trained.state_dict(), base.state_dict(), path, base_sha256="0" * 64)
    >>> _ = apply_weights(base, path, base_sha256="0" * 64)
    >>> bool(torch.allclose(base.weight, trained.weight, atol=0.01))
    True
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefgym.leaderboard.errors import SubmissionError

if TYPE_CHECKING:
    import torch

FULL = "prefgym.full/v1"
DELTA = "prefgym.delta-int8/v1"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz")
MAX_HEADER = 64 * 1024 * 1024


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sniff_safetensors(path: str | Path) -> dict[str, Any]:
    """Return the safetensors JSON header of ``path``, or refuse the file with the reason.

    Only the first bytes are read and parsed as JSON, so a hostile file cannot run code here.
    """
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise SubmissionError(f"checkpoint {path.name!r} is a {path.suffix} file: pickled checkpoints are never "
                              "loaded (they can run code). Convert it: safetensors.torch.save_file(state_dict, "
                              "'model.safetensors')", where=str(path))
    if path.suffix.lower() != ".safetensors":
        raise SubmissionError(f"checkpoint {path.name!r} must be a .safetensors file", where=str(path))
    if not path.is_file():
        raise SubmissionError(f"checkpoint file {path} does not exist", where=str(path))
    with open(path, "rb") as handle:
        head = handle.read(8)
        kind = _pickle_kind(head)
        if kind:
            raise SubmissionError(f"checkpoint {path.name!r} is {kind} renamed to .safetensors; pickled "
                                  "checkpoints are never loaded. Save it with safetensors.torch.save_file",
                                  where=str(path))
        size = path.stat().st_size
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
        if not 2 <= length <= min(MAX_HEADER, size - 8):
            raise SubmissionError(f"checkpoint {path.name!r} is not a safetensors file (bad header length)",
                                  where=str(path))
        try:
            header = json.loads(handle.read(length))
        except (UnicodeDecodeError, ValueError) as err:
            raise SubmissionError(f"checkpoint {path.name!r} has an unreadable safetensors header ({err})",
                                  where=str(path)) from err
    if not isinstance(header, dict):
        raise SubmissionError(f"checkpoint {path.name!r} is not a safetensors file", where=str(path))
    return header


def _pickle_kind(head: bytes) -> str | None:
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a pickle"
    if head[:4] == b"PK\x03\x04":
        return "a zip archive (torch.save format, pickle inside)"
    return None


def _metadata(fields: dict[str, str]) -> dict[str, str]:
    """One metadata key holding sorted JSON: safetensors writes its metadata map in hash order, so
    two keys would make the same weights give different bytes (and new blobs in git) per process."""
    return {"prefgym": json.dumps(fields, sort_keys=True)}


def checkpoint_format(path: str | Path) -> dict[str, str]:
    """The metadata of a checked safetensors file (``format``, ``base_sha256`` for deltas)."""
    meta = sniff_safetensors(path).get("__metadata__") or {}
    if "prefgym" in meta:
        try:
            meta = json.loads(meta["prefgym"])
        except ValueError as err:
            raise SubmissionError(f"checkpoint {Path(path).name!r} has unreadable metadata", where=str(path)) from err
        if not isinstance(meta, dict):
            raise SubmissionError(f"checkpoint {Path(path).name!r} has unreadable metadata", where=str(path))
    fmt = meta.get("format", FULL)
    if fmt not in (FULL, DELTA):
        raise SubmissionError(f"checkpoint {Path(path).name!r} has unknown format {fmt!r}; "
                              f"known: {FULL}, {DELTA}", where=str(path))
    return {**meta, "format": fmt}


def unique_tensors(state: dict[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
    """``state`` with tensors that share storage (tied embeddings) kept once, contiguous, on CPU."""
    seen: set[tuple[int, int]] = set()
    out = {}
    for name, tensor in state.items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if key in seen:
            continue
        seen.add(key)
        out[name] = tensor.detach().cpu().contiguous()
    return out


def write_full(state: dict[str, "torch.Tensor"], path: str | Path) -> None:
    """Save a whole state dict as ``prefgym.full/v1`` (atomically)."""
    from safetensors.torch import save

    from prefgym.utils.io import atomic_write_bytes

    tensors = {k: v.clone() for k, v in unique_tensors(state).items()}
    atomic_write_bytes(path, save(tensors, metadata=_metadata({"format": FULL})))


def write_delta(state: dict[str, "torch.Tensor"], base: dict[str, "torch.Tensor"], path: str | Path,
                base_sha256: str) -> None:
    """Save ``state - base`` as ``prefgym.delta-int8/v1`` (tensors that did not change are left out)."""
    import torch
    from safetensors.torch import save

    from prefgym.utils.io import atomic_write_bytes

    tensors: dict[str, torch.Tensor] = {}
    for name, value in unique_tensors(state).items():
        if name not in base:
            if _tied_copy(name, state, base):
                continue  # e.g. lm_head.weight saved beside the wte it is tied to
            raise SubmissionError(f"tensor {name!r} is not in the base policy: a delta needs the base's "
                                  "architecture", where=str(path))
        delta = (value.float() - base[name].float()).reshape(value.shape[0] if value.dim() else 1, -1)  # (R, C)
        if not bool(delta.any()):
            continue
        scale = (delta.abs().amax(dim=1) / 127.0).clamp(min=1e-12)  # (R,) one scale per row
        tensors[name] = torch.round(delta / scale[:, None]).to(torch.int8).reshape(value.shape).contiguous()
        tensors[name + ".scale"] = scale.contiguous()
    atomic_write_bytes(path, save(tensors, metadata=_metadata({"format": DELTA, "base_sha256": base_sha256})))


def _tied_copy(name: str, state: dict[str, "torch.Tensor"], base: dict[str, "torch.Tensor"]) -> bool:
    """Whether ``state[name]`` equals a tensor the base does store (a tied weight saved twice)."""
    import torch

    value = state[name]
    return any(other in base and state[other].shape == value.shape and torch.equal(state[other], value)
               for other in state if other != name)


def apply_weights(policy: "torch.nn.Module", path: str | Path, base_sha256: str) -> "torch.nn.Module":
    """Load a checked checkpoint into ``policy`` (which holds the base weights); returns ``policy``."""
    import torch
    from safetensors.torch import load_file

    meta = checkpoint_format(path)
    tensors = load_file(str(path))
    own = policy.state_dict()
    if meta["format"] == FULL:
        unknown = sorted(set(tensors) - set(own))
        missing = sorted(set(unique_tensors(own)) - set(tensors))
        if unknown or missing:
            raise SubmissionError(f"checkpoint does not fit the base policy: unknown tensors {unknown[:5]}, "
                                  f"missing {missing[:5]}", where=str(path))
        policy.load_state_dict(tensors, strict=False)
        return policy
    if meta.get("base_sha256") != base_sha256:
        raise SubmissionError(f"delta checkpoint was made against base {meta.get('base_sha256')!r}, but the board's "
                              f"base policy has sha256 {base_sha256!r}", where=str(path))
    with torch.no_grad():
        for name, q in tensors.items():
            if name.endswith(".scale"):
                continue
            if name not in own or name + ".scale" not in tensors:
                raise SubmissionError(f"delta tensor {name!r} does not fit the base policy", where=str(path))
            target = own[name]
            delta = q.float().reshape(target.shape[0] if target.dim() else 1, -1) * tensors[name + ".scale"][:, None]
            target.add_(delta.reshape(target.shape).to(target.dtype))
    return policy
