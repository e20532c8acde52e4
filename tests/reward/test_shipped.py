"""The shipped reward models and the learned-reward envs built on them."""

from __future__ import annotations

import hashlib
import json

import pytest

from prefgym.reward.model import resolve_reward_path

SHIPPED = ["prefgym/pep8-rm", "prefgym/sentiment-rm"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_match_their_recorded_sha256(name):
    folder = resolve_reward_path(name)
    config = json.loads((folder / "reward_config.json").read_text())
    for file, key in (("model.safetensors", "model_safetensors_sha256"), ("reward_head.safetensors", "head_safetensors_sha256")):
        assert hashlib.sha256((folder / file).read_bytes()).hexdigest() == config[key]
    assert config["metrics"]["noiseless_accuracy"] >= 0.70
    assert "prefgym reward train" in config["recipe"]["command"]
    assert sum(p.stat().st_size for p in folder.iterdir()) < 10 * 2**20


@pytest.mark.parametrize(("env_id", "gold_key"), [("prefgym/PEP8-Learned-v0", "gold/violations"),
                                                   ("prefgym/PEP8-Learned-v1", "gold/violations"),
                                                   ("prefgym/Sentiment-Learned-v0", "gold/compound")])
def test_learned_envs_reward_with_the_model_and_report_gold(env_id, gold_key):
    import gymnasium as gym

    import prefgym  # noqa: F401

    env = gym.make(env_id)
    env.reset(seed=0)
    done, info, reward = False, {}, 0.0
    while not done:
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        done = terminated or truncated
    assert "gold/score" in info and gold_key in info
    learned = env.unwrapped.config.preference
    assert reward == pytest.approx(float(learned.score([info["prompt"]], [info["completion"]])[0]), abs=1e-4)
    env.close()


def test_unknown_shipped_name_lists_the_shipped_ones():
    with pytest.raises(FileNotFoundError, match="pep8-rm"):
        resolve_reward_path("prefgym/no-such-rm")


@pytest.mark.slow
def test_acceptance_5k_noisy_pep8_pairs_reach_70_percent_noiseless_accuracy():
    """The issue's acceptance run, one epoch: 5,000 pairs with 25% label flips, 1,000 held out."""
    from prefgym.reward.model import RewardModel
    from prefgym.reward.pairs import annotator_from, pep8_corpus_pairs
    from prefgym.reward.train import RewardTrainConfig, train_reward_model

    train = pep8_corpus_pairs(5000, annotator_from("pep8", flip_prob=0.25, seed=0), "train", seed=0)
    val = pep8_corpus_pairs(1000, annotator_from("pep8", flip_prob=0.25, seed=0), "heldout", seed=0)
    model = RewardModel.build({"tokenizer": "prefgym/bpe-8k", "n_layer": 2, "n_embd": 128, "n_head": 4,
                               "n_positions": 256})
    history = train_reward_model(model, train, val, RewardTrainConfig(epochs=1, lr=1e-3, weight_decay=0.01,
                                                                      progress=False))
    assert history[-1]["noiseless_accuracy"] >= 0.70, history
