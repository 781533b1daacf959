"""Dueling bandits against duelpy: duels per second and regret at T; a K = 100 study's timings.

Instance of issue 3: K = 10, u = linspace(1, 0, 10), P_ij = 1 / (1 + exp(-3 (u_i - u_j))),
T = 2,000. duelpy 1.0.0 runs one run at a time in its own venv (numpy 1.23.5, scipy 1.10.1);
ours runs ``--runs`` runs at once. Both are timed on one core (numba threads = 1 unless
``--threads``), env and agent together, JIT compilation excluded. Regret is the cumulative
average regret at T, mean +- standard error over runs.

duelpy 1.0.0's RelativeUCB reads the outcome of a duel as ``duel(c, d) < 0`` while its feedback
mechanisms return a bool (True when c wins), so every duel is credited to the champion c and the
algorithm never learns (uniform-random regret). Besides duelpy as shipped, RUCB is also run with
a feedback mechanism that returns +1 / -1 instead of True / False, the signed convention that
line expects (its only use of the outcome); duelpy's code is not changed. A second table repeats
RUCB and Beat-the-Mean at a longer horizon (``--long-horizon``).

Run from the repository root: ``python benchmarks/bench_dueling.py`` (``--quick`` for a smoke
run that does not touch RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402

import feedbackgym  # noqa: E402, F401
from benchmarks._parts import add_common_arguments  # noqa: E402
from benchmarks._peers import run_peer  # noqa: E402
from benchmarks._results import update_section  # noqa: E402
from feedbackgym.agents import make_agent  # noqa: E402
from feedbackgym.studies.regret import RegretStudy  # noqa: E402
from feedbackgym.studies.runner import run_study  # noqa: E402

ENV = "feedbackgym/DuelingBandit-v0"
K, HORIZON, SCALE = 10, 2000, 3.0
SHUFFLE_SEED = 12345
#: Our registry name -> duelpy class (the seven algorithms duelpy has).
PEER_CLASSES = {
    "interleaved-filter": "InterleavedFiltering",
    "beat-the-mean": "BeatTheMeanBandit",
    "rucb": "RelativeUCB",
    "rmed1": "Rmed1",
    "dts": "DoubleThompsonSampling",
    "ccb": "CopelandConfidenceBound",
    "merge-rucb": "MergeRUCB",
}
ALL_AGENTS = [*PEER_CLASSES, "self-sparring"]
#: Label of duelpy's RUCB run with +1 / -1 feedback (the sign convention its code expects).
RUCB_SIGNED = "rucb, duelpy's sign bug worked around"

PEER_CODE = """
import json, time
import numpy as np
import duelpy.algorithms as algorithms
from duelpy.feedback import MatrixFeedback

config = json.loads({config!r})
P = np.array(config["matrix"])
winner = config["winner"]
delta = P[winner] - 0.5


