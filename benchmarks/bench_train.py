"""Training from simulated preferences, side by side with imitation and with true-reward RL.

Each part runs `feedbackgym.studies.train.train` on a shipped config in ``configs/`` (the same
runs ``feedbackgym train --config`` makes), for seeds 0-2 (``imitation``: 0-4), and writes its
own section of benchmarks/RESULTS.md:

- ``imitation``: pref-PPO with 200 oracle labels vs imitation 1.0.1's preference comparisons
  with 400 (its own venv, ``benchmarks/peer_imitation_pendulum.py``, with its CLI's and its
  tutorial's Pendulum settings) on Pendulum-v1, PPO, 8 envs, 200k timesteps; true return and
  wall time, both measured in this run. Returns as mean ± standard error over seeds with a 95%
  t interval, and the per-seed difference ours - theirs (both sides score the same 20
  evaluation episodes of a seed) with its 95% t interval: the section says "higher" only when
  that interval lies above 0, "lower" when below, else that the seeds cannot tell them apart.
  A single seed's return is not portable across CPUs (the float kernels torch picks for the
  CPU change the last bits, and RL amplifies them into another run): compare intervals.
- ``ppo``: pref-PPO vs PPO on the true reward (wall-time ratio, normalised return between a
  uniform-random policy and PPO), and pref-PPO with noisy teachers (``stochastic`` beta = 1,
  ``mistake`` 0.1) with 300 and with 200 labels.
- ``sac``: pref-SAC (PEBBLE) vs SAC on Pendulum-v1, 20k timesteps, 100 labels.
- ``halfcheetah``: pref-SAC vs SAC learning curves on HalfCheetah-v5, 100k timesteps (one
  seed; slow on a CPU), plot in benchmarks/halfcheetah.png.
- ``pointgoal``: pref-PPO's success rate on feedbackgym/PointGoal-v0.

    .venv/bin/python benchmarks/bench_train.py [--parts imitation,ppo,sac,halfcheetah,pointgoal]
        [--seeds 0,1,2] [--device cpu] [--workers 1]

Wall times exclude evaluation on both sides. Runs go to a temporary folder (``--keep DIR`` keeps
them; run again with the same ``--keep``, finished runs on both sides are read back and
unfinished ones start over). ``--workers N`` runs the ``imitation``
and ``ppo`` parts' runs N at a time, each in its own process on one torch thread (the same
numbers as one at a time; wall times then include the machine's sharing, alike on both sides
of a comparison).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from _parts import add_common_arguments, run_folder, run_parts  # noqa: E402
from _peers import peer_python  # noqa: E402
from _results import update_section  # noqa: E402

from feedbackgym.studies.train import (  # noqa: E402
    TrainConfig,
    load_yaml,
    train,
)
from feedbackgym.studies.train import random_return as uniform_return  # noqa: E402

CONFIGS = HERE.parent / "configs"
PARTS = ("imitation", "ppo", "sac", "halfcheetah", "pointgoal")


def run(config_name: str, out: Path, **overrides: Any) -> dict[str, Any]:
    """One training run of a shipped config (with overrides) into a fresh folder."""
    options = {**load_yaml(CONFIGS / f"{config_name}.yaml"), **overrides, "progress": False}
    tag = "-".join(f"{k}={v}" for k, v in sorted(overrides.items()) if k != "device")
    folder = out / f"{config_name}-{tag}".replace("/", "_").replace(" ", "")
    if folder.exists() and not (folder / "summary.json").exists():
        # An unfinished run (a kept folder) starts over: each figure is then what the
        # uninterrupted `feedbackgym train` command gives, not a resumed run's.
        shutil.rmtree(folder)
    summary = train(TrainConfig.from_dict(options), folder)
    summary["folder"] = str(folder)
    print(
        f"  {config_name} {tag}: return {summary['true_return_mean']:.1f}, "
        f"{summary['wall_seconds']:.1f} s",
        flush=True,
    )
    return summary


def run_subprocess(config_name: str, out: Path, **overrides: Any) -> dict[str, Any]:
    """:func:`run` in a fresh Python process (the same run: one config, one folder)."""
    job = json.dumps({"config": config_name, "out": str(out), "overrides": overrides})
    command = [sys.executable, str(Path(__file__).resolve()), "--one-run", job]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{config_name} {overrides} failed:\n{result.stderr[-3000:]}")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    print(result.stdout.strip().splitlines()[-2], flush=True)  # run()'s progress line
    return summary


def run_jobs(jobs: list[Any], workers: int) -> list[Any]:
    """Call each job (a no-argument callable) and return their results in order; ``workers`` of
    them at a time (threads that each wait on a subprocess), or in turn when ``workers`` is 1."""
    if workers <= 1:
        return [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(job) for job in jobs]
        return [f.result() for f in futures]


def our_run(config_name: str, out: Path, workers: int, **overrides: Any) -> Any:
    """A job for :func:`run_jobs`: :func:`run` in-process when ``workers`` is 1, else in a
    subprocess (torch's thread settings are per process)."""
    if workers <= 1:
        return lambda: run(config_name, out, **overrides)
    return lambda: run_subprocess(config_name, out, **overrides)


def interval(values: list[float], level: float = 0.95) -> tuple[float, float, float, float]:
    """``(mean, standard error, low, high)``: the two-sided Student t interval of the mean."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, float("nan"), float("nan"), float("nan")
    se = float(x.std(ddof=1) / math.sqrt(len(x)))
    half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1)) * se
    return mean, se, mean - half, mean + half


def mean_se_ci(values: list[float]) -> str:
    """``mean ± se [low, high]`` of :func:`interval`, one decimal."""
    mean, se, low, high = interval(values)
    return f"{mean:.1f} ± {se:.1f} [{low:.1f}, {high:.1f}]"


def verdict(differences: list[float]) -> str:
    """ "higher" / "lower" when the 95% t interval of the per-seed differences (ours - theirs)
    excludes 0, else that these seeds cannot tell the two apart."""
    _, _, low, high = interval(differences)
    if low > 0:
        return "higher"
    if high < 0:
        return "lower"
    return f"not distinguishable over {len(differences)} seeds (the interval holds 0)"


def random_return(config_name: str, seed: int) -> float:
    """True return of the uniform-random policy on the same evaluation episodes."""
    config = TrainConfig.from_dict({**load_yaml(CONFIGS / f"{config_name}.yaml"), "seed": seed})
    return uniform_return(config)


def mean_sd(values: list[float]) -> str:
    return f"{np.mean(values):.1f} ± {np.std(values):.1f}"


def imitation_run(seed: int, labels: int, preset: str, out: Path | None = None) -> dict[str, Any]:
    """One run of imitation's side (its own venv, a subprocess on one torch thread); with
    ``out``, its summary is kept there and read back by a later call (as our runs' folders)."""
    saved = None if out is None else out / f"imitation-{preset}-labels={labels}-seed={seed}.json"
    if saved is not None and saved.exists():
        return json.loads(saved.read_text())
    python = peer_python("imitation")
    command = [str(python), str(HERE / "peer_imitation_pendulum.py"), "--seed", str(seed)]
    command += ["--labels", str(labels), "--preset", preset]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"imitation failed:\n{result.stderr[-3000:]}")
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    if saved is not None:
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(summary))
    print(
        f"  imitation ({preset}) seed {seed}: return {summary['true_return_mean']:.1f}, "
        f"{summary['wall_seconds']:.1f} s",
        flush=True,
    )
    return summary


