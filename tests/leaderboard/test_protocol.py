"""Protocol loading: a protocol that no longer matches the registered env, or is malformed, is refused."""

from __future__ import annotations

import pytest
import yaml

from prefgym.leaderboard.errors import SubmissionError
from prefgym.leaderboard.protocol import Tolerance, load_protocol


def _edit(folder, **changes):
    raw = yaml.safe_load((folder / "protocol.yaml").read_text())
    for dotted, value in changes.items():
        node, *path, last = [raw, *dotted.split("__")]
        for key in path:
            node = node[key]
        node[last] = value
    (folder / "protocol.yaml").write_text(yaml.safe_dump(raw))


def test_tolerance_is_absolute_plus_relative():
    tol = Tolerance(abs=0.1, rel=0.01)
    assert tol.allows(10.0, 10.2) and not tol.allows(10.0, 10.3)


def test_toy_protocol_loads(toy_board):
    protocol = load_protocol(toy_board)
    assert protocol.id == "toy@v1" and protocol.metrics["kl_to_base"].direction == "min"


def test_env_edited_in_place_is_detected(toy_board):
    _edit(toy_board, env__spec__kwargs__max_new_tokens=9)
    with pytest.raises(SubmissionError, match="differs from the registered prefgym/ToyTarget-v0 in \\['kwargs'\\]"):
        load_protocol(toy_board)


def test_foreign_entry_point_is_refused(toy_board):
    _edit(toy_board, env__spec__entry_point="os:system")
    with pytest.raises(SubmissionError, match="must be one of prefgym's own entry points"):
        load_protocol(toy_board)


@pytest.mark.parametrize(("edit", "message"), [
    ({"board": "other"}, "must equal its folder name"),
    ({"methods": {"beam": {}}}, "unknown inference methods"),
    ({"eval__num_samples": 6}, "must be a multiple of env.batch_size"),
    ({"ranking__primary": "nope"}, "ranking.primary must name one of the metrics"),
    ({"metrics__gold_score__direction": "up"}, "malformed"),
])
def test_malformed_protocols_are_refused(toy_board, edit, message):
    _edit(toy_board, **edit)
    with pytest.raises(SubmissionError, match=message):
        load_protocol(toy_board)


def test_missing_protocol_is_a_clear_error(tmp_path):
    with pytest.raises(SubmissionError, match="no protocol.yaml"):
        load_protocol(tmp_path)
