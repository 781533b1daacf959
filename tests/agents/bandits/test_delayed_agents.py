"""The delay-aware agents of issue 9: delayed-ts, batched-ts, delayed-rucb, delayed-dts."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from feedbackgym.agents import AGENTS, make_agent
from feedbackgym.errors import ConfigError
from feedbackgym.feedback.delayed_bandit import DelayedFeedbackEnv
from feedbackgym.studies import RegretStudy, run_study
from feedbackgym.studies.regret import make_env
from tests.conftest import EASY_MEANS

REWARD = ["delayed-ts", "batched-ts"]
DUELING = ["delayed-rucb", "delayed-dts"]


def bernoulli(runs: int, horizon: int, delay: str | None) -> object:
    env = make_env("feedbackgym/BernoulliBandit-v0", runs, {"means": EASY_MEANS}, horizon)
    return env if delay is None else DelayedFeedbackEnv(env, delay, seed=1)


def test_registered() -> None:
    assert set(REWARD + DUELING) <= set(AGENTS.names())


@pytest.mark.parametrize("name", REWARD)
@pytest.mark.parametrize("delay", ["geometric:0.05", "batched:40"])
def test_reward_agents_are_sublinear_under_delay(name: str, delay: str) -> None:
    horizon = 1500
    env = bernoulli(20, horizon, delay)  # mean delay 19 / 20.5
    regret = make_agent(name, env, seed=2).learn(env, horizon, seed=5, checkpoints=[750, 1500])
    first, second = regret.mean(axis=0)
    assert second - first < 0.8 * first, (first, second)
    assert second < 0.05 * horizon


@pytest.mark.parametrize("name", REWARD)
def test_reward_agents_act_validly_and_are_deterministic(name: str) -> None:
    runs = []
    for _ in range(2):
        env = bernoulli(4, 200, "uniform:0-15")
        agent = make_agent(name, env, seed=7)
        obs, _ = env.reset(seed=3)
        actions = []
        for _ in range(200):
            a = agent.predict(obs)
            assert a.shape == (4,) and a.dtype.kind == "i"
            assert ((a >= 0) & (a < len(EASY_MEANS))).all()
            obs, _, _, _, info = env.step(a)
            agent.update_arrived(info["arrived"], lambda *_: {})
            actions.append(a)
        runs.append(np.array(actions))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_delayed_ts_counts_pending_pulls_and_masks() -> None:
    env = bernoulli(3, 50, "fixed:5")
    agent = make_agent("delayed-ts", env, seed=0)
    actions = agent.predict()
    assert agent.pending.sum() == 3
    mask = np.array([True, False, True])
    agent.update_masked(actions, np.ones(3), None, mask)
    assert agent.pending.sum(axis=1).tolist() == [0, 1, 0]
    assert agent.counts.sum(axis=1).tolist() == [1, 0, 1]
    assert agent.sums[1].sum() == 0
    with pytest.raises(ConfigError):
        agent.update(actions, np.full(3, 0.5))


def test_delayed_ts_without_hallucination_samples_the_arrived_posterior() -> None:
    env = bernoulli(2, 50, "fixed:5")
    agent = make_agent("delayed-ts", env, seed=0, hallucinate=0.0)
    agent.pending[:] = 100.0  # ignored with h = 0: the same draws as with nothing pending
    a = agent.predict()
    fresh = make_agent("delayed-ts", env, seed=0, hallucinate=0.0)
    np.testing.assert_array_equal(a, fresh.predict())


def test_batched_ts_reads_the_period_and_freezes_between_boundaries() -> None:
    env = bernoulli(2, 100, "batched:10")
    agent = make_agent("batched-ts", env, seed=0)
    assert agent.period == 10
    assert make_agent("batched-ts", bernoulli(2, 100, "fixed:3"), seed=0).period == 1
    assert make_agent("batched-ts", env, seed=0, period=4).period == 4
    for _ in range(3):
        agent.predict()
    agent.update(np.array([0, 1]), np.array([1.0, 0.0]))
    assert agent.counts.sum() == 0 and agent.staged_counts.sum() == 2  # staged, not used yet
    for _ in range(7):
        agent.predict()
    assert agent.counts.sum() == 0
    agent.predict()  # step 11: the first boundary has passed
    assert agent.counts.sum() == 2 and agent.staged_counts.sum() == 0
    assert agent.sums[0, 0] == 1 and agent.sums[1, 1] == 0


def _study(tmp_path: Path, agents: list[str], delay: str, horizon: int = 1600) -> Path:
    study = RegretStudy(
        env="feedbackgym/DuelingBandit-v0",
        agents=agents,
        horizon=horizon,
        runs=10,
        seed=0,
        runs_per_cell=10,
        n_checkpoints=5,  # 1, 6, 40, 253, 1600
        delay=delay,
    )
    run_study(study, tmp_path, progress=False)
    return tmp_path / "regret.csv"


def test_dueling_agents_learn_under_delay_through_a_study(tmp_path: Path) -> None:
    path = _study(tmp_path, DUELING, "geometric:0.2")  # mean delay 4
    curves: dict[str, list[tuple[int, float]]] = {}
    with open(path) as fh:
        for row in csv.DictReader(fh):
            curves.setdefault(row["agent"], []).append((int(row["t"]), float(row["regret_mean"])))
    assert set(curves) == set(DUELING)
    for name, curve in curves.items():
        (t0, r0), (t1, r1) = curve[-2], curve[-1]
        # sublinear: the average regret per step after t0 is well below that up to t0
        assert (r1 - r0) / (t1 - t0) < 0.7 * r0 / t0, (name, curve)


@pytest.mark.parametrize("name", DUELING)
def test_dueling_agents_act_validly_and_deterministically(name: str) -> None:
    outs = []
    for _ in range(2):
        env = make_env("feedbackgym/DuelingBandit-v0", 3, {}, 150)
        env = DelayedFeedbackEnv(env, "uniform:0-10", seed=0)
        agent = make_agent(name, env, seed=4)
        k = int(env.single_action_space.nvec[0])
        obs, _ = env.reset(seed=1)
        pairs = []
        for _ in range(150):
            a = agent.predict(obs)
            assert a.shape == (3, 2) and ((a >= 0) & (a < k)).all()
            obs, _, _, _, info = env.step(a)
            agent.update_arrived(info["arrived"], lambda *_: {})
            pairs.append(a)
        outs.append(np.array(pairs))
        fed = agent.base.wins.sum(axis=(1, 2))
        # every outcome made is fed, queued, on its way or expired
        assert (fed + agent.queued.sum(axis=(1, 2)) + env.pending + env.expired == 150).all()
    np.testing.assert_array_equal(outs[0], outs[1])


def test_delayed_dts_runs_without_condorcet_winner_and_rucb_does_not() -> None:
    assert not AGENTS.get("delayed-dts").needs_condorcet
    assert AGENTS.get("delayed-rucb").needs_condorcet


def test_delay_study_script_writes_csv_and_plot(tmp_path: Path) -> None:
    import importlib.util

    script = Path(__file__).parents[3] / "scripts" / "delay_study.py"
    spec = importlib.util.spec_from_file_location("delay_study", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = ["--out", str(tmp_path), "--runs", "3", "--horizon", "200", "--delays", "0,10"]
    rows = module.main([*argv, "--agents", "thompson,delayed-ts,batched-ts", "--kind", "batched"])
    assert len(rows) == 6 and {r["delay"] for r in rows} == {"none", "batched:19"}
    with open(tmp_path / "regret_vs_delay.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 6
    assert (tmp_path / "regret_vs_delay.png").stat().st_size > 0
    duel = tmp_path / "duel"
    rows = module.main(
        ["--out", str(duel), "--runs", "2", "--horizon", "100", "--delays", "0,5"]
        + ["--env", "feedbackgym/DuelingBandit-v0", "--agents", "delayed-dts", "--gap-sum", "1"]
    )
    assert len(rows) == 2 and (duel / "regret_vs_delay.png").exists()


# ----- issue 23, item 1: a run's numbers do not depend on the runs simulated beside it ----------

BERNOULLI = ("feedbackgym/BernoulliBandit-v0", {"means": EASY_MEANS})
DUELS = ("feedbackgym/DuelingBandit-v0", {})
CONTEXTUAL = ("feedbackgym/ContextualLinearBandit-v0", {})
CONTEXTUAL_DUELS = ("feedbackgym/ContextualDuelingBandit-v0", {})


class PerRunDelayedEnv:
    """Runs stepped together as one vector env, each with its own env and delay streams (a
    one-run delayed env per run, seeded by ``seeds[n] = (env seed, delay seed)``): run n's
    rewards and delays are the same whatever runs are beside it, so its regret may depend on
    its own streams only (a study's cells seed the runs of a cell together; this makes the
    property testable number by number)."""

    def __init__(self, env: tuple[str, dict], horizon: int, delay: str, seeds: list) -> None:
        env_id, env_kwargs = env
        self.runs = [
            DelayedFeedbackEnv(make_env(env_id, 1, env_kwargs, horizon), delay, seed=d)
            for _, d in seeds
        ]
        self.seeds = [s for s, _ in seeds]
        first = self.runs[0]
        self.num_envs = len(self.runs)
        self.single_action_space = first.single_action_space
        self.single_observation_space = first.single_observation_space
        self.unwrapped = first.unwrapped
        self.delay = first.delay

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple:
        obs = [run.reset(seed=s)[0] for run, s in zip(self.runs, self.seeds, strict=True)]
        return np.concatenate(obs), {}

    def step(self, actions: np.ndarray) -> tuple:
        actions = np.asarray(actions)
        steps = [run.step(actions[n : n + 1]) for n, run in enumerate(self.runs)]
        infos = [s[4] for s in steps]
        info = {k: np.concatenate([i[k] for i in infos]) for k in infos[0] if "regret" in k}
        info["arrived"] = self._stack([i["arrived"] for i in infos])
        n = self.num_envs
        obs = np.concatenate([s[0] for s in steps])
        return obs, np.zeros(n), np.zeros(n, bool), np.zeros(n, bool), info

    def _stack(self, parts: list[dict]) -> dict:
        """The runs' arrivals as one env's: slots padded to the most any run received."""
        m = max(p["mask"].shape[1] for p in parts)
        arms = self.runs[0].unwrapped_arms()
        out = {}
        for key, first in parts[0].items():
            if first is None:
                out[key] = None
                continue
            rows = []
            for part in parts:
                value = part[key]
                filler = np.zeros((1, m - value.shape[1], *value.shape[2:]), value.dtype)
                if key == "actions" and value.ndim == 3:  # placeholder duels (0, 1)
                    filler[...] = np.arange(value.shape[2]) % arms
                rows.append(np.concatenate([value, filler], axis=1))
            out[key] = np.concatenate(rows)
        return out


#: Every agent that learns under delays, on an env it acts in: (env, agent, kwargs).
#: numpy's Beta sampler takes a number of draws that depends on its parameters, so an agent
#: drawing Beta samples for all runs from one generator (delayed-ts and batched-ts with the
#: beta prior) moves the stream of a run by the other runs' posteriors: correct in
#: distribution, not number by number; they are checked here with their Gaussian model.
PER_RUN_CASES = [
    (BERNOULLI, "ucb1", {}),
    (BERNOULLI, "kl-ucb", {}),
    (BERNOULLI, "thompson", {}),
    (BERNOULLI, "epsilon-greedy", {}),
    (BERNOULLI, "exp3", {}),
    (BERNOULLI, "delayed-ucb", {}),
    (BERNOULLI, "qpmd", {}),
    (BERNOULLI, "qpmd", {"base": "kl-ucb"}),
    (BERNOULLI, "qpmd", {"base": "thompson"}),
    (BERNOULLI, "delayed-ts", {"prior": "gaussian"}),
    (BERNOULLI, "batched-ts", {"prior": "gaussian", "period": 7}),
    (CONTEXTUAL, "linucb", {}),
    (CONTEXTUAL, "lin-ts", {}),
    (DUELS, "rucb", {}),
    (DUELS, "dts", {}),
    (DUELS, "ccb", {}),
    (DUELS, "merge-rucb", {}),
    (DUELS, "rmed1", {}),
    (DUELS, "beat-the-mean", {}),
    (DUELS, "self-sparring", {}),
    (DUELS, "delayed-rucb", {}),
    (DUELS, "delayed-dts", {}),
    (CONTEXTUAL_DUELS, "colstim", {"warmup": 30}),
]


def _learn(env: tuple, name: str, kwargs: dict, seeds: list, delay: str, horizon: int):
    per_run = PerRunDelayedEnv(env, horizon, delay, seeds)
    agent = make_agent(name, per_run, seed=9, **kwargs)
    return agent.learn(per_run, horizon, checkpoints=[horizon // 2, horizon])


def test_every_agent_that_learns_late_is_checked() -> None:
    shipped = [n for n in AGENTS.names() if AGENTS.get(n).__module__.startswith("feedbackgym.")]
    late = {n for n in shipped if AGENTS.get(n).delay_ok}
    assert late == {name for _, name, _ in PER_RUN_CASES}


@pytest.mark.parametrize(("env", "name", "kwargs"), PER_RUN_CASES, ids=lambda v: str(v))
def test_a_runs_regret_does_not_depend_on_the_runs_beside_it(env, name, kwargs) -> None:
    """The same three runs (same env and delay streams, same agent seed) beside two sets of
    other runs give the same regret, number by number: every clock and statistic is per run.
    Before, the counting agents' ``t`` advanced with the arrivals of every run (UCB1's and
    KL-UCB's log t, epsilon-greedy's and EXP3's rates, the confidence bounds of the dueling
    agents, qpmd's base agent), so regret depended on ``runs_per_cell``."""
    horizon, delay = 160, "geometric:0.08"  # mean delay 11.5
    own = [(100 + n, 200 + n) for n in range(3)]
    first = _learn(env, name, kwargs, own + [(300 + n, 400 + n) for n in range(4)], delay, horizon)
    other = _learn(env, name, kwargs, own + [(500 + n, 600 + n) for n in range(4)], delay, horizon)
    np.testing.assert_array_equal(first[:3], other[:3])
    assert not np.array_equal(first[3:], other[3:])  # the runs beside them did differ


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("ucb1", {}), ("kl-ucb", {}), ("delayed-ucb", {}), ("qpmd", {}), ("qpmd", {"base": "kl-ucb"})],
)
def test_runs_alone_in_groups_or_all_together_give_the_same_regret(name, kwargs) -> None:
    """Agents that draw no random numbers: seven runs simulated one at a time, in groups of
    three and four, or all at once (runs_per_cell 1, 3-4, 7) give every run the same regret."""
    horizon, delay = 300, "geometric:0.05"  # mean delay 19
    seeds = [(10 + n, 20 + n) for n in range(7)]
    alone = np.concatenate([_learn(BERNOULLI, name, kwargs, [s], delay, horizon) for s in seeds])
    groups = np.concatenate(
        [_learn(BERNOULLI, name, kwargs, part, delay, horizon) for part in (seeds[:3], seeds[3:])]
    )
    together = _learn(BERNOULLI, name, kwargs, seeds, delay, horizon)
    np.testing.assert_array_equal(alone, together)
    np.testing.assert_array_equal(groups, together)


@pytest.mark.parametrize(("env", "name", "kwargs"), PER_RUN_CASES, ids=lambda v: str(v))
def test_every_clock_is_per_run_and_counts_that_runs_feedback(env, name, kwargs) -> None:
    """``t[n]`` counts what run n learned from: the items delivered to it (rmed1: the steps
    it played, by design); a reduction's base agent counts what was fed to that run."""
    horizon, runs = 120, 5
    delayed = DelayedFeedbackEnv(make_env(env[0], runs, env[1], horizon), "uniform:0-30", seed=2)
    agent = make_agent(name, delayed, seed=1, **kwargs)
    agent.learn(delayed, horizon, seed=4)
    assert agent.t.shape == (runs,)
    if name == "rmed1":
        assert (agent.t == horizon).all()
        return
    np.testing.assert_array_equal(agent.t, delayed.delivered)
    assert len(set(agent.t.tolist())) > 1  # the runs' feedback did differ
    if name == "qpmd":
        np.testing.assert_array_equal(agent.base.t, agent.base.counts.sum(axis=1))
    elif name.startswith("delayed-") and hasattr(agent, "base"):
        np.testing.assert_array_equal(agent.base.t, agent.base.wins.sum(axis=(1, 2)))
