"""Feedback logs: flushed per batch, replayed to identical labels; a learned model from a log."""

from __future__ import annotations

import json

import numpy as np
import pytest

from feedbackgym.errors import ConfigError
from feedbackgym.feedback import (
    FeedbackLog,
    LanguageTeacher,
    LearnedPreferenceModel,
    OracleTeacher,
    Panel,
    ReplayTeacher,
    Segments,
    StochasticTeacher,
    TamerTeacher,
    make_feedback_model,
    read_log,
    rebuild_models,
)


def batches(count=3, n=40, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(n, 6)), rng.normal(size=(n, 6))) for _ in range(count)]


def test_log_is_flushed_per_batch_and_replays_to_identical_labels(tmp_path):
    path = tmp_path / "feedback.jsonl"
    log = FeedbackLog(path)
    teacher = StochasticTeacher(beta=0.7, mistake=0.1, equal_threshold=0.2, rng=3).attach_log(log)
    answers = []
    for i, (a, b) in enumerate(batches()):
        answers.append(teacher.prefer(a, b))
        # readable before close: each batch is on disk as soon as it is answered
        assert sum(r["type"] == "batch" for r in read_log(path)) == i + 1
    log.close()

    replay = ReplayTeacher(path)
    for (a, b), labels in zip(batches(), answers, strict=True):
        np.testing.assert_array_equal(replay.prefer(a, b), labels)

    rebuilt = rebuild_models(path)[0]
    assert rebuilt.config() == teacher.config()
    for (a, b), labels in zip(batches(), answers, strict=True):
        np.testing.assert_array_equal(rebuilt.prefer(a, b), labels)


def test_models_seeded_by_a_generator_are_rebuilt_from_its_logged_state(tmp_path):
    path = tmp_path / "feedback.jsonl"
    generator = np.random.default_rng(123)
    generator.random(17)  # the state, not a seed, identifies the answers
    with FeedbackLog(path) as log:
        panel = Panel([StochasticTeacher(rng=1), StochasticTeacher(beta=3.0, rng=2)], mode="random")
        panel.rng = generator
        panel.attach_log(log)
        other = np.random.default_rng(5)
        other.random(3)
        tamer = TamerTeacher(noise=0.3, max_lag=2, rng=other).attach_log(log)
        labels = [panel.prefer(a, b) for a, b in batches()]
        scores = tamer.score(np.ones((3, 5)))
    models = rebuild_models(path)
    for (a, b), expected in zip(batches(), labels, strict=True):
        np.testing.assert_array_equal(models[0].prefer(a, b), expected)
    again = models[1].score(np.ones((3, 5)))
    np.testing.assert_array_equal(again.value, scores.value)
    np.testing.assert_array_equal(again.arrival, scores.arrival)
    replayed = ReplayTeacher(path, model=1).score(np.ones((3, 5)))
    np.testing.assert_array_equal(replayed.value, scores.value)


def test_language_answers_replay_and_a_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / "feedback.jsonl"
    with FeedbackLog(path, fsync=True) as log:
        teacher = LanguageTeacher(rng=0).attach_log(log)
        x = np.random.default_rng(0).normal(size=(20, 2))
        sentences = teacher.correct(x, -x)
    with path.open("a") as handle:
        handle.write('{"type":"batch","model":0,"ans')  # a crash mid-write
    assert ReplayTeacher(path).correct(x, -x) == sentences


def test_replay_refuses_a_different_query_or_a_log_that_ran_out(tmp_path):
    path = tmp_path / "feedback.jsonl"
    with FeedbackLog(path) as log:
        OracleTeacher().attach_log(log).prefer(*batches(1)[0])
    replay = ReplayTeacher(path)
    with pytest.raises(ConfigError, match="differs from batch 0"):
        replay.prefer(*batches(1, seed=9)[0])
    replay.prefer(*batches(1)[0])
    with pytest.raises(ConfigError, match="no more 'prefer' answers"):
        replay.prefer(*batches(1)[0])


def test_log_lines_are_json_with_null_for_skipped(tmp_path):
    path = tmp_path / "feedback.jsonl"
    with FeedbackLog(path, store_queries=False) as log:
        teacher = OracleTeacher(skip_threshold=100.0).attach_log(log)
        teacher.prefer(*batches(1, n=3)[0])
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["config"]["name"] == "oracle"
    assert lines[1]["answer"] == [None, None, None] and "query" not in lines[1]