#: imitation's own CLI settings for Pendulum, and its docs tutorial's (tuned for Pendulum).
PRESETS = ("config", "tutorial")


def part_imitation(out: Path, seeds: list[int], device: str, workers: int = 1) -> None:
    peer_python("imitation")  # create its venv once, before any worker asks for it
    jobs: list[Any] = []
    for seed in seeds:  # interleaved, so machine load falls on both alike
        for preset in PRESETS:
            jobs.append(lambda seed=seed, preset=preset: imitation_run(seed, 400, preset, out))
        jobs.append(
            our_run("pendulum-pref-ppo", out, workers, seed=seed, labels=200, device=device)
        )
    done = iter(run_jobs(jobs, workers))
    ours: list[dict[str, Any]] = []
    theirs: dict[str, list[dict[str, Any]]] = {preset: [] for preset in PRESETS}
    for _ in seeds:
        for preset in PRESETS:
            theirs[preset].append(next(done))
        ours.append(next(done))
    our_ret = [s["true_return_mean"] for s in ours]
    our_wall = [s["wall_seconds"] for s in ours]
    lines = [
        "## Preference learning vs imitation on Pendulum-v1 (`bench_train.py --parts imitation`)",
        "",
        "Both: PPO, 8 envs, 200k timesteps (imitation rounds its agent training up to whole "
        "rollouts: 245,760 steps), oracle (synthetic) labels about 100-step (imitation) or "
        "50-step (ours) segments; true return of the deterministic policy over the same 20 "
        "evaluation episodes on both sides (episode i of seed s resets with seed "
        "10^6 + 1000 s + i: the initial angle moves a Pendulum return by tens of points, so the "
        f"sides must share them); seeds {', '.join(map(str, seeds))}, run alternately in this "
        f"one process tree, {workers} at a time. imitation 1.0.1 with its own CLI's Pendulum "
        "settings (`config`) and with its docs tutorial's Pendulum settings (`tutorial`), "
        "`benchmarks/peer_imitation_pendulum.py`; ours `configs/pendulum-pref-ppo.yaml`. Wall "
        "time: training only, one torch thread for the policy on both sides. Device: "
        f"{ours[0]['device']}.",
        "",
        "Returns: mean ± standard error over the seeds [95% Student t interval]. Difference: "
        "ours - theirs seed by seed (the same evaluation episodes), mean ± standard error "
        "[95% t interval]; ours is called higher (lower) only when that interval lies above "
        "(below) 0. One seed's return is not portable across CPUs: the same command gives "
        "another run where torch picks other float kernels.",
        "",
        "| seed | "
        + " | ".join(f"imitation `{p}` (400 labels)" for p in PRESETS)
        + " | ours (200 labels) | "
        + " | ".join(f"wall s `{p}`" for p in PRESETS)
        + " | wall s ours |",
        "|---:|" + "---:|" * (2 * len(PRESETS) + 2),
    ]
    for i, seed in enumerate(seeds):
        cells = [f"{theirs[p][i]['true_return_mean']:.1f}" for p in PRESETS]
        walls = [f"{theirs[p][i]['wall_seconds']:.1f}" for p in PRESETS]
        lines.append(
            f"| {seed} | {' | '.join(cells)} | {our_ret[i]:.1f} | {' | '.join(walls)} | "
            f"{our_wall[i]:.1f} |"
        )
    labels = sorted({s["labels_used"] for s in ours})
    lines += [
        "",
        f"Ours: true return {mean_se_ci(our_ret)} with {'/'.join(map(str, labels))} labels, "
        f"wall {np.mean(our_wall):.1f} s.",
    ]
    for preset in PRESETS:
        ret = [s["true_return_mean"] for s in theirs[preset]]
        wall = [s["wall_seconds"] for s in theirs[preset]]
        diff = [a - b for a, b in zip(our_ret, ret, strict=True)]
        ratio = np.mean(our_wall) / np.mean(wall)
        lines.append(
            f"- vs imitation `{preset}`: its true return {mean_se_ci(ret)} with 400 labels; "
            f"ours - its = {mean_se_ci(diff)}: ours **{verdict(diff)}**. Its wall "
            f"{np.mean(wall):.1f} s, ours / its = {ratio:.2f} (target <= 0.5: "
            f"{'met' if ratio <= 0.5 else 'NOT met'})."
        )
    update_section("bench_train_imitation", "\n".join(lines))


