"""Comparison datasets: pairs, ties, K-wise rows, HF datasets, splits, and bad input."""

from __future__ import annotations

import json

import pytest

from prefgym.reward.data import (
    Comparison,
    load_comparisons,
    load_splits,
    noiseless_labels,
    read_jsonl,
    split_by_prompt,
    write_jsonl,
)


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_pairs_ties_and_kwise_rows_roundtrip(tmp_path):
    rows = [
        {"prompt": "p", "chosen": "a", "rejected": "b", "annotator": "x", "score_chosen": 1.0, "score_rejected": 0.0},
        {"prompt": "q", "chosen": "c", "rejected": "d", "tie": True},
        {"prompt": "r", "ranked": ["e", "f", "g"], "scores": [3, 2, 1]},
    ]
    path = _write(tmp_path / "c.jsonl", [json.dumps(r) for r in rows])
    got = read_jsonl(path)
    assert [c.completions for c in got] == [("a", "b"), ("c", "d"), ("e", "f", "g")]
    assert [c.tie for c in got] == [False, True, False]
    assert got[0].gold == (1.0, 0.0) and got[0].annotator == "x" and got[2].gold == (3.0, 2.0, 1.0)
    write_jsonl(tmp_path / "again.jsonl", got)
    assert read_jsonl(tmp_path / "again.jsonl") == got


def test_malformed_lines_are_all_reported_with_line_numbers(tmp_path):
    lines = [
        json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}),   # 1 ok
        "{not json",                                                  # 2
        json.dumps({"prompt": "p", "chosen": "a"}),                   # 3 missing rejected
        "",                                                           # 4 blank: skipped
        json.dumps({"prompt": "p", "chosen": "same", "rejected": "same"}),  # 5
        json.dumps({"chosen": "a", "rejected": "b"}),                 # 6 missing prompt
        json.dumps({"prompt": "p", "ranked": ["a"]}),                 # 7 too short
        json.dumps({"prompt": "p", "chosen": "a", "rejected": "b", "margin": "big"}),  # 8
        json.dumps([1, 2]),                                           # 9 not an object
    ]
    with pytest.raises(ValueError) as err:
        read_jsonl(_write(tmp_path / "bad.jsonl", lines))
    message = str(err.value)
    assert "7 malformed" in message
    for number, words in [(2, "invalid JSON"), (3, "missing field 'rejected'"), (5, "chosen == rejected"),
                          (6, "missing field 'prompt'"), (7, "'ranked'"), (8, "'margin'"), (9, "JSON object")]:
        assert f"line {number}: " in message and words in message
    assert "line 1:" not in message and "line 4:" not in message


def test_ranked_rows_must_not_repeat_or_mix_shapes():
    with pytest.raises(ValueError, match="repeats a completion"):
        load_comparisons([{"prompt": "p", "ranked": ["a", "b", "a"]}])
    with pytest.raises(ValueError, match="not both"):
        load_comparisons([{"prompt": "p", "ranked": ["a", "b"], "chosen": "a"}])
    with pytest.raises(ValueError, match="only defined for pairs"):
        load_comparisons([{"prompt": "p", "ranked": ["a", "b", "c"], "tie": True}])


def test_hf_dataset_rows_and_own_validation_split(tmp_path):
    import datasets

    train = [{"prompt": f"p{i}", "chosen": "a", "rejected": "b"} for i in range(6)]
    val = [{"prompt": "v", "chosen": "x", "rejected": "y"}]
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(train),
                               "validation": datasets.Dataset.from_list(val)})
    dd.save_to_disk(str(tmp_path / "dd"))
    tr, va = load_splits(str(tmp_path / "dd"))
    assert len(tr) == 6 and [c.prompt for c in va] == ["v"]
    bad = datasets.Dataset.from_list([{"prompt": "p", "chosen": "a", "rejected": "a"}])
    with pytest.raises(ValueError, match="row 0: chosen == rejected"):
        load_comparisons(bad)


def test_load_dataset_kwargs_read_jsonl_through_datasets(tmp_path):
    path = _write(tmp_path / "c.jsonl", [json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"})] * 3)
    got = load_comparisons({"path": "json", "data_files": str(path), "split": "train"})
    assert len(got) == 3 and got[0].completions == ("a", "b")


def test_split_by_prompt_is_deterministic_and_disjoint():
    rows = [Comparison(f"p{i % 40}", ("a", "b")) for i in range(200)]
    train, val = split_by_prompt(rows, 0.25, seed=3)
    assert (train, val) == split_by_prompt(rows, 0.25, seed=3)
    assert not {c.prompt for c in train} & {c.prompt for c in val}
    assert 0.1 < len(val) / len(rows) < 0.45
    with pytest.raises(ValueError, match="empty"):
        split_by_prompt([Comparison("only", ("a", "b"))] * 5, 0.5)


def test_noiseless_labels_follow_gold_scores():
    rows = [Comparison("p", ("a", "b"), gold=(1.0, 0.0)), Comparison("p", ("a", "b"), gold=(0.0, 2.0)),
            Comparison("p", ("a", "b"), gold=(1.0, 1.0)), Comparison("p", ("a", "b"))]
    assert noiseless_labels(rows) == [1, 0, None, None]


def test_missing_file_and_empty_file_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no comparison data"):
        load_comparisons(tmp_path / "nope.jsonl")
    with pytest.raises(ValueError, match="empty"):
        read_jsonl(_write(tmp_path / "empty.jsonl", [""]))
