"""The ``prefgym pretrain`` app: composes, trains a tiny policy end to end, refuses bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from prefgym.pretrain import CONF_DIR, compose, run

FAST = ["policy=gpt2-1m", "corpus.max_files=3", "train.steps=3", "train.batch_size=2", "train.progress=false",
        "train.checkpoint_every=2", "block_size=64"]
FAST_EVAL = ["eval.n_prompts=2", "eval.k=2", "eval.n_unconditional=2", "eval.max_new_tokens=8", "eval.max_ppl_blocks=2"]


@pytest.mark.parametrize("group", ["policy", "objective", "corpus"])
def test_every_preset_composes_and_instantiates(group):
    from hydra.utils import instantiate

    for path in sorted((CONF_DIR / group).glob("*.yaml")):
        cfg = compose([f"{group}={path.stem}"])
        if group == "objective":
            assert instantiate(cfg.objective).name == path.stem
        elif group == "policy" and "gpt2" in path.stem:
            assert instantiate(cfg.policy).config.vocab_size == 8192


def test_end_to_end_conditional_run_writes_model_and_results(tmp_path):
    cfg = compose([*FAST, *FAST_EVAL, "objective=conditional", f"run_dir={tmp_path}"])
    results = run(cfg)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["objective"] == "conditional" and saved["eval"]["conditional"] is True
    assert saved["eval"]["perplexity"] > 1
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["prefgym_conditional"] is True
    assert results["train"]["step"] == 3


def test_resume_with_changed_config_names_the_difference(tmp_path):
    run(compose([*FAST, "eval.enabled=false", f"run_dir={tmp_path}"]))
    ckpt = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(ValueError, match=r"train.lr: checkpoint=0.001 now=0.002"):
        run(compose([*FAST, "eval.enabled=false", f"run_dir={tmp_path}", "resume=true", "train.lr=2e-3"]))
    assert (tmp_path / "checkpoint.pt").read_bytes() == ckpt


def test_empty_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="corpus 'code/train' is empty"):
        run(compose([*FAST, "corpus.max_files=0", f"run_dir={tmp_path}"]))
    assert not (tmp_path / "checkpoint.pt").exists()


def test_policy_with_a_smaller_vocabulary_is_refused(tmp_path):
    with pytest.raises(ValueError, match="vocabulary"):
        run(compose([*FAST, "policy.tokenizer=prefgym/toy-chars", f"run_dir={tmp_path}"]))


@pytest.mark.slow  # a fresh interpreter importing torch + transformers: ~15 s on a loaded 2-core CPU
def test_module_entry_point_runs(tmp_path):
    cmd = [sys.executable, "-m", "prefgym.pretrain", *FAST, "train.steps=1", "eval.enabled=false",
           f"run_dir={tmp_path}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "model" / "model.safetensors").exists()
