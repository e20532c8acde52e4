"""Bradley-Terry / Plackett-Luce losses and ECE on hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from prefgym.reward.losses import expected_calibration_error, plackett_luce_nll, preference_loss, plot_reliability


def test_pair_loss_is_bradley_terry():
    loss, logs = preference_loss(torch.tensor([[1.0, 0.0]]), torch.ones(1, 2), torch.tensor([False]))
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)  # 0.31326
    assert logs["accuracy"] == 1.0


def test_kwise_is_plackett_luce_by_hand():
    nll = plackett_luce_nll(torch.tensor([[2.0, 1.0, 0.0]]), torch.ones(1, 3))
    by_hand = -((2 - math.log(math.e ** 2 + math.e + 1)) + (1 - math.log(math.e + 1)))  # 0.72076
    assert nll.item() == pytest.approx(by_hand, abs=1e-5)


def test_padding_does_not_change_a_pair_inside_a_kwise_batch():
    scores = torch.tensor([[0.3, -0.2, 99.0], [2.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    nll = plackett_luce_nll(scores, mask)
    assert nll[0].item() == pytest.approx(math.log(1 + math.exp(-0.5)), abs=1e-6)


def test_tie_uses_a_soft_half_label():
    loss, logs = preference_loss(torch.tensor([[0.5, -0.5]]), torch.ones(1, 2), torch.tensor([True]))
    by_hand = 0.5 * (math.log(1 + math.exp(-1)) + math.log(1 + math.exp(1)))  # 0.81326
    assert loss.item() == pytest.approx(by_hand, abs=1e-6)
    assert math.isnan(logs["accuracy"])  # ties carry no accuracy


def test_tie_gradient_pulls_scores_together():
    scores = torch.tensor([[2.0, -1.0]], requires_grad=True)
    preference_loss(scores, torch.ones(1, 2), torch.tensor([True]))[0].backward()
    assert scores.grad[0, 0] > 0 > scores.grad[0, 1]  # descent lowers the higher score


def test_ece_by_hand_and_reliability_png(tmp_path):
    ece, bins = expected_calibration_error(np.array([0.9, 0.9, 0.2, 0.6]), np.array([1, 0, 0, 1]))
    assert ece == pytest.approx(0.25 * 0.4 + 0.25 * 0.2 + 0.5 * 0.4)
    assert bins["count"].sum() == 4
    plot_reliability(bins, str(tmp_path / "r.png"))
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_perfectly_calibrated_predictions_have_small_ece():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20000)
    y = (rng.uniform(0, 1, p.size) < p).astype(int)
    assert expected_calibration_error(p, y)[0] < 0.02
    with pytest.raises(ValueError):
        expected_calibration_error(np.array([]), np.array([]))
