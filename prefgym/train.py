"""``prefgym train``: train one agent on one preference env, evaluate it, keep everything.

A Hydra app over ``conf/`` (groups ``env/ agent/ policy/ preference/ logger/ experiment/
debug/``); every component is a ``_target_`` node, and agents are reached only that way
(prefgym never imports ``agents``). The run directory keeps the resolved ``config.yaml``,
``run_info.json`` (code revision, package versions, command line), ``metrics.jsonl/csv``,
``samples.jsonl``, ``checkpoints/``, ``plots/training.png`` and ``eval.json``.

Usage:
    $ prefgym train experiment=pep8_ppo              # the main job: PPO on PEP8 from prefgym/tiny-code
    $ prefgym train                                  # the same groups with the generic defaults
    $ prefgym train agent=grpo debug=fast            # any agent end to end in < 1 min
    $ prefgym train -m agent=ppo,grpo seed=0,1       # a sweep
    $ prefgym train hydra.run.dir=runs/x resume=true # continue a killed run
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from prefgym.utils.config import conf_dir

CONF_DIR = conf_dir()
PACKAGES = ("prefgym", "torch", "transformers", "gymnasium", "numpy", "hydra-core", "omegaconf", "wandb",
            "tokenizers", "safetensors", "stable-baselines3", "pycodestyle")


class ConfigError(ValueError):
    """An incompatible or unknown setting, reported before any training starts."""


# -- building the pieces ------------------------------------------------------------------
def build_env(cfg: DictConfig, num_envs: int, split: str = "train") -> Any:
    """The env of ``cfg.env`` with ``num_envs`` synchronous episodes on the prompt ``split``.

    ``cfg.preference`` (when set) replaces the env's reward, and the env's own scorer is kept
    as the held-out gold score, so over-optimisation of a proxy is measurable.
    """
    import gymnasium as gym
    from hydra.utils import get_method

    import prefgym  # noqa: F401  (registers the built-in ids)

    kwargs = OmegaConf.to_container(cfg.env, resolve=True)
    target = kwargs.pop("_target_")
    kwargs.update(num_envs=num_envs, split=split)
    if split != "train":
        kwargs["prompt_order"] = "sequential"
    env_id = kwargs["env_id"]
    registered = env_id
    if ":" in env_id:  # "their_pkg:Task-v0": importing the module registers its ids (as gymnasium.make does)
        import importlib

        module, registered = env_id.split(":", 1)
        importlib.import_module(module)
    if registered not in gym.registry:
        known = sorted(k for k in gym.registry if k.startswith("prefgym/"))
        raise ConfigError(f"unknown env id {env_id!r}; registered prefgym envs: {known} "
                          "(a third-party env is 'module:Name-v0')")
    if cfg.get("preference") is not None:
        kwargs["preference"] = OmegaConf.to_container(cfg.preference, resolve=True)
        kwargs.setdefault("gold_preference", gym.spec(registered).kwargs.get("preference"))
    return get_method(target)(**kwargs)


def build_policy(cfg: DictConfig, env: Any) -> Any:
    """Instantiate ``cfg.policy`` and check that its vocabulary matches the env's tokenizer."""
    from hydra.utils import instantiate

    policy = instantiate(cfg.policy)
    tokenizer = getattr(env, "unwrapped", env).tokenizer
    vocab = getattr(policy.config, "vocab_size", None)
    if vocab != len(tokenizer):
        raise ConfigError(
            f"policy vocabulary ({vocab} tokens, from policy={cfg.policy.get('_target_')}"
            f"{' ' + str(cfg.policy.get('name_or_path') or cfg.policy.get('tokenizer') or '')}) does not match "
            f"the env's tokenizer ({len(tokenizer)} tokens, {cfg.env.env_id}); pick a policy trained with "
            f"that tokenizer, e.g. policy.tokenizer=<the env's tokenizer> for a random-init GPT-2"
        )
    return policy


