"""DelayedConsequence-v0: a shortcut that pays now and costs later; hindsight vs foresight."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import feedbackgym  # noqa: F401  (registers the envs)
from feedbackgym.envs.hindsight import (
    SHORTCUT,
    STEADY,
    DelayedConsequenceEnv,
    misleading_pairs,
)
from feedbackgym.errors import ConfigError
from feedbackgym.feedback import OracleTeacher
from feedbackgym.feedback.base import Segments
from feedbackgym.feedback.delays import HindsightTeacher

ENV_ID = "feedbackgym/DelayedConsequence-v0"


def test_the_env_passes_gymnasiums_and_sb3s_checkers():
    env = gym.make(ENV_ID)
    check_env(env.unwrapped)
    sb3_check_env(env.unwrapped)
    check_env(gym.make(ENV_ID, horizon=12, delay=3).unwrapped)


def episode(env: DelayedConsequenceEnv, policy) -> tuple[list[float], list[dict]]:
    obs, _ = env.reset(seed=0)
    rewards, infos, done = [], [], False
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        rewards.append(reward)
        infos.append(info)
        done = terminated or truncated
    return rewards, infos


def test_a_shortcut_pays_now_and_its_penalty_lands_delay_steps_later():
    env = DelayedConsequenceEnv(horizon=20, delay=5)
    rewards, infos = episode(env, lambda obs: SHORTCUT if obs[0] == 0 else STEADY)
    assert rewards[0] == 1.0 and rewards[5] == 0.5 - 2.0
    assert all(r == 0.5 for i, r in enumerate(rewards) if i not in (0, 5))
    assert infos[0]["debt"] == 2.0 and infos[5]["penalty"] == 2.0 and infos[5]["debt"] == 0.0
    assert [info["true_reward"] for info in infos] == rewards
    assert len(rewards) == 20


def test_the_steady_policy_is_best_and_penalties_due_after_the_end_are_charged_at_it():
    env = DelayedConsequenceEnv()
    steady, _ = episode(env, lambda obs: STEADY)
    shortcut, infos = episode(env, lambda obs: SHORTCUT)
    assert sum(steady) == 25.0 and sum(shortcut) == -50.0
    # The last step: its own due penalty and the 10 due after the end.
    assert infos[-1]["penalty"] == 2.0 * 11 and infos[-1]["debt"] == 0.0


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(ConfigError, match="penalty must be > 0"):
        DelayedConsequenceEnv(penalty=0.0)
    with pytest.raises(ConfigError, match="delay must be a positive integer"):
        DelayedConsequenceEnv(delay=0)
    with pytest.raises(ConfigError, match="length \\+ after must be <= horizon"):
        misleading_pairs(DelayedConsequenceEnv(horizon=15), 10)


def as_segments(part: dict[str, np.ndarray], start: int, stop: int) -> Segments:
    return Segments(
        part["rewards"][None, start:stop],
        part["obs"][None, start:stop],
        part["actions"][None, start:stop],
    )


def test_hindsight_and_foresight_teachers_disagree_on_the_misleading_pair():
    shortcuts, steady = misleading_pairs(DelayedConsequenceEnv(), 10)
    a, b = as_segments(shortcuts, 0, 10), as_segments(steady, 0, 10)
    a_after, b_after = as_segments(shortcuts, 10, 20), as_segments(steady, 10, 20)
    foresight = OracleTeacher(rng=0)
    hindsight = HindsightTeacher(OracleTeacher(rng=0))
    assert foresight.prefer(a, b)[0] == 1.0  # the shortcuts look better
    assert hindsight.prefer(a, b, a_after, b_after)[0] == 0.0  # and are worse
    # Without the consequences, the hindsight teacher is the foresight one.
    assert hindsight.prefer(a, b)[0] == 1.0


def test_on_random_pairs_hindsight_follows_the_actions_worth_and_foresight_does_not():
    """Pairs of 10-step segments of random play, each with the 10 steps that followed: the
    hindsight oracle prefers the segment with fewer shortcuts (each worth -1 against 0.5) far
    more often than the foresight oracle, which mostly prefers the one with more."""
    env = DelayedConsequenceEnv()
    rng = np.random.default_rng(0)
    rows = {"rewards": [], "shortcuts": []}
    for seed in range(40):
        env.reset(seed=seed)
        rewards, actions = [], rng.integers(2, size=env.horizon)
        for action in actions:
            rewards.append(env.step(int(action))[1])
        for start in range(10, 30, 5):  # segment [start, start + 10), then 10 steps after
            rows["rewards"].append(rewards[start : start + 20])
            rows["shortcuts"].append(actions[start : start + 10].sum())
    rewards = np.asarray(rows["rewards"])
    shortcuts = np.asarray(rows["shortcuts"])
    i, j = rng.integers(len(rewards), size=(2, 400))
    differ = shortcuts[i] != shortcuts[j]
    i, j = i[differ], j[differ]
    better = (shortcuts[i] < shortcuts[j]).astype(float)  # 1: the first is truly better
    foresight = OracleTeacher(rng=0).prefer(rewards[i, :10], rewards[j, :10])
    hindsight = HindsightTeacher(OracleTeacher(rng=0)).prefer(
        rewards[i, :10], rewards[j, :10], rewards[i, 10:], rewards[j, 10:]
    )
    # (Random play: the steps after a segment carry their own shortcuts' rewards as noise.)
    assert np.mean(hindsight == better) > 0.6
    assert np.mean(foresight == better) < 0.45
    assert np.mean(hindsight == better) - np.mean(foresight == better) > 0.25
    assert np.mean(hindsight != foresight) > 0.3