#: Noisy teachers: (row, teacher, its kwargs, labels, target share of PPO's normalised return).
NOISY_TARGETS = [
    ("pref-ppo, stochastic (beta = 1), 300 labels", "stochastic", {"beta": 1.0}, 300, 0.8),
    ("pref-ppo, mistake (0.1), 300 labels", "mistake", {"mistake": 0.1}, 300, 0.8),
    ("pref-ppo, stochastic (beta = 1), 200 labels", "stochastic", {"beta": 1.0}, 200, None),
    ("pref-ppo, mistake (0.1), 200 labels", "mistake", {"mistake": 0.1}, 200, None),
]
NOISY = [row[:4] for row in NOISY_TARGETS]


def part_ppo(out: Path, seeds: list[int], device: str, workers: int = 1) -> None:
    randoms = [random_return("pendulum-ppo", seed) for seed in seeds]
    names = ["ppo (true reward)", "pref-ppo, oracle, 200 labels"] + [row[0] for row in NOISY]
    jobs: list[Any] = []
    for seed in seeds:
        jobs.append(our_run("pendulum-ppo", out, workers, seed=seed, device=device))
        jobs.append(our_run("pendulum-pref-ppo", out, workers, seed=seed, device=device))
        for _, teacher, kwargs, labels in NOISY:
            jobs.append(
                our_run(
                    "pendulum-pref-ppo",
                    out,
                    workers,
                    seed=seed,
                    teacher=teacher,
                    teacher_kwargs=kwargs,
                    labels=labels,
                    device=device,
                )
            )
    done = iter(run_jobs(jobs, workers))
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for _ in seeds:
        for name in names:
            rows[name].append(next(done))
    ppo = rows["ppo (true reward)"]
    ppo_return = np.mean([s["true_return_mean"] for s in ppo])
    ppo_wall = np.mean([s["wall_seconds"] for s in ppo])
    random = float(np.mean(randoms))
    targets = {"ppo (true reward)": None, "pref-ppo, oracle, 200 labels": 0.9}
    targets.update({name: target for name, _, _, _, target in NOISY_TARGETS})
    lines = [
        "## pref-PPO vs PPO on the true reward, Pendulum-v1 (`bench_train.py --parts ppo`)",
        "",
        "`configs/pendulum-ppo.yaml` and `configs/pendulum-pref-ppo.yaml` (200 labels; the "
        "noisy teachers with 300 for their targets, and with 200 for reference), 200k "
        f"timesteps, 8 envs, seeds {', '.join(map(str, seeds))}. Normalised return = (return - "
        f"uniform-random policy's) / (PPO's - random's); random policy: {random:.1f}. Wall "
        "time excludes evaluation. Device: " + ppo[0]["device"] + ".",
        "",
        "| learner | true return | normalised | target | wall s | wall / PPO's | "
        "reward corr. | held-out acc. |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, summaries in rows.items():
        ret = [s["true_return_mean"] for s in summaries]
        wall = np.mean([s["wall_seconds"] for s in summaries])
        norm = (np.mean(ret) - random) / (ppo_return - random)
        target = targets[name]
        verdict = (
            "" if target is None else f">= {target:.0%} " + ("met" if norm >= target else "NOT met")
        )
        corr = [s["reward_correlation"] for s in summaries if s["reward_correlation"] is not None]
        acc = [
            s["reward_model_accuracy"] for s in summaries if s["reward_model_accuracy"] is not None
        ]
        lines.append(
            f"| {name} | {mean_sd(ret)} | {norm:.0%} | {verdict} | {wall:.1f} | "
            f"{wall / ppo_wall:.2f} | {np.mean(corr) if corr else float('nan'):.2f} | "
            f"{np.mean(acc) if acc else float('nan'):.2f} |"
        )
    oracle_wall = np.mean([s["wall_seconds"] for s in rows["pref-ppo, oracle, 200 labels"]])
    lines += [
        "",
        f"pref-PPO's wall time is {oracle_wall / ppo_wall:.2f}x PPO's (target <= 1.3x: "
        f"{'met' if oracle_wall / ppo_wall <= 1.3 else 'NOT met'}).",
    ]
    update_section("bench_train_ppo", "\n".join(lines))


def part_sac(out: Path, seeds: list[int], device: str) -> None:
    sac = [run("pendulum-sac", out, seed=seed, device=device) for seed in seeds]
    pref = [run("pendulum-pref-sac", out, seed=seed, device=device) for seed in seeds]
    sac_ret = [s["true_return_mean"] for s in sac]
    pref_ret = [s["true_return_mean"] for s in pref]
    gap = (np.mean(sac_ret) - np.mean(pref_ret)) / abs(np.mean(sac_ret))
    lines = [
        "## pref-SAC (PEBBLE) vs SAC, Pendulum-v1 (`bench_train.py --parts sac`)",
        "",
        "`configs/pendulum-sac.yaml` and `configs/pendulum-pref-sac.yaml`: 20k timesteps, one "
        "env, pref-SAC with 100 oracle labels and 1k steps of state-entropy pre-training; seeds "
        f"{', '.join(map(str, seeds))}. Device: {sac[0]['device']}.",
        "",
        "| learner | labels | true return | wall s |",
        "|---|---:|---:|---:|",
        f"| sac (true reward) | 0 | {mean_sd(sac_ret)} | "
        f"{np.mean([s['wall_seconds'] for s in sac]):.1f} |",
        f"| pref-sac | {pref[0]['labels_used']} | {mean_sd(pref_ret)} | "
        f"{np.mean([s['wall_seconds'] for s in pref]):.1f} |",
        "",
        f"pref-SAC's mean return is {gap:.1%} below SAC's (target: within 10%: "
        f"{'met' if gap <= 0.10 else 'NOT met'}).",
    ]
    update_section("bench_train_sac", "\n".join(lines))


def part_halfcheetah(out: Path, seeds: list[int], device: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seed = seeds[0]
    runs = {
        "sac (true reward)": run("halfcheetah-sac", out, seed=seed, device=device),
        "pref-sac (1,000 labels)": run("halfcheetah-pref-sac", out, seed=seed, device=device),
    }
    fig, ax = plt.subplots(figsize=(7, 4.2))
    lines = [
        "## pref-SAC vs SAC, HalfCheetah-v5, 100k timesteps (`bench_train.py --parts halfcheetah`)",
        "",
        f"`configs/halfcheetah-sac.yaml` and `configs/halfcheetah-pref-sac.yaml`, seed {seed}, "
        f"device {runs['sac (true reward)']['device']} (no GPU was lent to this session; the "
        "same script with `--device cuda` gives the GPU figures). Curves: "
        "`benchmarks/halfcheetah.png`.",
        "",
        "| learner | labels | true return at 100k | wall s | curve (return every 10k steps) |",
        "|---|---:|---:|---:|---|",
    ]
    for name, summary in runs.items():
        curve = np.genfromtxt(Path(summary["folder"]) / "curve.csv", delimiter=",", names=True)
        ax.plot(curve["timesteps"], curve["true_return_mean"], marker="o", label=name)
        points = ", ".join(f"{v:.0f}" for v in curve["true_return_mean"])
        lines.append(
            f"| {name} | {summary['labels_used']} | {summary['true_return_mean']:.1f} | "
            f"{summary['wall_seconds']:.0f} | {points} |"
        )
    ax.set_xlabel("timesteps")
    ax.set_ylabel("true return")
    ax.set_title("HalfCheetah-v5")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(HERE / "halfcheetah.png", dpi=110)
    update_section("bench_train_halfcheetah", "\n".join(lines))


def part_pointgoal(out: Path, seeds: list[int], device: str) -> None:
    runs = [run("pointgoal-pref-ppo", out, seed=seed, device=device) for seed in seeds]
    success = [s["success_rate"] for s in runs]
    lines = [
        "## pref-PPO on PointGoal-v0 (`bench_train.py --parts pointgoal`)",
        "",
        "`configs/pointgoal-pref-ppo.yaml`: 3 candidate targets, the true one hidden; 300k "
        "timesteps, 500 oracle labels about 25-step segments; success = within 0.1 of the true "
        "goal at the episode's last step, over 20 evaluation episodes. Device: "
        f"{runs[0]['device']}.",
        "",
        "| seed | success rate | true return | wall s |",
        "|---:|---:|---:|---:|",
    ]
    for seed, s in zip(seeds, runs, strict=True):
        lines.append(
            f"| {seed} | {s['success_rate']:.0%} | {s['true_return_mean']:.1f} | "
            f"{s['wall_seconds']:.0f} |"
        )
    lines += [
        "",
        f"Mean success {np.mean(success):.0%} (target >= 80%: "
        f"{'met' if np.mean(success) >= 0.8 else 'NOT met'}).",
    ]
    update_section("bench_train_pointgoal", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(
        parser,
        parts=PARTS,
        seeds_per_part="0,1,2; imitation: 0-4",
        device="cpu",
        workers=1,
        workers_help="imitation/ppo runs at once",
        keep=True,
    )
    parser.add_argument("--one-run", default=None, help=argparse.SUPPRESS)  # run_subprocess's
    args = parser.parse_args()
    if args.one_run:
        job = json.loads(args.one_run)
        summary = run(job["config"], Path(job["out"]), **job["overrides"])
        print(json.dumps(summary))
        return

    def run_part(out: Path, part: str) -> None:
        seeds = args.seeds or ([0, 1, 2, 3, 4] if part == "imitation" else [0, 1, 2])
        function = globals()[f"part_{part}"]
        if part in ("imitation", "ppo"):
            function(out / part, seeds, args.device, args.workers)
        else:
            function(out / part, seeds, args.device)

    with run_folder(args.keep) as out:
        run_parts("bench_train", args.parts, lambda part: run_part(out, part))


if __name__ == "__main__":
    main()
