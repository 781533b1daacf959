"""Sweeps: a grid of training runs, the same on every backend, resumable, checked up front."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml

from feedbackgym.studies import sweep as sweep_module
from feedbackgym.studies import train as train_module
from feedbackgym.studies.sweep import Sweep, aggregate, iqm_interval, run_sweep, task_of
from feedbackgym.studies.train import TrainConfig

pytestmark = pytest.mark.usefixtures("restore_torch_threads")

TINY = {
    "base": {
        "env": "Pendulum-v1",
        "algo": "pref-ppo",
        "timesteps": 512,
        "labels": 10,
        "segment_length": 8,
        "n_envs": 2,
        "device": "cpu",
        "algo_kwargs": {"n_steps": 64, "batch_size": 64, "n_epochs": 1},
        "learner_kwargs": {"initial_epochs": 5},
        "eval_every": 512,
    },
    "grid": {
        "teacher": ["oracle", {"teacher": "stochastic", "teacher_kwargs": {"beta": 0.05}}],
        "seed": [0, 1],
    },
}
WALL = set(sweep_module.WALL_CLOCK)


def rows(path) -> list[dict[str, str]]:
    with open(path) as handle:
        return [{k: v for k, v in row.items() if k not in WALL} for row in csv.DictReader(handle)]


def test_a_tiny_sweep_gives_the_same_summary_locally_and_on_ray(tmp_path):
    pytest.importorskip("ray")
    local = run_sweep(Sweep.from_dict(TINY), tmp_path / "local", progress=False)
    assert [r["teacher"] for r in local] == ["oracle", "oracle", "stochastic", "stochastic"]
    assert all(r["labels_used"] == 10 for r in local)
    run_sweep(Sweep.from_dict(TINY), tmp_path / "ray", backend="ray", workers=2, progress=False)
    assert rows(tmp_path / "local" / "summary.csv") == rows(tmp_path / "ray" / "summary.csv")
    for name in ("aggregate.csv", "returns.png", "profiles.png"):
        assert (tmp_path / "local" / name).exists()
    # each cell is a training run folder
    assert (tmp_path / "local" / "cells" / "teacher=oracle__seed=0" / "curve.csv").exists()


def test_an_interrupted_sweep_resumes_without_recomputing_finished_cells(tmp_path, monkeypatch):
    real = sweep_module.run_cell
    ran: list[str] = []

    def interrupted(job):
        if len(ran) == 2:
            raise KeyboardInterrupt
        ran.append(job[1])
        return real(job)

    monkeypatch.setattr(sweep_module, "run_cell", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(Sweep.from_dict(TINY), tmp_path / "s", progress=False)
    finished = {p: (p / "summary.json").stat().st_mtime_ns for p in map(type(tmp_path), ran)}
    monkeypatch.setattr(sweep_module, "run_cell", lambda job: ran.append(job[1]) or real(job))
    out = run_sweep(Sweep.from_dict(TINY), tmp_path / "s", progress=False)
    assert len(out) == 4 and len(ran) == 4  # the two cells left, nothing twice
    for folder, stamp in finished.items():
        assert (folder / "summary.json").stat().st_mtime_ns == stamp


def test_the_aggregate_matches_a_hand_computation():
    returns = [0.0, 1.0, 2.0, 10.0]
    rows_ = [
        {"teacher": "oracle", "env": "E", "true_return_mean": r, "labels_used": 5} for r in returns
    ] + [{"teacher": "mistake", "env": "E", "true_return_mean": 1.0, "labels_used": 5}]
    rows_ = [{**row, "task": "E"} for row in rows_]
    groups = aggregate(rows_, ["teacher"], lows={"E": -2.0})
    oracle = groups[0]
    assert oracle["teacher"] == "oracle" and oracle["seeds"] == 4
    assert oracle["return_mean"] == pytest.approx(3.25)
    assert oracle["return_iqm"] == pytest.approx(1.5)  # the middle two of four: (1 + 2) / 2
    assert oracle["return_iqm_low"] <= 1.5 <= oracle["return_iqm_high"]
    # normalised by the random policy (-2) and the best group's mean (3.25)
    assert oracle["normalised_iqm"] == pytest.approx((1.5 + 2.0) / 5.25)
    assert groups[1]["normalised_iqm"] == pytest.approx(3.0 / 5.25)
    assert (oracle["random_return"], oracle["best_return"]) == (-2.0, 3.25)
    point, low, high = iqm_interval(np.array(returns))
    assert (point, low, high) == iqm_interval(np.array(returns))  # fixed bootstrap stream
    assert low >= 0.0 and high <= 10.0


#: True-reward PPO cut to one short rollout: the cells train in well under a second each.
QUICK = {
    "env": "Pendulum-v1",
    "algo": "ppo",
    "timesteps": 64,
    "n_envs": 1,
    "device": "cpu",
    "algo_kwargs": {"n_steps": 64, "batch_size": 64, "n_epochs": 1},
    "eval_every": 64,
}
GRAVITY = [
    {"env_kwargs": {"g": 2.0}, "label": "g2"},
    {"env_kwargs": {"g": 10.0}, "label": "g10"},
]


@pytest.fixture
def few_bootstrap_reps(monkeypatch):
    """50 bootstrap resamples: the intervals' width is not under test, and 2,000 take seconds."""
    monkeypatch.setattr(sweep_module, "BOOTSTRAP_REPS", 50)