class Recording(MatrixFeedback):
    # Keeps the pairs; regret is computed after the timed run, so no metric slows duelpy down.
    # signed: answer +1 / -1 instead of True / False (what RelativeUCB's `duel(c, d) < 0` reads).
    def __init__(self, *args, signed=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.pairs = []
        self.signed = signed

    def duel(self, i, j):
        self.pairs.append((i, j))
        won = super().duel(i, j)
        return (1 if won else -1) if self.signed else won


out = {{}}
for label, spec in config["algorithms"].items():
    cls = getattr(algorithms, spec["cls"])
    regrets, wall, duels, believed, arms_left = [], 0.0, 0, [], []
    for run in range(config["runs"]):
        rs = np.random.RandomState(run)
        feedback = Recording(P, random_state=rs, signed=spec["signed"])
        algorithm = cls(feedback, time_horizon=config["horizon"], random_state=rs)
        start = time.perf_counter()
        algorithm.run()
        wall += time.perf_counter() - start
        pairs = np.array(feedback.pairs)
        duels += len(pairs)
        regrets.append(float(0.5 * (delta[pairs[:, 0]] + delta[pairs[:, 1]]).sum()))
        if hasattr(algorithm, "preference_estimate"):
            # The algorithm's own estimate of how often the Condorcet winner beats the others.
            est = algorithm.preference_estimate.get_mean_estimate_matrix().preferences
            believed.append(float(np.delete(est[winner], winner).mean()))
        if hasattr(algorithm, "comparison_history"):
            arms_left.append(int(algorithm.comparison_history.size_working_set))
    out[label] = {{
        "regret": regrets, "wall": wall, "duels": duels,
        "believed": believed, "arms_left": arms_left,
    }}
print(json.dumps(out))
"""


def instance(shuffled: bool = False) -> np.ndarray:
    u = np.linspace(1.0, 0.0, K)
    p = 1.0 / (1.0 + np.exp(-SCALE * (u[:, None] - u[None, :])))
    if shuffled:
        perm = np.random.default_rng(SHUFFLE_SEED).permutation(K)
        p = p[np.ix_(perm, perm)]
    p = 0.5 * (p + 1.0 - p.T)  # exact P + P^T = 1 after rounding
    np.fill_diagonal(p, 0.5)
    return p


def condorcet_winner(p: np.ndarray) -> int:
    return int(np.argmax((p > 0.5).sum(axis=1)))


def random_play_regret(horizon: int, shuffled: bool = False) -> float:
    """Expected average regret of uniform-random play: T x the mean gap Delta_k over all K arms."""
    p = instance(shuffled)
    return horizon * float((p[condorcet_winner(p)] - 0.5).mean())


def run_duelpy(
    algorithms: dict[str, tuple[str, bool]],
    runs: int,
    horizon: int = HORIZON,
    shuffled: bool = False,
) -> dict:
    """duelpy's regret per label; ``algorithms``: label -> (our registry name, signed feedback)."""
    p = instance(shuffled)
    config = {
        "matrix": p.tolist(),
        "winner": condorcet_winner(p),
        "algorithms": {
            label: {"cls": PEER_CLASSES[name], "signed": signed}
            for label, (name, signed) in algorithms.items()
        },
        "runs": runs,
        "horizon": horizon,
    }
    return run_peer("duelpy", PEER_CODE.format(config=json.dumps(config)))


def run_ours(
    name: str, runs: int, shuffled: bool = False, seed: int = 0, horizon: int = HORIZON
) -> dict:
    matrix = instance(shuffled).tolist()
    env = gym.make_vec(ENV, num_envs=runs, preference_matrix=matrix, horizon=horizon)
    warm = gym.make_vec(ENV, num_envs=2, preference_matrix=matrix, horizon=horizon)
    make_agent(name, warm, seed=seed).learn(warm, 50, seed=seed, regret_key="regret_average")
    agent = make_agent(name, env, seed=seed)
    start = time.perf_counter()
    regret = agent.learn(
        env, horizon, checkpoints=[horizon], seed=seed, regret_key="regret_average"
    )
    wall = time.perf_counter() - start
    # Beat-the-Mean's working-set size per run (absent for the other agents).
    size = getattr(agent, "size", None)
    return {
        "regret": regret[:, 0].tolist(),
        "wall": wall,
        "duels": runs * horizon,
        "arms_left": [] if size is None else np.asarray(size).tolist(),
    }


def mean_sem(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values)
    return float(arr.mean()), float(arr.std(ddof=1) / math.sqrt(arr.size))


def verdict(ours: list[float], peer: list[float]) -> str:
    (m1, s1), (m2, s2) = mean_sem(ours), mean_sem(peer)
    z = (m1 - m2) / max(math.hypot(s1, s2), 1e-12)
    label = "lower" if z < -2 else ("within error" if z <= 2 else "higher")
    return f"{label} (z = {z:+.1f})"


def k100_study(horizon: int, runs: int) -> list[dict]:
    """Wall time of every agent at K = 100 through the regret-study machinery."""
    u = [round(float(x), 6) for x in np.linspace(1.0, 0.0, 100)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        studies = [
            RegretStudy(
                env=ENV,
                env_kwargs={"utilities": u, "scale": SCALE},
                agents=ALL_AGENTS,
                horizon=horizon,
                runs=runs,
                runs_per_cell=runs,
                metric="average",
            ),
            RegretStudy(
                env="feedbackgym/ContextualDuelingBandit-v0",
                env_kwargs={"n_arms": 100, "dim": 5},
                agents=["colstim"],
                horizon=horizon,
                runs=runs,
                runs_per_cell=runs,
                metric="average",
            ),
        ]
        for i, study in enumerate(studies):
            rows += run_study(study, Path(tmp) / str(i), progress=False)
            print(f"[k100] {study.env} done", file=sys.stderr, flush=True)
    return rows


def btm_first_elimination(horizon: int) -> float:
    """Duels before duelpy's Beat-the-Mean can drop its first arm, at the expected estimates.

    An arm leaves once max P_hat - min P_hat >= 2 c*, c* = 3 sqrt(log(2 T K) / n*) (gamma = 1),
    P_hat_b estimating P(b beats a uniform other member of the working set) and n* the fewest
    comparisons of any arm; with n* comparisons per arm that is K n* duels.
    """
    p = instance()
    beats_mean = (p.sum(axis=1) - 0.5) / (K - 1)
    gap = beats_mean.max() - beats_mean.min()
    return K * 36.0 * math.log(2.0 * horizon * K) / gap**2


def fmt(values: list[float], digits: int = 1) -> str:
    m, s = mean_sem(values)
    return f"{m:,.{digits}f} ± {s:,.{digits}f}"


def reference_check(
    peer: dict, ours: dict, peer_long: dict, ours_long: dict, long_horizon: int
) -> list[str]:
    """The paragraph and table on why duelpy's RUCB and Beat-the-Mean match random play."""
    p = instance()
    w = condorcet_winner(p)
    true_rate = float(np.delete(p[w], w).mean())
    min_gap = float(np.delete(p[w], w).min() - 0.5)
    stock, signed = peer["rucb"], peer[RUCB_SIGNED]
    btm_left = np.mean(peer["beat-the-mean"]["arms_left"])
    ours_left = np.mean(ours["beat-the-mean"]["arms_left"])
    lines = [
        "",
        "**Sanity check of the reference (RUCB and Beat-the-Mean).** Uniform-random play "
        f"costs T x mean gap = {random_play_regret(HORIZON):.1f} here, and duelpy's RUCB and "
        "Beat-the-Mean land on it, for two different reasons:",
        "",
        "- *RUCB: disabled by a bug in duelpy 1.0.0.* `RelativeUCB.step` decides the winner "
        "with `if self.wrapped_feedback.duel(arm_c, arm_d) < 0`, but duelpy's feedback "
        "mechanisms return a bool (True when the first arm wins) and `True < 0` is False, so "
        "every duel is credited to the champion c: its estimates count who was champion, not "
        "who won, and its choices ignore the feedback. After the run, duelpy's RUCB believes "
        "the Condorcet winner beats the others "
        f"{np.mean(stock['believed']):.2f} of the time on average (truth {true_rate:.2f}). "
        "The benchmark drives it as duelpy's own experiments do (MatrixFeedback, time_horizon, "
        "default exploratory_constant 0.51), so this is duelpy as shipped. Giving it feedback "
        "that answers +1 / -1 (the sign convention that line expects; it is RUCB's only use of "
        f"the outcome, and duelpy's code is untouched) makes it learn (believed "
        f"{np.mean(signed['believed']):.2f}) and its regret falls to {fmt(signed['regret'])} "
        f"(row `{RUCB_SIGNED}`); that row is the fair comparison for ours. The gap that "
        "remains is duelpy's RUCB departing from Zoghi et al. (2014), Algorithm 1, which ours "
        "follows: duelpy clips upper bounds at 1, so among under-sampled challengers ties are "
        "broken at random instead of favouring the least-sampled one, and it never lets the "
        "challenger be the champion, so it cannot settle on duelling the winner against itself "
        f"and pays at least min Delta / 2 = {min_gap / 2:.3f} per duel for ever (regret linear "
        "in T, see the longer horizon below).",
        f"- *Beat-the-Mean: as poor as that at T = {HORIZON:,}, by design, in both libraries.* "
        "Its online version only explores until it drops an arm, and it drops the first one "
        "only when the best and worst arms' estimated chances of beating the mean of the "
        "working set are 2 c* apart, c* = 3 sqrt(log(2TK) / n*); here that needs about "
        f"{btm_first_elimination(HORIZON):,.0f} duels at T = {HORIZON:,}, so "
        f"{'no run drops an arm' if btm_left == ours_left == K else 'few runs drop an arm'} "
        f"(arms left at T, mean: duelpy {btm_left:.1f}, ours {ours_left:.1f}) and its duels "
        "are uniform. Ours vs duelpy: "
        f"{verdict(ours['beat-the-mean']['regret'], peer['beat-the-mean']['regret'])}.",
        "",
        f"The same at T = {long_horizon:,} (duelpy {len(peer_long['rucb']['regret'])} runs, "
        f"ours {len(ours_long['rucb']['regret'])}; Beat-the-Mean's first drop now needs about "
        f"{btm_first_elimination(long_horizon):,.0f} duels):",
        "",
        "| algorithm | duelpy regret at T | ours regret at T | ours vs duelpy "
        "| Beat-the-Mean arms left at T (duelpy / ours) |",
        "|---|---:|---:|---|---|",
        f"| uniform random play (expected) | {random_play_regret(long_horizon):,.1f} "
        f"| {random_play_regret(long_horizon):,.1f} | | |",
    ]
    rows = [
        ("rucb (duelpy as shipped)", "rucb", "rucb"),
        (RUCB_SIGNED, RUCB_SIGNED, "rucb"),
        ("beat-the-mean", "beat-the-mean", "beat-the-mean"),
    ]
    for label, peer_key, ours_key in rows:
        theirs, mine = peer_long[peer_key], ours_long[ours_key]
        left = ""
        if theirs["arms_left"] and mine["arms_left"]:
            left = f"{np.mean(theirs['arms_left']):.1f} / {np.mean(mine['arms_left']):.1f}"
        lines.append(
            f"| {label} | {fmt(theirs['regret'])} | {fmt(mine['regret'])} "
            f"| {verdict(mine['regret'], theirs['regret'])} | {left} |"
        )
    btm_peer, btm_ours = peer_long["beat-the-mean"], ours_long["beat-the-mean"]
    left_peer, left_ours = np.mean(btm_peer["arms_left"]), np.mean(btm_ours["arms_left"])
    if left_peer == left_ours == K:
        return [*lines, "", f"At T = {long_horizon:,} Beat-the-Mean has dropped no arm yet."]
    lines += [
        "",
        f"At T = {long_horizon:,} Beat-the-Mean has begun to drop arms (arms left, mean: duelpy "
        f"{left_peer:.1f}, ours {left_ours:.1f}); "
        f"ours vs duelpy: {verdict(btm_ours['regret'], btm_peer['regret'])}. duelpy drops "
        "sooner because it departs from Yue & Joachims (2011), Algorithm 1, where ours follows "
        "it: when an arm leaves, duelpy keeps every arm's wins against it in w_b while "
        "subtracting from n_b the dropped arm's duels against b (`comparisons[worst, :]` where "
        "`comparisons[:, worst]` is meant), so the estimates of the arms that beat it are "
        "inflated and separate sooner than their true gaps would; and it never draws b "
        "itself as b's opponent, while the paper's mean (and ours) is over the whole working "
        "set, which narrows the gaps by a factor (|W| - 1) / |W|. duelpy's faster drops happen "
        "to pay on this instance; they are not the algorithm's confidence guarantee.",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="our runs per algorithm (>= 100)")
    parser.add_argument("--peer-runs", type=int, default=20, help="duelpy runs per algorithm")
    parser.add_argument(
        "--long-horizon", type=int, default=20_000, help="T of the RUCB / BTM check"
    )
    parser.add_argument("--k100-horizon", type=int, default=100_000)
    parser.add_argument("--k100-runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="numba threads for ours")
    add_common_arguments(parser, quick="smoke run: small budgets, no RESULTS.md update")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.peer_runs, args.k100_horizon, args.k100_runs = 100, 3, 2000, 4
        args.long_horizon = 5000
    numba.set_num_threads(args.threads)

    print("[duelpy] running", file=sys.stderr, flush=True)
    specs = {name: (name, False) for name in PEER_CLASSES}
    specs[RUCB_SIGNED] = ("rucb", True)
    peer = run_duelpy(specs, args.peer_runs)
    peer_shuffled = run_duelpy({"ccb": ("ccb", False)}, args.peer_runs, shuffled=True)
    long_specs = {key: specs[key] for key in ("rucb", RUCB_SIGNED, "beat-the-mean")}
    peer_long = run_duelpy(long_specs, args.peer_runs, horizon=args.long_horizon)
    ours = {}
    for name in ALL_AGENTS:
        ours[name] = run_ours(name, args.runs)
        print(f"[ours] {name} {ours[name]['wall']:.2f}s", file=sys.stderr, flush=True)
    ours_shuffled = run_ours("ccb", args.runs, shuffled=True)
    ours_long = {
        name: run_ours(name, args.runs, horizon=args.long_horizon)
        for name in ("rucb", "beat-the-mean")
    }

    lines = [
        "## Dueling bandits vs duelpy (`benchmarks/bench_dueling.py`)",
        "",
        f"Instance: K = {K}, u = linspace(1, 0, {K}), P_ij = 1 / (1 + exp(-3 (u_i - u_j))), "
        f"T = {HORIZON:,}. duelpy 1.0.0 one run at a time ({args.peer_runs} runs per algorithm); "
        f"ours {args.runs} runs at once. Both on one core (numba threads = {args.threads}), "
        "env and agent timed together, JIT compilation excluded. Regret: cumulative average "
        "regret at T, mean ± standard error; the verdict compares ours with duelpy's "
        "(z = difference / combined standard error). Read the rucb and beat-the-mean rows "
        "with the sanity check below the table.",
        "",
        "| algorithm | duelpy duels/s | ours duels/s | ratio | duelpy regret at T "
        "| ours regret at T | ours vs duelpy |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    labels = {"rucb": "rucb (duelpy as shipped)"}
    for name in [*ALL_AGENTS[:3], RUCB_SIGNED, *ALL_AGENTS[3:]]:
        mine = ours["rucb" if name == RUCB_SIGNED else name]
        ours_rate = mine["duels"] / mine["wall"]
        m, s = mean_sem(mine["regret"])
        if name in peer:
            theirs = peer[name]
            peer_rate = theirs["duels"] / theirs["wall"]
            pm, ps = mean_sem(theirs["regret"])
            lines.append(
                f"| {labels.get(name, name)} | {peer_rate:,.0f} | {ours_rate:,.0f} "
                f"| {ours_rate / peer_rate:,.0f}x | {pm:.1f} ± {ps:.1f} | {m:.1f} ± {s:.1f} "
                f"| {verdict(mine['regret'], theirs['regret'])} |"
            )
        else:
            lines.append(
                f"| {name} | (not in duelpy) | {ours_rate:,.0f} | | | {m:.1f} ± {s:.1f} | |"
            )
    pm, ps = mean_sem(peer_shuffled["ccb"]["regret"])
    m, s = mean_sem(ours_shuffled["regret"])
    rnd = random_play_regret(HORIZON)
    lines += [
        f"| ccb, arms shuffled | | | | {pm:.1f} ± {ps:.1f} | {m:.1f} ± {s:.1f} "
        f"| {verdict(ours_shuffled['regret'], peer_shuffled['ccb']['regret'])} |",
        f"| uniform random play (expected) | | | | {rnd:.1f} | {rnd:.1f} | |",
        "",
        "duelpy's CCB breaks ties towards the lowest arm index, and in this instance arm 0 is "
        "the Condorcet winner, so its regret on the sorted instance owes to the arm order; with "
        f"the same matrix in a shuffled arm order (seed {SHUFFLE_SEED}, `ccb, arms shuffled`) "
        "that advantage is gone. Ours is invariant to the arm order.",
        *reference_check(peer, ours, peer_long, ours_long, args.long_horizon),
        "",
        f"### K = 100, T = {args.k100_horizon:,}, {args.k100_runs} runs "
        "(the `feedbackgym regret` machinery, one process)",
        "",
        "Instance: u = linspace(1, 0, 100), BTL with slope 3 (CoLSTIM: "
        "ContextualDuelingBandit-v0, K = 100, d = 5).",
        "",
        "| algorithm | wall seconds | duels/s | average regret at T |",
        "|---|---:|---:|---:|",
    ]
    for row in k100_study(args.k100_horizon, args.k100_runs):
        lines.append(
            f"| {row['agent']} | {row['wall_seconds']:.1f} | {row['steps_per_second']:,.0f} "
            f"| {row['final_regret_mean']:.0f} ± {row['final_regret_sem']:.0f} |"
        )
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        update_section("bench_dueling", text)


if __name__ == "__main__":
    main()
