"""``prefgym pretrain``: train a tiny base policy, or a policy with one of the PHF objectives.

A Hydra app over ``conf/pretrain.yaml`` (groups ``policy/``, ``objective/``, ``corpus/``,
``pretrain_experiment/``). Objectives are reached only through ``_target_`` strings
(``agents.phf.*Config``), so prefgym itself never imports ``agents``.

Examples:
    $ prefgym pretrain                                   # MLE, 4x256 GPT-2, stdlib code
    $ prefgym pretrain objective=conditional policy=tiny-code train.steps=300
    $ prefgym pretrain run_dir=outputs/pretrain/x resume=true   # continue a killed run
    $ prefgym pretrain pretrain_experiment=phf_pep8      # all six objectives + docs/phf.md
    $ python -m prefgym.pretrain policy=gpt2-1m train.steps=20 eval.enabled=false
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from prefgym.utils.config import conf_dir

CONF_DIR = conf_dir()
# Top-level keys that never change a run's result, so resuming may change them.
NOT_PART_OF_RUN = ("resume", "num_threads", "eval", "export", "report", "run_dir", "argv")


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def run_config(cfg: Any) -> dict[str, Any]:
    """The settings that determine a run's result, flattened (``train.lr``...), for resume checks."""
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(cfg, resolve=True)
    return _flat({k: v for k, v in plain.items() if k not in NOT_PART_OF_RUN})


def build_blocks(cfg: Any, tokenizer: Any, objective: Any, split: str) -> dict:
    """Load, score, tokenize, (objective-)prepare and cut the corpus split into blocks."""
    from hydra.utils import instantiate

    from prefgym.data.corpora import load_corpus, score_segments
    from prefgym.models.blocks import make_blocks, tokenize_documents

    docs = load_corpus(cfg.corpus.kind, split, cfg.corpus.max_files)
    scorer = cfg.corpus.scorer
    if scorer is not None:  # null: unscored (score 0), enough for MLE base models
        score_segments(docs, scorer if isinstance(scorer, str) else instantiate(scorer))
    tdocs = tokenize_documents(docs, tokenizer)
    if split == "train":
        tdocs = objective.prepare(tdocs, tokenizer, seed=cfg.train.seed)
    return make_blocks(tdocs, cfg.block_size)


def _check_vocab(model: Any, tokenizer: Any) -> None:
    if model.config.vocab_size < len(tokenizer):
        raise ValueError(
            f"policy vocabulary ({model.config.vocab_size}) is smaller than the tokenizer's ({len(tokenizer)}); "
            "use the tokenizer the policy was trained with (tokenizer=...) or a policy built for this tokenizer"
        )


def run(cfg: Any) -> dict[str, Any]:
    """Train (or resume), save the policy to ``run_dir/model``, evaluate, export; return the results."""
    from hydra.utils import instantiate

    from prefgym.models.policy import count_parameters, save_policy
    from prefgym.models.pretraining import TrainSettings, pretrain
    from prefgym.tokenization import load_tokenizer
    from prefgym.utils.io import atomic_write_json
    from prefgym.utils.torch_threads import configure_threads

    configure_threads(cfg.num_threads)
    out = Path(cfg.run_dir)
    tokenizer = load_tokenizer(cfg.tokenizer)
    objective = instantiate(cfg.objective)
    model = instantiate(cfg.policy)
    _check_vocab(model, tokenizer)
    blocks = build_blocks(cfg, tokenizer, objective, "train")
    n_params = count_parameters(model)
    print(f"[pretrain] objective={objective.name} params={n_params:,} blocks={len(blocks['input_ids'])} -> {out}")
    settings = TrainSettings(**cfg.train)
    summary = pretrain(model, objective, blocks, settings, out, config=run_config(cfg), resume=cfg.resume)
    model.config.prefgym_conditional = bool(objective.conditional)
    model.config.prefgym_objective = objective.name
    recipe = {"command": "prefgym pretrain " + " ".join(cfg.get("argv", [])), "objective": objective.name,
              "parameters": n_params, "steps": summary["step"], "tokens_per_s": round(summary["tokens_per_s"], 1)}
    save_policy(model, tokenizer, out / "model", recipe, value_head=summary.pop("value_head"))
    results: dict[str, Any] = {"objective": objective.name, "parameters": n_params,
                               "train": {k: v for k, v in summary.items()}}
    if cfg.eval.enabled:
        results["eval"] = evaluate(cfg, model, tokenizer, objective)
    atomic_write_json(out / "results.json", results)
    if cfg.export:
        save_policy(model, tokenizer, cfg.export, recipe)
        print(f"[pretrain] exported to {cfg.export}")
    return results


def evaluate(cfg: Any, model: Any, tokenizer: Any, objective: Any) -> dict[str, Any]:
    """Held-out evaluation of the trained policy (see ``prefgym.models.evaluation``)."""
    from hydra.utils import instantiate

    from prefgym.data.prompts import load_prompts
    from prefgym.models.evaluation import evaluate_policy

    heldout = build_blocks(cfg, tokenizer, objective, "heldout")
    prompts = load_prompts(dict(cfg.eval.prompts))["eval"][: cfg.eval.n_prompts]
    return evaluate_policy(model, tokenizer, instantiate(cfg.eval.scorer), heldout, prompts,
                           n_unconditional=cfg.eval.n_unconditional, k=cfg.eval.k,
                           max_new_tokens=cfg.eval.max_new_tokens, max_ppl_blocks=cfg.eval.max_ppl_blocks,
                           seed=cfg.train.seed)


def compose(overrides: list[str] | None = None) -> Any:
    """The app's config with ``overrides``, without running it (for tests and notebooks).

    Example:
        >>> compose(["objective=awr"]).objective.alpha
        0.05
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name="pretrain", overrides=list(overrides or []))


def cli(argv: list[str] | None = None) -> int:
    """Run the Hydra app with ``argv`` (the arguments after ``prefgym pretrain``)."""
    import hydra
    from omegaconf import DictConfig, open_dict

    argv = list(sys.argv[1:] if argv is None else argv)

    @hydra.main(config_path=str(CONF_DIR), config_name="pretrain", version_base="1.3")
    def _main(cfg: DictConfig) -> None:
        with open_dict(cfg):
            cfg.argv = [a for a in argv if not a.startswith("hydra.")]
        run(cfg)

    saved = sys.argv
    sys.argv = ["prefgym pretrain", *argv]
    try:
        _main()
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
