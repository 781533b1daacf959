"""Fused dueling loops against the step path and duelpy: duels per second and regret at T.

Two instances, T = 5,000: the K = 10 BTL matrix of ``bench_dueling.py`` (u = linspace(1, 0,
10), slope 3) and a K = 12 probit (Thurstone) matrix, P_ij = Phi(2 (u_i - u_j)) with u =
linspace(1, 0, 12). For RUCB, RMED1, DTS and MergeRUCB: the fused loop
(:mod:`feedbackgym.agents.dueling.fused_loops`, a cell's whole horizon in one compiled loop, runs
over numba's threads) on 100 runs at once, the step-by-step loop (``agent.learn``) on the same
runs, and duelpy 1.0.0 one run at a time in its own venv (``bench_dueling``'s peer code and
instances). Ours use every core (numba threads = all unless ``--threads``); duelpy one. JIT
compilation is excluded (every kernel is warmed up first); a fused figure is the best (and the
median) of ``--repeats`` calls, each a whole ``run(T, checkpoints, seed)`` (env reset and agent
setup included). Regret: cumulative average regret at T, mean ± standard error over runs; verdicts
compare two samples (z = difference / combined standard error).

duelpy's RUCB is timed both as shipped and with +1 / -1 feedback (its sign bug, see
``bench_dueling.py``); the faster of the two sets the ratio, the learning one (signed) the
regret comparison.

Run from the repository root: ``python benchmarks/bench_fused_dueling.py`` (``--quick`` for a
smoke run that does not touch RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402

import feedbackgym  # noqa: E402, F401
import feedbackgym.agents.dueling.fused_loops  # noqa: E402, F401  (registers the fusers)
from benchmarks._parts import add_common_arguments  # noqa: E402
from benchmarks._peers import run_peer  # noqa: E402
from benchmarks._results import update_section  # noqa: E402
from benchmarks.bench_dueling import (  # noqa: E402
    ENV,
    PEER_CLASSES,
    PEER_CODE,
    RUCB_SIGNED,
    condorcet_winner,
    fmt,
    instance,
    verdict,
)
from feedbackgym.agents import make_agent  # noqa: E402
from feedbackgym.agents.bandits.fused import fused_run  # noqa: E402
from feedbackgym.envs.dueling import utility_matrix  # noqa: E402

AGENTS = ["rucb", "rmed1", "dts", "merge-rucb"]
METRIC = "regret_average"
HORIZON = 5000
RUNS_SCALING = (1, 10, 100, 1000)


def probit_instance(k: int = 12, scale: float = 2.0) -> np.ndarray:
    """P_ij = Phi(scale (u_i - u_j)), u = linspace(1, 0, k): arm 0 is the Condorcet winner."""
    p = utility_matrix(np.linspace(1.0, 0.0, k), "probit", scale)
    p = 0.5 * (p + 1.0 - p.T)  # exact P + P^T = 1 after rounding
    np.fill_diagonal(p, 0.5)
    return p


INSTANCES = {
    "K = 10, BTL (slope 3)": instance(),
    "K = 12, probit (slope 2)": probit_instance(),
}


def make(name: str, matrix: np.ndarray, runs: int, horizon: int, seed: int):
    env = gym.make_vec(ENV, num_envs=runs, preference_matrix=matrix.tolist(), horizon=horizon)
    return env, make_agent(name, env, seed=seed)


def fused(name: str, matrix: np.ndarray, runs: int, horizon: int, repeats: int) -> dict:
    """The fused loop's duels/s (best and median of ``repeats`` calls) and its regret at T
    (first call)."""
    env, agent = make(name, matrix, runs, horizon, seed=0)
    run = fused_run(env, agent, METRIC)
    if run is None:
        raise RuntimeError(f"no fused loop for {name}")
    run(min(horizon, 50), np.array([1]), 0)  # JIT warm-up
    walls, regret = [], None
    for rep in range(repeats):
        start = time.perf_counter()
        out = run(horizon, np.array([horizon]), rep)
        walls.append(time.perf_counter() - start)
        regret = out[:, 0].tolist() if regret is None else regret
    return {
        "rate": runs * horizon / min(walls),
        "median": runs * horizon / float(np.median(walls)),
        "regret": regret,
    }


def steps(name: str, matrix: np.ndarray, runs: int, horizon: int) -> dict:
    """``agent.learn``'s duels/s and regret at T (one timed run after a warm-up)."""
    env, agent = make(name, matrix, 2, horizon, seed=0)
    agent.learn(env, 50, checkpoints=[50], seed=0, regret_key=METRIC)  # JIT warm-up
    env, agent = make(name, matrix, runs, horizon, seed=1)
    start = time.perf_counter()
    out = agent.learn(env, horizon, checkpoints=[horizon], seed=1, regret_key=METRIC)
    wall = time.perf_counter() - start
    return {"rate": runs * horizon / wall, "regret": out[:, 0].tolist()}


def duelpy(matrix: np.ndarray, runs: int, horizon: int) -> dict:
    """duelpy's duels/s and regret per algorithm (one run at a time, ``bench_dueling``'s code)."""
    specs = {name: {"cls": PEER_CLASSES[name], "signed": False} for name in AGENTS}
    specs[RUCB_SIGNED] = {"cls": PEER_CLASSES["rucb"], "signed": True}
    config = {
        "matrix": matrix.tolist(),
        "winner": condorcet_winner(matrix),
        "algorithms": specs,
        "runs": runs,
        "horizon": horizon,
    }
    out = run_peer("duelpy", PEER_CODE.format(config=json.dumps(config)))
    return {
        label: {"rate": res["duels"] / res["wall"], "regret": res["regret"]}
        for label, res in out.items()
    }