def aggregate_rows(path) -> list[dict[str, str]]:
    with open(path / "aggregate.csv") as handle:
        return list(csv.DictReader(handle))


def test_each_env_kwargs_variant_is_normalised_by_its_own_random_policy_and_best_group(
    cli, tmp_path, few_bootstrap_reps
):
    data = {"base": QUICK, "grid": {"env_kwargs": GRAVITY, "seed": [0, 1]}}
    code, out, err = cli("sweep", "--config", write(tmp_path, data), "--out", tmp_path / "s")
    assert code == 0, err
    groups = aggregate_rows(tmp_path / "s")
    assert [g["env_kwargs"] for g in groups] == ["g2", "g10"]
    assert [g["task"] for g in groups] == [
        'Pendulum-v1 env_kwargs={"g": 2.0}',
        'Pendulum-v1 env_kwargs={"g": 10.0}',
    ]
    for group, variant in zip(groups, GRAVITY, strict=True):
        config = TrainConfig.from_dict({**QUICK, "env_kwargs": variant["env_kwargs"], "seed": 0})
        assert group["random_return"] == f"{train_module.random_return(config):.10g}"  # CSV's
        # one group per task: each is its own task's best, never scored against the other's
        assert float(group["best_return"]) == float(group["return_mean"])
        assert float(group["normalised_iqm"]) == pytest.approx(1.0)
    assert groups[0]["random_return"] != groups[1]["random_return"]
    for g in groups:  # the command says what each task's normalised figures are relative to
        low, high = float(g["random_return"]), float(g["best_return"])
        assert f"normalised on {g['task']}: random policy {low:.1f}, best group {high:.1f}" in out
    with open(tmp_path / "s" / "summary.csv") as handle:
        assert [r["task"] for r in csv.DictReader(handle)] == [
            g["task"] for g in groups for _ in "01"
        ]


def fake_cells(tmp_path, sweep: Sweep, returns: dict[str, float]):
    """Cell folders holding only a summary.json with the given true return per cell name."""
    from feedbackgym.studies.sweep import write_results

    for cell in sweep.cells():
        folder = tmp_path / "cells" / cell.name
        folder.mkdir(parents=True)
        summary = {"true_return_mean": returns[cell.name], "labels_used": 0}
        (folder / "summary.json").write_text(json.dumps(summary))
    write_results(sweep, tmp_path)
    return aggregate_rows(tmp_path)


def test_variants_crossed_with_learner_options_take_each_variants_floor_and_best(
    tmp_path, few_bootstrap_reps
):
    lr = [{"algo_kwargs": {**QUICK["algo_kwargs"], "learning_rate": x}, "label": x} for x in (1, 2)]
    data = {"base": QUICK, "grid": {"env_kwargs": GRAVITY, "algo_kwargs": lr, "seed": [0, 1]}}
    sweep = Sweep.from_dict(data)
    returns = {c.name: -100.0 * (i + 1) for i, c in enumerate(sweep.cells())}
    groups = fake_cells(tmp_path, sweep, returns)
    floors = {
        label: train_module.random_return(
            TrainConfig.from_dict({**QUICK, "env_kwargs": {"g": g}, "seed": 0})
        )
        for label, g in (("g2", 2.0), ("g10", 10.0))
    }
    # cell order: g2/lr1 (-100, -200), g2/lr2 (-300, -400), g10/lr1 (-500, -600), g10/lr2 ...
    best = {"g2": -150.0, "g10": -550.0}
    for g, mean in zip(groups, (-150.0, -350.0, -550.0, -750.0), strict=True):
        low, high = floors[g["env_kwargs"]], best[g["env_kwargs"]]
        assert g["random_return"] == f"{low:.10g}" and float(g["best_return"]) == high
        assert float(g["return_mean"]) == mean
        assert float(g["normalised_iqm"]) == pytest.approx((mean - low) / (high - low), rel=1e-8)


