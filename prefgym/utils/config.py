"""Hydra ``_target_`` dicts -> objects, with the component's own error instead of Hydra's wrapper.

Example:
    >>> from prefgym.utils.config import instantiate
    >>> instantiate({"_target_": "prefgym.preferences.LengthScorer", "target_chars": 3}).target_chars
    3
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def conf_dir() -> Path:
    """The Hydra config root: ``$PREFGYM_CONF_DIR``, else the ``conf/`` shipped inside the package.

    In a checkout ``prefgym/conf`` is a link to the repository's top-level ``conf/`` (so an
    editable install reads the files you edit); a wheel holds a copy. The path is resolved.
    """
    return Path(os.environ.get("PREFGYM_CONF_DIR") or Path(__file__).resolve().parents[1] / "conf").resolve()


def instantiate(spec: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(spec, _convert_="all")``, re-raising the target's own exception.

    Hydra wraps every error raised inside a target in ``InstantiationException``; a user who
    passed a bad prompt file should see the ``FileNotFoundError`` that says which file.
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    try:
        return hydra_instantiate(spec, _convert_="all", **kwargs)
    except InstantiationException as err:
        if err.__cause__ is not None and not isinstance(err.__cause__, (ImportError, AttributeError)):
            raise err.__cause__ from None
        raise
