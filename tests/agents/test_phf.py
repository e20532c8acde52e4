"""The six PHF objectives against hand-computed values on tiny tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from agents import phf
from prefgym.models.blocks import TokenizedDocument

LOG4 = math.log(4.0)


def uniform(b: int = 1, t: int = 2, v: int = 4) -> torch.Tensor:
    return torch.zeros(b, t, v, requires_grad=True)  # every token has p = 1/v


def test_mle_ignores_masked_positions():
    logits = torch.tensor([[[0.0, math.log(3.0)], [5.0, 1.0]]])  # p(1) = 3/4 at t=0
    loss, _ = phf.mle_loss(logits, torch.tensor([[1, -100]]))
    assert loss.item() == pytest.approx(-math.log(0.75))


def test_unlikelihood_hand_computed():
    logits = torch.zeros(1, 2, 2)  # p = 0.5 everywhere
    labels = torch.tensor([[0, 1]])
    scores = torch.tensor([[0.0, -0.1]])  # first token good, second bad (threshold 0)
    loss, logs = phf.unlikelihood_loss(logits, labels, scores, threshold=0.0, alpha=0.5)
    expected = (-math.log(0.5) + 0.5 * -math.log(1 - 0.5)) / 2
    assert loss.item() == pytest.approx(expected)
    assert logs["good_fraction"].item() == pytest.approx(0.5)


def test_unlikelihood_pushes_bad_tokens_down():
    logits = torch.zeros(1, 1, 3, requires_grad=True)
    loss, _ = phf.unlikelihood_loss(logits, torch.tensor([[2]]), torch.tensor([[-1.0]]), alpha=1.0)
    loss.backward()
    assert logits.grad[0, 0, 2] > 0  # gradient descent lowers the bad token's logit


def test_rwr_weights_are_exp_score_over_beta():
    loss, logs = phf.rwr_loss(uniform(), torch.tensor([[0, 1]]), torch.tensor([[0.0, -10.0]]), beta=10.0)
    assert loss.item() == pytest.approx(LOG4 * (1 + math.exp(-1)) / 2)
    assert logs["weight_mean"].item() == pytest.approx((1 + math.exp(-1)) / 2)


def test_rwr_clips_weights():
    loss, _ = phf.rwr_loss(uniform(), torch.tensor([[0, 1]]), torch.tensor([[100.0, 0.0]]), beta=1.0,
                           clip_weight_max=3.0)
    assert loss.item() == pytest.approx(LOG4 * (3 + 1) / 2)


def test_awr_hand_computed_and_value_gradient():
    values = torch.tensor([[0.5, -1.0]], requires_grad=True)
    scores = torch.tensor([[0.0, -1.0]])
    loss, logs = phf.awr_loss(uniform(), torch.tensor([[0, 1]]), scores, values, alpha=0.5, beta=1.0)
    lm = LOG4 * (math.exp(-0.5) + 1.0) / 2  # advantages -0.5 and 0
    value_loss = (0.5 ** 2 + 0.0) / 2
    assert loss.item() == pytest.approx(0.5 * lm + 0.5 * value_loss)
    assert logs["value_loss"].item() == pytest.approx(value_loss)
    loss.backward()
    # only the MSE term reaches the values (the weights use detached values): d/dv = (1-a) * 2 (v - s) / n
    assert values.grad[0].tolist() == pytest.approx([0.5 * 2 * 0.5 / 2, 0.0])


def test_awr_without_values_is_a_clear_error():
    with pytest.raises(ValueError, match="value head"):
        phf.awr_loss(uniform(), torch.tensor([[0, 1]]), torch.zeros(1, 2), None)


def doc(ids, starts, scores, doc_score=0.0) -> TokenizedDocument:
    return TokenizedDocument(np.array(ids), np.array(scores, dtype=np.float32), np.array(starts), doc_score, "d")


def test_add_control_tokens_before_each_segment():
    d = doc([10, 11, 12, 13, 0], [True, False, True, False, False], [0, 0, -1, -1, -1])
    out = phf.add_control_tokens(d, good_id=1, bad_id=2, threshold=0.0, drop_token_fraction=0.0)
    assert out.ids.tolist() == [1, 10, 11, 2, 12, 13, 0]
    assert out.scores.tolist() == [0, 0, 0, -1, -1, -1, -1]
    assert out.segment_start.tolist() == [True, False, False, True, False, False, False]


def test_drop_token_fraction_one_keeps_plain_text():
    d = doc([10, 11, 12], [True, True, True], [0, -1, 0])
    out = phf.add_control_tokens(d, 1, 2, drop_token_fraction=1.0)
    assert out.ids.tolist() == [10, 11, 12]


def test_drop_token_fraction_is_roughly_respected():
    n = 4000
    d = doc(list(range(10, 10 + n)), [True] * n, [0.0] * n)
    out = phf.add_control_tokens(d, 1, 2, drop_token_fraction=0.25, rng=np.random.default_rng(1))
    assert (len(out.ids) - n) / n == pytest.approx(0.75, abs=0.03)


def test_filtering_keeps_documents_at_or_above_threshold():
    docs = [doc([5], [True], [0], doc_score=s) for s in (0.0, -0.001, -0.01)]
    kept = phf.filter_documents(docs, threshold=-0.002361)
    assert [d.doc_score for d in kept] == [0.0, -0.001]
    with pytest.raises(ValueError, match="keeps no documents"):
        phf.filter_documents(docs, threshold=1.0)


def test_conditional_prepare_needs_control_tokens():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    plain = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"<|endoftext|>": 0, "a": 1}, "a")),
                                    eos_token="<|endoftext|>")
    with pytest.raises(ValueError, match="add_special_tokens"):
        phf.ConditionalConfig().prepare([doc([1], [True], [0])], plain)


def test_paper_defaults_in_presets():
    from omegaconf import OmegaConf

    from prefgym.pretrain import CONF_DIR

    for name, config in phf.OBJECTIVES.items():
        preset = OmegaConf.load(CONF_DIR / "objective" / f"{name}.yaml")
        built = phf.__dict__[preset["_target_"].split(".")[-1]](**{k: v for k, v in preset.items() if k != "_target_"})
        assert built == config, f"conf/objective/{name}.yaml disagrees with the dataclass defaults"
