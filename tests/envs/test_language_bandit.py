"""The language bandit: checkers, single run = vector of one, sentences, instances, bad input."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from feedbackgym.envs import FeatureBanditVec, describe, registered_ids
from feedbackgym.errors import ConfigError
from feedbackgym.feedback.language_bandit import LanguageBanditVec

ENV_ID = "feedbackgym/LanguageBandit-v0"


def test_registered_and_passes_gymnasium_and_sb3_checkers():
    assert ENV_ID in registered_ids() and "in words" in describe(ENV_ID)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # advisory warnings (2-D observations) are fine
        gym_check_env(gym.make(ENV_ID).unwrapped, skip_render_check=True)
        sb3_check_env(gym.make(ENV_ID), warn=False)


def test_make_vec_is_native_and_says_one_sentence_per_run():
    env = gym.make_vec(ENV_ID, num_envs=16, n_arms=8)
    assert isinstance(env.unwrapped, LanguageBanditVec)
    assert env.unwrapped.feedback_type == "correction"
    assert env.unwrapped.reward_family == "bernoulli"
    obs, _ = env.reset(seed=0)
    assert obs.shape == (16, 8, 2) and env.observation_space.contains(obs)
    _, rewards, _, _, info = env.step(np.zeros(16, dtype=np.int64))
    assert len(info["feedback"]) == 16
    assert all(isinstance(s, str) and s for s in info["feedback"])
    assert set(np.unique(rewards)) <= {0.0, 1.0}
    best = env.unwrapped.best_arm
    np.testing.assert_array_equal(info["optimal_action"], best)
    means = info["means"]
    rows = np.arange(16)
    np.testing.assert_allclose(info["regret"], means[rows, best] - means[:, 0])


def test_single_run_and_vector_of_one_run_agree():
    kwargs = {"n_arms": 6, "teacher_kwargs": {"wrong_direction": 0.2, "vagueness": 0.2}}
    single = gym.make(ENV_ID, **kwargs)
    vector = gym.make_vec(ENV_ID, num_envs=1, **kwargs)
    obs1, _ = single.reset(seed=11)
    obs2, _ = vector.reset(seed=11)
    np.testing.assert_array_equal(obs1, obs2[0])
    for t in range(30):
        _, r1, _, _, i1 = single.step(t % 6)
        _, r2, _, _, i2 = vector.step(np.array([t % 6]))
        assert r1 == r2[0] and i1["feedback"] == i2["feedback"][0]
        assert i1["regret"] == i2["regret"][0]


def test_the_best_arm_alone_is_called_right_and_words_point_towards_it():
    env = LanguageBanditVec(num_envs=200, n_arms=10, teacher_kwargs={"kinds": ["hn"]})
    obs, _ = env.reset(seed=1)
    best = env.best_arm
    _, _, _, _, info = env.step(best)
    assert all(s == info["feedback"][0] or "right" in s or "correct" in s for s in info["feedback"])
    meaning = env.teacher.last_meaning["meaning"]
    assert set(meaning) == {"hp"}
    other = (best + 1) % 10
    env.step(other)
    meaning = env.teacher.last_meaning
    assert not meaning["right"].any()
    rows = np.arange(200)
    gap = obs[rows, other] - obs[rows, best]
    axis = np.abs(gap).argmax(axis=1)
    too_far = np.where(gap[rows, axis] > 0, np.array(["right", "up"])[axis], "")
    too_far = np.where(gap[rows, axis] < 0, np.array(["left", "down"])[axis], too_far)
    np.testing.assert_array_equal(meaning["direction"], too_far)


def test_arms_are_separated_and_means_fall_with_distance():
    env = FeatureBanditVec(num_envs=50, n_arms=20, min_separation=0.3)
    obs, _ = env.reset(seed=2)
    gaps = np.abs(obs[:, :, None, :] - obs[:, None, :, :]).max(axis=3)
    off_diagonal = ~np.eye(20, dtype=bool)
    assert gaps[:, off_diagonal].min() >= 0.3 and np.abs(obs).max() <= 1.0
    rows = np.arange(50)
    x = obs.astype(np.float64)  # the features are float32 values, exactly as observed
    np.testing.assert_array_equal(x, env.features)
    dist = np.linalg.norm(x - x[rows, env.best_arm][:, None, :], axis=2)
    expected = 0.9 * np.exp(-(dist**2) / (2 * 0.5**2))
    np.testing.assert_allclose(env.means, expected, rtol=1e-6)
    assert np.all(env.means.argmax(axis=1) == env.best_arm)


def test_prior_seed_fixes_one_instance_for_every_run():
    env = gym.make_vec(ENV_ID, num_envs=4, prior_seed=7)
    obs, _ = env.reset(seed=0)
    assert np.all(obs == obs[0]) and np.all(env.unwrapped.best_arm == env.unwrapped.best_arm[0])
    again, _ = gym.make_vec(ENV_ID, num_envs=2, prior_seed=7).reset(seed=5)
    np.testing.assert_array_equal(again[0], obs[0])


def test_a_restarting_run_hears_nothing():
    env = LanguageBanditVec(num_envs=3, n_arms=4, horizon=2)
    env.reset(seed=0)
    actions = np.zeros(3, dtype=np.int64)
    env.step(actions)
    env.step(actions)
    _, rewards, _, _, info = env.step(actions)  # the runs restart on a fresh instance
    assert info["feedback"] == ["", "", ""] and np.all(rewards == 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"teacher_kwargs": {"tolerance": 0.3}}, "tolerance (0.3) must be below min_separation"),
        ({"teacher_kwargs": {"volume": 1}}, "teacher_kwargs has no parameter 'volume'"),
        ({"teacher_kwargs": {"rng": 1}}, "teacher_kwargs may not set 'rng'"),
        ({"teacher_kwargs": [1]}, "teacher_kwargs must be a dict"),
        ({"n_arms": 200, "min_separation": 0.5}, "200 arms do not fit"),
        ({"mu_max": 1.5}, "mu_max must be in (0, 1]"),
        ({"width": 0}, "width must be in (0, inf)"),
    ],
)
def test_bad_input_is_one_line(kwargs, message):
    with pytest.raises(ConfigError) as err:
        LanguageBanditVec(num_envs=1, **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)
