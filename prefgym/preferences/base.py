"""The preference-model protocol, the small ``Scorer`` base class, and score validation.

A preference model answers two questions: how good is each completion
(``score(prompts, completions) -> (N,) float64``, higher is preferred) and how likely
is an annotator to prefer ``a`` over ``b`` (``compare(prompt, a, b)``, Bradley-Terry on
scores: ``sigmoid((s_a - s_b) / temperature)``).

Every scorer is built from plain JSON data, so an environment can hold it as a Hydra
``{"_target_": "prefgym.preferences.PEP8Scorer", ...}`` dict, write it into a result file
and rebuild it exactly (``Scorer.to_config`` gives that dict back).

Example:
    >>> from prefgym.preferences import as_preference_model
    >>> model = as_preference_model(lambda prompts, completions: [len(c) for c in completions])
    >>> model.score(["p", "p"], ["ab", "abcd"]).tolist()
    [2.0, 4.0]
    >>> round(model.compare("p", "abcd", "ab"), 4)  # sigmoid(2)
    0.8808
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

_MAX_REPORTED = 5  # offending items listed in an error message; the rest are counted
_TEXT_PREVIEW = 60  # characters of a completion shown in an error message


class NonFiniteScoreError(ValueError):
    """A scorer returned NaN or +-inf: a reward that would silently poison training."""


def _preview(text: str) -> str:
    return repr(text if len(text) <= _TEXT_PREVIEW else text[:_TEXT_PREVIEW] + "...")


def check_scores(
    scores: Any, n: int, scorer_name: str, completions: Sequence[str] | None = None
) -> np.ndarray:
    """Return ``scores`` as a finite float64 array of shape ``(n,)`` or raise a clear error.

    Accepts lists, numpy arrays and torch tensors (shape ``(n,)`` or a reward head's
    ``(n, 1)``). ``None`` entries (which TRL reward functions may return) count as missing.

    Example:
        >>> check_scores([1, 2.5], 2, "demo").tolist()
        [1.0, 2.5]
    """
    if hasattr(scores, "detach"):  # a torch tensor, without importing torch here
        scores = scores.detach().cpu().numpy()
    if isinstance(scores, (list, tuple)) and any(s is None for s in scores):
        scores = [math.nan if s is None else s for s in scores]
    try:
        arr = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"scorer {scorer_name!r} returned {type(scores).__name__} that is not a list of numbers "
            f"({exc}); return one float per completion"
        ) from exc
    if arr.shape == (n, 1):
        arr = arr[:, 0]
    if arr.shape != (n,):
        raise ValueError(
            f"scorer {scorer_name!r} returned scores of shape {arr.shape} for {n} completions; "
            f"return exactly one float per completion, shape ({n},)"
        )
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        items = []
        for i in bad[:_MAX_REPORTED]:
            text = f" for completion {_preview(completions[i])}" if completions is not None else ""
            items.append(f"index {i}: {arr[i]}{text}")
        more = f" (and {bad.size - _MAX_REPORTED} more)" if bad.size > _MAX_REPORTED else ""
        raise NonFiniteScoreError(
            f"scorer {scorer_name!r} returned {bad.size} non-finite score(s) of {n}: "
            + "; ".join(items) + more
            + ". Scores must be finite floats: guard divisions by zero (e.g. empty completions), "
            "return a finite penalty instead of -inf, and never return None"
        )
    return arr


def sigmoid(x: float) -> float:
    """Numerically stable logistic function."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def bradley_terry(score_a: float, score_b: float, temperature: float) -> float:
    """P(a preferred) = sigmoid((s_a - s_b) / temperature); temperature 0 is a hard argmax (ties 0.5)."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return 0.5 if score_a == score_b else float(score_a > score_b)
    return sigmoid((score_a - score_b) / temperature)


@runtime_checkable
class PreferenceModel(Protocol):
    """Anything that scores completions and compares two of them (scripted or learned).

    A ``name`` attribute is optional; it labels error messages and dataset rows.
    """

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray: ...

    def compare(self, prompt: str, a: str, b: str) -> float: ...


class Scorer:
    """Base class of the scripted preference models: validation, ``compare`` and config export.

    Subclasses implement ``_score(prompts, completions) -> dict[str, np.ndarray]`` holding
    at least ``"score"`` (higher is preferred) and store every constructor argument under
    its own name, so ``to_config()`` can rebuild the scorer exactly.
    """

    name: str = "scorer"

    def __init__(self, name: str | None = None, temperature: float = 1.0) -> None:
        if name is not None:
            self.name = name
        if temperature < 0 or not math.isfinite(temperature):
            raise ValueError(f"temperature must be a finite float >= 0, got {temperature}")
        self.temperature = float(temperature)

    def _score(self, prompts: list[str], completions: list[str]) -> dict[str, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} must implement _score(prompts, completions)")

    def score_parts(self, prompts: Sequence[str], completions: Sequence[str]) -> dict[str, np.ndarray]:
        """Scores plus the raw parts they came from, each an array of shape ``(N,)``."""
        prompts, completions = _check_inputs(prompts, completions, self.name)
        parts = self._score(prompts, completions)
        n = len(completions)
        out = {"score": check_scores(parts["score"], n, self.name, completions)}
        for key, value in parts.items():
            if key == "score":
                continue
            arr = np.asarray(value)
            if arr.shape != (n,):
                raise ValueError(f"scorer {self.name!r} part {key!r} has shape {arr.shape}, expected ({n},)")
            out[key] = arr
        return out

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """Scores of shape ``(N,)``, float64, finite; higher is preferred."""
        return self.score_parts(prompts, completions)["score"]

    def compare(self, prompt: str, a: str, b: str) -> float:
        """P(a preferred over b) under Bradley-Terry with this scorer's temperature."""
        s_a, s_b = self.score([prompt, prompt], [a, b])
        return bradley_terry(float(s_a), float(s_b), self.temperature)

    def to_config(self) -> dict[str, Any]:
        """The ``_target_`` dict that rebuilds this scorer (``build_scorer(s.to_config())``)."""
        cls = type(self)
        config: dict[str, Any] = {"_target_": f"{_public_module(cls)}.{cls.__qualname__}"}
        for param in list(inspect.signature(cls.__init__).parameters.values())[1:]:
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            config[param.name] = _to_plain(getattr(self, param.name))
        return config

    def __repr__(self) -> str:
        try:
            config = self.to_config()
        except TypeError:  # e.g. a wrapped lambda: still printable, just not rebuildable
            return f"{type(self).__name__}(name={self.name!r})"
        args = ", ".join(f"{k}={v!r}" for k, v in config.items() if k != "_target_")
        return f"{type(self).__name__}({args})"


