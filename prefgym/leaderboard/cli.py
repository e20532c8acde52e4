"""``prefgym leaderboard``: evaluate, submit, validate, verify and render boards.

A BOARD argument is a board folder, or a board name under ``--root`` (default ``leaderboards``).

Usage:
    $ prefgym leaderboard list
    $ prefgym leaderboard evaluate pep8 --name base-policy --base --out /tmp/base-policy.json
    $ prefgym leaderboard evaluate pep8 --name ppo-seed0 --run-dir runs/pep8/ppo/x --submit
    $ prefgym leaderboard submit /tmp/base-policy.json --board pep8
    $ prefgym leaderboard validate --all
    $ prefgym leaderboard verify pep8 base-policy --record
    $ prefgym leaderboard render --all [--check]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from prefgym.leaderboard.errors import SubmissionError


def _board(arg: str, root: str) -> Path:
    path = Path(arg)
    return path if (path / "protocol.yaml").is_file() else Path(root) / arg


def _boards(args: argparse.Namespace) -> list[Path]:
    from prefgym.leaderboard.protocol import find_boards

    if getattr(args, "all", False) or not args.boards:
        return find_boards(args.root)
    return [_board(b, args.root) for b in args.boards]


def cmd_list(args: argparse.Namespace) -> int:
    from prefgym.leaderboard.board import entries
    from prefgym.leaderboard.protocol import load_protocol

    for board in _boards(args):
        protocol = load_protocol(board)
        print(f"{protocol.id:<20} {len(entries(board)):>3} entries  {protocol.title}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from prefgym.leaderboard.board import submit
    from prefgym.leaderboard.entry import check_decoding, export_weights, from_run_dir, make_result, write_result
    from prefgym.leaderboard.protocol import load_protocol

    board = _board(args.board, args.root)
    protocol = load_protocol(board)
    out = Path(args.out or f"{args.name}.json")
    method: dict[str, Any] = {"name": args.method or "sample", "n": args.n, "conditional": args.conditional}
    checkpoint, training = None, None
    if args.run_dir:
        run_method, state, training = from_run_dir(args.run_dir)
        check_decoding(training["config"], protocol)
        method = {**run_method, "conditional": args.conditional} if args.method is None else method
        checkpoint = export_weights(state, protocol, out.with_suffix(".safetensors"))
    elif args.weights:
        from safetensors.torch import load_file

        from prefgym.leaderboard.weights import sniff_safetensors

        sniff_safetensors(args.weights)  # refuse pickles before anything reads the file
        method["conditional"] = args.conditional or _saved_as_conditional(Path(args.weights))
        training = _pretraining_record(Path(args.weights))
        checkpoint = export_weights(load_file(args.weights), protocol, out.with_suffix(".safetensors"))
    start = time.perf_counter()
    result = make_result(protocol, args.name, method, checkpoint, submitter=args.submitter,
                         description=args.description, training=training)
    write_result(result, out)
    print(f"{out}: " + ", ".join(f"{k}={result['metrics'][k]:.4g}" for k in protocol.metrics)
          + f"  ({time.perf_counter() - start:.0f}s)")
    if args.submit:
        print(f"filed {submit(out, board, replace=args.replace)}")
    return 0


def _saved_as_conditional(weights: Path) -> bool:
    """Whether ``prefgym pretrain`` marked the model beside ``weights`` as control-token conditional."""
    import json

    config = weights.parent / "config.json"
    return config.is_file() and bool(json.loads(config.read_text()).get("prefgym_conditional", False))


def _pretraining_record(weights: Path) -> dict[str, Any] | None:
    """``prefgym pretrain`` metadata beside ``weights`` (RECIPE.json, ../results.json), as plain data."""
    import json

    recipe, results = weights.parent / "RECIPE.json", weights.parent.parent / "results.json"
    if not recipe.is_file():
        return None
    record: dict[str, Any] = {"agent": "prefgym pretrain", "recipe": json.loads(recipe.read_text())}
    if results.is_file():
        train = json.loads(results.read_text()).get("train", {})
        record.update(tokens=train.get("tokens"), wall_time_s=train.get("wall_s"), device="cpu")
    return record


def cmd_submit(args: argparse.Namespace) -> int:
    from prefgym.leaderboard.board import submit

    print(f"filed {submit(args.result, _board(args.board, args.root), args.checkpoint, args.replace)}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from prefgym.leaderboard.board import validate_board

    failed = 0
    for board in _boards(args):
        for name, problem in validate_board(board).items():
            print(f"{board.name}/{name}: {'ok' if problem is None else problem}")
            failed += problem is not None
    return 1 if failed else 0


def cmd_verify(args: argparse.Namespace) -> int:
    from prefgym.leaderboard.board import entries, verify

    board = _board(args.board, args.root)
    names = args.names or [p.stem for p in entries(board)]
    failed = 0
    for name in names:
        try:
            report = verify(board, name, record=args.record)
            print(f"{board.name}/{name}: reproduced in {report['wall_time_s']:.0f}s "
                  f"(largest deviation {report['max_abs_diff']:.2g})")
        except SubmissionError as err:
            print(str(err), file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def cmd_render(args: argparse.Namespace) -> int:
    from prefgym.leaderboard.render import render_board, render_index

    stale = render_index(args.root, check=args.check) if args.all or not args.boards else []
    for path in stale:
        print(f"{'out of date' if args.check else 'wrote'}: {path}")
    for board in _boards(args):
        changed = render_board(board, check=args.check)
        stale += changed
        for path in changed:
            print(f"{'out of date' if args.check else 'wrote'}: {path}")
    if args.check and stale:
        print("run `prefgym leaderboard render --all` and commit the result", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prefgym leaderboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="leaderboards", help="folder holding the boards")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="boards and their entry counts")
    p.add_argument("boards", nargs="*")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("evaluate", help="run a board's protocol and write a result file (+ checkpoint)")
    p.add_argument("board")
    p.add_argument("--name", required=True, help="entry name: lowercase letters, digits, '-', '_'")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--base", action="store_true", help="evaluate the board's base policy itself")
    src.add_argument("--run-dir", help="a `prefgym train` run (its latest checkpoint)")
    src.add_argument("--weights", help="a safetensors state dict of the base policy's architecture")
    p.add_argument("--method", choices=["sample", "best_of_n", "uniform"], help="default: from the run, else sample")
    p.add_argument("--n", type=int, default=1, help="samples per prompt for best_of_n")
    p.add_argument("--conditional", action="store_true", help="PHF conditional model: <|good|> prompt, <|bad|> blocked")
    p.add_argument("--submitter", default="anonymous")
    p.add_argument("--description", default="")
    p.add_argument("--out", help="result JSON path (default NAME.json; the checkpoint goes beside it)")
    p.add_argument("--submit", action="store_true", help="file the result on the board afterwards")
    p.add_argument("--replace", action="store_true", help="with --submit: replace an entry of the same name")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("submit", help="validate a result file and file it under BOARD/submissions/")
    p.add_argument("result")
    p.add_argument("--board", required=True)
    p.add_argument("--checkpoint", help="the entry's safetensors (default: the result's checkpoint.path)")
    p.add_argument("--replace", action="store_true")
    p.set_defaults(func=cmd_submit)
    p = sub.add_parser("validate", help="static checks of every filed entry (what CI runs)")
    p.add_argument("boards", nargs="*")
    p.add_argument("--all", action="store_true")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("verify", help="re-run entries and refuse scores that do not reproduce")
    p.add_argument("board")
    p.add_argument("names", nargs="*", help="entries (default: all of the board's)")
    p.add_argument("--record", action="store_true", help="write the verification into the entry")
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser("render", help="regenerate README.md and index.html")
    p.add_argument("boards", nargs="*")
    p.add_argument("--all", action="store_true")
    p.add_argument("--check", action="store_true", help="only report (exit 1) when generated files are stale")
    p.set_defaults(func=cmd_render)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``prefgym leaderboard`` (refusals print their reasons and exit 1)."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SubmissionError as err:
        print(str(err), file=sys.stderr)
        return 1
