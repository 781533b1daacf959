"""``feedbackgym sweep``: run (or resume) a grid of training runs and print its aggregate."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "sweep"
SAVED_ON_INTERRUPT = "finished cells are"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="run (or resume) a grid of training runs",
        description="Run a grid of `feedbackgym train` runs (a sweep file: base options, grid "
        "axes, seeds), one run folder per cell under OUT/cells, on worker processes or Ray, and "
        "write OUT/summary.csv, OUT/aggregate.csv (IQM and 95%% stratified-bootstrap intervals "
        "over seeds), returns.png and profiles.png. Re-running resumes.",
    )
    parser.add_argument("--config", required=True, help="sweep YAML file (base, grid)")
    parser.add_argument("--out", required=True, help="sweep folder")
    parser.add_argument("--backend", default="local", help="local or ray")
    parser.add_argument("--ray-address", help="Ray cluster to join (default: a local Ray)")
    parser.add_argument("--workers", type=int, default=1, help="cells run at once")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> None:
    import csv

    from rich.console import Console
    from rich.table import Table

    from feedbackgym.studies.sweep import Sweep, run_sweep

    sweep = Sweep.from_yaml(args.config)
    out = Path(args.out)
    run_sweep(
        sweep,
        out,
        backend=args.backend,
        workers=args.workers,
        ray_address=args.ray_address,
        progress=not args.no_progress,
    )
    with open(out / "aggregate.csv") as handle:
        groups = list(csv.DictReader(handle))
    keys = [k for k in sweep.grid if k != "seed"]
    table = Table(title=f"sweep -> {out}")
    for column in (*keys, "seeds", "IQM return [95% CI]", "normalised IQM"):
        table.add_column(column, justify="right" if column in ("seeds",) else "left")
    for g in groups:
        table.add_row(
            *(g[k] for k in keys),
            g["seeds"],
            f"{float(g['return_iqm']):.1f} [{float(g['return_iqm_low']):.1f}, "
            f"{float(g['return_iqm_high']):.1f}]",
            f"{float(g['normalised_iqm']):.2f}" if g["normalised_iqm"] else "-",
        )
    Console().print(table)
    # what each normalised figure is relative to, per task
    references = {g["task"]: (float(g["random_return"]), float(g["best_return"])) for g in groups}
    for task, (low, high) in references.items():
        print(f"normalised on {task}: random policy {low:.1f}, best group {high:.1f}")
    for name in ("summary.csv", "aggregate.csv", "returns.png", "profiles.png"):
        print(f"{name:<14} {out / name}")
