"""Regret studies: outputs, determinism, resume after interruption, parallel and Ray backends."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from feedbackgym.envs import BanditVectorEnv, register_bandit
from feedbackgym.errors import ConfigError
from feedbackgym.studies import RegretStudy, run_study, runner
from tests.conftest import EASY_MEANS

WALL_COLUMNS = ("wall_seconds", "steps_per_second")


def small_study(**overrides) -> RegretStudy:
    config = dict(
        env="feedbackgym/BernoulliBandit-v0",
        env_kwargs={"means": EASY_MEANS},
        agents=["ucb1", "thompson", "kl-ucb"],
        horizon=400,
        runs=30,
        seed=7,
        runs_per_cell=10,
    )
    config.update(overrides)
    return RegretStudy(**config)


def results(folder) -> tuple[list[dict], str]:
    """summary.csv rows without the wall-clock columns, and regret.csv's bytes."""
    with open(folder / "summary.csv") as handle:
        rows = [
            {k: v for k, v in row.items() if k not in WALL_COLUMNS}
            for row in csv.DictReader(handle)
        ]
    return rows, (folder / "regret.csv").read_text()


def test_a_study_writes_config_summary_curves_and_plot(tmp_path):
    rows = run_study(small_study(), tmp_path, progress=False, tensorboard=True)
    assert [r["agent"] for r in rows] == ["ucb1", "thompson", "kl-ucb"]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["horizon"] == 400 and config["metric"] == "regret"
    with open(tmp_path / "summary.csv") as handle:
        summary = list(csv.DictReader(handle))
    assert set(runner.SUMMARY_COLUMNS) <= set(summary[0])
    assert all(int(r["runs"]) == 30 and float(r["steps_per_second"]) > 0 for r in summary)
    with open(tmp_path / "regret.csv") as handle:
        curve = [r for r in csv.DictReader(handle) if r["agent"] == "ucb1"]
    steps = [int(r["t"]) for r in curve]
    assert steps[0] == 1 and steps[-1] == 400 and steps == sorted(set(steps))
    assert len(steps) <= 101 and steps[len(steps) // 2] < 400 / 5  # log-spaced
    means = [float(r["regret_mean"]) for r in curve]
    assert means == sorted(means)  # cumulative regret never decreases
    assert (tmp_path / "regret.png").read_bytes()[:4] == b"\x89PNG"
    assert list((tmp_path / "tensorboard" / "ucb1").glob("events.out.tfevents.*"))
    # KL-UCB and Thompson beat UCB1 on this instance, as the theory says.
    final = {r["agent"]: float(r["final_regret_mean"]) for r in summary}
    assert final["kl-ucb"] < final["ucb1"] and final["thompson"] < final["ucb1"]


def test_same_seed_gives_identical_csvs_and_another_seed_does_not(tmp_path):
    run_study(small_study(), tmp_path / "a", progress=False)
    run_study(small_study(), tmp_path / "b", progress=False)
    run_study(small_study(seed=8), tmp_path / "c", progress=False)
    assert results(tmp_path / "a") == results(tmp_path / "b")
    assert results(tmp_path / "a")[1] != results(tmp_path / "c")[1]


def test_an_agent_gets_the_same_numbers_whatever_else_is_in_the_study(tmp_path):
    run_study(small_study(agents=["thompson"]), tmp_path / "alone", progress=False)
    run_study(small_study(), tmp_path / "all", progress=False)
    alone = results(tmp_path / "alone")[1].splitlines()[1:]
    together = [
        line for line in results(tmp_path / "all")[1].splitlines() if line.startswith("thompson,")
    ]
    assert alone == together


def test_an_interrupted_study_resumes_without_recomputing_finished_cells(tmp_path, monkeypatch):
    run_study(small_study(), tmp_path / "reference", progress=False)

    real_run_cell = runner.run_cell
    calls = []

    def interrupted(cell, callback=None):
        calls.append(cell.name)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_run_cell(cell, callback)

    monkeypatch.setattr(runner, "run_cell", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_study(small_study(), tmp_path / "study", progress=False)
    saved = sorted(p.stem for p in (tmp_path / "study" / "cells").glob("*.npz"))
    assert saved == sorted(calls[:3])
    assert not list((tmp_path / "study" / "cells").glob(".*.tmp"))  # no half-written files

    calls.clear()
    monkeypatch.setattr(
        runner,
        "run_cell",
        lambda cell, callback=None: (calls.append(cell.name), real_run_cell(cell, callback))[1],
    )
    run_study(small_study(), tmp_path / "study", progress=False)
    assert len(calls) == 9 - 3 and not set(calls) & set(saved)
    assert results(tmp_path / "study") == results(tmp_path / "reference")


def test_resuming_with_a_different_horizon_is_refused_and_touches_nothing(tmp_path):
    run_study(small_study(), tmp_path, progress=False)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match="holds a study with horizon=400, not 500"):
        run_study(small_study(horizon=500), tmp_path, progress=False)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_worker_processes_give_the_same_csvs(tmp_path):
    study = dict(agents=["ucb1", "thompson"], runs=20)
    run_study(small_study(**study), tmp_path / "one", progress=False)
    run_study(small_study(**study), tmp_path / "two", progress=False, workers=2)
    assert results(tmp_path / "one") == results(tmp_path / "two")


def test_ray_backend_gives_the_same_csvs_as_local(tmp_path):
    pytest.importorskip("ray")
    study = dict(agents=["ucb1", "thompson"], runs=20)
    run_study(small_study(**study), tmp_path / "local", progress=False)
    run_study(small_study(**study), tmp_path / "ray", progress=False, backend="ray", workers=2)
    assert results(tmp_path / "local") == results(tmp_path / "ray")


def test_without_a_condorcet_winner_the_default_metric_is_the_one_learn_reports():
    study = small_study(
        env="feedbackgym/DuelingBandit-v0",
        env_kwargs={"family": "cyclic", "n_arms": 4, "matrix_seed": 1},
        agents=["ccb"],
        horizon=50,
        runs=2,
    )
    study.validate()
    assert study.metric == "copeland"


class FixedHorizonBandit(BanditVectorEnv):
    """A user env whose episodes last 50 steps; its constructor takes no horizon."""

    reward_family = "bernoulli"

    def __init__(self, num_envs: int = 1) -> None:
        super().__init__(num_envs, n_arms=2, horizon=50)

    def _mean_rewards(self):
        return np.tile([0.2, 0.8], (self.num_envs, 1))

    def _draw_rewards(self, means, actions):
        return (self.np_random.random(self.num_envs) < means[self._rows, actions]).astype(float)


def test_a_study_longer_than_the_env_horizon_is_refused_before_any_file(tmp_path):
    register_bandit("tests/FixedHorizonBandit-v0", FixedHorizonBandit)
    study = small_study(env="tests/FixedHorizonBandit-v0", env_kwargs={}, agents=["ucb1"])
    beyond = r"horizon=400 is beyond the env's fixed horizon \(50"
    with pytest.raises(ConfigError, match=beyond) as err:
        run_study(study, tmp_path / "study", progress=False)
    assert "\n" not in str(err.value) and not (tmp_path / "study").exists()
    rows = run_study(
        small_study(**{**study.config(), "horizon": 50}), tmp_path / "ok", progress=False
    )
    assert rows[0]["horizon"] == 50
