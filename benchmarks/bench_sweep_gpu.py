"""A sweep on a GPU: the B-Pref teacher study with pref-SAC on HalfCheetah-v5, 24 cells.

``configs/sweep-bpref-halfcheetah.yaml`` (6 teachers x 4 seeds), shortened to ``--timesteps``
per cell so it fits a lent GPU's time, run with ``feedbackgym.studies.sweep.run_sweep`` on the
local backend: ``--workers`` cells at once, all on the one GPU (``device: auto``). Beside it,
on a spare CPU core, one cell of the same sweep with ``device: cpu``: the sweep's projected CPU
time is that cell's time x cells / workers (the same workers on CPU cores) and x cells (one
core).

    python benchmarks/bench_sweep_gpu.py --out $OUT          # on the GPU machine
    .venv/bin/python benchmarks/bench_sweep_gpu.py --report DIR/sweep_gpu.json   # here: RESULTS.md

The first writes ``sweep_gpu.json`` (timings, device, every cell's summary; rewritten after each
cell, so a run stopped early keeps what finished) into ``--out``; the second aggregates the cells
here (rliable) and writes the RESULTS.md section and ``benchmarks/sweep_gpu.png``. On the GPU
machine, carry wheels for gymnasium, mujoco (+ mujoco-core, mujoco-studio, glfw, pyopengl),
stable-baselines3 and farama-notifications.
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
from _parts import add_common_arguments  # noqa: E402


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
    """The sweep's cells on this machine (no aggregation here: the GPU image's pandas may not
    suit rliable's pins); ``sweep_gpu.json`` holds the timings and every cell's summary."""
    import torch

    from feedbackgym.studies.runner import execute
    from feedbackgym.studies.sweep import Sweep, run_cell

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = shortened(args.timesteps)
    (out / "sweep.yaml").write_text(json.dumps(data))
    work = Path(tempfile.mkdtemp())
    side = subprocess.Popen(
        [sys.executable, __file__, "--cpu-cell", str(out / "sweep.yaml"), "--out", str(work)]
    )
    sweep = Sweep.from_dict(data)
    sweep.validate()
    jobs = [(cell.options, str(work / "cells" / cell.name)) for cell in sweep.cells()]
    begin = time.perf_counter()
    summaries = {}
    for (_, folder), summary, _ in execute(run_cell, jobs, "local", args.workers):
        summaries[Path(folder).name] = summary
        (out / "sweep_gpu.json").write_text(json.dumps({"partial": True, "cells": summaries}))
    wall = time.perf_counter() - begin
    side.wait()
    cpu = json.loads((work / "cpu_cell.json").read_text())
    report = {
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "sweep": data,
        "cells": summaries,
        "workers": args.workers,
        "timesteps": args.timesteps,
        "wall_seconds": wall,
        "cpu_cell_seconds": cpu["elapsed"],
    }
    (out / "sweep_gpu.json").write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k not in ("cells", "sweep")}, indent=1))


def report(path: Path) -> None:
    """Aggregate the cells of a device run here and write the RESULTS.md section."""
    from _results import update_section

    from feedbackgym.studies.sweep import Sweep, write_results

    data = json.loads(path.read_text())
    sweep = Sweep.from_dict(data["sweep"])
    work = Path(tempfile.mkdtemp())
    for name, summary in data["cells"].items():
        (work / "cells" / name).mkdir(parents=True)
        (work / "cells" / name / "summary.json").write_text(json.dumps(summary))
    rows = write_results(sweep, work)
    with open(work / "aggregate.csv") as handle:
        groups = list(csv.DictReader(handle))
    shutil.copy(work / "returns.png", HERE / "sweep_gpu.png")
    cells, workers = len(rows), data["workers"]
    cpu = data["cpu_cell_seconds"]
    gpu_cell = sum(r["wall_seconds"] for r in rows) / cells
    lines = [
        "## A 24-cell sweep on a GPU (`bench_sweep_gpu.py`)",
        "",
        f"`configs/sweep-bpref-halfcheetah.yaml` (pref-SAC on HalfCheetah-v5, 6 B-Pref teachers x "
        f"4 seeds = {cells} cells), each cell cut to {data['timesteps']:,} steps and 200 labels "
        "so the sweep fits a lent GPU's time; `feedbackgym sweep`'s machinery (the local "
        f"backend) with {workers} cells at once sharing one {data['device']} (cells' device: "
        f"{', '.join(sorted({r['device'] for r in rows}))}), on a machine of 16 CPU cores.",
        "",
        "| | wall time |",
        "|---|---:|",
        f"| the sweep on the GPU, {workers} cells at once | {data['wall_seconds']:.0f} s |",
        f"| one cell on the GPU (mean, while {workers} share it) | {gpu_cell:.0f} s |",
        f"| one cell on one CPU core (same machine, beside the sweep) | {cpu:.0f} s |",
        f"| the sweep on CPU cores, projected: {workers} at once | "
        f"{cpu * -(-cells // workers):.0f} s |",
        f"| the sweep on one CPU core, projected | {cpu * cells:.0f} s |",
        "",
        "| teacher | seeds | IQM return [95% CI] | normalised IQM |",
        "|---|---:|---:|---:|",
    ]
    for g in groups:
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
    add_common_arguments(parser, workers=12, workers_help="cells at once, sharing the one GPU")
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
