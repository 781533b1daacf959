"""Bandit agents: sublinear regret, determinism, exact kernels, registry, env compatibility."""

from __future__ import annotations

import math

import gymnasium as gym
import numba
import numpy as np
import pytest

from feedbackgym.agents import AGENTS, BanditAgent, make_agent, register_agent
from feedbackgym.agents.bandits import kernels
from feedbackgym.envs import BanditVectorEnv
from feedbackgym.errors import ConfigError
from tests.conftest import EASY_MEANS

T = 3000
RUNS = 40


def run(agent_name, env_id, seed=0, runs=RUNS, horizon=T, **env_kwargs):
    env = gym.make_vec(env_id, num_envs=runs, horizon=horizon, **env_kwargs)
    agent = make_agent(agent_name, env, seed=seed)
    return agent.learn(env, horizon, checkpoints=[horizon // 2, horizon], seed=seed).mean(axis=0)


CASES = [
    ("epsilon-greedy", "feedbackgym/BernoulliBandit-v0", {"means": EASY_MEANS}),
    ("ucb1", "feedbackgym/BernoulliBandit-v0", {"means": EASY_MEANS}),
    ("kl-ucb", "feedbackgym/BernoulliBandit-v0", {"means": EASY_MEANS}),
    ("thompson", "feedbackgym/BernoulliBandit-v0", {"means": EASY_MEANS}),
    ("thompson", "feedbackgym/GaussianBandit-v0", {"means": [1.0, 0.0, -0.5], "sigma": 0.5}),
    ("exp3", "feedbackgym/BernoulliBandit-v0", {"means": EASY_MEANS}),
    ("linucb", "feedbackgym/ContextualLinearBandit-v0", {"prior_seed": 1}),
    ("lin-ts", "feedbackgym/ContextualLinearBandit-v0", {"prior_seed": 1}),
]


@pytest.mark.parametrize(("agent", "env_id", "kwargs"), CASES)
def test_regret_is_sublinear_on_an_easy_instance(agent, env_id, kwargs):
    half, full = run(agent, env_id, **kwargs)
    # Linear regret would double from T/2 to T; log or sqrt(T) regret grows far less.
    assert full - half < 0.5 * half, (half, full)
    # ... and the agent does far better than pulling arms uniformly at random.
    env = gym.make_vec(env_id, num_envs=RUNS, horizon=T, **kwargs)
    env.reset(seed=0)
    uniform = sum(env.step(env.action_space.sample())[4]["regret"].mean() for _ in range(200))
    assert full < 0.25 * uniform * T / 200


def test_fixed_epsilon_greedy_has_linear_regret():
    env = gym.make_vec(
        "feedbackgym/BernoulliBandit-v0", num_envs=RUNS, means=EASY_MEANS, horizon=2000
    )
    agent = make_agent("epsilon-greedy", env, seed=0, epsilon=0.2)
    half, full = agent.learn(env, 2000, checkpoints=[1000, 2000], seed=0).mean(axis=0)
    assert full - half > 0.8 * half


@pytest.mark.parametrize("name", ["epsilon-greedy", "ucb1", "kl-ucb", "thompson", "exp3"])
def test_same_seed_same_actions(name):
    def actions(seed):
        env = gym.make_vec("feedbackgym/BernoulliBandit-v0", num_envs=8, means=EASY_MEANS)
        agent = make_agent(name, env, seed=seed)
        obs, _ = env.reset(seed=0)
        taken = []
        for _ in range(300):
            a = agent.predict(obs)
            obs, r, _, _, _ = env.step(a)
            agent.update(a, r, obs)
            taken.append(a)
        return np.stack(taken)

    assert np.array_equal(actions(1), actions(1))
    if name not in ("ucb1", "kl-ucb"):  # index policies are deterministic given the rewards
        assert not np.array_equal(actions(1), actions(2))


def test_thompson_kernel_gives_the_same_draws_on_any_number_of_threads():
    rng = np.random.default_rng(0)
    alpha = kernels.gamma_constants(rng.integers(1, 50, (64, 5)).astype(float))
    beta = kernels.gamma_constants(rng.integers(1, 50, (64, 5)).astype(float))
    picks = []
    before = numba.get_num_threads()
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            streams = np.arange(64, dtype=np.uint64)
            out = np.zeros(64, np.int64)
            kernels.beta_thompson_choose(alpha, beta, streams, out)
            picks.append(out.copy())
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(picks[0], picks[1])


def test_gamma_and_normal_samplers_have_the_right_distribution():
    # The sample mean and variance of Beta(a, b) draws fall within 5 standard errors.
    counts = np.array([[2.0, 30.0, 400.0]])
    failures = np.array([[5.0, 10.0, 900.0]])
    alpha, beta = kernels.gamma_constants(counts), kernels.gamma_constants(failures)
    n = 20000
    draws = np.empty((n, 3))
    streams = np.array([7], dtype=np.uint64)
    sample_all = kernels.beta_draws
    sample_all(alpha, beta, streams, draws)
    a, b = counts[0], failures[0]
    mean = a / (a + b)
    var = a * b / ((a + b) ** 2 * (a + b + 1))
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 5 * np.sqrt(var / n))
    assert np.all(np.abs(draws.var(axis=0) / var - 1) < 5 * math.sqrt(2 / n))


def _kl(p, q):
    p, q = np.clip(p, 1e-15, 1 - 1e-15), np.clip(q, 1e-15, 1 - 1e-15)
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


def test_kl_ucb_picks_the_arm_with_the_largest_exact_index():
    env = gym.make_vec("feedbackgym/BernoulliBandit-v0", num_envs=200, means=EASY_MEANS)
    agent = make_agent("kl-ucb", env, seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(600):
        actions = agent.predict(obs)
        if agent.t.min() >= agent.n_arms:
            p = agent.sums / agent.counts
            level = np.log(agent.t)[:, None] / agent.counts
            lo, hi = p.copy(), np.ones_like(p)
            for _ in range(60):  # bisection: the reference index
                mid = (lo + hi) / 2
                ok = _kl(p, mid) <= level
                lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
            top2 = np.sort(lo, axis=1)[:, -2:]
            clear = top2[:, 1] - top2[:, 0] > 1e-5
            assert np.array_equal(actions[clear], lo.argmax(axis=1)[clear])
        obs, rewards, _, _, _ = env.step(actions)
        agent.update(actions, rewards, obs)


def test_a_user_agent_joins_the_registry_and_runs():
    @register_agent("always-first-test")
    class AlwaysFirst(BanditAgent):
        """Pulls arm 0: a user-defined agent."""

        def predict(self, obs=None):
            return np.zeros(self.n_runs, dtype=np.int64)

        def update(self, actions, rewards, obs=None):
            self.t += 1

    env = gym.make_vec("feedbackgym/BernoulliBandit-v0", num_envs=3, means=[0.2, 0.8])
    regret = make_agent("always-first-test", env).learn(env, 10, checkpoints=[10])
    np.testing.assert_allclose(regret[:, 0], 6.0)
    assert "always-first-test" in AGENTS


@pytest.mark.parametrize(
    ("agent", "env_id", "message"),
    [
        ("kl-ucb", "feedbackgym/GaussianBandit-v0", "needs rewards in [0, 1]"),
        ("linucb", "feedbackgym/BernoulliBandit-v0", "needs a contextual env"),
        ("ucb1", "feedbackgym/ContextualLinearBandit-v0", "ignores contexts"),
        ("nope", "feedbackgym/BernoulliBandit-v0", "unknown agent 'nope'"),
    ],
)
def test_agent_env_mismatches_are_one_line_errors(agent, env_id, message):
    env = gym.make_vec(env_id, num_envs=2)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        make_agent(agent, env)


def test_bad_agent_parameters_name_the_parameter():
    env = gym.make_vec("feedbackgym/BernoulliBandit-v0", num_envs=2)
    with pytest.raises(ConfigError, match=r"epsilon must be in \[0, 1\], got 1.5"):
        make_agent("epsilon-greedy", env, epsilon=1.5)
    with pytest.raises(ConfigError, match="has no parameter 'alpha'; valid"):
        make_agent("kl-ucb", env, alpha=1.0)


@pytest.mark.parametrize(
    ("env_id", "name"),
    [("feedbackgym/BernoulliBandit-v0", "ucb1"), ("feedbackgym/DuelingBandit-v0", "rucb")],
)
def test_learn_refuses_to_run_past_the_env_horizon(env_id, name):
    env = gym.make_vec(env_id, num_envs=2, horizon=50)
    agent = make_agent(name, env, seed=0)
    with pytest.raises(ConfigError, match=r"total_steps=51 .*horizon 50") as err:
        agent.learn(env, 51)
    assert "\n" not in str(err.value)
    assert agent.learn(env, 50, checkpoints=[50]).shape == (2, 1)


def test_learn_checkpoints_in_any_order_and_out_of_range_ones_are_refused():
    env = gym.make_vec("feedbackgym/BernoulliBandit-v0", num_envs=4, means=EASY_MEANS)

    def curve(checkpoints):
        return make_agent("ucb1", env, seed=0).learn(env, 30, checkpoints=checkpoints, seed=0)

    full = curve(None)
    np.testing.assert_array_equal(curve([30, 5, 12, 5]), full[:, [29, 4, 11, 4]])
    for bad in ([0, 10], [10, 31], [2.5]):
        with pytest.raises(ConfigError, match="checkpoints must be") as err:
            curve(bad)
        assert "1 and total_steps (30)" in str(err.value) and "\n" not in str(err.value)


class NoisyUserBandit(BanditVectorEnv):
    """A user env with Gaussian rewards of size 10 that does not declare its reward family."""

    def _mean_rewards(self):
        return np.zeros((self.num_envs, self.n_arms))

    def _draw_rewards(self, means, actions):
        return 10.0 * self.np_random.standard_normal(self.num_envs)


def test_unit_reward_agents_refuse_a_user_env_that_does_not_declare_its_reward_family():
    env = NoisyUserBandit(num_envs=2, n_arms=3)
    for name in ("kl-ucb", "exp3"):
        with pytest.raises(
            ConfigError, match=r"needs rewards in \[0, 1\] but the env's rewards do"
        ):
            make_agent(name, env)
    assert make_agent("thompson", env).prior == "gaussian"
    make_agent("ucb1", env)

    class DeclaredUserBandit(NoisyUserBandit):
        reward_family = "bernoulli"  # the user vouches for rewards in [0, 1]

    make_agent("kl-ucb", DeclaredUserBandit(num_envs=2, n_arms=3))
