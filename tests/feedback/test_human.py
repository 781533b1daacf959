"""The human teacher and its label queue: clips, blocking answers, timeouts, restarts, logs."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image

from feedbackgym.errors import ConfigError
from feedbackgym.feedback import (
    HumanTeacher,
    LabelQueue,
    ReplayTeacher,
    Segments,
    make_feedback_model,
)
from feedbackgym.feedback.human.teacher import STATE_SETTERS, query_id


def pendulum_segments(n: int, length: int, seed: int) -> tuple[Segments, np.ndarray]:
    """``n`` real Pendulum-v1 segments (obs, actions, rewards) and their rendered frames."""
    env = gym.make("Pendulum-v1", render_mode="rgb_array")
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    all_obs, actions, rewards, frames = [], [], [], []
    for _ in range(n * length):
        action = rng.uniform(-2, 2, size=1).astype(np.float32)
        all_obs.append(obs)
        actions.append(action)
        env.unwrapped.last_u = float(action[0])  # what step() sets before the next render
        frames.append(env.render())
        obs, reward, *_ = env.step(action)
        rewards.append(reward)
    env.close()
    shape = (n, length)
    return (
        Segments(
            np.reshape(rewards, shape),
            np.reshape(all_obs, (*shape, 3)),
            np.reshape(actions, (*shape, 1)),
        ),
        np.reshape(frames, (*shape, *frames[0].shape)),
    )


@contextlib.contextmanager
def read_only_label_folder(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A label folder (subfolders and one query, as a previous run leaves it) this process
    cannot write: by permissions for a normal user; root ignores those, so for root a
    read-only tmpfs is mounted there, and only without the right to mount is ``os.access``
    made to say so."""
    folder.mkdir(parents=True)

    def fill() -> None:
        LabelQueue(folder).publish("0" * 24, b"GIF89a", b"GIF89a", {})

    if os.geteuid() != 0:
        fill()
        paths = [folder, *(folder / n for n in ("queries", "clips", "answers"))]
        for path in paths:
            path.chmod(0o555)
        try:
            yield folder
        finally:
            for path in paths:
                path.chmod(0o755)
        return
    mount = ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)]
    if subprocess.run(mount, capture_output=True).returncode == 0:
        try:
            fill()
            remount = ["mount", "-o", "remount,ro", str(folder)]
            assert subprocess.run(remount, capture_output=True).returncode == 0
            yield folder
        finally:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        return
    fill()
    real_access = os.access
    inside = str(folder.resolve())

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and os.path.realpath(path).startswith(inside):
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    yield folder


def answer_when_published(queue: LabelQueue, answers: list[str], annotator: str = "alice"):
    """A thread answering each query as it appears, in order, with the next of ``answers``."""

    def run() -> None:
        todo = list(answers)
        deadline = time.monotonic() + 30
        while todo and time.monotonic() < deadline:
            for qid in queue.open_queries():
                queue.answer(qid, todo.pop(0), annotator)
                if not todo:
                    break
            time.sleep(0.01)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# ----- clips ----------------------------------------------------------------------------------
def test_pendulum_clip_frames_are_the_envs_own_renders(tmp_path):
    """Setting Pendulum's state from an observation draws exactly what the env drew."""
    segments, frames = pendulum_segments(1, 6, seed=3)
    teacher = HumanTeacher(dir=str(tmp_path), env="Pendulum-v1")
    env = teacher._renderer()
    for t in range(6):
        STATE_SETTERS["Pendulum-v1"](env.unwrapped, segments.obs[0, t], segments.actions[0, t])
        assert np.array_equal(env.render(), frames[0, t])


def test_clip_is_an_animated_gif_one_frame_per_step(tmp_path):
    segments, _ = pendulum_segments(1, 7, seed=0)
    teacher = HumanTeacher(dir=str(tmp_path), env="Pendulum-v1", clip_size=64)
    gif = Image.open(io.BytesIO(teacher.render_clip(segments.obs[0], segments.actions[0])))
    assert gif.format == "GIF" and gif.n_frames == 7 and gif.size == (64, 64)
    assert gif.info["loop"] == 0


