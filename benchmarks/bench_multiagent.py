"""Multi-agent RLHF: parameter-sharing PPO on a learned team reward vs on the true reward.

Each run is `feedbackgym.studies.train.train` on a shipped config (what ``feedbackgym train
--config`` runs), seeds 0-2, and each part writes its own section of benchmarks/RESULTS.md:

- ``spread``: MPE cooperative navigation (``mpe2/simple_spread_v3``, 3 agents, 1M agent
  steps): PPO on the true reward (``configs/spread-ppo.yaml``) at entropy coefficients 0.01,
  0.02 and 0.04 (the baseline tuned as pref-PPO's was, same seeds) vs pref-PPO on a team
  reward learned from 1,000 team labels (``configs/spread-pref-ppo.yaml``), and ablations of
  that config: without MARLHF's temporal regulariser, with entropy coefficient 0.01, without
  weight decay, without the reward model's planar symmetry (same labels budget and seeds).
  Normalised return = (return - random policy's) / (the best PPO baseline's - random's), on
  the same evaluation episodes; the best baseline is the one of highest mean return, and the
  script says when it is not ``spread-ppo.yaml``'s (that config should then ship it).
- ``ceiling``: where ``spread``'s gap comes from. PPO (``configs/spread-ppo.yaml``'s settings)
  on a FIXED reward model of the same per-agent-sum architecture (hidden 64 x 2), fitted before
  training on random-policy experience: by regression on the true team reward of every step (a
  dense supervised ceiling), or by the reward model's own fit to 1,000 / 5,000 team labels
  between 25-step random-policy segments (in one fit, or in 7 growing rounds as the training
  loop refits, with or without weight decay). Reports each model's correlation with the true
  team reward on held-out random-policy steps and on the trained policy's own steps.
- ``commons``: ``feedbackgym/commons_v0``, where per-agent and team rewards disagree: pref-PPO
  from a team teacher vs from a per-agent teacher (``configs/commons-pref-ppo.yaml``), and PPO
  on each true reward, compared by the team's return.

    .venv/bin/python benchmarks/bench_multiagent.py [--parts spread,commons] [--seeds 0,1,2]
        [--workers 2] [--device cpu]

Runs go to a temporary folder (``--keep DIR`` keeps them); ``--workers`` runs that many at once
(each on one torch thread).
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _parts import add_common_arguments, run_folder, run_parts  # noqa: E402
from _results import update_section  # noqa: E402
from bench_train import random_return  # noqa: E402

from feedbackgym.studies.train import TrainConfig, load_yaml, train  # noqa: E402

CONFIGS = HERE.parent / "configs"
PARTS = ("spread", "commons", "ceiling")


def run(job: tuple[str, str, dict[str, Any], str]) -> tuple[str, dict[str, Any]]:
    """One training run of a shipped config with overrides into ``out``; (label, summary)."""
    label, config_name, overrides, out = job
    options = {**load_yaml(CONFIGS / f"{config_name}.yaml"), **overrides, "progress": False}
    tag = "-".join(f"{k}={v}" for k, v in sorted(overrides.items()) if k != "device")
    folder = Path(out) / f"{config_name}-{tag}".replace("/", "_").replace(" ", "")
    summary = {**train(TrainConfig.from_dict(options), folder), "entropy": final_entropy(folder)}
    print(
        f"  {label} seed {overrides.get('seed')}: team return "
        f"{summary['true_return_mean']:.2f}, {summary['wall_seconds']:.0f} s",
        flush=True,
    )
    return label, summary


def final_entropy(folder: Path) -> float | None:
    """The policy's entropy at its last PPO update (nats), from the run's TensorBoard logs
    (a resumed run logs each part to its own folder: the latest step wins)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points = []
    for events in folder.glob("tensorboard/**/events.out.tfevents.*"):
        log = EventAccumulator(str(events), size_guidance={"scalars": 0})
        log.Reload()
        if "train/entropy_loss" in log.Tags()["scalars"]:
            points += [(e.step, -e.value) for e in log.Scalars("train/entropy_loss")]
    return float(max(points)[1]) if points else None


def run_all(jobs: list[tuple[str, str, dict[str, Any], str]], workers: int) -> dict[str, list]:
    """Every job (in ``workers`` processes); summaries grouped by label, in job order."""
    out: dict[str, list[dict[str, Any]]] = {label: [] for label, *_ in jobs}
    if workers <= 1:
        results = [run(job) for job in jobs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(run, jobs))
    for label, summary in results:
        out[label].append(summary)
    return out


