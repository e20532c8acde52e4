"""``prefgym reward ...``: train and inspect learned reward models, and measure over-optimisation.

Subcommands:
  * ``prefgym reward train [overrides]`` — a Hydra app over ``conf/reward/train.yaml``
    (groups ``data/`` and ``backbone/``); writes the model (safetensors), ``metrics.json``
    and ``reliability.png`` into ``run_dir``.
  * ``prefgym reward overopt [overrides]`` — a Hydra app over ``conf/reward/overopt.yaml``:
    optimise a policy against a learned (proxy) reward and plot proxy and gold reward
    against KL to the base policy (Gao et al. 2022).
  * ``prefgym reward eval PATH DATA`` — held-out metrics of a saved model on comparisons.

Examples:
    $ prefgym reward train                                    # 5k noisy PEP8 pairs, tiny GPT-2
    $ prefgym reward train data=file data.train=prefs.jsonl backbone=minilm
    $ prefgym reward train export=prefgym/assets/reward_models/pep8-rm
    $ prefgym reward overopt                                  # best-of-n and PPO curves
    $ prefgym reward eval outputs/reward/x/model validation.jsonl
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from prefgym.utils.config import conf_dir

CONF_DIR = conf_dir() / "reward"
USAGE = """usage: prefgym reward <command> [args...]

commands:
  train     train a Bradley-Terry reward model (Hydra app: conf/reward/train.yaml)
  overopt   proxy vs gold reward against KL to the base policy (Hydra app: conf/reward/overopt.yaml)
  eval      prefgym reward eval MODEL_DIR COMPARISONS [--png PATH]
"""


def compose(config_name: str = "train", overrides: list[str] | None = None) -> Any:
    """The app's config with ``overrides``, without running it (for tests and notebooks).

    Example:
        >>> compose("train", ["backbone=minilm"]).train.freeze_backbone
        True
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides or []))


def _comparisons(spec: Any) -> list:
    """Comparisons from a ``_target_`` generator, a path, or load_dataset kwargs."""
    from omegaconf import DictConfig, OmegaConf

    from prefgym.reward.data import load_comparisons

    if isinstance(spec, DictConfig) and "_target_" in spec:
        from hydra.utils import instantiate

        out = instantiate(spec, _convert_="all")
        if isinstance(out, tuple):  # policy_pairs also returns how many identical pairs it dropped
            out, dropped = out
            print(f"dropped {dropped} sampled pairs whose two completions were identical")
        return out
    return load_comparisons(OmegaConf.to_container(spec) if isinstance(spec, DictConfig) else spec)


def load_data(cfg: Any) -> tuple[list, list]:
    """(train, validation) comparisons for a ``data`` config node."""
    from prefgym.reward.data import split_by_prompt, validation_split_of

    if cfg.validation is not None:
        return _comparisons(cfg.train), _comparisons(cfg.validation)
    if isinstance(cfg.train, str) and validation_split_of(cfg.train):
        from prefgym.reward.data import load_splits

        return load_splits(cfg.train)
    return split_by_prompt(_comparisons(cfg.train), cfg.validation_fraction, cfg.seed if "seed" in cfg else 0)


def run_train(cfg: Any) -> dict:
    """Train, evaluate and save a reward model as ``cfg`` says; return the final metrics."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from prefgym.reward.data import write_jsonl
    from prefgym.reward.model import RewardModel, save_reward_model
    from prefgym.reward.train import evaluate_reward_model, train_reward_model
    from prefgym.utils.io import atomic_write_json
    from prefgym.utils.torch_threads import configure_threads

    configure_threads(cfg.num_threads)
    run_dir = Path(cfg.run_dir)
    start = time.time()
    train, validation = load_data(cfg.data)
    print(f"{len(train)} training and {len(validation)} validation comparisons ({time.time() - start:.0f}s)")
    if cfg.save_data:
        write_jsonl(run_dir / "train.jsonl", train)
        write_jsonl(run_dir / "validation.jsonl", validation)
    backbone = OmegaConf.to_container(cfg.backbone.spec, resolve=True) if not isinstance(cfg.backbone.spec, str) else cfg.backbone.spec
    model = RewardModel.build(backbone, cfg.backbone.tokenizer, **OmegaConf.to_container(cfg.model, resolve=True)).to(cfg.device)
    config = instantiate(cfg.train)
    history = train_reward_model(model, train, validation, config, on_epoch=lambda m: print(json.dumps(m)))
    scorer = None  # final metrics on the full model, also for a frozen backbone
    final = evaluate_reward_model(model, validation, config.eval_batch_size, scorer, str(run_dir / "reliability.png"))
    final["train_seconds"] = round(time.time() - start, 1)
    meta = {"metrics": final, "recipe": {"command": "prefgym reward train " + " ".join(cfg.get("argv", [])),
                                         "config": OmegaConf.to_container(cfg, resolve=True)}}
    save_reward_model(model, run_dir / "model", meta)
    if cfg.export:
        save_reward_model(model, cfg.export, meta)
    atomic_write_json(run_dir / "metrics.json", {"final": final, "history": history})
    print(json.dumps({"final": final}, indent=2))
    return final


def _hydra_app(config_name: str, runner: Any, argv: list[str]) -> int:
    import hydra
    from omegaconf import DictConfig, open_dict

    @hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")
    def _main(cfg: DictConfig) -> None:
        from hydra.core.hydra_config import HydraConfig

        with open_dict(cfg):
            cfg.argv = [a for a in argv if not a.startswith("hydra.")]
            cfg.run_dir = HydraConfig.get().runtime.output_dir  # a multirun job writes into its own subdir
        runner(cfg)

    saved = sys.argv
    sys.argv = [f"prefgym reward {config_name}", *argv]
    try:
        _main()
    finally:
        sys.argv = saved
    return 0


def run_eval(argv: list[str]) -> int:
    """``prefgym reward eval MODEL COMPARISONS [--png PATH]``: print held-out metrics as JSON."""
    import argparse

    from prefgym.reward.data import load_comparisons
    from prefgym.reward.model import load_reward_model
    from prefgym.reward.train import evaluate_reward_model

    parser = argparse.ArgumentParser(prog="prefgym reward eval")
    parser.add_argument("model")
    parser.add_argument("comparisons")
    parser.add_argument("--png", default=None, help="write a reliability diagram here")
    args = parser.parse_args(argv)
    model = load_reward_model(args.model)
    print(json.dumps(evaluate_reward_model(model, load_comparisons(args.comparisons), reliability_png=args.png), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``prefgym reward <command> ...``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "train":
        return _hydra_app("train", run_train, rest)
    if command == "overopt":
        from prefgym.reward.overopt import run_overopt

        return _hydra_app("overopt", run_overopt, rest)
    if command == "eval":
        return run_eval(rest)
    print(f"prefgym reward: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
