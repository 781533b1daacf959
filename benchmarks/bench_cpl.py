"""CPL (Contrastive Preference Learning) vs pref-PPO and pref-SAC on Pendulum-v1, at equal labels.

For seeds 0-2: ``configs/pendulum-pref-ppo.yaml`` (200 oracle labels), ``configs/pendulum-pref-
sac.yaml`` with its labels raised from 100 to 200, and ``configs/pendulum-cpl.yaml`` (200
oracle labels about 50-step segments, as pref-PPO's). Two reference rows, outside the target:
CPL offline, fitted before its first step to the 200 answers of that seed's pref-PPO run (its
``feedback.jsonl``: segments of pref-PPO's improving policy, whose asking is not in CPL's wall
time), and CPL online with a regret teacher (CPL's own preference model: the summed advantage
``-(a - pi_E(s))^2`` of a hand-coded swing-up controller ``pi_E``, return about -157; answers
about 5-step segments). True return of the deterministic policy on the same 20 evaluation
episodes per seed; normalised return = (return - uniform-random policy's) / (the better of
pref-PPO and pref-SAC - random's). Target: CPL's mean return within 20% of the better of
pref-PPO and pref-SAC (``(better - CPL) / |better| <= 0.2``), in less wall time than it.
Writes the ``bench_cpl`` section of benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/bench_cpl.py [--seeds 0,1,2] [--device cpu] [--keep DIR]
    .venv/bin/python benchmarks/bench_cpl.py --quick    # smoke run: one seed, tiny budgets,
                                                        # prints the table, no RESULTS.md

Wall times exclude evaluation. Runs go to a temporary folder (``--keep DIR`` keeps them).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from _parts import add_common_arguments, run_folder  # noqa: E402
from _results import update_section  # noqa: E402
from bench_train import CONFIGS, mean_sd, random_return, run  # noqa: E402

from feedbackgym.feedback import register_feedback_model  # noqa: E402
from feedbackgym.feedback.preferences import INF, RegretTeacher  # noqa: E402
from feedbackgym.studies.train import load_yaml  # noqa: E402

LABELS = 200


def swing_up(obs: np.ndarray) -> np.ndarray:
    """A Pendulum-v1 expert (return about -157): pump energy, then balance with a PD law."""
    cos, sin, velocity = obs[..., 0], obs[..., 1], obs[..., 2]
    energy = velocity**2 / 6 + 5 * (cos - 1)  # 0 at rest upright (g = 10, m = l = 1)
    pump = 2.0 * np.sign(velocity + 1e-3) * (energy < 0)
    balance = -10.0 * np.arctan2(sin, cos) - 2.0 * velocity
    return np.clip(np.where(cos > 0.85, balance, pump), -2.0, 2.0)[..., None]


def swing_up_advantage(obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """A stand-in for the optimal advantage: ``-(a - pi_E(s))^2``, per step."""
    return -((np.asarray(actions)[..., 0] - swing_up(np.asarray(obs))[..., 0]) ** 2)


@register_feedback_model("pendulum-regret")
class PendulumRegretTeacher(RegretTeacher):
    """The regret teacher with :func:`swing_up_advantage` (a name a run config can hold)."""

    def __init__(self, beta: float = INF, rng: Any = None) -> None:
        super().__init__(beta=beta, advantage_fn=swing_up_advantage, rng=rng)


OFFLINE = "cpl, offline from pref-ppo's answers"


def overrides(quick: bool) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each row's shipped config and overrides (tiny budgets with ``quick``); the offline row
    gets its data set per seed."""
    ppo = load_yaml(CONFIGS / "pendulum-pref-ppo.yaml")
    sac = load_yaml(CONFIGS / "pendulum-pref-sac.yaml")
    cpl = load_yaml(CONFIGS / "pendulum-cpl.yaml")["learner_kwargs"]
    rows: dict[str, tuple[str, dict[str, Any]]] = {
        "pref-ppo": ("pendulum-pref-ppo", {}),
        "pref-sac": ("pendulum-pref-sac", {"labels": LABELS}),
        "cpl": ("pendulum-cpl", {}),
        OFFLINE: (
            "pendulum-cpl",
            {
                "timesteps": 1600,
                "learner_kwargs": {**cpl, "bc_epochs": 200, "pretrain_epochs": 500},
            },
        ),
        "cpl, regret teacher": (
            "pendulum-cpl",
            {
                "teacher": "pendulum-regret",
                "segment_length": 5,
                "timesteps": 20000,
                "learner_kwargs": {**cpl, "update_every": 1000},
            },
        ),
    }
    if quick:
        rows["pref-ppo"][1].update(
            timesteps=4096, algo_kwargs={**ppo["algo_kwargs"], "n_steps": 256}
        )
        rows["pref-sac"][1].update(
            timesteps=2500,
            algo_kwargs={**sac["algo_kwargs"], "learning_starts": 500},
            learner_kwargs={
                **sac["learner_kwargs"],
                "unsupervised_steps": 500,
                "update_every": 500,
            },
        )
        rows["cpl"][1].update(timesteps=4000)
        rows["cpl, regret teacher"][1].update(timesteps=4000)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(
        parser,
        seeds="0,1,2",
        device="cpu",
        keep=True,
        quick="smoke run: one seed, tiny budgets, no RESULTS.md update",
    )
    args = parser.parse_args()
    seeds = [0] if args.quick else args.seeds
    rows = overrides(args.quick)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in rows}
    begin = time.perf_counter()
    with run_folder(args.keep) as out:
        randoms = [random_return("pendulum-cpl", seed) for seed in seeds]
        for seed in seeds:  # interleaved, so machine load falls on every learner alike
            for name, (config, options) in rows.items():
                options = {**options, "seed": seed, "device": args.device}
                if name == OFFLINE:  # pref-PPO's answers of this seed, asked above
                    dataset = out / f"answers-{seed}.jsonl"  # short: run() names folders by it
                    shutil.copy(Path(results["pref-ppo"][-1]["folder"]) / "feedback.jsonl", dataset)
                    kwargs = {**options["learner_kwargs"], "dataset": str(dataset)}
                    options["learner_kwargs"] = kwargs
                results[name].append(run(config, out / name.split(",")[0], **options))
    lines = table(results, seeds, float(np.mean(randoms)), args.quick)
    print(f"[bench_cpl] done in {time.perf_counter() - begin:.0f} s", flush=True)
    if args.quick:
        print("\n".join(lines))
    else:
        update_section("bench_cpl", "\n".join(lines))