def mean_se(values: list[float]) -> str:
    values = np.asarray(values, dtype=float)
    se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return f"{values.mean():.2f} ± {se:.2f}"


def column(summaries: list[dict[str, Any]], key: str) -> list[float]:
    return [float(s[key]) for s in summaries if s.get(key) is not None]


#: Entropy coefficients of the true-reward PPO baseline, each run on the same seeds: the
#: baseline gets the same tuning as pref-PPO's coefficient (whose 0.04 came from this range).
BASELINE_ENT_COEFS = (0.01, 0.02, 0.04)
ENTROPY_ROW = "pref-ppo, entropy coefficient 0.01"
#: The spread part's ablations of the shipped config: row label -> options changed, as nested
#: dicts merged into the config's (a None value leaves that option out).
ABLATIONS: dict[str, dict[str, Any]] = {
    "pref-ppo, no temporal regulariser": {
        "learner_kwargs": {"reward_model": {"temporal_reg": None}}
    },
    ENTROPY_ROW: {"algo_kwargs": {"ent_coef": 0.01}},
    "pref-ppo, no weight decay": {"learner_kwargs": {"reward_model": {"weight_decay": None}}},
    "pref-ppo, no symmetry, no weight decay": {
        "learner_kwargs": {"reward_model": {"symmetry": None, "weight_decay": None}}
    },
}


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in, nested dicts alike; a None value removes its key."""
    out = dict(base)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict):
            out[key] = merged(out.get(key) or {}, value)
        else:
            out[key] = value
    return out


def baselines(ppo: dict[str, Any]) -> dict[str, float]:
    """Row label -> entropy coefficient of each true-reward PPO baseline: BASELINE_ENT_COEFS and
    the shipped config's own coefficient, marked ``(shipped)``."""
    shipped = ppo["algo_kwargs"].get("ent_coef", 0.0)
    return {
        f"ppo (true reward), entropy coefficient {coef}"
        + (" (shipped)" if coef == shipped else ""): coef
        for coef in sorted({*BASELINE_ENT_COEFS, shipped})
    }


def baseline_job(
    ppo: dict[str, Any], label: str, coef: float, common: dict[str, Any], out: str
) -> tuple[str, str, dict[str, Any], str]:
    """The run of ``spread-ppo`` at entropy coefficient ``coef``; the shipped coefficient runs
    with no override, so its folder is the one earlier runs kept (``--keep``)."""
    if coef == ppo["algo_kwargs"].get("ent_coef", 0.0):
        return (label, "spread-ppo", common, out)
    algo_kwargs = {**ppo["algo_kwargs"], "ent_coef": coef}
    return (label, "spread-ppo", {**common, "algo_kwargs": algo_kwargs}, out)


def best_of(rows: dict[str, list[dict[str, Any]]], labels: list[str]) -> str:
    """The label among ``labels`` of highest mean true return (the first on a tie)."""
    return max(labels, key=lambda label: np.mean(column(rows[label], "true_return_mean")))


