"""`feedbackgym train`: devices, YAML configs, resume after Ctrl-C, one-line bad-input errors."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from feedbackgym.errors import ConfigError
from feedbackgym.studies import train as train_module
from tests.conftest import with_flags
from tests.test_cli import user_env_module

pytestmark = pytest.mark.usefixtures("restore_torch_threads")

#: A tiny run's options that have no flag (SB3 and learner settings).
TINY_YAML = {
    "algo_kwargs": {"n_steps": 64, "batch_size": 64, "n_epochs": 2},
    "learner_kwargs": {"reward_epochs": 5},
    "eval_every": 256,
    "checkpoint_every": 256,
}

GOOD = [
    "train",
    "--env", "Pendulum-v1",
    "--algo", "pref-ppo",
    "--teacher", "oracle",
    "--labels", "20",
    "--timesteps", "1024",
    "--segment-length", "10",
    "--n-envs", "2",
    "--device", "cpu",
    "--no-progress",
]  # fmt: skip


@pytest.fixture
def tiny_yaml(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_YAML))
    return str(path)


def summary_of(folder) -> dict:
    return json.loads((folder / "summary.json").read_text())


# ----- runs that work -------------------------------------------------------------------------
@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_train_runs_on_cpu_and_on_auto(cli, tmp_path, tiny_yaml, device):
    out = tmp_path / "run"
    code, stdout, err = cli(*with_flags(GOOD, device=device, timesteps="512"), "--config",
                            tiny_yaml, "--out", out)  # fmt: skip
    assert code == 0, err
    assert str(out / "summary.json") in stdout and str(out / "curve.png") in stdout
    expected = "cpu" if device == "cpu" or not torch.cuda.is_available() else "cuda"
    assert summary_of(out)["device"] == expected
    assert summary_of(out)["labels_used"] == 20


def test_flags_override_the_yaml_config(cli, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump({**TINY_YAML, "env": "Pendulum-v1", "labels": 10, "seed": 3, "n_envs": 2})
    )
    code, _, err = cli("train", "--config", config, "--labels", "15", "--timesteps", "512",
                       "--segment-length", "10", "--device", "cpu", "--no-progress",
                       "--out", tmp_path / "run")  # fmt: skip
    assert code == 0, err
    summary = summary_of(tmp_path / "run")
    assert (summary["labels_used"], summary["seed"], summary["algo"]) == (15, 3, "pref-ppo")


def test_a_killed_run_is_resumed_by_the_same_command(cli, tmp_path, tiny_yaml, monkeypatch):
    out = tmp_path / "run"
    args = [*GOOD, "--config", tiny_yaml, "--out", out]
    real = train_module.Evaluator.__call__
    calls = []

    def ctrl_c_at_the_third_evaluation(self, learner):
        calls.append(learner.num_timesteps)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, learner)

    monkeypatch.setattr(train_module.Evaluator, "__call__", ctrl_c_at_the_third_evaluation)
    code, _, err = cli(*args)
    assert code == 130 and "checkpoints are saved, re-run to resume" in err
    assert len(err.strip().splitlines()) == 1
    assert (out / "checkpoints" / "latest.json").exists() and (out / "feedback.jsonl").exists()
    assert not (out / "summary.json").exists()

    monkeypatch.undo()
    code, stdout, err = cli(*args)
    assert code == 0, err
    summary = summary_of(out)
    assert summary["timesteps"] == 1024 and summary["labels_used"] == 20
    assert "training run" in stdout

    # Once finished, the same command prints the summary again and computes nothing.
    before = (out / "summary.json").read_bytes()
    monkeypatch.setattr(train_module, "make_learner", pytest.fail)
    code, stdout, _ = cli(*args)
    assert code == 0 and "training run" in stdout
    assert (out / "summary.json").read_bytes() == before


# ----- bad input ----------------------------------------------------------------------------
BAD = [  # flags to change, what the one-line error must say
    ({"env": "feedbackgym/Nope-v0"}, "unknown env 'feedbackgym/Nope-v0'"),
    ({"env": "no_such_module:Foo-v0"}, "module 'no_such_module' cannot be imported"),
    ({"algo": "pref-dqn"}, "unknown algo 'pref-dqn'"),
    (
        {"algo": "ppo2"},
        "valid: cpl, lang-goal, ppo, pref-goal, pref-ppo, pref-sac, rrd-ppo, rrd-sac, sac",
    ),
    ({"teacher": "oracel"}, "unknown feedback model 'oracel' (did you mean 'oracle'?); valid:"),
    ({"query": "random"}, "query must be one of 'uniform', 'disagreement', 'entropy'"),
    ({"teacher": "tamer"}, "was given a score teacher; valid teachers: "),
    ({"teacher": "language"}, "was given a correction teacher; valid teachers:"),
    ({"algo": "ppo"}, "algo 'ppo' trains on the true reward and takes no teacher or labels"),
    ({"algo": "sac", "teacher": None}, "algo 'sac' trains on the true reward"),
    ({"labels": None}, "labels must be a positive integer, got 0"),
    ({"labels": "-3"}, "labels must be a positive integer, got -3"),
    ({"labels": "ten"}, "argument --labels: invalid int value: 'ten'"),
    (
        {"algo": "sac", "env": "CartPole-v1", "teacher": None, "labels": None},
        "algo 'sac' needs a continuous (Box) action space, got Discrete(2)",
    ),
    (
        {"algo": "pref-sac", "env": "CartPole-v1"},
        "algo 'pref-sac' needs a continuous (Box) action space",
    ),
    (
        {"teacher": "budget", "teacher_kwargs": '{"model": {"name": "oracle"}, "max_queries": 5}'},
        "teacher budget max_queries=5 is smaller than labels=20",
    ),
    ({"teacher_kwargs": '{"nope": 1}'}, "feedback model 'oracle' has no parameter 'nope'"),
    ({"teacher_kwargs": '{"beta": -1}'}, "beta must be in [0, inf], got -1"),
    ({"teacher_kwargs": "[1]"}, "--teacher-kwargs must be a JSON object"),
    ({"env_kwargs": '{"nope": 1}'}, "env 'Pendulum-v1' rejects env_kwargs"),
    ({"device": "tpu"}, "device must be auto, cpu or cuda, got 'tpu'"),
    ({"timesteps": "0"}, "timesteps must be a positive integer, got 0"),
    ({"timesteps": None}, "--timesteps is required"),
    ({"n_envs": "0"}, "n_envs must be a positive integer, got 0"),
    ({"segment_length": "0"}, "segment_length must be a positive integer, got 0"),
    ({"segment_length": "600"}, "timesteps=1024 ends before the first feedback round"),
]


@pytest.mark.parametrize(("flags", "message"), BAD)
def test_bad_input_exits_2_with_one_line_before_writing(cli, tmp_path, flags, message):
    out = tmp_path / "run"
    code, _, err = cli(*with_flags(GOOD, **flags), "--out", out)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert message in err
    assert not out.exists()


def test_a_teacher_of_the_wrong_kind_is_told_which_teachers_fit(cli, tmp_path):
    _, _, err = cli(*with_flags(GOOD, teacher="tamer"), "--out", tmp_path / "run")
    valid = err.strip().split("valid teachers: ")[1].split(", ")
    assert {"oracle", "stochastic", "plackett-luce", "panel", "learned"} <= set(valid)
    assert not {"tamer", "coach", "language"} & set(valid)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_bad_device(cli, tmp_path):
    code, _, err = cli(*with_flags(GOOD, device="cuda"), "--out", tmp_path / "run")
    assert code == 2 and "torch sees no CUDA GPU; use auto or cpu" in err
    assert not (tmp_path / "run").exists()


BAD_YAML = [  # file text (None: no file), what the error must say
    (None, "cannot be read: No such file or directory"),
    ("env: [Pendulum-v1\nalgo: ppo\n", "is not valid YAML at line"),
    ("lables: 20\n", "has unknown key 'lables'; valid: env, algo, timesteps, teacher, labels"),
    ("- env\n- algo\n", "must be a mapping of train options"),
    ("timesteps: many\n", "timesteps must be an integer, got 'many'"),
    ("algo_kwargs: 3\n", "algo_kwargs must be a mapping, got 3"),
    ("algo_kwargs: {n_stepz: 64}\n", "unexpected keyword argument 'n_stepz'"),
]


@pytest.mark.parametrize(("text", "message"), BAD_YAML)
def test_a_bad_yaml_config_exits_2_with_one_line(cli, tmp_path, text, message):
    config = tmp_path / "train.yaml"
    if text is not None:
        config.write_text(text)
    code, _, err = cli(*GOOD, "--config", config, "--out", tmp_path / "run")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert message in err
    assert not (tmp_path / "run").exists()


def test_bad_input_leaves_an_earlier_run_untouched(cli, tmp_path, tiny_yaml):
    out = tmp_path / "run"
    args = with_flags(GOOD, timesteps="512")
    assert cli(*args, "--config", tiny_yaml, "--out", out)[0] == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for bad in (
        with_flags(args, teacher="oracel"),
        with_flags(args, labels="30"),
        with_flags(args, device="tpu"),
        [*args, "--config", tmp_path / "missing.yaml"],
    ):
        code, _, err = cli(*bad, "--out", out)
        assert code == 2 and len(err.strip().splitlines()) == 1
    assert (
        "holds a different run (it differs in labels)"
        in cli(*with_flags(args, labels="30"), "--config", tiny_yaml, "--out", out)[2]
    )
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_out_pointing_at_a_file_is_refused(cli, tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    code, _, err = cli(*GOOD, "--out", target)
    assert code == 2 and "is a file" in err and target.read_text() == "mine"


# ----- a user's env by module:ID (train and sweep) ------------------------------------------
@pytest.fixture
def user_envs(tmp_path, monkeypatch):
    """(module name, namespace) of a user's module that registers envs (tests/test_cli.py)."""
    yield from user_env_module(tmp_path, monkeypatch)


