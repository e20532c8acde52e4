"""Leaderboards: fixed evaluation protocols, result files, submission checks, verification, tables.

A board is a folder ``leaderboards/<board>/`` holding ``protocol.yaml`` (what is evaluated
and how), ``submissions/<name>.json`` (result files, plain data), ``checkpoints/`` (the
submitted weights, safetensors only) and the generated ``README.md`` / ``index.html``.

* :mod:`~prefgym.leaderboard.protocol` — load and check a protocol.
* :mod:`~prefgym.leaderboard.schema` — the versioned result-file schema and its validation.
* :mod:`~prefgym.leaderboard.weights` — safetensors-only checkpoints, checksums, int8 deltas.
* :mod:`~prefgym.leaderboard.runner` — run a protocol on a checkpoint (the evaluation itself).
* :mod:`~prefgym.leaderboard.board` — ``submit``, ``validate``, ``verify`` on a board folder.
* :mod:`~prefgym.leaderboard.render` — markdown tables and the static HTML page.

Nothing in a submission is ever executed or unpickled: components are built only from the
board's own protocol, and weights are read with ``safetensors``.

Example:
    $ prefgym leaderboard list
    $ prefgym leaderboard validate --all
"""

from __future__ import annotations

from prefgym.leaderboard.errors import SubmissionError

__all__ = ["SubmissionError"]
