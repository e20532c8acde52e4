"""The preference-model protocol: score validation, compare(), configs, callables."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from prefgym.preferences import (
    ArithmeticScorer,
    CallableScorer,
    LengthScorer,
    NonFiniteScoreError,
    PEP8Scorer,
    PIIScorer,
    PreferenceModel,
    SentimentScorer,
    TargetCharScorer,
    WeightedSum,
    as_preference_model,
    build_scorer,
    check_scores,
)


def count_a(prompts, completions):
    """A module-level TRL-style reward function (importable by name)."""
    return [float(c.count("a")) for c in completions]


def test_check_scores_accepts_lists_and_reward_head_shape():
    assert check_scores([1, 2], 2, "s").dtype == np.float64
    assert check_scores(np.array([[0.5], [1.5]]), 2, "s").tolist() == [0.5, 1.5]


def test_check_scores_rejects_wrong_length_with_a_fix():
    with pytest.raises(ValueError, match=r"shape \(3,\) for 2 completions.*one float per completion"):
        check_scores([1.0, 2.0, 3.0], 2, "demo")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, None])
def test_non_finite_scores_name_scorer_index_and_text(bad):
    scorer = as_preference_model(lambda p, c: [0.0, bad, 1.0])
    with pytest.raises(NonFiniteScoreError) as info:
        scorer.score(["p"] * 3, ["ok", "x" * 200, "fine"])
    message = str(info.value)
    assert "'<lambda>'" in message and "index 1" in message
    assert repr("x" * 60 + "...") in message  # the completion, truncated
    assert "must be finite" in message and "never return None" in message
    assert isinstance(info.value, ValueError)


def test_non_finite_error_lists_at_most_five_items():
    scorer = as_preference_model(lambda p, c: [math.nan] * len(c))
    with pytest.raises(NonFiniteScoreError, match=r"7 non-finite score\(s\) of 7.*index 4.*\(and 2 more\)"):
        scorer.score(["p"] * 7, ["c"] * 7)


def test_callable_returning_wrong_length_is_an_error():
    scorer = as_preference_model(lambda p, c: [1.0])
    with pytest.raises(ValueError, match=r"shape \(1,\) for 2 completions"):
        scorer.score(["p", "p"], ["a", "b"])


def test_prompt_completion_length_mismatch_and_single_string():
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        TargetCharScorer().score(["p", "q"], ["a"])
    with pytest.raises(TypeError, match="wrap it in a list"):
        TargetCharScorer().score("p", "a")


@pytest.mark.parametrize("temperature", [1.0, 0.25])
def test_compare_is_bradley_terry_on_scores(temperature):
    scorer = TargetCharScorer(target="a", temperature=temperature)
    # s_a = 3/4, s_b = 1/4 -> P(a) = sigmoid(0.5 / T)
    expected = 1.0 / (1.0 + math.exp(-0.5 / temperature))
    assert scorer.compare("p", "aaab", "abbb") == pytest.approx(expected, abs=1e-12)
    assert scorer.compare("p", "abbb", "aaab") == pytest.approx(1.0 - expected, abs=1e-12)


def test_compare_at_temperature_zero_is_hard():
    scorer = LengthScorer(target_chars=2, temperature=0.0)
    assert (scorer.compare("p", "ab", "abcd"), scorer.compare("p", "abcd", "ab"), scorer.compare("p", "a", "abc")) \
        == (1.0, 0.0, 0.5)


def test_as_preference_model_passes_models_through_and_wraps_callables():
    scorer = TargetCharScorer()
    assert as_preference_model(scorer) is scorer
    wrapped = as_preference_model(count_a)
    assert isinstance(wrapped, CallableScorer) and isinstance(wrapped, PreferenceModel)
    assert wrapped.score(["p", "p"], ["aa", "b"]).tolist() == [2.0, 0.0]
    assert wrapped.to_config()["fn"] == f"{__name__}:count_a"


def test_string_reward_function_and_lambda_config_error():
    scorer = as_preference_model("math:fsum")  # fsum(prompts, completions) is wrong on purpose
    assert scorer.fn == "math:fsum"
    with pytest.raises(TypeError, match="module level"):
        as_preference_model(lambda p, c: [0.0] * len(c)).to_config()
    with pytest.raises(ValueError, match="cannot import reward function"):
        as_preference_model("no_such_module_xyz:fn")
    with pytest.raises(TypeError, match="cannot use int"):
        as_preference_model(3)


ALL_SCORERS = [
    PEP8Scorer(max_line_length=99, ignore=["E501"], n_workers=1),
    SentimentScorer(temperature=0.5),
    PIIScorer(),
    ArithmeticScorer(name="arith"),
    TargetCharScorer(target="z"),
    LengthScorer(target_chars=7),
    CallableScorer(count_a),
    WeightedSum({"a": {"scorer": {"_target_": "prefgym.preferences.TargetCharScorer"}, "weight": 2.0},
                 "len": {"scorer": LengthScorer(target_chars=3), "weight": -1.0}}),
]


@pytest.mark.parametrize("scorer", ALL_SCORERS, ids=lambda s: type(s).__name__)
def test_config_rebuilds_an_equal_scorer_and_pickles(scorer):
    config = scorer.to_config()
    rebuilt = build_scorer(config)
    assert type(rebuilt) is type(scorer) and rebuilt.to_config() == config
    assert pickle.loads(pickle.dumps(scorer)).to_config() == config
    prompts, completions = ["1 + 2 ="] * 2, [" 3 aaz", "def f(a,b):  \n"]
    np.testing.assert_array_equal(rebuilt.score(prompts, completions), scorer.score(prompts, completions))


def test_build_scorer_accepts_omegaconf_and_explains_missing_target():
    from omegaconf import OmegaConf

    scorer = build_scorer(OmegaConf.create({"_target_": "prefgym.preferences.LengthScorer", "target_chars": 4}))
    assert scorer.score(["p"], ["abcdef"]).tolist() == [-0.5]
    with pytest.raises(ValueError, match="no '_target_' key"):
        build_scorer({"target_chars": 4})


def test_import_is_cheap():
    import subprocess
    import sys

    code = ("import sys, prefgym.preferences; "
            "print([m for m in ('pycodestyle', 'scrubadub', 'vaderSentiment', 'hydra', 'torch') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
