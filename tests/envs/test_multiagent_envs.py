"""Our own multi-agent envs: PettingZoo's API tests, the feedback they give, the hidden truth in
``infos``, determinism, the commons' disagreement between own and team reward, and SuperSuit."""

from __future__ import annotations

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test

from feedbackgym.envs.multiagent import (
    commons_v0,
    describe_multiagent,
    is_multiagent,
    make_parallel_env,
    team_duel_v0,
    team_reward,
)
from feedbackgym.envs.multiagent.team_duel_v0 import TeamDuelVec, observation_layout
from feedbackgym.errors import ConfigError

# Arm 0 beats every arm surely, arm 1 beats 2 and 3 surely, arm 2 beats 3 surely.
SURE = [
    [0.5, 1.0, 1.0, 1.0],
    [0.0, 0.5, 1.0, 1.0],
    [0.0, 0.0, 0.5, 1.0],
    [0.0, 0.0, 0.0, 0.5],
]


@pytest.mark.parametrize(
    ("module", "kwargs"),
    [
        (team_duel_v0, {"n_agents": 2, "feedback": "team"}),
        (team_duel_v0, {"n_agents": 3, "feedback": "team"}),
        (team_duel_v0, {"n_agents": 3, "feedback": "per-agent", "matrix_seed": None}),
        (commons_v0, {}),
        (commons_v0, {"n_agents": 2, "reward": "team", "render_mode": "rgb_array"}),
    ],
)
def test_parallel_and_aec_api_tests_pass(module, kwargs):
    parallel_api_test(module.parallel_env(horizon=30, **kwargs), num_cycles=60)
    api_test(module.env(horizon=10, **kwargs), num_cycles=30)


def test_both_envs_are_registered_and_described():
    for env_id, module in [
        ("feedbackgym/team_duel_v0", team_duel_v0),
        ("feedbackgym/commons_v0", commons_v0),
    ]:
        assert is_multiagent(env_id)
        assert describe_multiagent(env_id) == module.__doc__.splitlines()[0]
        assert isinstance(make_parallel_env(env_id, n_agents=2), module.raw_env)
    with pytest.raises(ConfigError, match="valid keywords: n_agents"):
        make_parallel_env("feedbackgym/team_duel_v0", agents=2)


def _rollout(env, seed: int, steps: int) -> list:
    """Observations, rewards and infos of ``steps`` steps of seeded random actions."""
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = [obs]
    for _ in range(steps):
        actions = {a: int(rng.integers(env.action_space(a).n)) for a in env.agents}
        out.append(env.step(actions))
    return out


@pytest.mark.parametrize(
    ("module", "kwargs"),
    [
        (team_duel_v0, {"n_agents": 3, "matrix_seed": None}),
        (commons_v0, {"growth_noise": 0.3}),
    ],
)
def test_a_seeded_reset_replays_the_episode(module, kwargs):
    env = module.parallel_env(horizon=20, **kwargs)
    first, again = _rollout(env, 7, 15), _rollout(env, 7, 15)
    other = _rollout(module.parallel_env(horizon=20, **kwargs), 8, 15)
    assert repr(first) == repr(again)
    assert repr(first) != repr(other)


def test_team_duel_infos_hold_the_hidden_team_and_agent_rewards_and_regret():
    env = team_duel_v0.parallel_env(n_agents=3, n_arms=6, horizon=50)
    env.reset(seed=0)
    matrix, best = env.preference_matrix, env.condorcet_winner
    assert np.all(matrix[best][np.arange(6) != best] > 0.5)
    delta = matrix[best] - 0.5
    rng = np.random.default_rng(0)
    for _ in range(20):
        proposals = rng.integers(0, 6, size=3)
        actions = dict(zip(env.agents, proposals.tolist(), strict=True))
        _, rewards, _, _, infos = env.step(actions)
        teams = {info["team_reward"] for info in infos.values()}
        assert len(teams) == 1
        assert infos["agent_0"]["regret"] == pytest.approx(delta[proposals].mean())
        assert teams.pop() == pytest.approx(-delta[proposals].mean())
        assert infos["agent_0"]["regret_strong"] == pytest.approx(delta[proposals].max())
        for i, agent in enumerate(env.possible_agents):
            assert infos[agent]["agent_reward"] == pytest.approx(-delta[proposals[i]])
            assert infos[agent]["condorcet_winner"] == best
        assert team_reward(rewards, infos) == pytest.approx(-delta[proposals].mean())


