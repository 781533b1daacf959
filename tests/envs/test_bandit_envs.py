"""Bandit envs: registry, official checkers, native vectorisation, hidden truth, bad input."""

from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from feedbackgym.envs import BanditVectorEnv, registered_ids
from feedbackgym.errors import ConfigError

BANDITS = [
    "feedbackgym/BernoulliBandit-v0",
    "feedbackgym/GaussianBandit-v0",
    "feedbackgym/SwitchingCostBandit-v0",
    "feedbackgym/PiecewiseStationaryBandit-v0",
    "feedbackgym/ContextualLinearBandit-v0",
]


@pytest.mark.parametrize("env_id", registered_ids())
def test_every_registered_env_passes_gymnasium_and_sb3_checkers(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # advisory warnings (e.g. 2-D observations) are fine
        gym_check_env(gym.make(env_id).unwrapped, skip_render_check=True)
        sb3_check_env(gym.make(env_id), warn=False)


def test_builtin_bandits_are_registered():
    assert set(BANDITS) <= set(registered_ids())


def test_module_prefix_make_and_make_vec_in_a_fresh_interpreter():
    code = (
        "import gymnasium as gym\n"
        "e = gym.make('feedbackgym:feedbackgym/BernoulliBandit-v0')\n"
        "v = gym.make_vec('feedbackgym:feedbackgym/BernoulliBandit-v0', num_envs=3)\n"
        "print(type(v).__name__, v.num_envs)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["BernoulliBanditVec", "3"]


@pytest.mark.parametrize("env_id", BANDITS)
def test_make_vec_is_native_and_steps_all_runs_at_once(env_id):
    env = gym.make_vec(env_id, num_envs=64)
    assert isinstance(env.unwrapped, BanditVectorEnv)
    env.reset(seed=3)
    obs, rewards, terminated, truncated, info = env.step(env.action_space.sample())
    assert rewards.shape == terminated.shape == truncated.shape == (64,)
    assert info["regret"].shape == (64,) and np.all(info["regret"] >= 0)
    assert info["optimal_action"].shape == (64,)
    assert env.observation_space.contains(obs)


def test_single_env_and_vector_env_of_one_run_agree():
    kwargs = {"means": [0.3, 0.7, 0.5], "horizon": 50}
    single = gym.make("feedbackgym/BernoulliBandit-v0", **kwargs)
    vector = gym.make_vec("feedbackgym/BernoulliBandit-v0", num_envs=1, **kwargs)
    single.reset(seed=11)
    vector.reset(seed=11)
    for t in range(50):
        _, r1, _, tr1, i1 = single.step(t % 3)
        _, r2, _, tr2, i2 = vector.step(np.array([t % 3]))
        assert r1 == r2[0] and tr1 == tr2[0] and i1["regret"] == i2["regret"][0]
    assert tr1  # truncated at the horizon


def test_same_seed_same_rewards_and_runs_are_independent():
    def rewards(seed):
        env = gym.make_vec("feedbackgym/BernoulliBandit-v0", num_envs=200, means=[0.5, 0.5])
        env.reset(seed=seed)
        return np.stack([env.step(np.zeros(200, np.int64))[1] for _ in range(20)])

    a, b, c = rewards(1), rewards(1), rewards(2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert 0.4 < a.mean() < 0.6 and len({tuple(col) for col in a.T}) > 150


def test_hidden_truth_is_in_info_and_not_in_the_observation():
    env = gym.make("feedbackgym/BernoulliBandit-v0", means=[0.1, 0.8])
    obs, _ = env.reset(seed=0)
    assert obs == 0  # a plain K-armed bandit shows the learner nothing but rewards
    _, _, _, _, info = env.step(0)
    assert info["optimal_action"] == 1
    assert info["regret"] == pytest.approx(0.7)
    assert info["true_reward"] == pytest.approx(0.1)
    assert env.unwrapped.lai_robbins_constant() > 0


def test_means_drawn_from_a_seeded_prior():
    fixed = gym.make_vec("feedbackgym/BernoulliBandit-v0", num_envs=4, prior_seed=5, n_arms=6)
    fixed.reset(seed=0)
    assert np.all(fixed.unwrapped.means == fixed.unwrapped.means[0])
    per_run = gym.make_vec("feedbackgym/GaussianBandit-v0", num_envs=4, n_arms=6)
    per_run.reset(seed=0)
    first = per_run.unwrapped.means.copy()
    assert not np.allclose(first[0], first[1])
    per_run.reset(seed=0)
    assert np.array_equal(first, per_run.unwrapped.means)


def test_next_step_autoreset_after_the_horizon():
    env = gym.make_vec("feedbackgym/BernoulliBandit-v0", num_envs=2, means=[0.2, 0.9], horizon=2)
    env.reset(seed=0)
    a = np.zeros(2, np.int64)
    assert not env.step(a)[3].any()
    assert env.step(a)[3].all()
    _, rewards, _, truncated, info = env.step(a)  # the reset step: no reward, no regret
    assert not truncated.any() and np.all(rewards == 0) and np.all(info["regret"] == 0)
    assert np.all(env.unwrapped.t == 0)


def test_switching_cost_is_charged_in_regret_only_when_switching():
    env = gym.make_vec(
        "feedbackgym/SwitchingCostBandit-v0", num_envs=1, means=[0.5, 0.5], switching_cost=0.2
    )
    env.reset(seed=0)
    regrets = [env.step(np.array([a]))[4]["regret"][0] for a in (0, 0, 1, 1, 0)]
    assert regrets == pytest.approx([0, 0, 0.2, 0, 0.2])


def test_piecewise_stationary_means_change_every_period():
    phases = [[0.9, 0.1], [0.1, 0.9]]
    env = gym.make_vec(
        "feedbackgym/PiecewiseStationaryBandit-v0", num_envs=1, means=phases, change_period=3
    )
    env.reset(seed=0)
    best = [env.step(np.array([0]))[4]["optimal_action"][0] for _ in range(9)]
    assert best == [0, 0, 0, 1, 1, 1, 0, 0, 0]


def test_contextual_means_are_linear_in_the_observed_features():
    env = gym.make_vec("feedbackgym/ContextualLinearBandit-v0", num_envs=3, n_arms=4, dim=3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 4, 3)
    np.testing.assert_allclose(np.linalg.norm(obs, axis=2), 1.0, rtol=1e-5)
    _, _, _, _, info = env.step(np.zeros(3, np.int64))
    theta = env.unwrapped.theta
    np.testing.assert_allclose(info["means"], np.einsum("nkd,nd->nk", obs, theta), atol=1e-5)
    bent = gym.make_vec(
        "feedbackgym/ContextualLinearBandit-v0", num_envs=3, n_arms=4, dim=3, misspecification=0.3
    )
    obs, _ = bent.reset(seed=0)
    _, _, _, _, info = bent.step(np.zeros(3, np.int64))
    linear = np.einsum("nkd,nd->nk", obs, bent.unwrapped.theta)
    assert np.abs(info["means"] - linear).max() > 0.05


def test_a_given_theta_is_one_reproducible_instance():
    kwargs = {"num_envs": 3, "n_arms": 4, "dim": 3, "theta": [0.6, -0.8, 0.0]}
    means = []
    for _ in range(2):
        env = gym.make_vec("feedbackgym/ContextualLinearBandit-v0", misspecification=0.5, **kwargs)
        env.reset(seed=0)
        means.append(env.step(np.zeros(3, np.int64))[4]["means"])
    np.testing.assert_array_equal(means[0], means[1])
    assert np.all(env.unwrapped._w == env.unwrapped._w[0])  # one w for every run


def test_info_means_handed_out_stay_as_they_were_after_autoreset():
    env = gym.make_vec("feedbackgym/BernoulliBandit-v0", num_envs=3, n_arms=4, horizon=1)
    env.reset(seed=0)
    info = env.step(np.zeros(3, np.int64))[4]
    before = info["means"].copy()
    env.step(np.zeros(3, np.int64))  # autoreset: every run draws new means
    assert not np.allclose(env.unwrapped.means, before)
    np.testing.assert_array_equal(info["means"], before)
    assert not info["means"].flags.writeable


@pytest.mark.parametrize(
    ("env_id", "kwargs", "message"),
    [
        (
            "feedbackgym/BernoulliBandit-v0",
            {"means": [0.5, 1.5]},
            "Bernoulli means must be in [0, 1], got 1.5",
        ),
        ("feedbackgym/BernoulliBandit-v0", {"means": [0.5]}, "at least 2"),
        ("feedbackgym/GaussianBandit-v0", {"sigma": 0}, "sigma must be in (0, inf)"),
        ("feedbackgym/BernoulliBandit-v0", {"horizon": 0}, "horizon must be a positive integer"),
        ("feedbackgym/PiecewiseStationaryBandit-v0", {"means": [0.1, 0.2]}, "list of phases"),
        ("feedbackgym/ContextualLinearBandit-v0", {"theta": [1, 2]}, "theta must be a list of 5"),
    ],
)
def test_bad_parameters_raise_one_line_config_errors(env_id, kwargs, message):
    with pytest.raises(ConfigError) as err:
        gym.make_vec(env_id, num_envs=2, **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_out_of_range_actions_are_rejected():
    env = gym.make_vec("feedbackgym/BernoulliBandit-v0", num_envs=2, means=[0.1, 0.2])
    env.reset(seed=0)
    with pytest.raises(ConfigError, match=r"arm indices in \[0, 1\]"):
        env.step(np.array([0, 2]))
