"""Reward model: learning, frozen-backbone training, safetensors save/load, tokenizer checks, env use."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from prefgym.reward.data import Comparison
from prefgym.reward.model import RewardModel, TokenizerMismatchError, load_reward_model, save_reward_model
from prefgym.reward.train import RewardTrainConfig, evaluate_reward_model, train_reward_model

TOY = {"tokenizer": "prefgym/toy-chars", "n_layer": 1, "n_embd": 32, "n_head": 2, "n_positions": 64}


def _a_lover_data(n: int, seed: int) -> list[Comparison]:
    """The completion with more 'a's is preferred (noiseless gold = count of 'a')."""
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        x, y = ("".join(rng.choice("ab") for _ in range(6)) for _ in range(2))
        if x.count("a") == y.count("a"):
            continue
        best, worst = (x, y) if x.count("a") > y.count("a") else (y, x)
        out.append(Comparison(rng.choice(["the ", "we "]), (best, worst), gold=(best.count("a"), worst.count("a"))))
    return out


def test_reward_model_learns_a_simple_preference():
    torch.manual_seed(0)
    model = RewardModel.build(TOY)
    history = train_reward_model(model, _a_lover_data(192, 0), _a_lover_data(64, 1),
                                 RewardTrainConfig(epochs=3, batch_size=16, lr=3e-3, warmup_steps=5, progress=False))
    assert history[-1]["accuracy"] >= 0.8, history
    assert history[-1]["noiseless_accuracy"] == history[-1]["accuracy"]  # labels here are noiseless
    assert history[-1]["train_loss"] < 0.6, history


def test_frozen_backbone_trains_only_the_head():
    model = RewardModel.build(TOY)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head_before = model.head.weight.detach().clone()
    data = _a_lover_data(64, 2)
    train_reward_model(model, data, data, RewardTrainConfig(epochs=2, batch_size=16, freeze_backbone=True,
                                                            progress=False))
    assert all(torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())
    assert not torch.equal(head_before, model.head.weight)


def test_save_load_roundtrip_is_exact_and_pickle_free(tmp_path):
    model = RewardModel.build(TOY, head_hidden=8)
    model.score_mean.fill_(0.5)
    config = save_reward_model(model, tmp_path / "rm", {"metrics": {"accuracy": 0.9}})
    files = {p.name for p in (tmp_path / "rm").iterdir()}
    assert {"model.safetensors", "reward_head.safetensors", "reward_config.json"} <= files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pkl", ".pth"))]
    loaded = load_reward_model(tmp_path / "rm")
    prompts, completions = ["the ", "we "], ["aab", "bb"]
    assert torch.allclose(loaded.score_texts(prompts, completions), model.score_texts(prompts, completions))
    assert float(loaded.score_mean) == 0.5 and config["metrics"]["accuracy"] == 0.9


def test_tokenizer_bigger_than_the_backbone_vocabulary_is_refused(tmp_path):
    save_reward_model(RewardModel.build(TOY), tmp_path / "rm")  # its folder is a loadable backbone
    with pytest.raises(TokenizerMismatchError, match="embeds only"):
        RewardModel.build(str(tmp_path / "rm"), tokenizer="prefgym/bpe-8k")
    with pytest.raises(TokenizerMismatchError, match="embeds only"):
        load_reward_model(tmp_path / "rm", tokenizer="prefgym/bpe-8k")


def test_swapped_tokenizer_files_are_detected(tmp_path):
    from prefgym.tokenization import load_tokenizer

    save_reward_model(RewardModel.build(TOY), tmp_path / "rm")
    # Same size, different vocabulary: a tokenizer the model was not trained with.
    tok = load_tokenizer("prefgym/toy-chars")
    vocab = tok.get_vocab()
    swapped = {k: (vocab["b"] if v == vocab["a"] else vocab["a"] if v == vocab["b"] else v) for k, v in vocab.items()}
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(vocab=swapped, unk_token="<|unk|>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                            unk_token="<|unk|>").save_pretrained(tmp_path / "rm")
    with pytest.raises(TokenizerMismatchError, match="differs from the one this reward model was trained with"):
        load_reward_model(tmp_path / "rm")


def test_not_a_reward_model_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a reward model folder"):
        load_reward_model(tmp_path)


def test_learned_reward_drives_an_env_with_gold_reported(tmp_path):
    import gymnasium as gym

    import prefgym  # noqa: F401  (registers the envs)
    from prefgym.models import build_policy
    from prefgym.reward.learned import LearnedRewardModel
    from prefgym.rollout import generate_rollout, make_rollout_env

    save_reward_model(RewardModel.build(TOY), tmp_path / "rm")
    spec = {"_target_": "prefgym.reward.LearnedRewardModel", "path": str(tmp_path / "rm")}
    env = make_rollout_env("prefgym/ToyTarget-v0", num_envs=4, preference=spec,
                           gold_preference={"_target_": "prefgym.preferences.TargetCharScorer"})
    rollout = generate_rollout(build_policy("prefgym/toy-chars", n_layer=1, n_embd=16, n_head=2), env, seed=0)
    learned = LearnedRewardModel(tmp_path / "rm")
    expected = learned.score(rollout.prompts, rollout.completions)
    assert np.allclose(rollout.scores.numpy(), expected, atol=1e-5)
    assert "gold/score" in rollout.infos and rollout.infos["gold/score"].shape == (4,)
    assert 0.0 < learned.compare("the ", "aaa", "bbb") < 1.0
    assert learned.to_config()["path"] == str(tmp_path / "rm")
    single = gym.make("prefgym/ToyTarget-v0", preference=learned.to_config())
    single.reset(seed=0)
    single.close()


def test_evaluation_reports_kwise_pairs_ties_and_png(tmp_path):
    model = RewardModel.build(TOY)
    rows = [Comparison("p ", ("aa", "ab", "bb"), gold=(2, 1, 0)), Comparison("q ", ("a", "b"), tie=True)]
    metrics = evaluate_reward_model(model, rows, reliability_png=str(tmp_path / "rel.png"))
    assert metrics["n_pairs"] == 3 and metrics["n_ties"] == 1 and metrics["n_noiseless"] == 3
    assert (tmp_path / "rel.png").exists()
