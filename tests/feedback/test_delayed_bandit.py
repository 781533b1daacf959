"""Delayed feedback on bandit and dueling vector envs: exactly-once delivery, specs, agents."""

from __future__ import annotations

import types

import numpy as np
import pytest

from feedbackgym.agents import AGENTS, make_agent
from feedbackgym.agents.bandits.base import BanditAgent
from feedbackgym.errors import ConfigError
from feedbackgym.feedback.delayed_bandit import DelayedFeedbackEnv, mean_delay, parse_delay
from feedbackgym.studies.regret import make_env
from tests.conftest import EASY_MEANS

SPECS = ["fixed:0", "fixed:7", "geometric:0.2", "uniform:0-12", "batched:9"]


def bernoulli(runs: int, horizon: int, delay: str, seed: int = 1) -> DelayedFeedbackEnv:
    env = make_env("feedbackgym/BernoulliBandit-v0", runs, {"means": EASY_MEANS}, horizon)
    return DelayedFeedbackEnv(env, delay, seed=seed)


@pytest.mark.parametrize("spec", SPECS)
def test_every_item_arrives_exactly_once_with_its_outcome(spec: str) -> None:
    runs, horizon = 6, 60
    env = bernoulli(runs, horizon, spec)
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    made: dict[tuple[int, int], tuple[int, float]] = {}
    seen: dict[tuple[int, int], tuple[int, float]] = {}
    for t in range(1, horizon + 1):
        actions = rng.integers(0, len(EASY_MEANS), runs)
        _, shown, _, _, info = env.step(actions)
        assert not shown.any() and "regret" in info  # no reward leaks; regret is today's
        for r in range(runs):
            made[(r, t)] = (int(actions[r]), 0.0)
        got = info["arrived"]
        for r, j in zip(*np.nonzero(got["mask"]), strict=True):
            key = (int(r), int(got["steps"][r, j]))
            assert key not in seen, f"{key} delivered twice"
            assert key[1] <= t
            seen[key] = (int(got["actions"][r, j]), float(got["rewards"][r, j]))
    assert all(seen[k][0] == made[k][0] for k in seen)  # the item is the pull it claims to be
    assert set(seen) <= set(made)
    assert env.delivered.sum() == len(seen)
    assert (env.delivered + env.expired + env.pending == env.pushed).all()
    if spec == "fixed:0":
        assert len(seen) == runs * horizon
    if spec == "fixed:7":
        assert (env.expired == 7).all() and (env.pending == 0).all()


def test_zero_delay_changes_no_number() -> None:
    plain = make_env("feedbackgym/BernoulliBandit-v0", 8, {"means": EASY_MEANS}, 200)
    delayed = bernoulli(8, 200, "fixed:0")
    a = make_agent("kl-ucb", plain, seed=4).learn(plain, 200, seed=9)
    b = make_agent("kl-ucb", delayed, seed=4).learn(delayed, 200, seed=9)
    np.testing.assert_array_equal(a, b)


def test_masked_update_leaves_the_other_runs_alone() -> None:
    env = make_env("feedbackgym/BernoulliBandit-v0", 4, {"means": EASY_MEANS}, 10)
    agent = make_agent("ucb1", env, seed=0)
    mask = np.array([True, False, True, False])
    agent.update_masked(np.array([1, 1, 2, 2]), np.ones(4), None, mask)
    assert agent.counts.sum(axis=1).tolist() == [1, 0, 1, 0]
    assert agent.sums[0, 1] == 1 and agent.sums[2, 2] == 1


