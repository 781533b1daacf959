"""Sweeps: a grid of training runs, the same on every backend, resumable, checked up front."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import yaml

from feedbackgym.studies import sweep as sweep_module
from feedbackgym.studies.sweep import Sweep, aggregate, iqm_interval, run_sweep

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
    groups = aggregate(rows_, ["teacher"], lows={"E": -2.0})
    oracle = groups[0]
    assert oracle["teacher"] == "oracle" and oracle["seeds"] == 4
    assert oracle["return_mean"] == pytest.approx(3.25)
    assert oracle["return_iqm"] == pytest.approx(1.5)  # the middle two of four: (1 + 2) / 2
    assert oracle["return_iqm_low"] <= 1.5 <= oracle["return_iqm_high"]
    # normalised by the random policy (-2) and the best group's mean (3.25)
    assert oracle["normalised_iqm"] == pytest.approx((1.5 + 2.0) / 5.25)
    assert groups[1]["normalised_iqm"] == pytest.approx(3.0 / 5.25)
    point, low, high = iqm_interval(np.array(returns))
    assert (point, low, high) == iqm_interval(np.array(returns))  # fixed bootstrap stream
    assert low >= 0.0 and high <= 10.0


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
