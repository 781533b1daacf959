"""``feedbackgym agents``: list the registered agents."""

from __future__ import annotations

import argparse

NAME = "agents"
SAVED_ON_INTERRUPT = "finished cells are"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    subparsers.add_parser(NAME, help="list registered agents")


def run(args: argparse.Namespace) -> None:
    import inspect

    from feedbackgym.agents import AGENTS

    for name in AGENTS.names():
        doc = inspect.getdoc(AGENTS.get(name)) or ""
        print(f"{name:<20} {doc.splitlines()[0] if doc else ''}")
