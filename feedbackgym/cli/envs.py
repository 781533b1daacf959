"""``feedbackgym envs``: list the registered environments, or describe the ones given."""

from __future__ import annotations

import argparse

from feedbackgym.errors import ConfigError

NAME = "envs"
SAVED_ON_INTERRUPT = "finished cells are"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="list registered environments",
        description="List every registered env id with a one-line description, or describe "
        "the ENV ids given: module:ID imports module first (as every command does), and "
        "module: lists the envs that importing module registers.",
    )
    parser.add_argument(
        "ids", nargs="*", metavar="ENV", help="env ids to describe (module:ID, or module:)"
    )


def run(args: argparse.Namespace) -> None:
    from feedbackgym.envs import describe, import_env_module, registered_ids, resolve_env_id
    from feedbackgym.envs.multiagent import MULTIAGENT_ENVS, describe_multiagent

    ids: list[str] = []
    for given in args.ids:  # every id is checked before anything is printed
        module, colon, name = given.rpartition(":")
        if colon and not name and module:
            found = import_env_module(module)
            if not found:
                raise ConfigError(f"importing module {module!r} registered no env")
            ids += found
        else:
            ids.append(resolve_env_id(given))
    if not args.ids:
        ids = registered_ids() + sorted(MULTIAGENT_ENVS)
    for env_id in dict.fromkeys(ids):
        if env_id in MULTIAGENT_ENVS:
            print(f"{env_id:<40} (multi-agent) {describe_multiagent(env_id)}")
        else:
            print(f"{env_id:<40} {describe(env_id)}")