QUICK_YAML = {  # true-reward PPO cut to one short rollout
    "algo_kwargs": {"n_steps": 64, "batch_size": 64, "n_epochs": 1},
    "eval_every": 64,
}


def test_train_and_sweep_run_a_users_env_named_module_colon_id(cli, tmp_path, user_envs,
                                                               monkeypatch):  # fmt: skip
    from feedbackgym.studies import sweep as sweep_module

    monkeypatch.setattr(sweep_module, "BOOTSTRAP_REPS", 50)  # the intervals are not under test
    module, ns = user_envs
    env = f"{module}:{ns}/Reach-v0"
    config = tmp_path / "quick.yaml"
    config.write_text(yaml.safe_dump(QUICK_YAML))
    code, _, err = cli("train", "--env", env, "--algo", "ppo", "--timesteps", "64", "--n-envs",
                       "1", "--device", "cpu", "--no-progress", "--config", config,
                       "--out", tmp_path / "run")  # fmt: skip
    assert code == 0, err
    assert summary_of(tmp_path / "run")["env"] == env
    sweep = tmp_path / "sweep.yaml"
    base = {**QUICK_YAML, "env": env, "algo": "ppo", "timesteps": 64, "n_envs": 1, "device": "cpu"}
    sweep.write_text(yaml.safe_dump({"base": base, "grid": {"seed": [0, 1]}}))
    code, _, err = cli("sweep", "--config", sweep, "--no-progress",
                       "--out", tmp_path / "sweep")  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "sweep" / "cells" / "seed=1" / "summary.json").exists()
    # an id the module does not register: one line naming what it does register
    sweep.write_text(yaml.safe_dump({"base": {**base, "env": f"{module}:{ns}/Nope-v0"},
                                     "grid": {"seed": [0]}}))  # fmt: skip
    for args in (
        ["train", "--env", f"{module}:{ns}/Nope-v0", "--algo", "ppo", "--timesteps", "64"],
        ["sweep", "--config", sweep],
    ):
        code, _, err = cli(*args, "--out", tmp_path / "bad")
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"(importing '{module}' registered {ns}/Arms-v0, {ns}/Grid-v0" in err
        assert not (tmp_path / "bad").exists()