# ----- bad configurations -------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "needs env"),
        ({"env": "CartPole-v1"}, "cannot render env 'CartPole-v1'"),
        ({"env": "Pendulum-v1", "timeout": 0}, "timeout"),
        ({"env": "Pendulum-v1", "clip_size": 8}, "clip_size"),
        ({"env": "Pendulum-v1", "env_kwargs": [1]}, "env_kwargs"),
        ({"env": "Pendulum-v1", "port": 70000}, "port must be an integer in 0..65535"),
        ({"env": "Pendulum-v1", "remind_every": 0}, "remind_every"),
        ({"env": "Pendulum-v1", "host": ""}, "host '' would listen on every interface"),
    ],
)
def test_bad_settings_are_one_line_config_errors(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message) as info:
        make_feedback_model("human", dir=str(tmp_path), **kwargs)
    assert "\n" not in str(info.value)


def test_a_read_only_label_folder_is_refused_when_the_teacher_is_built(tmp_path, monkeypatch):
    with read_only_label_folder(tmp_path / "labels", monkeypatch) as folder:
        with pytest.raises(ConfigError, match="cannot be written") as info:
            HumanTeacher(dir=str(folder), env="Pendulum-v1")
        assert "\n" not in str(info.value) and str(folder) in str(info.value)
        with pytest.raises(ConfigError, match="cannot be written"):
            LabelQueue(folder)
    # A folder that does not exist yet is fine where it can be created.
    HumanTeacher(dir=str(tmp_path / "new" / "labels"), env="Pendulum-v1")
    assert not (tmp_path / "new").exists()  # checked, not written


def test_a_folder_that_fills_up_mid_run_is_one_line(tmp_path, monkeypatch):
    import errno

    from feedbackgym.feedback.human import queue as label_queue

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    teacher = HumanTeacher(dir=str(tmp_path), env="Pendulum-v1", timeout=1)
    monkeypatch.setattr(label_queue, "_atomic_write", full)
    a, _ = pendulum_segments(1, 3, seed=1)
    b, _ = pendulum_segments(1, 3, seed=2)
    with pytest.raises(ConfigError, match="cannot be written: No space left on device") as info:
        teacher.prefer(a, b)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("where", ["withdraw", "log"])
def test_a_folder_that_fills_up_after_publishing_is_one_line(tmp_path, monkeypatch, where):
    """The clips went out; then the disk fills up before the timeout's withdrawal, or before
    the answered batch reaches ``feedback.jsonl``: the same one line as a failed publish."""
    import errno

    from feedbackgym.feedback.human import queue as label_queue
    from feedbackgym.feedback.log import FeedbackLog

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    a, _ = pendulum_segments(1, 3, seed=1)
    b, _ = pendulum_segments(1, 3, seed=2)
    teacher = HumanTeacher(dir=str(tmp_path), env="Pendulum-v1", timeout=0.05,
                           remind_every=None, poll_interval=0.01, clip_size=32)  # fmt: skip
    if where == "withdraw":
        teacher.queue.publish(query_id(a, b, 0), b"GIF89a", b"GIF89a", {})  # published before
        monkeypatch.setattr(label_queue, "_atomic_write", full)
    else:
        monkeypatch.setattr(FeedbackLog, "_write_line", full)
    with pytest.raises(ConfigError, match="cannot be written: No space left on device") as info:
        teacher.prefer(a, b)
    assert "\n" not in str(info.value) and str(tmp_path) in str(info.value)


def test_the_teachers_env_must_have_the_runs_spaces(tmp_path):
    """Clips are drawn from the teacher's env: a run on an env with other spaces is refused
    in one line naming both envs' spaces (spaces only: nothing is rendered or written)."""
    teacher = HumanTeacher(dir=str(tmp_path / "labels"), env="Pendulum-v1")
    pendulum = gym.make("Pendulum-v1")
    teacher.check_spaces(pendulum.observation_space, pendulum.action_space)
    car = gym.make("MountainCarContinuous-v0")
    for spaces in (
        (car.observation_space, car.action_space),
        (pendulum.observation_space, car.action_space),  # same action shape, other bounds
    ):
        with pytest.raises(ConfigError, match="'Pendulum-v1'") as info:
            teacher.check_spaces(*spaces)
        message = str(info.value)
        assert "\n" not in message and str(spaces[1].low[0]) in message
    assert not (tmp_path / "labels").exists()


def test_segments_without_vector_observations_are_refused(tmp_path):
    teacher = HumanTeacher(dir=str(tmp_path), env="Pendulum-v1")
    with pytest.raises(ConfigError, match="vector observations"):
        teacher.prefer(np.zeros((2, 5)), np.ones((2, 5)))


