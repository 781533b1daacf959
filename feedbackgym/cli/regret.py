"""``feedbackgym regret``: run (or resume) a bandit regret study and print its summary."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from feedbackgym.cli.common import json_object
from feedbackgym.errors import ConfigError

NAME = "regret"
SAVED_ON_INTERRUPT = "finished cells are"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="run (or resume) a bandit regret study",
        description="Run agents for many independent runs on a bandit env and write summary.csv, "
        "regret.csv and regret.png into --out. Re-running into the same --out resumes.",
    )
    parser.add_argument(
        "--env",
        required=True,
        help="env id, e.g. feedbackgym/BernoulliBandit-v0; module:ID imports module first",
    )
    parser.add_argument("--env-kwargs", default="{}", help="JSON object of env arguments")
    parser.add_argument("--agents", required=True, help="comma-separated agent names")
    parser.add_argument("--agent-kwargs", default="{}", help='JSON: {"agent": {"param": value}}')
    parser.add_argument("--horizon", type=int, required=True, help="steps per run T")
    parser.add_argument("--runs", type=int, default=100, help="independent runs per agent")
    parser.add_argument("--seed", type=int, default=0, help="master seed")
    parser.add_argument(
        "--metric",
        default=None,
        help="regret notion (default: the env's first that applies, e.g. regret)",
    )
    parser.add_argument(
        "--delay",
        default=None,
        help="delay the feedback: fixed:D, geometric:P, uniform:LOW-HIGH or batched:PERIOD",
    )
    parser.add_argument("--out", required=True, help="results folder")
    parser.add_argument("--backend", default="local", help="local or ray")
    parser.add_argument("--ray-address", default=None, help="Ray cluster address (default: local)")
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes/CPUs")
    parser.add_argument("--runs-per-cell", type=int, default=100, help="runs per unit of work")
    parser.add_argument(
        "--path",
        choices=("auto", "fused", "steps"),
        default="auto",
        help="auto: fused compiled loop when env and agent allow it; fused: only that (error "
        "otherwise); steps: the step-by-step loop",
    )
    parser.add_argument("--tensorboard", action="store_true", help="also write TensorBoard logs")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> None:
    from feedbackgym.studies.regret import RegretStudy
    from feedbackgym.studies.runner import run_study

    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    study = RegretStudy(
        env=args.env,
        env_kwargs=json_object(args.env_kwargs, "--env-kwargs"),
        agents=agents,
        agent_kwargs=json_object(args.agent_kwargs, "--agent-kwargs"),
        horizon=args.horizon,
        runs=args.runs,
        seed=args.seed,
        runs_per_cell=args.runs_per_cell,
        metric=args.metric,
        delay=args.delay,
        path=args.path,
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
    print_summary(rows, out)


def print_summary(rows: list[dict[str, Any]], out: Path) -> None:
    """The study's final regret per agent as a table, then where its results are."""
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
