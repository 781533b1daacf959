"""Fused dueling loops (feedbackgym.agents.dueling.fused_loops): same regret as the step path."""

from __future__ import annotations

import math

import gymnasium as gym
import numba
import numpy as np
import pytest

import feedbackgym  # noqa: F401  (registers the envs)
from feedbackgym.agents import make_agent
from feedbackgym.agents.bandits.fused import fused_run
from feedbackgym.agents.dueling import fused_loops as fused
from feedbackgym.agents.dueling import kernels as _k
from feedbackgym.envs.dueling import DuelingBanditVec, MultiDuelingBanditVec
from feedbackgym.errors import ConfigError

ENV = "feedbackgym/DuelingBandit-v0"
AGENTS = ["rucb", "rmed1", "dts", "merge-rucb"]
# BTL on 6 arms, slope 3: gaps small enough that every agent still explores at T.
BTL = {"utilities": [1.0, 0.8, 0.6, 0.4, 0.2, 0.0], "scale": 3.0}
RUNS, T = 300, 1500


def vec(runs: int, horizon: int = T, **kwargs) -> DuelingBanditVec:
    return gym.make_vec(ENV, num_envs=runs, horizon=horizon, **(kwargs or BTL))


def both_paths(
    name: str, metric: str, runs: int = RUNS, horizon: int = T, **kwargs
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative regret at T/2 and T, fused and step by step (same seeds)."""
    checkpoints = np.array([horizon, horizon // 2])
    env = vec(runs, horizon, **kwargs)
    agent = make_agent(name, env, seed=1)
    run = getattr(fused, "fuse_" + name.replace("-", "_"))(env, agent, metric)
    assert run is not None
    fast = run(horizon, checkpoints, 2)
    slow = agent.learn(env, horizon, checkpoints=checkpoints, seed=2, regret_key=metric)
    return fast, slow


def z_score(a: np.ndarray, b: np.ndarray) -> float:
    se = math.hypot(a.std(ddof=1) / math.sqrt(a.size), b.std(ddof=1) / math.sqrt(b.size))
    return float((a.mean() - b.mean()) / max(se, 1e-12))


@pytest.mark.parametrize("name", AGENTS)
def test_fused_regret_agrees_with_the_step_path(name):
    fast, slow = both_paths(name, "regret_average")
    assert fast.shape == slow.shape == (RUNS, 2)
    assert np.all(fast[:, 0] >= fast[:, 1])  # columns follow the checkpoints' order
    for col in range(2):
        assert abs(z_score(fast[:, col], slow[:, col])) < 4.0, (col, fast.mean(0), slow.mean(0))
    # A second moment too: the spread of final regret across runs.
    ratio = fast[:, 0].std() / slow[:, 0].std()
    assert 0.75 < ratio < 1.33, ratio


def test_fused_dts_copeland_regret_without_a_condorcet_winner():
    kwargs = {"family": "cyclic", "n_arms": 6, "margin": 0.3, "matrix_seed": 2}
    fast, slow = both_paths("dts", "regret_copeland", runs=200, horizon=1000, **kwargs)
    assert abs(z_score(fast[:, 0], slow[:, 0])) < 4.0, (fast.mean(0), slow.mean(0))


def test_fused_rucb_on_a_matrix_drawn_per_run():
    kwargs = {"family": "btl", "n_arms": 5, "scale": 4.0}  # one matrix per run, from the seed
    fast, slow = both_paths("rucb", "regret_weak", runs=200, horizon=800, **kwargs)
    assert abs(z_score(fast[:, 0], slow[:, 0])) < 4.0, (fast.mean(0), slow.mean(0))


@pytest.mark.parametrize("name", AGENTS)
def test_fused_runs_are_deterministic_and_thread_count_free(name):
    env = vec(8, 400)
    agent = make_agent(name, env, seed=3)
    before = {key: np.copy(v) for key, v in vars(agent).items() if isinstance(v, np.ndarray)}
    run = fused_run(env, agent, "regret_average")
    assert run is not None
    first = run(400, np.array([50, 400]), 7)
    again = run(400, np.array([50, 400]), 7)
    other = run(400, np.array([50, 400]), 8)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        parallel = run(400, np.array([50, 400]), 7)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, parallel)
    assert not np.array_equal(first, other)
    for key, value in before.items():  # the agent is left as it was
        np.testing.assert_array_equal(getattr(agent, key), value)


def test_fusers_decline_what_they_do_not_implement():
    env = vec(4, 100)
    for name in AGENTS:
        agent = make_agent(name, env, seed=0)
        assert fused_run(env, agent, "regret_average") is not None
        assert fused_run(env, agent, "regret_utility") is None  # not a metric of this env
        assert fused_run(env, agent, "regret") is None
        # Another env class, even one that duels pairs.
        multi = MultiDuelingBanditVec(num_envs=4, utilities=BTL["utilities"], subset_size=2)
        assert fused_run(multi, agent, "regret_average") is None

        class Drifting(DuelingBanditVec):  # a subclass may change its matrix: not fused
            pass

        sub = Drifting(num_envs=4, preference_matrix=env.preference_matrix[0].tolist())
        assert fused_run(sub, agent, "regret_average") is None
    cyclic = vec(4, 100, family="cyclic", n_arms=6, matrix_seed=0)
    dts = make_agent("dts", cyclic, seed=0)
    assert fused_run(cyclic, dts, "regret_average") is None  # no Condorcet winner
    assert fused_run(cyclic, dts, "regret_borda") is not None
    # Other agents have no fuser.
    assert fused_run(env, make_agent("ccb", env, seed=0), "regret_average") is None


def test_fused_run_checks_its_arguments_as_learn_does():
    env = vec(4, 100)
    run = fused_run(env, make_agent("rmed1", env, seed=0), "regret_average")
    with pytest.raises(ConfigError, match="horizon"):
        run(101, np.array([101]), 0)
    with pytest.raises(ConfigError, match="checkpoints"):
        run(50, np.array([0, 50]), 0)
    every = run(30, None, 0)
    assert every.shape == (4, 30) and np.all(np.diff(every, axis=1) >= 0)


def test_beta_tails_by_recurrence_match_the_incomplete_beta_function():
    rng = np.random.default_rng(0)
    k = 3
    W = np.zeros((1, k, k))
    above = np.full((1, k, k), 0.5)
    pmf = np.full((1, k, k), 0.5)
    level = np.zeros((1, k, k), dtype=np.int64)
    for step in range(3000):
        i, j = rng.choice(k, 2, replace=False)
        won = rng.random() < (0.9 if step < 2000 else 0.2)  # far into the tail, then back
        W[0, i, j] += won
        W[0, j, i] += not won
        fused._dts_tail_update(above, pmf, level, W, 0, i, j, won)
    for i in range(k):
        for j in range(k):
            if i != j:
                exact = _k.beta_above_half(W[0, i, j] + 1.0, W[0, j, i] + 1.0)
                assert abs(above[0, i, j] - exact) < 1e-9, (i, j, above[0, i, j], exact)


@pytest.mark.parametrize(("a", "b"), [(3.0, 12.0), (40.0, 60.0), (9.0, 7.0)])
def test_beta_given_above_half_has_the_truncated_beta_distribution(a, b):
    state = np.array([11], dtype=np.uint64)
    tail = _k.beta_above_half(a + 1.0, b + 1.0)
    p = math.exp(math.lgamma(a + b + 2) - math.lgamma(a + 1) - math.lgamma(b + 2)) / 2 ** (
        a + b + 1
    )
    draws = np.array([fused._beta_above_half(state, 0, a, b, tail, p) for _ in range(20000)])
    reference = np.random.default_rng(1).beta(a + 1.0, b + 1.0, 400000)
    reference = reference[reference > 0.5][:20000]
    assert draws.min() > 0.5
    for q in (0.1, 0.5, 0.9):
        assert abs(np.quantile(draws, q) - np.quantile(reference, q)) < 0.01, q


def test_lazy_first_arm_has_the_distribution_of_the_full_draw():
    k, n_calls = 5, 20000
    rng = np.random.default_rng(2)
    upper = np.triu(rng.random((k, k)), 1)
    above = (upper + np.tril(1.0 - upper.T, -1))[None]
    cand = np.array([[0, 1, 2, 4, 0]])
    state = np.array([5], dtype=np.uint64)
    full = np.zeros(k)
    wins_half = np.zeros((1, k, k), dtype=np.int8)
    for _ in range(n_calls):
        full[_k._dts_first(above, 0, cand, 4, state, wins_half)] += 1
    lazy = np.zeros(k)
    drawn = np.zeros((1, k, k), dtype=np.int64)
    scratch = np.zeros((3, 1, k), dtype=np.int64)
    for t in range(1, n_calls + 1):
        lead = t % k
        first = fused._dts_first_lazy(
            above, 0, cand, 4, lead, t, state, drawn, scratch[0], scratch[1], scratch[2]
        )
        lazy[first] += 1
    assert full[3] == lazy[3] == 0
    p = full / n_calls
    se = np.sqrt(p * (1 - p) * 2 / n_calls) + 1e-12
    assert np.all(np.abs(lazy / n_calls - p) < 4 * se), (full, lazy)