# ----- answering ------------------------------------------------------------------------------
def test_prefer_blocks_until_people_answer_and_maps_answers_to_labels(tmp_path):
    a, _ = pendulum_segments(4, 5, seed=1)
    b, _ = pendulum_segments(4, 5, seed=2)
    teacher = HumanTeacher(dir=str(tmp_path), env="Pendulum-v1", poll_interval=0.01)
    helper = answer_when_published(teacher.queue, ["a", "b", "equal", "skip"])
    labels = teacher.prefer(a, b)
    helper.join()
    np.testing.assert_array_equal(labels, [1.0, 0.0, 0.5, np.nan])
    assert (teacher.queries, teacher.answered) == (4, 3)
    for i in range(4):  # every answer on disk names its annotator
        assert teacher.queue.read_answer(query_id(a, b, i))["annotator"] == "alice"


def test_queries_hold_no_rewards(tmp_path):
    a, _ = pendulum_segments(1, 5, seed=1)
    b, _ = pendulum_segments(1, 5, seed=2)
    teacher = HumanTeacher(dir=str(tmp_path), env="Pendulum-v1", timeout=0.05)
    teacher.prefer(a, b)
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "queries").glob("*.json")]
    assert set(record) == {"id", "created", "env", "length"}


def test_timeout_withdraws_open_queries_and_labels_them_skipped(tmp_path):
    a, _ = pendulum_segments(2, 4, seed=1)
    b, _ = pendulum_segments(2, 4, seed=2)
    teacher = HumanTeacher(dir=str(tmp_path), env="Pendulum-v1", timeout=0.2, poll_interval=0.01)
    helper = answer_when_published(teacher.queue, ["b"])  # one answer, then the person leaves
    labels = teacher.prefer(a, b)
    helper.join()
    assert np.isnan(labels).sum() == 1 and 0.0 in labels
    assert teacher.queue.open_queries() == []
    withdrawn = [i for i in range(2) if teacher.queue.read_answer(query_id(a, b, i))["answer"]]
    assert len(withdrawn) == 1
    # A late answer to the withdrawn query is refused: it can no longer change the run.
    late = [query_id(a, b, i) for i in range(2) if np.isnan(labels[i])][0]
    assert not teacher.queue.answer(late, "a", "alice")


def test_a_restarted_teacher_finds_answers_on_disk_instead_of_asking_again(tmp_path):
    a, _ = pendulum_segments(2, 4, seed=1)
    b, _ = pendulum_segments(2, 4, seed=2)
    first = HumanTeacher(dir=str(tmp_path), env="Pendulum-v1", poll_interval=0.01)
    helper = answer_when_published(first.queue, ["a", "b"])
    labels = first.prefer(a, b)
    helper.join()
    # A new process (a resumed run) asks the same pairs: answered at once, nobody asked.
    clips_before = sorted(os.listdir(tmp_path / "clips"))
    again = HumanTeacher(dir=str(tmp_path), env="Pendulum-v1", timeout=0.5)
    started = time.monotonic()
    np.testing.assert_array_equal(again.prefer(a, b), labels)
    assert time.monotonic() - started < 0.4
    assert sorted(os.listdir(tmp_path / "clips")) == clips_before


def test_a_waiting_teacher_says_so_on_stderr_and_at_its_timeout(tmp_path, capsys):
    """A run blocked on people is never silent: a reminder line while it waits, and one line
    when its timeout withdraws the pairs nobody answered."""
    a, _ = pendulum_segments(2, 4, seed=1)
    b, _ = pendulum_segments(2, 4, seed=2)
    teacher = HumanTeacher(
        dir=str(tmp_path), env="Pendulum-v1", timeout=0.4, remind_every=0.1, poll_interval=0.01
    )
    assert np.isnan(teacher.prefer(a, b)).all()
    err = capsys.readouterr().err
    reminders = [line for line in err.splitlines() if "human teacher: waiting" in line]
    assert 2 <= len(reminders) <= 4
    assert "for 2 of 2 answers" in reminders[0]
    assert f"feedbackgym label --out {tmp_path}" in reminders[0]
    assert "human teacher: timeout (0.4 s): 2 of 2 queries unanswered" in err
    # Answered in time: no line at all.
    teacher = HumanTeacher(dir=str(tmp_path), env="Pendulum-v1", poll_interval=0.01)
    helper = answer_when_published(teacher.queue, ["a", "b"])
    c, _ = pendulum_segments(2, 4, seed=3)
    d, _ = pendulum_segments(2, 4, seed=4)
    teacher.prefer(c, d)
    helper.join()
    assert capsys.readouterr().err == ""


