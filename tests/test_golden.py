"""Golden figures: each headline learner's key numbers on a tiny budget, against tests/golden.json.

A change that moves any of these numbers (a default, a random stream, a normalisation, a new
library version) fails here until the RESULTS.md section that the learner's benchmark writes is
re-measured and the stored figures are regenerated, in one command::

    GOLDEN_UPDATE=1 .venv/bin/python -m pytest tests/test_golden.py -p no:cacheprovider

Each case is a run of the shipped code path (``train`` on a config, ``run_study``) with a budget
of seconds. Figures are compared exactly, except floats out of torch or of numpy's float
reductions, compared to a relative 1e-9: their summation order may follow the vector unit
(numpy's SIMD loops), which keeps results exact on one machine but not bit for bit across CPUs.
Torch runs on one thread here (the policy, and the reward model's fits, which take every core
by default), so the number of cores cannot move a figure. A CPU with other float kernels
(torch's AVX2 vs AVX512 paths, oneDNN's) gives other last bits, which training amplifies: the
stored figures are then this platform's (``golden.json`` records the one they were made on): on
another platform the learners' cases are skipped with a line naming both, the numpy-only bandit
and dueling cases still compared; regenerate them there rather than loosen the tolerance.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from feedbackgym.studies.train import TrainConfig, train

pytestmark = pytest.mark.usefixtures("restore_torch_threads")

GOLDEN = Path(__file__).with_name("golden.json")
UPDATE = os.environ.get("GOLDEN_UPDATE") == "1"
#: Relative tolerance of float figures (see the module docstring).
RTOL = 1e-9

#: Fixed inputs a learned reward model is read at: Pendulum observations (cos, sin, velocity)
#: and torques.
PENDULUM_OBS = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 4.0]], dtype=np.float32)
PENDULUM_ACT = np.array([[0.0], [2.0], [-1.0]], dtype=np.float32)
ONE_THREAD = {"threads": 1}


def run(tmp: Path, **options: Any) -> tuple[dict[str, Any], Path]:
    """One training run, evaluated once at its end; its summary and folder."""
    base = {"device": "cpu", "progress": False, "threads": 1, "eval_episodes": 20}
    config = TrainConfig.from_dict({**base, **options, "eval_every": options["timesteps"]})
    folder = tmp / "run"
    return train(config, folder), folder


def rewards_at(folder: Path, obs: np.ndarray, actions: np.ndarray) -> list[float]:
    """The run's saved reward model read at fixed steps (its standardised reward)."""
    from feedbackgym.feedback import RewardModel

    model = RewardModel.load(folder / "reward_model.pt", device="cpu")
    return [float(v) for v in np.asarray(model.reward(obs, actions)).reshape(-1)]


def summary_figures(summary: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: summary[key] for key in keys}


# ----- the cases: name -> (RESULTS section(s) to re-measure, figures) -------------------------
def pref_ppo(tmp: Path) -> dict[str, Any]:
    summary, folder = run(
        tmp,
        env="Pendulum-v1",
        algo="pref-ppo",
        teacher="oracle",
        labels=30,
        segment_length=10,
        timesteps=1024,
        n_envs=2,
        algo_kwargs={"n_steps": 64, "batch_size": 64, "n_epochs": 2, "use_sde": True},
        learner_kwargs={"reward_epochs": 5, "reward_model": ONE_THREAD},
    )
    out = summary_figures(
        summary, "true_return_mean", "labels_used", "reward_model_accuracy", "reward_correlation"
    )
    out["reward_at"] = rewards_at(folder, PENDULUM_OBS, PENDULUM_ACT)
    return out


def pref_sac(tmp: Path) -> dict[str, Any]:
    summary, folder = run(
        tmp,
        env="Pendulum-v1",
        algo="pref-sac",
        teacher="oracle",
        labels=20,
        segment_length=10,
        timesteps=500,
        n_envs=1,
        algo_kwargs={"learning_starts": 100, "batch_size": 64},
        learner_kwargs={
            "reward_epochs": 5,
            "update_every": 200,
            "unsupervised_steps": 100,
            "reward_model": ONE_THREAD,
        },
    )
    out = summary_figures(summary, "true_return_mean", "labels_used", "reward_correlation")
    out["reward_at"] = rewards_at(folder, PENDULUM_OBS, PENDULUM_ACT)
    return out


def cpl(tmp: Path) -> dict[str, Any]:
    summary, _ = run(
        tmp,
        env="Pendulum-v1",
        algo="cpl",
        teacher="oracle",
        labels=30,
        query="uniform",
        segment_length=10,
        timesteps=1024,
        n_envs=2,
        algo_kwargs={"net_arch": [32, 32], "learning_rate": 1e-3},
        learner_kwargs={"update_every": 200, "epochs": 5, "initial_epochs": 20},
    )
    return summary_figures(summary, "true_return_mean", "true_return_std", "labels_used")


