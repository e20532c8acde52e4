"""Plain metrics: distinct-n, perplexity, score summaries."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from prefgym.metrics import distinct_n, perplexity, summarize_scores, token_nll


def test_distinct_n_hand_computed():
    assert distinct_n(["a a a a"], 1) == pytest.approx(1 / 4)
    assert distinct_n(["a b", "b a"], 2) == 1.0
    assert distinct_n([""], 2) == 0.0
    with pytest.raises(ValueError):
        distinct_n(["a"], 0)


class Fixed(torch.nn.Module):
    """A 'model' whose next-token distribution is the same fixed one everywhere."""

    def __init__(self, probs):
        super().__init__()
        self.logits = torch.log(torch.tensor(probs))

    def forward(self, input_ids, attention_mask=None):
        return type("Out", (), {"logits": self.logits.expand(*input_ids.shape, -1).clone()})()


def test_perplexity_of_a_known_distribution():
    model = Fixed([0.5, 0.25, 0.25])
    labels = np.array([[0, 1, -100]])
    # NLL = -log .5 - log .25 over 2 tokens
    assert perplexity(model, {"input_ids": np.zeros((1, 3), int), "labels": labels}) == pytest.approx(
        math.exp((math.log(2) + math.log(4)) / 2))


def test_blocked_ids_are_renormalised_away():
    model = Fixed([0.5, 0.25, 0.25])
    nll, n = token_nll(model, torch.zeros(1, 1, dtype=torch.long), torch.tensor([[1]]), blocked_ids=[0])
    assert n == 1 and nll == pytest.approx(math.log(2))  # p(1) = .25 / .5


def test_summarize_scores_max_over_k():
    scores = np.array([[0.0, -0.2], [-0.1, -0.1]])  # 2 prompts x k=2
    out = summarize_scores(scores, violations=np.array([0, 3, 1, 1]))
    assert out["misalignment_mean"] == pytest.approx(0.1)
    assert out["max_misalignment_over_k"] == pytest.approx(0.15)
    assert out["fraction_with_violation"] == 0.75 and out["k"] == 2
