"""Pretraining loop: exact resume, refused config changes, nothing overwritten, NaN losses, value head."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from agents.phf import AWRConfig, MLEConfig
from prefgym.models import build_policy, load_policy, save_policy
from prefgym.models.blocks import batch_indices, make_blocks, tokenize_documents
from prefgym.models.pretraining import CHECKPOINT, TrainSettings, check_resume_config, lr_at, pretrain
from prefgym.tokenization import load_tokenizer

TINY = dict(n_layer=1, n_embd=32, n_head=2, n_positions=32)


def random_blocks(n: int = 12, t: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, 200, size=(n, t + 1))
    # The score of label t depends on input token t (as segment scores do), so V(prefix) can learn it.
    scores = np.where(ids[:, :-1] % 2 == 0, -1.0, 0.0).astype(np.float32)
    return {"input_ids": ids[:, :-1], "labels": ids[:, 1:], "token_scores": scores}


def settings(**kw) -> TrainSettings:
    base = dict(steps=6, batch_size=4, lr=3e-3, warmup_steps=2, checkpoint_every=2, log_every=1, progress=False)
    return TrainSettings(**{**base, **kw})


def weights(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    blocks = random_blocks()
    straight = build_policy(**TINY)
    pretrain(straight, MLEConfig(), blocks, settings(), tmp_path / "a")
    interrupted = build_policy(**TINY)
    first = pretrain(interrupted, MLEConfig(), blocks, settings(time_budget_s=0.0), tmp_path / "b")
    assert first["step"] == 1 and not first["finished"]  # stopped by the budget, checkpointed
    resumed = build_policy(**TINY)  # fresh process: weights come from the checkpoint
    pretrain(resumed, MLEConfig(), blocks, settings(), tmp_path / "b", resume=True)
    assert torch.allclose(weights(straight), weights(resumed))


def test_resume_with_a_different_config_is_refused_and_nothing_overwritten(tmp_path):
    blocks = random_blocks()
    pretrain(build_policy(**TINY), MLEConfig(), blocks, settings(steps=2), tmp_path)
    before = (tmp_path / CHECKPOINT).read_bytes()
    with pytest.raises(ValueError, match="lr: checkpoint=0.003 now=0.01"):
        pretrain(build_policy(**TINY), MLEConfig(), blocks, settings(steps=4, lr=1e-2), tmp_path, resume=True)
    with pytest.raises(FileExistsError, match="resume=true"):
        pretrain(build_policy(**TINY), MLEConfig(), blocks, settings(steps=2), tmp_path)
    assert (tmp_path / CHECKPOINT).read_bytes() == before


def test_check_resume_config_ignores_harmless_keys():
    check_resume_config({"lr": 1, "time_budget_s": 5}, {"lr": 1, "time_budget_s": None})
    with pytest.raises(ValueError, match="seed"):
        check_resume_config({"seed": 0}, {"seed": 1})


def test_nan_loss_stops_with_a_clear_error(tmp_path):
    class NaNObjective(MLEConfig):
        def loss(self, logits, labels, token_scores, values=None):
            return logits.sum() * float("nan"), {}

    with pytest.raises(FloatingPointError, match="lower lr"):
        pretrain(build_policy(**TINY), NaNObjective(), random_blocks(), settings(), tmp_path)
    assert not (tmp_path / CHECKPOINT).exists()


def test_awr_value_head_learns_the_scores(tmp_path):
    blocks = random_blocks(n=16)
    pretrain(build_policy(**TINY), AWRConfig(), blocks, settings(steps=40, batch_size=8, lr=1e-2), tmp_path)
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    first, last = np.mean([r["value_loss"] for r in log[:3]]), np.mean([r["value_loss"] for r in log[-3:]])
    assert last < 0.5 * first and last < 0.2  # scores are 0/-1 by parity; a constant predictor gets 0.25


def test_lr_schedule_warms_up_then_decays():
    s = TrainSettings(steps=100, lr=1.0, warmup_steps=10)
    assert lr_at(0, s) == pytest.approx(0.1) and lr_at(9, s) == pytest.approx(1.0)
    assert lr_at(99, s) == pytest.approx(0.1, abs=0.01)


def test_batches_depend_only_on_seed_and_step():
    a = [batch_indices(10, 4, step, seed=3).tolist() for step in range(5)]
    assert a == [batch_indices(10, 4, step, seed=3).tolist() for step in range(5)]
    assert sorted(a[0] + a[1]) == sorted(set(a[0] + a[1]))  # no repeats within an epoch


def test_make_blocks_aligns_scores_with_labels():
    from prefgym.data.corpora import Document

    tok = load_tokenizer("prefgym/bpe-8k")
    doc = Document("a = 1\nb=2\n" * 10, "d", [], [])
    doc.segments = doc.text.splitlines(keepends=True)
    doc.scores = [0.0 if i % 2 == 0 else -0.25 for i in range(len(doc.segments))]
    blocks = make_blocks(tokenize_documents([doc], tok), block_size=8)
    assert (blocks["labels"][:, :-1] == blocks["input_ids"][:, 1:]).all()
    text_of = {tok.decode([i]) for i, s in zip(blocks["labels"].flat, blocks["token_scores"].flat) if s < 0}
    assert "b" in text_of and "a" not in text_of
    with pytest.raises(ValueError, match="fewer than one block"):
        make_blocks(tokenize_documents([doc], tok), block_size=10_000)


def test_save_and_load_policy_round_trip(tmp_path):
    model = build_policy(**TINY)
    digest = save_policy(model, load_tokenizer("prefgym/bpe-8k"), tmp_path / "m", {"command": "x"})
    recipe = json.loads((tmp_path / "m" / "RECIPE.json").read_text())
    assert recipe["model_safetensors_sha256"] == digest and recipe["command"] == "x"
    loaded = load_policy(tmp_path / "m")
    assert torch.equal(weights(model), weights(loaded))
    assert load_tokenizer(str(tmp_path / "m")).eos_token_id == 0
    with pytest.raises(FileNotFoundError, match="shipped models"):
        load_policy("prefgym/no-such-model")


def test_indentation_token_carries_the_next_lines_score():
    from prefgym.data.corpora import Document

    tok = load_tokenizer("prefgym/bpe-8k")
    text = "class A:\n    def f(self):\n        return 1\n"
    doc = Document(text, "d", text.splitlines(keepends=True), [0.0, -0.1, -0.5])
    td = tokenize_documents([doc], tok)[0]
    pieces = [tok.decode([i]) for i in td.ids]
    indent = pieces.index("\n       ")  # BPE merges the newline with the next line's indentation
    assert td.scores[indent] == pytest.approx(-0.5) and td.segment_start[indent]
    assert pieces[td.segment_start.tolist().index(True, 1)] == "\n   "
