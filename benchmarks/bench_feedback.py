"""Speed of the simulated teachers: 10,000 segment pairs of length 50, 10,000 corrections.

Run ``python benchmarks/bench_feedback.py``; it writes the ``bench_feedback`` section of
``benchmarks/RESULTS.md``. Each figure is the best of ``--repeats`` timed runs, including the
conversion of the input arrays, excluding model construction (and, for the learned model,
its fitting).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from _results import update_section  # noqa: E402

import feedbackgym  # noqa: E402, F401
from feedbackgym.feedback import (  # noqa: E402
    HindsightTeacher,
    LanguageTeacher,
    LearnedPreferenceModel,
    MistakeTeacher,
    Panel,
    Segments,
    StochasticTeacher,
    make_feedback_model,
)

N_PAIRS = 10_000
LENGTH = 50
PREFERENCE_TARGET = 1.0
CORRECTION_TARGET = 2.0


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Smallest wall time of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    env = gym.make("feedbackgym/GridWorld-v0").unwrapped
    live = np.flatnonzero(~env.terminal)

    def batch() -> Segments:
        obs = rng.choice(live, size=(N_PAIRS, LENGTH))
        actions = rng.integers(env.n_actions, size=(N_PAIRS, LENGTH))
        return Segments(rng.normal(size=(N_PAIRS, LENGTH)), obs, actions)

    a, b = batch(), batch()
    a_after, b_after = batch(), batch()

    models: dict[str, object] = {
        name: make_feedback_model(name, rng=1)
        for name in ("oracle", "stochastic", "mistake", "skip", "equal", "myopic", "bpref")
    }
    models["regret"] = make_feedback_model("regret", env=env, rng=1)
    models["plackett-luce"] = make_feedback_model("plackett-luce", rng=1)
    models["panel (3 members, majority)"] = Panel(
        [StochasticTeacher(rng=1), MistakeTeacher(rng=2), StochasticTeacher(beta=3.0, rng=3)]
    )
    models["panel (3 members, random)"] = Panel(
        [StochasticTeacher(rng=1), MistakeTeacher(rng=2), StochasticTeacher(beta=3.0, rng=3)],
        mode="random",
        rng=4,
    )
    learned = LearnedPreferenceModel(hidden=32, epochs=50, rng=0)
    learned.fit((a.take(np.arange(2000)), b.take(np.arange(2000)), rng.random(2000).round()))
    models["learned (Bradley-Terry MLP, fitted)"] = learned

    rows: list[tuple[str, float, float]] = []
    for name, model in models.items():
        seconds = best_time(lambda m=model: m.prefer(a, b), args.repeats)
        rows.append((f"`{name}` prefer", seconds, PREFERENCE_TARGET))
    hindsight = HindsightTeacher(StochasticTeacher(rng=1))
    seconds = best_time(lambda: hindsight.prefer(a, b, a_after, b_after), args.repeats)
    rows.append(("`hindsight` prefer (segments + 50 steps of consequences)", seconds, 1.0))
    ranker = make_feedback_model("plackett-luce", rng=1)
    four = [batch() for _ in range(4)]
    seconds = best_time(lambda: ranker.rank(four), args.repeats)
    rows.append(("`plackett-luce` rank (10,000 queries of 4 segments)", seconds, 1.0))

    teacher = LanguageTeacher(wrong_direction=0.1, vagueness=0.1, rng=1)
    agent = rng.normal(size=(N_PAIRS, 2))
    expert = rng.normal(size=(N_PAIRS, 2))
    seconds = best_time(lambda: teacher.correct(agent, expert), args.repeats)
    rows.append(("`language` correct (10,000 corrections)", seconds, CORRECTION_TARGET))
    tamer = make_feedback_model("tamer", noise=0.1, max_lag=3, rng=1)
    seconds = best_time(lambda: tamer.score(a), args.repeats)
    rows.append(("`tamer` score (10,000 x 50 steps)", seconds, 1.0))
    coach = make_feedback_model("coach", env=env, rng=1)
    policy = np.full((env.n_states, env.n_actions), 1 / env.n_actions)
    seconds = best_time(lambda: coach.score(a, policy=policy), args.repeats)
    rows.append(("`coach` score, exact A^pi (10,000 x 50 steps)", seconds, 1.0))

    lines = [
        "## Simulated feedback: labelling speed (`bench_feedback.py`)",
        "",
        f"{N_PAIRS:,} segment pairs of length {LENGTH} per call for the pairwise models "
        "(gridworld states and actions, Gaussian rewards); best of "
        f"{args.repeats} runs. Targets from issue 4: < {PREFERENCE_TARGET:g} s for any "
        f"preference model, < {CORRECTION_TARGET:g} s for 10,000 corrections.",
        "",
        "| model | seconds | target (s) | pass |",
        "|---|---:|---:|:---:|",
    ]
    for name, seconds, target in rows:
        lines.append(
            f"| {name} | {seconds:.4f} | {target:g} | {'yes' if seconds < target else 'NO'} |"
        )
    markdown = "\n".join(lines)
    print(markdown)
    if not args.no_write:
        update_section("bench_feedback", markdown)


if __name__ == "__main__":
    main()