def test_a_sweep_of_learner_options_shares_one_random_policy_floor(
    tmp_path, few_bootstrap_reps, monkeypatch
):
    calls = []
    real = train_module.random_return
    monkeypatch.setattr(train_module, "random_return", lambda c: calls.append(c) or real(c))
    grid = {
        "algo": ["ppo", {"algo": "pref-ppo", "teacher": "oracle", "labels": 10, "n_envs": 2}],
        "timesteps": [64, 128],
        "seed": [0, 1],
    }
    sweep = Sweep.from_dict({"base": QUICK, "grid": grid})
    groups = fake_cells(tmp_path, sweep, {c.name: -500.0 - i for i, c in enumerate(sweep.cells())})
    assert len(calls) == 1 and calls[0].seed == 0
    assert {g["task"] for g in groups} == {"Pendulum-v1"}
    assert {g["random_return"] for g in groups} == {f"{real(calls[0]):.10g}"}
    assert [g["timesteps"] for g in groups] == ["64", "128", "64", "128"]  # the axis' labels
    assert {g["best_return"] for g in groups} == {"-500.5"}  # the best group's mean, shared


def test_an_env_axis_keeps_its_labels_so_two_entries_of_one_env_are_two_groups(
    tmp_path, few_bootstrap_reps, monkeypatch
):
    # the env id used to overwrite the axis' labels: "short" and "long" were pooled in one group
    monkeypatch.setattr(train_module, "random_return", lambda c: -1300.0)
    entries = [
        {**QUICK, "label": "short", "timesteps": 64},
        {**QUICK, "label": "long", "timesteps": 128},
    ]
    sweep = Sweep.from_dict({"base": QUICK, "grid": {"env": entries, "seed": [0, 1]}})
    returns = dict(
        zip([c.name for c in sweep.cells()], (-1200.0, -1100.0, -200.0, -180.0), strict=True)
    )
    groups = fake_cells(tmp_path, sweep, returns)
    assert [(g["env"], g["seeds"], float(g["return_mean"])) for g in groups] == [
        ("short", "2", -1150.0),
        ("long", "2", -190.0),
    ]
    assert {g["best_return"] for g in groups} == {"-190"}
    header = (tmp_path / "aggregate.csv").read_text().splitlines()[0].split(",")
    assert header.count("env") == 1


def test_the_task_is_the_env_its_kwargs_and_its_reward_delay_not_the_learner():
    base = task_of(QUICK)
    learner_options = {
        "algo": "sac",
        "teacher": "stochastic",
        "labels": 50,
        "timesteps": 10**6,
        "seed": 3,
        "n_envs": 4,
        "query": "entropy",
        "segment_length": 10,
        "algo_kwargs": {"ent_coef": 0.1},
        "learner_kwargs": {"schedule": "linear"},
        "teacher_kwargs": {"beta": 1.0},
        "device": "cuda",
        "eval_episodes": 30,
    }
    for key, value in learner_options.items():
        assert task_of({**QUICK, key: value}) == base, key
    variants = [
        {"env": "MountainCarContinuous-v0"},
        {"env_kwargs": {"g": 2.0}},
        {"reward_delay": "episode-end"},
        {"reward_delay": "lag:fixed:10"},
    ]
    names = {task_of({**QUICK, **v}) for v in variants}
    assert len(names) == len(variants) and base not in names
    assert task_of({}) == task_of({"env_kwargs": {}}) == TrainConfig().env


def write(tmp_path, data) -> str:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


BAD = [
    ({**TINY, "gird": {}}, "unknown key 'gird'"),
    ({**TINY, "grid": {}}, "grid must map each axis"),
    ({**TINY, "grid": {"teacher": []}}, "grid must map each axis"),
    ({**TINY, "grid": {"colour": [1]}}, "grid axis 'colour' is not a train option"),
    ({**TINY, "base": {**TINY["base"], "nope": 1}}, "base has unknown train option 'nope'"),
    ({**TINY, "grid": {"teacher": ["oracle", "nobody"]}}, "cell teacher=nobody: unknown"),
    ({**TINY, "grid": {"labels": [10, 0]}}, "cell labels=0: algo 'pref-ppo' learns"),
    ({**TINY, "grid": {"teacher": ["oracle", "oracle"]}}, "repeats a value"),
]


@pytest.mark.parametrize(("data", "message"), BAD)
def test_bad_sweeps_exit_2_with_one_line_and_leave_dir_untouched(cli, tmp_path, data, message):
    out = tmp_path / "out"
    code, _, err = cli("sweep", "--config", write(tmp_path, data), "--out", out)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert message in err
    assert not out.exists()


def test_an_unreachable_ray_and_a_dir_of_another_sweep_are_refused(cli, tmp_path):
    pytest.importorskip("ray")
    out = tmp_path / "out"
    code, _, err = cli(
        "sweep",
        "--config",
        write(tmp_path, TINY),
        "--out",
        out,
        "--backend",
        "ray",
        "--ray-address",
        "127.0.0.1:1",
    )
    assert code == 2 and "could not reach Ray at 127.0.0.1:1" in err and not out.exists()
    (out).mkdir()
    (out / "sweep.json").write_text('{"base": {}, "grid": {"seed": [0]}, "gpus_per_cell": 0.0}')
    code, _, err = cli("sweep", "--config", write(tmp_path, TINY), "--out", out)
    assert code == 2 and "holds a different sweep" in err
    assert [p.name for p in out.iterdir()] == ["sweep.json"]