def instance_table(label: str, matrix: np.ndarray, args: argparse.Namespace) -> list[str]:
    print(f"[{label}] duelpy", file=sys.stderr, flush=True)
    peer = duelpy(matrix, args.peer_runs, args.horizon)
    lines = [
        f"### {label}, T = {args.horizon:,}, {args.runs} runs",
        "",
        "| algorithm | duelpy duels/s | fused duels/s, best (median) | fused / duelpy, best "
        "(median) | step-path duels/s "
        "| fused / step | duelpy regret at T | fused regret at T | step-path regret at T "
        "| fused vs step path | fused vs duelpy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name in AGENTS:
        mine = fused(name, matrix, args.runs, args.horizon, args.repeats)
        slow = steps(name, matrix, args.runs, args.horizon)
        theirs = peer[RUCB_SIGNED] if name == "rucb" else peer[name]
        peer_rate = max(peer[name]["rate"], theirs["rate"])
        print(f"[{label}] {name} {mine['rate']:,.0f} duels/s", file=sys.stderr, flush=True)
        lines.append(
            f"| {name} | {peer_rate:,.0f} | {mine['rate']:,.0f} ({mine['median']:,.0f}) "
            f"| {mine['rate'] / peer_rate:,.0f}x ({mine['median'] / peer_rate:,.0f}x) "
            f"| {slow['rate']:,.0f} "
            f"| {mine['rate'] / slow['rate']:,.0f}x | {fmt(theirs['regret'])} "
            f"| {fmt(mine['regret'])} | {fmt(slow['regret'])} "
            f"| {verdict(mine['regret'], slow['regret'])} "
            f"| {verdict(mine['regret'], theirs['regret'])} |"
        )
    shipped = peer["rucb"]
    lines += [
        "",
        f"duelpy's RUCB as shipped (never learns): {shipped['rate']:,.0f} duels/s, regret "
        f"{fmt(shipped['regret'])}; with +1 / -1 feedback: {peer[RUCB_SIGNED]['rate']:,.0f} "
        "duels/s (the rucb row's regret).",
        "",
    ]
    return lines


def scaling_table(args: argparse.Namespace) -> list[str]:
    label, matrix = next(iter(INSTANCES.items()))
    lines = [
        f"### Duels/s against runs simulated together ({label}, T = {args.horizon:,})",
        "",
        "| algorithm | path | "
        + " | ".join(f"{r:,} run{'s' * (r > 1)}" for r in args.scaling)
        + " |",
        "|---|---|" + "---:|" * len(args.scaling),
    ]
    for name in AGENTS:
        fast = [fused(name, matrix, r, args.horizon, args.repeats)["rate"] for r in args.scaling]
        slow = [steps(name, matrix, r, args.horizon)["rate"] for r in args.scaling]
        print(f"[scaling] {name} done", file=sys.stderr, flush=True)
        lines.append(f"| {name} | fused | " + " | ".join(f"{v:,.0f}" for v in fast) + " |")
        lines.append(f"| {name} | step path | " + " | ".join(f"{v:,.0f}" for v in slow) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="our runs at once")
    parser.add_argument("--peer-runs", type=int, default=5, help="duelpy runs per algorithm")
    parser.add_argument("--horizon", type=int, default=HORIZON)
    parser.add_argument("--repeats", type=int, default=11, help="fused timings per figure")
    parser.add_argument("--threads", type=int, default=0, help="numba threads (0: all)")
    add_common_arguments(parser, quick="smoke run: small budgets, no RESULTS.md update")
    args = parser.parse_args()
    args.scaling = RUNS_SCALING
    if args.quick:
        args.peer_runs, args.horizon, args.repeats, args.scaling = 2, 1000, 2, (1, 10, 100)
    if args.threads:
        numba.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    lines = [
        "## Fused dueling loops vs the step path and duelpy (`benchmarks/bench_fused_dueling.py`)",
        "",
        f"RUCB, RMED1, DTS and MergeRUCB, T = {args.horizon:,}: the fused loop "
        "(`feedbackgym.agents.dueling.fused_loops`, a cell's horizon in one compiled loop per run, "
        f"runs spread over {numba.get_num_threads()} numba threads) and the step path "
        f"(`agent.learn`) on {args.runs} runs at once; duelpy 1.0.0 one run at a time "
        f"({args.peer_runs} runs per algorithm, one core). Fused figures are the best (and, in "
        f"brackets, the median) of {args.repeats} timed calls, each a whole "
        "`run(T, checkpoints, seed)` (env reset and agent setup included): a call lasts tens of "
        "milliseconds, so on this machine, shared with other jobs (load average below), the "
        "median catches time slices lost to them; the scaling table gives the best. The step "
        "path is timed once and duelpy over all its runs. JIT compilation excluded. duelpy's "
        "RUCB is timed as shipped and with +1 / -1 feedback (its sign bug, see "
        "`bench_dueling.py`): the faster sets the speed ratio, the learning (signed) one the "
        "regret column. Regret: cumulative average regret at T, mean ± standard error; "
        "verdicts compare the two samples (z = difference / combined standard error).",
        "",
    ]
    for label, matrix in INSTANCES.items():
        lines += instance_table(label, matrix, args)
    lines += scaling_table(args)
    lines += [
        "",
        f"Load average (1 min) of the machine, shared with other jobs: {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after the run; on {os.cpu_count()} cores.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        update_section("bench_fused_dueling", text)


if __name__ == "__main__":
    main()
