"""Every config under conf/ composes, and every ``_target_`` in it is built.

Primary configs (``config``, ``pretrain``, ``reward/train``) are composed once per option of
each of their groups. Then every ``_target_`` node is handled:

* the training app's components (env, policy, agent, preference, logger) are instantiated for
  real, the way ``prefgym train`` builds them;
* other nodes (pretraining objectives, reward-model data generators that would sample thousands
  of pairs, ...) are checked without running them: the target must import and the node's keys
  must bind to its signature, so a typo or a renamed argument fails here.

A YAML file that no primary config reaches fails the test too, so a new config cannot be missed.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml
from omegaconf import DictConfig, OmegaConf

from prefgym.train import CONF_DIR



def find_primaries() -> dict[str, tuple[Path, str]]:
    """Primary configs: the YAML files of conf/ and of any conf/ subfolder that has group folders
    of its own (e.g. conf/reward/ with data/ and backbone/); id -> (config dir, config name)."""
    dirs = [CONF_DIR] + sorted(d for d in CONF_DIR.iterdir() if d.is_dir() and any(x.is_dir() for x in d.iterdir()))
    return {str((d / p.stem).relative_to(CONF_DIR)): (d, p.stem) for d in dirs for p in sorted(d.glob("*.yaml"))}


PRIMARIES = find_primaries()
HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}


def groups_of(primary: str) -> dict[str, list[str]]:
    """Group -> options, for the groups named in ``primary``'s defaults list."""
    base, name = PRIMARIES[primary]
    defaults = (yaml.safe_load((base / f"{name}.yaml").read_text()) or {}).get("defaults", [])
    names = []
    for entry in defaults:
        if isinstance(entry, dict):
            names += [k.replace("optional ", "").replace("override ", "").strip() for k in entry]
    return {g: sorted(p.stem for p in (base / g).glob("*.yaml")) for g in names if (base / g).is_dir()}


def cases() -> list[tuple[str, str | None, str | None]]:
    out: list[tuple[str, str | None, str | None]] = []
    for primary in PRIMARIES:
        out.append((primary, None, None))
        out += [(primary, g, o) for g, options in groups_of(primary).items() for o in options]
    return out


def compose(primary: str, overrides: list[str]) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    base, name = PRIMARIES[primary]
    with initialize_config_dir(config_dir=str(base), version_base="1.3", job_name="test_configs"):
        return hydra_compose(name, overrides=overrides)


def test_every_yaml_file_is_reached_by_a_primary_config():
    reached = {base / f"{name}.yaml" for base, name in PRIMARIES.values()}
    for primary, (base, _) in PRIMARIES.items():
        for group in groups_of(primary):
            reached |= set((base / group).glob("*.yaml"))
    every = set(CONF_DIR.rglob("*.yaml"))
    assert every - reached == set(), f"configs that no primary config uses: {sorted(every - reached)}"


@functools.lru_cache(maxsize=8)
def _policy(spec: str) -> Any:
    from hydra.utils import instantiate

    return instantiate(OmegaConf.create(spec))


def _bind_check(node: Any, where: str) -> None:
    """Import every ``_target_`` under ``node`` and bind its keys to the target's signature."""
    from hydra._internal.utils import _locate

    if isinstance(node, dict):
        if "_target_" in node:
            target = _locate(node["_target_"])
            kwargs = {k: v for k, v in node.items() if k not in HYDRA_KEYS}
            # bind_partial: callers may pass more at run time (the trainer adds num_envs, policy, ...);
            # an unknown or misspelt key still fails.
            inspect.signature(target).bind_partial(*node.get("_args_", []), **kwargs)
        for key, value in node.items():
            _bind_check(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _bind_check(value, f"{where}[{i}]")


def _instantiate_train_components(cfg: DictConfig, tmp_path: Path, build_policy: bool) -> None:
    from hydra.utils import instantiate

    from prefgym.agent import check_agent
    from prefgym.train import build_env

    env = build_env(cfg, num_envs=2)
    assert env.num_envs == 2
    if build_policy:
        policy = _policy(OmegaConf.to_yaml(cfg.policy, resolve=True))
        assert policy.config.vocab_size > 0
    else:  # the group under test is not the policy: a tiny stand-in for the env's tokenizer keeps it fast
        import gymnasium as gym

        tokenizer = gym.spec(cfg.env.env_id).kwargs["tokenizer"]
        policy = _policy(f"{{_target_: prefgym.models.build_policy, tokenizer: '{tokenizer}', n_layer: 1, "
                         "n_embd: 16, n_head: 2, n_positions: 256}")
    check_agent(instantiate(cfg.agent, policy=policy))
    tracker = instantiate(cfg.logger, run_dir=str(tmp_path), total=1, progress=False, _partial_=True)
    tracker(mode="disabled").finish() if cfg.logger.get("wandb") else tracker().finish()
    if cfg.get("preference") is not None:
        scorer = instantiate(cfg.preference)
        assert len(scorer.score(["1 + 1 ="], [" 2"])) == 1  # a prompt every scorer accepts


@pytest.mark.parametrize("primary,group,option", cases(),
                         ids=[f"{p}:{g}={o}" if g else p for p, g, o in cases()])
def test_config_composes_and_instantiates(primary, group, option, tmp_path):
    overrides = [] if group is None else [f"{group}={option}"]
    cfg = compose(primary, overrides)
    plain = OmegaConf.to_container(cfg, resolve=False, throw_on_missing=False)
    for key, node in plain.items():
        if key in ("hydra", "run_dir"):
            continue
        resolved = OmegaConf.to_container(cfg[key], resolve=True, throw_on_missing=False) \
            if isinstance(cfg[key], DictConfig) else node
        _bind_check(resolved, key)
    if primary == "config":
        _instantiate_train_components(cfg, tmp_path, build_policy=group in (None, "policy", "experiment", "debug"))
