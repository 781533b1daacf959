"""`feedbackgym label` and `feedbackgym calibrate`, and `train --teacher human` end to end."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests
import yaml

from feedbackgym.feedback import FeedbackLog, LabelQueue, Segments, make_feedback_model
from feedbackgym.feedback.human.calibration import load_learned
from tests.feedback.test_human import read_only_label_folder
from tests.test_cli_train import GOOD, TINY_YAML

pytestmark = pytest.mark.usefixtures("restore_torch_threads")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ----- feedbackgym label ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "flags, message",
    [
        (["--port", "70000"], "--port must be in 1..65535"),
        (["--lease", "0"], "--lease must be > 0"),
        (["--annotator", "../x"], "annotator name '../x'"),
    ],
)
def test_label_bad_input_is_one_line_and_exit_2(cli, tmp_path, flags, message):
    code, out, err = cli("label", "--out", tmp_path / "labels", *flags)
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err


def test_label_refuses_an_empty_host_before_writing_anything(cli, tmp_path):
    code, out, err = cli("label", "--out", tmp_path / "labels", "--host", "")
    assert code == 2 and err.count("\n") == 1
    assert "host '' would listen on every interface" in err and "127.0.0.1" in err
    assert not (tmp_path / "labels").exists() and "token" not in out


def test_label_on_a_read_only_folder_is_one_line_and_exit_2(cli, tmp_path, monkeypatch):
    with read_only_label_folder(tmp_path / "labels", monkeypatch) as folder:
        code, out, err = cli("label", "--out", folder, "--annotator", "alice")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert f"label folder '{folder}' cannot be written" in err and "token=" not in out


def test_label_serves_links_until_interrupted(tmp_path):
    port = free_port()
    folder = tmp_path / "labels"
    process = subprocess.Popen(
        [sys.executable, "-m", "feedbackgym.cli", "label", "--out", str(folder), "--port",
         str(port), "--annotator", "alice", "--annotator", "bob"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        links = {}
        while len(links) < 2:
            line = process.stdout.readline()
            assert line, process.stderr.read()
            match = re.match(r"(\w+)\s+(http://\S+)", line)
            if match:
                links[match.group(1)] = match.group(2)
        deadline = time.monotonic() + 20
        while True:
            try:
                page = requests.get(links["bob"], timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert page.status_code == 200
        assert requests.get(links["bob"].split("?")[0], timeout=5).status_code == 403
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
    assert process.returncode == 0
    # A restart prints no token again (only hashes are kept) and says how to get a new one.
    assert LabelQueue(folder).annotators() == ["alice", "bob"]
    token = links["alice"].split("token=")[1]
    assert token not in (folder / "annotators.json").read_text()


# ----- feedbackgym calibrate ------------------------------------------------------------------
def write_log(path, teacher: str, batches: int = 4, **kwargs) -> None:
    rng = np.random.default_rng(0)
    log = FeedbackLog(path)
    model = make_feedback_model(teacher, rng=1, **kwargs).attach_log(log)
    for _ in range(batches):
        obs_a, obs_b = rng.normal(size=(2, 50, 8, 3))
        model.prefer(Segments(obs_a[..., 0], obs_a), Segments(obs_b[..., 0], obs_b))
    log.close()


def test_calibrate_recovers_a_simulated_teachers_parameter(cli, tmp_path):
    write_log(tmp_path / "feedback.jsonl", "stochastic", batches=8, beta=2.0)
    code, out, err = cli("calibrate", "--log", tmp_path / "feedback.jsonl", "--epochs", "30")
    assert code == 0, err
    for name in ("oracle", "stochastic", "mistake", "myopic", "regret", "learned"):
        assert name in out
    beta = float(re.search(r"stochastic\s+│\s+beta=([\d.]+)", out).group(1))
    assert 1.3 < beta < 3.0
    assert "regret: n/a" in out
    saved = tmp_path / "learned_teacher.pt"
    assert f"learned teacher {saved}" in out
    learned = load_learned(saved, device="cpu")
    labels = learned.prefer(Segments(np.ones((3, 8))), Segments(np.zeros((3, 8))))
    assert labels.shape == (3,)


def test_calibrate_fits_the_mistake_rate(tmp_path):
    from feedbackgym.feedback.human.calibration import calibrate

    write_log(tmp_path / "log.jsonl", "mistake", batches=20, mistake=0.2)
    fits, _ = calibrate(tmp_path / "log.jsonl", learned_kwargs={"epochs": 5})
    by_name = {fit.teacher: fit for fit in fits}
    assert abs(by_name["mistake"].params["mistake"] - 0.2) < 0.05
    assert by_name["oracle"].log_likelihood == -np.inf
    assert by_name["mistake"].log_likelihood > by_name["stochastic"].log_likelihood


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "cannot be read"),
        (lambda p: p.write_text('{"type": "model"}\n'), "holds no preference answers"),
    ],
)
def test_calibrate_bad_logs_are_one_line_and_exit_2(cli, tmp_path, make, message):
    path = tmp_path / "feedback.jsonl"
    make(path)
    code, _, err = cli("calibrate", "--log", path)
    assert code == 2 and message in err and err.count("\n") == 1


def test_calibrate_only_skipped_answers(cli, tmp_path):
    write_log(tmp_path / "feedback.jsonl", "skip", batches=1, skip_threshold=1e9)
    code, _, err = cli("calibrate", "--log", tmp_path / "feedback.jsonl")
    assert code == 2 and "only skipped preferences" in err


# ----- feedbackgym train --teacher human --------------------------------------------------------
def test_train_with_a_bad_human_teacher_env_exits_2(cli, tmp_path):
    kwargs = json.dumps({"dir": str(tmp_path / "labels"), "env": "CartPole-v1"})
    code, _, err = cli(*GOOD, "--teacher", "human", "--teacher-kwargs", kwargs,
                       "--out", tmp_path / "run")  # fmt: skip
    assert code == 2 and "cannot render env 'CartPole-v1'" in err


def test_train_with_a_human_teacher_of_another_env_exits_2_before_writing(cli, tmp_path):
    """The teacher renders clips of its own env: a run on an env with other spaces would show
    people the wrong scenes (or crash at the first query), so it is refused up front."""
    kwargs = {"env": "Pendulum-v1", "dir": str(tmp_path / "labels"), "timeout": 0.5,
              "remind_every": None}  # fmt: skip
    args = [a if a != "Pendulum-v1" else "MountainCarContinuous-v0" for a in GOOD]
    code, _, err = cli(*args, "--teacher", "human", "--teacher-kwargs", json.dumps(kwargs),
                       "--out", tmp_path / "run")  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "'Pendulum-v1'" in err and "(3,)" in err and "(2,)" in err  # both envs' spaces
    assert not (tmp_path / "run").exists() and not (tmp_path / "labels").exists()


def test_train_learns_from_people_answering_in_another_thread(cli, tmp_path):
    """`train --teacher human` and a person (here a thread preferring the higher pendulum)
    share only the label folder; the log they leave is what `calibrate` reads."""
    labels_dir = tmp_path / "labels"
    queue = LabelQueue(labels_dir)
    done = threading.Event()

    def person() -> None:
        while not done.is_set():
            for qid in queue.open_queries():
                queue.answer(qid, "a" if int(qid, 16) % 2 else "b", "dana")
            time.sleep(0.01)

    helper = threading.Thread(target=person, daemon=True)
    helper.start()
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY_YAML))
    kwargs = {"dir": str(labels_dir), "env": "Pendulum-v1", "poll_interval": 0.01, "clip_size": 48}
    try:
        code, _, err = cli(*GOOD, "--labels", "6", "--timesteps", "512", "--teacher", "human",
                           "--teacher-kwargs", json.dumps(kwargs), "--config", config,
                           "--out", tmp_path / "run")  # fmt: skip
    finally:
        done.set()
        helper.join()
    assert code == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["teacher"] == "human" and summary["labels_used"] == 6
    answers = [json.loads(p.read_text()) for p in (labels_dir / "answers").glob("*.json")]
    assert len(answers) == 6 and {a["annotator"] for a in answers} == {"dana"}
    code, out, err = cli("calibrate", "--log", labels_dir / "feedback.jsonl", "--epochs", "5")
    assert code == 0 and "6 labels" not in err and (labels_dir / "learned_teacher.pt").exists()


def test_train_with_a_read_only_label_folder_exits_2_before_writing(cli, tmp_path, monkeypatch):
    with read_only_label_folder(tmp_path / "labels", monkeypatch) as folder:
        kwargs = json.dumps({"dir": str(folder), "env": "Pendulum-v1"})
        code, _, err = cli(*GOOD, "--teacher", "human", "--teacher-kwargs", kwargs,
                           "--out", tmp_path / "run")  # fmt: skip
    assert code == 2 and err.count("\n") == 1 and "cannot be written" in err
    assert not (tmp_path / "run").exists()


def test_a_run_refused_for_another_option_leaves_no_label_folder(cli, tmp_path):
    kwargs = json.dumps({"dir": str(tmp_path / "labels"), "env": "Pendulum-v1"})
    code, _, err = cli(*GOOD, "--teacher", "human", "--teacher-kwargs", kwargs,
                       "--query", "nonsense", "--out", tmp_path / "run")  # fmt: skip
    assert code == 2 and "nonsense" in err
    assert not (tmp_path / "labels").exists() and not (tmp_path / "run").exists()


def test_calibrate_fits_the_regret_teacher_where_the_env_has_optimal_values(tmp_path):
    import gymnasium as gym

    from feedbackgym.feedback.human.calibration import calibrate

    env = gym.make("feedbackgym/GridWorld-v0")
    n_states, n_actions = env.unwrapped.optimal_values()[1].shape
    log = FeedbackLog(tmp_path / "log.jsonl")
    teacher = make_feedback_model("regret", env=env, beta=1.0, rng=0).attach_log(log)
    rng = np.random.default_rng(0)
    for _ in range(10):
        obs = rng.integers(0, n_states, (2, 50, 6))
        actions = rng.integers(0, n_actions, (2, 50, 6))
        rewards = rng.normal(size=(2, 50, 6))  # unrelated to the advantages
        teacher.prefer(*(Segments(rewards[k], obs[k], actions[k]) for k in range(2)))
    log.close()
    fits, _ = calibrate(
        tmp_path / "log.jsonl", env="feedbackgym/GridWorld-v0", learned_kwargs={"epochs": 5}
    )
    by_name = {fit.teacher: fit for fit in fits}
    assert 0.7 < by_name["regret"].params["beta"] < 1.5
    assert by_name["regret"].log_likelihood > by_name["stochastic"].log_likelihood
