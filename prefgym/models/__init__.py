"""Tiny causal-LM policies: tokenizer recipe, GPT-2 configs, loading, and the pretraining loop.

Importing this package is cheap; torch and transformers load inside the functions.

Example:
    >>> from prefgym.models import build_policy, count_parameters
    >>> count_parameters(build_policy(n_layer=2, n_embd=96, n_head=4)) // 100_000  # ~1M preset
    10
"""

from prefgym.models.policy import build_policy, count_parameters, load_policy, resolve_model_path, save_policy

__all__ = ["build_policy", "count_parameters", "load_policy", "resolve_model_path", "save_policy"]
