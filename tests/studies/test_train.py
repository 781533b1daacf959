"""Training runs: the run folder, determinism, resume, every teacher, a user's own env."""

from __future__ import annotations

import csv
import json
import math

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium import spaces

from feedbackgym.errors import ConfigError
from feedbackgym.feedback import RewardModel, read_log
from feedbackgym.studies import train as train_module
from feedbackgym.studies.train import TrainConfig, load_yaml, train
from tests.conftest import interrupt_at_evaluation

pytestmark = pytest.mark.usefixtures("restore_torch_threads")

PPO_KWARGS = {"n_steps": 64, "batch_size": 64, "n_epochs": 2}


def tiny(**overrides) -> TrainConfig:
    """pref-PPO on Pendulum with 30 oracle labels in 1024 steps (a second or two)."""
    options = {
        "env": "Pendulum-v1",
        "algo": "pref-ppo",
        "timesteps": 1024,
        "teacher": "oracle",
        "labels": 30,
        "segment_length": 10,
        "n_envs": 2,
        "device": "cpu",
        "algo_kwargs": PPO_KWARGS,
        "learner_kwargs": {"reward_epochs": 5},
        "eval_every": 512,
        "progress": False,
    }
    options.update(overrides)
    return TrainConfig.from_dict(options)


def answers(log_path) -> list[float]:
    """Every label (or ranking row) a run's feedback.jsonl holds, in order."""
    out: list = []
    for record in read_log(log_path):
        if record["type"] == "batch":
            out.extend(record["answer"])
    return out


def curve(folder) -> list[dict[str, str]]:
    with open(folder / "curve.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory):
    """A finished oracle run whose feedback.jsonl later runs replay or fit a teacher to."""
    folder = tmp_path_factory.mktemp("earlier") / "run"
    train(tiny(), folder)
    return folder


# ----- the run folder -----------------------------------------------------------------------
def test_a_run_writes_its_folder_and_counts_labels_exactly(earlier_run):
    names = {p.name for p in earlier_run.iterdir()}
    assert names >= {
        "config.yaml",
        "summary.json",
        "curve.csv",
        "curve.png",
        "tensorboard",
        "model.zip",
        "reward_model.pt",
        "feedback.jsonl",
        "checkpoints",
    }
    # config.yaml is a config that runs again (device resolved to what ran).
    assert TrainConfig.from_dict(load_yaml(earlier_run / "config.yaml")) == tiny()
    summary = json.loads(
        (earlier_run / "summary.json").read_text(), parse_constant=pytest.fail
    )  # no NaN in the JSON
    assert summary["timesteps"] == 1024 and summary["labels_used"] == 30
    assert summary["eval_episodes"] == 20 and summary["device"] == "cpu"
    assert summary["teacher"] == "oracle" and 0.5 < summary["reward_model_accuracy"] <= 1.0
    assert len(answers(earlier_run / "feedback.jsonl")) == 30
    rows = curve(earlier_run)
    assert [int(r["timesteps"]) for r in rows] == [512, 1024]
    assert int(rows[-1]["labels_used"]) == 30
    assert float(rows[-1]["true_return_mean"]) == pytest.approx(summary["true_return_mean"])
    assert RewardModel.load(earlier_run / "reward_model.pt", device="cpu").fitted
    assert list((earlier_run / "tensorboard").rglob("events.out.tfevents.*"))


def test_the_same_seed_gives_the_same_run_on_cpu(tmp_path, earlier_run):
    train(tiny(), tmp_path / "again")
    for name in ("curve.csv", "feedback.jsonl"):
        assert (tmp_path / "again" / name).read_bytes() == (earlier_run / name).read_bytes()
    train(tiny(seed=1), tmp_path / "other")
    assert (tmp_path / "other" / "feedback.jsonl").read_bytes() != (
        earlier_run / "feedback.jsonl"
    ).read_bytes()


def test_a_finished_run_is_read_back_not_recomputed(earlier_run, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was recomputed")

    monkeypatch.setattr(train_module, "make_learner", refuse)
    before = {p: p.stat().st_mtime_ns for p in earlier_run.rglob("*")}
    summary = train(tiny(progress=True, device="auto"), earlier_run)  # runtime keys may differ
    assert summary == json.loads((earlier_run / "summary.json").read_text())
    assert {p: p.stat().st_mtime_ns for p in earlier_run.rglob("*")} == before


def test_a_folder_holding_another_run_or_other_files_is_refused(earlier_run, tmp_path):
    before = {p: p.read_bytes() for p in earlier_run.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=r"holds a different run \(it differs in labels, seed\)"):
        train(tiny(seed=3, labels=20), earlier_run)
    assert {p: p.read_bytes() for p in earlier_run.rglob("*") if p.is_file()} == before
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="is not empty and holds no training run"):
        train(tiny(), tmp_path / "mine")
    with pytest.raises(ConfigError, match="is a file"):
        train(tiny(), tmp_path / "mine" / "notes.txt")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"


# ----- resume ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "algo": "pref-sac",
            "algo_kwargs": {"learning_starts": 100, "batch_size": 64},
            "learner_kwargs": {"reward_epochs": 5, "update_every": 200},
        },
        {"algo": "ppo", "teacher": None, "labels": 0},
    ],
    ids=["pref-ppo", "pref-sac", "ppo"],
)
def test_a_killed_run_keeps_its_checkpoints_and_resumes(tmp_path, monkeypatch, overrides):
    config = tiny(eval_every=256, checkpoint_every=256, **overrides)
    folder = tmp_path / "run"
    interrupt_at_evaluation(monkeypatch, call=3)  # at 768 steps, after checkpoints at 256, 512
    with pytest.raises(KeyboardInterrupt):
        train(config, folder)
    monkeypatch.undo()
    assert not (folder / "summary.json").exists()
    checkpoint = json.loads((folder / "checkpoints" / "latest.json").read_text())["folder"]
    saved = folder / "checkpoints" / checkpoint
    assert (saved / "learner.pkl").exists() and (saved / "model.zip").exists()
    if config.algo == "pref-sac":
        assert (saved / "replay_buffer.pkl").exists()
    run_state = json.loads((saved / "run_state.json").read_text())
    rows_before = curve(folder)[: len(run_state["curve"])]
    log_before = b""
    if config.labels:
        log_before = (folder / "feedback.jsonl").read_bytes()[: run_state["log_bytes"]]
        assert answers(folder / "feedback.jsonl")  # answers were on disk when it was killed

    summary = train(config, folder)  # the same call resumes
    assert summary["timesteps"] == 1024 and summary["labels_used"] == config.labels
    rows = curve(folder)
    assert rows[: len(rows_before)] == rows_before
    assert [int(r["timesteps"]) for r in rows] == [256, 512, 768, 1024]
    if config.labels:
        log = (folder / "feedback.jsonl").read_bytes()
        assert log.startswith(log_before)
        assert len(answers(folder / "feedback.jsonl")) == config.labels


