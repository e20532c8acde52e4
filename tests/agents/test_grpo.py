"""GRPO: group advantages and the clipped, KL-regularised loss on hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from agents.grpo import GRPOAgent, GRPOConfig, group_advantages, grpo_loss


def test_group_advantages_hand_computed():
    adv = group_advantages(torch.tensor([1.0, 3.0, 5.0, 5.0]), group_size=2, scale=True)
    s = 1.0 / (math.sqrt(2.0) + 1e-4)  # unbiased std of (1, 3) is sqrt(2)
    assert adv.tolist() == pytest.approx([-s, s, 0.0, 0.0])


def test_grpo_loss_sequence_vs_token_mean():
    lp = torch.zeros(2, 2)
    mask = torch.tensor([[1, 1], [1, 0]])
    adv = torch.tensor([1.0, -1.0])
    grpo, _ = grpo_loss(lp, lp, None, adv, mask, loss_type="grpo")
    dapo, _ = grpo_loss(lp, lp, None, adv, mask, loss_type="dapo")
    assert grpo.item() == pytest.approx(0.0)  # per-sequence means -1 and +1
    assert dapo.item() == pytest.approx(-1.0 / 3.0)  # token mean of (-1, -1, +1)
    with pytest.raises(ValueError, match="loss_type"):
        grpo_loss(lp, lp, None, adv, mask, loss_type="nope")


def test_grpo_loss_clip_and_k3_kl():
    old = torch.zeros(1, 1)
    doubled = torch.full((1, 1), math.log(2.0))
    loss, stats = grpo_loss(doubled, old, None, torch.tensor([1.0]), torch.ones(1, 1), epsilon=0.2, beta=0.0)
    assert loss.item() == pytest.approx(-1.2) and stats["losses/clipfrac"] == 1.0
    ref = torch.full((1, 1), math.log(0.5))  # log pi - log ref = log 2 -> k3 = 0.5 - 1 + log 2
    loss, stats = grpo_loss(old, old, ref, torch.tensor([0.0]), torch.ones(1, 1), beta=0.1)
    assert loss.item() == pytest.approx(0.1 * (0.5 - 1 + math.log(2.0)))
    assert stats["kl/k3"] == pytest.approx(0.5 - 1 + math.log(2.0))


def test_grpo_rejects_a_batch_that_is_not_whole_groups(policy):
    with pytest.raises(ValueError, match="multiple of group_size"):
        GRPOAgent(GRPOConfig(batch_size=6, group_size=4, device="cpu"), policy)


def test_grpo_without_kl_builds_no_reference(policy, toy_env):
    agent = GRPOAgent(GRPOConfig(batch_size=4, group_size=2, beta=0.0, device="cpu"), policy)
    assert agent.ref_policy is None
    rollout, metrics = agent.train_step(toy_env(4), 0)
    assert rollout.prompts[0] == rollout.prompts[1] and rollout.prompts[2] == rollout.prompts[3]
    assert "kl/k3" not in metrics


def test_grpo_block_eos_never_ends_early_and_the_kl_starts_at_zero(policy, toy_env):
    agent = GRPOAgent(GRPOConfig(batch_size=8, group_size=4, beta=0.04, block_eos=True, device="cpu"), policy)
    rollout, metrics = agent.train_step(toy_env(8), 0)
    eos = policy.config.eos_token_id
    assert agent.blocked_token_ids == (eos,)
    assert bool((rollout.lengths == 8).all()) and not bool((rollout.tokens == eos).any())
    # The reference renormalises without EOS as the sampler did: policy == reference, KL 0.
    assert abs(metrics["kl/k3"]) < 1e-6
