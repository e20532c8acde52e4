"""The ``prefgym`` command: one entry point, one module per subcommand (loaded lazily).

Example:
    $ prefgym envs
    $ prefgym rollout prefgym/PEP8-v0 --episodes 4
    $ prefgym train agent=ppo env=pep8
"""

from __future__ import annotations

import importlib
import sys

# subcommand -> "module:function"; each function takes the remaining argv.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "envs": ("prefgym.commands.envs:main", "list registered environments"),
    "rollout": ("prefgym.commands.rollout:main", "generate and score completions on an env (demo)"),
    "train": ("prefgym.train:cli", "train an agent (Hydra app: prefgym train agent=ppo env=pep8)"),
    "pretrain": ("prefgym.pretrain:cli", "pretrain a tiny base policy / PHF objectives (Hydra app)"),
    "evaluate": ("prefgym.evaluate:cli", "evaluate a checkpoint on an env and write a result file"),
    "reward": ("prefgym.reward.cli:main", "train and inspect learned reward models"),
    "leaderboard": ("prefgym.leaderboard.cli:main", "submit, verify and render leaderboards"),
}


def _usage() -> str:
    lines = ["usage: prefgym <command> [args...]", "", "commands:"]
    lines += [f"  {name:<12} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``prefgym <command> ...`` to the command's module."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"prefgym: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    target, _ = SUBCOMMANDS[name]
    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name == module_name:
            print(f"prefgym: command {name!r} is not available in this version", file=sys.stderr)
            return 2
        raise
    result = getattr(module, func_name)(rest)
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