def test_team_feedback_shows_every_agent_the_whole_verdict():
    env = team_duel_v0.parallel_env(n_agents=3, preference_matrix=SURE, feedback="team")
    env.reset(seed=0)
    # Proposals 2, 0, 1: agent 1 (arm 0) beats both, agent 2 (arm 1) beats agent 0 (arm 2).
    obs, rewards, _, _, _ = env.step({"agent_0": 2, "agent_1": 0, "agent_2": 1})
    assert rewards == {"agent_0": 1.0, "agent_1": 1.0, "agent_2": 1.0}  # the winner: agent 1
    lay = observation_layout(3, 4)
    seen = obs["agent_2"]
    np.testing.assert_array_equal(seen[lay["own_proposal"]], [0, 1, 0, 0])
    np.testing.assert_array_equal(seen[lay["other_proposals"]], [0, 0, 1, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(seen[lay["own_outcomes"]], [1, 0])  # beat agent 0, lost to 1
    np.testing.assert_array_equal(seen[lay["other_outcomes"]], [0])  # agent 0 lost to agent 1
    # Two agents: the verdict is 1.0 when agent 0's proposal won, for both agents.
    pair = team_duel_v0.parallel_env(n_agents=2, preference_matrix=SURE, feedback="team")
    pair.reset(seed=0)
    assert pair.step({"agent_0": 3, "agent_1": 1})[1] == {"agent_0": 0.0, "agent_1": 0.0}
    assert pair.step({"agent_0": 0, "agent_1": 1})[1] == {"agent_0": 1.0, "agent_1": 1.0}


def test_per_agent_feedback_tells_each_agent_only_its_own_outcome():
    env = team_duel_v0.parallel_env(n_agents=3, preference_matrix=SURE, feedback="per-agent")
    env.reset(seed=0)
    obs, rewards, _, _, _ = env.step({"agent_0": 2, "agent_1": 0, "agent_2": 1})
    assert rewards == {"agent_0": 0.0, "agent_1": 1.0, "agent_2": 0.5}  # fraction of duels won
    lay = observation_layout(3, 4)
    seen = obs["agent_2"]
    np.testing.assert_array_equal(seen[lay["own_proposal"]], [0, 1, 0, 0])
    np.testing.assert_array_equal(seen[lay["own_outcomes"]], [1, 0])
    assert not seen[lay["other_proposals"]].any()
    assert not seen[lay["other_outcomes"]].any()


def test_team_duel_outcomes_follow_the_preference_matrix():
    runs = 4000
    env = TeamDuelVec(num_envs=runs, n_agents=2, n_arms=5, horizon=10)
    env.reset(seed=0)
    proposals = np.tile([0, 3], (runs, 1))
    _, rewards, _, _, _ = env.step(proposals)
    p = env.preference_matrix[0, 0, 3]
    assert rewards[:, 0].mean() == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / runs))


def test_team_duel_episodes_end_by_truncation_after_the_horizon():
    env = team_duel_v0.parallel_env(horizon=3)
    env.reset(seed=0)
    for step in range(3):
        _, _, terminated, truncated, _ = env.step(dict.fromkeys(env.agents, 0))
        assert not any(terminated.values())
        assert all(truncated.values()) == (step == 2)
    assert env.agents == []
    with pytest.raises(ConfigError, match="call reset"):
        env.step({"agent_0": 0, "agent_1": 0})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"feedback": "both"}, "feedback must be one of team, per-agent, got 'both'"),
        ({"n_agents": 1}, r"n_agents must be in \[2, 16\], got 1"),
        ({"family": "cyclic"}, "family must be one with a Condorcet winner"),
        (
            {"preference_matrix": [[0.5, 0.8, 0.3], [0.2, 0.5, 0.9], [0.7, 0.1, 0.5]]},
            "no Condorcet",
        ),
        ({"utilities": [0.1, "x"]}, "utilities must be a list"),
        ({"scale": 0}, r"scale must be in \(0, inf\), got 0"),
        ({"render_mode": "human"}, "render_mode must be None"),
    ],
)
def test_team_duel_refuses_bad_arguments_in_one_line(kwargs, message):
    with pytest.raises(ConfigError, match=message) as info:
        team_duel_v0.parallel_env(**kwargs)
    assert "\n" not in str(info.value)


def test_team_duel_refuses_bad_actions():
    env = team_duel_v0.parallel_env(n_arms=4)
    env.reset(seed=0)
    with pytest.raises(ConfigError, match=r"arm indices in \[0, 3\], got 4"):
        env.step({"agent_0": 4, "agent_1": 0})
    with pytest.raises(ConfigError, match="missing for agent_1"):
        env.step({"agent_0": 0})


