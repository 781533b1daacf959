"""Late preference labels, and hindsight vs foresight teachers, with pref-PPO.

Writes the ``bench_delays_pref`` section of benchmarks/RESULTS.md:

- ``late``: pref-PPO on ``configs/pendulum-pref-ppo.yaml`` (Pendulum-v1, 200k timesteps,
  8 envs, 200 oracle labels), seeds 0-2, with the answers on time and arriving 4 reward-model
  rounds late (``learner_kwargs: {label_delay_rounds: 4}``); normalised return between the
  uniform-random policy (0) and on time (1). Target: >= 90%.
- ``hindsight``: pref-PPO on ``feedbackgym/DelayedConsequence-v0`` (a shortcut pays 1 now
  and costs 2 ten steps later; 10-step segments) from the hindsight teacher (the oracle shown
  the 10 steps after each segment) vs the foresight oracle, 5 seeds; true return mean ± s.e.
  and the gap in standard errors. Target: > 3.

    .venv/bin/python benchmarks/bench_delays_pref.py [--parts hindsight,late] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from _parts import add_common_arguments, run_folder, run_parts  # noqa: E402
from _results import update_section  # noqa: E402
from bench_train import random_return  # noqa: E402
from bench_train import run as run_config  # noqa: E402

from feedbackgym.studies.train import TrainConfig, train  # noqa: E402

PARTS = ("late", "hindsight")
DELAY = 4
LATE_SEEDS = [0, 1, 2]
HINDSIGHT_SEEDS = [0, 1, 2, 3, 4]

#: pref-PPO on DelayedConsequence-v0: 50-step episodes, 30k steps, 100 labels.
HINDSIGHT_RUN: dict[str, Any] = {
    "env": "feedbackgym/DelayedConsequence-v0",
    "algo": "pref-ppo",
    "labels": 100,
    "segment_length": 10,
    "query": "uniform",
    "timesteps": 30_000,
    "n_envs": 8,
    "algo_kwargs": {"n_steps": 128, "batch_size": 256, "n_epochs": 5, "ent_coef": 0.0},
    "progress": False,
}
TEACHERS = {
    "hindsight (oracle shown the next 10 steps)": ("hindsight", {"teacher": {"name": "oracle"}}),
    "foresight (oracle on the segment)": ("oracle", {}),
}


def mean_se(values: list[float]) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def part_late(out: Path, device: str) -> list[str]:
    randoms = [random_return("pendulum-pref-ppo", seed) for seed in LATE_SEEDS]
    runs: dict[str, list[dict[str, Any]]] = {"on time": [], f"{DELAY} rounds late": []}
    for seed in LATE_SEEDS:  # interleaved, so machine load falls on both alike
        runs["on time"].append(run_config("pendulum-pref-ppo", out, seed=seed, device=device))
        runs[f"{DELAY} rounds late"].append(
            run_config(
                "pendulum-pref-ppo",
                out,
                seed=seed,
                device=device,
                learner_kwargs={"label_delay_rounds": DELAY},
            )
        )
    random = float(np.mean(randoms))
    on_time = np.mean([s["true_return_mean"] for s in runs["on time"]])
    lines = [
        "### Late labels: pref-PPO on Pendulum-v1",
        "",
        "`configs/pendulum-pref-ppo.yaml` (200k timesteps, 8 envs, 200 oracle labels, a "
        "reward-model round every rollout of 8,192 steps: 24 rounds), seeds "
        f"{', '.join(map(str, LATE_SEEDS))}; late: `learner_kwargs: {{label_delay_rounds: "
        f"{DELAY}}}`, the answers to round k's queries fitted from round k + {DELAY} on (those "
        f"of the last {DELAY} rounds never arrive). Normalised return = (return - "
        f"uniform-random policy's) / (on time's - random's); random policy: {random:.1f}. "
        f"Device: {runs['on time'][0]['device']}.",
        "",
        "| labels | true return per seed | mean | normalised | labels asked | never arrived |",
        "|---|---|---:|---:|---:|---:|",
    ]
    ratio = float("nan")
    for name, summaries in runs.items():
        ret = [s["true_return_mean"] for s in summaries]
        norm = (np.mean(ret) - random) / (on_time - random)
        if name != "on time":
            ratio = norm
        pending = [s.get("labels_pending", 0) for s in summaries]
        lines.append(
            f"| {name} | {', '.join(f'{r:.1f}' for r in ret)} | {np.mean(ret):.1f} | "
            f"{norm:.0%} | {summaries[0]['labels_used']} | {np.mean(pending):.0f} |"
        )
    lines += [
        "",
        f"Labels {DELAY} rounds late keep {ratio:.0%} of the on-time normalised return "
        f"(target >= 90%: {'met' if ratio >= 0.9 else 'NOT met'}).",
    ]
    return lines


def part_hindsight(out: Path, device: str) -> list[str]:
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in TEACHERS}
    walls: dict[str, list[float]] = {name: [] for name in TEACHERS}
    for seed in HINDSIGHT_SEEDS:
        for name, (teacher, kwargs) in TEACHERS.items():
            options = {
                **HINDSIGHT_RUN,
                "teacher": teacher,
                "teacher_kwargs": kwargs,
                "seed": seed,
                "device": device,
            }
            folder = out / f"{teacher}-{seed}"
            summary = train(TrainConfig.from_dict(options), folder)
            runs[name].append(summary)
            walls[name].append(summary["wall_seconds"])
            print(
                f"  DelayedConsequence {teacher} seed {seed}: return "
                f"{summary['true_return_mean']:.1f}, {summary['wall_seconds']:.1f} s",
                flush=True,
            )
    (hind, hind_se), (fore, fore_se) = (
        mean_se([s["true_return_mean"] for s in runs[name]]) for name in TEACHERS
    )
    se = float(np.hypot(hind_se, fore_se))
    gap = (hind - fore) / se if se > 0 else (float("inf") if hind > fore else float("nan"))
    lines = [
        "### Hindsight vs foresight: pref-PPO on feedbackgym/DelayedConsequence-v0",
        "",
        "50-step episodes; each step the steady action earns 0.5, the shortcut 1.0 now and "
        "-2.0 ten steps later (the observation, the episode's progress, hides the debt): the "
        "best policy returns 25, always taking the shortcut -50. pref-PPO, "
        f"{HINDSIGHT_RUN['timesteps']:,} timesteps, {HINDSIGHT_RUN['n_envs']} envs, "
        f"{HINDSIGHT_RUN['labels']} labels about 10-step segments (uniform queries), seeds "
        f"{', '.join(map(str, HINDSIGHT_SEEDS))}. The foresight oracle judges each segment by "
        "its own rewards; the hindsight teacher (`--teacher hindsight`, the oracle inside) also "
        "sees the 10 steps that followed it, so every shortcut's penalty. True return of the "
        "deterministic policy over 20 episodes. Device: "
        f"{runs[next(iter(TEACHERS))][0]['device']}.",
        "",
        "| teacher | true return per seed | mean ± s.e. | wall s |",
        "|---|---|---:|---:|",
    ]
    for name, summaries in runs.items():
        ret = [s["true_return_mean"] for s in summaries]
        mean, err = mean_se(ret)
        lines.append(
            f"| {name} | {', '.join(f'{r:.1f}' for r in ret)} | {mean:.1f} ± {err:.1f} | "
            f"{np.mean(walls[name]):.1f} |"
        )
    gap_text = "infinitely many (both s.e. are 0)" if np.isinf(gap) else f"{gap:.1f}"
    lines += [
        "",
        f"Hindsight minus foresight: {hind - fore:.1f}, {gap_text} standard errors (target > 3: "
        f"{'met' if gap > 3 else 'NOT met'}).",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(
        parser, parts=PARTS, default_parts="hindsight,late", device="cpu", keep=True
    )
    args = parser.parse_args()
    sections: dict[str, list[str]] = {}

    def run_part(out: Path, part: str) -> None:
        """The part's lines, and the section rewritten with every part run so far."""
        sections[part] = globals()[f"part_{part}"](out / part, args.device)
        lines = ["## Late labels and hindsight feedback (`bench_delays_pref.py`)", ""]
        for name in PARTS:
            if name in sections:
                lines += sections[name] + [""]
        update_section("bench_delays_pref", "\n".join(lines))

    with run_folder(args.keep) as out:
        run_parts("bench_delays_pref", args.parts, lambda part: run_part(out, part))


if __name__ == "__main__":
    main()
