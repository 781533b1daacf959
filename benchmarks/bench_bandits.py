"""Bandit regret study, side by side with SMPyBandits: throughput and fidelity (issue 2, section 7).

Instance: Bernoulli, K = 10, means linspace(0.9, 0.1, 10), T = 20,000. SMPyBandits 0.9.7 runs one
run at a time in its own venv (see _peers.py); we run ``--runs`` runs at once through the same
``run_study`` that ``feedbackgym regret`` uses. Writes its section of benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/bench_bandits.py            # full (a few minutes)
    .venv/bin/python benchmarks/bench_bandits.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _parts import add_common_arguments  # noqa: E402
from _peers import run_peer  # noqa: E402
from _results import update_section  # noqa: E402

from feedbackgym.studies import RegretStudy, run_study  # noqa: E402

K = 10
MEANS = [round(float(m), 6) for m in np.linspace(0.9, 0.1, K)]
# name here -> (SMPyBandits policy, its pulls/s as measured for the issue, one run at a time)
POLICIES = {
    "ucb1": ("UCB", 37_000),
    "kl-ucb": ("klUCB", 6_500),
    "thompson": ("Thompson", 27_000),
}

PEER_CODE = """
import json, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
from SMPyBandits.Policies import {policy}
mu = np.array({means}); best = mu.max()
finals, pulls, seconds = [], 0, 0.0
for run in range({runs}):
    rng = np.random.default_rng(run)
    draws = rng.random({horizon})
    policy = {policy}({k}); policy.startGame()
    regret = 0.0
    start = time.perf_counter()
    for t in range({horizon}):
        arm = policy.choice()
        policy.getReward(arm, float(draws[t] < mu[arm]))
        regret += best - mu[arm]
    seconds += time.perf_counter() - start
    pulls += {horizon}
    finals.append(regret)
print(json.dumps({{"finals": finals, "pulls_per_second": pulls / seconds}}))
"""


def sem(values: list[float] | np.ndarray) -> float:
    values = np.asarray(values, dtype=float)
    return float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0


def ours(name: str, runs: int, horizon: int, workers: int) -> dict[str, float]:
    study = RegretStudy(
        env="feedbackgym/BernoulliBandit-v0",
        env_kwargs={"means": MEANS},
        agents=[name],
        horizon=horizon,
        runs=runs,
        seed=0,
        runs_per_cell=math.ceil(runs / workers),
    )
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        (row,) = run_study(study, out, workers=workers, progress=False)
        wall = time.perf_counter() - start
    return {
        "mean": row["final_regret_mean"],
        "sem": row["final_regret_sem"],
        "pulls_per_second": runs * horizon / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="our runs per policy")
    parser.add_argument("--peer-runs", type=int, default=30, help="SMPyBandits runs per policy")
    parser.add_argument("--horizon", type=int, default=20_000)
    add_common_arguments(
        parser,
        workers=1,
        workers_help="our worker processes",
        quick="smoke run: tiny budgets, no RESULTS.md update",
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.peer_runs, args.horizon = 200, 3, 2000

    rows = []
    for name, (policy, issue_rate) in POLICIES.items():
        mine = ours(name, args.runs, args.horizon, args.workers)
        peer = run_peer(
            "smpybandits",
            PEER_CODE.format(
                policy=policy, means=MEANS, runs=args.peer_runs, horizon=args.horizon, k=K
            ),
        )
        peer_mean, peer_sem = float(np.mean(peer["finals"])), sem(peer["finals"])
        z = abs(mine["mean"] - peer_mean) / math.hypot(mine["sem"], peer_sem)
        floor = max(issue_rate, peer["pulls_per_second"])
        row = {
            "name": name,
            "policy": policy,
            "ours_rate": mine["pulls_per_second"],
            "peer_rate": peer["pulls_per_second"],
            "issue_rate": issue_rate,
            "speedup": mine["pulls_per_second"] / floor,
            "ours": (mine["mean"], mine["sem"]),
            "peer": (peer_mean, peer_sem),
            "z": z,
        }
        rows.append(row)
        print(
            f"{name:9s} ours {row['ours_rate'] / 1e6:6.2f}M pulls/s  SMPyBandits "
            f"{row['peer_rate'] / 1e3:6.1f}k (issue: {issue_rate / 1e3:.1f}k)  "
            f"x{row['speedup']:.0f}  regret {mine['mean']:.1f}±{mine['sem']:.1f} vs "
            f"{peer_mean:.1f}±{peer_sem:.1f} (z={z:.2f})",
            flush=True,
        )

    final = {r["name"]: r["ours"][0] for r in rows}
    ucb_above = final["ucb1"] > max(final["kl-ucb"], final["thompson"])
    lines = [
        "## Bandits vs SMPyBandits 0.9.7 (issue 2)",
        "",
        f"Bernoulli, K = {K}, means linspace(0.9, 0.1, {K}), T = {args.horizon:,}. "
        f"Ours: {args.runs:,} runs at once through `run_study` ({args.workers} process(es); "
        f"numba kernels on all cores). SMPyBandits: {args.peer_runs} runs, one at a time. "
        "Speed-up is against the larger of SMPyBandits' rate measured here and the rate given "
        "in the issue; target x100.",
        "",
        "| policy | ours pulls/s | SMPyBandits pulls/s (here / issue) | speed-up | target x100 "
        "| ours regret at T | SMPyBandits regret at T | agree (z < 3) |",
        "|---|---:|---:|---:|:---:|---:|---:|:---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} ({r['policy']}) | {r['ours_rate']:,.0f} | "
            f"{r['peer_rate']:,.0f} / {r['issue_rate']:,} | x{r['speedup']:.0f} | "
            f"{'met' if r['speedup'] >= 100 else 'MISSED'} | "
            f"{r['ours'][0]:.1f} ± {r['ours'][1]:.1f} | {r['peer'][0]:.1f} ± {r['peer'][1]:.1f} | "
            f"{'yes' if r['z'] < 3 else 'no'} (z = {r['z']:.2f}) |"
        )
    lines += [
        "",
        f"UCB1's regret is above both KL-UCB's and Thompson's: {'yes' if ucb_above else 'NO'}.",
    ]
    if args.quick:
        print("\n".join(lines))
    else:
        update_section("bench_bandits", "\n".join(lines))
        print("wrote benchmarks/RESULTS.md")


if __name__ == "__main__":
    main()