# ----- commons ---------------------------------------------------------------------------------
def _commons_returns(policy: str, seed: int, **kwargs) -> tuple[float, np.ndarray]:
    """Team return and each agent's own return of one episode of a scripted policy."""
    env = commons_v0.parallel_env(**kwargs)
    env.reset(seed=seed)
    team, own = 0.0, np.zeros(env.n_agents)
    while env.agents:
        actions = env.sustainable_actions()
        if policy == "greedy":
            actions = env.greedy_actions()
        elif policy == "one greedy":
            actions["agent_0"] = env.n_levels - 1
        _, rewards, _, _, infos = env.step(actions)
        team += team_reward(rewards, infos)
        own += [infos[a]["agent_reward"] for a in env.possible_agents]
        assert own.mean() == pytest.approx(team)  # the team reward: the mean harvest
    return team, own


def test_commons_greedy_harvest_collapses_the_stock_and_the_team_return():
    greedy = [_commons_returns("greedy", s) for s in range(5)]
    sustainable = [_commons_returns("sustainable", s) for s in range(5)]
    greedy_team = np.mean([team for team, _ in greedy])
    sustainable_team = np.mean([team for team, _ in sustainable])
    assert greedy_team < 0.3 * sustainable_team
    env = commons_v0.parallel_env(growth_noise=0.0)
    env.reset(seed=0)
    while env.agents:
        _, _, _, _, infos = env.step(env.greedy_actions())
    assert infos["agent_0"]["stock"] == 0.0  # harvested to nothing, it does not regrow


def test_commons_own_reward_favours_greed_the_team_reward_restraint():
    # One greedy agent among sustainable ones: it earns more than they do and more than it
    # would by restraint (own reward says: take more), while the team return falls.
    mixed = [_commons_returns("one greedy", s) for s in range(5)]
    sustainable = [_commons_returns("sustainable", s) for s in range(5)]
    greedy_own = np.mean([own[0] for _, own in mixed])
    assert greedy_own > np.mean([own[1:].mean() for _, own in mixed])
    assert greedy_own > np.mean([own[0] for _, own in sustainable])
    assert np.mean([team for team, _ in mixed]) < np.mean([team for team, _ in sustainable])


def test_commons_rations_requests_beyond_the_stock():
    env = commons_v0.parallel_env(n_agents=2, initial_stock=0.1, growth_noise=0.0)
    env.reset(seed=0)
    _, rewards, _, _, infos = env.step({"agent_0": 4, "agent_1": 2})  # asks 0.1 + 0.05 of 0.1
    assert infos["agent_0"]["harvest"] == pytest.approx(0.1 * 2 / 3)
    assert infos["agent_1"]["harvest"] == pytest.approx(0.1 / 3)
    assert rewards["agent_0"] == pytest.approx(2 / 3)  # in units of max_take
    team = commons_v0.parallel_env(n_agents=2, reward="team")
    team.reset(seed=0)
    rewards = team.step({"agent_0": 4, "agent_1": 0})[1]
    assert rewards["agent_0"] == rewards["agent_1"] == pytest.approx(0.5)


def test_commons_renders_an_image():
    env = commons_v0.parallel_env(render_mode="rgb_array")
    env.reset(seed=0)
    env.step(env.greedy_actions())
    image = env.render()
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_agents": 1}, "n_agents must be at least 2, got 1"),
        ({"max_take": 0}, r"max_take must be in \(0, 1\], got 0"),
        ({"initial_stock": [0.9, 0.2]}, "low <= high"),
        ({"reward": "mine"}, "reward must be one of per-agent, team, got 'mine'"),
        ({"render_mode": "human"}, "render_mode must be None or 'rgb_array'"),
    ],
)
def test_commons_refuses_bad_arguments_in_one_line(kwargs, message):
    with pytest.raises(ConfigError, match=message) as info:
        commons_v0.parallel_env(**kwargs)
    assert "\n" not in str(info.value)


def test_commons_vectorises_with_supersuit_for_sb3():
    ss = pytest.importorskip("supersuit")
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecEnv

    n_agents, copies, horizon = 3, 2, 5
    env = commons_v0.parallel_env(n_agents=n_agents, horizon=horizon)
    venv = ss.concat_vec_envs_v1(
        ss.pettingzoo_env_to_vec_env_v1(env), copies, num_cpus=0, base_class="stable_baselines3"
    )
    assert isinstance(venv, VecEnv)
    assert venv.num_envs == copies * n_agents
    obs = venv.reset()
    assert obs.shape == (copies * n_agents, 4)
    for step in range(horizon):
        obs, rewards, dones, infos = venv.step(np.full(venv.num_envs, 1))
        assert rewards.shape == (venv.num_envs,)
        assert dones.all() == (step == horizon - 1)  # every agent stays to the end
        assert all("team_reward" in info for info in infos)
    model = PPO("MlpPolicy", venv, n_steps=16, batch_size=48, n_epochs=1, device="cpu")
    model.learn(total_timesteps=96)
    venv.close()