def test_the_regret_teachers_env_may_be_a_users_env_id(user_envs):
    from feedbackgym.studies.train import TrainConfig, check

    module, ns = user_envs
    grid = {"env": "feedbackgym/GridWorld-v0", "algo": "pref-ppo", "labels": 20,
            "timesteps": 1024, "n_envs": 1, "device": "cpu", "teacher": "regret"}  # fmt: skip
    check(TrainConfig(**grid, teacher_kwargs={"env": f"{module}:{ns}/Grid-v0"}))
    with pytest.raises(ConfigError, match=r"q_values table has shape \(2, 2\), this env has"):
        check(TrainConfig(**grid, teacher_kwargs={"q_values": [[0.0, 1.0], [1.0, 0.0]]}))


# ----- wrapping teachers by name, every wrong form one line -----------------------------------
WRAPPING = [  # --teacher, --teacher-kwargs, what the one-line error must say
    ("budget", '{"max_queries": 3}',
     'needs model, e.g. {"model": {"name": "oracle"}, "max_queries": 100}'),
    ("budget", '{"model": "oracel", "max_queries": 30}',
     "budget's model: unknown feedback model 'oracel' (did you mean 'oracle'?)"),
    ("budget", '{"model": {"name": "myopic", "gamma": 3}, "max_queries": 30}',
     "budget's model: gamma must be in (0, 1], got 3"),
    ("budget", '{"model": {"name": "oracle", "betta": 1}, "max_queries": 30}',
     "budget's model: feedback model 'oracle' has no parameter 'betta'"),
    ("budget", '{"model": {"mistake": 0.1}, "max_queries": 30}',
     "budget's model must be a feedback model's name (\"oracle\") or its config"),
    ("budget", '{"model": "oracle", "max_queries": "30"}', "max_queries must be a positive"),
    ("budget", '{"model": "tamer", "max_queries": 30}', "was given a score teacher"),
    ("panel", "{}", 'needs members, e.g. {"members": ["oracle", '),
    ("panel", '{"members": "oracle"}', "panel members must be a non-empty list"),
    ("panel", '{"members": ["oracle", "nobody"]}', "panel member 1: unknown feedback model"),
    ("panel", '{"members": ["oracle", {"name": "stochastic", "beta": -1}]}',
     "panel member 1: beta must be in [0, inf], got -1"),
    ("panel", '{"members": ["oracle", "coach"]}', "panel member 1: the coach teacher needs"),
    ("hindsight", '{"teacher": ["oracle"]}', "hindsight's teacher must be a feedback model's"),
    ("hindsight", '{"teacher": {"name": "mistake", "mistake": 5}}',
     "hindsight's teacher: mistake must be in [0, 1], got 5"),
]  # fmt: skip