def test_first_answer_wins(tmp_path):
    queue = LabelQueue(tmp_path)
    queue.publish("0" * 24, b"GIF", b"GIF", {})
    assert queue.answer("0" * 24, "a", "alice")
    assert not queue.answer("0" * 24, "b", "bob")
    assert queue.read_answer("0" * 24)["annotator"] == "alice"
    assert not queue.withdraw("0" * 24)


def test_open_queries_are_oldest_first_and_survive_a_new_queue_object(tmp_path):
    queue = LabelQueue(tmp_path)
    for k in range(3):
        queue.publish(f"{k:024x}", b"GIF", b"GIF", {})
    queue.answer(f"{1:024x}", "a", "alice")
    assert LabelQueue(tmp_path).open_queries() == [f"{0:024x}", f"{2:024x}"]


# ----- the open-query index under concurrent looks --------------------------------------------
def slow_reads_on(monkeypatch, thread_name: str) -> tuple[threading.Event, threading.Event]:
    """Make the thread named ``thread_name`` stop at its first read of a query file (after it
    listed the folder) until ``go`` is set; ``entered`` is set when it got there."""
    entered, go = threading.Event(), threading.Event()
    real = Path.read_text

    def read_text(self, *args, **kwargs):
        if threading.current_thread().name == thread_name and self.parent.name == "queries":
            entered.set()
            assert go.wait(10)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    return entered, go


def test_a_slow_look_never_hides_a_query_published_while_it_ran(tmp_path, monkeypatch):
    """The server's threads look at the folder at once: a slow look that listed the folder
    before a query was published must not replace the listing of a look made after it
    (forced interleaving: the slow look stops after listing until the fast one has run)."""
    queue = LabelQueue(tmp_path)
    first, second = f"{1:024x}", f"{2:024x}"
    folder = tmp_path / "queries"
    queue.publish(first, b"GIF", b"GIF", {})
    now = time.time_ns()
    os.utime(folder, ns=(now - 100 * 10**9,) * 2)  # settled long ago: the cache is trusted
    entered, go = slow_reads_on(monkeypatch, "slow-look")
    slow = threading.Thread(target=queue.open_queries, name="slow-look")
    slow.start()
    assert entered.wait(10)  # the slow look listed the folder: `first` only
    queue.publish(second, b"GIF", b"GIF", {})
    os.utime(folder, ns=(now - 50 * 10**9,) * 2)  # changed, and settled too
    fast_result: list[list[str]] = []
    fast = threading.Thread(target=lambda: fast_result.append(queue.open_queries()))
    fast.start()
    fast.join(timeout=2)  # without a lock it has finished by now; with one, it waits
    go.set()
    slow.join(timeout=10)
    fast.join(timeout=10)
    assert fast_result == [[first, second]]
    assert queue.open_queries() == [first, second]


def test_a_query_published_in_the_same_clock_tick_as_a_look_is_found(tmp_path, monkeypatch):
    """Directory times move in coarse ticks: a query published just after a look listed the
    folder, in the same tick, leaves the folder's time unchanged, and must still be found."""
    queue = LabelQueue(tmp_path)
    first, second = f"{1:024x}", f"{2:024x}"
    folder = tmp_path / "queries"
    queue.publish(first, b"GIF", b"GIF", {})
    tick = folder.stat().st_mtime_ns
    entered, go = slow_reads_on(monkeypatch, "look")
    look = threading.Thread(target=queue.open_queries, name="look")
    look.start()
    assert entered.wait(10)
    queue.publish(second, b"GIF", b"GIF", {})
    os.utime(folder, ns=(tick, tick))  # the same tick: the folder's time did not move
    go.set()
    look.join(timeout=10)
    assert queue.open_queries() == [first, second]


