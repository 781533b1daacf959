"""Relative skip/equal thresholds: B-Pref's rule, on hand-computed numbers.

B-Pref (Lee et al. 2021; rll-research/BPref ``reward_model.py``) sets
``teacher_thres_skip = margin * eps_skip`` and ``teacher_thres_equal = margin * eps_equal`` with
``margin`` = the average return per step times the segment length, skips a query unless
``max(R_a, R_b) > thres_skip`` (only when ``thres_skip > 0``) and answers "equal" when
``|R_a - R_b| < thres_equal``. Here the average is over every step the teacher was shown.
"""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest
import yaml

from feedbackgym.errors import ConfigError
from feedbackgym.feedback import (
    FEEDBACK_MODELS,
    BPrefTeacher,
    FeedbackLog,
    PreferenceModel,
    SkipTeacher,
    StochasticTeacher,
    from_config,
    make_feedback_model,
    rebuild_models,
)

NAN = float("nan")

# Three batches of segments of length 2 (rewards per step), asked in this order.
BATCHES = [
    # returns a = (6, 0.5), b = (1, 0.5): 8 seen over 8 steps -> average 1 per step,
    # margin 1 * 2 = 2, thresholds skip 0.5 * 2 = 1, equal 0.25 * 2 = 0.5.
    (np.array([[3.0, 3.0], [0.5, 0.0]]), np.array([[1.0, 0.0], [0.0, 0.5]])),
    # returns a = 4.25, b = 3.75: 16 seen over 12 steps -> average 4/3, margin 8/3,
    # skip 4/3, equal 2/3.
    (np.array([[2.0, 2.25]]), np.array([[2.0, 1.75]])),
    # returns a = 1, b = 0: 17 seen over 16 steps -> average 17/16, margin 17/8,
    # skip 17/16, equal 17/32.
    (np.array([[0.5, 0.5]]), np.array([[0.0, 0.0]])),
]
THRESHOLDS = [(1.0, 0.5), (4 / 3, 2 / 3), (17 / 16, 17 / 32)]
# batch 1: pair 0 max 6 > 1 and |6 - 1| >= 0.5: a; pair 1 max 0.5 <= 1: skipped.
# batch 2: max 4.25 > 4/3 but |4.25 - 3.75| = 0.5 < 2/3: equal (under batch 1's equal
#          threshold 0.5 it would have been a preference: the thresholds moved).
# batch 3: max 1 <= 17/16: skipped (an absolute threshold of 0.5 would keep it).
RELATIVE_LABELS = [[1.0, NAN], [0.5], [NAN]]
# Absolute thresholds skip 0.5, equal 0.25 on the same batches: batch 1 pair 1 has max
# 0.5 <= 0.5 (skipped); batch 2 differs by 0.5 >= 0.25 (a); batch 3 max 1 > 0.5 (a).
ABSOLUTE_LABELS = [[1.0, NAN], [1.0], [1.0]]


def ask_all(teacher: PreferenceModel) -> list[np.ndarray]:
    return [teacher.prefer(a, b) for a, b in BATCHES]


def test_relative_thresholds_follow_bpref_on_hand_computed_queries():
    teacher = BPrefTeacher(skip_threshold=0.5, equal_threshold=0.25, relative_thresholds=True)
    assert teacher.thresholds(2) == (-np.inf, 0.0)  # nothing seen yet: both rules off
    for (a, b), want, thresholds in zip(BATCHES, RELATIVE_LABELS, THRESHOLDS, strict=True):
        np.testing.assert_array_equal(teacher.prefer(a, b), want)
        np.testing.assert_allclose(teacher.thresholds(2), thresholds, rtol=1e-12)
    assert (teacher.queries, teacher.answered) == (4, 2)


def test_the_margin_scales_with_the_segment_length_asked():
    teacher = BPrefTeacher(skip_threshold=0.5, equal_threshold=0.25, relative_thresholds=True)
    teacher.prefer(*BATCHES[0])  # average 1 per step
    np.testing.assert_allclose(teacher.thresholds(10), (5.0, 2.5))


def test_absolute_thresholds_are_unchanged_and_the_default():
    assert PreferenceModel().relative_thresholds is False
    assert BPrefTeacher().config()["relative_thresholds"] is False
    teacher = BPrefTeacher(skip_threshold=0.5, equal_threshold=0.25)
    for (a, b), want in zip(BATCHES, ABSOLUTE_LABELS, strict=True):
        np.testing.assert_array_equal(teacher.prefer(a, b), want)
    assert teacher.thresholds(2) == (0.5, 0.25)
    assert teacher.running_state() == {}


def test_absolute_mode_labels_match_the_rule_it_always_had():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    teacher = BPrefTeacher(skip_threshold=-1.0, equal_threshold=0.5, mistake=0.1, rng=3)
    labels = teacher.prefer(a, b)
    draws = np.random.default_rng(3)
    draws.random(400)  # the choice uniforms (unused by the oracle)
    flip = draws.random(400) < 0.1
    ua, ub = a.sum(axis=1), b.sum(axis=1)
    want = np.where(ua > ub, 1.0, 0.0)
    want = np.where(flip, 1.0 - want, want)
    want[np.abs(ua - ub) < 0.5] = 0.5
    want[np.maximum(ua, ub) <= -1.0] = NAN
    np.testing.assert_array_equal(labels, want)