def lang_goal(tmp: Path) -> dict[str, Any]:
    summary, _ = run(
        tmp,
        env="feedbackgym/PointGoal-v0",
        env_kwargs={"n_targets": 10},
        algo="lang-goal",
        encoder="builtin",
        labels=4,
        timesteps=100 * (2 * 4 + 6),  # bench_corrections' attempts for a budget of 4
        n_envs=1,
        seed=3,
    )
    return summary_figures(
        summary,
        "success_rate",
        "true_return_mean",
        "labels_used",
        "attempts",
        "unusable_answers",
        "belief_max",
    )


def rrd_ppo(tmp: Path) -> dict[str, Any]:
    summary, _ = run(
        tmp,
        env="Pendulum-v1",
        algo="rrd-ppo",
        reward_delay="episode-end",
        timesteps=1024,
        n_envs=2,
        algo_kwargs={"n_steps": 128, "batch_size": 64, "n_epochs": 2},
        learner_kwargs={"fit_steps": 20, "initial_fit_steps": 50},
    )
    return summary_figures(summary, "true_return_mean", "true_return_std", "reward_correlation")


def team_pref_ppo(tmp: Path) -> dict[str, Any]:
    summary, _ = run(
        tmp,
        env="mpe2/simple_spread_v3",
        env_kwargs={"N": 3, "max_cycles": 25},
        algo="pref-ppo",
        teacher="team",
        labels=60,
        query="disagreement",
        segment_length=10,
        timesteps=1536,
        n_envs=2,
        algo_kwargs={"n_steps": 32, "batch_size": 96, "n_epochs": 2, "ent_coef": 0.04},
        learner_kwargs={
            "reward_model": {"temporal_reg": 0.1, "weight_decay": 0.03, "threads": 1},
        },
    )
    return summary_figures(
        summary, "true_return_mean", "labels_used", "reward_model_accuracy", "reward_correlation"
    )


def regret_study(tmp: Path, env: str, agents: list[str], **options: Any) -> dict[str, Any]:
    from feedbackgym.studies import RegretStudy, run_study

    study = RegretStudy(env=env, agents=agents, **options)
    rows = run_study(study, tmp / "study", progress=False)
    return {
        f"{row['agent']} ({study.paths.get(row['agent'], '?')})": [
            row["final_regret_mean"],
            row["final_regret_sem"],
        ]
        for row in rows
    }


def bandits(tmp: Path) -> dict[str, Any]:
    means = [round(float(m), 6) for m in np.linspace(0.9, 0.1, 10)]  # bench_bandits' instance
    fused = regret_study(
        tmp / "fused",
        "feedbackgym/BernoulliBandit-v0",
        ["ucb1", "kl-ucb", "thompson"],
        env_kwargs={"means": means},
        horizon=2000,
        runs=20,
        seed=11,
        runs_per_cell=20,
    )
    steps = regret_study(
        tmp / "steps",
        "feedbackgym/BernoulliBandit-v0",
        ["ucb1", "thompson", "delayed-ucb"],
        env_kwargs={"means": means},
        horizon=1000,
        runs=10,
        seed=11,
        runs_per_cell=10,
        delay="geometric:0.05",
    )
    return {**fused, **{f"delayed {k}": v for k, v in steps.items()}}


def dueling(tmp: Path) -> dict[str, Any]:
    utilities = [round(float(u), 6) for u in np.linspace(1.0, 0.0, 10)]  # bench_dueling's
    return regret_study(
        tmp,
        "feedbackgym/DuelingBandit-v0",
        ["rucb", "rmed1", "dts", "merge-rucb", "self-sparring"],
        env_kwargs={"utilities": utilities, "scale": 3.0},
        horizon=1000,
        runs=10,
        seed=5,
        runs_per_cell=10,
        metric="average",
    )


CASES: dict[str, tuple[str, Callable[[Path], dict[str, Any]]]] = {
    "pref-ppo": ("bench_train_imitation, bench_train_ppo", pref_ppo),
    "pref-sac": ("bench_train_sac", pref_sac),
    "cpl": ("bench_cpl", cpl),
    "lang-goal": ("bench_corrections", lang_goal),
    "rrd-ppo": ("bench_delays_rl", rrd_ppo),
    "team-pref-ppo": ("bench_multiagent_spread", team_pref_ppo),
    "bandit-regret": ("bench_bandits, bench_fused, bench_delays_bandit", bandits),
    "dueling-regret": ("bench_dueling, bench_fused_dueling", dueling),
}