def build_agent(cfg: DictConfig, policy: Any) -> Any:
    """Instantiate ``cfg.agent`` around ``policy`` (clear errors for unknown or shadowed agents)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from prefgym.agent import check_agent

    target = str(cfg.agent.get("_target_", ""))
    if target.startswith("agents."):
        _check_agents_package()
    try:
        agent = instantiate(cfg.agent, policy=policy)
    except InstantiationException as err:
        known = sorted(p.stem for p in (CONF_DIR / "agent").glob("*.yaml"))
        raise ConfigError(f"could not build agent {target!r}: {err}\nknown agents (agent=...): {known}") from err
    return check_agent(agent)


def _check_agents_package() -> None:
    import importlib

    try:
        module = importlib.import_module("agents")
    except ImportError as err:
        raise ConfigError("the `agents` package is not importable: install prefgym (pip install -e .) "
                          "or run from the prefgym checkout") from err
    if not getattr(module, "PREFGYM_AGENTS", False):
        raise ConfigError(
            f"`agents` resolves to {getattr(module, '__file__', module)!r}, which is not prefgym's agents "
            "package: another installed package named `agents` shadows it. Uninstall that package "
            "or put prefgym's checkout first on sys.path."
        )


# -- run bookkeeping ------------------------------------------------------------------------
def run_info(argv: list[str] | None = None) -> dict[str, Any]:
    """Code revision (git sha, dirty flag), package versions, python, platform and command line."""
    from importlib import metadata

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    info: dict[str, Any] = {"git_sha": None, "git_dirty": None, "versions": versions,
                            "python": platform.python_version(), "platform": platform.platform(),
                            "argv": list(sys.argv if argv is None else argv)}
    root = Path(__file__).resolve().parents[1]
    try:
        info["git_sha"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                         timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10, check=True).stdout
        info["git_dirty"] = bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        pass  # not a git checkout (an installed wheel): versions still pin the code
    return info


def _prepare_run_dir(cfg: DictConfig, run_dir: Path) -> int:
    """Write config and run info; on ``resume`` check the config and return the step to resume from."""
    from prefgym.checkpoint import latest_checkpoint, remove_partial
    from prefgym.utils.io import atomic_write_json, atomic_write_text

    ckpt_dir = run_dir / "checkpoints"
    remove_partial(ckpt_dir)
    latest = latest_checkpoint(ckpt_dir)
    resolved = OmegaConf.to_yaml(cfg, resolve=True)
    if latest is not None and not cfg.resume:
        raise ConfigError(f"{run_dir} already holds checkpoints ({latest.name}); pass resume=true to continue "
                          "it, or choose a new hydra.run.dir")
    if latest is not None:
        old = OmegaConf.load(run_dir / "config.yaml")
        old.resume, current = True, OmegaConf.create(resolved)
        if OmegaConf.to_yaml(old) != OmegaConf.to_yaml(current):
            raise ConfigError(f"resume=true with a config that differs from the one in {run_dir}/config.yaml; "
                              "resume with the same overrides (or start a new run)")
    atomic_write_text(run_dir / "config.yaml", resolved)
    atomic_write_json(run_dir / "run_info.json", run_info())
    return 0 if latest is None else int(json.loads((latest / "state.json").read_text())["step"])


# -- the run ------------------------------------------------------------------------------
def train(cfg: DictConfig, run_dir: str | os.PathLike) -> dict[str, Any]:
    """Train ``cfg.agent`` on ``cfg.env`` for ``cfg.iterations``, checkpointing, then evaluate; return eval.json."""
    import torch
    from hydra.utils import instantiate

    from prefgym.checkpoint import latest_checkpoint, load_checkpoint
    from prefgym.utils.torch_threads import configure_threads

    configure_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    start = _prepare_run_dir(cfg, run_dir)
    env = build_env(cfg, num_envs=int(cfg.agent.config.batch_size))
    agent = build_agent(cfg, build_policy(cfg, env))
    state: dict[str, Any] = {"env_steps": 0, "elapsed_s": 0.0}
    if start:
        state = load_checkpoint(latest_checkpoint(run_dir / "checkpoints"), agent)
    # _partial_: the run config holds _target_ nodes that Hydra must not instantiate.
    make_tracker = instantiate(cfg.logger, run_dir=str(run_dir), total=int(cfg.iterations), start=start,
                               _partial_=True)
    tracker = make_tracker(run_config=OmegaConf.to_container(cfg, resolve=True))
    train_info = train_loop(cfg, agent, env, tracker, run_dir, start, state)
    if cfg.eval.enabled:
        result = evaluate_run(cfg, run_dir, agent=agent, extra={"train": train_info})
        tracker.summary({f"eval/{k}": v for k, v in result["metrics"].items()})
        tracker.finish()
    else:
        result = {"metrics": tracker.finish(), "train": train_info}
    print_summary(result, run_dir)
    return result


def train_loop(cfg: DictConfig, agent: Any, env: Any, tracker: Any, run_dir: Path, start: int,
               state: dict[str, Any]) -> dict[str, Any]:
    """Iterations ``start .. cfg.iterations-1``: train step, log, samples, periodic atomic checkpoints."""
    from prefgym.checkpoint import save_checkpoint

    batch_size = int(cfg.agent.config.batch_size)
    t_start = time.perf_counter() - float(state["elapsed_s"])  # a resumed run keeps counting
    cpu_start = time.process_time() - float(state.get("cpu_s", 0.0))
    env_steps = int(state["env_steps"])
    for iteration in range(start, int(cfg.iterations)):
        t0 = time.perf_counter()
        rollout, metrics = agent.train_step(env, iteration)
        env_steps += 0 if rollout is None else rollout.num_tokens  # offline agents (DPO on a dataset) sample nothing
        metrics.update({"charts/env_steps": env_steps, "charts/iteration_s": time.perf_counter() - t0,
                        "charts/cpu_s": time.process_time() - cpu_start,
                        "charts/samples_per_s": batch_size / max(time.perf_counter() - t0, 1e-9)})
        tracker.log(iteration, metrics)
        if rollout is not None and iteration % int(cfg.log.samples_every) == 0:
            tracker.log_samples(iteration, rollout.prompts, rollout.completions, rollout.scores.tolist())
        done = iteration + 1
        if done % int(cfg.checkpoint.every) == 0 or done == int(cfg.iterations):
            save_checkpoint(run_dir / "checkpoints", agent, step=done, keep=int(cfg.checkpoint.keep),
                            extra={"env_steps": env_steps, "elapsed_s": time.perf_counter() - t_start,
                                   "cpu_s": time.process_time() - cpu_start})
    return {"iterations": int(cfg.iterations), "env_steps": env_steps,
            "wall_time_s": round(time.perf_counter() - t_start, 2),
            "cpu_time_s": round(time.process_time() - cpu_start, 2)}


def evaluate_run(cfg: DictConfig, run_dir: str | os.PathLike, agent: Any = None, checkpoint: str | None = None,
                 out: str | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate ``agent`` (or rebuild it from the run's latest checkpoint) and write ``eval.json``."""
    from types import SimpleNamespace

    from prefgym.checkpoint import latest_checkpoint, load_checkpoint
    from prefgym.evaluate import DIRECTIONS, SCHEMA, checksum, env_spec_of, evaluate_agent, sampling_of
    from prefgym.rollout import generate_rollout
    from prefgym.utils.io import atomic_write_json

    run_dir = Path(run_dir)
    env = build_env(cfg, num_envs=int(cfg.eval.batch_size), split="eval")
    base = build_policy(cfg, env)
    if agent is None:
        agent = build_agent(cfg, build_policy(cfg, env))
        checkpoint = checkpoint or latest_checkpoint(run_dir / "checkpoints")
        if checkpoint is not None:
            load_checkpoint(checkpoint, agent, restore_rng=False)
    checkpoint = checkpoint or latest_checkpoint(run_dir / "checkpoints")
    base = base.to(next(agent.policy.parameters()).device).eval()
    heldout = OmegaConf.to_container(cfg.eval.heldout, resolve=True)
    n, seed = int(cfg.eval.num_samples), int(cfg.eval.seed)
    result = {"schema": SCHEMA, "env_id": cfg.env.env_id, "env_spec": env_spec_of(env), "prompt_split": "eval",
              "num_samples": n, "seed": seed, "agent": {"name": _choice("agent", cfg), "_target_": cfg.agent._target_},
              "config": OmegaConf.to_container(cfg, resolve=True), "directions": DIRECTIONS,
              "checkpoint": {"path": None if checkpoint is None else str(checkpoint), "sha256": checksum(checkpoint)}}
    evaluated = evaluate_agent(agent, env, base, num_samples=n, seed=seed, heldout=heldout)
    result.update(metrics=evaluated["metrics"], samples=evaluated["samples"], cost=evaluated["cost"])
    if getattr(getattr(agent, "config", None), "n", None):  # best-of-n: sampled KL is 0, report the bound
        from math import log

        k = int(agent.config.n)
        result["metrics"]["kl_to_base_best_of_n_bound"] = log(k) - (k - 1) / k
    if cfg.eval.baseline:
        # The base policy is sampled with the agent's decoding (temperature, blocked tokens).
        temperature, blocked = sampling_of(agent)
        base_agent = SimpleNamespace(policy=base, config=SimpleNamespace(temperature=temperature),
                                     blocked_token_ids=blocked, act=lambda e, prompts, seed: generate_rollout(
            base, e, temperature=temperature, blocked_token_ids=blocked, prompts=prompts, seed=seed))
        result["base"] = evaluate_agent(base_agent, env, base, num_samples=n, seed=seed, heldout=heldout)["metrics"]
    result["cost"]["device"] = str(next(agent.policy.parameters()).device)
    result["run_info"] = run_info()
    result.update(extra or {})
    atomic_write_json(Path(out) if out else run_dir / "eval.json", result)
    return result