def test_unreadable_log_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="cannot be read"):
        read_log(tmp_path / "missing.jsonl")


def test_learned_model_fitted_on_a_log_stands_in_for_the_teacher(tmp_path):
    rng = np.random.default_rng(0)
    n_states, length = 8, 6
    state_reward = np.linspace(-1, 1, n_states)

    def segments(n):
        obs = rng.integers(n_states, size=(n, length))
        return Segments(state_reward[obs], obs, np.zeros((n, length), dtype=np.int64))

    path = tmp_path / "feedback.jsonl"
    with FeedbackLog(path) as log:
        teacher = StochasticTeacher(beta=3.0, rng=1).attach_log(log)
        for _ in range(3):
            teacher.prefer(segments(200), segments(200))
    learned = LearnedPreferenceModel(hidden=16, epochs=150, lr=0.03, beta=float("inf"), rng=0)
    learned.fit(path)
    assert learned.losses[-1] < learned.losses[0]
    a, b = segments(500), segments(500)
    agreement = np.mean(learned.prefer(a, b) == OracleTeacher().prefer(a, b))
    assert agreement > 0.85
    with pytest.raises(ConfigError, match="not fitted"):
        LearnedPreferenceModel().prefer(a, b)


# ----- replay and learned teachers checked before a run uses them ---------------------------
def continuous_log(path, obs_dim=5, act_dim=1, batches_of=2):
    """A log of preferences over segments with Box observations and actions."""
    rng = np.random.default_rng(0)

    def segments(n):
        obs = rng.normal(size=(n, 4, obs_dim))
        return Segments(obs[..., 0], obs, rng.normal(size=(n, 4, act_dim)))

    with FeedbackLog(path) as log:
        teacher = OracleTeacher().attach_log(log)
        for _ in range(batches_of):
            teacher.prefer(segments(30), segments(30))
    return path


def test_replay_by_name_needs_its_log_and_names_no_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "feedback.jsonl").write_text("")  # a file the old default would have read
    with pytest.raises(ConfigError) as err:
        make_feedback_model("replay", rng=0)
    assert str(err.value).startswith(
        'feedback model \'replay\' needs path, e.g. {"path": "runs/earlier/feedback.jsonl"}'
    )
    with pytest.raises(ConfigError, match="holds no answered batch to replay"):
        make_feedback_model("replay", path=str(tmp_path / "feedback.jsonl"))
    with pytest.raises(ConfigError, match="replay's path must be a feedback log's path, got 3"):
        make_feedback_model("replay", path=3)


def test_replay_refuses_an_env_whose_steps_are_not_the_logged_ones(tmp_path):
    from gymnasium.spaces import Box

    replay = ReplayTeacher(continuous_log(tmp_path / "feedback.jsonl"))
    replay.check_spaces(Box(-1, 1, (5,)), Box(-1, 1, (1,)))
    with pytest.raises(ConfigError, match=r"obs have shape \(5,\), this env's have \(3,\)"):
        replay.check_spaces(Box(-1, 1, (3,)), Box(-1, 1, (1,)))


def test_learned_teacher_is_checked_fitted_and_on_the_steps_it_was_fitted_to(tmp_path):
    from gymnasium.spaces import Box

    with pytest.raises(ConfigError, match='not fitted: give fit_log, .* e.g. {"fit_log": '):
        make_feedback_model("learned", rng=0).check_spaces(Box(-1, 1, (5,)), Box(-1, 1, (1,)))
    log = continuous_log(tmp_path / "feedback.jsonl")
    learned = make_feedback_model("learned", rng=0, fit_log=str(log), epochs=3, device="cpu")
    learned.check_spaces(Box(-1, 1, (5,)), Box(-1, 1, (1,)))
    with pytest.raises(ConfigError, match="fitted to steps unlike this env's"):
        learned.check_spaces(Box(-1, 1, (3,)), Box(-1, 1, (1,)))
    with pytest.raises(ConfigError, match="fit_log must be a feedback log's path, got 7"):
        make_feedback_model("learned", rng=0, fit_log=7)