def test_a_look_reads_only_the_query_files_it_has_not_seen(tmp_path, monkeypatch):
    """Long runs leave thousands of answered queries: a look after one more is published
    lists names and reads that one query file, not all of them."""
    queue = LabelQueue(tmp_path)
    old = [f"{k:024x}" for k in range(40)]
    for qid in old:
        queue.publish(qid, b"GIF", b"GIF", {})
    for qid in old[:-1]:
        queue.answer(qid, "a", "alice")
    assert queue.open_queries() == old[-1:]
    reads: list[str] = []
    real = Path.read_text

    def read_text(self, *args, **kwargs):
        if self.parent.name == "queries":
            reads.append(self.name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    new = "f" * 24
    queue.publish(new, b"GIF", b"GIF", {})
    assert queue.open_queries() == [old[-1], new]
    assert reads == [f"{new}.json"]


# ----- tokens ---------------------------------------------------------------------------------
def test_tokens_are_unguessable_stored_hashed_and_private(tmp_path):
    queue = LabelQueue(tmp_path)
    tokens = queue.add_annotators(["alice", "bob"])
    assert len(set(tokens.values())) == 2 and all(len(t) >= 40 for t in tokens.values())
    stored = (tmp_path / "annotators.json").read_text()
    assert tokens["alice"] not in stored and tokens["bob"] not in stored
    assert (tmp_path / "annotators.json").stat().st_mode & 0o777 == 0o600
    assert queue.annotator_for(tokens["bob"]) == "bob"
    assert queue.annotator_for(tokens["bob"][:-1]) is None
    assert queue.add_annotators(["alice"]) == {}  # kept: a token is issued once
    reissued = queue.add_annotators(["alice"], reissue=True)["alice"]
    assert queue.annotator_for(tokens["alice"]) is None and queue.annotator_for(reissued)


def test_bad_annotator_names_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="annotator name"):
        LabelQueue(tmp_path).add_annotators(["../evil"])


# ----- logs, checkpoints, the registry ------------------------------------------------------
def test_answered_batches_are_logged_for_replay_and_calibration(tmp_path):
    a, _ = pendulum_segments(2, 4, seed=1)
    b, _ = pendulum_segments(2, 4, seed=2)
    teacher = HumanTeacher(dir=str(tmp_path), env="Pendulum-v1", poll_interval=0.01)
    helper = answer_when_published(teacher.queue, ["a", "equal"])
    labels = teacher.prefer(a, b)
    helper.join()
    replay = ReplayTeacher(str(tmp_path / "feedback.jsonl"))
    assert replay.kind == "preference"
    np.testing.assert_array_equal(replay.prefer(a, b), labels)


def test_teacher_pickles_for_checkpoints_and_describes_itself(tmp_path):
    teacher = make_feedback_model("human", dir=str(tmp_path), env="Pendulum-v1", timeout=5.0)
    teacher._renderer()
    teacher.queue.publish("0" * 24, b"GIF", b"GIF", {})
    assert teacher.queue.open_queries() == ["0" * 24]  # the queue holds a lock and an index
    copy = pickle.loads(pickle.dumps(teacher))
    assert copy.config() == teacher.config()
    assert copy.queue.open_queries() == ["0" * 24]
    assert teacher.config() == {
        "name": "human",
        "dir": str(tmp_path),
        "env": "Pendulum-v1",
        "env_kwargs": None,
        "timeout": 5.0,
        "remind_every": 60.0,
        "poll_interval": 0.2,
        "fps": None,
        "clip_size": 256,
        "port": None,
        "host": "127.0.0.1",
        "rng": None,
    }


def test_point_goal_state_setter_restores_the_observed_state():
    """PointGoal's observation (point, velocity, targets) is its whole state."""
    import feedbackgym  # noqa: F401

    source = gym.make("feedbackgym/PointGoal-v0")
    obs, _ = source.reset(seed=0)
    for _ in range(5):
        obs, *_ = source.step(np.array([0.7, -0.4]))
    copy = gym.make("feedbackgym/PointGoal-v0")
    copy.reset(seed=99)  # another layout, which the setter must replace
    STATE_SETTERS["feedbackgym/PointGoal-v0"](copy.unwrapped, obs, None)
    np.testing.assert_allclose(copy.unwrapped._get_obs(), obs, atol=1e-6)
    np.testing.assert_allclose(
        copy.unwrapped.data.mocap_pos[:, :2], obs[4:].reshape(-1, 2), atol=1e-6
    )