def _choice(group: str, cfg: DictConfig) -> str | None:
    try:
        from hydra.core.hydra_config import HydraConfig

        return HydraConfig.get().runtime.choices.get(group)
    except ValueError:  # not inside a Hydra app (compose API, prefgym evaluate)
        return str(cfg.get("agent_name", None) or cfg.agent._target_.rsplit(".", 1)[-1])


def print_summary(result: dict[str, Any], run_dir: Path) -> None:
    """A rich table: base vs trained for each eval metric, and where the files are."""
    from rich.console import Console
    from rich.table import Table

    metrics, base = result.get("metrics") or {}, result.get("base") or {}
    table = Table(title=f"prefgym train — {run_dir}")
    for column in ("metric", "base policy", "trained", "change"):
        table.add_column(column, justify="right" if column != "metric" else "left")
    for key, value in metrics.items():
        if not isinstance(value, (int, float)):
            continue
        before = base.get(key)
        # A relative change of a KL (~0 for the base policy by definition) says nothing.
        relative = before is not None and abs(before) >= 1e-6 and not key.startswith("kl")
        change = f"{(value - before) / abs(before):+.1%}" if relative else ""
        table.add_row(key, "" if before is None else f"{before:.5g}", f"{value:.5g}", change)
    console = Console()
    console.print(table)
    if "train" in result:
        t = result["train"]
        console.print(f"trained {t['iterations']} iterations, {t['env_steps']} env steps in {t['wall_time_s']:.0f} s "
                      f"wall ({t['cpu_time_s']:.0f} s CPU)")
    console.print(f"metrics: {run_dir / 'metrics.csv'}   plot: {run_dir / 'plots' / 'training.png'}   "
                  f"eval: {run_dir / 'eval.json'}")


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    train(cfg, HydraConfig.get().runtime.output_dir)


def cli(argv: list[str] | None = None) -> int:
    """Entry point of ``prefgym train`` (Hydra parses ``argv``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    sys.argv = ["prefgym train", *argv]
    _main()
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
