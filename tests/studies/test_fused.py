"""Fused regret loops: same distribution as the step path, deterministic, chosen and recorded
by studies (``path``), refused where they cannot run, and never mixed in one folder."""

from __future__ import annotations

import json
import math

import numba
import numpy as np
import pytest
from numba import njit

from feedbackgym.agents import AGENTS
from feedbackgym.agents.bandits import fused_loops as fb
from feedbackgym.agents.bandits.fused import fused_agents, fused_run
from feedbackgym.agents.bandits.kernels import (
    bernoulli_entropy,
    beta_tails,
    beta_tails_density,
    kl_ucb_bound,
    kl_ucb_exact,
    kl_ucb_newton,
)
from feedbackgym.errors import ConfigError
from feedbackgym.studies import RegretStudy, run_study
from feedbackgym.studies.regret import make_env

MEANS = [0.7, 0.5, 0.4]
BERNOULLI = "feedbackgym/BernoulliBandit-v0"
GAUSSIAN = "feedbackgym/GaussianBandit-v0"


def final_regret(env_id, agent, path, runs, horizon, seed=1, env_kwargs=None, **params):
    """Regret per run at T and T // 4, by the fused loop or by ``learn``."""
    env = make_env(env_id, runs, env_kwargs or {"means": MEANS}, horizon)
    learner = AGENTS.get(agent).from_env(env, seed + 100, **params)
    checkpoints = np.array([horizon // 4, horizon])
    if path == "steps":
        return learner.learn(env, horizon, checkpoints, seed=seed)
    env.reset(seed=seed)
    run = fused_run(env, learner, "regret")
    assert run is not None
    return run(horizon, checkpoints, seed)


CASES = [
    (BERNOULLI, "ucb1", {}),
    (BERNOULLI, "kl-ucb", {}),
    (BERNOULLI, "thompson", {}),
    (BERNOULLI, "thompson", {"prior": "gaussian"}),
    (GAUSSIAN, "ucb1", {"alpha": 1.0}),
    (GAUSSIAN, "thompson", {}),
]


@pytest.mark.parametrize(("env_id", "agent", "params"), CASES)
def test_fused_and_step_paths_agree_in_distribution(env_id, agent, params):
    runs, horizon = 600, 300
    fused = final_regret(env_id, agent, "fused", runs, horizon, **params)
    steps = final_regret(env_id, agent, "steps", runs, horizon, **params)
    for col in range(2):  # at T / 4 and at T
        a, b = fused[:, col], steps[:, col]
        z = (a.mean() - b.mean()) / math.hypot(a.std(ddof=1), b.std(ddof=1)) * math.sqrt(runs)
        assert abs(z) < 4.0, (agent, col, a.mean(), b.mean(), z)


def test_thompson_thresholds_keep_the_choice_distribution_over_a_long_horizon():
    """Ten arms and 3,000 steps: past the plain first 30 K steps the leader mostly wins without
    a draw; regret at T / 4 and T must match the full sampler's."""
    means = {"means": [float(m) for m in np.linspace(0.9, 0.1, 10)]}
    runs, horizon = 1000, 3000
    fused = final_regret(BERNOULLI, "thompson", "fused", runs, horizon, env_kwargs=means)
    steps = final_regret(BERNOULLI, "thompson", "steps", runs, horizon, env_kwargs=means)
    for col in range(2):
        a, b = fused[:, col], steps[:, col]
        z = (a.mean() - b.mean()) / math.hypot(a.std(ddof=1), b.std(ddof=1)) * math.sqrt(runs)
        assert abs(z) < 4.0, (col, a.mean(), b.mean(), z)


def test_thompson_pruning_keeps_the_choice_distribution_early_and_late():
    """Many short runs: the pruned Beta sampler's choices match the full sampler's, measured by
    the regret's mean and spread and by how often the best arm was pulled at all."""
    runs, horizon = 3000, 120
    fused = final_regret(BERNOULLI, "thompson", "fused", runs, horizon)[:, 1]
    steps = final_regret(BERNOULLI, "thompson", "steps", runs, horizon)[:, 1]
    z = (fused.mean() - steps.mean()) / math.hypot(fused.std(), steps.std()) * math.sqrt(runs)
    assert abs(z) < 4.0
    assert fused.std() == pytest.approx(steps.std(), rel=0.15)


def test_beta_tail_probability_and_tail_sampler_are_exact():
    special = pytest.importorskip("scipy.special")
    stats = pytest.importorskip("scipy.stats")
    for a, b, x in [(1.0, 1.0, 0.3), (3.0, 40.0, 0.2), (500.0, 60.0, 0.9), (2000.0, 9.0, 0.997)]:
        lower, upper = beta_tails(x, a, b)
        assert upper == pytest.approx(special.betainc(b, a, 1.0 - x), rel=1e-9)  # P(X > x)
        assert lower == pytest.approx(special.betainc(a, b, x), rel=1e-9, abs=1e-15)
    a, b, q = 30.0, 12.0, 0.8
    state = np.array([7, 8], dtype=np.uint64)
    draws = np.array([fb._beta_above(state, a, b, q) for _ in range(4000)])
    assert draws.min() > q
    above = stats.beta(a, b).sf(q)

    def conditional_cdf(x):
        return 1.0 - stats.beta(a, b).sf(x) / above

    assert stats.kstest(draws, conditional_cdf).pvalue > 1e-3


def test_a_crossed_threshold_beats_the_top_with_its_exact_probability():
    """Thompson's arm k that crossed its threshold q is drawn only when it beats the top theta
    so far: that happens with probability S(top) / S(q), and its theta is then Beta above top."""
    stats = pytest.importorskip("scipy.stats")
    a, b, q, top = 30.0, 12.0, 0.8, 0.85
    _, tail, density = beta_tails_density(q, a, b)
    state = np.array([5, 6], dtype=np.uint64)
    draws = np.array([fb._crossed(state, a, b, q, tail, density / tail, top) for _ in range(40000)])
    law = stats.beta(a, b)
    beats = law.sf(top) / law.sf(q)
    won = draws[draws > -1.0]
    assert abs(won.size / draws.size - beats) < 4.0 * math.sqrt(beats * (1 - beats) / draws.size)
    assert won.min() > top
    assert stats.kstest(won, lambda x: 1.0 - law.sf(x) / law.sf(top)).pvalue > 1e-3


def test_thompson_quantile_bins_are_equally_likely_and_drawn_from_exactly():
    """The plain steps place each theta in one of TABLE_BINS bins of probability 1 / TABLE_BINS
    (a table of Beta quantiles) and draw it within its bin only when it can win."""
    special = pytest.importorskip("scipy.special")
    stats = pytest.importorskip("scipy.stats")
    bins = fb.quantile_bins()
    width = bins.shape[1] - 1
    assert bins.shape[0] == fb.TABLE_PULLS * (fb.TABLE_PULLS + 1) // 2
    assert np.all(np.diff(bins, axis=1) > 0)
    for n, s in [(0, 0), (1, 0), (5, 5), (30, 7), (fb.TABLE_PULLS - 1, 50)]:
        row = bins[n * (n + 1) // 2 + s]
        levels = special.betainc(1 + s, 1 + n - s, row)
        np.testing.assert_allclose(levels, np.arange(width + 1) / width, atol=1e-12)
    a, b = 31.0, 9.0  # s = 30, n = 38
    row = bins[38 * 39 // 2 + 30]
    state = np.array([3, 4], dtype=np.uint64)
    for j in (0, width // 2, width - 1):  # a tail bin, an inner one, the top one
        lo, hi = row[j], row[j + 1]
        draws = np.array([fb._beta_within(state, a, b, lo, hi) for _ in range(3000)])
        assert draws.min() >= lo and draws.max() <= hi
        law = stats.beta(a, b)

        def within(x, law=law, lo=lo, hi=hi):
            return (law.cdf(x) - law.cdf(lo)) / (law.cdf(hi) - law.cdf(lo))

        assert stats.kstest(draws, within).pvalue > 1e-3


@pytest.mark.parametrize(("env_id", "agent", "params"), CASES)
def test_every_fused_pair_is_deterministic_and_thread_independent(env_id, agent, params):
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = final_regret(env_id, agent, "fused", 7, 200, **params)
        again = final_regret(env_id, agent, "fused", 7, 200, **params)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = final_regret(env_id, agent, "fused", 7, 200, **params)
    finally:
        numba.set_num_threads(before)
    other = final_regret(env_id, agent, "fused", 7, 200, seed=2, **params)
    np.testing.assert_array_equal(one, again)
    np.testing.assert_array_equal(one, many)
    assert not np.array_equal(one, other)


def test_what_cannot_be_fused_returns_none():
    env = make_env("feedbackgym/SwitchingCostBandit-v0", 2, {"means": MEANS}, 50)
    env.reset(seed=0)
    assert fused_run(env, AGENTS.get("ucb1").from_env(env, 0), "regret") is None
    env = make_env(BERNOULLI, 2, {"means": MEANS}, 50)
    env.reset(seed=0)
    assert fused_run(env, AGENTS.get("exp3").from_env(env, 0), "regret") is None
    assert fused_run(env, AGENTS.get("ucb1").from_env(env, 0), "other") is None
    assert {"ucb1", "kl-ucb", "thompson"} <= set(fused_agents())


def study(**overrides) -> RegretStudy:
    config = dict(
        env=BERNOULLI,
        env_kwargs={"means": MEANS},
        agents=["ucb1", "exp3"],
        horizon=100,
        runs=6,
        seed=3,
        runs_per_cell=3,
    )
    config.update(overrides)
    return RegretStudy(**config)


def test_config_json_records_the_path_of_each_agent_and_auto_picks_fused(tmp_path):
    run_study(study(), tmp_path / "auto", progress=False)
    config = json.loads((tmp_path / "auto" / "config.json").read_text())
    assert config["path"] == "auto" and config["paths"] == {"ucb1": "fused", "exp3": "steps"}
    run_study(study(path="steps"), tmp_path / "steps", progress=False)
    config = json.loads((tmp_path / "steps" / "config.json").read_text())
    assert config["paths"] == {"ucb1": "steps", "exp3": "steps"}
    delayed = study(agents=["ucb1"], delay="fixed:5")
    run_study(delayed, tmp_path / "delayed", progress=False)
    assert delayed.paths == {"ucb1": "steps"}
    zero = study(agents=["ucb1"], delay="fixed:0")  # a zero delay is no delay: fused
    run_study(zero, tmp_path / "zero", progress=False)
    assert zero.paths == {"ucb1": "fused"}


def test_path_fused_on_what_cannot_be_fused_is_one_line_before_any_file(tmp_path):
    with pytest.raises(ConfigError, match="--path fused: agent 'exp3' has no fused loop") as err:
        run_study(study(path="fused"), tmp_path / "out", progress=False)
    assert "\n" not in str(err.value) and not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="with --delay fixed:5"):
        study(agents=["ucb1"], path="fused", delay="fixed:5").validate()
    with pytest.raises(ConfigError, match="path must be one of auto, fused, steps, got 'fast'"):
        study(path="fast").validate()


def test_cli_path_fused_exits_2_and_a_bad_value_is_refused(cli, tmp_path):
    args = ["regret", "--env", "feedbackgym/SwitchingCostBandit-v0", "--agents", "ucb1"]
    args += ["--horizon", "50", "--runs", "2", "--no-progress"]
    code, _, err = cli(*args, "--path", "fused", "--out", tmp_path / "a")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--path fused" in err
    code, _, err = cli(*args, "--path", "fast", "--out", tmp_path / "b")
    assert code == 2 and "invalid choice: 'fast'" in err and not (tmp_path / "b").exists()
    code, out, _ = cli(*args[:2], BERNOULLI, *args[3:], "--path", "fused", "--out", tmp_path / "c")
    assert code == 0
    assert json.loads((tmp_path / "c" / "config.json").read_text())["paths"] == {"ucb1": "fused"}


def test_resuming_on_another_path_is_refused_and_auto_follows_the_folder(tmp_path):
    run_study(study(path="steps"), tmp_path, progress=False)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match="holds ucb1 cells run on the steps path, not fused"):
        run_study(study(agents=["ucb1"], path="fused"), tmp_path, progress=False)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    resumed = study()  # auto: keeps to the folder's steps
    run_study(resumed, tmp_path, progress=False)
    assert resumed.paths["ucb1"] == "steps"
    assert (tmp_path / "regret.csv").read_bytes() == before[tmp_path / "regret.csv"]

    run_study(study(agents=["ucb1"]), tmp_path / "fused", progress=False)
    with pytest.raises(ConfigError, match="run on the fused path, not steps; .* --path fused"):
        run_study(study(agents=["ucb1"], path="steps"), tmp_path / "fused", progress=False)


def test_a_folder_from_before_fused_loops_resumes_step_by_step(tmp_path):
    run_study(study(path="steps"), tmp_path, progress=False)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["paths"], config["path"]  # as written before this option existed
    (tmp_path / "config.json").write_text(json.dumps(config))
    for cell in (tmp_path / "cells").glob("ucb1*"):
        cell.unlink()
    resumed = study()
    run_study(resumed, tmp_path, progress=False)
    assert resumed.paths == {"ucb1": "steps", "exp3": "steps"}
    with pytest.raises(ConfigError, match="steps path, not fused"):
        run_study(study(path="fused", agents=["ucb1"]), tmp_path, progress=False)


@pytest.mark.parametrize("n_arms", [10, fb.TOURNAMENT_ARMS + 8])
def test_fused_ucb1_pulls_the_argmax_of_every_index_at_every_step(n_arms):
    """The fused UCB1 keeps its argmax by a scan of the others when needed, or (above
    ``TOURNAMENT_ARMS`` arms) a kinetic tournament: either way every pull is the first argmax
    of ``mean + sqrt(2 log t) sqrt(1 / n)`` over all K, as a plain loop over the same reward
    stream finds it. Close means make many crossings."""
    means = np.round(0.6 - 0.01 * np.arange(n_arms), 6)
    horizon = 3000
    seeds = np.array([12345], dtype=np.uint64), np.array([678], dtype=np.uint64)
    out = np.zeros((1, horizon))
    fb.ucb1_loop(means[None], False, 0.0, 2.0, np.arange(1, horizon + 1), *seeds, out)
    state = np.array([seeds[0][0], seeds[1][0]], dtype=np.uint64)
    counts, sums = np.zeros(n_arms), np.zeros(n_arms)
    gap = means.max() - means
    regret, curve = 0.0, np.zeros(horizon)
    for t in range(horizon):
        if t < n_arms:
            arm = t
        else:
            index = sums / counts + math.sqrt(2.0 * math.log(t)) * np.sqrt(1.0 / counts)
            arm = int(np.argmax(index))
        counts[arm] += 1
        sums[arm] += 1.0 if fb.draw_uniform(state, 0) < means[arm] else 0.0
        regret += gap[arm]
        curve[t] = regret
    np.testing.assert_array_equal(out[0], curve)


def test_fused_thompson_counts_its_draws_without_changing_a_number():
    """``work`` gets, per run, the thetas drawn and the agent's uniforms taken (what
    bench_fused.py compares with the machine's draws per second); counting or not, the same
    regret."""
    runs, horizon = 6, 4000
    means = np.tile(np.round(0.65 - 0.015 * np.arange(10), 6), (runs, 1))
    seeds = [np.random.SeedSequence(s).generate_state(runs, dtype=np.uint64) for s in (1, 2)]
    steps = np.array([horizon // 2, horizon])
    plain, counted = np.zeros((runs, 2)), np.zeros((runs, 2))
    work = np.zeros((runs, 2))
    fb.thompson_beta_loop(means, fb.quantile_bins(), np.zeros((0, 2)), steps, *seeds, plain)
    fb.thompson_beta_loop(means, fb.quantile_bins(), work, steps, *seeds, counted)
    np.testing.assert_array_equal(plain, counted)
    thetas, words = work[:, 0], work[:, 1]
    # each theta costs at least one uniform, and with ten arms this close some are drawn often
    assert np.all(thetas > horizon) and np.all(words >= thetas)
    assert np.all(words == np.round(words)) and np.all(words < 100 * horizon)
    assert int(fb.SPLITMIX_GOLDEN) * int(fb.SPLITMIX_GOLDEN_INVERSE) % 2**64 == 1


@njit(cache=True)
def _kl_ucb_plain(means, c, tol, horizon, env_seed, agent_seed):
    """KL-UCB as the fused loop chose before it bracketed indices: the leader shortcut, then
    every index the plain order reaches solved by ``kl_ucb_exact`` and cached. Regret per
    step."""
    n_arms = means.size
    state = np.array([env_seed, agent_seed], dtype=np.uint64)
    gap = means.max() - means
    counts, sums = np.zeros(n_arms), np.zeros(n_arms)
    upper, cache = np.zeros(n_arms), np.full((n_arms, 3), -1.0)
    regret, curve = 0.0, np.zeros(horizon)
    for t in range(horizon):
        arm = t
        if t >= n_arms:
            log_t = math.log(t)
            lead, lead_mean = 0, -1.0
            for k in range(n_arms):
                if sums[k] / counts[k] > lead_mean:
                    lead, lead_mean = k, sums[k] / counts[k]
            rival = -1.0
            for k in range(n_arms):
                level = c * log_t / counts[k]
                if cache[k, 0] >= 0.0:
                    upper[k] = min(1.0, cache[k, 1] + (level - cache[k, 0]) * cache[k, 2])
                else:
                    upper[k] = kl_ucb_bound(sums[k] / counts[k], level)
                if k != lead:
                    rival = max(rival, upper[k])
            arm = lead
            if rival >= fb._kl_ucb_lower(lead_mean, c * log_t / counts[lead]):
                best = -1.0
                for j in range(n_arms):
                    k = lead if j == 0 else (j - 1 if j - 1 < lead else j)
                    if upper[k] <= best:
                        continue
                    p, level = sums[k] / counts[k], c * log_t / counts[k]
                    q = kl_ucb_exact(p, level, upper[k], tol)
                    cache[k, 0], cache[k, 1] = level, q
                    cache[k, 2] = q * (1.0 - q) / (q - p) if p < q < 1.0 else np.inf
                    if q > best:
                        best, arm = q, k
        counts[arm] += 1.0
        sums[arm] += 1.0 if fb.draw_uniform(state, 0) < means[arm] else 0.0
        cache[arm, 0] = -1.0
        regret += gap[arm]
        curve[t] = regret
    return curve


@pytest.mark.parametrize("n_arms", [3, 40, 200])
def test_fused_kl_ucb_pulls_what_solving_every_index_it_reaches_pulls(n_arms):
    """The fused KL-UCB leaves the winner's index bracketed, unsolved, where the bracket
    settles each comparison: its pulls must be those of solving every index the plain order
    reaches, step for step (a bound that cut too deep would pull another arm, or leave a
    different cached index to start the next solves from). Close means make close indices."""
    means = np.round(0.65 - 0.01 * np.arange(n_arms) * (1 + np.arange(n_arms) % 2), 6)
    means = np.maximum(means, 0.05)
    horizon, runs = 4000, 3
    seeds = [np.random.SeedSequence(s).generate_state(runs, dtype=np.uint64) for s in (5, 6)]
    out = np.zeros((runs, horizon))
    fb.kl_ucb_loop(np.tile(means, (runs, 1)), 1.0, 1e-6, np.arange(1, horizon + 1), *seeds, out)
    for n in range(runs):
        plain = _kl_ucb_plain(means, 1.0, 1e-6, horizon, seeds[0][n], seeds[1][n])
        np.testing.assert_array_equal(out[n], plain)


@njit(cache=True)
def _bracket_misses(p, level, near, offset, tol):
    """(brackets given, brackets missing ``kl_ucb_exact``'s index, newton != exact) over
    arms (p, level), starting from Pinsker's bound or, where ``near``, ``offset`` above the
    root (as a cached tangent gives)."""
    given, missed, differ = 0, 0, 0
    for i in range(p.size):
        start = kl_ucb_bound(p[i], level[i])
        if near[i]:
            start = min(start, kl_ucb_exact(p[i], level[i], start, 1e-13) + offset[i])
        q = kl_ucb_exact(p[i], level[i], start, tol)
        if kl_ucb_newton(p[i], level[i], start, tol, bernoulli_entropy(p[i])) != q:
            differ += 1
        lo, hi = fb._kl_ucb_bracket(p[i], level[i], start, tol)
        if lo <= hi:
            given += 1
            missed += not (lo <= q <= hi)
    return given, missed, differ


@pytest.mark.parametrize("tol", [1e-3, 1e-6, 1e-10])
def test_kl_ucb_bracket_holds_the_solved_index(tol):
    """Every bracket the fused KL-UCB trusts holds the index Newton's method returns, and its
    Newton solve with a cached entropy returns the step kernel's float: random arms of up to
    2e5 pulls, any successes, t up to 1e6."""
    rng = np.random.default_rng(7)
    count = 200_000
    n = rng.integers(1, 200_000, count)
    p = rng.integers(0, n + 1) / n
    level = np.log(rng.integers(n, 10**6)) / n
    near = rng.random(count) < 0.5
    offset = rng.random(count) * 10.0 ** rng.uniform(-13, -2, count)
    given, missed, differ = _bracket_misses(p, level, near, offset, tol)
    assert given > 0.75 * count and missed == 0 and differ == 0
