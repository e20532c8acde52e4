"""Simulated comparison datasets: PEP8 corpus pairs, Sentiment corpus pairs, policy sample pairs."""

from __future__ import annotations

import random

import pytest

from prefgym.preferences import PEP8Scorer, SentimentScorer
from prefgym.reward.pairs import annotator_from, pep8_corpus_pairs, policy_pairs, sentiment_corpus_pairs, sloppify


def test_sloppify_breaks_pep8_and_rate_zero_keeps_code():
    body = "    x = f(a, b)\n    return x == 1\n"
    assert sloppify(body, 0.0, random.Random(0)) == body
    sloppy = sloppify(body, 1.0, random.Random(0))
    scorer = PEP8Scorer()
    assert scorer.score(["def g(a, b):\n"], [sloppy])[0] < scorer.score(["def g(a, b):\n"], [body])[0] == 0.0


def test_pep8_pairs_are_labelled_with_gold_scores():
    pairs = pep8_corpus_pairs(12, annotator_from("pep8", flip_prob=0.0), split="heldout", seed=0)
    assert len(pairs) == 12 and all(c.completions[0] != c.completions[1] for c in pairs)
    scores = PEP8Scorer().score([c.prompt for c in pairs], [c.completions[0] for c in pairs])
    assert scores.tolist() == pytest.approx([c.gold[0] for c in pairs])
    assert all(c.gold[0] >= c.gold[1] for c in pairs)  # no flips: chosen is never worse


def test_label_flips_show_up_against_gold():
    pairs = pep8_corpus_pairs(200, annotator_from("pep8", flip_prob=0.25, seed=1), split="heldout", seed=1)
    strict = [c for c in pairs if c.gold[0] != c.gold[1]]
    flipped = sum(c.gold[0] < c.gold[1] for c in strict) / len(strict)
    assert 0.15 < flipped < 0.35


def test_sentiment_pairs_differ_by_inserted_words():
    pairs = sentiment_corpus_pairs(16, annotator_from("sentiment", flip_prob=0.0), split="heldout", seed=0)
    assert all(c.gold[0] >= c.gold[1] for c in pairs)
    scores = SentimentScorer().score([c.prompt for c in pairs], [c.completions[1] for c in pairs])
    assert scores.tolist() == pytest.approx([c.gold[1] for c in pairs])


def test_policy_pairs_sample_the_policy_on_env_prompts():
    from prefgym.models import build_policy

    policy = build_policy("prefgym/toy-chars", n_layer=1, n_embd=16, n_head=2, n_positions=64)
    ann = annotator_from({"_target_": "prefgym.preferences.TargetCharScorer"}, flip_prob=0.0)
    pairs, dropped = policy_pairs(policy, "prefgym/ToyTarget-v0", 10, ann, batch_size=8, seed=0)
    prompts = {"the ", "a cat ", "be ", "we see "}
    assert len(pairs) == 10 and dropped >= 0 and {c.prompt for c in pairs} <= prompts


def test_sample_pairs_can_require_non_empty_completions():
    from prefgym.models import build_policy
    from prefgym.reward.pairs import sample_pairs
    from prefgym.rollout import make_rollout_env

    policy = build_policy("prefgym/toy-chars", n_layer=1, n_embd=16, n_head=2, n_positions=64)
    env = make_rollout_env("prefgym/ToyTarget-v0", num_envs=8)
    ann = annotator_from({"_target_": "prefgym.preferences.TargetCharScorer"}, flip_prob=0.0)
    pairs, _ = sample_pairs(policy, env, 8, ann, seed=0, min_chars=3)
    assert all(len(c.strip()) >= 3 for p in pairs for c in p.completions)
    env.close()


def test_unknown_scorer_name():
    with pytest.raises(ValueError, match="short names"):
        annotator_from("pep9")
