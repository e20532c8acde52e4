"""PPO: the clipped loss and the KL controller on hand-computed values; one step end to end."""

from __future__ import annotations

import math

import pytest
import torch

from agents.ppo import PPOAgent, PPOConfig, adaptive_kl_coef, ppo_loss


def test_ppo_loss_hand_computed():
    old = torch.zeros(1, 2)
    logprobs = torch.full((1, 2), math.log(1.5))  # ratio 1.5 on both tokens
    advantages = torch.tensor([[1.0, -1.0]])
    values = torch.tensor([[0.5, 0.1]])
    old_values = torch.zeros(1, 2)
    returns = torch.ones(1, 2)
    loss, stats = ppo_loss(logprobs, old, values, old_values, advantages, returns, torch.ones(1, 2),
                           clip_range=0.2, clip_range_value=0.2, vf_coef=0.1)
    # policy: token 0 clipped to -1.2 (A>0), token 1 unclipped 1.5 (A<0) -> mean 0.15
    # value: clipped values (0.2, 0.1) -> max((0.25, 0.81), (0.64, 0.81)) -> 0.5 * 0.725
    assert stats["losses/policy"] == pytest.approx(0.15)
    assert stats["losses/value"] == pytest.approx(0.3625)
    assert loss.item() == pytest.approx(0.15 + 0.1 * 0.3625)
    assert stats["losses/clipfrac"] == pytest.approx(0.5)
    assert stats["losses/value_clipfrac"] == pytest.approx(0.5)


def test_ppo_loss_ignores_masked_tokens():
    z = torch.zeros(1, 2)
    loss, _ = ppo_loss(z, z, z, z, torch.tensor([[1.0, 1000.0]]), z, torch.tensor([[1, 0]]), vf_coef=0.0)
    assert loss.item() == pytest.approx(-1.0)


def test_ppo_loss_gradient_is_minus_advantage_when_unclipped():
    logprobs = torch.zeros(1, 1, requires_grad=True)
    loss, _ = ppo_loss(logprobs, torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1),
                       torch.tensor([[2.0]]), torch.zeros(1, 1), torch.ones(1, 1), vf_coef=0.0)
    loss.backward()
    assert logprobs.grad.item() == pytest.approx(-2.0)


def test_adaptive_kl_controller():
    assert adaptive_kl_coef(0.1, kl=6.0, target=6.0, horizon=100, n_steps=10) == pytest.approx(0.1)
    assert adaptive_kl_coef(0.1, kl=100.0, target=6.0, horizon=100, n_steps=10) == pytest.approx(0.1 * 1.02)
    assert adaptive_kl_coef(0.1, kl=0.0, target=6.0, horizon=100, n_steps=10) == pytest.approx(0.1 * 0.98)


def test_ppo_step_penalises_kl_and_trains_the_value_head(policy, toy_env):
    agent = PPOAgent(PPOConfig(batch_size=8, lr=1e-3, init_kl_coef=0.5, adaptive_kl=True, device="cpu"), policy)
    env = toy_env(8)
    before = [p.clone() for p in agent.value_head.parameters()]
    _, m0 = agent.train_step(env, 0)
    _, m1 = agent.train_step(env, 1)
    assert m0["kl/ref"] == pytest.approx(0.0, abs=1e-4)  # policy == reference at the start
    assert m1["kl/ref"] != 0.0
    assert m1["kl/coef"] != 0.5  # adaptive controller moved
    assert any(not torch.equal(a, b) for a, b in zip(before, agent.value_head.parameters()))
    assert all(math.isfinite(v) for v in m1.values())
    for p in agent.ref_policy.parameters():
        assert not p.requires_grad


def test_ppo_save_load_roundtrip(policy, toy_env, tmp_path):
    from prefgym.models import build_policy

    agent = PPOAgent(PPOConfig(batch_size=4, lr=1e-3, device="cpu"), policy)
    agent.train_step(toy_env(4), 0)
    agent.kl_coef = 0.123
    agent.save(str(tmp_path / "ckpt"))
    other = PPOAgent(PPOConfig(batch_size=4, lr=1e-3, device="cpu"),
                     build_policy("prefgym/toy-chars", n_layer=1, n_embd=32, n_head=2, n_positions=64, seed=1))
    other.load(str(tmp_path / "ckpt"))
    assert other.kl_coef == 0.123
    for a, b in zip(agent.policy.state_dict().values(), other.policy.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(agent.value_head.weight, other.value_head.weight)
    assert other.optimizer.state_dict()["state"].keys() == agent.optimizer.state_dict()["state"].keys()


@pytest.mark.parametrize("algo", ["ppo", "grpo_grpo", "grpo_dapo"])
def test_micro_batching_gives_the_same_update(algo, toy_env):
    from agents.grpo import GRPOAgent, GRPOConfig
    from prefgym.models import build_policy

    def run(micro: int):
        policy = build_policy("prefgym/toy-chars", n_layer=1, n_embd=32, n_head=2, n_positions=64, seed=3)
        if algo == "ppo":
            agent = PPOAgent(PPOConfig(batch_size=8, lr=1e-2, ppo_epochs=1, micro_batch_size=micro, device="cpu"), policy)
        else:
            agent = GRPOAgent(GRPOConfig(batch_size=8, group_size=4, lr=1e-2, loss_type=algo.split("_")[1],
                                         micro_batch_size=micro, device="cpu"), policy)
        agent.train_step(toy_env(8), 0)
        # Gradients, not weights: Adam's first step is lr * sign(g), which amplifies rounding noise.
        return [p.grad.clone() for p in agent.policy.parameters() if p.grad is not None]

    full, micro = run(0), run(3)
    assert len(full) == len(micro) > 0
    for a, b in zip(full, micro):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)


def test_block_eos_never_ends_early_and_keeps_ratios_consistent(policy, toy_env):
    agent = PPOAgent(PPOConfig(batch_size=8, lr=1e-3, ppo_epochs=1, block_eos=True, device="cpu"), policy)
    rollout, metrics = agent.train_step(toy_env(8), 0)
    eos = policy.config.eos_token_id
    assert agent.blocked_token_ids == (eos,)
    assert bool((rollout.lengths == 8).all()) and not bool((rollout.tokens == eos).any())
    # Training log-probs renormalise without EOS as the sampler did: the first ratio is ~1.
    assert metrics["losses/approx_kl"] < 1e-6 and metrics["losses/clipfrac"] == 0.0