def test_a_threshold_that_is_not_positive_is_off_as_in_bpref():
    # Negative rewards: margin < 0, so B-Pref neither skips nor answers "equal".
    a, b = np.array([[-1.0, -1.0]]), np.array([[-1.0, -1.1]])
    relative = BPrefTeacher(skip_threshold=0.5, equal_threshold=0.5, relative_thresholds=True)
    np.testing.assert_array_equal(relative.prefer(a, b), [1.0])
    assert relative.thresholds(2) == (-np.inf, 0.0)
    absolute = BPrefTeacher(skip_threshold=0.5, equal_threshold=0.5)
    np.testing.assert_array_equal(absolute.prefer(a, b), [NAN])


def test_skip_teacher_defaults_to_bpref_eps_skip_when_relative():
    assert SkipTeacher().skip_threshold == 0.0
    assert SkipTeacher(relative_thresholds=True).skip_threshold == 0.1
    assert SkipTeacher(skip_threshold=0.3, relative_thresholds=True).skip_threshold == 0.3
    # a numpy boolean, accepted as relative_thresholds, picks B-Pref's ratio too
    assert SkipTeacher(relative_thresholds=np.True_).skip_threshold == 0.1
    assert make_feedback_model("equal", relative_thresholds=True).equal_threshold == 0.1


def test_relative_thresholds_work_through_the_registry_and_yaml_configs():
    config = yaml.safe_load(
        "name: bpref\nskip_threshold: 0.5\nequal_threshold: 0.25\nrelative_thresholds: true\n"
    )
    teacher = from_config(config)
    assert teacher.relative_thresholds is True
    np.testing.assert_array_equal(np.concatenate(ask_all(teacher)), [1, NAN, 0.5, NAN])
    rebuilt = from_config(yaml.safe_load(yaml.safe_dump(teacher.config())))
    assert rebuilt.config() == teacher.config()
    for name in ("team", "per-agent", "oracle", "stochastic", "mistake", "myopic", "skip"):
        model = make_feedback_model(name, relative_thresholds=True, rng=0)
        assert model.config()["relative_thresholds"] is True


def test_every_thresholded_teacher_takes_the_same_threshold_parameters():
    base = inspect.signature(PreferenceModel.__init__).parameters
    shared = {"beta", "gamma", "mistake", "skip_threshold", "equal_threshold"}
    shared |= {"relative_thresholds", "rng"}
    assert shared == set(base) - {"self"}
    for name in FEEDBACK_MODELS.names():
        cls = FEEDBACK_MODELS.get(name)
        params = inspect.signature(cls.__init__).parameters
        if issubclass(cls, PreferenceModel) and "skip_threshold" in params:
            assert shared <= set(params), name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"relative_thresholds": "yes"},
            "relative_thresholds must be true or false, got 'yes'",
        ),
        (
            {"relative_thresholds": True, "skip_threshold": -1.0},
            "skip_threshold must be in [0, inf) or -inf with relative_thresholds (a ratio, "
            "B-Pref's eps_skip), got -1.0",
        ),
        (
            {"relative_thresholds": True, "equal_threshold": -0.1},
            "equal_threshold must be",
        ),
    ],
)
def test_bad_values_are_one_line_config_errors(kwargs, message):
    with pytest.raises(ConfigError) as err:
        make_feedback_model("bpref", **kwargs)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_relative_labels_are_deterministic_given_the_seed():
    rng = np.random.default_rng(0)
    batches = [(rng.normal(0.5, 1, (50, 5)), rng.normal(0.5, 1, (50, 5))) for _ in range(4)]

    def run() -> np.ndarray:
        teacher = StochasticTeacher(
            skip_threshold=0.5, equal_threshold=0.2, relative_thresholds=True, rng=7
        )
        return np.concatenate([teacher.prefer(a, b) for a, b in batches])

    first = run()
    np.testing.assert_array_equal(first, run())
    assert np.isnan(first).any() and (first == 0.5).any()


def test_a_pickled_teacher_resumes_with_the_returns_it_had_seen():
    teacher = BPrefTeacher(skip_threshold=0.5, equal_threshold=0.25, relative_thresholds=True)
    teacher.prefer(*BATCHES[0])
    resumed = pickle.loads(pickle.dumps(teacher))
    assert resumed.running_state() == {"seen_utility": 8.0, "seen_steps": 8}
    assert teacher.running_state() == resumed.running_state()
    for (a, b), want in zip(BATCHES[1:], RELATIVE_LABELS[1:], strict=True):
        np.testing.assert_array_equal(resumed.prefer(a, b), want)


def test_a_log_restores_the_returns_seen_before_the_teacher_was_attached(tmp_path):
    teacher = BPrefTeacher(skip_threshold=0.5, equal_threshold=0.25, relative_thresholds=True)
    teacher.prefer(*BATCHES[0])
    with FeedbackLog(tmp_path / "log.jsonl") as log:
        teacher.attach_log(log)
        answers = [teacher.prefer(a, b) for a, b in BATCHES[1:]]
    rebuilt = rebuild_models(tmp_path / "log.jsonl")[0]
    assert rebuilt.running_state() == {"seen_utility": 8.0, "seen_steps": 8}
    for (a, b), want in zip(BATCHES[1:], answers, strict=True):
        np.testing.assert_array_equal(rebuilt.prefer(a, b), want)
