"""A toy board built once per session: ToyTarget-v0, a tiny random-init base policy saved beside
the protocol, a genuine base-policy entry and a genuine fine-tuned (int8 delta) entry.

Tests copy the board into their own tmp folder before editing anything.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

import prefgym  # noqa: F401  (registers the env ids)

ENV_ID = "prefgym/ToyTarget-v0"


def write_protocol(board: Path, base_sha256: str, version: int = 1) -> None:
    from prefgym.leaderboard.protocol import spec_of

    def metric(direction: str, low: float, high: float) -> dict:
        return {"direction": direction, "range": [low, high], "tolerance": {"abs": 1e-6, "rel": 1e-6}}

    protocol = {
        "board": board.name, "version": version, "title": "Toy target", "description": "Say 'a' a lot.",
        "env": {"id": ENV_ID, "spec": spec_of(ENV_ID), "split": "eval", "batch_size": 4},
        "base_policy": {"name": "base", "sha256": base_sha256},
        "eval": {"num_samples": 8, "seed": 7, "heldout": {"kind": "prompts", "block_size": 8, "max_blocks": 2}},
        "decoding": {"temperature": 1.0, "top_k": 0, "top_p": 1.0},
        "methods": {"sample": {}, "best_of_n": {"max_n": 4}, "uniform": {}},
        "metrics": {"gold_score": metric("max", -1, 1), "kl_to_base": metric("min", -1, 1000),
                    "perplexity": metric("min", 1, 1e6), "distinct_1": metric("max", 0, 1),
                    "distinct_2": metric("max", 0, 1)},
        "ranking": {"primary": "gold_score", "constraint": "kl_to_base", "budget": 5.0},
        "max_checkpoint_mb": 1,
    }
    (board / "protocol.yaml").write_text(yaml.safe_dump(protocol, sort_keys=False))


def _build(root: Path) -> Path:
    import torch

    from prefgym.leaderboard.board import submit
    from prefgym.leaderboard.entry import export_weights, make_result, write_result
    from prefgym.leaderboard.protocol import load_protocol
    from prefgym.models import build_policy, save_policy
    from prefgym.tokenization import load_tokenizer

    board = root / "toy"
    board.mkdir(parents=True)
    model = build_policy("prefgym/toy-chars", n_layer=1, n_embd=32, n_head=2, n_positions=64, seed=0)
    sha = save_policy(model, load_tokenizer("prefgym/toy-chars"), board / "base")
    write_protocol(board, sha)
    protocol = load_protocol(board)
    staging = root / "staging"
    write_result(make_result(protocol, "base-policy", {"name": "sample"}, None), staging / "base-policy.json")
    submit(staging / "base-policy.json", board)
    tuned = build_policy("prefgym/toy-chars", n_layer=1, n_embd=32, n_head=2, n_positions=64, seed=0)
    with torch.no_grad():  # a "fine-tune": a nudge of the output embeddings towards 'a'
        noise = torch.randn(tuned.transformer.wte.weight.shape, generator=torch.Generator().manual_seed(0))
        tuned.transformer.wte.weight.add_(0.05 * noise)
    ckpt = export_weights(tuned.state_dict(), protocol, staging / "tuned.safetensors")
    write_result(make_result(protocol, "tuned", {"name": "sample"}, ckpt), staging / "tuned.json")
    submit(staging / "tuned.json", board)
    return board


@pytest.fixture(scope="session")
def toy_board_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("boards"))


@pytest.fixture
def toy_board(toy_board_source: Path, tmp_path: Path) -> Path:
    """A private copy of the toy board (with its two genuine entries)."""
    board = tmp_path / "toy"
    shutil.copytree(toy_board_source, board)
    return board


def load_entry(board: Path, name: str) -> dict:
    return json.loads((board / "submissions" / f"{name}.json").read_text())


def save_entry(board: Path, name: str, result: dict, target: str | None = None) -> Path:
    path = board / "submissions" / f"{target or name}.json"
    path.write_text(json.dumps(result))
    return path