@pytest.mark.parametrize(("teacher", "kwargs", "message"), WRAPPING)
def test_every_wrong_form_of_a_wrapping_teacher_exits_2_in_one_line(cli, tmp_path, teacher,
                                                                    kwargs, message):  # fmt: skip
    out = tmp_path / "run"
    code, _, err = cli(*with_flags(GOOD, teacher=teacher, teacher_kwargs=kwargs), "--out", out)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert message in err
    assert not out.exists()


def test_a_wrapping_teacher_by_name_trains(cli, tmp_path, tiny_yaml):
    kwargs = '{"model": {"name": "mistake", "mistake": 0.1}, "max_queries": 20}'
    code, _, err = cli(*with_flags(GOOD, teacher="budget", teacher_kwargs=kwargs,
                                   timesteps="256"), "--config", tiny_yaml,
                       "--out", tmp_path / "run")  # fmt: skip
    assert code == 0, err
    assert summary_of(tmp_path / "run")["labels_used"] == 20


# ----- every teacher fully checked before the run folder is written ---------------------------
#: For every registered teacher: options it refuses (a bad or missing required one), and what
#: the one-line error must say.
BAD_TEACHER_OPTIONS = {
    "bpref": ('{"mistake": 2}', "mistake must be in [0, 1], got 2"),
    "budget": ('{"max_queries": 3}', "feedback model 'budget' needs model"),
    "coach": ("{}", "the coach teacher needs one of env, q_values or advantage_fn"),
    "equal": ('{"equal_threshold": -1}', "equal_threshold must be in [0, inf), got -1"),
    "hindsight": ('{"teacher": "nope"}', "hindsight's teacher: unknown feedback model 'nope'"),
    "human": ("{}", "the human teacher needs env"),
    "language": ('{"kinds": ["zz"]}', "kinds must be one of"),
    "learned": ("{}", "the learned teacher is not fitted: give fit_log, the feedback log"),
    "mistake": ('{"mistake": -0.1}', "mistake must be in [0, 1], got -0.1"),
    "myopic": ('{"gamma": 0}', "gamma must be in (0, 1], got 0"),
    "oracle": ('{"beta": -1}', "beta must be in [0, inf], got -1"),
    "panel": ("{}", "feedback model 'panel' needs members"),
    "per-agent": ('{"beta": -1}', "beta must be in [0, inf], got -1"),
    "plackett-luce": ('{"beta": -1}', "beta must be in [0, inf], got -1"),
    "regret": ("{}", "the regret teacher needs one of env, q_values or advantage_fn"),
    "replay": ("{}", "feedback model 'replay' needs path, e.g. {\"path\": "),
    "skip": ('{"skip_threshold": "high"}', "skip_threshold must be a number, got 'high'"),
    "stochastic": ('{"beta": -1}', "beta must be in [0, inf], got -1"),
    "tamer": ('{"source": "advantage"}', 'source="advantage" needs one of env, q_values'),
    "team": ('{"beta": -1}', "beta must be in [0, inf], got -1"),
}


