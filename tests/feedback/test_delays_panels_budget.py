"""Delays deliver every item exactly once; panels vote and report disagreement; budgets cap."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedbackgym.errors import ConfigError
from feedbackgym.feedback import (
    Budget,
    BudgetExhausted,
    DelayQueue,
    HindsightTeacher,
    MistakeTeacher,
    OracleTeacher,
    Panel,
    StochasticTeacher,
    TamerTeacher,
    make_delay,
    make_feedback_model,
)

DELAY_CASES = [
    ("fixed", {"delay": 3}),
    ("geometric", {"p": 0.3}),
    ("uniform", {"low": 1, "high": 6}),
    ("batched", {"period": 4}),
    ("episode-end", {}),
]


def run_queue(queue: DelayQueue, per_step: list[int], episode_length: int) -> list[tuple]:
    """Push per_step[t] items at step t; return (item, made, released) for all deliveries."""
    out = []
    for t, count in enumerate(per_step):
        queue.push([(t, k) for k in range(count)], t)
        end = (t + 1) % episode_length == 0
        out.extend((item, item[0], t) for item in queue.pop(t, episode_end=end))
    out.extend((item, item[0], None) for item in queue.flush())
    return out


@settings(max_examples=40, deadline=None)
@given(
    case=st.sampled_from(DELAY_CASES),
    per_step=st.lists(st.integers(0, 4), min_size=1, max_size=60),
    episode_length=st.integers(1, 20),
    seed=st.integers(0, 1000),
)
def test_every_delay_delivers_every_item_exactly_once_and_never_early(
    case, per_step, episode_length, seed
):
    name, params = case
    queue = DelayQueue(make_delay(name, **params), rng=seed)
    delivered = run_queue(queue, per_step, episode_length)
    items = [d[0] for d in delivered]
    assert sorted(items) == sorted((t, k) for t, c in enumerate(per_step) for k in range(c))
    assert len(set(items)) == len(items)
    assert all(released is None or released >= made for _, made, released in delivered)
    assert queue.pushed == queue.delivered == len(items) and len(queue) == 0


def test_fixed_batched_and_episode_end_release_when_documented():
    fixed = run_queue(DelayQueue(make_delay("fixed", delay=3)), [1] * 10, 100)
    assert all(released == made + 3 for _, made, released in fixed if released is not None)
    batched = run_queue(DelayQueue(make_delay("batched", period=4)), [1] * 10, 100)
    assert {released for _, _, released in batched} == {4, 8, None}
    ends = run_queue(DelayQueue(make_delay("episode-end")), [1] * 10, 5)
    assert {released for _, _, released in ends} == {4, 9}


def test_random_delays_have_the_documented_means():
    rng = np.random.default_rng(0)
    steps = np.zeros(20000)
    geometric = make_delay("geometric", p=0.25).release_steps(steps, rng)
    assert abs(geometric.mean() - 3.0) < 0.15 and geometric.min() == 0
    uniform = make_delay("uniform", low=2, high=4).release_steps(steps, rng)
    assert set(np.unique(uniform)) == {2, 3, 4}


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("geometric", {"p": 0}, "p must be in (0, 1]"),
        ("uniform", {"low": 5, "high": 2}, "high must be an integer >= 5"),
        ("batched", {"period": 0}, "period must be a positive integer"),
        ("fixed", {"delay": -1}, "delay must be an integer >= 0"),
        ("fixed", {"delay": 1.5}, "delay must be an integer >= 0, got 1.5"),
        ("gamma", {}, "unknown delay 'gamma'"),
    ],
)
def test_bad_delays_are_one_clear_line(name, params, message):
    with pytest.raises(ConfigError) as err:
        make_delay(name, **params)
    assert str(err.value).startswith(message)


def test_hindsight_preferences_see_the_consequences():
    # a looks better on its own, but what followed it was a disaster
    a, b = np.array([[1.0, 1.0]]), np.array([[0.0, 0.0]])
    a_after, b_after = np.array([[-10.0]]), np.array([[0.0]])
    teacher = HindsightTeacher(OracleTeacher())
    assert teacher.prefer(a, b)[0] == 1.0  # foresight
    assert teacher.prefer(a, b, a_after, b_after)[0] == 0.0  # hindsight
    assert teacher.queries == 2


def pairs(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 10)), rng.normal(size=(n, 10))


def test_majority_panel_votes_and_reports_disagreement():
    a, b = pairs()
    agree = Panel([OracleTeacher(), OracleTeacher(), OracleTeacher()])
    np.testing.assert_array_equal(agree.prefer(a, b), OracleTeacher().prefer(a, b))
    assert agree.disagreement_rate == 0.0 and agree.queries == 3000
    assert all(m.queries == 3000 for m in agree.members)
    # two truthful members outvote one that always lies; they disagree on every pair
    liar = MistakeTeacher(mistake=1.0)
    panel = Panel([OracleTeacher(), liar, OracleTeacher()])
    np.testing.assert_array_equal(panel.prefer(a, b), OracleTeacher().prefer(a, b))
    assert panel.disagreement_rate == 1.0
    # one against one is a tie: "equal"
    assert np.all(Panel([OracleTeacher(), liar]).prefer(a, b) == 0.5)


def test_majority_of_noisy_annotators_is_more_accurate_and_disagreement_is_measured():
    a, b = pairs(20000, 1)
    truth = OracleTeacher().prefer(a, b)
    members = [MistakeTeacher(mistake=0.2, rng=s) for s in range(3)]
    panel = Panel(members)
    labels = panel.prefer(a, b)
    # P(majority wrong) = 3 e^2 (1-e) + e^3 = 0.104; P(not unanimous) = 1 - e^3 - (1-e)^3 = 0.48
    assert abs(np.mean(labels != truth) - 0.104) < 0.01
    assert abs(panel.disagreement_rate - 0.48) < 0.015


def test_random_assignment_panel_sends_each_pair_to_one_member():
    a, b = pairs(1000)
    members = [StochasticTeacher(rng=s) for s in range(4)]
    panel = Panel(members, mode="random", rng=0)
    labels = panel.prefer(a, b)
    assert not np.isnan(labels).any()
    assert sum(m.queries for m in members) == 1000 and panel.queries == 1000
    assert all(m.queries > 150 for m in members)
    assert np.isnan(panel.disagreement_rate)


def test_budget_counts_caps_and_raises_a_clear_error():
    a, b = pairs(10)
    budget = Budget(OracleTeacher(), max_queries=25)
    budget.prefer(a, b)
    budget.prefer(a, b)
    assert budget.used == 20 and budget.remaining == 5 and budget.model.queries == 20
    with pytest.raises(BudgetExhausted) as err:
        budget.prefer(a, b)
    assert str(err.value) == (
        "feedback budget exhausted: 20 of max_queries=25 used, this batch asks 10 more"
    )
    assert budget.used == 20 and budget.model.queries == 20  # nothing was asked


def test_refusing_budget_answers_what_fits_and_refuses_the_rest():
    a, b = pairs(10)
    budget = Budget(OracleTeacher(), max_queries=14, on_exhausted="refuse")
    budget.prefer(a, b)
    labels = budget.prefer(a, b)
    np.testing.assert_array_equal(labels[:4], OracleTeacher().prefer(a[:4], b[:4]))
    assert np.isnan(labels[4:]).all()
    assert budget.used == 14 and budget.refused == 6 and budget.model.queries == 14
    scores = Budget(TamerTeacher(), 1, on_exhausted="refuse").score(np.ones((3, 4)))
    assert np.all(scores.value[0] == 1) and np.isnan(scores.value[1:]).all()


def test_bad_budget():
    with pytest.raises(ConfigError, match="max_queries must be a positive integer"):
        Budget(OracleTeacher(), max_queries=0)
    with pytest.raises(ConfigError, match="on_exhausted must be one of"):
        Budget(OracleTeacher(), max_queries=3, on_exhausted="wait")


# ----- wrapping teachers built by name (what --teacher-kwargs gives) --------------------------
WRAPPED_BY_NAME = [  # registry name, kwargs, the wrapped models' registry names
    ("budget", {"model": "oracle", "max_queries": 100}, ["oracle"]),
    ("budget", {"model": {"name": "mistake", "mistake": 0.2}, "max_queries": 100}, ["mistake"]),
    ("panel", {"members": ["oracle", {"name": "mistake", "mistake": 0.2}]}, ["oracle", "mistake"]),
    ("hindsight", {"teacher": "myopic"}, ["myopic"]),
    ("hindsight", {"teacher": {"name": "stochastic", "beta": 2.0}}, ["stochastic"]),
    ("budget", {"model": {"name": "panel", "members": ["oracle"]}, "max_queries": 100}, ["panel"]),
]


@pytest.mark.parametrize(("name", "kwargs", "inner"), WRAPPED_BY_NAME)
def test_wrapping_teachers_take_their_models_by_name_or_config(name, kwargs, inner):
    teacher = make_feedback_model(name, rng=0, **kwargs)
    wrapped = {"budget": "model", "panel": "members", "hindsight": "teacher"}[name]
    models = getattr(teacher, wrapped)
    models = models if isinstance(models, list) else [models]
    assert [m.registry_name for m in models] == inner
    a, b = pairs(3)
    assert teacher.prefer(a, b).shape == (3,)
    # the same seed builds the same assembly: equal answers
    one, two = (make_feedback_model(name, rng=0, **kwargs) for _ in range(2))
    np.testing.assert_array_equal(one.prefer(*pairs(50, 1)), two.prefer(*pairs(50, 1)))


WRONG_FORMS = [  # registry name, kwargs, the start of the one-line error
    ("budget", {"max_queries": 3}, "feedback model 'budget' needs model, e.g. {\"model\": {"),
    ("budget", {"model": "oracel", "max_queries": 3}, "budget's model: unknown feedback model"),
    ("budget", {"model": {"mistake": 0.1}, "max_queries": 3}, "budget's model must be a"),
    ("budget", {"model": 3, "max_queries": 3}, "budget's model must be a feedback model's name"),
    ("budget", {"model": ["oracle"], "max_queries": 3}, "budget's model must be a"),
    ("budget", {"model": {"name": "mistake", "mistake": 2}, "max_queries": 3},
     "budget's model: mistake must be in [0, 1], got 2"),
    ("budget", {"model": {"name": "oracle", "nope": 1}, "max_queries": 3},
     "budget's model: feedback model 'oracle' has no parameter 'nope'"),
    ("budget", {"model": "oracle", "max_queries": "three"}, "max_queries must be a positive"),
    ("budget", {"model": "oracle"}, "feedback model 'budget' needs max_queries"),
    ("panel", {}, "feedback model 'panel' needs members, e.g. {\"members\": ["),
    ("panel", {"members": "oracle"}, "panel members must be a non-empty list"),
    ("panel", {"members": []}, "panel members must be a non-empty list"),
    ("panel", {"members": ["oracle", 7]}, "panel member 1 must be a feedback model's name"),
    ("panel", {"members": ["oracle", "tamer"]}, "panel member 1 (tamer) gives score feedback"),
    ("panel", {"members": [{"name": "stochastic", "beta": -1}]}, "panel member 0: beta must"),
    ("panel", {"members": ["oracle"], "mode": 3}, "mode must be one of"),
    ("hindsight", {"teacher": 4}, "hindsight's teacher must be a feedback model's name"),
    ("hindsight", {"teacher": "nope"}, "hindsight's teacher: unknown feedback model 'nope'"),
    ("hindsight", {"teacher": "language"}, "hindsight's teacher (language) gives correction"),
    ("hindsight", {"teacher": {"name": "myopic", "gamma": 0}}, "hindsight's teacher: gamma"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "kwargs", "message"), WRONG_FORMS)
def test_every_wrong_form_of_a_wrapping_teacher_is_one_clear_line(name, kwargs, message):
    with pytest.raises(ConfigError) as err:
        make_feedback_model(name, rng=0, **kwargs)
    assert str(err.value).startswith(message), str(err.value)
    assert "\n" not in str(err.value)


def test_wrapping_teachers_pass_the_env_check_to_what_they_wrap():
    from gymnasium.spaces import Discrete

    q_values = np.zeros((4, 2))
    for name, kwargs in [
        ("budget", {"model": {"name": "regret", "q_values": q_values}, "max_queries": 3}),
        ("panel", {"members": ["oracle", {"name": "regret", "q_values": q_values}]}),
        ("hindsight", {"teacher": {"name": "regret", "q_values": q_values}}),
    ]:
        teacher = make_feedback_model(name, rng=0, **kwargs)
        teacher.check_spaces(Discrete(4), Discrete(2))
        with pytest.raises(ConfigError, match=r"q_values table has shape \(4, 2\), this env has 5"):
            teacher.check_spaces(Discrete(5), Discrete(2))