# ----- every teacher plugs in -----------------------------------------------------------------
TEACHERS = [
    ("oracle", {}),
    ("stochastic", {"beta": 0.5}),
    ("mistake", {"mistake": 0.2}),
    ("skip", {"skip_threshold": -8.0}),
    ("equal", {"equal_threshold": 2.0}),
    ("myopic", {"gamma": 0.8}),
    ("bpref", {"beta": 1.0, "mistake": 0.1}),
    ("plackett-luce", {}),
    (
        "panel",
        {"members": [{"name": "oracle"}, {"name": "mistake", "mistake": 0.3}, {"name": "myopic"}]},
    ),
    ("budget", {"model": {"name": "oracle"}, "max_queries": 30}),
    ("budget", {"model": {"name": "plackett-luce"}, "max_queries": 10, "on_exhausted": "refuse"}),
    ("hindsight", {"teacher": {"name": "oracle"}}),
    ("replay", {"path": "EARLIER/feedback.jsonl"}),
    pytest.param(
        "learned",
        {"fit_log": "EARLIER/feedback.jsonl", "epochs": 20},
    ),
]


@pytest.mark.parametrize(("name", "kwargs"), TEACHERS)
def test_every_pairwise_or_ranking_teacher_plugs_into_pref_ppo(tmp_path, earlier_run, name, kwargs):
    kwargs = json.loads(json.dumps(kwargs).replace("EARLIER", str(earlier_run)))
    summary = train(tiny(teacher=name, teacher_kwargs=kwargs), tmp_path / "run")
    assert summary["teacher"] == name and summary["labels_used"] == 30
    assert summary["timesteps"] == 1024
    config = load_yaml(tmp_path / "run" / "config.yaml")
    assert (config["teacher"], config["teacher_kwargs"]) == (name, kwargs)
    if name == "replay":  # the same run against the recorded answers asks the same queries
        assert answers(tmp_path / "run" / "feedback.jsonl") == answers(
            earlier_run / "feedback.jsonl"
        )
        assert summary["true_return_mean"] == pytest.approx(
            json.loads((earlier_run / "summary.json").read_text())["true_return_mean"]
        )


def test_a_budget_teachers_answers_are_logged(tmp_path):
    kwargs = {"model": {"name": "oracle"}, "max_queries": 30}
    train(tiny(teacher="budget", teacher_kwargs=kwargs), tmp_path / "run")
    assert len(answers(tmp_path / "run" / "feedback.jsonl")) == 30


