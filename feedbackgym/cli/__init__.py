"""The ``feedbackgym`` command: list envs and agents, run regret studies, run the demo.

Each command is one module of this package holding ``NAME``, ``add_parser(subparsers)`` (its
flags and help), ``run(args)`` (its handler) and ``SAVED_ON_INTERRUPT`` (what Ctrl-C leaves on
disk); this module only assembles them and owns the shared error handling: a bad flag or a
ConfigError is one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from feedbackgym.cli import agents, calibrate, demo, envs, label, regret, sweep, train
from feedbackgym.cli.common import Parser
from feedbackgym.errors import ConfigError

#: The commands, in the order ``feedbackgym --help`` lists them.
COMMANDS: tuple[ModuleType, ...] = (envs, agents, regret, train, sweep, label, calibrate, demo)


def build_parser() -> argparse.ArgumentParser:
    """The ``feedbackgym`` parser with one subparser per module of COMMANDS."""
    parser = Parser(
        prog="feedbackgym",
        description="Reinforcement learning from simulated human feedback.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``feedbackgym`` console script; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a flag argparse rejected (already reported)
        return int(exc.code or 0)
    command = next(c for c in COMMANDS if c.NAME == args.command)
    try:
        command.run(args)
    except ConfigError as exc:
        print(f"feedbackgym {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        saved = command.SAVED_ON_INTERRUPT
        print(f"feedbackgym: interrupted; {saved} saved, re-run to resume", file=sys.stderr)
        return 130
    return 0
