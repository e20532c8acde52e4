"""Torch thread count as a setting.

On a small shared CPU, torch with every core often runs slower than with one (threads
spin against each other and against the scorers' process pool). ``PREFGYM_NUM_THREADS``
sets the count; the default is 1, measured to be fastest on a loaded 2-core machine
(see benchmarks/threads.py).

Example:
    >>> from prefgym.utils.torch_threads import configure_threads
    >>> configure_threads(1)
    1
"""

from __future__ import annotations

import os

DEFAULT_NUM_THREADS = 1


def configure_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op thread count from the argument, ``PREFGYM_NUM_THREADS`` or the default."""
    import torch

    if num_threads is None:
        num_threads = int(os.environ.get("PREFGYM_NUM_THREADS", DEFAULT_NUM_THREADS))
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}; set PREFGYM_NUM_THREADS=1 or more")
    torch.set_num_threads(num_threads)
    return num_threads
