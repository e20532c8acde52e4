"""Prompt specs: lists, split dicts, JSONL files, HF datasets, and the built-in offline sets."""

from __future__ import annotations

import json

import pytest

from prefgym.data.prompts import (arithmetic_prompts, load_prompts, pii_prompts, prose_prompts,
                                  stdlib_function_prompts)


def test_list_and_dict_specs():
    assert load_prompts(["a", "b"]) == {"train": ["a", "b"], "eval": ["a", "b"]}
    assert load_prompts({"train": ["a"], "eval": ["b"]})["eval"] == ["b"]
    assert load_prompts({"train": ["a"]})["eval"] == ["a"]


def test_jsonl_with_splits(tmp_path):
    path = tmp_path / "p.jsonl"
    rows = [{"prompt": "x", "split": "train"}, {"prompt": "y", "split": "eval"}, {"prompt": "z"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert load_prompts(str(path)) == {"train": ["x", "z"], "eval": ["y"]}


def test_malformed_jsonl_reports_the_line_number(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "x"}\n{"text": "no prompt field"}\n')
    with pytest.raises(ValueError, match=r"p.jsonl:2: .*'prompt'"):
        load_prompts(str(path))


def test_hf_datasets_split(tmp_path):
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train.write_text('{"question": "q1"}\n{"question": "q2"}\n')
    test.write_text('{"question": "q3"}\n')
    spec = {"_target_": "prefgym.data.prompts.hf_dataset", "path": "json", "column": "question",
            "data_files": {"train": str(train), "test": str(test)}}
    assert load_prompts(spec) == {"train": ["q1", "q2"], "eval": ["q3"]}
    with pytest.raises(KeyError, match="no column 'prompt'"):
        load_prompts({**spec, "column": "prompt"})


def test_bad_specs_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        load_prompts([])
    with pytest.raises(ValueError, match="'train' split"):
        load_prompts({"test": ["a"]})
    with pytest.raises(TypeError, match="strings"):
        load_prompts([1, 2])
    with pytest.raises(FileNotFoundError):
        load_prompts(str(tmp_path / "missing.jsonl"))


def test_stdlib_signatures_are_split_by_file_and_disjoint():
    splits = stdlib_function_prompts()
    assert len(splits["train"]) > 500 and len(splits["eval"]) > 50
    assert all(p.startswith("def ") and p.endswith(":\n") for p in splits["train"][:50])
    assert stdlib_function_prompts() == splits  # deterministic


def test_other_builtin_sets_are_deterministic_and_disjoint():
    for splits in (prose_prompts(), pii_prompts(), arithmetic_prompts()):
        assert splits["train"] and splits["eval"]
    arith = arithmetic_prompts(n_train=50, n_eval=10)
    assert not set(arith["train"]) & set(arith["eval"])
    assert arith == arithmetic_prompts(n_train=50, n_eval=10)
    with pytest.raises(ValueError, match="ops"):
        arithmetic_prompts(ops="/")
