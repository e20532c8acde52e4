"""RLOO and REINFORCE: the policy-gradient loss, leave-one-out and moving-average baselines."""

from __future__ import annotations

import pytest
import torch

from agents.reinforce import REINFORCEAgent, REINFORCEConfig, ema_update, reinforce_loss
from agents.rloo import RLOOAgent, RLOOConfig, rloo_loss, sequence_rewards


def test_rloo_loss_hand_computed_and_its_gradient():
    logprobs = torch.tensor([[-1.0, -2.0], [-0.5, -9.0]], requires_grad=True)
    mask = torch.tensor([[1, 1], [1, 0]])
    loss, _ = rloo_loss(logprobs, torch.tensor([2.0, -1.0]), mask)
    assert loss.item() == pytest.approx(-(2.0 * -3.0 + -1.0 * -0.5) / 2)
    loss.backward()
    assert logprobs.grad.flatten().tolist() == pytest.approx([-1.0, -1.0, 0.5, 0.0])


def test_sequence_rewards_subtract_the_kl_penalty():
    kl = torch.tensor([[0.1, 0.2], [0.3, 0.0]])
    assert sequence_rewards(torch.tensor([1.0, 0.0]), kl, 0.5).tolist() == pytest.approx([0.85, -0.15])
    assert sequence_rewards(torch.tensor([1.0]), None, 0.5).tolist() == [1.0]


def test_rloo_step_uses_groups(policy, toy_env):
    agent = RLOOAgent(RLOOConfig(batch_size=4, group_size=2, device="cpu"), policy)
    rollout, metrics = agent.train_step(toy_env(4), 0)
    assert rollout.prompts[0] == rollout.prompts[1]
    assert metrics["kl/ref"] == pytest.approx(0.0, abs=1e-4)


def test_ema_baseline():
    assert ema_update(None, 3.0, 0.9) == 3.0
    assert ema_update(3.0, 1.0, 0.5) == 2.0
    assert reinforce_loss is rloo_loss  # the same estimator; the baselines differ


def test_reinforce_baseline_uses_past_batches_only(policy, toy_env):
    agent = REINFORCEAgent(REINFORCEConfig(batch_size=4, kl_coef=0.0, device="cpu"), policy)
    env = toy_env(4)
    _, m0 = agent.train_step(env, 0)
    first = agent.baseline
    assert first == pytest.approx(m0["rewards/total"])
    _, m1 = agent.train_step(env, 1)
    assert agent.baseline == pytest.approx(0.9 * first + 0.1 * m1["rewards/total"])
    with pytest.raises(ValueError, match="baseline"):
        REINFORCEAgent(REINFORCEConfig(baseline="median", device="cpu"), policy)
