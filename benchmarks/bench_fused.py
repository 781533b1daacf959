"""Fused regret loops vs the step path vs SMPyBandits, on a family of instances (issues 13, 23).

The family: Bernoulli, K in {2, 5, 10, 20, 50, 200}, each with an easy instance (best arm 0.8,
the others evenly over 0.7 .. 0.5: gaps 0.1 to 0.3) and a hard one (the top min(K, 20) arms
from 0.65 down, 0.01 and 0.02 apart in turn; the rest evenly over 0.3 .. 0.05), T = 20,000.
Ours: ``run_study`` (what ``feedbackgym regret`` runs), one process, numba on all cores, JIT
compile excluded, best of 3 studies. SMPyBandits 0.9.7 in its own venv (``_peers.py``): one
run at a time on one thread (its rate per pull, with fewer pulls where it is slow), credited
with perfect scaling over every core; its own Evaluator with ``n_jobs=-1`` (its default
setting: joblib spreads the repetitions over all cores) is timed on the same instances, and
the ratio is taken against the higher of the two. Each claim is the minimum over the family.

Also: Thompson sampling's thetas drawn per pull (counted in the fused loop) against the Beta
variates per second this machine draws on all cores (the ceiling those draws allow), Thompson's
rate against the horizon, pulls/s against the number of runs and ``--workers 2``. Writes its
section of benchmarks/RESULTS.md (run it on a quiet machine: it times every core).

    .venv/bin/python benchmarks/bench_fused.py            # full (about 12 minutes on 2 quiet cores)
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
from _parts import add_common_arguments  # noqa: E402
from _peers import run_peer  # noqa: E402
from _results import update_section  # noqa: E402
from bench_bandits import POLICIES, sem  # noqa: E402

from feedbackgym.agents.bandits import fused_loops as fused_bandits  # noqa: E402
from feedbackgym.agents.bandits.kernels import draw_uniform  # noqa: E402
from feedbackgym.studies import RegretStudy, run_study  # noqa: E402

AGENTS = list(POLICIES)  # ucb1, kl-ucb, thompson
#: the least ratio to SMPyBandits' all-core rate each agent must reach on every instance
TARGETS = {"ucb1": 1000, "kl-ucb": 1000, "thompson": 500}
KS = (2, 5, 10, 20, 50, 200)
CORES = os.cpu_count() or 1


def easy(k: int) -> list[float]:
    """Best arm 0.8, the others evenly over 0.7 .. 0.5 (gaps 0.1 to 0.3)."""
    return [0.8] + [round(float(m), 6) for m in np.linspace(0.7, 0.5, k - 1)]


def hard(k: int) -> list[float]:
    """The top min(K, 20) arms from 0.65 down, 0.01 and 0.02 apart in turn; the rest evenly
    over 0.3 .. 0.05."""
    top, means = 0.65, []
    for i in range(min(k, 20)):
        means.append(round(top, 6))
        top -= 0.01 if i % 2 == 0 else 0.02
    return means + [round(float(m), 6) for m in np.linspace(0.3, 0.05, max(k - 20, 0))]


def family(ks: tuple[int, ...] = KS) -> list[tuple[str, list[float]]]:
    """(name, means) of the easy and the hard instance of each K."""
    return [(f"{kind} K={k}", f(k)) for k in ks for kind, f in (("easy", easy), ("hard", hard))]


# ----- ours ---------------------------------------------------------------------------------------
def ours(
    agent: str,
    means: list[float],
    runs: int,
    horizon: int,
    path: str,
    workers: int = 1,
    per_cell: int = 0,
) -> dict[str, float]:
    """One study of ``agent``: the pulls/s ``feedbackgym regret`` reports (runs x T over the
    cells' loop time), the end-to-end rate (all of ``run_study``) and the final regret."""
    study = RegretStudy(
        env="feedbackgym/BernoulliBandit-v0",
        env_kwargs={"means": means},
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


def best_of(count: int, *args: object, **kwargs: object) -> dict[str, float]:
    """The fastest of ``count`` identical studies (same seeds, so the same regret)."""
    return max((ours(*args, **kwargs) for _ in range(count)), key=lambda r: r["rate"])


def thompson_work(means: list[float], runs: int, horizon: int) -> tuple[float, float]:
    """(thetas drawn, agent uniforms taken) per pull by the fused Thompson loop over ``runs``
    runs, counted by the loop itself (counting leaves every number as it is)."""
    mu = np.ascontiguousarray(np.tile(np.asarray(means, dtype=np.float64), (runs, 1)))
    work = np.zeros((runs, 2))
    fused_bandits.thompson_beta_loop(
        mu,
        fused_bandits.quantile_bins(),
        work,
        np.array([horizon], dtype=np.int64),
        np.random.SeedSequence(0).generate_state(runs, dtype=np.uint64),
        np.random.SeedSequence(1).generate_state(runs, dtype=np.uint64),
        np.zeros((runs, 1)),
    )
    return tuple(float(v) for v in work.sum(axis=0) / (runs * horizon))


# ----- SMPyBandits --------------------------------------------------------------------------------
PEER_HEAD = """
import contextlib, io, json, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
with contextlib.redirect_stdout(io.StringIO()):  # its import prints notes on optional modules
    from SMPyBandits.Policies import UCB, klUCB, Thompson
POLICY = dict(UCB=UCB, klUCB=klUCB, Thompson=Thompson)
"""

#: One run at a time on one thread, as ``bench_bandits.py`` times it; runs until ``budget``
#: seconds are spent (the last run cut there), so a slow policy is timed on fewer pulls.
PEER_LEAN = (
    PEER_HEAD
    + """
mu = np.array({means}); best = mu.max(); k = mu.size; horizon = {horizon}
result = {{}}
for name in {policies}:
    finals, pulls, seconds = [], 0, 0.0
    for run in range({max_runs}):
        draws = np.random.default_rng(run).random(horizon)
        policy = POLICY[name](k); policy.startGame()
        regret, t = 0.0, 0
        start = time.perf_counter()
        while t < horizon:
            arm = policy.choice()
            policy.getReward(arm, float(draws[t] < mu[arm]))
            regret += best - mu[arm]
            t += 1
            if t & 255 == 0 and seconds + time.perf_counter() - start > {budget}:
                break
        seconds += time.perf_counter() - start
        pulls += t
        if t == horizon:
            finals.append(regret)
        if seconds > {budget}:
            break
    result[name] = {{"finals": finals, "pulls": pulls, "seconds": seconds}}
print(json.dumps(result))
"""
)

#: Its Evaluator with n_jobs=-1: joblib runs the repetitions on every core. Python >= 3.11's
#: random.seed refuses the numpy integers the Evaluator draws as seeds, so they are handed out
#: as Python ints (the only change; without it the parallel Evaluator stops with a TypeError).
PEER_EVALUATOR = (
    PEER_HEAD
    + """
with contextlib.redirect_stdout(io.StringIO()):
    from SMPyBandits.Arms import Bernoulli
    from SMPyBandits.Environment import Evaluator
_randint = np.random.randint
np.random.randint = lambda *a, **kw: np.asarray(_randint(*a, **kw)).astype(object)
result = {{}}
for name, horizon in [("UCB", 10)] + {horizons}:  # the first starts joblib's workers
    config = {{
        "horizon": horizon, "repetitions": {repetitions}, "n_jobs": -1, "verbosity": 0,
        "environment": [{{"arm_type": Bernoulli, "params": {means}}}],
        "policies": [{{"archtype": POLICY[name], "params": {{}}}}],
    }}
    with contextlib.redirect_stdout(io.StringIO()):
        evaluation = Evaluator(config)
        start = time.perf_counter()
        evaluation.startOneEnv(0, evaluation.envs[0])
        seconds = time.perf_counter() - start
    result[name] = {{"pulls": horizon * {repetitions}, "seconds": seconds}}
print(json.dumps(result))
"""
)


def smpy_lean(means: list[float], horizon: int, budget: float, max_runs: int) -> dict:
    """SMPyBandits' one-thread rate and final regrets, per agent."""
    names = [POLICIES[agent][0] for agent in AGENTS]
    code = PEER_LEAN.format(
        means=means, horizon=horizon, policies=names, budget=budget, max_runs=max_runs
    )
    raw = run_peer("smpybandits", code)
    return {
        agent: {
            "rate": raw[POLICIES[agent][0]]["pulls"] / raw[POLICIES[agent][0]]["seconds"],
            "pulls": raw[POLICIES[agent][0]]["pulls"],
            "finals": raw[POLICIES[agent][0]]["finals"],
        }
        for agent in AGENTS
    }


def smpy_evaluator(means: list[float], horizons: dict[str, int], repetitions: int) -> dict:
    """SMPyBandits' Evaluator with n_jobs=-1: pulls/s over the whole parallel evaluation."""
    pairs = [(POLICIES[agent][0], horizons[agent]) for agent in AGENTS]
    code = PEER_EVALUATOR.format(means=means, horizons=pairs, repetitions=repetitions)
    raw = run_peer("smpybandits", code)
    return {
        agent: raw[POLICIES[agent][0]]["pulls"] / raw[POLICIES[agent][0]]["seconds"]
        for agent in AGENTS
    }


# ----- this machine's draws per second ------------------------------------------------------------
@njit(parallel=True, cache=True)
def _uniforms(seeds: np.ndarray, per_stream: int) -> float:
    total = 0.0
    for n in prange(seeds.size):
        state = seeds[n : n + 1].copy()
        acc = 0.0
        for _ in range(per_stream):
            acc += draw_uniform(state, 0)
        total += acc
    return total


@njit(parallel=True, cache=True)
def _betas(seeds: np.ndarray, per_stream: int, a: float, b: float) -> float:
    """Beta(a, b) variates as the fused loop draws a full theta (a ratio of two gammas)."""
    shapes = fused_bandits.shape_constants(int(max(a, b)) + 1)
    total = 0.0
    for n in prange(seeds.size):
        state = np.empty(2, dtype=np.uint64)
        state[0] = seeds[n]
        state[1] = seeds[n] + np.uint64(1)
        alpha = np.array([a])
        beta = np.array([b])
        acc = 0.0
        for _ in range(per_stream):
            acc += fused_bandits.draw_theta(state, shapes, alpha, beta, 0)
        total += acc
    return total


def per_second(kernel, *args: object, seconds: float = 2.0) -> float:
    """Draws per second of ``kernel(seeds, per_stream, *args)`` on all of numba's threads."""
    seeds = np.arange(1, 2 * numba.get_num_threads() + 1, dtype=np.uint64) * np.uint64(7919)
    kernel(seeds, 10, *args)
    per_stream, best = 100_000, 0.0
    while True:
        start = time.perf_counter()
        kernel(seeds, per_stream, *args)
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
    parser.add_argument("--runs", type=int, default=100, help="our runs per instance")
    parser.add_argument(
        "--peer-seconds", type=float, default=3.0, help="SMPyBandits' one-thread timing, per policy"
    )
    parser.add_argument("--peer-runs", type=int, default=12, help="SMPyBandits' most runs")
    parser.add_argument(
        "--evaluator-seconds",
        type=float,
        default=1.5,
        help="SMPyBandits' Evaluator: about this long per repetition (shorter T where slow)",
    )
    parser.add_argument(
        "--scaling", default="1,10,100,1000,10000", help="run counts of the scaling table"
    )
    parser.add_argument(
        "--steps-max-runs", type=int, default=1000, help="largest run count timed on the step path"
    )
    parser.add_argument("--ks", default=",".join(map(str, KS)), help="the family's K")
    add_common_arguments(parser, quick="smoke run: tiny budgets, no RESULTS.md update")
    args = parser.parse_args()
    if args.quick:
        args.horizon, args.runs, args.scaling, args.ks = 2000, 20, "1,10", "2,50"
        args.peer_seconds, args.peer_runs, args.evaluator_seconds = 0.3, 2, 0.2
    instances = family(tuple(int(k) for k in args.ks.split(",")))
    horizon, runs = args.horizon, args.runs
    scaling = [int(r) for r in args.scaling.split(",")]
    repetitions = 2 * CORES  # the Evaluator's repetitions: two per core
    started = time.perf_counter()

    for agent in AGENTS:  # JIT compile (and load caches) outside the timings
        for path in ("fused", "steps"):
            ours(agent, easy(3), 2, 50, path)

    # ----- the family ---------------------------------------------------------------------------
    rows = []
    for name, means in instances:
        lean = smpy_lean(means, horizon, args.peer_seconds, args.peer_runs)
        horizons = {
            agent: int(min(horizon, max(200, lean[agent]["rate"] * args.evaluator_seconds)))
            for agent in AGENTS
        }
        evaluator = smpy_evaluator(means, horizons, repetitions)
        for agent in AGENTS:
            fused = best_of(3, agent, means, runs, horizon, "fused")
            steps = ours(agent, means, runs, horizon, "steps")
            credit = lean[agent]["rate"] * CORES
            peer_rate = max(credit, evaluator[agent])
            finals = lean[agent]["finals"]
            peer = {"mean": float(np.mean(finals)) if finals else math.nan, "sem": sem(finals)}
            row = {
                "name": name,
                "means": means,
                "agent": agent,
                "fused": fused,
                "steps": steps,
                "lean": lean[agent],
                "evaluator": evaluator[agent],
                "evaluator_horizon": horizons[agent],
                "credit": credit,
                "peer_rate": peer_rate,
                "peer": peer,
                "ratio": fused["rate"] / peer_rate,
            }
            rows.append(row)
            print(
                f"{name:11s} {agent:9s} fused {fused['rate'] / 1e6:7.2f}M/s  steps "
                f"{steps['rate'] / 1e6:5.2f}M/s  SMPyBandits 1 thread "
                f"{lean[agent]['rate'] / 1e3:6.1f}k/s ({lean[agent]['pulls']:,} pulls), "
                f"Evaluator {evaluator[agent] / 1e3:6.1f}k/s  x{row['ratio']:,.0f}  regret "
                f"{fused['mean']:.1f} / {steps['mean']:.1f} / {peer['mean']:.1f} "
                f"[{time.perf_counter() - started:.0f}s]",
                flush=True,
            )

    # ----- Thompson: the thetas it draws against the draws this machine makes ---------------------
    uniform_rate = per_second(_uniforms)
    beta_rate = per_second(_betas, 1300.0, 700.0)
    work = {name: thompson_work(means, runs, horizon) for name, means in instances}
    print(
        f"this machine: {uniform_rate / 1e6:,.0f}M uniforms/s, {beta_rate / 1e6:,.1f}M Beta "
        f"variates/s on {numba.get_num_threads()} threads",
        flush=True,
    )

    lines = [
        "## Fused regret loops vs step path vs SMPyBandits 0.9.7 on a family of instances "
        "(`bench_fused.py`, issues 13 and 23)",
        "",
        f"Bernoulli, T = {horizon:,}, K in {{{args.ks.replace(',', ', ')}}}, each K an *easy* "
        "instance (best arm 0.8, the others evenly over 0.7 .. 0.5: gaps 0.1 to 0.3) and a "
        "*hard* one (the top min(K, 20) arms from 0.65 down, 0.01 and 0.02 apart in turn; the "
        "rest evenly over 0.3 .. 0.05). "
        f"Ours: {runs} runs through `run_study` (what `feedbackgym regret` runs), one process, "
        f"numba on all {CORES} cores, JIT compile excluded; *pulls/s* is the rate `feedbackgym "
        "regret` reports (runs x T over the cells' loop time), best of 3 studies (the same "
        "seeds, so the same regret). "
        f"SMPyBandits on {CORES} cores, as its users run it: its one-thread rate (one run at a "
        f"time, up to {args.peer_runs} runs or {args.peer_seconds:g} s per policy: a slow policy "
        f"is timed on fewer pulls, a run cut short counting its pulls) credited with perfect "
        f"scaling (x {CORES}), or its own `Evaluator` with `n_jobs=-1` (its default: joblib "
        f"spreads {repetitions} repetitions over every core; T cut to about "
        f"{args.evaluator_seconds:g} s a repetition where the policy is slow), whichever is "
        "higher. The ratio is fused pulls/s over that rate; each claim below is its minimum "
        "over the family. Targets: UCB1 and KL-UCB x1000, Thompson x500 on every instance.",
        "",
        "| instance | agent | fused pulls/s | steps pulls/s | SMPyBandits 1 thread (pulls timed)"
        f" | 1 thread x {CORES} | Evaluator n_jobs=-1 | fused / SMPyBandits | target "
        "| regret fused "
        "| regret steps | regret SMPyBandits (runs) | z fused-steps |",
        "|---|---|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        target = TARGETS[row["agent"]]
        fused, steps, peer = row["fused"], row["steps"], row["peer"]
        peer_regret = (
            f"{peer['mean']:.1f} ± {peer['sem']:.1f} ({len(row['lean']['finals'])})"
            if row["lean"]["finals"]
            else "- (0)"
        )
        lines.append(
            f"| {row['name']} | {row['agent']} | {fused['rate']:,.0f} | {steps['rate']:,.0f} | "
            f"{row['lean']['rate']:,.0f} ({row['lean']['pulls']:,}) | {row['credit']:,.0f} | "
            f"{row['evaluator']:,.0f} | x{row['ratio']:,.0f} | "
            f"{'met' if row['ratio'] >= target else 'MISSED'} | "
            f"{fused['mean']:.1f} ± {fused['sem']:.1f} | {steps['mean']:.1f} ± {steps['sem']:.1f}"
            f" | {peer_regret} | {z(fused, steps):.2f} |"
        )
    lines += [
        "",
        "### Minimum over the family",
        "",
        "| agent | least fused / SMPyBandits | on | target | |",
        "|---|---:|---|---:|:---:|",
    ]
    for agent in AGENTS:
        least = min((row for row in rows if row["agent"] == agent), key=lambda r: r["ratio"])
        target = TARGETS[agent]
        lines.append(
            f"| {agent} ({POLICIES[agent][0]}) | x{least['ratio']:,.0f} | {least['name']} | "
            f"x{target} | {'met' if least['ratio'] >= target else 'MISSED'} |"
        )
    lines += [
        "",
        "The Evaluator's rate is the whole parallel evaluation (spawning workers, copying the "
        "policy, storing each step's result), what its users wait for; where it is below the "
        "credited one-thread rate, the credit is the fairer (harder) yardstick. Python 3.11's "
        "`random.seed` refuses the numpy integers the Evaluator hands its workers as seeds, so "
        "they are passed as Python ints (the only change to it; without it the parallel "
        "Evaluator stops with a TypeError).",
    ]

    # ----- Thompson's draws -----------------------------------------------------------------------
    lines += [
        "",
        "### Thompson sampling: the draws it needs and the draws this machine makes",
        "",
        f"This machine, all {numba.get_num_threads()} numba threads: {beta_rate:,.0f} Beta "
        "variates/s (Beta(1300, 700) as a ratio of two Marsaglia-Tsang gammas, the fused loop's "
        f"full draw) and {uniform_rate:,.0f} splitmix64 uniforms/s. *Thetas per pull*: the "
        "thetas the fused loop draws (full, conditioned on a side of a threshold, or within a "
        f"quantile bin), counted by the loop itself over {runs} runs; *uniforms per pull*: the "
        "words it takes from the agent's stream (the env's reward is one more). *Ceiling*: "
        "Beta variates/s over thetas per pull, the rate these draws alone allow (a conditioned "
        "draw costs at least a full one; the uniforms allow far more); *target*: x500 "
        "SMPyBandits' rate above.",
        "",
        "| instance | thetas per pull | uniforms per pull | ceiling pulls/s | fused pulls/s "
        "(% of ceiling) | target pulls/s | the draws allow the target |",
        "|---|---:|---:|---:|---:|---:|:---:|",
    ]
    for row in rows:
        if row["agent"] != "thompson":
            continue
        thetas, words = work[row["name"]] if row["name"] in work else (math.nan, math.nan)
        ceiling = beta_rate / thetas if thetas > 0 else math.inf
        target = TARGETS["thompson"] * row["peer_rate"]
        lines.append(
            f"| {row['name']} | {thetas:.2f} | {words:.1f} | {ceiling:,.0f} | "
            f"{row['fused']['rate']:,.0f} ({100 * row['fused']['rate'] / ceiling:.0f}%) | "
            f"{target:,.0f} | {'yes' if ceiling >= target else 'NO'} |"
        )
    missing = [r for r in rows if r["agent"] == "thompson" and r["ratio"] < TARGETS["thompson"]]
    short = [  # the thetas drawn per pull, at this machine's rate, cannot reach the target
        r["name"]
        for r in missing
        if work[r["name"]][0] > 0
        and beta_rate / work[r["name"]][0] < TARGETS["thompson"] * r["peer_rate"]
    ]
    missed = [r["name"] for r in missing if r["name"] not in short]
    lines.append("")
    if short:
        lines.append(
            f"On {', '.join(short)} x500 is out of reach for a loop that draws these thetas: "
            "the thetas drawn per pull (counted) at this machine's rate of Beta variates "
            "(measured in the same run) allow less than the target, before any other work."
        )
    if missed:
        lines.append(
            f"On {', '.join(missed)} the draws would allow x500 and the fused loop misses it: "
            "there the time goes elsewhere than into drawing thetas (incomplete beta functions "
            "for the thresholds and crossings; in the first 45 K steps, a uniform and a table "
            "look-up for every arm at every step)."
        )
    if not missing:
        lines.append("Thompson sampling reaches x500 on every instance.")

    # ----- where Thompson sampling's time goes: its first steps ----------------------------------
    horizons = sorted({1_000, 4_000, horizon, 4 * horizon})
    lines += [
        "",
        f"Thompson sampling, fused, {runs} runs, pulls/s against the horizon: while the "
        "posteriors are wide, every arm's theta can win (each is placed in a quantile bin, and "
        "those that can win are drawn); later the leader wins without a draw until some theta "
        "crosses its threshold, and while two arms race both are drawn at every step.",
        "",
        "| instance | " + " | ".join(f"T = {h:,}" for h in horizons) + " |",
        "|---|" + "---:|" * len(horizons),
    ]
    for name, means in (("easy K=10", easy(10)), ("hard K=10", hard(10))):
        rates = [ours("thompson", means, runs, h, "fused")["rate"] for h in horizons]
        lines.append(f"| {name} | " + " | ".join(f"{rate:,.0f}" for rate in rates) + " |")
    # ----- scaling with the number of runs -------------------------------------------------------
    head = " | ".join(f"{r:,} runs" for r in scaling)
    lines += [
        "",
        "### Pulls/s against runs (easy K=10, one cell of all runs)",
        "",
        f"| agent | path | {head} |",
        "|---|---|" + "---:|" * len(scaling),
    ]
    for agent in AGENTS:
        for path in ("fused", "steps"):
            cells = []
            for count in scaling:
                if path == "steps" and count > args.steps_max_runs:
                    cells.append("not timed")
                    continue
                rate = ours(agent, easy(10), count, horizon, path)["rate"]
                cells.append(f"{rate:,.0f}")
                print(f"{agent} {path} {count} runs: {rate / 1e6:.2f}M/s", flush=True)
            lines.append(f"| {agent} | {path} | " + " | ".join(cells) + " |")
    # ----- two worker processes ------------------------------------------------------------------
    lines += [
        "",
        "### `--workers 2` (two processes, numba threads per process = 1), fused, easy K=10",
        "",
        "| agent | runs | pulls/s, 1 process x 2 threads | pulls/s per process (1 thread) "
        "| end to end, 2 processes |",
        "|---|---:|---:|---:|---:|",
    ]
    shares = []  # per-process one-thread rate / the one-process two-thread rate
    for agent in AGENTS:
        for count in sorted({runs, max(scaling)}):
            one = ours(agent, easy(10), count, horizon, "fused")
            two = ours(
                agent, easy(10), count, horizon, "fused", workers=2, per_cell=math.ceil(count / 2)
            )
            print(
                f"workers=2 {agent} {count} runs: in-process {one['rate'] / 1e6:.2f}M/s, per "
                f"worker {two['rate'] / 1e6:.2f}M/s, end to end {two['wall_rate'] / 1e6:.2f}M/s",
                flush=True,
            )
            shares.append(two["rate"] / one["rate"])
            lines.append(
                f"| {agent} | {count:,} | {one['rate']:,.0f} | {two['rate']:,.0f} | "
                f"{two['wall_rate']:,.0f} |"
            )
    lines += [
        "",
        f"Per process, the rate with one thread is {min(shares):.2f}-{max(shares):.2f} of the "
        "one-process two-thread rate (each worker sets numba to cpu_count / workers threads, so "
        "the two processes do not oversubscribe the cores). End to end, "
        "two processes pay for spawning and importing (seconds), which small studies feel.",
        f"Load average while measuring: {os.getloadavg()[0]:.1f} (1 minute, at the end); the "
        f"whole benchmark took {(time.perf_counter() - started) / 60:.1f} minutes.",
    ]
    if args.quick:
        print("\n".join(lines))
    else:
        update_section("bench_fused", "\n".join(lines))
        print("wrote benchmarks/RESULTS.md")


if __name__ == "__main__":
    main()
