"""The ``feedbackgym`` command: list envs and agents, run regret studies, run the demo."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from feedbackgym.errors import ConfigError

DEMO_ENV = "feedbackgym/BernoulliBandit-v0"
DEMO_AGENTS = "ucb1,kl-ucb,thompson,epsilon-greedy,exp3"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _json_object(text: str, flag: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{flag} is not valid JSON ({exc.msg} at column {exc.colno}): {text}"
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(f"{flag} must be a JSON object like '{{\"key\": 1}}', got {text}")
    return value


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="feedbackgym",
        description="Reinforcement learning from simulated human feedback.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("envs", help="list registered environments")
    sub.add_parser("agents", help="list registered agents")

    regret = sub.add_parser(
        "regret",
        help="run (or resume) a bandit regret study",
        description="Run agents for many independent runs on a bandit env and write summary.csv, "
        "regret.csv and regret.png into --out. Re-running into the same --out resumes.",
    )
    regret.add_argument("--env", required=True, help="env id, e.g. feedbackgym/BernoulliBandit-v0")
    regret.add_argument("--env-kwargs", default="{}", help="JSON object of env arguments")
    regret.add_argument("--agents", required=True, help="comma-separated agent names")
    regret.add_argument("--agent-kwargs", default="{}", help='JSON: {"agent": {"param": value}}')
    regret.add_argument("--horizon", type=int, required=True, help="steps per run T")
    regret.add_argument("--runs", type=int, default=100, help="independent runs per agent")
    regret.add_argument("--seed", type=int, default=0, help="master seed")
    regret.add_argument(
        "--metric",
        default=None,
        help="regret notion (default: the env's first that applies, e.g. regret)",
    )
    regret.add_argument("--out", required=True, help="results folder")
    regret.add_argument("--backend", default="local", help="local or ray")
    regret.add_argument("--ray-address", default=None, help="Ray cluster address (default: local)")
    regret.add_argument("--workers", type=int, default=1, help="parallel worker processes/CPUs")
    regret.add_argument("--runs-per-cell", type=int, default=100, help="runs per unit of work")
    regret.add_argument("--tensorboard", action="store_true", help="also write TensorBoard logs")
    regret.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    demo = sub.add_parser("demo", help="a regret study on built-in defaults")
    demo.add_argument("--out", default="results/demo", help="results folder")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _print_summary(rows: list[dict[str, Any]], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"regret study -> {out}")
    for column in ("agent", "runs", "horizon", "final regret", "pulls/s"):
        table.add_column(column, justify="left" if column == "agent" else "right")
    for row in rows:
        table.add_row(
            row["agent"],
            str(row["runs"]),
            str(row["horizon"]),
            f"{row['final_regret_mean']:.1f} ± {row['final_regret_sem']:.1f}",
            f"{row['steps_per_second']:,.0f}",
        )
    Console().print(table)
    for name in ("summary.csv", "regret.csv", "regret.png"):
        print(f"{name:<12} {out / name}")  # plain print: paths must not be wrapped


def _regret(args: argparse.Namespace) -> None:
    from feedbackgym.studies.regret import RegretStudy
    from feedbackgym.studies.runner import run_study

    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    study = RegretStudy(
        env=args.env,
        env_kwargs=_json_object(args.env_kwargs, "--env-kwargs"),
        agents=agents,
        agent_kwargs=_json_object(args.agent_kwargs, "--agent-kwargs"),
        horizon=args.horizon,
        runs=args.runs,
        seed=args.seed,
        runs_per_cell=args.runs_per_cell,
        metric=args.metric,
    )
    if not all(isinstance(v, dict) for v in study.agent_kwargs.values()):
        raise ConfigError('--agent-kwargs must map agent names to objects: {"ucb1": {"alpha": 1}}')
    out = Path(args.out)
    rows = run_study(
        study,
        out,
        backend=args.backend,
        workers=args.workers,
        ray_address=args.ray_address,
        tensorboard=args.tensorboard,
        progress=not args.no_progress,
    )
    _print_summary(rows, out)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``feedbackgym`` console script; returns the exit code."""
    try:
        args = _build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a flag argparse rejected (already reported)
        return int(exc.code or 0)
    try:
        if args.command == "envs":
            from feedbackgym.envs import describe, registered_ids

            for env_id in registered_ids():
                print(f"{env_id:<40} {describe(env_id)}")
        elif args.command == "agents":
            import inspect

            from feedbackgym.agents import AGENTS

            for name in AGENTS.names():
                doc = inspect.getdoc(AGENTS.get(name)) or ""
                print(f"{name:<20} {doc.splitlines()[0] if doc else ''}")
        elif args.command == "regret":
            _regret(args)
        elif args.command == "demo":
            means = [round(float(m), 4) for m in np.linspace(0.9, 0.1, 10)]
            _regret(
                _build_parser().parse_args(
                    [
                        "regret",
                        "--env",
                        DEMO_ENV,
                        "--env-kwargs",
                        json.dumps({"means": means}),
                        "--agents",
                        DEMO_AGENTS,
                        "--horizon",
                        "10000",
                        "--runs",
                        "200",
                        "--seed",
                        "0",
                        "--out",
                        args.out,
                    ]
                    + (["--no-progress"] if args.no_progress else [])
                )
            )
    except ConfigError as exc:
        print(f"feedbackgym {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "feedbackgym: interrupted; finished cells are saved, re-run to resume", file=sys.stderr
        )
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