def _check_inputs(prompts: Sequence[str], completions: Sequence[str], name: str) -> tuple[list[str], list[str]]:
    if isinstance(prompts, str) or isinstance(completions, str):
        raise TypeError(
            f"scorer {name!r} takes lists of prompts and completions, got a single string; "
            "wrap it in a list: score([prompt], [completion])"
        )
    prompts, completions = list(prompts), list(completions)
    if len(prompts) != len(completions):
        raise ValueError(
            f"scorer {name!r} got {len(prompts)} prompts but {len(completions)} completions; "
            "pass one prompt per completion (repeat the prompt for several samples)"
        )
    for kind, texts in (("prompt", prompts), ("completion", completions)):
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"scorer {name!r}: {kind} {i} is {type(text).__name__}, expected str")
    return prompts, completions


def _public_module(cls: type) -> str:
    # prefgym's own scorers are exported from prefgym.preferences: write the short, stable path.
    if cls.__module__.startswith("prefgym.preferences."):
        return "prefgym.preferences"
    return cls.__module__


def _to_plain(value: Any) -> Any:
    if isinstance(value, Scorer):
        return value.to_config()
    if hasattr(value, "to_config"):
        return value.to_config()
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(
        f"{value!r} is not plain JSON data and has no to_config(); give components as "
        "_target_ dicts or prefgym scorers so the config can be rebuilt"
    )


