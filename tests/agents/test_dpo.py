"""DPO / IPO: losses on hand-computed values, the agent's protocol, bad input, and learning."""

from __future__ import annotations

import math

import pytest
import torch

from agents.dpo import DPOAgent, DPOConfig, dpo_loss, ipo_loss, preference_pairs
from prefgym.models import build_policy
from prefgym.reward.data import Comparison


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values)


def test_dpo_loss_by_hand():
    # h = (-1 - -1.5) - (-2 - -1.5) = 1; loss = -log sigmoid(0.1 * 1) = log(1 + e^-0.1)
    loss, logs = dpo_loss(_t(-1.0), _t(-2.0), _t(-1.5), _t(-1.5), beta=0.1)
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-0.1)), abs=1e-6)  # 0.64440
    assert logs["rewards/chosen"] == pytest.approx(0.05) and logs["rewards/rejected"] == pytest.approx(-0.05)
    assert logs["rewards/accuracy"] == 1.0


def test_conservative_dpo_label_smoothing_by_hand():
    loss, _ = dpo_loss(_t(-1.0), _t(-2.0), _t(-1.5), _t(-1.5), beta=0.1, label_smoothing=0.2)
    by_hand = 0.8 * math.log(1 + math.exp(-0.1)) + 0.2 * math.log(1 + math.exp(0.1))  # 0.66440
    assert float(loss) == pytest.approx(by_hand, abs=1e-6)


def test_ipo_loss_by_hand():
    assert float(ipo_loss(_t(0.0), _t(0.0), _t(0.0), _t(0.0), beta=0.25)[0]) == pytest.approx(4.0)  # (0 - 2)^2
    # h = 3 - 1 = 2 and 1/(2 beta) = 1: (2 - 1)^2 = 1, averaged with (0 - 1)^2 = 1 -> 1
    loss, _ = ipo_loss(_t(3.0, 0.0), _t(1.0, 0.0), _t(0.0, 0.0), _t(0.0, 0.0), beta=0.5)
    assert float(loss) == pytest.approx(1.0)


def test_dpo_gradient_raises_chosen_and_lowers_rejected():
    chosen, rejected = _t(-1.0).requires_grad_(), _t(-1.0).requires_grad_()
    dpo_loss(chosen, rejected, _t(-1.0), _t(-1.0))[0].backward()
    assert chosen.grad.item() < 0 < rejected.grad.item()


def test_pairs_from_kwise_and_ties_are_counted():
    pairs, ties = preference_pairs([Comparison("p", ("a", "b", "c")), Comparison("q", ("x", "y"), tie=True)])
    assert pairs == [("p", "a", "b"), ("p", "a", "c"), ("p", "b", "c")] and ties == 1


def _toy_policy(seed: int = 0):
    return build_policy("prefgym/toy-chars", n_layer=1, n_embd=32, n_head=2, n_positions=64, seed=seed)


def test_bad_config_and_data_are_refused():
    rows = [{"prompt": "the ", "chosen": "a", "rejected": "b"}]
    with pytest.raises(ValueError, match="loss_type"):
        DPOAgent(DPOConfig(loss_type="kto", data=rows, tokenizer="prefgym/toy-chars"), _toy_policy())
    with pytest.raises(ValueError, match="needs preference data"):
        DPOAgent(DPOConfig(tokenizer="prefgym/toy-chars"), _toy_policy()).train_step(None, 0)
    from transformers import GPT2Config, GPT2LMHeadModel

    too_small = GPT2LMHeadModel(GPT2Config(vocab_size=10, n_layer=1, n_embd=8, n_head=2, n_positions=16))
    with pytest.raises(ValueError, match="policy embeds"):  # toy-chars has more than 10 tokens
        DPOAgent(DPOConfig(data=rows, tokenizer="prefgym/toy-chars"), too_small)
    with pytest.raises(ValueError, match="chosen == rejected"):
        DPOAgent(DPOConfig(data=[{"prompt": "p", "chosen": "a", "rejected": "a"}], tokenizer="prefgym/toy-chars"),
                 _toy_policy())