def test_a_panel_teachers_run_is_reproducible_from_its_seed(tmp_path):
    members = [{"name": "stochastic", "beta": 0.1}] * 3
    config = tiny(teacher="panel", teacher_kwargs={"members": members}, timesteps=512)
    train(config, tmp_path / "one")
    train(config, tmp_path / "two")
    assert answers(tmp_path / "one" / "feedback.jsonl") == answers(
        tmp_path / "two" / "feedback.jsonl"
    )


# ----- devices --------------------------------------------------------------------------------
def test_auto_device_runs_on_the_gpu_when_there_is_one(tmp_path):
    summary = train(tiny(device="auto", timesteps=512, labels=10), tmp_path / "run")
    assert summary["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    assert load_yaml(tmp_path / "run" / "config.yaml")["device"] == summary["device"]


# ----- learning -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides",
    [
        {"timesteps": 2048, "labels": 60},
        {
            "algo": "pref-sac",
            "labels": 40,
            "algo_kwargs": {"learning_starts": 100, "batch_size": 64},
            "learner_kwargs": {"reward_epochs": 10, "update_every": 200},
        },
    ],
    ids=["pref-ppo", "pref-sac"],
)
def test_the_learned_reward_tracks_the_true_reward_on_pendulum(tmp_path, overrides):
    config = tiny(**overrides)
    summary = train(config, tmp_path / "run")
    assert summary["labels_used"] == config.labels
    # Correlation of the learned and the true step reward on the evaluation's fresh steps
    # (0.75 to 0.97 over seeds at these budgets).
    assert summary["reward_correlation"] > 0.5


def test_a_run_too_short_for_any_feedback_is_refused_before_writing(tmp_path):
    with pytest.raises(ConfigError, match="ends before the first feedback round at timestep 400"):
        train(tiny(timesteps=256, segment_length=200), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_symmetry_the_env_cannot_have_is_refused_before_writing(tmp_path):
    config = tiny(learner_kwargs={"reward_model": {"symmetry": "planar"}})
    with pytest.raises(ConfigError, match="reads observations as .x, y. vectors, got 3 values"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


# ----- a user's own env -----------------------------------------------------------------------
class LineEnv(gymnasium.Env):
    """A walk on the integers 0..10 from near the middle; the goal is ``target``.

    Actions: 0 left, 1 stay, 2 right. Reward: minus the distance to the target after the move.
    """

    metadata = {"render_modes": []}  # noqa: RUF012

    def __init__(self, target: int = 8) -> None:
        self.target = target
        self.observation_space = spaces.Box(0.0, 10.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Discrete(3)
        self.x = 5

    def _obs(self) -> np.ndarray:
        return np.array([self.x], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = int(self.np_random.integers(3, 8))
        return self._obs(), {}

    def step(self, action):
        self.x = int(np.clip(self.x + int(action) - 1, 0, 10))
        distance = abs(self.x - self.target)
        return self._obs(), -float(distance), False, False, {"success": distance == 0}


LINE_ID = "feedbackgym_tests/Line-v0"
LINE_ARGS = [
    "--algo", "pref-ppo", "--teacher", "oracle", "--labels", "20", "--timesteps", "512",
    "--segment-length", "5", "--n-envs", "2", "--device", "cpu", "--no-progress",
]  # fmt: skip


def test_train_on_an_env_the_user_registered(cli, tmp_path):
    if LINE_ID not in gymnasium.registry:
        gymnasium.register(LINE_ID, entry_point=f"{__name__}:LineEnv", max_episode_steps=30)
    code, out, err = cli("train", "--env", LINE_ID, *LINE_ARGS, "--out", tmp_path / "run")
    assert code == 0, err
    assert str(tmp_path / "run" / "summary.json") in out
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["env"] == LINE_ID and summary["labels_used"] == 20
    assert 0.0 <= summary["success_rate"] <= 1.0  # the env's info["success"] is reported
    assert math.isfinite(summary["reward_correlation"])


def test_train_on_a_module_colon_id_env(cli, tmp_path, monkeypatch):
    (tmp_path / "my_line_envs.py").write_text(
        "import gymnasium\n"
        f"gymnasium.register('MyLine-v0', entry_point='{__name__}:LineEnv',\n"
        "                   max_episode_steps=30, kwargs={'target': 2})\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    env = "my_line_envs:MyLine-v0"
    code, _, err = cli("train", "--env", env, *LINE_ARGS, "--out", tmp_path / "run")
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["env"] == env
    code, _, err = cli(
        "train", "--env", "my_line_envs:Nope-v0", *LINE_ARGS, "--out", tmp_path / "x"
    )
    assert code == 2 and "unknown env 'my_line_envs:Nope-v0'" in err
