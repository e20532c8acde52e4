"""Shared agent math against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from agents import functional as AF


def test_masked_mean_and_var_ignore_masked_entries():
    x = torch.tensor([1.0, 3.0, 100.0])
    mask = torch.tensor([1, 1, 0])
    assert AF.masked_mean(x, mask).item() == pytest.approx(2.0)
    assert AF.masked_var(x, mask).item() == pytest.approx(2.0)  # ((1-2)^2 + (3-2)^2) / (2-1)
    assert AF.masked_var(x, mask, unbiased=False).item() == pytest.approx(1.0)
    assert AF.masked_mean(torch.ones(2, 2), torch.tensor([[1, 0], [0, 0]]), dim=1).tolist() == [1.0, 0.0]


def test_masked_whiten_zero_mean_unit_var_and_zero_outside_mask():
    x = torch.tensor([[1.0, 2.0, 3.0, 50.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    w = AF.masked_whiten(x, mask)
    assert w[0, 3].item() == 0.0
    assert AF.masked_mean(w, mask).item() == pytest.approx(0.0, abs=1e-6)
    assert w[0, :3].tolist() == pytest.approx([-1.0, 0.0, 1.0], abs=1e-4)  # std of 1,2,3 (unbiased) is 1


def test_gae_hand_computed():
    # rewards r = [0, 0, 1], values v = [0.5, 0.2, 0.4], gamma 0.9, lam 0.5, episode ends after t=2.
    rewards = torch.tensor([[0.0, 0.0, 1.0]])
    values = torch.tensor([[0.5, 0.2, 0.4]])
    adv, ret = AF.gae(rewards, values, torch.ones(1, 3), gamma=0.9, lam=0.5)
    d2 = 1.0 - 0.4
    d1 = 0.0 + 0.9 * 0.4 - 0.2
    d0 = 0.0 + 0.9 * 0.2 - 0.5
    a2 = d2
    a1 = d1 + 0.45 * a2
    a0 = d0 + 0.45 * a1
    assert adv[0].tolist() == pytest.approx([a0, a1, a2])
    assert ret[0].tolist() == pytest.approx([a0 + 0.5, a1 + 0.2, a2 + 0.4])


def test_gae_stops_at_the_end_of_a_shorter_row():
    rewards = torch.tensor([[0.0, 2.0, 0.0]])
    values = torch.tensor([[1.0, 1.0, 7.0]])  # the value after the end (7) must not leak in
    adv, _ = AF.gae(rewards, values, torch.tensor([[1, 1, 0]]), gamma=1.0, lam=1.0)
    assert adv[0].tolist() == pytest.approx([1.0, 1.0, 0.0])


def test_kl_estimators():
    logp, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    lr = math.log(2.0)
    assert AF.kl_estimate(logp, ref, "k1").item() == pytest.approx(lr)
    assert AF.kl_estimate(logp, ref, "k2").item() == pytest.approx(0.5 * lr ** 2)
    assert AF.kl_estimate(logp, ref, "k3").item() == pytest.approx(0.5 - 1 + lr)  # r = ref/pi = 0.5
    with pytest.raises(ValueError, match="k1"):
        AF.kl_estimate(logp, ref, "k4")


def test_kl_estimators_are_unbiased_on_samples():
    torch.manual_seed(0)
    p = torch.tensor([0.7, 0.2, 0.1])
    q = torch.tensor([0.3, 0.3, 0.4])
    exact = float((p * (p / q).log()).sum())
    x = torch.multinomial(p, 200_000, replacement=True)
    for kind in ("k1", "k3"):
        assert AF.kl_estimate(p.log()[x], q.log()[x], kind).mean().item() == pytest.approx(exact, abs=0.01)


def test_token_logprobs_match_a_manual_forward():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=11, n_layer=1, n_embd=16, n_head=2, n_positions=32)).eval()
    prompt = torch.tensor([[0, 5, 6], [7, 8, 9]])
    prompt_mask = torch.tensor([[0, 1, 1], [1, 1, 1]])  # row 0 left-padded
    tokens = torch.tensor([[1, 2], [3, 0]])
    token_mask = torch.tensor([[1, 1], [1, 0]])
    out = AF.token_logprobs(model, prompt, prompt_mask, tokens, token_mask, with_hidden=True)
    with torch.no_grad():
        manual = torch.log_softmax(model(torch.tensor([[5, 6, 1, 2]])).logits[0], -1)
    assert out["logprobs"][0].tolist() == pytest.approx([manual[1, 1].item(), manual[2, 2].item()], abs=1e-5)
    assert out["logprobs"][1, 1].item() == 0.0  # masked
    assert out["hidden"].shape == (2, 2, 16)


def test_group_baselines():
    scores = torch.tensor([1.0, 2.0, 3.0, 10.0, 10.0, 10.0])
    assert AF.group_baseline(scores, 3, leave_one_out=False).tolist() == [2.0] * 3 + [10.0] * 3
    assert AF.group_baseline(scores, 3, leave_one_out=True).tolist() == [2.5, 2.0, 1.5, 10.0, 10.0, 10.0]
    prompts = AF.grouped_prompts(["a", "b", "c"], num_groups=2, group_size=3, seed=0)
    assert len(prompts) == 6 and prompts[0] == prompts[1] == prompts[2] and prompts[3] == prompts[5]


def test_check_finite_raises_a_clear_error():
    with pytest.raises(AF.NonFiniteLossError, match="learning rate"):
        AF.check_finite(torch.tensor(float("nan")), "PPO loss", 3)


def test_resolve_device_falls_back_to_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert AF.resolve_device("auto").type == expected
    assert AF.resolve_device("cpu").type == "cpu"


def test_best_of_n_kl_bound():
    assert AF.best_of_n_kl(1) == 0.0
    assert AF.best_of_n_kl(4) == pytest.approx(math.log(4) - 0.75)
