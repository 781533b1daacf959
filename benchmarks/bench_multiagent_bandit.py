"""Team regret of the multi-agent dueling bandit, team feedback against per-agent feedback.

Instance: ``feedbackgym/team_duel_v0``'s vector core (:class:`TeamDuelVec`), a BTL preference
matrix over K = 8 arms drawn once from ``matrix_seed=0`` (scale 3), N = 2 and N = 3 agents,
T = 20,000 steps, 100 independent runs. Team regret per step is the mean over the proposals of
Delta_k = P(b* beats k) - 1/2 (ARCHITECTURE.md's average regret for N = 2). For each agent we
report the final cumulative team regret (mean and standard error over runs), the growth ratio
regret(T) / regret(T/2) (2 for linear regret, about 1 for logarithmic) and the slope of
log regret(t) against log t over t in [T/10, T] (1 for linear): both say whether the team's
regret is sublinear. Team feedback and per-agent feedback are compared with the same learner
in every agent (Thompson sampling: ``team-self-sparring`` against ``sparring-ts``).

    .venv/bin/python benchmarks/bench_multiagent_bandit.py            # full (under a minute)
    .venv/bin/python benchmarks/bench_multiagent_bandit.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _parts import add_common_arguments  # noqa: E402
from _results import update_section  # noqa: E402

from feedbackgym.agents.dueling.team import make_team_agent  # noqa: E402
from feedbackgym.envs.multiagent.team_duel_v0 import TeamDuelVec  # noqa: E402

N_ARMS = 8
MATRIX_SEED = 0
#: (agents N, feedback mode, agent, agent kwargs, label)
CONFIGS = [
    (2, "team", "team-self-sparring", {}, "team-self-sparring"),
    (2, "team", "team-dueling", {"learner": "dts"}, "team-dueling (dts)"),
    (2, "team", "team-dueling", {"learner": "rucb"}, "team-dueling (rucb)"),
    (2, "per-agent", "sparring-ts", {}, "sparring-ts"),
    (2, "per-agent", "sparring-ucb", {}, "sparring-ucb"),
    (3, "team", "team-self-sparring", {}, "team-self-sparring"),
    (3, "per-agent", "sparring-ts", {}, "sparring-ts"),
    (3, "per-agent", "sparring-ucb", {}, "sparring-ucb"),
]
#: Same learner, the two feedback modes: (team label, per-agent label).
PAIRS = [("team-self-sparring", "sparring-ts")]


def run(
    n_agents: int, feedback: str, agent: str, kwargs: dict, horizon: int, runs: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Cumulative team regret of each run at the checkpoints, the checkpoints, wall time."""
    env = TeamDuelVec(
        num_envs=runs,
        n_agents=n_agents,
        n_arms=N_ARMS,
        matrix_seed=MATRIX_SEED,
        feedback=feedback,
        horizon=horizon,
    )
    learner = make_team_agent(agent, env, seed=0, **kwargs)
    steps = np.unique(np.geomspace(10, horizon, 60).astype(np.int64))
    steps = np.unique(np.concatenate([steps, [horizon // 2, horizon]]))
    start = time.perf_counter()
    regret = learner.learn(env, horizon, steps, seed=0)
    return regret, steps, time.perf_counter() - start


def growth(mean: np.ndarray, steps: np.ndarray, horizon: int) -> tuple[float, float]:
    """regret(T) / regret(T/2), and the log-log slope of regret(t) over t in [T/10, T]."""
    ratio = mean[steps == horizon][0] / mean[steps == horizon // 2][0]
    window = steps >= horizon // 10
    slope = np.polyfit(np.log(steps[window]), np.log(mean[window]), 1)[0]
    return float(ratio), float(slope)


def main() -> None:
    parser = argparse.ArgumentParser()
    add_common_arguments(parser, quick="smoke run: T = 2,000, 10 runs, no RESULTS.md update")
    args = parser.parse_args()
    numba.set_num_threads(1)  # one core: the figures are per-core and the machine is shared
    horizon, runs = (2000, 10) if args.quick else (20000, 100)
    probe = TeamDuelVec(n_arms=N_ARMS, matrix_seed=MATRIX_SEED)
    matrix, best = probe.preference_matrix[0], int(probe.condorcet_winner[0])
    gaps = np.sort(matrix[best] - 0.5)[1:]
    results = {}
    for n_agents, feedback, agent, kwargs, label in CONFIGS:
        results[n_agents, label] = (
            feedback,
            *run(n_agents, feedback, agent, kwargs, horizon, runs),
        )
    lines = [
        "## Multi-agent dueling bandit: team regret, team vs per-agent feedback "
        "(`bench_multiagent_bandit.py`)",
        "",
        f"`feedbackgym/team_duel_v0` core, BTL matrix over K = {N_ARMS} arms drawn from "
        f"matrix_seed={MATRIX_SEED} (Condorcet winner {best}; gaps Delta_k = "
        + ", ".join(f"{g:.3f}" for g in gaps)
        + f"), T = {horizon}, {runs} runs per agent. Team regret of a step: the mean Delta of "
        "the proposals. Ratio: regret(T) / regret(T/2) (2 when linear); slope: least squares "
        "slope of log regret against log t over [T/10, T] (1 when linear). Team feedback: every "
        "agent sees all proposals and the whole verdict; per-agent: each agent hears only its "
        "own proposal's outcome.",
        "",
        "| N | feedback | agent | team regret at T (mean ± s.e.) | ratio | slope | "
        "sublinear | wall (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    verdicts = {}
    for (n_agents, label), (feedback, regret, steps, wall) in results.items():
        mean = regret.mean(axis=0)
        final = regret[:, -1]
        se = final.std(ddof=1) / np.sqrt(runs)
        ratio, slope = growth(mean, steps, horizon)
        verdicts[n_agents, label] = slope < 1.0 and ratio < 2.0
        lines.append(
            f"| {n_agents} | {feedback} | {label} | {final.mean():.1f} ± {se:.1f} | "
            f"{ratio:.2f} | {slope:.2f} | {'yes' if verdicts[n_agents, label] else 'NO'} | "
            f"{wall:.1f} |"
        )
    comparisons = []
    for team, own in PAIRS:
        for n_agents in sorted({n for n, _ in results}):
            if (n_agents, team) in results and (n_agents, own) in results:
                a = results[n_agents, team][1][:, -1].mean()
                b = results[n_agents, own][1][:, -1].mean()
                comparisons.append(
                    f"N = {n_agents}: {team} {a:.1f} vs {own} {b:.1f} ({b / a:.2f}x)"
                )
    met = all(verdicts.values())
    lines += [
        "",
        f"Team regret sublinear (slope < 1 and ratio < 2) for every agent: "
        f"{'met' if met else 'NOT met'}"
        + (
            ""
            if met
            else " (not for "
            + ", ".join(f"N={n} {a}" for (n, a), v in verdicts.items() if not v)
            + ")"
        )
        + ". Same learner (Thompson sampling), team vs per-agent feedback, final team regret: "
        + "; ".join(comparisons)
        + ". From the team's verdict each agent learns from every duel, both sides of it, "
        "while from per-agent feedback it learns only about the arm it proposed.",
        "",
        "![team regret](multiagent_bandit.png)",
    ]
    if not args.quick:
        update_section("bench_multiagent_bandit", "\n".join(lines))
        plot(results, Path(__file__).with_name("multiagent_bandit.png"), runs)
    print("\n".join(lines))


def plot(results: dict, path: Path, runs: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({n for n, _ in results})
    labels = list(dict.fromkeys(label for _, label in results))
    colors = {label: f"C{i}" for i, label in enumerate(labels)}  # one colour per agent
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0), sharey=True)
    for ax, n_agents in zip(np.atleast_1d(axes), panels, strict=True):
        for (n, label), (feedback, regret, steps, _) in results.items():
            if n != n_agents:
                continue
            mean = regret.mean(axis=0)
            se = regret.std(axis=0, ddof=1) / np.sqrt(runs)
            style = "-" if feedback == "team" else "--"
            color = colors[label]
            ax.plot(steps, mean, style, color=color, label=f"{label} ({feedback})")
            ax.fill_between(steps, mean - se, mean + se, color=color, alpha=0.2)
        ax.set_title(f"N = {n_agents} agents")
        ax.set_xlabel("step t")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    np.atleast_1d(axes)[0].set_ylabel("cumulative team regret (mean ± s.e.)")
    fig.suptitle("Multi-agent dueling bandit: team feedback (solid) vs per-agent (dashed)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
