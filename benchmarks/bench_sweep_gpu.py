"""A sweep on a GPU: the B-Pref teacher study with pref-SAC on HalfCheetah-v5, 24 cells.

``configs/sweep-bpref-halfcheetah.yaml`` (6 teachers x 4 seeds), shortened to ``--timesteps``
per cell so it fits a lent GPU's time, run with ``feedbackgym.studies.sweep.run_sweep`` on the
local backend: ``--workers`` cells at once, all on the one GPU (``device: auto``). Beside it,
on a spare CPU core, one cell of the same sweep with ``device: cpu``: the sweep's projected CPU
time is that cell's time x cells / workers (the same workers on CPU cores) and x cells (one
core).

    python benchmarks/bench_sweep_gpu.py --out $OUT          # on the GPU machine
    .venv/bin/python benchmarks/bench_sweep_gpu.py --report DIR/sweep_gpu.json   # here: RESULTS.md

The first writes ``sweep_gpu.json`` (timings, device, the aggregate) and the sweep's CSVs and
plot into ``--out``; the second writes the RESULTS.md section from that JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))


def shortened(timesteps: int) -> dict:
    """The shipped sweep with every cell cut to ``timesteps`` (pre-training, learning start and
    reward rounds scaled with it; one evaluation, at the end)."""
    from feedbackgym.studies.train import load_yaml

    data = load_yaml(ROOT / "configs" / "sweep-bpref-halfcheetah.yaml")
    base = dict(data["base"])
    tenth = max(timesteps // 10, 1)
    base.update(timesteps=timesteps, labels=200, eval_every=timesteps)
    base["algo_kwargs"] = {**base["algo_kwargs"], "learning_starts": tenth}
    base["learner_kwargs"] = {
        **base["learner_kwargs"],
        "unsupervised_steps": tenth,
        "update_every": tenth,
    }
    return {**data, "base": base}


def cpu_cell(data: dict, out: Path) -> None:
    """One cell of ``data`` on the CPU (a separate process, run beside the sweep)."""
    from feedbackgym.studies.sweep import Sweep, run_cell

    cell = Sweep.from_dict(data).cells()[0]
    begin = time.perf_counter()
    summary = run_cell(({**cell.options, "device": "cpu"}, str(out / "cpu_cell")))
    summary["elapsed"] = time.perf_counter() - begin
    (out / "cpu_cell.json").write_text(json.dumps(summary))


def run(args: argparse.Namespace) -> None:
    import torch

    from feedbackgym.studies.sweep import Sweep, run_sweep

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = shortened(args.timesteps)
    (out / "sweep.yaml").write_text(json.dumps(data))
    work = Path(tempfile.mkdtemp())
    side = subprocess.Popen(
        [sys.executable, __file__, "--cpu-cell", str(out / "sweep.yaml"), "--out", str(work)]
    )
    begin = time.perf_counter()
    rows = run_sweep(Sweep.from_dict(data), work / "sweep", workers=args.workers, progress=False)
    wall = time.perf_counter() - begin
    side.wait()
    cpu = json.loads((work / "cpu_cell.json").read_text())
    for name in ("summary.csv", "aggregate.csv", "returns.png"):
        shutil.copy(work / "sweep" / name, out / name)
    with open(work / "sweep" / "aggregate.csv") as handle:
        groups = list(csv.DictReader(handle))
    gpu_cells = [r["wall_seconds"] for r in rows]
    report = {
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "cells": len(rows),
        "workers": args.workers,
        "timesteps": args.timesteps,
        "wall_seconds": wall,
        "gpu_cell_seconds_mean": sum(gpu_cells) / len(gpu_cells),
        "cpu_cell_seconds": cpu["elapsed"],
        "cpu_cell_device": cpu["device"],
        "devices": sorted({r["device"] for r in rows}),
        "groups": groups,
    }
    (out / "sweep_gpu.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "groups"}, indent=1))


def report(path: Path) -> None:
    from _results import update_section

    data = json.loads(path.read_text())
    cells, workers = data["cells"], data["workers"]
    cpu = data["cpu_cell_seconds"]
    lines = [
        "## A 24-cell sweep on a GPU (`bench_sweep_gpu.py`)",
        "",
        f"`configs/sweep-bpref-halfcheetah.yaml` (pref-SAC on HalfCheetah-v5, 6 B-Pref teachers x "
        f"4 seeds = {cells} cells), each cell cut to {data['timesteps']:,} steps and 200 labels "
        "so the sweep fits a lent GPU's time; `feedbackgym sweep`'s machinery (`run_sweep`, "
        f"local backend) with {workers} cells at once sharing one {data['device']} "
        f"(cells' device: {', '.join(data['devices'])}), on a machine of 16 CPU cores.",
        "",
        "| | wall time |",
        "|---|---:|",
        f"| the sweep on the GPU, {workers} cells at once | {data['wall_seconds']:.0f} s |",
        f"| one cell on the GPU (mean, while {workers} share it) | "
        f"{data['gpu_cell_seconds_mean']:.0f} s |",
        f"| one cell on one CPU core (same machine, beside the sweep) | {cpu:.0f} s |",
        f"| the sweep on CPU cores, projected: {workers} at once | "
        f"{cpu * -(-cells // workers):.0f} s |",
        f"| the sweep on one CPU core, projected | {cpu * cells:.0f} s |",
        "",
        "| teacher | seeds | IQM return [95% CI] | normalised IQM |",
        "|---|---:|---:|---:|",
    ]
    for g in data["groups"]:
        lines.append(
            f"| {g['teacher']} | {g['seeds']} | {float(g['return_iqm']):.0f} "
            f"[{float(g['return_iqm_low']):.0f}, {float(g['return_iqm_high']):.0f}] | "
            f"{float(g['normalised_iqm']):.2f} |"
        )
    lines += [
        "",
        f"Returns after {data['timesteps']:,} steps are early-training figures (the shipped sweep "
        "runs 100k steps per cell); the point here is the machinery and the time.",
    ]
    update_section("bench_sweep_gpu", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/sweep-gpu")
    parser.add_argument("--timesteps", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=12)
    parser.add_argument("--report", default=None, help="write RESULTS.md from this JSON")
    parser.add_argument("--cpu-cell", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.report:
        report(Path(args.report))
    elif args.cpu_cell:
        cpu_cell(json.loads(Path(args.cpu_cell).read_text()), Path(args.out))
    else:
        run(args)


if __name__ == "__main__":
    main()