def part_spread(out: Path, seeds: list[int], workers: int, device: str) -> None:
    pref = load_yaml(CONFIGS / "spread-pref-ppo.yaml")
    ppo_config = load_yaml(CONFIGS / "spread-ppo.yaml")
    shipped_coef = ppo_config["algo_kwargs"].get("ent_coef", 0.0)
    coefs = baselines(ppo_config)
    jobs = []
    for seed in seeds:
        common = {"seed": seed, "device": device}
        jobs += [
            baseline_job(ppo_config, label, coef, common, str(out)) for label, coef in coefs.items()
        ]
        jobs.append(("pref-ppo, team teacher (shipped)", "spread-pref-ppo", common, str(out)))
        for label, changes in ABLATIONS.items():
            options = merged(pref, changes)
            overrides = {key: options[key] for key in changes}
            jobs.append((label, "spread-pref-ppo", {**common, **overrides}, str(out)))
    rows = run_all(jobs, workers)
    random = float(np.mean([random_return("spread-ppo", seed) for seed in seeds]))
    best = best_of(rows, list(coefs))
    ppo, best_coef = float(np.mean(column(rows[best], "true_return_mean"))), coefs[best]
    print(
        f"[bench_multiagent] spread: best true-reward PPO baseline: {best} "
        f"(mean team return {ppo:.2f})",
        flush=True,
    )
    if best_coef != shipped_coef:
        print(
            f"[bench_multiagent] spread: configs/spread-ppo.yaml ships ent_coef {shipped_coef}; "
            f"the best baseline measured is {best_coef}: ship that",
            flush=True,
        )
    model = pref["learner_kwargs"]["reward_model"]
    lines = [
        "## Multi-agent RLHF on cooperative navigation (`bench_multiagent.py --parts spread`)",
        "",
        "`mpe2/simple_spread_v3` (3 agents, 25-step episodes), one PPO policy shared by the "
        f"agents (SuperSuit + SB3), {pref['timesteps']:,} agent steps, {pref['n_envs']} "
        f"teams in parallel, seeds {', '.join(map(str, seeds))}. pref-PPO "
        "(`configs/spread-pref-ppo.yaml`): "
        f"{pref['labels']:,} labels from the `team` teacher (oracle), each comparing two "
        "teams' 25-step segments (an episode's length, at random offsets, so most span two "
        "episodes) by team return; the reward model scores each agent with one "
        "shared network and sums over the team (MARLHF, Zhang et al. 2024), with MARLHF's "
        f"temporal regulariser (weight {model['temporal_reg']}), the task's planar symmetry "
        "(each labelled pair also fitted in its 8 images under quarter turns and mirror images "
        "of the plane: simple_spread's reward scores distances only) and weight decay "
        f"{model['weight_decay']} (the members are refitted every round on all labels so far; "
        "decay keeps them from overfitting the first rounds' answers); PPO's entropy "
        f"coefficient {pref['algo_kwargs']['ent_coef']}, as the "
        "learned reward is standardised on recent steps, about 4x the env reward's scale. "
        "Each other pref-PPO row changes one or two of these, "
        "same labels budget and seeds. PPO on the true reward (`configs/spread-ppo.yaml`, "
        f"entropy coefficient {shipped_coef}) is run at entropy coefficients "
        f"{', '.join(map(str, coefs.values()))}, same seeds and everything else: the "
        f"baseline is the best of them by mean return, entropy coefficient {best_coef}"
        + (
            ""
            if best_coef == shipped_coef
            else f" (not the shipped config's {shipped_coef}: it should ship {best_coef})"
        )
        + ". Team return = sum over the episode of the mean agent reward, 20 evaluation "
        "episodes per seed. Normalised = (return - random's) / (the best PPO baseline's - "
        f"random's); random policy: {random:.2f}. Mean ± standard error over seeds. "
        "Device: " + rows[best][0]["device"],
        "",
        "| learner | team return | normalised | labels | reward corr. | held-out acc. "
        "| entropy | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    normalised = {}
    for label, summaries in rows.items():
        ret = column(summaries, "true_return_mean")
        norm = (np.mean(ret) - random) / (ppo - random)
        normalised[label] = norm
        corr, acc = (
            column(summaries, "reward_correlation"),
            column(summaries, "reward_model_accuracy"),
        )
        lines.append(
            f"| {label} | {mean_se(ret)} | {norm:.0%} | "
            f"{int(np.mean(column(summaries, 'labels_used')))} | "
            f"{np.mean(corr) if corr else float('nan'):.2f} | "
            f"{np.mean(acc) if acc else float('nan'):.2f} | "
            f"{np.mean(column(summaries, 'entropy')):.2f} | "
            f"{np.mean(column(summaries, 'wall_seconds')):.0f} |"
        )
    team = normalised["pref-ppo, team teacher (shipped)"]
    lines += [
        "",
        f"Target: the learned-reward team return reaches >= 80% of the best true-reward PPO "
        f"baseline's (entropy coefficient {best_coef}; normalised) with <= {pref['labels']:,} "
        f"team labels: {team:.0%}, {'met' if team >= 0.8 else 'NOT met'}.",
        f"Temporal regulariser vs none, same labels and seeds: {team:.0%} vs "
        f"{normalised['pref-ppo, no temporal regulariser']:.0%} of the best PPO's normalised "
        "return.",
        f"pref-PPO's entropy coefficient {pref['algo_kwargs']['ent_coef']} vs 0.01: {team:.0%} "
        f"vs {normalised[ENTROPY_ROW]:.0%}.",
        "`entropy`: the policy's entropy at its last update, nats (5 moves: at most 1.61).",
        "`reward corr.`: correlation of the learned and the true team reward of the evaluation "
        "steps; `held-out acc.`: the last 100 labels, each predicted before it was fitted "
        "(queries chosen where the ensemble disagrees most, so harder than random pairs).",
    ]
    update_section("bench_multiagent_spread", "\n".join(lines))


def part_commons(out: Path, seeds: list[int], workers: int, device: str) -> None:
    jobs = []
    for seed in seeds:
        common = {"seed": seed, "device": device}
        jobs.append(("pref-ppo, team teacher", "commons-pref-ppo", common, str(out)))
        jobs.append(
            (
                "pref-ppo, per-agent teacher",
                "commons-pref-ppo",
                {**common, "teacher": "per-agent"},
                str(out),
            )
        )
        for reward in ("team", "per-agent"):
            jobs.append(
                (
                    f"ppo on the true {reward} reward",
                    "commons-pref-ppo",
                    {
                        **common,
                        "algo": "ppo",
                        "teacher": None,
                        "labels": 0,
                        "env_kwargs": {"reward": reward},
                    },
                    str(out),
                )
            )
    rows = run_all(jobs, workers)
    random = float(np.mean([random_return("commons-pref-ppo", seed) for seed in seeds]))
    config = load_yaml(CONFIGS / "commons-pref-ppo.yaml")
    lines = [
        "## Team vs per-agent teachers where they disagree (`bench_multiagent.py --parts commons`)",
        "",
        "`feedbackgym/commons_v0` (3 agents share a regrowing stock; an agent's reward is its "
        "own harvest, the team's the mean harvest: over-harvesting collapses the stock), "
        f"{config['timesteps']:,} agent steps, {config['labels']} labels of 50-step segments, "
        f"seeds {', '.join(map(str, seeds))}. Team return of 20 evaluation episodes; random "
        f"policy: {random:.2f}. Mean ± standard error over seeds.",
        "",
        "| learner | team return | wall s |",
        "|---|---:|---:|",
    ]
    for label, summaries in rows.items():
        lines.append(
            f"| {label} | {mean_se(column(summaries, 'true_return_mean'))} | "
            f"{np.mean(column(summaries, 'wall_seconds')):.0f} |"
        )

    def mean(label: str) -> float:
        return float(np.mean(column(rows[label], "true_return_mean")))

    team, agent = mean("pref-ppo, team teacher"), mean("pref-ppo, per-agent teacher")
    greedy, shared = mean("ppo on the true per-agent reward"), mean("ppo on the true team reward")
    lines += [
        "",
        f"Team teacher {team:.2f} vs per-agent teacher {agent:.2f}; PPO on the true team reward "
        f"{shared:.2f}, on each agent's own reward {greedy:.2f}. "
        + (
            "The per-agent teacher's agents over-harvest as own-reward PPO does."
            if agent < team - 0.5 * abs(team - greedy)
            else "The per-agent teacher does not lead to over-harvesting here: it compares "
            "50-step segments of one agent, whose own total is largest when the stock lasts, so "
            "its labels favour restraint as the team's do; only a learner of the immediate own "
            "reward (PPO) collapses the stock."
        ),
    ]
    update_section("bench_multiagent_commons", "\n".join(lines))


SPREAD = "mpe2/simple_spread_v3"
SPREAD_KWARGS = {"N": 3, "max_cycles": 25}


def _random_experience(seed: int, steps: int, copies: int = 8) -> Any:
    """A TeamPool of ``steps`` random-policy vector steps of ``copies`` spread teams."""
    from feedbackgym.agents.learners.queries import TeamPool
    from feedbackgym.envs.multiagent.vector import make_team_vec_env

    env = make_team_vec_env(SPREAD, copies, seed=seed, env_kwargs=SPREAD_KWARGS)
    pool = TeamPool(env.num_envs, steps, env.n_agents, "team")
    pool.collect(env, steps, seed=seed)
    return pool


def _fixed_reward(kind: str, seed: int, pool: Any) -> Any:
    """A reward model (per-agent network summed over the team) fitted on ``pool`` by
    regression on the true team reward (``regression``) or to ``N`` team labels (``labels:N``)."""
    import torch

    from feedbackgym.feedback import Comparisons, RewardModel, make_feedback_model

    torch.manual_seed(seed)
    _, *label_spec = kind.split(":")  # labels:N, labels:N:rounds, labels:N:rounds:DECAY
    decay = float(label_spec[2]) if len(label_spec) > 2 else 0.0
    model = RewardModel(agent_axis=True, seed=seed, device="cpu", threads=1, weight_decay=decay)
    obs, actions = pool.steps()
    team = pool.team[: pool.filled].reshape(-1)
    if kind == "regression":
        # RewardModel's own network and input scale, fitted by mean squared error (Adam).
        feats = model.features(obs, actions)
        flat = feats.reshape(-1, feats.shape[-1])
        model.feature_mean = flat.mean(axis=0)
        model.feature_std = flat.std(axis=0) + 1e-6
        model.build(flat.shape[1])
        x, y = model.scaled(feats), torch.as_tensor(team, dtype=torch.float32)
        generator = torch.Generator().manual_seed(seed)
        for _ in range(6000):
            rows = torch.randint(0, len(x), (512,), generator=generator)
            m, a, f = model.members, x.shape[1], x.shape[2]
            pred = model.network(x[rows].reshape(-1, f)).reshape(m, -1, a).sum(-1)
            loss = (pred - y[rows]).pow(2).mean()
            model.optimiser.zero_grad()
            loss.backward()
            model.optimiser.step()
        model.network.eval()
    else:
        n, rounds = int(label_spec[0]), len(label_spec) > 1
        rng = np.random.default_rng(seed)
        teacher = make_feedback_model("team", rng=seed)
        data = Comparisons()
        # as the training loop's rounds: a quarter of the labels first, the rest in 6 rounds,
        # the members training on every answer so far after each
        sizes = [n // 4] + [(n - n // 4) // 6] * 6 if rounds else [n]
        for k, size in enumerate(sizes):
            a, b = pool.sample(size, 25, rng), pool.sample(size, 25, rng)
            data.add_pairs(a, b, teacher.prefer(a, b))
            model.fit(data, epochs=50 if k == 0 else 30)
    model.calibrate(obs, actions)
    return model


def _team_corr(model: Any, obs: np.ndarray, actions: np.ndarray, team: np.ndarray) -> float:
    return float(np.corrcoef(model.reward(obs, actions).sum(axis=1), team)[0, 1])


def run_fixed(job: tuple[str, int]) -> tuple[str, dict[str, float]]:
    """PPO (spread-ppo.yaml's settings) on a fixed reward model; its true team return."""
    import torch
    from stable_baselines3 import PPO

    from feedbackgym.agents.learners.preference import LearnedRewardVecEnv
    from feedbackgym.agents.learners.queries import TeamPool
    from feedbackgym.envs.multiagent.vector import make_team_vec_env
    from feedbackgym.studies.train import Evaluator

    kind, seed = job
    torch.set_num_threads(1)
    begin = time.perf_counter()
    model = _fixed_reward(kind, seed, _random_experience(100 + seed, 2500))
    held_out = _random_experience(900 + seed, 200, copies=4)
    random_corr = _team_corr(model, *held_out.steps(), held_out.team[: held_out.filled].reshape(-1))
    options = {**load_yaml(CONFIGS / "spread-ppo.yaml"), "seed": seed}
    config = TrainConfig.from_dict(options)
    venv = make_team_vec_env(SPREAD, config.n_envs, seed=seed, env_kwargs=SPREAD_KWARGS)
    n_agents = venv.n_agents

    def team_reward(obs: np.ndarray, actions: np.ndarray, _next: np.ndarray) -> np.ndarray:
        parts = model.reward(
            obs.reshape(-1, n_agents, obs.shape[-1]), actions.reshape(-1, n_agents)
        )
        return np.repeat(parts.mean(axis=1), n_agents)

    pool = TeamPool(venv.num_envs, 1, n_agents, "team")  # LearnedRewardVecEnv records steps
    env = LearnedRewardVecEnv(venv, pool, team_reward)
    ppo = PPO("MlpPolicy", env, seed=seed, verbose=0, **options["algo_kwargs"])
    ppo.learn(config.timesteps)
    wall = time.perf_counter() - begin
    result = Evaluator(config, 20)(ppo)
    # the trained policy's own steps: does the fixed model still rank them?
    check = make_team_vec_env(SPREAD, 8, seed=10_000 + seed, env_kwargs=SPREAD_KWARGS)
    obs, seen, acts, team = check.reset(), [], [], []
    for _ in range(200):
        action, _ = ppo.predict(obs, deterministic=True)
        nxt, _, _, infos = check.step(action)
        seen.append(obs.reshape(-1, n_agents, obs.shape[-1]))
        acts.append(action.reshape(-1, n_agents))
        team.append(np.array([i["team_reward"] for i in infos])[::n_agents])
        obs = nxt
    policy_corr = _team_corr(
        model, np.concatenate(seen), np.concatenate(acts), np.concatenate(team)
    )
    summary = {
        "true_return_mean": result["true_return_mean"],
        "random_corr": random_corr,
        "policy_corr": policy_corr,
        "wall_seconds": wall,
    }
    print(f"  {kind} seed {seed}: team return {summary['true_return_mean']:.2f}", flush=True)
    return kind, summary


def part_ceiling(out: Path, seeds: list[int], workers: int, device: str) -> None:
    kinds = (
        "regression",
        "labels:1000",
        "labels:5000",
        "labels:1000:rounds",
        "labels:1000:rounds:0.03",
    )
    jobs = [(kind, seed) for kind in kinds for seed in seeds]
    rows: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    with ProcessPoolExecutor(workers) as pool:
        for kind, summary in pool.map(run_fixed, jobs):
            rows[kind].append(summary)
    random = float(np.mean([random_return("spread-ppo", seed) for seed in seeds]))
    names = {
        "regression": "regression on the true team reward (20,000 steps' rewards)",
        "labels:1000": "1,000 team labels (reward model's default fit)",
        "labels:5000": "5,000 team labels (reward model's default fit)",
        "labels:1000:rounds": "1,000 team labels in 7 rounds",
        "labels:1000:rounds:0.03": "1,000 team labels in 7 rounds, weight_decay 0.03",
    }
    lines = [
        "## Where the spread gap comes from: PPO on fixed reward models "
        "(`bench_multiagent.py --parts ceiling`)",
        "",
        "PPO with `configs/spread-ppo.yaml`'s settings (1,000,000 agent steps) on a reward model "
        "fitted once, before training, on 20,000 team steps of a uniform-random policy, and "
        "never refitted: the toolkit's `RewardModel` (per-agent network, 64 x 2, summed over the "
        "team) fitted by regression on every step's true team reward, or to team labels "
        "between 25-step segments of that experience. `corr. random`: correlation with the true "
        "team reward on held-out random-policy steps; `corr. policy`: on 1,600 team steps of the "
        "trained policy itself. Normalise against the spread section's random policy "
        f"({random:.2f}) and PPO on the true reward. Seeds {', '.join(map(str, seeds))}, "
        "mean ± standard error.",
        "",
        "| fixed reward model | team return | corr. random | corr. policy |",
        "|---|---:|---:|---:|",
    ]
    for kind, summaries in rows.items():
        lines.append(
            f"| {names[kind]} | {mean_se(column(summaries, 'true_return_mean'))} | "
            f"{np.mean(column(summaries, 'random_corr')):.2f} | "
            f"{np.mean(column(summaries, 'policy_corr')):.2f} |"
        )
    lines += [
        "",
        "Reading: the per-agent-sum architecture can carry the team reward (the regression "
        "row, against the spread section's PPO on the true reward). Team labels between "
        "random-policy segments teach it a reward that correlates less with the team's, on "
        "random play and less still on the states a policy trained on it reaches, and PPO on "
        "it stops well short; five times the labels closes only part of the gap. In rounds "
        "(a quarter of the labels, then six more batches, the members training 30 epochs on "
        "every answer so far after each, as the training loop refits), weight decay keeps the "
        "members from overfitting the early answers.",
    ]
    update_section("bench_multiagent_ceiling", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(
        parser,
        parts=PARTS,
        seeds="0,1,2",
        workers=2,
        workers_help="runs at once, each in its own process on one torch thread",
        device="cpu",
        keep=True,
    )
    args = parser.parse_args()

    def run_part(out: Path, part: str) -> None:
        globals()[f"part_{part}"](out / part, args.seeds, args.workers, args.device)

    with run_folder(args.keep) as out:
        run_parts("bench_multiagent", args.parts, lambda part: run_part(out, part))


if __name__ == "__main__":
    main()