def test_the_bad_teacher_options_cover_every_registered_teacher():
    from feedbackgym.feedback import FEEDBACK_MODELS

    # teachers feedbackgym ships (tests in the same process may register their own)
    shipped = [
        n
        for n in FEEDBACK_MODELS.names()
        if FEEDBACK_MODELS.get(n).__module__.startswith("feedbackgym.")
    ]
    assert sorted(BAD_TEACHER_OPTIONS) == shipped


@pytest.mark.parametrize("teacher", sorted(BAD_TEACHER_OPTIONS))
def test_every_teacher_is_checked_before_the_run_folder_is_written(cli, tmp_path, teacher):
    kwargs, message = BAD_TEACHER_OPTIONS[teacher]
    out = tmp_path / "run"
    args = with_flags(GOOD, teacher=teacher, teacher_kwargs=kwargs)
    for _ in ("absent", "empty"):
        code, _, err = cli(*args, "--out", out)
        assert code == 2
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert message in err
        if out.exists():  # the second time: an empty folder given, left empty
            assert list(out.iterdir()) == []
        else:
            out.mkdir()


def test_a_learned_or_replay_teacher_of_another_envs_log_is_refused_before_writing(cli, tmp_path):
    from tests.feedback.test_log_replay_learned import continuous_log

    log = continuous_log(tmp_path / "other.jsonl", obs_dim=5)  # Pendulum's observations: 3
    out = tmp_path / "run"
    out.mkdir()  # given, empty: left empty
    for teacher, kwargs, message in [
        ("learned", {"fit_log": str(log), "epochs": 2}, "fitted to steps unlike this env's"),
        ("replay", {"path": str(log)}, r"holds steps whose obs have shape (5,), this env's"),
        ("panel", {"members": ["oracle", {"name": "replay", "path": str(log)}]}, "shape (5,)"),
    ]:
        code, _, err = cli(*with_flags(GOOD, teacher=teacher, teacher_kwargs=json.dumps(kwargs)),
                           "--out", out)  # fmt: skip
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert message in err
        assert list(out.iterdir()) == []