def table(
    results: dict[str, list[dict[str, Any]]], seeds: list[int], random: float, quick: bool
) -> list[str]:
    """The section's markdown: one row per learner and the target's verdict."""

    def mean(name: str, key: str) -> float:
        return float(np.mean([s[key] for s in results[name]]))

    better = max(("pref-ppo", "pref-sac"), key=lambda name: mean(name, "true_return_mean"))
    best, best_wall = mean(better, "true_return_mean"), mean(better, "wall_seconds")
    lines = [
        "## CPL vs pref-PPO and pref-SAC at equal labels, Pendulum-v1 (`bench_cpl.py`)",
        "",
        "`configs/pendulum-pref-ppo.yaml` (200 oracle labels, 200k timesteps), "
        "`configs/pendulum-pref-sac.yaml` with labels raised from 100 to 200 (20k timesteps) and "
        "`configs/pendulum-cpl.yaml` (200 oracle labels, 40k timesteps; no reward model, no RL), "
        f"seeds {', '.join(map(str, seeds))}. Reference rows, not in the target: CPL offline, "
        "fitted before its first step to the 200 answers of the same seed's pref-PPO run (its "
        "feedback.jsonl; pref-PPO's wall time is not counted), and CPL online with a regret "
        "teacher (answers by the summed advantage -(a - pi_E(s))^2 of a hand-coded swing-up "
        "controller, about 5-step segments: the preference model CPL assumes, where the oracle "
        "answers by partial return). Normalised return = (return - uniform-random policy's) / "
        f"({better}'s - random's); random policy: {random:.1f}. Wall time excludes evaluation. "
        f"Device: {results['cpl'][0]['device']}."
        + (" QUICK SMOKE RUN: tiny budgets, one seed." if quick else ""),
        "",
        "| learner | labels | true return | normalised | wall s | wall / better's |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, summaries in results.items():
        ret = [s["true_return_mean"] for s in summaries]
        wall = mean(name, "wall_seconds")
        norm = (np.mean(ret) - random) / (best - random)
        lines.append(
            f"| {name} | {summaries[0]['labels_used']} | {mean_sd(ret)} | {norm:.0%} | "
            f"{wall:.1f} | {wall / best_wall:.2f} |"
        )
    cpl, cpl_wall = mean("cpl", "true_return_mean"), mean("cpl", "wall_seconds")
    gap = (best - cpl) / abs(best)
    met = gap <= 0.2 and cpl_wall < best_wall
    lines += [
        "",
        f"The better of pref-PPO and pref-SAC is {better} ({best:.1f}, {best_wall:.1f} s). CPL's "
        f"mean return is {gap:.0%} below it and its wall time {cpl_wall / best_wall:.2f}x its "
        f"(target: within 20%, in less wall time: {'met' if met else 'NOT met'}).",
    ]
    return lines


if __name__ == "__main__":
    main()