#: Cases computed by numpy / numba alone: compared on every platform (to RTOL).
NUMPY_ONLY = ("bandit-regret", "dueling-regret")


# ----- comparing and regenerating -----------------------------------------------------------
def platform() -> str:
    """What the figures depend on besides the code: the float kernels torch and numpy pick,
    and the versions of the libraries that compute them."""
    import gymnasium
    import stable_baselines3
    import torch

    return (
        f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), "
        f"numpy {np.__version__}, stable-baselines3 {stable_baselines3.__version__}, "
        f"gymnasium {gymnasium.__version__}"
    )


def flatten(figures: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": [1, 2]}}`` -> ``{"a.b[0]": 1, "a.b[1]": 2}``."""
    if isinstance(figures, dict):
        out: dict[str, Any] = {}
        for key, value in figures.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(figures, list | tuple):
        out = {}
        for i, value in enumerate(figures):
            out.update(flatten(value, f"{prefix}[{i}]"))
        return out
    return {prefix: figures}


def same(stored: Any, now: Any) -> bool:
    """Ints, strings and None (a NaN, as JSON holds it) exactly; floats to RTOL."""
    if isinstance(stored, float) or isinstance(now, float):
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (stored, now))
        if not numbers:  # a float against None, a string or an absent figure
            return False
        a, b = float(stored), float(now)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=RTOL, abs_tol=0.0)
    return stored == now


def jsonable(figures: dict[str, Any]) -> Any:
    """Floats as JSON holds them (NaN as null), so a stored figure reads back as computed."""
    return json.loads(json.dumps(figures, default=float).replace("NaN", "null"))


@pytest.fixture(scope="module")
def store():
    """tests/golden.json; with GOLDEN_UPDATE=1 the figures computed are written back at the end."""
    data = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {"figures": {}}
    yield data
    if UPDATE:
        data["platform"] = platform()
        data["figures"] = dict(sorted(data["figures"].items()))
        GOLDEN.write_text(json.dumps(data, indent=2) + "\n")


def check(name: str, stored: dict[str, Any], now: dict[str, Any], where: str = "") -> None:
    """Every figure of case ``name`` as stored; the first that moved fails in one line."""
    section = CASES[name][0]
    stored, now = flatten(stored), flatten(now)
    for key in sorted(set(stored) | set(now)):
        was, is_ = stored.get(key, "absent"), now.get(key, "absent")
        assert same(was, is_), (
            f"golden figure moved: {name} {key} was {was} now {is_}{where} — re-measure the "
            f"RESULTS section {section} and update tests/golden.json with "
            "`GOLDEN_UPDATE=1 pytest tests/test_golden.py`"
        )


@pytest.mark.parametrize("name", list(CASES))
def test_golden_figures(name, tmp_path, store):
    figures = jsonable(CASES[name][1](tmp_path))
    if UPDATE:
        store["figures"][name] = figures
        return
    assert name in store["figures"], (
        f"no golden figures for {name}: create them with `GOLDEN_UPDATE=1 pytest "
        "tests/test_golden.py`"
    )
    where = (
        ""
        if store.get("platform") == platform()
        else f" (stored on {store.get('platform')}; this machine: {platform()})"
    )
    if where and name not in NUMPY_ONLY:
        # torch's float kernels differ by CPU (AVX2 vs AVX512) and training amplifies the last
        # bits: a learner's figures hold on the platform they were stored on only
        pytest.skip(f"golden figures of {name} are per platform{where}")
    check(name, store["figures"][name], figures, where)


def test_a_figure_moved_past_the_tolerance_fails_in_one_line_naming_its_section(store):
    """The comparison itself, on the stored figures: a float moved by 10 RTOL fails with the
    message naming the section to re-measure; one moved by RTOL / 10 passes; an int or a key
    that appears or goes fails."""
    if UPDATE:
        pytest.skip("regenerating the figures")
    stored = store["figures"]["bandit-regret"]
    moved = json.loads(json.dumps(stored))
    first = next(iter(moved))
    moved[first][0] *= 1 + 10 * RTOL
    with pytest.raises(
        AssertionError,
        match=r"^golden figure moved: bandit-regret .* was .*"
        r"bench_bandits.*GOLDEN_UPDATE=1 pytest tests/test_golden.py",
    ):
        check("bandit-regret", stored, moved)
    moved[first][0] = stored[first][0] * (1 + RTOL / 10)
    check("bandit-regret", stored, moved)
    with pytest.raises(AssertionError, match="was absent now"):
        check("bandit-regret", stored, {**moved, "new-agent": [1.0, 0.0]})
    summary = store["figures"]["pref-ppo"]
    with pytest.raises(AssertionError, match="labels_used was 30 now 31"):
        check("pref-ppo", summary, {**summary, "labels_used": 31})
