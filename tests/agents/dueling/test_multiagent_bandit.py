"""Multi-agent dueling-bandit agents: sublinear team regret from team and from per-agent feedback,
team feedback helping, determinism, and one-line errors for what does not fit."""

from __future__ import annotations

import numpy as np
import pytest

from feedbackgym.agents.dueling.team import (
    TEAM_AGENTS,
    SparringThompson,
    TeamDueling,
    make_team_agent,
)
from feedbackgym.envs.dueling import DuelingBanditVec
from feedbackgym.envs.multiagent.team_duel_v0 import TeamDuelVec
from feedbackgym.errors import ConfigError

HORIZON, RUNS = 2000, 20
AGENTS = [
    (2, "team", "team-self-sparring", {}),
    (2, "team", "team-dueling", {}),
    (2, "team", "team-dueling", {"learner": "dts"}),
    (2, "per-agent", "sparring-ts", {}),
    (2, "per-agent", "sparring-ucb", {}),
    (3, "team", "team-self-sparring", {}),
    (3, "per-agent", "sparring-ts", {}),
]


def team_regret(n_agents, feedback, name, kwargs, seed=0, checkpoints=None):
    env = TeamDuelVec(num_envs=RUNS, n_agents=n_agents, feedback=feedback, horizon=HORIZON)
    agent = make_team_agent(name, env, seed=seed, **kwargs)
    steps = [HORIZON // 10, HORIZON // 2, HORIZON] if checkpoints is None else checkpoints
    return agent.learn(env, HORIZON, steps, seed=seed), agent, env


@pytest.mark.parametrize(("n_agents", "feedback", "name", "kwargs"), AGENTS)
def test_team_regret_is_sublinear_and_the_team_settles_on_the_condorcet_winner(
    n_agents, feedback, name, kwargs
):
    regret, agent, env = team_regret(n_agents, feedback, name, kwargs)
    early, half, final = regret.mean(axis=0)
    assert final / half < 1.6  # linear regret doubles from T/2 to T
    assert (final - half) / (HORIZON / 2) < 0.5 * early / (HORIZON / 10)  # per step, late vs early
    proposals = agent.predict()
    assert proposals.shape == (RUNS, n_agents)
    assert (proposals == env.condorcet_winner[:, None]).mean() > 0.7


@pytest.mark.parametrize("n_agents", [2, 3])
def test_team_feedback_beats_per_agent_feedback_with_the_same_learner(n_agents):
    team = team_regret(n_agents, "team", "team-self-sparring", {})[0][:, -1]
    own = team_regret(n_agents, "per-agent", "sparring-ts", {})[0][:, -1]
    assert team.mean() < own.mean()


@pytest.mark.parametrize(("n_agents", "feedback", "name", "kwargs"), AGENTS[::2])
def test_equal_seeds_give_equal_runs(n_agents, feedback, name, kwargs):
    first = team_regret(n_agents, feedback, name, kwargs, seed=3, checkpoints=[500])[0]
    again = team_regret(n_agents, feedback, name, kwargs, seed=3, checkpoints=[500])[0]
    other = team_regret(n_agents, feedback, name, kwargs, seed=4, checkpoints=[500])[0]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_each_agent_learns_from_its_own_outcome_only_under_per_agent_feedback():
    agent = SparringThompson(n_arms=3, n_agents=2, n_runs=1, seed=0)
    agent.update(np.array([[0, 2]]), np.array([[1.0, 0.0]]))
    assert agent.successes[0, 0].tolist() == [1.0, 0.0, 0.0]  # agent 0: its arm 0 won
    assert agent.failures[1, 0].tolist() == [0.0, 0.0, 1.0]  # agent 1: its arm 2 lost
    assert agent.successes[1, 0].sum() == agent.failures[0, 0].sum() == 0.0


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SparringThompson(5, n_agents=1), r"n_agents must be in \[2, 16\], got 1"),
        (lambda: SparringThompson(1, n_agents=2), "n_arms must be at least 2, got 1"),
        (lambda: TeamDueling(5, n_agents=3), "needs n_agents=2, got 3"),
        (lambda: TeamDueling(5, learner="ucb1"), "learner must be a pairwise dueling agent"),
        (lambda: TeamDueling(5, learner="rucc"), "unknown agent 'rucc'"),
        (lambda: TeamDueling(5, learner_kwargs={"beta": 1}), "learner 'rucb'"),
        (lambda: TEAM_AGENTS.get("sparring-ucb")(5, exploration=0), "exploration must be in"),
        (lambda: make_team_agent("sparing-ts", TeamDuelVec()), "did you mean 'sparring-ts'"),
        (
            lambda: make_team_agent("sparring-ts", TeamDuelVec(feedback="team")),
            "learns from per-agent feedback but the env gives feedback='team'",
        ),
        (
            lambda: make_team_agent("team-self-sparring", TeamDuelVec(feedback="per-agent")),
            "agents for it: sparring-ts, sparring-ucb",
        ),
        (
            lambda: make_team_agent("team-dueling", DuelingBanditVec()),
            "acts in the multi-agent dueling bandit",
        ),
        (
            lambda: make_team_agent("sparring-ts", TeamDuelVec(feedback="per-agent"), alpha=1),
            "alpha",
        ),
    ],
)
def test_bad_arguments_are_one_line_config_errors(build, message):
    with pytest.raises(ConfigError, match=message) as info:
        build()
    assert "\n" not in str(info.value)


def test_feedback_of_the_wrong_kind_is_refused():
    per_agent = SparringThompson(n_arms=3, n_agents=3, n_runs=1)
    with pytest.raises(ConfigError, match="fraction of its 2 duel"):
        per_agent.update(np.array([[0, 1, 2]]), np.array([[2.0, 0.0, 1.0]]))  # a winner index
    env = TeamDuelVec(n_agents=3, feedback="team")
    team = make_team_agent("team-self-sparring", env)
    with pytest.raises(ConfigError, match="needs the team's verdict"):
        team.update(np.array([[0, 1, 2]]), np.zeros((1, 3)))  # no next observation
    pair = TeamDueling(n_arms=3)
    with pytest.raises(ConfigError, match="the same for both agents"):
        pair.update(np.array([[0, 1]]), np.array([[1.0, 0.0]]))  # per-agent outcomes
    with pytest.raises(ConfigError, match=r"shape \(1, 2\)"):
        pair.update(np.array([0, 1, 2]), np.array([1.0, 1.0, 1.0]))


def test_learn_refuses_more_steps_than_the_horizon():
    env = TeamDuelVec(num_envs=2, feedback="per-agent", horizon=10)
    agent = make_team_agent("sparring-ucb", env)
    with pytest.raises(ConfigError, match="beyond the env's horizon 10"):
        agent.learn(env, 11)
