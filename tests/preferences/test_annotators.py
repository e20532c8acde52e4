"""Simulated annotators: Boltzmann choice, label flips, temperature 0, pools, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prefgym.preferences import AnnotatorPool, BoltzmannAnnotator, LengthScorer

LENGTH = {"_target_": "prefgym.preferences.LengthScorer", "target_chars": 4}


def pairs(n: int) -> tuple[list[str], list[str], list[str]]:
    # a is always optimal (score 0), b is 2 chars too long (score -0.5): margin 0.5
    return ["p"] * n, ["abcd"] * n, ["abcdef"] * n


def test_flip_rate_matches_flip_prob():
    n = 20_000
    ann = BoltzmannAnnotator(LENGTH, temperature=0.0, flip_prob=0.25, seed=3)
    choices, margins = ann.label_batch(*pairs(n))
    # every label would be 0 without flips; binomial sd = sqrt(.25 * .75 / n) = 0.003
    assert abs(choices.mean() - 0.25) < 0.015
    assert margins.tolist() == [0.5] * n


def test_boltzmann_choice_frequency_matches_sigmoid():
    n, temperature = 20_000, 0.5
    ann = BoltzmannAnnotator(LENGTH, temperature=temperature, seed=0)
    choices, _ = ann.label_batch(*pairs(n))
    p_a = 1 / (1 + math.exp(-0.5 / temperature))  # sigmoid(1) = 0.731
    assert abs((choices == 0).mean() - p_a) < 0.015


def test_temperature_zero_is_argmax_with_random_ties():
    ann = BoltzmannAnnotator(LENGTH, temperature=0.0, seed=1)
    a = ["abcd", "ab", "abcdefgh", "abc"]
    b = ["abcdefgh", "abcd", "abcd", "abcde"]  # last pair ties (both 1 char off)
    choices = np.stack([ann.label_batch(["p"] * 4, a, b)[0] for _ in range(200)])
    scorer = LengthScorer(target_chars=4)
    argmax = np.where(scorer.score(["p"] * 4, a) > scorer.score(["p"] * 4, b), 0, 1)
    np.testing.assert_array_equal(choices[:, :3], np.tile(argmax[:3], (200, 1)))
    assert 0.35 < choices[:, 3].mean() < 0.65  # ties are broken at random, not always one way


def test_labels_are_deterministic_given_seed():
    prompts, a, b = ["p"] * 50, ["abc"] * 50, ["abcde"] * 50
    first = BoltzmannAnnotator(LENGTH, temperature=1.0, flip_prob=0.1, seed=7).label_batch(prompts, a, b)[0]
    second_ann = BoltzmannAnnotator(LENGTH, temperature=1.0, flip_prob=0.1, seed=7)
    np.testing.assert_array_equal(second_ann.label_batch(prompts, a, b)[0], first)
    second_ann.reset()
    np.testing.assert_array_equal(second_ann.label_batch(prompts, a, b)[0], first)
    other = BoltzmannAnnotator(LENGTH, temperature=1.0, flip_prob=0.1, seed=8).label_batch(prompts, a, b)[0]
    assert not np.array_equal(other, first)


def test_single_label_and_bad_arguments():
    ann = BoltzmannAnnotator(LENGTH, temperature=0.0)
    assert ann.label("p", "abcdef", "abcd") == (1, 0.5)
    with pytest.raises(ValueError, match="flip_prob"):
        BoltzmannAnnotator(LENGTH, flip_prob=1.5)
    with pytest.raises(ValueError, match="temperature"):
        BoltzmannAnnotator(LENGTH, temperature=-1.0)
    with pytest.raises(ValueError, match="one prompt per pair"):
        ann.label_batch(["p"], ["a", "b"], ["c", "d"])


def test_pool_records_which_annotator_labelled_each_pair():
    pool = AnnotatorPool(
        [BoltzmannAnnotator(LENGTH, temperature=0.0, name="honest"),
         {"_target_": "prefgym.preferences.BoltzmannAnnotator", "scorer": LENGTH, "temperature": 0.0,
          "flip_prob": 1.0, "name": "contrarian"}],
        weights=[3, 1], seed=0,
    )
    out = pool.annotate(*pairs(4000))
    assert pool.names == ["honest", "contrarian"] and out.annotator_names == pool.names
    # honest always picks a (0), the contrarian always flips to b (1): choice == annotator id
    np.testing.assert_array_equal(out.choice, out.annotator_id)
    assert abs(out.annotator_id.mean() - 0.25) < 0.03  # weights 3:1
    np.testing.assert_array_equal(out.margin, np.full(4000, 0.5))


def test_pool_rejects_duplicate_names_and_bad_weights():
    ann = BoltzmannAnnotator(LENGTH)
    with pytest.raises(ValueError, match="unique"):
        AnnotatorPool([ann, BoltzmannAnnotator(LENGTH)])
    with pytest.raises(ValueError, match="weights"):
        AnnotatorPool([ann], weights=[-1.0])


def test_annotator_configs_rebuild_the_same_labels():
    from hydra.utils import instantiate

    pool = AnnotatorPool([BoltzmannAnnotator(LENGTH, temperature=0.5, flip_prob=0.1, seed=2, name="x"),
                          BoltzmannAnnotator(LENGTH, temperature=0.0, seed=3, name="y")], weights=[1, 2], seed=4)
    rebuilt = instantiate(pool.to_config(), _recursive_=False, _convert_="all")
    prompts, a, b = ["p"] * 64, ["abc"] * 64, ["abcdef"] * 64
    first, second = pool.annotate(prompts, a, b), rebuilt.annotate(prompts, a, b)
    np.testing.assert_array_equal(first.choice, second.choice)
    np.testing.assert_array_equal(first.annotator_id, second.annotator_id)
