"""The gridworld (exact values, env checkers) and the wrappers that attach feedback to envs."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import feedbackgym  # noqa: F401
from feedbackgym.envs.gridworld import GridWorld
from feedbackgym.errors import ConfigError
from feedbackgym.feedback import (
    CorrectionFeedback,
    DelayedFeedback,
    HideReward,
    LanguageTeacher,
    OracleTeacher,
    PreferenceFeedback,
    ScoreFeedback,
    TamerTeacher,
    make_delay,
)


def test_gridworld_passes_gymnasium_and_sb3_env_checkers():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gym_check_env(gym.make("feedbackgym/GridWorld-v0").unwrapped, skip_render_check=True)
        sb3_check_env(gym.make("feedbackgym/GridWorld-v0"), warn=False)
        gym_check_env(GridWorld(slip=0.3))


def test_optimal_values_satisfy_the_bellman_optimality_equation():
    env = GridWorld(slip=0.2, gamma=0.9)
    v, q = env.optimal_values()
    np.testing.assert_allclose(q, env.rewards + env.gamma * env.transitions @ v, atol=1e-9)
    np.testing.assert_allclose(v, q.max(axis=1))
    greedy = np.eye(4)[q.argmax(axis=1)]
    v_greedy, _ = env.policy_values(greedy)
    np.testing.assert_allclose(v_greedy, v, atol=1e-8)
    v_uniform, _ = env.policy_values(np.full((env.n_states, 4), 0.25))
    assert np.all(v_uniform <= v + 1e-9)


def test_greedy_optimal_policy_reaches_the_goal_and_info_reports_the_optimal_action():
    env = gym.make("feedbackgym/GridWorld-v0")
    _, q = env.unwrapped.optimal_values()
    obs, _ = env.reset(seed=0)
    total = 0.0
    for _ in range(20):
        obs, reward, terminated, truncated, info = env.step(int(q[obs].argmax()))
        total += reward
        if terminated:
            break
    assert terminated and reward == 1.0
    assert "optimal_action" in info and "true_reward" in info


def test_gridworld_bad_input():
    with pytest.raises(ConfigError, match="slip must be in"):
        GridWorld(slip=1.5)
    with pytest.raises(ConfigError, match="exactly one 'S'"):
        GridWorld(layout=["..G", "..."])
    with pytest.raises(ConfigError, match="policy must be a"):
        GridWorld().policy_values(np.ones((3, 4)))


def rollout(env, steps, seed=0):
    """Random actions (seeded), returning per-step (reward, info)."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    out = []
    for _ in range(steps):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        out.append((reward, info))
        if terminated or truncated:
            env.reset()
    return out


def test_hide_reward_gives_zero_and_keeps_the_true_reward_in_info():
    plain = rollout(gym.make("feedbackgym/GridWorld-v0", slip=0.2), 60)
    hidden = rollout(HideReward(gym.make("feedbackgym/GridWorld-v0", slip=0.2)), 60)
    assert all(reward == 0.0 for reward, _ in hidden)
    assert [info["true_reward"] for _, info in hidden] == [r for r, _ in plain]


def test_score_feedback_delivers_each_lagged_score_once_within_the_episode():
    env = ScoreFeedback(
        gym.make("feedbackgym/GridWorld-v0", max_steps=30),
        TamerTeacher(min_lag=1, max_lag=4, rng=0),
    )
    env.reset(seed=0)
    env.action_space.seed(0)
    rewards, true, steps = [], [], []
    for _ in range(30):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        rewards.append(reward)
        true.append(info["true_reward"])
        steps.extend(item["step"] for item in info["feedback"])
        if terminated or truncated:
            break
    assert sorted(steps) == list(range(len(true)))  # every step judged, delivered once
    assert rewards[0] == 0.0  # nothing arrives before the reaction lag
    assert sum(rewards) == pytest.approx(sum(true))


def test_delayed_feedback_holds_items_and_flush_returns_the_rest_exactly_once():
    inner = ScoreFeedback(gym.make("feedbackgym/GridWorld-v0"), TamerTeacher(rng=0))
    env = DelayedFeedback(inner, make_delay("uniform", low=0, high=15), rng=1)
    seen = []
    for _, info in rollout(env, 120):
        seen.extend(item["step"] for item in info["feedback"])
    seen.extend(item["step"] for item in env.flush())
    assert sorted(seen) == list(range(120))


def test_correction_feedback_gives_only_a_sentence():
    base = gym.make("feedbackgym/GridWorld-v0")
    _, q = base.unwrapped.optimal_values()
    env = CorrectionFeedback(
        base, LanguageTeacher(kinds=("fp",), rng=0), lambda s: int(q[s].argmax())
    )
    env.reset(seed=0)
    _, reward, _, _, info = env.step(3)  # left, from the start cell; the expert goes up or right
    assert reward == 0.0 and "true_reward" in info
    (item,) = info["feedback"]
    assert isinstance(item["value"], str) and item["value"]


def test_preference_feedback_hides_rewards_and_labels_segments_by_their_true_return():
    env = PreferenceFeedback(gym.make("feedbackgym/GridWorld-v0", slip=0.3), OracleTeacher(), 5)
    true = [info["true_reward"] for reward, info in rollout(env, 200)]
    assert env.n_segments >= 10
    obs, actions = env.segments()
    assert obs.shape == actions.shape == (env.n_segments, 5)
    first, second = np.arange(0, 8, 2), np.arange(1, 9, 2)
    labels = env.ask(first, second)
    returns = np.stack(env._rew_list).sum(axis=1)
    expected = np.sign(returns[first] - returns[second]) / 2 + 0.5
    np.testing.assert_array_equal(labels, expected)
    assert sum(true) != 0.0
    with pytest.raises(ConfigError, match="segment indices"):
        env.ask([0], [10_000])
