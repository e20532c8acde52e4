"""`prefgym train`: every agent end to end, sweeps, SIGKILL + resume, tracking files, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prefgym.train import CONF_DIR, ConfigError, train

ROOT = CONF_DIR.parent
AGENTS = sorted(p.stem for p in (CONF_DIR / "agent").glob("*.yaml"))
METRIC_PREFIXES = ("rewards/", "losses/", "kl/")
# Agents whose config names a tokenizer of its own need the toy one under debug=toy.
TOY_OVERRIDES = {"dpo": ["agent.config.tokenizer=prefgym/toy-chars", "agent.config.num_pairs=16"]}


def compose(*overrides: str):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="test"):
        return hydra_compose("config", overrides=list(overrides))


def subprocess_env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFGYM_NUM_THREADS": "1", "WANDB_MODE": "offline",
           "HYDRA_FULL_ERROR": "1"}
    return env


def read_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("agent", AGENTS)
def test_debug_toy_runs_every_agent_end_to_end(agent, tmp_path):
    result = train(compose("debug=toy", f"agent={agent}", *TOY_OVERRIDES.get(agent, [])), tmp_path)
    rows = read_rows(tmp_path)
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert all(k == "step" or k.startswith(("rewards/", "losses/", "kl/", "charts/")) for r in rows for k in r)
    for name in ("config.yaml", "run_info.json", "metrics.csv", "samples.jsonl", "eval.json", "plots/training.png"):
        assert (tmp_path / name).is_file(), name
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["versions"]["torch"] and info["git_sha"]
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved["metrics"] == result["metrics"]
    for key in ("score", "gold_score", "kl_to_base", "perplexity", "distinct_2"):
        assert key in saved["metrics"], key
    assert (tmp_path / "checkpoints" / "step-000003" / "weights.safetensors").is_file()


def test_debug_fast_on_the_default_env_and_policy_is_under_a_minute(tmp_path):
    """debug=fast: the default env (PEP8-v2) and base policy (prefgym/tiny-code-v2), end to end.

    Timed in CPU seconds of this process: wall time on a shared CI machine measures the neighbours.
    """
    start = time.process_time()
    result = train(compose("debug=fast", "agent=ppo", "logger=local"), tmp_path)
    assert time.process_time() - start < 60
    assert result["metrics"]["score"] <= 0.0 and "score/violations_per_char" in result["metrics"]
    assert (tmp_path / "eval.json").is_file() and (tmp_path / "plots" / "training.png").is_file()


def test_multirun_sweep_agents_and_seeds(tmp_path):
    # Through the `prefgym` entry point (prefgym.cli -> prefgym.train:cli), as a user runs it.
    cmd = [sys.executable, "-m", "prefgym.cli", "train", "-m", "agent=ppo,grpo", "seed=0,1", "debug=toy",
           "iterations=1", "eval.num_samples=8", "eval.baseline=false", f"hydra.sweep.dir={tmp_path}"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted(p for p in tmp_path.iterdir() if (p / "eval.json").is_file())
    assert [p.name for p in runs] == ["0_ppo_seed0", "1_ppo_seed1", "2_grpo_seed0", "3_grpo_seed1"]
    seeds = {json.loads((p / "eval.json").read_text())["config"]["seed"] for p in runs}
    assert seeds == {0, 1}
    assert "kl_to_base" in proc.stdout  # the printed summary


def test_sigkill_then_resume_ends_with_the_same_metrics(tmp_path):
    overrides = ["debug=toy", "agent=ppo", "iterations=40", "checkpoint.every=5", "eval.enabled=false"]
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "prefgym.train", *overrides, f"hydra.run.dir={killed}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=subprocess_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and not (killed / "checkpoints" / "step-000010").exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert not (killed / "checkpoints" / "step-000040").exists(), "the run finished before it could be killed"
    train(compose(*overrides, "resume=true"), killed)  # resuming in-process: same code path as the CLI
    reference = tmp_path / "reference"
    train(compose(*overrides), reference)
    resumed, uninterrupted = read_rows(killed), read_rows(reference)
    assert [r["step"] for r in resumed] == list(range(40))
    for a, b in zip(resumed, uninterrupted):
        for key in b:
            if key.startswith(METRIC_PREFIXES):
                assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), (a["step"], key)
    names = [p.name for p in (killed / "checkpoints").iterdir()]
    assert all(n.startswith("step-") for n in names), names  # no temporary leftovers


def test_existing_checkpoints_need_resume_and_the_same_config(tmp_path):
    train(compose("debug=toy", "eval.enabled=false"), tmp_path)
    with pytest.raises(ConfigError, match="resume=true"):
        train(compose("debug=toy", "eval.enabled=false"), tmp_path)
    with pytest.raises(ConfigError, match="differs"):
        train(compose("debug=toy", "eval.enabled=false", "resume=true", "seed=5"), tmp_path)


def test_unknown_agent_and_env_names_are_clear_errors(tmp_path):
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException, match="ppo"):  # Hydra lists the available options
        compose("agent=nope")
    with pytest.raises(MissingConfigException, match="pep8"):
        compose("env=nope")
    with pytest.raises(ConfigError, match="registered prefgym envs"):
        train(compose("debug=toy", "env.env_id=prefgym/Nope-v0"), tmp_path / "a")
    with pytest.raises(ConfigError, match="known agents"):
        train(compose("debug=toy", "agent._target_=agents.nope.NopeAgent"), tmp_path / "b")
    with pytest.raises(ConfigError, match="known agents"):
        train(compose("debug=toy", "+agent.config.lerning_rate=0.1"), tmp_path / "c")


def test_policy_vocabulary_must_match_the_env_tokenizer(tmp_path):
    with pytest.raises(ConfigError, match="vocabulary"):
        train(compose("debug=toy", "policy.tokenizer=prefgym/bpe-8k"), tmp_path)


def test_nan_loss_stops_with_a_clear_error_and_no_partial_checkpoint(tmp_path):
    from agents.functional import NonFiniteLossError

    with pytest.raises(NonFiniteLossError, match="PPO loss"):
        train(compose("debug=toy", "agent=ppo", "agent.config.reward_scale=nan"), tmp_path)
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


def test_a_crash_while_saving_leaves_no_partial_checkpoint(tmp_path, monkeypatch):
    import safetensors.torch

    from prefgym import checkpoint

    train(compose("debug=toy", "eval.enabled=false", "iterations=2"), tmp_path)
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())

    def explode(tensors, path, *args, **kwargs):
        Path(path).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", explode)
    from types import SimpleNamespace

    import torch

    net = torch.nn.Linear(2, 2)
    agent = SimpleNamespace(modules=lambda: {"net": net}, optimizer=None, extra_state=lambda: {})
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_checkpoint(tmp_path / "checkpoints", agent, step=7)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before


def test_shadowing_agents_package_is_a_clear_error(tmp_path, monkeypatch):
    import types

    monkeypatch.setitem(sys.modules, "agents", types.ModuleType("agents"))
    with pytest.raises(ConfigError, match="shadows"):
        train(compose("debug=toy"), tmp_path)


def test_wandb_offline_logger_writes_an_offline_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    train(compose("debug=toy", "logger=wandb", "eval.baseline=false"), tmp_path)
    assert list((tmp_path / "wandb").glob("offline-run-*")), "no offline wandb run"
    assert (tmp_path / "metrics.csv").read_text().startswith("step,")


def test_a_third_party_env_trains_by_module_colon_id(tmp_path, fixtures_on_path):
    result = train(compose("debug=toy", "agent=reinforce", "env.env_id=thirdparty_prefs:Exclaim-v0",
                           "env.max_new_tokens=4", "eval.baseline=false"), tmp_path)
    assert result["env_id"] == "thirdparty_prefs:Exclaim-v0" and "score" in result["metrics"]


def test_offline_agent_without_rollouts_trains(tmp_path):
    """DPO on its own pairs with sample_rollouts=false returns no rollout; the loop must cope."""
    cfg = compose("debug=toy", "agent=dpo", "agent.config.tokenizer=prefgym/toy-chars",
                  "agent.config.num_pairs=16", "agent.config.sample_rollouts=false")
    train(cfg, tmp_path)
    assert (tmp_path / "eval.json").exists() and (tmp_path / "metrics.csv").exists()
