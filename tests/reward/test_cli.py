"""``prefgym reward train`` / ``eval`` / ``overopt`` end to end on tiny data and models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from prefgym.reward.cli import compose, main
from prefgym.reward.overopt import best_of_n_curve

TINY_BACKBONE = ["backbone.spec.n_layer=1", "backbone.spec.n_embd=32", "backbone.spec.n_head=2",
                 "backbone.spec.tokenizer=prefgym/toy-chars", "backbone.spec.n_positions=64"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A reward model trained by the CLI on a JSONL file (validation held out by prompt)."""
    tmp = tmp_path_factory.mktemp("rm")
    rows = [{"prompt": f"p{i % 20} ", "chosen": "a" * (2 + i % 3), "rejected": "b" * (2 + i % 2),
             "score_chosen": 1.0, "score_rejected": 0.0} for i in range(80)]
    (tmp / "prefs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = main(["train", "data=file", f"data.train={tmp / 'prefs.jsonl'}", f"run_dir={tmp / 'run'}",
                 "train.epochs=1", "train.progress=false", "model.max_length=32", *TINY_BACKBONE])
    assert code == 0
    return tmp


def test_train_writes_model_metrics_plot_and_data(trained):
    run = trained / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"accuracy", "ece", "noiseless_accuracy", "n_pairs"} <= set(metrics["final"])
    assert (run / "reliability.png").read_bytes()[:4] == b"\x89PNG"
    assert (run / "model" / "model.safetensors").exists() and (run / "validation.jsonl").exists()
    config = json.loads((run / "model" / "reward_config.json").read_text())
    assert config["metrics"] == metrics["final"] and "prefgym reward train" in config["recipe"]["command"]


def test_eval_command_prints_metrics(trained, capsys):
    assert main(["eval", str(trained / "run" / "model"), str(trained / "run" / "validation.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in json.loads(out[out.index("{"):])


def test_overopt_runs_best_of_n_and_ppo(trained):
    run = trained / "overopt"
    code = main(["overopt", f"run_dir={run}", f"reward_model={trained / 'run' / 'model'}",
                 "env_id=prefgym/ToyTarget-v0", "~policy",
                 "+policy={_target_: prefgym.models.build_policy, tokenizer: prefgym/toy-chars, n_layer: 1, "
                 "n_embd: 16, n_head: 2, n_positions: 64}",
                 "best_of_n.ns=[1,2]", "best_of_n.num_prompts=2", "eval.batch_size=2", "eval.num_samples=2",
                 "ppo.iterations=1", "ppo.eval_every=1", "agent.config.batch_size=2", "max_new_tokens=4"])
    assert code == 0
    result = json.loads((run / "overopt.json").read_text())
    assert result["best_of_n"]["n"] == [1, 2] and len(result["ppo"]["kl"]) == 2
    assert (run / "overopt.png").exists()


def test_best_of_n_curve_by_hand():
    proxy = np.array([[0.0, 3.0, 1.0, 2.0]])
    gold = np.array([[1.0, -1.0, 0.0, 4.0]])
    curve = best_of_n_curve(proxy, gold, [1, 2, 4])
    assert curve["gold"] == [1.0, 1.5, -1.0]  # n=2: (s0,s1)->s1 gold -1, (s2,s3)->s3 gold 4
    assert curve["proxy"] == [1.5, 2.5, 3.0]
    assert curve["kl"][0] == 0.0 and curve["kl"][2] == pytest.approx(np.log(4) - 0.75)
    with pytest.raises(ValueError):
        best_of_n_curve(proxy, gold, [8])


def test_every_reward_config_composes():
    for overrides in ([], ["backbone=minilm"], ["backbone=tiny_code"], ["data=policy"], ["data=file", "data.train=x"]):
        cfg = compose("train", overrides)
        assert cfg.train._target_.endswith("RewardTrainConfig")
    assert compose("overopt").agent._target_ == "agents.ppo.PPOAgent"


def test_unknown_subcommand():
    assert main(["nope"]) == 2