def plain_config(spec: Any) -> Any:
    """Turn an OmegaConf ``DictConfig``/``ListConfig`` (from a Hydra config) into plain dicts/lists."""
    if type(spec).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(spec, resolve=True)
    return spec


def build_scorer(spec: Any) -> PreferenceModel:
    """A preference model from a ``_target_`` dict, a scorer object, or a reward callable.

    Example:
        >>> build_scorer({"_target_": "prefgym.preferences.LengthScorer", "target_chars": 4}).score(["p"], ["ab"])
        array([-0.5])
    """
    spec = plain_config(spec)
    if isinstance(spec, Mapping):
        if "_target_" not in spec:
            raise ValueError(f"scorer spec {dict(spec)!r} has no '_target_' key; e.g. "
                             "{'_target_': 'prefgym.preferences.PEP8Scorer'}")
        from hydra.utils import instantiate

        # Not recursive: composite scorers build (and remember) their children's plain dicts themselves.
        return instantiate(dict(spec), _recursive_=False, _convert_="all")
    return as_preference_model(spec)


class CallableScorer(Scorer):
    """A TRL-style reward function ``fn(prompts, completions) -> list[float]`` as a Scorer.

    ``fn`` may be a callable or an importable ``"module:function"`` string; the string form
    (or a module-level function) keeps the config plain JSON.
    """

    name = "callable"

    def __init__(self, fn: str | Callable[..., Any], name: str | None = None, temperature: float = 1.0) -> None:
        self._fn = _resolve_callable(fn) if isinstance(fn, str) else fn
        if not callable(self._fn):
            raise TypeError(f"fn must be callable or a 'module:function' string, got {fn!r}")
        self.fn = fn if isinstance(fn, str) else _import_path(fn)
        super().__init__(name=name or getattr(self._fn, "__name__", "callable"), temperature=temperature)

    def _score(self, prompts: list[str], completions: list[str]) -> dict[str, np.ndarray]:
        return {"score": check_scores(self._fn(prompts, completions), len(completions), self.name, completions)}

    def to_config(self) -> dict[str, Any]:
        if self.fn is None:
            raise TypeError(
                f"reward function {self._fn!r} is not importable by name (a lambda or local function); "
                "define it at module level or pass fn='module:function' so the config can be rebuilt"
            )
        return super().to_config()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if self.fn is not None:  # re-import in the child process instead of pickling the function
            state.pop("_fn")
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "_fn" not in state:
            self._fn = _resolve_callable(self.fn)


def _import_path(fn: Callable[..., Any]) -> str | None:
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or "<" in qualname or module == "__main__":
        return None
    return f"{module}:{qualname}"


def _resolve_callable(path: str) -> Callable[..., Any]:
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"cannot import reward function {path!r} ({exc}); use 'package.module:function'") from exc
    return obj


def as_preference_model(obj: Any) -> PreferenceModel:
    """Return ``obj`` as a preference model: scorers pass through, callables get wrapped.

    Example:
        >>> as_preference_model(lambda p, c: [0.0] * len(c)).score(["x"], ["y"])
        array([0.])
    """
    obj = plain_config(obj)
    if isinstance(obj, Mapping):
        return build_scorer(obj)
    if isinstance(obj, PreferenceModel):
        return obj
    if isinstance(obj, str) or callable(obj):
        return CallableScorer(obj)
    raise TypeError(
        f"cannot use {type(obj).__name__} as a preference model: pass a Scorer, an object with "
        "score() and compare(), a reward function (prompts, completions) -> list[float], "
        "or a {'_target_': ...} dict"
    )
