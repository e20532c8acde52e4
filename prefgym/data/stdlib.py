"""The Python standard library's own source: a code corpus every machine with Python has.

Files are found via ``sysconfig``, sorted, and split into train / held-out by a hash of
their relative path, so the split is the same on every machine with the same Python.

Example:
    >>> from prefgym.data.stdlib import stdlib_source_files
    >>> files = stdlib_source_files("train")
    >>> len(files) > 100 and all(p.suffix == ".py" for p in files)
    True
"""

from __future__ import annotations

import functools
import hashlib
import sysconfig
from pathlib import Path

# Test suites, vendored/third-party trees and GUI demo code are excluded: they are not the
# kind of code a base policy should imitate, and tests are huge and repetitive.
EXCLUDED_DIRS = frozenset(
    {"test", "tests", "site-packages", "idlelib", "turtledemo", "lib2to3", "__pycache__",
     "ensurepip", "config-3", "tkinter", "pydoc_data", "encodings"}
)
HELDOUT_FRACTION = 0.1
SPLITS = ("train", "heldout")


def stdlib_dir() -> Path:
    """The directory of the running interpreter's standard library."""
    return Path(sysconfig.get_paths()["stdlib"])


def split_of(relative_path: str, heldout_fraction: float = HELDOUT_FRACTION) -> str:
    """``"heldout"`` or ``"train"``, decided by a stable hash of the file's relative path."""
    digest = hashlib.sha256(relative_path.encode("utf-8")).digest()
    return "heldout" if int.from_bytes(digest[:4], "big") / 2**32 < heldout_fraction else "train"


@functools.lru_cache(maxsize=4)
def _all_files(root: str) -> tuple[Path, ...]:
    base = Path(root)
    files = []
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(base).parts
        if any(part in EXCLUDED_DIRS or part.startswith("config-") for part in rel[:-1]):
            continue
        if rel[-1].startswith("test_"):
            continue
        files.append(path)
    return tuple(files)


def stdlib_source_files(split: str | None = None) -> list[Path]:
    """Sorted stdlib ``.py`` files, all of them (``split=None``) or one split (``train``/``heldout``)."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS} or None for all files")
    root = stdlib_dir()
    files = _all_files(str(root))
    if not files:
        raise FileNotFoundError(
            f"no Python source found under {root}; prefgym needs the standard library's .py files "
            "(some minimal Python installs ship only .pyc — install the full python3 package)"
        )
    if split is None:
        return list(files)
    return [p for p in files if split_of(p.relative_to(root).as_posix()) == split]
