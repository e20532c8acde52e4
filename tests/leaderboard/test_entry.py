"""From a `prefgym train` run directory (or a safetensors file) to a filed, valid entry, via the CLI."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import yaml

from prefgym.leaderboard.board import validate_board, verify
from prefgym.leaderboard.cli import main
from prefgym.leaderboard.weights import DELTA, FULL, apply_weights, write_full

from .conftest import load_entry


def _fake_run(tmp_path, target: str, agent_config: dict):
    """A run folder as `prefgym train` leaves it: config.yaml and checkpoints/step-*/ (policy + value head)."""
    import torch

    from prefgym.checkpoint import save_checkpoint
    from prefgym.models import build_policy

    policy = build_policy("prefgym/toy-chars", n_layer=1, n_embd=32, n_head=2, n_positions=64, seed=0)
    with torch.no_grad():
        policy.lm_head.weight.mul_(1.5)  # tied with wte: the delta must carry it once
    head = torch.nn.Linear(32, 1)
    agent = SimpleNamespace(modules=lambda: {"policy": policy, "value_head": head}, optimizer=None,
                            extra_state=lambda: {})
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints", agent, step=3, extra={"env_steps": 96, "elapsed_s": 1.5})
    config = {"agent": {"_target_": target, "config": {"temperature": 1.0, **agent_config}}, "device": "cpu"}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    return run, policy


def test_run_dir_becomes_a_delta_entry_that_verifies(toy_board, tmp_path, capsys):
    run, trained = _fake_run(tmp_path, "agents.best_of_n.BestOfNAgent", {"n": 2})
    out = tmp_path / "out" / "bon.json"
    argv = ["--root", str(toy_board.parent), "evaluate", "toy", "--name", "bon", "--run-dir", str(run),
            "--out", str(out), "--submit"]
    assert main(argv) == 0, capsys.readouterr().err
    entry = load_entry(toy_board, "bon")
    assert entry["method"] == {"name": "best_of_n", "n": 2, "conditional": False}
    assert entry["checkpoint"]["format"] == DELTA and entry["checkpoint"]["path"] == "checkpoints/bon.safetensors"
    assert entry["training"]["agent"] == "agents.best_of_n.BestOfNAgent" and entry["cost"]["train_env_steps"] == 96
    assert validate_board(toy_board)["bon.json"] is None
    assert verify(toy_board, "bon")["max_abs_diff"] == 0.0


def test_delta_reconstructs_the_trained_policy(toy_board, tmp_path):
    from prefgym.models import load_policy

    run, trained = _fake_run(tmp_path, "agents.ppo.PPOAgent", {})
    out = tmp_path / "ppo.json"
    assert main(["--root", str(toy_board.parent), "evaluate", "toy", "--name", "ppo", "--run-dir", str(run),
                 "--out", str(out)]) == 0
    base_sha = json.loads(out.read_text())["base_policy"]["sha256"]
    rebuilt = apply_weights(load_policy(str(toy_board / "base")), out.with_suffix(".safetensors"), base_sha)
    for name, value in trained.state_dict().items():
        err = (rebuilt.state_dict()[name] - value).abs().max().item()
        assert err <= value.abs().max().item() / 100, name  # int8 with a scale per row


def test_agent_sampling_other_than_the_board_decoding_is_refused(toy_board, tmp_path, capsys):
    run, _ = _fake_run(tmp_path, "agents.ppo.PPOAgent", {"temperature": 0.7})
    assert main(["--root", str(toy_board.parent), "evaluate", "toy", "--name", "hot", "--run-dir", str(run),
                 "--out", str(tmp_path / "hot.json")]) == 1
    assert "evaluates with" in capsys.readouterr().err


def test_full_checkpoint_with_foreign_tensors_is_refused(toy_board, tmp_path):
    import torch

    from prefgym.leaderboard.errors import SubmissionError
    from prefgym.models import load_policy

    path = tmp_path / "foreign.safetensors"
    write_full({"not.a.gpt2.weight": torch.zeros(2)}, path)
    base = load_policy(str(toy_board / "base"))
    with pytest.raises(SubmissionError, match="does not fit the base policy"):
        apply_weights(base, path, "0" * 64)
    from prefgym.leaderboard.weights import checkpoint_format

    assert checkpoint_format(path)["format"] == FULL


def test_checkpoint_bytes_do_not_depend_on_the_process(tmp_path):
    """Same weights, same file: entries re-made in another process must not add new blobs to git."""
    import subprocess
    import sys

    code = ("import sys, torch; from prefgym.leaderboard.weights import write_delta; "
            "a = {'w': torch.ones(3, 2)}; b = {'w': torch.zeros(3, 2)}; write_delta(a, b, sys.argv[1], '0' * 64)")
    digests = set()
    for seed in ("1", "2", "3"):
        out = tmp_path / f"{seed}.safetensors"
        subprocess.run([sys.executable, "-c", code, str(out)], check=True, env={"PYTHONHASHSEED": seed})
        digests.add(out.read_bytes())
    assert len(digests) == 1
