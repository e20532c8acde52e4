"""Preference datasets: TRL pair rows, JSONL round trip, malformed lines reported by number."""

from __future__ import annotations

import json

import pytest

from prefgym.preferences import (
    AnnotatorPool,
    BoltzmannAnnotator,
    load_preference_dataset,
    make_preference_dataset,
)

TARGET_A = {"_target_": "prefgym.preferences.TargetCharScorer", "target": "a"}


def test_rows_are_trl_pairs_with_annotator_margin_and_scores(tmp_path):
    ann = BoltzmannAnnotator(TARGET_A, temperature=0.0, name="a-lover")
    rows = make_preference_dataset(["p1", "p2"], ["aabb", "bbbb"], ["bbbb", "abbb"], ann, path=tmp_path / "d.jsonl")
    assert rows == [
        {"prompt": "p1", "chosen": "aabb", "rejected": "bbbb", "annotator": "a-lover",
         "margin": 0.5, "score_chosen": 0.5, "score_rejected": 0.0},
        {"prompt": "p2", "chosen": "abbb", "rejected": "bbbb", "annotator": "a-lover",
         "margin": 0.25, "score_chosen": 0.25, "score_rejected": 0.0},
    ]
    assert load_preference_dataset(tmp_path / "d.jsonl") == rows


def test_pool_dataset_names_the_annotator_of_each_row(tmp_path):
    pool = AnnotatorPool([BoltzmannAnnotator(TARGET_A, 0.0, name="honest"),
                          BoltzmannAnnotator(TARGET_A, 0.0, flip_prob=1.0, name="contrarian")], seed=1)
    rows = make_preference_dataset(["p"] * 40, ["aaaa"] * 40, ["bbbb"] * 40, pool, path=tmp_path / "pool.jsonl")
    assert {r["annotator"] for r in rows} == {"honest", "contrarian"}
    for r in rows:
        assert r["chosen"] == ("aaaa" if r["annotator"] == "honest" else "bbbb")
    assert load_preference_dataset(tmp_path / "pool.jsonl") == rows


def test_identical_pairs_are_refused():
    ann = BoltzmannAnnotator(TARGET_A)
    with pytest.raises(ValueError, match=r"identical completions \(indices \[1\]\)"):
        make_preference_dataset(["p", "p"], ["a", "b"], ["b", "b"], ann)


def test_malformed_lines_are_reported_with_line_numbers(tmp_path):
    good = {"prompt": "p", "chosen": "a", "rejected": "b"}
    lines = [
        json.dumps(good),                                        # 1 ok
        "{not json",                                             # 2
        json.dumps({"prompt": "p", "chosen": "a"}),              # 3 missing rejected
        "",                                                      # 4 blank: skipped
        json.dumps({**good, "rejected": "a"}),                   # 5 chosen == rejected
        json.dumps({**good, "margin": "big"}),                   # 6 bad margin
        '{"prompt": "p", "chosen": "a", "rejected": "b", "margin": NaN}',  # 7 NaN is not JSON
        json.dumps([1, 2]),                                      # 8 not an object
        json.dumps({**good, "chosen": 3}),                       # 9 wrong type
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError) as info:
        load_preference_dataset(path)
    message = str(info.value)
    assert "7 malformed line(s)" in message
    for expected in ["line 2: invalid JSON", "line 3: missing field 'rejected'", "line 5: chosen == rejected",
                     "line 6: field 'margin' must be a finite number", "line 7: invalid JSON",
                     "line 8: expected a JSON object", "line 9: field 'chosen' must be a string"]:
        assert expected in message
    assert "line 1:" not in message and "line 4:" not in message


def test_human_rows_without_scores_load(tmp_path):
    path = tmp_path / "human.jsonl"
    path.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b", "annotator": "alice"}) + "\n\n")
    assert load_preference_dataset(path) == [{"prompt": "p", "chosen": "a", "rejected": "b", "annotator": "alice"}]