@pytest.mark.parametrize(("loss_type", "beta"), [("dpo", 0.1), ("ipo", 0.01)])
def test_dpo_and_ipo_raise_the_gold_score_on_a_toy_env(loss_type, beta):
    """Preferences for completions rich in 'a' over ones without: the TargetChar gold score rises.

    IPO regresses the log-ratio gap to 1/(2 beta), so it gets a smaller beta to move as far.
    """
    import random

    from prefgym.rollout import make_rollout_env

    torch.manual_seed(0)
    rng = random.Random(0)
    env = make_rollout_env("prefgym/ToyTarget-v0", num_envs=32)
    rows = [{"prompt": ["the ", "a cat ", "be ", "we see "][i % 4],
             "chosen": "".join(rng.choice("aab") for _ in range(8)),
             "rejected": "".join(rng.choice("bcde") for _ in range(8))} for i in range(64)]
    agent = DPOAgent(DPOConfig(loss_type=loss_type, lr=1e-2, batch_size=16, beta=beta, data=rows,
                               tokenizer="prefgym/toy-chars"), _toy_policy())
    before = float(agent.act(env, seed=1).scores.mean())
    metrics = {}
    for iteration in range(24):
        _, metrics = agent.train_step(env, iteration)
    after = float(agent.act(env, seed=1).scores.mean())
    assert metrics["rewards/accuracy"] == 1.0 and metrics["rewards/margin"] > 0
    assert after > before + 0.3, (before, after)
    env.close()


def test_without_data_dpo_samples_and_labels_pairs_on_the_env():
    from prefgym.rollout import make_rollout_env

    env = make_rollout_env("prefgym/ToyTarget-v0", num_envs=8)
    agent = DPOAgent(DPOConfig(num_pairs=24, batch_size=8, lr=1e-3, tokenizer="prefgym/toy-chars"), _toy_policy())
    rollout, metrics = agent.train_step(env, 0)
    assert len(agent.pairs) == 24 and all(chosen != rejected for _, chosen, rejected in agent.pairs)
    scorer = env.unwrapped.config.preference
    prompts = [p for p, _, _ in agent.pairs]
    chosen = scorer.score(prompts, [c for _, c, _ in agent.pairs])
    rejected = scorer.score(prompts, [r for _, _, r in agent.pairs])
    assert (chosen >= rejected).all()  # noiseless hard-argmax annotator (ties broken at random)
    assert len(rollout.completions) == 8 and "rewards/score_mean" in metrics and "losses/total" in metrics
    env.close()


def test_an_empty_completion_is_learnable_through_eos():
    rows = [{"prompt": "the ", "chosen": "", "rejected": "bb"}]
    agent = DPOAgent(DPOConfig(batch_size=1, data=rows, tokenizer="prefgym/toy-chars"), _toy_policy())
    batch = agent.encode([0])
    assert batch["chosen_mask"].sum() == 1 and int(batch["chosen_ids"][0, 0]) == agent.tokenizer.eos_token_id
    assert batch["rejected_mask"].sum() == 3  # "b", "b", EOS
    no_eos = DPOAgent(DPOConfig(batch_size=1, data=rows, tokenizer="prefgym/toy-chars", append_eos=False), _toy_policy())
    assert no_eos.encode([0])["chosen_mask"].sum() == 0


def test_save_and_load_restore_the_policy(tmp_path):
    rows = [{"prompt": "the ", "chosen": "aa", "rejected": "bb"}] * 8
    agent = DPOAgent(DPOConfig(batch_size=4, lr=1e-2, data=rows, tokenizer="prefgym/toy-chars"), _toy_policy())
    agent.train_step(None, 0)
    agent.save(str(tmp_path / "ckpt"))
    other = DPOAgent(DPOConfig(batch_size=4, lr=1e-2, data=rows, tokenizer="prefgym/toy-chars"), _toy_policy(seed=1))
    other.load(str(tmp_path / "ckpt"))
    for a, b in zip(agent.policy.parameters(), other.policy.parameters()):
        assert torch.equal(a, b)
