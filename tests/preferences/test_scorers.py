"""Sentiment, PII, arithmetic, toy scorers and weighted sums, with hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from prefgym.preferences import (
    ArithmeticScorer,
    LengthScorer,
    PIIScorer,
    SentimentScorer,
    TargetCharScorer,
    WeightedSum,
    parse_problem,
)


def test_sentiment_sign_on_obvious_sentences():
    parts = SentimentScorer().score_parts(
        ["Review:"] * 3,
        ["I love this, it is wonderful and great!", "This is terrible, awful and I hate it.", ""],
    )
    assert parts["score"][0] > 0.5 and parts["score"][1] < -0.5 and parts["score"][2] == 0.0
    assert parts["pos"][0] > parts["neg"][0] and parts["neg"][1] > parts["pos"][1]
    np.testing.assert_array_equal(parts["score"], parts["compound"])


def test_sentiment_scores_the_completion_not_the_prompt():
    scores = SentimentScorer().score(["I hate everything.", "I love everything."], ["The sky is blue."] * 2)
    assert scores.tolist() == [0.0, 0.0]


def test_pii_detects_email_and_phone_per_character():
    email, phone = "Write to jane.doe@example.com", "Call me on (650) 253-0000 today"
    parts = PIIScorer().score_parts(["", "", "", ""], [email, phone, email + " or " + phone[8:], "No secrets here."])
    assert parts["pii_count"].tolist() == [1, 1, 2, 0]
    assert parts["score"][0] == pytest.approx(-1 / len(email))
    assert parts["score"][2] == pytest.approx(-2 / len(email + " or " + phone[8:]))
    assert parts["score"][3] == 0.0


def test_pii_empty_completion_is_zero():
    assert PIIScorer().score(["jane.doe@example.com"], [""]).tolist() == [0.0]


@pytest.mark.parametrize(("prompt", "answer"), [("12 + 35 =", 47), ("5 - 8 =", -3), ("Q: 1 + 1 = 2. Q: 7 * 6 =", 42),
                                                ("-4 * -3 =", 12)])
def test_parse_problem(prompt, answer):
    assert parse_problem(prompt) == answer


def test_arithmetic_correct_incorrect_and_missing():
    parts = ArithmeticScorer().score_parts(
        ["12 + 35 ="] * 5 + ["5 - 8 ="],
        [" 47", " 47.0 is it", "The answer is 48, not 47", " forty-seven", "", " -3"],
    )
    assert parts["score"].tolist() == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert parts["has_answer"].tolist() == [True, True, True, False, False, True]
    assert parts["parsed_answer"].tolist() == [47.0, 47.0, 48.0, 0.0, 0.0, -3.0]


def test_arithmetic_huge_number_stays_finite_and_bad_prompt_is_explained():
    parts = ArithmeticScorer().score_parts(["1 + 1 ="], ["9" * 400])
    assert parts["correct"].tolist() == [False] and np.isfinite(parts["parsed_answer"]).all()
    with pytest.raises(ValueError, match="'<int> <op> <int> ='"):
        ArithmeticScorer().score(["what is two plus two?"], ["4"])


def test_toy_scorers_values():
    assert TargetCharScorer(target="a").score(["", "", ""], ["aaab", "", "bbbb"]).tolist() == [0.75, 0.0, 0.0]
    assert LengthScorer(target_chars=20).score([""] * 3, ["x" * 20, "x" * 30, ""]).tolist() == [0.0, -0.5, -1.0]
    with pytest.raises(ValueError, match="single character"):
        TargetCharScorer(target="ab")
    with pytest.raises(ValueError, match="target_chars"):
        LengthScorer(target_chars=0)


def test_weighted_sum_combines_conflicting_objectives():
    ws = WeightedSum({
        "as": {"scorer": {"_target_": "prefgym.preferences.TargetCharScorer", "target": "a"}, "weight": 1.0},
        "short": {"scorer": LengthScorer(target_chars=2), "weight": 0.5},
    })
    parts = ws.score_parts(["p", "p"], ["aaaa", "ab"])
    # "aaaa": 1.0 * 1.0 + 0.5 * -(4 - 2) / 2 = 0.5;  "ab": 1.0 * 0.5 + 0.5 * 0 = 0.5
    assert parts["score"].tolist() == [0.5, 0.5]
    assert parts["as/score"].tolist() == [1.0, 0.5] and parts["short/score"].tolist() == [-1.0, 0.0]
    assert parts["short/chars"].tolist() == [4.0, 2.0]


def test_weighted_sum_rejects_malformed_components():
    with pytest.raises(ValueError, match="non-empty"):
        WeightedSum({})
    with pytest.raises(ValueError, match="component 'x' must be"):
        WeightedSum({"x": {"scorer": {"_target_": "prefgym.preferences.LengthScorer"}, "wieght": 1.0}})
