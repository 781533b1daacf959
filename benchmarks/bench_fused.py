"""Fused regret loops vs the step path vs SMPyBandits: pulls per second and regret (issue 13).

Bernoulli, means linspace(0.9, 0.1, K), K = 10 and 20, T = 20,000. Ours through ``run_study``
(what ``feedbackgym regret`` runs), JIT compile excluded (a small study of each agent and path
runs first); SMPyBandits 0.9.7 one run at a time in its own venv (``_peers.py``, the same
snippet as ``bench_bandits.py``). Also: pulls/s against the number of runs for both paths, the
machine's ceiling (splitmix64 uniforms per second on all cores, one per pull at least) and
``--workers 2``. Writes its section of benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/bench_fused.py            # full (about 10 minutes)
    .venv/bin/python benchmarks/bench_fused.py --quick    # smoke run, prints only
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

sys.path.insert(0, str(Path(__file__).parent))
from _peers import run_peer  # noqa: E402
from _results import update_section  # noqa: E402
from bench_bandits import PEER_CODE, POLICIES, sem  # noqa: E402

from feedbackgym.agents._kernels import _uniform  # noqa: E402
from feedbackgym.studies import RegretStudy, run_study  # noqa: E402

AGENTS = list(POLICIES)  # ucb1, kl-ucb, thompson
TARGET = 1000


def means(k: int) -> list[float]:
    return [round(float(m), 6) for m in np.linspace(0.9, 0.1, k)]


def ours(
    agent: str, k: int, runs: int, horizon: int, path: str, workers: int = 1, per_cell: int = 0
) -> dict[str, float]:
    """One study of ``agent``: the pulls/s ``feedbackgym regret`` reports (runs x T over the
    cells' loop time), the end-to-end rate (all of ``run_study``) and the final regret."""
    study = RegretStudy(
        env="feedbackgym/BernoulliBandit-v0",
        env_kwargs={"means": means(k)},
        agents=[agent],
        horizon=horizon,
        runs=runs,
        seed=0,
        runs_per_cell=per_cell or runs,
        path=path,
    )
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        (row,) = run_study(study, out, workers=workers, progress=False)
        wall = time.perf_counter() - start
        with open(Path(out) / "summary.csv") as handle:
            loop_seconds = float(next(csv.DictReader(handle))["wall_seconds"])
    assert study.paths[agent] == path
    return {
        "rate": runs * horizon / loop_seconds,
        "wall_rate": runs * horizon / wall,
        "mean": row["final_regret_mean"],
        "sem": row["final_regret_sem"],
    }


def peer(agent: str, k: int, runs: int, horizon: int) -> dict[str, float]:
    policy = POLICIES[agent][0]
    result = run_peer(
        "smpybandits",
        PEER_CODE.format(policy=policy, means=means(k), runs=runs, horizon=horizon, k=k),
    )
    finals = result["finals"]
    return {"rate": result["pulls_per_second"], "mean": float(np.mean(finals)), "sem": sem(finals)}


@njit(parallel=True, cache=True)
def _uniforms(seeds: np.ndarray, per_stream: int) -> float:
    total = 0.0
    for n in prange(seeds.size):
        state = seeds[n : n + 1].copy()
        acc = 0.0
        for _ in range(per_stream):
            acc += _uniform(state, 0)
        total += acc
    return total


def ceiling(seconds: float = 2.0) -> float:
    """splitmix64 uniforms per second on all of numba's threads (the fused loops' generator)."""
    seeds = np.arange(1, 2 * numba.get_num_threads() + 1, dtype=np.uint64)
    _uniforms(seeds, 10)
    per_stream, best = 1_000_000, 0.0
    while True:
        start = time.perf_counter()
        _uniforms(seeds, per_stream)
        wall = time.perf_counter() - start
        best = max(best, seeds.size * per_stream / wall)
        if wall > seconds:
            return best
        per_stream *= 4


def z(a: dict[str, float], b: dict[str, float]) -> float:
    return abs(a["mean"] - b["mean"]) / max(math.hypot(a["sem"], b["sem"]), 1e-12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=100, help="runs of the headline comparison")
    parser.add_argument("--peer-runs", type=int, default=12, help="SMPyBandits runs per policy")
    parser.add_argument(
        "--scaling", default="1,10,100,1000,10000", help="run counts of the scaling table"
    )
    parser.add_argument(
        "--steps-max-runs", type=int, default=1000, help="largest run count timed on the step path"
    )
    parser.add_argument("--quick", action="store_true", help="tiny budgets, no RESULTS.md update")
    args = parser.parse_args()
    if args.quick:
        args.horizon, args.peer_runs, args.scaling = 2000, 1, "1,10,100"
    horizon = args.horizon
    scaling = [int(r) for r in args.scaling.split(",")]

    for agent in AGENTS:  # JIT compile (and load caches) outside the timings
        for path in ("fused", "steps"):
            ours(agent, 10, 2, 50, path)

    lines = [
        "## Fused regret loops vs step path vs SMPyBandits 0.9.7 (`bench_fused.py`, issue 13)",
        "",
        f"Bernoulli, means linspace(0.9, 0.1, K), T = {horizon:,}. Ours: `run_study` (what "
        "`feedbackgym regret` runs), one process, numba on all cores, JIT compile excluded; "
        "*pulls/s* is the rate `feedbackgym regret` reports (runs x T over the cells' loop "
        "time), best of 3 studies (the same seeds, so the same regret), *end to end* divides by "
        "the whole `run_study` call (validation, files, plot). "
        f"SMPyBandits: {args.peer_runs} runs one at a time (its per-run rate), same snippet as "
        f"`bench_bandits.py`. Target: fused pulls/s at least x{TARGET} SMPyBandits'.",
        "",
    ]
    # ----- headline: K = 10 and 20, args.runs runs -----------------------------------------------
    lines += [
        f"### {args.runs} runs: fused vs steps vs SMPyBandits",
        "",
        "| K | agent | fused pulls/s (end to end) | steps pulls/s | SMPyBandits pulls/s "
        f"| fused / SMPyBandits | x{TARGET} | regret fused | regret steps | regret SMPyBandits "
        "| z fused-steps | z fused-SMPy |",
        "|---:|---|---:|---:|---:|---:|:---:|---:|---:|---:|---:|---:|",
    ]
    for k in (10, 20):
        for agent in AGENTS:
            fused = max(
                (ours(agent, k, args.runs, horizon, "fused") for _ in range(3)),
                key=lambda result: result["rate"],
            )
            steps = ours(agent, k, args.runs, horizon, "steps")
            smpy = peer(agent, k, args.peer_runs, horizon)
            ratio = fused["rate"] / smpy["rate"]
            print(
                f"K={k} {agent:9s} fused {fused['rate'] / 1e6:6.2f}M/s (end to end "
                f"{fused['wall_rate'] / 1e6:.2f}M)  steps {steps['rate'] / 1e6:5.2f}M/s  "
                f"SMPyBandits {smpy['rate'] / 1e3:5.1f}k/s  x{ratio:,.0f}  regret "
                f"{fused['mean']:.1f}±{fused['sem']:.1f} / {steps['mean']:.1f}±{steps['sem']:.1f}"
                f" / {smpy['mean']:.1f}±{smpy['sem']:.1f}",
                flush=True,
            )
            lines.append(
                f"| {k} | {agent} ({POLICIES[agent][0]}) | {fused['rate']:,.0f} "
                f"({fused['wall_rate']:,.0f}) | {steps['rate']:,.0f} | {smpy['rate']:,.0f} | "
                f"x{ratio:,.0f} | {'met' if ratio >= TARGET else 'MISSED'} | "
                f"{fused['mean']:.1f} ± {fused['sem']:.1f} | {steps['mean']:.1f} ± "
                f"{steps['sem']:.1f} | {smpy['mean']:.1f} ± {smpy['sem']:.1f} | "
                f"{z(fused, steps):.2f} | {z(fused, smpy):.2f} |"
            )
    # ----- where Thompson sampling's time goes: its first steps ----------------------------------
    horizons = sorted({1_000, 4_000, horizon, 4 * horizon})
    lines += [
        "",
        f"Thompson sampling, fused, {args.runs} runs, pulls/s against the horizon: while the "
        "posteriors are wide, every arm's theta can win (each is placed in a quantile bin, and "
        "those that can win are drawn); later the leader wins without a draw until some theta "
        "crosses its threshold, and while two arms race both are drawn at every step.",
        "",
        "| K | " + " | ".join(f"T = {h:,}" for h in horizons) + " |",
        "|---:|" + "---:|" * len(horizons),
    ]
    for k in (10, 20):
        rates = [ours("thompson", k, args.runs, h, "fused")["rate"] for h in horizons]
        lines.append(f"| {k} | " + " | ".join(f"{rate:,.0f}" for rate in rates) + " |")
    # ----- scaling with the number of runs -------------------------------------------------------
    rng = ceiling()
    print(f"ceiling: {rng / 1e6:.0f}M splitmix64 uniforms/s", flush=True)
    head = " | ".join(f"{r:,} runs" for r in scaling)
    lines += [
        "",
        "### Pulls/s against runs (K = 10, one cell of all runs)",
        "",
        f"Ceiling of this machine: {rng:,.0f} splitmix64 uniforms/s on {numba.get_num_threads()}"
        " numba threads (the fused loops' generator; a pull takes one for the reward, plus the "
        "agent's).",
        "",
        f"| agent | path | {head} |",
        "|---|---|" + "---:|" * len(scaling),
    ]
    for agent in AGENTS:
        for path in ("fused", "steps"):
            cells = []
            for runs in scaling:
                if path == "steps" and runs > args.steps_max_runs:
                    cells.append("not timed")
                    continue
                rate = ours(agent, 10, runs, horizon, path)["rate"]
                cells.append(f"{rate:,.0f}")
                print(f"{agent} {path} {runs} runs: {rate / 1e6:.2f}M/s", flush=True)
            lines.append(f"| {agent} | {path} | " + " | ".join(cells) + " |")
    # ----- two worker processes ------------------------------------------------------------------
    lines += [
        "",
        "### `--workers 2` (two processes, numba threads per process = 1), fused, K = 10",
        "",
        "| agent | runs | pulls/s, 1 process x 2 threads | pulls/s per process (1 thread) "
        "| end to end, 2 processes |",
        "|---|---:|---:|---:|---:|",
    ]
    for agent in AGENTS:
        for runs in sorted({args.runs, max(scaling)}):
            one = ours(agent, 10, runs, horizon, "fused")
            two = ours(agent, 10, runs, horizon, "fused", workers=2, per_cell=math.ceil(runs / 2))
            print(
                f"workers=2 {agent} {runs} runs: in-process {one['rate'] / 1e6:.2f}M/s, per "
                f"worker {two['rate'] / 1e6:.2f}M/s, end to end {two['wall_rate'] / 1e6:.2f}M/s",
                flush=True,
            )
            lines.append(
                f"| {agent} | {runs:,} | {one['rate']:,.0f} | {two['rate']:,.0f} | "
                f"{two['wall_rate']:,.0f} |"
            )
    lines += [
        "",
        "Per process, the rate with one thread is about half the one-process two-thread rate: no "
        "oversubscription (each worker sets numba to cpu_count / workers threads). End to end, "
        "two processes pay for spawning and importing (seconds), which small studies feel.",
        f"Load average while measuring: {os.getloadavg()[0]:.1f} (other jobs share the cores).",
    ]
    if args.quick:
        print("\n".join(lines))
    else:
        update_section("bench_fused", "\n".join(lines))
        print("wrote benchmarks/RESULTS.md")


if __name__ == "__main__":
    main()
