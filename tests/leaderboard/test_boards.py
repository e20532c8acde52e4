"""The repository's own boards: protocols pin the registered envs and the shipped base policies,
every filed entry passes the submission checks, and the generated tables are up to date.

This is the CI gate for ``leaderboards/``: the README's test command runs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from prefgym.leaderboard.board import entries, validate_board, verify
from prefgym.leaderboard.protocol import find_boards, load_protocol
from prefgym.leaderboard.render import render_board, render_index
from prefgym.leaderboard.runner import base_weights
from prefgym.leaderboard.weights import sha256_file

ROOT = Path(__file__).resolve().parents[2] / "leaderboards"
BOARDS = find_boards(ROOT)


def test_the_initial_boards_exist():
    assert {b.name for b in BOARDS} >= {"pep8", "sentiment", "phf-pep8"}


@pytest.mark.parametrize("board", BOARDS, ids=[b.name for b in BOARDS])
def test_protocol_pins_the_registered_env_and_the_shipped_base_policy(board):
    protocol = load_protocol(board)  # raises when env.spec differs from the registry
    path = base_weights(protocol)
    assert path.is_file(), f"{protocol.id}: base policy {protocol.base_policy} is not shipped ({path})"
    assert sha256_file(path) == protocol.base_sha256, (
        f"{protocol.id}: the shipped {protocol.base_policy} changed; its entries no longer apply. "
        "Bump the protocol version and re-evaluate the entries")


@pytest.mark.parametrize("board", BOARDS, ids=[b.name for b in BOARDS])
def test_every_submission_passes_the_checks(board):
    report = validate_board(board)
    assert len(report) == len(entries(board))
    refused = {name: problem for name, problem in report.items() if problem}
    assert not refused, "\n".join(refused.values())


@pytest.mark.parametrize("board", BOARDS, ids=[b.name for b in BOARDS])
def test_generated_tables_are_up_to_date(board):
    stale = render_board(board, check=True)
    assert not stale, f"{[str(p) for p in stale]} are stale: run `prefgym leaderboard render --all` and commit"


def test_board_index_is_up_to_date():
    assert not render_index(ROOT, check=True), "leaderboards/README.md is stale: run `prefgym leaderboard render --all`"


def test_random_entry_still_reproduces():
    """Canary (~10-30 s): the uniform policy has exact logits on every machine, so its re-run checks that
    the env, prompts, stop rules and scorer behave as when the entries were made. A failure means a
    released env changed in place: give it a new version (and the board a new protocol version)."""
    report = verify(ROOT / "pep8", "random")  # raises SubmissionError naming every metric that moved
    assert report["metrics"]["perplexity"] == pytest.approx(8192, rel=1e-3)


@pytest.mark.slow
def test_verify_a_genuine_entry_within_five_minutes():
    report = verify(ROOT / "pep8", "base-policy")
    assert report["wall_time_s"] < 300, report
