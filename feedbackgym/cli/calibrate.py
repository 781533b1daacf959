"""``feedbackgym calibrate``: fit the simulated teachers (and a learned one) to a feedback log."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "calibrate"
SAVED_ON_INTERRUPT = "finished cells are"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="fit the simulated teachers (and a learned one) to a feedback log",
        description="Fit each simulated teacher's parameter to the preferences of a feedback "
        "log by maximum likelihood (stochastic beta, mistake rate, myopic gamma, regret beta "
        "where the env has optimal values; the oracle as is), print each one's "
        "log-likelihood and agreement, and save a learned teacher fitted to the log.",
    )
    parser.add_argument("--log", required=True, help="feedback log, e.g. DIR/feedback.jsonl")
    parser.add_argument("--model", type=int, help="only this model id of the log")
    parser.add_argument(
        "--env", help="env id with optimal values, for the regret teacher (or module:ID)"
    )
    parser.add_argument(
        "--save", help="file of the learned teacher (default: learned_teacher.pt by the log)"
    )
    parser.add_argument("--epochs", type=int, default=200, help="learned teacher's epochs")
    parser.add_argument(
        "--holdout", type=float, default=0.2, help="share of labels the learned one is scored on"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the learned teacher")


def run(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from feedbackgym.feedback.human.calibration import calibrate, save_learned

    log = Path(args.log)
    fits, learned = calibrate(
        log,
        model=args.model,
        env=args.env,
        learned_kwargs={"epochs": args.epochs},
        holdout=args.holdout,
        seed=args.seed,
    )
    table = Table(title=f"teachers fitted to {log}")
    for column in ("teacher", "fitted", "log-lik", "per label", "agreement", "labels"):
        table.add_column(column, justify="left" if column in ("teacher", "fitted") else "right")
    for fit in fits:
        ll = fit.log_likelihood
        table.add_row(
            fit.teacher,
            ", ".join(f"{k}={v:.3g}" for k, v in fit.params.items()) or "-",
            "n/a" if ll is None else f"{ll:.1f}",
            "n/a" if fit.per_label is None else f"{fit.per_label:.3f}",
            "n/a" if fit.agreement is None else f"{fit.agreement:.1%}",
            str(fit.labels) if fit.labels else "-",
        )
    Console().print(table)
    for fit in fits:
        if fit.note:
            print(f"{fit.teacher}: {fit.note}")
    save = Path(args.save) if args.save else log.with_name("learned_teacher.pt")
    save_learned(learned, save)
    print(f"learned teacher {save}")  # plain print: paths must not be wrapped
