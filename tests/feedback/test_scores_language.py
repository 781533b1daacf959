"""Score teachers (TAMER, COACH) and language corrections: values, noise, lags, templates."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import feedbackgym  # noqa: F401
from feedbackgym.errors import ConfigError
from feedbackgym.feedback import (
    CoachTeacher,
    LanguageTeacher,
    Segments,
    TamerTeacher,
    hindsight_returns,
    load_templates,
    make_feedback_model,
)


def band(p: float, n: int, z: float = 4.5) -> float:
    return z * np.sqrt(max(p * (1 - p), 1e-12) / n)


def gridworld():
    return gym.make("feedbackgym/GridWorld-v0").unwrapped


def test_noise_free_tamer_scores_are_the_scaled_reward_arriving_now():
    rewards = np.random.default_rng(0).normal(size=(4, 7))
    scores = TamerTeacher(scale=2.0, rng=0).score(rewards)
    np.testing.assert_allclose(scores.value, 2.0 * rewards)
    np.testing.assert_array_equal(scores.arrival, np.broadcast_to(np.arange(7), (4, 7)))


def test_tamer_noise_sparsity_and_reaction_lag_follow_their_parameters():
    n, length = 400, 50
    rewards = np.zeros((n, length))
    teacher = TamerTeacher(noise=0.5, feedback_prob=0.3, min_lag=2, max_lag=5, rng=1)
    scores = teacher.score(rewards)
    given_mask = ~np.isnan(scores.value)
    assert abs(given_mask.mean() - 0.3) < band(0.3, n * length)
    assert abs(np.std(scores.value[given_mask]) - 0.5) < 0.03
    lag = scores.arrival - np.arange(length)
    assert lag.min() == 2 and lag.max() == 5
    assert teacher.queries == n * length and teacher.answered == given_mask.sum()


def test_discrete_tamer_gives_signs_and_advantage_source_uses_q_star():
    env = gridworld()
    _, q = env.optimal_values()
    obs = np.array([[0, 1, 2]])
    best = q[obs].argmax(axis=2)
    teacher = TamerTeacher(source="advantage", env=env, discrete=True, rng=0)
    worst = q[obs].argmin(axis=2)
    assert np.all(teacher.score(Segments(np.zeros((1, 3)), obs, worst)).value == -1.0)
    # zero advantage means no key press
    assert np.all(np.isnan(teacher.score(Segments(np.zeros((1, 3)), obs, best)).value))


def test_hindsight_teacher_judges_the_consequences_and_answers_later():
    rewards = np.array([[1.0, 0.0, -5.0, 0.0]])
    np.testing.assert_allclose(hindsight_returns(rewards, 2), [[-4.0, -5.0, -5.0, 0.0]])
    scores = TamerTeacher(hindsight=2, rng=0).score(rewards)
    assert scores.value[0, 0] == -4.0  # the tempting first step is judged by what followed
    np.testing.assert_array_equal(scores.arrival[0], np.arange(4) + 2)


def test_coach_feedback_is_the_sign_of_the_advantage_under_the_current_policy():
    env = gridworld()
    rng = np.random.default_rng(0)
    policy = rng.dirichlet(np.ones(4), size=env.n_states)
    _, q_pi = env.policy_values(policy)
    adv = q_pi - (policy * q_pi).sum(1, keepdims=True)
    live = np.flatnonzero(~env.terminal)
    obs = rng.choice(live, size=(50, 10))
    actions = rng.integers(4, size=(50, 10))
    scores = CoachTeacher(env=env, rng=0).score(
        Segments(np.zeros(obs.shape), obs, actions), policy=policy
    )
    np.testing.assert_array_equal(scores.value, np.sign(adv[obs, actions]))


def test_coach_mistakes_flip_signs_at_the_given_rate():
    env = gridworld()
    rng = np.random.default_rng(1)
    live = np.flatnonzero(~env.terminal)
    obs = rng.choice(live, size=(200, 50))
    actions = rng.integers(4, size=obs.shape)
    seg = Segments(np.zeros(obs.shape), obs, actions)
    exact = CoachTeacher(env=env, rng=0).score(seg).value
    noisy = CoachTeacher(env=env, mistake=0.2, rng=0).score(seg).value
    known = ~np.isnan(exact)
    rate = np.mean(noisy[known] != exact[known])
    assert abs(rate - 0.2) < band(0.2, known.sum())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"source": "regret"}, "source must be one of 'reward', 'advantage'"),
        ({"feedback_prob": -0.1}, "feedback_prob must be in [0, 1]"),
        ({"min_lag": 3, "max_lag": 1}, "max_lag must be an integer >= 3"),
        ({"noise": -1}, "noise must be in [0, inf)"),
        ({"source": "advantage"}, 'source="advantage" needs'),
    ],
)
def test_bad_score_parameters_are_one_clear_line(kwargs, message):
    with pytest.raises(ConfigError) as err:
        TamerTeacher(**kwargs)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


# ----- language ----------------------------------------------------------------------------
def test_corrections_name_the_direction_the_learner_overshot():
    teacher = LanguageTeacher(kinds=("hn",), rng=0)
    agent = np.array([[2.0, 0.0], [-0.5, 0.0], [0.0, 3.0], [0.0, -0.3]])
    sentences = teacher.correct(agent, np.zeros((4, 2)))
    for sentence, word in zip(sentences, ["right", "left", "up", "down"], strict=True):
        assert word in sentence
    assert list(teacher.last_meaning["direction"]) == ["right", "left", "up", "down"]
    future = LanguageTeacher(kinds=("fp",), rng=0).correct(agent, np.zeros((4, 2)))
    for sentence, word in zip(future, ["left", "right", "down", "up"], strict=True):
        assert word in sentence


def test_right_behaviour_gets_praise_and_every_kind_is_used():
    teacher = LanguageTeacher(rng=2)
    teacher.correct(np.zeros((50, 2)), np.zeros((50, 2)))
    assert set(teacher.last_meaning["meaning"]) <= {"r_good", "hp", "fp_keep"}
    teacher.correct(np.ones((500, 2)) * [3, 0], np.zeros((500, 2)))
    assert set(teacher.last_meaning["kind"]) == {"r", "hp", "hn", "fp", "fn"}
    assert "r_good" not in set(teacher.last_meaning["meaning"])


def test_several_paraphrases_per_meaning_are_drawn():
    sentences = LanguageTeacher(kinds=("hn",), rng=0).correct(
        np.ones((300, 2)) * [2, 0], np.zeros((300, 2))
    )
    assert len(set(sentences)) >= 3


def test_the_table_says_which_template_each_sentence_comes_from():
    templates = {"hn": ["Too far {direction}, {amount}.", "You overshot {direction}."]}
    table = LanguageTeacher(templates=templates).table
    hn = table["meaning"] == "hn"
    for sentence, template in zip(table["sentence"][hn], table["template"][hn], strict=True):
        assert sentence.startswith(("Too far", "You overshot")[template])
    assert set(table["template"][hn]) == {0, 1}


def test_wrong_direction_and_vagueness_rates_match_their_knobs():
    n = 4000
    agent = np.tile([2.0, 0.0], (n, 1))
    noisy = LanguageTeacher(kinds=("hn",), wrong_direction=0.25, rng=3)
    noisy.correct(agent, np.zeros((n, 2)))
    assert abs(np.mean(noisy.last_meaning["direction"] == "left") - 0.25) < band(0.25, n)
    vague = LanguageTeacher(kinds=("hn",), vagueness=0.4, rng=4)
    sentences = vague.correct(agent, np.zeros((n, 2)))
    vague_sentences = set(load_templates()["hn_vague"])
    no_direction = np.array([s in vague_sentences for s in sentences])
    assert abs(no_direction.mean() - 0.4) < band(0.4, n)
    np.testing.assert_array_equal(no_direction, vague.last_meaning["meaning"] == "hn_vague")


def test_corrections_are_deterministic_given_the_seed_and_count_queries():
    x = np.random.default_rng(0).normal(size=(100, 2))
    first = make_feedback_model("language", rng=5)
    assert first.correct(x, -x) == make_feedback_model("language", rng=5).correct(x, -x)
    assert first.queries == 100


def test_discrete_actions_are_compared_through_their_directions():
    env = gridworld()
    teacher = LanguageTeacher(kinds=("fp",), rng=0)
    # the learner went left (3), the expert went right (1): "move more right"
    sentence = teacher.correct_actions([3], [1], env.action_vectors)[0]
    assert "right" in sentence


def test_user_templates_override_the_shipped_ones(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text('hn:\n  - "Whoa, too much {direction}!"\n')
    teacher = LanguageTeacher(kinds=("hn",), templates=path, rng=0)
    assert teacher.correct([[0.0, 2.0]], [[0.0, 0.0]]) == ["Whoa, too much up!"]
    assert load_templates(path)["fp"] == load_templates()["fp"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot be read"),
        ("hn: [unclosed", "is not valid YAML"),
        ("- just a list", "must map meanings"),
        ('hx:\n  - "hi"\n', "unknown meaning 'hx'"),
        ('hn:\n  - "go {where}"\n', "unknown placeholder(s) where"),
        ("hn: []\n", "non-empty list"),
    ],
)
def test_bad_template_files_give_one_clear_line(tmp_path, content, message):
    path = tmp_path / "templates.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as err:
        LanguageTeacher(templates=path)
    assert message in str(err.value) and "\n" not in str(err.value)


@settings(max_examples=30, deadline=None)
@given(
    wrong=st.floats(0, 1),
    vague=st.floats(0, 1),
    tolerance=st.floats(0, 1),
    kinds=st.lists(st.sampled_from(["r", "hp", "hn", "fp", "fn"]), min_size=1, unique=True),
    seed=st.integers(0, 2**31),
)
def test_any_valid_language_parameters_give_one_nonempty_sentence_per_query(
    wrong, vague, tolerance, kinds, seed
):
    teacher = LanguageTeacher(
        kinds=kinds, wrong_direction=wrong, vagueness=vague, tolerance=tolerance, rng=seed
    )
    x = np.random.default_rng(seed).normal(size=(40, 2))
    sentences = teacher.correct(x, np.zeros((40, 2)))
    assert len(sentences) == 40 and all(isinstance(s, str) and s for s in sentences)
    assert set(teacher.last_meaning["kind"]) <= set(kinds)


def test_bad_language_parameters():
    with pytest.raises(ConfigError, match="kinds must be one of"):
        LanguageTeacher(kinds=("x",))
    with pytest.raises(ConfigError, match=r"vagueness must be in \[0, 1\]"):
        LanguageTeacher(vagueness=2)
    with pytest.raises(ConfigError, match=r"shape \(n, 2\)"):
        LanguageTeacher().correct(np.zeros((3, 3)), np.zeros((3, 3)))
