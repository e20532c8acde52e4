"""Control tokens and conditional sampling helpers; evaluation helpers (ast.parse, trimming)."""

from __future__ import annotations

import pytest
import torch

from prefgym.models import build_policy
from prefgym.models.control import bad_words_ids, blocked_ids, control_token_ids, mask_logits
from prefgym.models.evaluation import parses, sample, trim_to_complete_lines, valid_prefix
from prefgym.tokenization import load_tokenizer


def test_ids_and_blocking_modes():
    tok = load_tokenizer("prefgym/bpe-8k")
    good, bad = control_token_ids(tok)
    assert tok.convert_ids_to_tokens([good, bad]) == ["<|good|>", "<|bad|>"]
    assert bad_words_ids(tok) == [[bad]] and blocked_ids(tok, "all") == [good, bad]
    with pytest.raises(ValueError, match="'bad' or 'all'"):
        blocked_ids(tok, "some")


def test_mask_logits_never_samples_blocked_ids():
    logits = torch.zeros(2, 5)
    logits[:, 1] = 100.0  # the blocked token would win every time
    probs = torch.softmax(mask_logits(logits, [1]), dim=-1)
    assert probs[:, 1].max().item() == 0.0 and logits[0, 1] == 100.0  # input untouched


def test_conditional_sampling_never_emits_the_bad_token():
    tok = load_tokenizer("prefgym/bpe-8k")
    model = build_policy(n_layer=1, n_embd=32, n_head=2, n_positions=64)
    start = torch.tensor([[tok.eos_token_id]])
    with torch.no_grad():  # point <|bad|>'s (tied) embedding along the hidden state: it becomes the argmax
        hidden = model(start, output_hidden_states=True).hidden_states[-1][0, -1]
        model.lm_head.weight[2] = 50 * hidden / hidden.norm()
        free = model.generate(start, do_sample=False, max_new_tokens=4, pad_token_id=0)
    assert 2 in free[0, 1:].tolist()  # sanity: unblocked, the model does emit <|bad|>
    model.config.prefgym_conditional = True
    texts = sample(model, tok, [""] * 4, max_new_tokens=12, conditional=True, seed=0)
    assert len(texts) == 4 and all("<|bad|>" not in t and "<|good|>" not in t for t in texts)
    with torch.no_grad():
        blocked = model.generate(start, do_sample=False, max_new_tokens=4, pad_token_id=0,
                                 bad_words_ids=bad_words_ids(tok))
    assert 2 not in blocked[0].tolist()


def test_trim_and_parse():
    assert trim_to_complete_lines("a = 1\nb = (") == "a = 1\n"
    assert trim_to_complete_lines("no newline") == ""
    assert parses("def f(x):\n", "    return x\n    y = (")
    assert not parses("def f(x):\n", "return")  # no complete line: nothing to credit
    assert not parses("", "x = = 1\n")


def test_valid_prefix_accepts_open_blocks_and_rejects_syntax_errors():
    assert valid_prefix("def f(x):", "\n    if x:\n")  # an open block parses once continued
    assert not parses("def f(x):", "\n    if x:\n")
    assert valid_prefix("def f(x):", '\n    """Doc\n    more')
    assert not valid_prefix("def f(x):", "\n    return x +\n")
    assert not valid_prefix("def f(x):", "\nreturn x\n")  # body not indented
    assert not valid_prefix("def f(x):", "\n    y = 1\n  z = 2\n")  # unindent to no outer level
    assert not valid_prefix("def f(x):", "\n    ")  # no completed line
