"""``prefgym envs``: the registered preference environments, with scorer and prompt source.

Lists every id whose entry point is a prefgym token env — built-in ids and those registered
by other packages once imported (``prefgym envs --import my_pkg``).
"""

from __future__ import annotations

import argparse
import importlib
import json


def _describe(component: object) -> str:
    if isinstance(component, dict) and "_target_" in component:
        args = ", ".join(f"{k}={v!r}" for k, v in component.items() if k != "_target_")
        return f"{component['_target_'].rsplit('.', 1)[-1]}({args})"
    if isinstance(component, dict):
        return "inline: " + ", ".join(f"{k}={len(v)}" for k, v in component.items())
    if isinstance(component, (list, tuple)):
        return f"inline list ({len(component)})"
    return str(component)


def prefgym_specs() -> list:
    """Registered EnvSpecs whose entry point is a prefgym token env."""
    from gymnasium.envs.registration import registry

    from prefgym.envs.registration import ENTRY_POINT

    return [spec for spec in registry.values()
            if isinstance(spec.entry_point, str) and spec.entry_point == ENTRY_POINT]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="prefgym envs", description=__doc__.splitlines()[0])
    parser.add_argument("--import", dest="modules", action="append", default=[],
                        help="import a module first so that its envs are registered")
    parser.add_argument("--json", action="store_true", help="print the specs as JSON")
    args = parser.parse_args(argv)
    import prefgym  # noqa: F401  (registers the built-in ids)

    for module in args.modules:
        importlib.import_module(module)
    specs = prefgym_specs()
    if args.json:
        print(json.dumps({s.id: s.kwargs for s in specs}, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="prefgym environments")
    table.add_column("id", no_wrap=True)
    for column in ("preference (reward)", "prompts", "tokenizer", "new tokens"):
        table.add_column(column, overflow="fold")
    for spec in sorted(specs, key=lambda s: s.id):
        kw = spec.kwargs
        table.add_row(spec.id, _describe(kw.get("preference")), _describe(kw.get("prompts")),
                      str(kw.get("tokenizer")), str(kw.get("max_new_tokens", "")))
    Console(width=max(Console().width, 140)).print(table)
    return 0