@pytest.mark.parametrize(
    "spec",
    [
        "geometric:1.5",
        "geometric:0",
        "fixed:-1",
        "uniform:9-3",
        "batched:0",
        "poisson:3",
        "fixed:x",
    ],
)
def test_bad_specs_give_one_line(spec: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_delay(spec)
    assert "\n" not in str(err.value) and spec.split(":")[0] in str(err.value)


def test_specs_and_means() -> None:
    assert parse_delay("none") is None
    assert mean_delay(parse_delay("geometric:0.01")) == pytest.approx(99.0)
    assert mean_delay(parse_delay("uniform:10-200")) == 105.0
    assert mean_delay(parse_delay("fixed:50")) == 50.0


REWARD_AGENTS = ["epsilon-greedy", "ucb1", "kl-ucb", "thompson", "delayed-ucb", "qpmd"]


@pytest.mark.parametrize("name", REWARD_AGENTS)
def test_reward_agents_stay_sublinear_under_delay(name: str) -> None:
    horizon = 1500
    env = bernoulli(20, horizon, "geometric:0.1")  # mean delay 9
    regret = make_agent(name, env, seed=2).learn(env, horizon, seed=5, checkpoints=[750, 1500])
    first, second = regret.mean(axis=0)
    # sublinear: the second half costs clearly less than the first (linear: equal halves)
    assert second - first < 0.8 * first, (first, second)
    assert second < 0.1 * horizon


def test_exp3_runs_under_delay() -> None:
    env = bernoulli(5, 300, "uniform:0-20")
    regret = make_agent("exp3", env, seed=2).learn(env, 300, seed=5)
    assert np.isfinite(regret).all()


@pytest.mark.parametrize("name", ["rucb", "dts", "rmed1"])
def test_dueling_agents_learn_under_delay(name: str) -> None:
    horizon = 800
    env = make_env("feedbackgym/DuelingBandit-v0", 10, {}, horizon)
    env = DelayedFeedbackEnv(env, "geometric:0.2", seed=0)
    regret = make_agent(name, env, seed=1).learn(env, horizon, seed=2, checkpoints=[400, 800])
    first, second = regret.mean(axis=0)
    assert second - first < first, (first, second)


def test_contextual_agents_get_the_pulls_features() -> None:
    horizon = 600
    env = make_env("feedbackgym/ContextualLinearBandit-v0", 8, {}, horizon)
    env = DelayedFeedbackEnv(env, "fixed:5", seed=0)
    regret = make_agent("linucb", env, seed=1).learn(env, horizon, seed=2, checkpoints=[300, 600])
    first, second = regret.mean(axis=0)
    assert second - first < first, (first, second)


def test_qpmd_rejects_a_contextual_base() -> None:
    assert "qpmd" in AGENTS.names() and "delayed-ucb" in AGENTS.names()
    env = bernoulli(2, 10, "fixed:1")
    with pytest.raises(ConfigError):
        make_agent("qpmd", env, base="linucb")


@pytest.mark.parametrize("name", ["epsilon-greedy", "ucb1", "kl-ucb", "thompson", "exp3"])
@pytest.mark.parametrize("spec", ["geometric:0.05", "uniform:0-30"])
def test_native_arrival_updates_match_the_generic_masked_path(name: str, spec: str) -> None:
    """The counting agents learn all arrivals at once; the generic path (one save/restore
    :meth:`BanditAgent.update_masked` per slot) gives the same numbers, regret and state."""
    horizon = 400
    results = []
    for generic in (False, True):
        env = bernoulli(12, horizon, spec, seed=7)
        agent = make_agent(name, env, seed=3)
        if generic:
            agent.update_masked = types.MethodType(BanditAgent.update_masked, agent)
            agent.update_arrived = types.MethodType(BanditAgent.update_arrived, agent)
        regret = agent.learn(env, horizon, seed=5)
        state = {k: v for k, v in vars(agent).items() if isinstance(v, np.ndarray)}
        results.append((regret, state, agent.t))
    (regret_a, state_a, t_a), (regret_b, state_b, t_b) = results
    np.testing.assert_array_equal(regret_a, regret_b)
    np.testing.assert_array_equal(t_a, t_b)
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        np.testing.assert_array_equal(state_a[key], state_b[key], err_msg=key)


def test_rmed1_loop_never_empties_under_random_delays() -> None:
    env = make_env("feedbackgym/DuelingBandit-v0", 16, {}, 1200)
    env = DelayedFeedbackEnv(env, "geometric:0.02", seed=3)
    agent = make_agent("rmed1", env, seed=0)
    regret = agent.learn(env, 1200, seed=1)
    assert np.isfinite(regret).all()
    assert (agent.t == 1200).all()  # one loop step per pull, not per arrival
    assert agent.in_current.any(axis=1).all()


@pytest.mark.parametrize("spec", ["geometric:0.03", "uniform:0-90", "batched:40"])
def test_items_arrive_at_their_release_step_as_the_calendar_grows(spec: str) -> None:
    runs, horizon = 7, 300
    env = bernoulli(runs, horizon, spec, seed=4)
    env.reset(seed=0)
    delay, rng = parse_delay(spec), np.random.default_rng(4)  # the env's delay stream, replayed
    due: dict[tuple[int, int], int] = {}
    for t in range(1, horizon + 1):
        release = delay.release_steps(np.full(runs, float(t)), rng)
        due.update({(r, t): int(release[r]) for r in range(runs) if release[r] <= horizon})
        got = env.step(np.zeros(runs, dtype=np.int64))[4]["arrived"]
        for r, j in zip(*np.nonzero(got["mask"]), strict=True):
            assert due.pop((int(r), int(got["steps"][r, j]))) == t
    assert not due and env._capacity > 8  # every item came, on time, across regrowths
