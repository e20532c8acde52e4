"""Submit / validate / verify on the toy board: genuine entries pass, each kind of bad entry is refused
with a message that says what is wrong."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import yaml

from prefgym.leaderboard.board import submit, validate_board, verify
from prefgym.leaderboard.cli import main
from prefgym.leaderboard.errors import SubmissionError

from .conftest import load_entry, save_entry


def _refusal(board: Path, name: str) -> str:
    report = validate_board(board)
    assert report[f"{name}.json"] is not None, f"{name} was accepted: {report}"
    return report[f"{name}.json"]


def _staged(board: Path, tmp_path: Path, entry: str, **edits) -> Path:
    """A copy of ``entry`` (and its checkpoint) outside the board, edited, ready to submit."""
    result = load_entry(board, entry)
    result.update(edits)
    out = tmp_path / "incoming"
    out.mkdir(exist_ok=True)
    if result["checkpoint"]["path"]:
        shutil.copy(board / result["checkpoint"]["path"], out / f"{result['name']}.safetensors")
        result["checkpoint"]["path"] = f"{result['name']}.safetensors"
    path = out / "result.json"
    path.write_text(json.dumps(result))
    return path


def test_genuine_entries_validate_and_reproduce_exactly(toy_board):
    assert validate_board(toy_board) == {"base-policy.json": None, "tuned.json": None}
    report = verify(toy_board, "tuned", record=True)
    assert report["max_abs_diff"] == 0.0  # same machine, one thread, same seeds: bit for bit
    assert load_entry(toy_board, "tuned")["verification"]["max_abs_diff"] == 0.0
    assert validate_board(toy_board)["tuned.json"] is None  # the recorded block is part of the schema


def test_edited_metric_is_refused_by_verify(toy_board):
    result = load_entry(toy_board, "tuned")
    result["metrics"]["gold_score"] += 0.25  # still in range, so only a re-run can tell
    save_entry(toy_board, "tuned", result)
    assert validate_board(toy_board)["tuned.json"] is None
    with pytest.raises(SubmissionError, match=r"metrics\.gold_score does not reproduce: submitted .* re-run gives"):
        verify(toy_board, "tuned")


def test_checkpoint_not_matching_its_checksum_is_refused(toy_board):
    path = toy_board / "checkpoints" / "tuned.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight: the header still parses
    path.write_bytes(bytes(data))
    assert "does not match its checksum" in _refusal(toy_board, "tuned")
    with pytest.raises(SubmissionError, match="does not match its checksum"):
        verify(toy_board, "tuned")


@pytest.mark.parametrize("name", ["../../evil", "a/b", "..", "UPPER", "x" * 49, "index", ""])
def test_bad_names_are_refused_before_anything_is_written(toy_board, tmp_path, name):
    staged = _staged(toy_board, tmp_path, "base-policy", name=name)
    with pytest.raises(SubmissionError, match="name"):
        submit(staged, toy_board)
    assert sorted(p.name for p in (toy_board / "submissions").iterdir()) == ["base-policy.json", "tuned.json"]
    assert not (tmp_path / "evil.json").exists()


def test_checkpoint_path_traversal_is_refused(toy_board):
    result = load_entry(toy_board, "tuned")
    result["checkpoint"]["path"] = "../../tuned.safetensors"
    save_entry(toy_board, "tuned", result)
    assert "must be a relative path inside" in _refusal(toy_board, "tuned")


def test_orphan_checkpoints_and_unparsable_files_are_reported(toy_board):
    (toy_board / "checkpoints" / "stray.safetensors").write_bytes(b"x")
    (toy_board / "submissions" / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    report = validate_board(toy_board)
    assert "belongs to no entry" in report["checkpoints/stray.safetensors"]
    assert "not a JSON result file" in report["deep.json"]


def test_entry_file_must_be_named_after_the_entry(toy_board):
    save_entry(toy_board, "base-policy", load_entry(toy_board, "base-policy"), target="other")
    assert "must be named after the entry" in _refusal(toy_board, "other")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_metric_is_refused(toy_board, value):
    result = load_entry(toy_board, "tuned")
    result["metrics"]["kl_to_base"] = value
    save_entry(toy_board, "tuned", result)  # Python's json writes NaN/Infinity; the check must catch it
    assert "every number must be finite" in _refusal(toy_board, "tuned")


def test_out_of_range_and_missing_metrics_are_refused(toy_board):
    result = load_entry(toy_board, "tuned")
    result["metrics"]["distinct_1"] = 1.5
    del result["metrics"]["perplexity"]
    save_entry(toy_board, "tuned", result)
    message = _refusal(toy_board, "tuned")
    assert "outside the sane range" in message and "metrics.perplexity is missing" in message


def _pickle_bomb(marker: Path) -> bytes:
    class Bomb:  # unpickling it would create ``marker``
        def __reduce__(self):
            return (open, (str(marker), "w"))

    return pickle.dumps(Bomb(), protocol=4)


@pytest.mark.parametrize("filename", ["model.pt", "model.bin", "model.pkl", "disguised.safetensors"])
def test_pickle_checkpoints_are_refused_and_never_loaded(toy_board, tmp_path, filename):
    marker = tmp_path / "unpickled"
    staged = _staged(toy_board, tmp_path, "tuned")
    bomb = tmp_path / filename
    bomb.write_bytes(_pickle_bomb(marker))
    with pytest.raises(SubmissionError, match="pickle"):
        submit(staged, toy_board, checkpoint=bomb, replace=True)
    assert not marker.exists()
    assert not (toy_board / "checkpoints" / ".tuned.incoming.safetensors").exists()


def test_torch_save_zip_renamed_to_safetensors_is_refused(toy_board, tmp_path):
    import torch

    staged = _staged(toy_board, tmp_path, "tuned")
    fake = tmp_path / "fake.safetensors"
    torch.save({"w": torch.zeros(2)}, fake)
    with pytest.raises(SubmissionError, match="zip archive"):
        submit(staged, toy_board, checkpoint=fake, replace=True)


def test_entry_for_another_protocol_version_is_refused(toy_board):
    protocol = yaml.safe_load((toy_board / "protocol.yaml").read_text())
    protocol["version"] = 2
    (toy_board / "protocol.yaml").write_text(yaml.safe_dump(protocol, sort_keys=False))
    message = _refusal(toy_board, "base-policy")
    assert "evaluated under protocol version 1" in message and "is at version 2" in message


def test_changed_eval_settings_and_unknown_fields_are_refused(toy_board):
    result = load_entry(toy_board, "tuned")
    result["eval"]["num_samples"] = 4
    result["method"] = {"name": "best_of_n", "n": 64, "conditional": False}
    result["extra"] = 1
    save_entry(toy_board, "tuned", result)
    message = _refusal(toy_board, "tuned")
    assert "eval.num_samples is 4" in message and "method.n must be" in message and "unknown fields" in message


def test_submit_files_entry_and_checkpoint_and_refuses_duplicates(toy_board, tmp_path):
    staged = _staged(toy_board, tmp_path, "tuned", name="tuned-copy")
    filed = submit(staged, toy_board)
    assert filed.name == "tuned-copy.json" and (toy_board / "checkpoints" / "tuned-copy.safetensors").is_file()
    assert validate_board(toy_board)["tuned-copy.json"] is None
    with pytest.raises(SubmissionError, match="already has an entry"):
        submit(staged, toy_board)


def test_cli_exit_codes_and_messages(toy_board, capsys):
    root = str(toy_board.parent)
    assert main(["--root", root, "validate", "toy"]) == 0
    result = load_entry(toy_board, "tuned")
    result["metrics"]["gold_score"] = float("nan")
    save_entry(toy_board, "tuned", result)
    assert main(["--root", root, "validate", "toy"]) == 1
    assert "every number must be finite" in capsys.readouterr().out
    assert main(["--root", root, "verify", "toy", "../x"]) == 1
    assert "path separator" in capsys.readouterr().err


def test_verify_tolerates_metrics_added_by_newer_code_but_not_invented_ones(toy_board):
    result = load_entry(toy_board, "tuned")
    del result["metrics"]["distinct_3"]  # as if written before prefgym measured distinct-3
    save_entry(toy_board, "tuned", result)
    verify(toy_board, "tuned")
    result["metrics"]["made_up"] = 1.0
    save_entry(toy_board, "tuned", result)
    with pytest.raises(SubmissionError, match="metrics.made_up is not produced by the protocol"):
        verify(toy_board, "tuned")
