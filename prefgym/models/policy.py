"""Tiny GPT-2-style policies: build one from a config, or load a shipped / local / cached one.

Built-in names ``prefgym/<name>`` resolve to ``prefgym/assets/models/<name>/`` (a
``save_pretrained`` folder with safetensors weights and the tokenizer); anything else goes
to ``AutoModelForCausalLM.from_pretrained`` (local path, or a hub name already cached).

Example:
    >>> from prefgym.models import build_policy
    >>> model = build_policy("prefgym/bpe-8k", n_layer=1, n_embd=32, n_head=2, n_positions=64)
    >>> model.config.vocab_size, model.config.eos_token_id
    (8192, 0)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel


def build_policy(
    tokenizer: Any = "prefgym/bpe-8k",
    n_layer: int = 4,
    n_embd: int = 256,
    n_head: int = 4,
    n_positions: int = 256,
    dropout: float = 0.0,
    seed: int = 0,
) -> "PreTrainedModel":
    """A randomly initialised GPT-2 causal LM sized for ``tokenizer`` (name, path or object).

    Initialisation is seeded, so the same arguments give the same weights.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from prefgym.tokenization import load_tokenizer

    tok = load_tokenizer(tokenizer)
    if n_embd % n_head:
        raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
    config = GPT2Config(
        vocab_size=len(tok),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    return model


def resolve_model_path(name_or_path: str | Path) -> str:
    """The folder for a built-in ``prefgym/<name>`` model, else ``name_or_path`` unchanged."""
    name = str(name_or_path)
    if name.startswith("prefgym/"):
        folder = Path(__file__).resolve().parents[1] / "assets" / "models" / name.split("/", 1)[1]
        if not folder.is_dir():
            known = sorted(p.name for p in folder.parent.iterdir()) if folder.parent.is_dir() else []
            raise FileNotFoundError(
                f"unknown built-in model {name!r}; shipped models are {['prefgym/' + k for k in known]} "
                "(train one with `prefgym pretrain` and pass its output folder instead)"
            )
        return str(folder)
    return name


def load_policy(
    name_or_path: str | Path, device: str = "cpu", dtype: "torch.dtype | str | None" = None
) -> "PreTrainedModel":
    """Load a causal LM by built-in name, local folder or cached hub name, in eval mode on ``device``.

    Example:
        >>> model = load_policy("prefgym/tiny-code")  # doctest: +SKIP
    """
    import torch
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(name_or_path)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except OSError as err:
        raise OSError(
            f"could not load a model from {name_or_path!r}: pass a built-in name (prefgym/tiny-code), "
            f"a local save_pretrained folder, or a hub name already in the local cache. Cause: {err}"
        ) from err
    return model.to(device).eval()


def count_parameters(model: Any) -> int:
    """Number of distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def save_policy(model: Any, tokenizer: Any, out_dir: str | Path, recipe: dict | None = None,
                value_head: Any = None) -> str:
    """``save_pretrained`` model + tokenizer into ``out_dir`` (built beside it, then swapped in).

    Also writes ``RECIPE.json`` (``recipe`` plus the sha256 of ``model.safetensors``) and, when
    given, ``value_head.safetensors``. Returns the weights' sha256.
    """
    import hashlib
    import os
    import shutil
    import tempfile

    from safetensors.torch import save_file

    from prefgym.utils.io import atomic_write_json

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if value_head is not None:
            save_file({k: v.contiguous() for k, v in value_head.state_dict().items()}, tmp / "value_head.safetensors")
        digest = hashlib.sha256((tmp / "model.safetensors").read_bytes()).hexdigest()
        atomic_write_json(tmp / "RECIPE.json", {**(recipe or {}), "model_safetensors_sha256": digest})
        for path in tmp.iterdir():
            path.chmod(0o644)  # mkstemp files are 0600; shipped assets must be readable by all
        tmp.chmod(0o755)
        if out.exists():  # swap: the old folder survives until the new one is complete
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return digest
