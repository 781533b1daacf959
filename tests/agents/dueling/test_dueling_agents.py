"""Dueling agents: sublinear regret, finding the Condorcet winner, Copeland regret, CoLSTIM."""

from __future__ import annotations

import csv

import gymnasium as gym
import numpy as np
import pytest

import feedbackgym  # noqa: F401  (registers the envs)
from feedbackgym.agents import AGENTS, DuelingAgent, make_agent, register_agent
from feedbackgym.cli import main
from feedbackgym.errors import ConfigError

# Arm 0 beats arm 1 with probability 0.993; a total order (BTL), so arm 0 is the Condorcet winner.
EASY = {"utilities": [1.0, 0.0, -0.2, -0.4], "scale": 5.0}
RUNS = 16
# Explore-then-exploit procedures need a longer horizon before they commit.
HORIZONS = {"interleaved-filter": 4000, "beat-the-mean": 20000, "merge-rucb": 4000}
CONDORCET_AGENTS = [
    "interleaved-filter",
    "beat-the-mean",
    "rucb",
    "rmed1",
    "dts",
    "ccb",
    "merge-rucb",
    "self-sparring",
]


def learn(name, env_id, horizon, metric, seed=0, runs=RUNS, **env_kwargs):
    env = gym.make_vec(env_id, num_envs=runs, horizon=horizon, **env_kwargs)
    agent = make_agent(name, env, seed=seed)
    curve = agent.learn(
        env, horizon, checkpoints=[horizon // 2, horizon], seed=seed, regret_key=f"regret_{metric}"
    )
    return agent, env, curve.mean(axis=0)


@pytest.mark.parametrize("name", CONDORCET_AGENTS)
def test_regret_is_sublinear_and_the_condorcet_winner_is_found(name):
    horizon = HORIZONS.get(name, 2000)
    agent, env, (half, full) = learn(
        name, "feedbackgym/DuelingBandit-v0", horizon, "average", **EASY
    )
    # Linear regret would double from T/2 to T; these agents add far less in the second half.
    assert full - half < 0.5 * half, (half, full)
    # Uniformly random duels cost about 0.31 per step here.
    assert full < 0.5 * 0.31 * horizon
    # At the end every run duels the Condorcet winner against itself (or nearly always so).
    obs, _ = env.reset(seed=1)
    picks = np.concatenate([agent.predict(obs) for _ in range(20)])
    assert (picks == 0).mean() > 0.9


def test_ccb_copeland_regret_is_sublinear_without_a_condorcet_winner():
    _, _, (half, full) = learn(
        "ccb",
        "feedbackgym/DuelingBandit-v0",
        3000,
        "copeland",
        family="cyclic",
        n_arms=6,
        margin=0.3,
        matrix_seed=2,
    )
    assert full - half < 0.5 * half, (half, full)
    # Uniform duels cost 0.3 Copeland regret per step on average: 3 of 6 arms are winners
    # (regret 0) and the other 3 beat one arm of 5 where a winner beats 4 (regret 3/5).
    assert full < 0.3 * 0.25 * 3000


def test_learn_reports_the_first_regret_metric_that_applies():
    env = gym.make_vec("feedbackgym/DuelingBandit-v0", num_envs=2, family="cyclic", n_arms=4)
    curve = make_agent("ccb", env, seed=0).learn(env, 50, seed=0)  # Copeland regret
    assert curve.shape == (2, 50) and np.all(np.diff(curve, axis=1) >= 0)


def test_dts_copeland_regret_is_sublinear_without_a_condorcet_winner():
    _, _, (half, full) = learn(
        "dts",
        "feedbackgym/DuelingBandit-v0",
        3000,
        "copeland",
        family="copeland",
        n_arms=7,
        margin=0.3,
        matrix_seed=5,
    )
    assert full - half < 0.5 * half, (half, full)


@pytest.mark.parametrize("name", CONDORCET_AGENTS)
def test_pairwise_agents_find_the_same_winner_on_dueling_and_two_arm_multi_dueling_envs(name):
    # Plackett-Luce on pairs is BTL with the same scale: both envs hold the same preferences,
    # and an outcome must mean the same in both (1.0: the first arm won).
    horizon = HORIZONS.get(name, 2000)
    regrets = {}
    for env_id, extra in [
        ("feedbackgym/DuelingBandit-v0", {}),
        ("feedbackgym/MultiDuelingBandit-v0", {"subset_size": 2}),
    ]:
        agent, env, (_, full) = learn(name, env_id, horizon, "average", runs=8, **EASY, **extra)
        obs, _ = env.reset(seed=1)
        picks = np.concatenate([agent.predict(obs) for _ in range(20)])
        regrets[env_id] = full
        assert (picks == 0).mean() > 0.9, (env_id, picks)
    # Uniformly random duels cost about 0.31 per step; both envs give far less.
    assert max(regrets.values()) < 0.5 * 0.31 * horizon, regrets


class UniformPairs(DuelingAgent):
    """Uniformly random pairs (a baseline for the tests)."""

    needs_condorcet = False
    contextual = True

    def __init__(self, n_arms, n_runs=1, seed=None, dim=None):
        super().__init__(n_arms, n_runs, seed, dim=dim)

    def predict(self, obs=None):
        return self.rng.integers(0, self.n_arms, size=(self.n_runs, 2))

    def update(self, actions, outcomes, obs=None):
        self.t += 1


def test_colstim_beats_uniform_pairs_on_a_contextual_instance():
    kwargs = {"n_arms": 8, "dim": 4, "prior_seed": 3}
    _, _, (half, full) = learn(
        "colstim", "feedbackgym/ContextualDuelingBandit-v0", 1500, "average", **kwargs
    )
    env = gym.make_vec(
        "feedbackgym/ContextualDuelingBandit-v0", num_envs=RUNS, horizon=1500, **kwargs
    )
    uniform = UniformPairs.from_env(env, seed=0)
    base = uniform.learn(env, 1500, checkpoints=[1500], seed=0, regret_key="regret_average")
    assert full < 0.35 * base.mean()
    assert full - half < 0.8 * half  # ~ sqrt(T): the second half adds less than the first


def test_self_sparring_on_a_multi_dueling_env_finds_the_best_arm():
    env = gym.make_vec(
        "feedbackgym/MultiDuelingBandit-v0",
        num_envs=RUNS,
        utilities=[0.0, 1.0, 0.3, 0.5, 0.2],
        subset_size=3,
        horizon=1500,
    )
    agent = make_agent("self-sparring", env, seed=0)
    assert agent.subset_size == 3
    curve = agent.learn(env, 1500, checkpoints=[750, 1500], seed=0, regret_key="regret_average")
    half, full = curve.mean(axis=0)
    assert full - half < 0.5 * half
    obs, _ = env.reset(seed=0)
    assert (agent.predict(obs) == 1).mean() > 0.8


def test_self_sparring_learns_more_from_full_rankings_than_from_winners():
    def regret(feedback):
        env = gym.make_vec(
            "feedbackgym/MultiDuelingBandit-v0",
            num_envs=RUNS,
            utilities=[0.0, 1.0, 0.8, 0.5, 0.2, 0.6, 0.9],
            subset_size=4,
            feedback=feedback,
            horizon=600,
        )
        agent = make_agent("self-sparring", env, seed=0)
        curve = agent.learn(env, 600, checkpoints=[600], seed=0, regret_key="regret_average")
        return curve.mean(), curve.std() / np.sqrt(RUNS)

    (ranked, ranked_sem), (winners, winners_sem) = regret("ranking"), regret("winner")
    assert ranked < winners - 2 * np.hypot(ranked_sem, winners_sem), (ranked, winners)


@pytest.mark.parametrize("name", [*CONDORCET_AGENTS, "colstim"])
def test_same_seed_same_duels(name):
    env_id = (
        "feedbackgym/ContextualDuelingBandit-v0"
        if name == "colstim"
        else ("feedbackgym/DuelingBandit-v0")
    )

    def duels(seed):
        env = gym.make_vec(env_id, num_envs=6, horizon=300)
        agent = make_agent(name, env, seed=seed)
        obs, _ = env.reset(seed=0)
        seen = []
        for _ in range(300):
            actions = agent.predict(obs)
            next_obs, outcomes, _, _, _ = env.step(actions)
            agent.update(actions, outcomes, obs)
            obs = next_obs
            seen.append(actions)
        return np.array(seen)

    first = duels(1)
    np.testing.assert_array_equal(first, duels(1))
    assert first.shape == (300, 6, 2)


def test_registry_names_and_paper_citations():
    for name in [*CONDORCET_AGENTS, "colstim"]:
        cls = AGENTS.get(name)
        assert cls.feedback_type == "duel"
        assert any(str(year) in cls.__doc__ for year in range(2009, 2023)), name
        assert "eviation" in cls.__doc__, name


def test_condorcet_agent_is_refused_without_a_condorcet_winner():
    env = gym.make_vec("feedbackgym/DuelingBandit-v0", num_envs=2, family="cyclic")
    with pytest.raises(ConfigError, match="assumes a Condorcet winner.*agents that do not: ccb"):
        make_agent("rucb", env)
    make_agent("ccb", env)


def test_agents_refuse_envs_they_cannot_act_in():
    bandit = gym.make_vec("feedbackgym/BernoulliBandit-v0", num_envs=2)
    with pytest.raises(ConfigError, match="learns from duel feedback but the env gives reward"):
        make_agent("rucb", bandit)
    multi = gym.make_vec("feedbackgym/MultiDuelingBandit-v0", num_envs=2, subset_size=4)
    with pytest.raises(ConfigError, match="subsets of 4 arms; agents for it: self-sparring"):
        make_agent("dts", multi)
    contextual = gym.make_vec("feedbackgym/ContextualDuelingBandit-v0", num_envs=2)
    with pytest.raises(ConfigError, match="ignores contexts.*colstim"):
        make_agent("rmed1", contextual)
    duel = gym.make_vec("feedbackgym/DuelingBandit-v0", num_envs=2)
    with pytest.raises(ConfigError, match="needs a contextual dueling env"):
        make_agent("colstim", duel)
    agent = make_agent("rucb", duel)
    with pytest.raises(ConfigError, match="outcomes 0 or 1"):
        agent.update(np.array([[0, 1], [1, 2]]), np.array([0.5, 1.0]))


def test_users_can_register_their_own_dueling_agent():
    register_agent("uniform-pairs-test", UniformPairs)
    env = gym.make_vec("feedbackgym/ContextualDuelingBandit-v0", num_envs=2)
    assert isinstance(make_agent("uniform-pairs-test", env), UniformPairs)


def test_cli_regret_study_with_copeland_metric(tmp_path, capsys):
    out = tmp_path / "study"
    argv = [
        "regret", "--env", "feedbackgym/DuelingBandit-v0", "--env-kwargs",
        '{"family": "cyclic", "n_arms": 5, "matrix_seed": 1}', "--agents", "ccb,dts",
        "--horizon", "200", "--runs", "4", "--seed", "0", "--metric", "copeland",
        "--out", str(out), "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    with open(out / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["agent"] for r in rows] == ["ccb", "dts"]
    assert all(float(r["final_regret_mean"]) >= 0 for r in rows)
    capsys.readouterr()
    bad = [*argv[:6], "rucb", *argv[7:]]
    bad[bad.index("--out") + 1] = str(tmp_path / "other")
    assert main(bad) == 2
    assert "assumes a Condorcet winner" in capsys.readouterr().err
