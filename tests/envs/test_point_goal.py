"""PointGoal (MuJoCo): checkers, seeding, hidden goal, reward and success, rendering, bad input."""

from __future__ import annotations

import os
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from feedbackgym.envs import describe, registered_ids
from feedbackgym.envs.point_goal import PointGoalEnv, max_targets
from feedbackgym.errors import ConfigError

ENV_ID = "feedbackgym/PointGoal-v0"


def run_episode(env, policy, seed):
    obs, _ = env.reset(seed=seed)
    done = False
    while not done:
        obs, _, terminated, truncated, info = env.step(policy(obs))
        done = terminated or truncated
    return info


def test_registered_with_a_time_limit_and_described():
    assert ENV_ID in registered_ids()
    assert describe(ENV_ID).startswith("A point mass on a plane")
    env = gym.make(ENV_ID)
    assert env.spec.max_episode_steps == 100
    env.reset(seed=0)
    steps = 0
    while True:
        _, _, terminated, truncated, _ = env.step(np.zeros(2, np.float32))
        steps += 1
        if terminated or truncated:
            break
    assert steps == 100 and truncated and not terminated


@pytest.mark.parametrize("kwargs", [{}, {"n_targets": 1}, {"n_targets": 5, "goal_index": None}])
def test_passes_gymnasium_and_sb3_checkers(kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither checker has anything to warn about
        gym_check_env(PointGoalEnv(**kwargs), skip_render_check=True)
        sb3_check_env(gym.make(ENV_ID, **kwargs))


def test_observation_layout_and_spaces():
    env = gym.make(ENV_ID, n_targets=4)
    assert env.observation_space.shape == (4 + 2 * 4,)
    assert env.observation_space.dtype == np.float32
    assert env.action_space.shape == (2,)
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    obs, info = env.reset(seed=1)
    unwrapped = env.unwrapped
    assert np.allclose(obs[0:2], unwrapped.data.qpos) and np.all(np.abs(obs[0:2]) <= 0.1)
    assert np.all(obs[2:4] == 0)  # starts at rest
    assert np.allclose(obs[4:].reshape(4, 2), unwrapped.candidates)
    assert np.allclose(info["goal"], unwrapped.candidates[info["goal_index"]])


def test_same_seed_same_observations_other_seed_other_layout():
    def rollout(seed):
        env = gym.make(ENV_ID, goal_index=None)
        env.action_space.seed(seed)
        obs, info = env.reset(seed=seed)
        trace, goals = [obs], [info["goal_index"]]
        for _ in range(3):
            for _step in range(100):
                obs, _, _, _, info = env.step(env.action_space.sample())
                trace.append(obs)
            obs, info = env.reset()
            trace.append(obs)
            goals.append(info["goal_index"])
        return np.array(trace), goals

    (a, goals_a), (b, goals_b), (c, _) = rollout(7), rollout(7), rollout(8)
    assert np.array_equal(a, b) and goals_a == goals_b
    assert not np.allclose(a[0], c[0])


def test_candidates_are_apart_and_away_from_the_start():
    env = PointGoalEnv(n_targets=8, min_separation=0.4)
    for seed in range(50):
        obs, _ = env.reset(seed=seed)
        points = np.vstack([obs[0:2], obs[4:].reshape(8, 2)])
        gaps = np.linalg.norm(points[:, None] - points[None], axis=2)
        assert gaps[~np.eye(9, dtype=bool)].min() >= 0.4 - 1e-6  # float32 rounding
        assert np.all(np.abs(obs[4:]) <= 0.8)


def test_reward_is_minus_distance_to_the_true_goal_and_in_info():
    env = gym.make(ENV_ID, n_targets=3, goal_index=2)
    env.reset(seed=3)
    for _ in range(30):
        obs, reward, _, _, info = env.step(env.action_space.sample())
        goal = obs[4:].reshape(3, 2)[2]
        assert info["goal_index"] == 2
        assert np.allclose(info["goal"], goal, atol=1e-6)
        assert reward == pytest.approx(-np.linalg.norm(obs[0:2] - goal), abs=1e-5)
        assert info["distance"] == pytest.approx(-reward)
        assert info["true_reward"] == reward


def test_success_when_on_the_goal_only():
    env = gym.make(ENV_ID, goal_index=1, success_radius=0.1)
    _, info = env.reset(seed=0)
    assert not info["success"]  # candidates are min_separation away from the start
    unwrapped = env.unwrapped
    other = unwrapped.candidates[0]
    unwrapped.set_state(other.copy(), np.zeros(2))
    _, reward, _, _, info = env.step(np.zeros(2, np.float32))
    assert not info["success"] and reward < -0.3  # on a decoy candidate
    unwrapped.set_state(unwrapped.goal + [0.05, 0.0], np.zeros(2))
    _, reward, _, _, info = env.step(np.zeros(2, np.float32))
    assert info["success"] and info["is_success"] and reward == pytest.approx(-0.05, abs=1e-9)


def test_scripted_expert_succeeds_and_random_play_does_not():
    env = gym.make(ENV_ID, n_targets=3, goal_index=None)
    env.action_space.seed(0)
    expert = env.unwrapped.expert_action
    expert_wins = [run_episode(env, expert, seed)["success"] for seed in range(20)]
    random_wins = [
        run_episode(env, lambda _: env.action_space.sample(), s)["success"] for s in range(20)
    ]
    assert all(expert_wins)
    assert sum(random_wins) <= 2


def test_goal_index_is_not_in_the_observation():
    # The same seed gives the same layout; only the hidden goal differs, so the observations
    # (of the same actions) must be identical for every goal_index.
    traces = []
    for goal_index in range(3):
        env = gym.make(ENV_ID, goal_index=goal_index)
        env.action_space.seed(0)
        obs, _ = env.reset(seed=11)
        trace = [obs] + [env.step(env.action_space.sample())[0] for _ in range(20)]
        traces.append(np.array(trace))
    assert np.array_equal(traces[0], traces[1]) and np.array_equal(traces[0], traces[2])


def test_fixed_goal_index_stays_and_none_varies_per_episode():
    fixed = gym.make(ENV_ID, goal_index=1)
    drawn = gym.make(ENV_ID, goal_index=None, n_targets=3)
    fixed_goals = {fixed.reset(seed=s)[1]["goal_index"] for s in range(30)}
    drawn.reset(seed=0)
    drawn_goals = [drawn.reset()[1]["goal_index"] for _ in range(60)]
    assert fixed_goals == {1}
    assert set(drawn_goals) == {0, 1, 2}


def test_rgb_array_render_has_the_requested_shape(monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", os.environ.get("MUJOCO_GL", "egl"))
    backend = os.environ["MUJOCO_GL"]
    try:  # probe for a headless OpenGL context before testing our own rendering
        from gymnasium.envs.mujoco.mujoco_rendering import _ALL_RENDERERS

        _ALL_RENDERERS[backend](8, 8).free()
    except Exception as exc:  # noqa: BLE001 - any failure means no usable GL here
        pytest.skip(f"no headless OpenGL with MUJOCO_GL={backend}: {exc!r}")
    env = gym.make(ENV_ID, render_mode="rgb_array", width=96, height=64, reveal_goal=True)
    env.reset(seed=0)
    env.step(np.zeros(2, np.float32))
    image = env.render()
    env.close()
    assert image.shape == (64, 96, 3) and image.dtype == np.uint8
    assert image.std() > 0  # not a blank frame


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_targets": 0}, "n_targets must be a positive integer, got 0"),
        ({"n_targets": 2.5}, "n_targets must be a positive integer"),
        (
            {"goal_index": 3},
            r"goal_index must be None \(random per episode\) or an integer in \[0, 2\]",
        ),
        ({"goal_index": -1}, "goal_index must be None"),
        ({"goal_index": "0"}, "goal_index must be None"),
        ({"success_radius": 0}, r"success_radius must be in \(0, 0.2\], got 0"),
        ({"success_radius": 0.3}, r"success_radius must be in \(0, 0.2\], got 0.3"),
        ({"min_separation": -1}, r"min_separation must be in \[0, inf\), got -1"),
        ({"n_targets": 50}, r"n_targets=50 .* use n_targets <= 10"),
        ({"frame_skip": 0}, "frame_skip must be a positive integer"),
        ({"reveal_goal": "yes"}, "reveal_goal must be True or False"),
        ({"render_mode": "ansi"}, "render_mode must be None or one of"),
    ],
)
def test_bad_kwargs_raise_one_line_config_errors(kwargs, message):
    with warnings.catch_warnings(), pytest.raises(ConfigError, match=message) as raised:
        warnings.simplefilter("ignore")  # gymnasium.make's own warning about a bad render_mode
        gym.make(ENV_ID, **kwargs)
    assert "\n" not in str(raised.value)


def test_max_targets_fits_in_practice():
    assert max_targets(0.0) is None
    assert max_targets(0.4) == 10
    env = PointGoalEnv(n_targets=10, min_separation=0.4, success_radius=0.05)
    for seed in range(20):
        env.reset(seed=seed)


def test_bad_action_shape_is_a_config_error():
    env = gym.make(ENV_ID).unwrapped
    env.reset(seed=0)
    with pytest.raises(ConfigError, match="action must be 2 forces"):
        env.step(np.zeros(3))
