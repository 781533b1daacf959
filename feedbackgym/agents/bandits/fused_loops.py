"""Fused regret loops for UCB1, KL-UCB and Thompson sampling on the K-armed bandits.

A regret study of these agents on :class:`~feedbackgym.envs.bandits.BernoulliBanditVec` or
:class:`~feedbackgym.envs.bandits.GaussianBanditVec` (exactly those classes, no switching cost,
regret metric ``regret``) runs here as one compiled loop per run: the env's reward draw, the
agent's choice and update and the regret bookkeeping at the checkpoints, runs in parallel with
``prange``. The fusers are registered with :func:`feedbackgym.agents.bandits.fused.register`;
anything else (other envs, wrappers, delays, other agents or a trained agent) returns None and
takes the step-by-step path, :meth:`~feedbackgym.agents.bandits.base.BanditAgent.learn`, which
stays the reference.

Random numbers. Run ``n`` owns two splitmix64 streams (``kernels._next``): one for the env's
rewards, seeded from the env seed, and one for the agent, seeded from the agent's seed; both
are words of ``numpy.random.SeedSequence``. So a run's numbers depend on the seeds and its index
only, not on the number of threads, and runs of different agents in the same cell see the same
reward stream (step t's reward uses the stream's t-th draw). They are not the numbers of the
step path, which draws from numpy generators: the paths agree in distribution.

Where the fused loops deviate from the step path (besides the streams):

- UCB1 (Auer, Cesa-Bianchi & Fischer 2002) computes its index as ``mean + sqrt(alpha log t) *
  sqrt(1 / n)``, whose last bit may differ from ``mean + sqrt(alpha log t / n)``: equal (mean,
  n) pairs still tie exactly (lowest arm first), as on the step path. It keeps the argmax of
  the arms not pulled last, which stays put until the bonus reaches the next crossing of two
  indices, so a step compares two indices instead of K; when the pulled arm changes or a
  crossing comes, K - 1 indices are scanned (``_ucb1_others``), or, above
  ``TOURNAMENT_ARMS`` arms, a kinetic tournament (``_ucb1_node``) replays the log2 K matches
  above the two leaves that changed, or those a crossing turned. Indices within float
  rounding of a crossing may be ordered differently from a full scan.
- KL-UCB (Garivier & Cappé 2011) uses the step kernel's Newton solver and bounds
  (``kernels.kl_ucb_exact``, ``kl_ucb_bound``, the tangent bound of an arm's cached index,
  kept here for arms with mean 0 too) and, before any Newton step, checks whether a lower
  bound on the empirical leader's index (a reverse Pinsker inequality) already beats every
  other arm's upper bound: then the leader is the argmax without computing its index. The choice is
  the exact argmax either way; indices are computed to ``tol`` as on the step path, so only
  arms within ``tol`` of each other may be ordered differently. Past that check every index
  the step kernel's order reaches is solved but the winner's, which is pulled (its cached
  index would go stale unused): an arm of stale cache is first bracketed without a logarithm
  (``_kl_ucb_bracket``), and solved only where the bracket leaves a comparison open, so the
  choices and the cached indices are those of solving all of them.
- Thompson sampling with a Beta prior (Thompson 1933; Agrawal & Goyal 2012) never draws a
  theta that cannot win. For its first ``PLAIN_STEPS_PER_ARM * K`` steps every theta can win:
  a posterior of fewer than ``TABLE_PULLS`` pulls is placed in one of ``TABLE_BINS`` equally
  likely bins by one uniform (a table of Beta quantiles, ``quantile_bins``), the others are
  drawn, and only the thetas whose bins reach above the highest bin floor are drawn, within
  their bins (``_beta_within``). Then every arm k but the leader (largest posterior mean) has
  a threshold q_k (``THRESHOLD_SDS`` posterior sds under the leader's mean, the number that
  makes the fewest slow steps by a normal estimate) and the exact probability
  ``P(theta_k > q_k)`` (the regularised incomplete beta), recomputed when its posterior or the
  leader changes; an arm above ``DRAW_TAIL`` of that is drawn at every step instead. The
  leader's ``P(theta_lead <= max_k q_k)`` is bounded for a few of its failures ahead and its
  events thinned. The steps at which some theta crosses its threshold are drawn ahead as
  geometric waiting times; until the next one the leader wins without a draw (its successes
  are taken in one tight run over the env stream, ``_leader_run``), and at one the thetas that
  can win are drawn from Beta conditioned on the side they fell on (rejection from full Beta
  draws, or from the exponential tangent to the log-concave density at the threshold for a
  tail); an arm that crossed its threshold is drawn only if it beats the largest theta so
  far, which a uniform decides against a bound on that probability (``_crossed``), the exact
  incomplete beta only when the bound does not. This is exact Thompson sampling: each theta_k
  has its Beta law and the choice has the step path's distribution, up to the float precision
  of the incomplete beta and of the quantile table (about 1e-13; 1e-10 relative for
  posteriors of 10^5 pulls). With a Gaussian prior every theta is drawn (ziggurat normals).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from numba import njit, prange

from feedbackgym.agents.bandits.algorithms import KLUCB, UCB1, ThompsonSampling
from feedbackgym.agents.bandits.base import check_steps
from feedbackgym.agents.bandits.fused import Run, register
from feedbackgym.agents.bandits.kernels import (
    SPLITMIX_GOLDEN,
    bernoulli_entropy,
    beta_tails,
    beta_tails_density,
    draw_gamma,
    draw_normal,
    draw_uniform,
    kl_ucb_bound,
    kl_ucb_newton,
    mix64,
    set_gamma_constants,
    unit_float,
)
from feedbackgym.envs.bandits import BernoulliBanditVec, GaussianBanditVec

#: Thompson sampling's thresholds: one of THRESHOLD_SDS posterior sds under the leader's mean.
THRESHOLD_SDS = np.array([3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5])
#: ... under which the leader's theta falls about this often (its thinning budget: ~0.5 sd)
_LEADER_RATES = 0.5 * np.array([math.erfc((sds - 0.5) / math.sqrt(2.0)) for sds in THRESHOLD_SDS])
#: ... and its first PLAIN_STEPS_PER_ARM * K steps draw every theta (thresholds would not pay).
PLAIN_STEPS_PER_ARM = 45
#: There a posterior of fewer than TABLE_PULLS pulls is first placed in one of TABLE_BINS
#: equally likely quantile bins (a table lookup): only the thetas whose bins can win are drawn.
TABLE_PULLS, TABLE_BINS = 64, 256
#: An arm whose theta exceeds the threshold with probability above DRAW_TAIL is drawn at
#: every step instead (its crossings would cost more than its draws).
DRAW_TAIL = 0.25
#: UCB1 keeps its argmax in a tournament above this many arms (below, a scan is as fast)
TOURNAMENT_ARMS = 32
_ENV, _AGENT = 0, 1  # the two streams of a run, in its local state array
#: 1 / n for KL-UCB's series of kl (``_kl_series``)
_INVERSES = np.array([0.0] + [1.0 / n for n in range(1, 66)])
#: splitmix64's counter advances by SPLITMIX_GOLDEN a word: words drawn = advance * its
#: inverse mod 2^64
SPLITMIX_GOLDEN_INVERSE = np.uint64(pow(int(SPLITMIX_GOLDEN), -1, 2**64))


# ----- the env: a reward draw and the regret bookkeeping ---------------------------------------
@njit(cache=True, error_model="numpy", inline="always")
def _reward(state: np.ndarray, mean: float, gaussian: bool, sigma: float) -> float:
    """One reward of an arm with this mean: Bernoulli(mean), or N(mean, sigma^2)."""
    if gaussian:
        return mean + sigma * draw_normal(state, _ENV)
    return 1.0 if draw_uniform(state, _ENV) < mean else 0.0


@njit(cache=True, error_model="numpy", inline="always")
def _run_state(env_seed: np.uint64, agent_seed: np.uint64) -> np.ndarray:
    state = np.empty(2, dtype=np.uint64)
    state[_ENV] = env_seed
    state[_AGENT] = agent_seed
    return state


@njit(cache=True, error_model="numpy", inline="always")
def _gaps(means: np.ndarray) -> np.ndarray:
    """best - mean of every arm, the step path's per-step regret of pulling it."""
    return means.max() - means


# ----- UCB1 --------------------------------------------------------------------------------------
@njit(cache=True, parallel=True, error_model="numpy")
def ucb1_loop(
    means: np.ndarray,
    gaussian: bool,
    sigma: float,
    alpha: float,
    steps: np.ndarray,
    env_seeds: np.ndarray,
    agent_seeds: np.ndarray,
    out: np.ndarray,
) -> None:
    """UCB1 (Auer et al. 2002) for every run: ``out[n, j]`` = cumulative regret at steps[j]."""
    n_runs, n_arms = means.shape
    horizon = steps[-1]
    # Shared tables: sqrt(alpha log t) per step, sqrt(1 / n) per count (the same floats as
    # computing them in the loop, without a log and two square roots per step).
    scale = np.zeros(horizon)
    width_of = np.zeros(horizon + 1)
    tournament = n_arms > TOURNAMENT_ARMS
    size = 1
    while size < n_arms:
        size *= 2
    for t in range(1, horizon + 1):
        width_of[t] = math.sqrt(1.0 / t)
        if t < horizon:
            scale[t] = math.sqrt(alpha * math.log(t))
    for n in prange(n_runs):
        state = _run_state(env_seeds[n], agent_seeds[n])
        mu = means[n].copy()
        gap = _gaps(mu)
        counts = np.zeros(n_arms, dtype=np.int64)
        sums = np.zeros(n_arms)
        mean = np.zeros(n_arms)
        width = np.zeros(n_arms)  # sqrt(1 / n_k)
        # the tournament of every arm but the one pulled last (``_ucb1_node``): leaves at
        # ``size + k``, -1 for an arm out of it
        win = np.full(2 * size, -1, dtype=np.int64)
        expiry = np.full(2 * size, np.inf)
        scratch = np.empty(4 * size, dtype=np.int64)
        regret = 0.0
        cp = 0
        last = 0  # the arm pulled at the step before
        left_out = -1  # the arm the cached argmax (scan or tournament) leaves out
        other = 0  # the first argmax of every other arm's index, for as long as bonus < until
        until = -1.0
        for t in range(horizon):  # t: updates so far, as the agent's own t
            if t < n_arms:
                arm = t
            else:
                bonus = scale[t]
                if not tournament:  # a scan of the K - 1 others, when needed
                    if left_out != last or bonus >= until:
                        left_out = last
                        other, until = _ucb1_others(mean, width, bonus, left_out)
                else:
                    if t == n_arms:  # every arm pulled once: the tournament starts
                        for k in range(n_arms):
                            win[size + k] = k
                        for i in range(size - 1, 0, -1):
                            _ucb1_node(win, expiry, mean, width, bonus, i)
                    if left_out != last:  # the arm left out comes back, the one pulled leaves
                        if left_out >= 0:
                            win[size + left_out] = left_out
                            _ucb1_path(win, expiry, mean, width, bonus, size + left_out)
                        win[size + last] = -1
                        _ucb1_path(win, expiry, mean, width, bonus, size + last)
                        left_out = last
                    if bonus >= expiry[1]:  # some match may have turned: replay those
                        _ucb1_replay(win, expiry, mean, width, bonus, scratch)
                    other = win[1]
                arm = last
                if other >= 0:
                    mine = mean[last] + bonus * width[last]
                    theirs = mean[other] + bonus * width[other]
                    if not (mine > theirs or (mine == theirs and last < other)):
                        arm = other
            r = _reward(state, mu[arm], gaussian, sigma)
            counts[arm] += 1
            sums[arm] += r
            mean[arm] = sums[arm] / counts[arm]
            width[arm] = width_of[counts[arm]]
            regret += gap[arm]
            last = arm
            if t + 1 == steps[cp]:
                out[n, cp] = regret
                cp = min(cp + 1, steps.size - 1)


@njit(cache=True, error_model="numpy", inline="always")
def _ucb1_others(
    mean: np.ndarray, width: np.ndarray, bonus: float, left_out: int
) -> tuple[int, float]:
    """The first argmax of ``mean + bonus * width`` over every arm but ``left_out``, and the
    bonus up to which it stays the argmax while those arms' counts stay as they are: an arm of
    larger width overtakes it at bonus (m_other - m_k) / (w_k - w_other), the others never do.
    Only the arm pulled last changes its (mean, width) from step to step, and the bonus grows
    slowly, so UCB1 compares two indices per step and scans all K only when the pulled arm
    changes or a crossing comes (a small margin before it, against float rounding)."""
    other = -1
    best = -np.inf
    for k in range(mean.size):
        if k != left_out:
            index = mean[k] + bonus * width[k]
            if index > best:
                best = index
                other = k
    until = np.inf
    for k in range(mean.size):
        if k != left_out and k != other:
            wider = width[k] - width[other]
            if wider > 0.0:
                until = min(until, (mean[other] - mean[k]) / wider)
    return other, until - 1e-9 * abs(until)


@njit(cache=True, error_model="numpy", inline="always")
def _ucb1_node(
    win: np.ndarray,
    expiry: np.ndarray,
    mean: np.ndarray,
    width: np.ndarray,
    bonus: float,
    i: int,
) -> None:
    """Match ``i`` of UCB1's tournament (a kinetic tournament tree, Basch, Guibas & Hershberger
    1999): the first argmax of ``mean + bonus * width`` over its two children's winners (the
    left one, of lower indices, on a tie), and the bonus up to which every match under it
    stands: a loser of larger width overtakes its winner at bonus (m_w - m_l) / (w_l - w_w),
    the others never do while the counts stay as they are (a small margin before the
    crossing, against float rounding)."""
    left, right = win[2 * i], win[2 * i + 1]
    if left < 0 or right < 0:
        win[i] = right if left < 0 else left
        expiry[i] = expiry[2 * i + 1] if left < 0 else expiry[2 * i]
        return
    winner, loser = left, right
    if mean[right] + bonus * width[right] > mean[left] + bonus * width[left]:
        winner, loser = right, left
    until = np.inf
    wider = width[loser] - width[winner]
    if wider > 0.0:
        until = (mean[winner] - mean[loser]) / wider
        until -= 1e-9 * abs(until)
    win[i] = winner
    expiry[i] = min(until, expiry[2 * i], expiry[2 * i + 1])


@njit(cache=True, error_model="numpy", inline="always")
def _ucb1_path(
    win: np.ndarray,
    expiry: np.ndarray,
    mean: np.ndarray,
    width: np.ndarray,
    bonus: float,
    leaf: int,
) -> None:
    """Replay the matches from a leaf that changed up to the final."""
    i = leaf >> 1
    while i >= 1:
        _ucb1_node(win, expiry, mean, width, bonus, i)
        i >>= 1


@njit(cache=True, error_model="numpy")
def _ucb1_replay(
    win: np.ndarray,
    expiry: np.ndarray,
    mean: np.ndarray,
    width: np.ndarray,
    bonus: float,
    scratch: np.ndarray,
) -> None:
    """Replay every match that may have turned by ``bonus`` (its expiry reached), children
    before parents; the matches under a standing one stand too. ``scratch``: 4 x the leaves."""
    leaves = expiry.size // 2
    order = scratch[: 2 * leaves]  # the expired matches, parents first
    stack = scratch[2 * leaves :]
    found, top = 0, 0
    stack[0] = 1
    while top >= 0:
        i = stack[top]
        top -= 1
        if expiry[i] > bonus:
            continue
        order[found] = i
        found += 1
        if i < leaves:  # a match (leaves, i >= leaves, never expire): its two children
            stack[top + 1] = 2 * i
            stack[top + 2] = 2 * i + 1
            top += 2
    for j in range(found - 1, -1, -1):
        _ucb1_node(win, expiry, mean, width, bonus, order[j])


# ----- KL-UCB ------------------------------------------------------------------------------------
@njit(cache=True, error_model="numpy", inline="always")
def _kl_ucb_lower(p: float, level: float) -> float:
    """A lower bound on the KL-UCB index max{q : kl(p, q) <= level}: kl(p, q) = int_p^q (s - p)
    / (s (1 - s)) ds <= (q - p)^2 / (2 m), m = min(p (1 - p), q (1 - q)), so the smaller of the
    roots of (q - p)^2 = 2 level p (1 - p) and (q - p)^2 = 2 level q (1 - q) has kl <= level."""
    q1 = p + math.sqrt(2.0 * level * p * (1.0 - p))
    half = p + level
    disc = half * half - (1.0 + 2.0 * level) * p * p
    q2 = (half + math.sqrt(max(disc, 0.0))) / (1.0 + 2.0 * level)
    return min(1.0, q1, q2)


@njit(cache=True, error_model="numpy", inline="always")
def _kl_series(p: float, d: float) -> tuple[float, float]:
    """(S, E): kl(p, p + d) lies in [S - E, S + E], by its power series in d (no logarithm):
    kl = d sum_{n >= 2} (z^(n-1) + (-1)^n x^(n-1)) / n, x = d / p, z = d / (1 - p), summed
    until the rest is under 1e-10 of it: the x part alternates with shrinking terms (its rest
    is under the first term left out), the z part is under a geometric series. E = -1 where
    x or z is above 1/2 (slow to converge)."""
    x = d / p
    z = d / (1.0 - p)
    if not (0.0 < x <= 0.5 and 0.0 < z <= 0.5):
        return 0.0, -1.0
    total = 0.0
    xn = 1.0  # x^(n-1), z^(n-1)
    zn = 1.0
    sign = 1.0  # (-1)^n
    for n in range(2, _INVERSES.size - 1):
        xn *= x
        zn *= z
        total += (zn + sign * xn) * _INVERSES[n]
        sign = -sign
        rest = (xn * x + zn * z / (1.0 - z)) * _INVERSES[n + 1]
        if rest <= 1e-10 * total:
            return d * total, d * rest + 1e-13 * d * total
    return 0.0, -1.0


@njit(cache=True, error_model="numpy", inline="always")
def _kl_ucb_bracket(p: float, level: float, start: float, tol: float) -> tuple[float, float]:
    """(lo, hi) around what ``kl_ucb_exact(p, level, start, tol)`` returns, without a
    logarithm; lo > hi where it cannot tell (p or the index near 0 or 1, a slow series).

    The root of kl(p, q) = level is guessed by two fixed-point steps on a bound of kl (f(s) =
    1 / (s (1 - s)) under its chord: kl <= d^2 (f(p) / 6 + f(q) / 3), d = q - p) and one
    Newton step on kl's series (``_kl_series``), then bracketed by convexity: kl(q + h) >=
    kl(q) + kl'(q) h and kl(q - h) <= kl(q) - kl'(q - h) h, kl'(q) = (q - p) / (q (1 - q)).
    Newton's method comes down onto the root from ``start`` and stops one step under ``tol``
    past it: as g(y) = kl(p, 1 - e^-y) is convex, that step leaves at most tol (start - root)
    / (root - p) of it; the rest is float rounding (``err``)."""
    if not (1e-9 < p < 1.0 - 1e-9):
        return 1.0, 0.0
    fp = 1.0 / (p * (1.0 - p))
    d = math.sqrt(2.0 * level / fp)
    for _ in range(2):
        q = min(p + d, 1.0 - 1e-9)
        d = math.sqrt(level / (fp / 6.0 + 1.0 / (3.0 * q * (1.0 - q))))
    q = p + d
    value, err = _kl_series(p, d)
    if err < 0.0:
        return 1.0, 0.0
    q -= (value - level) * q * (1.0 - q) / d
    d = q - p
    value, err = _kl_series(p, d)
    if not (err >= 0.0 and q < 1.0 - 1e-9):
        return 1.0, 0.0
    slope = d / (q * (1.0 - q))
    h = 2.0 * (abs(value - level) + err) / slope * (1.0 + 1e-9) + 1e-15
    low, high = q - h, q + h
    # kl(high) >= value - err + slope h >= level by the choice of h; kl(low) needs its slope
    if not (low > p and (low - p) / (low * (1.0 - low)) * h >= value + err - level):
        return 1.0, 0.0
    err = 1e-12 + 1e-13 / (low - p)
    return low - err, high + tol * (max(start, high) - low) / (low - p) + err


@njit(cache=True, error_model="numpy", inline="always")
def _kl_ucb_solve(
    k: int,
    sums: np.ndarray,
    counts: np.ndarray,
    entropy: np.ndarray,
    level: np.ndarray,
    upper: np.ndarray,
    tol: float,
    cache: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> None:
    """Arm k's index by Newton's method, as the step path finds it, and its cache entry."""
    p = sums[k] / counts[k]
    if entropy[k, 1] != counts[k]:
        entropy[k, 0] = bernoulli_entropy(p)
        entropy[k, 1] = counts[k]
    q = kl_ucb_newton(p, level[k], upper[k], tol, entropy[k, 0])
    cache[k, 0] = level[k]
    cache[k, 1] = q
    # q(level) is concave for p = 0 too (1 - e^-level): keep its slope
    cache[k, 2] = q * (1.0 - q) / (q - p) if p < q < 1.0 else np.inf
    lo[k] = hi[k] = q


@njit(cache=True, parallel=True, error_model="numpy")
def kl_ucb_loop(
    means: np.ndarray,
    c: float,
    tol: float,
    steps: np.ndarray,
    env_seeds: np.ndarray,
    agent_seeds: np.ndarray,
    out: np.ndarray,
) -> None:
    """KL-UCB (Garivier & Cappé 2011) on Bernoulli arms for every run (see the module doc).

    The choice is :func:`~feedbackgym.agents.bandits.kernels.kl_ucb_choose`'s, per run, after one
    shortcut: when a lower bound on the leader's index beats every other arm's upper bound the
    leader is pulled without its index being solved. Past it, the arms are taken in the same
    order and each index that order solves is solved, but for the arm that wins: it is pulled,
    so its cached index goes stale unused, and where its bracket (``_kl_ucb_bracket``, for an
    arm whose cache is stale, the one whose Newton solve takes longest) settles every
    comparison it is in, it is never solved. Any comparison a bracket leaves open solves both
    sides, so the choices and every cached index are the ones the plain order computes.
    """
    n_runs, n_arms = means.shape
    horizon = steps[-1]
    for n in prange(n_runs):
        state = _run_state(env_seeds[n], agent_seeds[n])
        mu = means[n].copy()
        gap = _gaps(mu)
        counts = np.zeros(n_arms)
        sums = np.zeros(n_arms)
        # each mean's bernoulli_entropy, and the count it was computed at
        entropy = np.zeros((n_arms, 2))
        level = np.zeros(n_arms)
        upper = np.zeros(n_arms)
        cache = np.full((n_arms, 3), -1.0)  # (level, index, 1 / kl'(p, index)) as the step path
        lo = np.zeros(n_arms)  # this step's index of each arm solved (lo = hi) or bracketed
        hi = np.zeros(n_arms)
        solved = np.empty(n_arms, dtype=np.int64)
        regret = 0.0
        cp = 0
        for t in range(horizon):
            if t < n_arms:
                arm = t
            else:
                log_t = math.log(t)
                lead = 0
                lead_mean = -1.0
                for k in range(n_arms):
                    m = sums[k] / counts[k]
                    if m > lead_mean:
                        lead_mean = m
                        lead = k
                # upper bounds of every arm's index (Pinsker, and the cached tangent)
                rival = -1.0
                for k in range(n_arms):
                    lev = c * log_t / counts[k]
                    level[k] = lev
                    if cache[k, 0] >= 0.0:  # the cached index's tangent, else Pinsker
                        bound = min(1.0, cache[k, 1] + (lev - cache[k, 0]) * cache[k, 2])
                    else:
                        bound = kl_ucb_bound(sums[k] / counts[k], lev)
                    upper[k] = bound
                    if k != lead and bound > rival:
                        rival = bound
                arm = lead
                if rival >= _kl_ucb_lower(lead_mean, level[lead]):
                    # the best so far, index in [best_lo, best_hi] (-1: none yet)
                    best, best_lo, best_hi = -1, -1.0, -1.0
                    n_solved = 0
                    for j in range(n_arms):
                        k = lead if j == 0 else (j - 1 if j - 1 < lead else j)
                        if upper[k] <= best_lo:
                            continue
                        if upper[k] <= best_hi:  # (best_hi >= 0: a best is bracketed)
                            _kl_ucb_solve(
                                best, sums, counts, entropy, level, upper, tol, cache, lo, hi
                            )
                            best_lo = best_hi = lo[best]
                            if upper[k] <= best_lo:
                                continue
                        solved[n_solved] = k
                        n_solved += 1
                        lo[k], hi[k] = 1.0, 0.0
                        if cache[k, 0] < 0.0:
                            lo[k], hi[k] = _kl_ucb_bracket(
                                sums[k] / counts[k], level[k], upper[k], tol
                            )
                        if lo[k] > hi[k]:
                            _kl_ucb_solve(
                                k, sums, counts, entropy, level, upper, tol, cache, lo, hi
                            )
                        # does k's index beat the best so far?
                        if lo[k] <= best_hi and hi[k] > best_lo:  # open: solve k, then best
                            if lo[k] < hi[k]:
                                _kl_ucb_solve(
                                    k, sums, counts, entropy, level, upper, tol, cache, lo, hi
                                )
                            if lo[k] <= best_hi and lo[k] > best_lo:
                                _kl_ucb_solve(
                                    best, sums, counts, entropy, level, upper, tol, cache, lo, hi
                                )
                                best_lo = best_hi = lo[best]
                        if lo[k] > best_hi:
                            best, best_lo, best_hi = k, lo[k], hi[k]
                    arm = best
                    for i in range(n_solved):  # every other index solved, as cached
                        k = solved[i]
                        if k != arm and lo[k] < hi[k]:
                            _kl_ucb_solve(
                                k, sums, counts, entropy, level, upper, tol, cache, lo, hi
                            )
            r = _reward(state, mu[arm], False, 0.0)
            counts[arm] += 1.0
            sums[arm] += r
            cache[arm, 0] = -1.0  # the pulled arm's index is stale
            regret += gap[arm]
            if t + 1 == steps[cp]:
                out[n, cp] = regret
                cp = min(cp + 1, steps.size - 1)


# ----- Thompson sampling -------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def shape_constants(count: int) -> np.ndarray:
    """The gamma constants (``set_gamma_constants``) of the shapes 1, 2, ..., count: a Beta
    posterior's parameters are whole numbers, so its draws read them from here."""
    table = np.empty((1, count, 2))
    for i in range(count):
        set_gamma_constants(table, 0, i, i + 1.0)
    return table


@njit(cache=True, error_model="numpy", inline="always")
def draw_theta(
    state: np.ndarray, shapes: np.ndarray, a: np.ndarray, b: np.ndarray, k: int
) -> float:
    """theta_k ~ Beta(a_k, b_k) as a ratio of gamma variates, as the step path draws it."""
    i, j = int(a[k]) - 1, int(b[k]) - 1
    x = draw_gamma(state, _AGENT, shapes[0, i, 0], shapes[0, i, 1])
    y = draw_gamma(state, _AGENT, shapes[0, j, 0], shapes[0, j, 1])
    return x / (x + y)


@njit(cache=True, error_model="numpy", inline="always")
def _log_density(a: float, b: float, x: float) -> float:
    """log of Beta(a, b)'s density at x, up to a constant (a term whose coefficient is 0 is 0)."""
    out = 0.0
    if a != 1.0:
        out += (a - 1.0) * math.log(x)
    if b != 1.0:
        out += (b - 1.0) * math.log1p(-x)
    return out


@njit(cache=True, error_model="numpy")
def _beta_above(state: np.ndarray, a: float, b: float, q: float) -> float:
    """theta ~ Beta(a, b) conditioned on theta > q (a, b >= 1), by rejection.

    The density is log-concave, so the tangent of its log at q bounds it on (q, 1]: propose from
    the truncated exponential of that slope, accept with density / envelope. Most proposals are
    accepted by a squeeze without a logarithm: the log-density lies at most
    ``M (x - q)^2 / 2`` under its tangent, M the largest curvature on [q, x] (at an end, the
    curvature being convex), and ``log u <= u - 1``.
    """
    slope = (a - 1.0) / q - (b - 1.0) / (1.0 - q)
    width = 1.0 - q
    rate = abs(slope)
    mass = -math.expm1(-rate * width)
    curve_q = (a - 1.0) / (q * q) + (b - 1.0) / (width * width)  # -(log density)'' at q
    while True:
        u = draw_uniform(state, _AGENT)
        if rate * width < 1e-12:
            x = q + u * width
        else:
            y = -math.log1p(-u * mass) / rate  # Exp(rate) truncated to [0, width)
            x = q + y if slope < 0.0 else 1.0 - y
        if x <= q or x >= 1.0:
            continue
        u = draw_uniform(state, _AGENT)
        curve = max(curve_q, (a - 1.0) / (x * x) + (b - 1.0) / ((1.0 - x) * (1.0 - x)))
        if u <= 1.0 - 0.5 * curve * (x - q) * (x - q):
            return x
        # past the squeeze (rarely): the exact test, density over envelope
        if math.log(u) <= _log_density(a, b, x) - _log_density(a, b, q) - slope * (x - q):
            return x


@njit(cache=True, error_model="numpy")
def _reference(a: np.ndarray, b: np.ndarray, lead: int) -> float:
    """The threshold of every arm but the leader: some posterior sds under the leader's mean,
    where the leader's theta almost always is. The number of sds (``THRESHOLD_SDS``) is the one
    that makes the fewest steps slow by a normal estimate: the leader's theta falls under it
    with probability about Phi(-sds) (its thinning bound, about Phi(0.5 - sds)), arm k's rises
    over it with about Phi((m_k - q) / s_k).
    Any threshold keeps the sampling exact; this only picks a fast one."""
    total = a[lead] + b[lead]
    mean = a[lead] / total
    sd = math.sqrt(a[lead] * b[lead] / (total * total * (total + 1.0)))
    rates = _LEADER_RATES.copy()
    for k in range(a.size):
        if k != lead:
            n_k = a[k] + b[k]
            m_k = a[k] / n_k
            s_k = math.sqrt(2.0 * a[k] * b[k] / (n_k * n_k * (n_k + 1.0)))
            for i in range(THRESHOLD_SDS.size):
                z = (mean - THRESHOLD_SDS[i] * sd - m_k) / s_k
                if z < 6.0:  # beyond, the term is under 1e-17
                    rates[i] += 0.5 * math.erfc(z)
    return mean - THRESHOLD_SDS[np.argmin(rates)] * sd


@njit(cache=True, error_model="numpy", inline="always")
def _threshold(a: float, b: float, reference: float) -> tuple[float, float, float]:
    """(q, P(theta > q), hazard f(q) / P(theta > q)) for theta ~ Beta(a, b): q is the reference,
    or 1 (always drawn; tail and hazard 0) for an arm whose theta would exceed it with
    probability above ``DRAW_TAIL`` (or a reference <= 0)."""
    if reference <= 0.0:
        return 1.0, 0.0, 0.0
    # under the smaller of the mean and the mode the tail is more than half (the median lies
    # between them for a, b > 1, and above the mean for b = 1), so above DRAW_TAIL: no
    # incomplete beta needed
    floor = a / (a + b)
    if b > 1.0 and a > 1.0:
        floor = min(floor, (a - 1.0) / (a + b - 2.0))
    if (b == 1.0 or a > 1.0) and reference < floor:
        return 1.0, 0.0, 0.0
    _, tail, density = beta_tails_density(reference, a, b)
    if tail > DRAW_TAIL:
        return 1.0, 0.0, 0.0
    return reference, tail, density / tail


@njit(cache=True, error_model="numpy", inline="always")
def _crossed(
    state: np.ndarray, a: float, b: float, q: float, tail: float, hazard: float, top: float
) -> float:
    """theta ~ Beta(a, b) given theta > q, where only whether it beats ``top`` matters: the
    draw when it does, else -1 (not drawn).

    For top > q, P(theta > top | theta > q) = S(top) / S(q) <= exp(-hazard (top - q)): the
    density is log-concave, so is the survival function S (Bagnoli & Bergstrom 2005), and its
    log lies under its tangent at q. A uniform above that bound loses at once; under it, the
    exact ratio decides, and a winner is drawn from the tail above top."""
    if top <= q:
        return _beta_above(state, a, b, q)
    u = draw_uniform(state, _AGENT)
    if u >= math.exp(-hazard * (top - q)):
        return -1.0
    if u * tail >= beta_tails(top, a, b)[1]:
        return -1.0
    return _beta_above(state, a, b, top)


@njit(cache=True, error_model="numpy", inline="always")
def _geometric(state: np.ndarray, p: float, cap: int) -> int:
    """G ~ Geometric(p) on {1, 2, ...} (steps until the first success), capped at ``cap``."""
    if p <= 0.0:
        return cap
    if p >= 1.0:
        return 1
    g = 1.0 + math.floor(math.log(draw_uniform(state, _AGENT)) / math.log1p(-p))
    return cap if g >= cap else int(g)


@njit(cache=True, error_model="numpy")
def _beta_side(
    state: np.ndarray,
    shapes: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    k: int,
    x: float,
    below: bool,
    p_below: float,
) -> float:
    """theta_k ~ Beta(a_k, b_k) conditioned on theta_k <= x (``below``) or > x, where
    ``p_below`` = P(theta_k <= x): by rejection from full draws when the side holds at least
    half the mass, else from the tail sampler (the lower tail as the mirror of an upper one)."""
    if below and p_below < 0.5:
        return 1.0 - _beta_above(state, b[k], a[k], 1.0 - x)
    if not below and p_below > 0.5:
        return _beta_above(state, a[k], b[k], x)
    theta = draw_theta(state, shapes, a, b, k)
    while (theta <= x) != below:
        theta = draw_theta(state, shapes, a, b, k)
    return theta


@njit(cache=True, parallel=True, error_model="numpy")
def _quantile_bins(pulls: int, bins: int) -> np.ndarray:
    """Edges of ``bins`` equally likely bins of every Beta(1 + s, 1 + n - s), n < ``pulls``:
    row ``n (n + 1) / 2 + s`` holds the quantiles 0, 1 / bins, ..., 1, each solved by Newton's
    method on the incomplete beta from the last edge (bisection where a step leaves the
    bracket), to float precision."""
    edges = np.empty((pulls * (pulls + 1) // 2, bins + 1))
    for cell in prange(pulls * (pulls + 1)):  # (n, s) in both orders: rows of even cost
        n = cell // (pulls + 1)
        s = cell - n * (pulls + 1)
        if s > n:
            n, s = pulls - 1 - n, s - n - 1  # the other half of the square
        a, b = 1.0 + s, 1.0 + n - s
        row = edges[n * (n + 1) // 2 + s]
        row[0], row[bins] = 0.0, 1.0
        x, below, density = 0.0, 0.0, 0.0
        for j in range(1, bins):
            p = j / bins
            lo, hi = row[j - 1], 1.0
            nxt = x + (p - below) / density if density > 0.0 else 0.5 * (lo + hi)
            for _ in range(200):
                if not lo < nxt < hi:
                    nxt = 0.5 * (lo + hi)
                if abs(nxt - x) <= 1e-16 + 1e-15 * x:
                    x = nxt
                    break
                x = nxt
                below, _, density = beta_tails_density(x, a, b)
                if below < p:
                    lo = x
                else:
                    hi = x
                nxt = x - (below - p) / density if density > 0.0 else 0.5 * (lo + hi)
            row[j] = x
    return edges


@functools.cache
def quantile_bins() -> np.ndarray:
    """The table of :func:`_quantile_bins` for ``TABLE_PULLS`` and ``TABLE_BINS``, built once."""
    return _quantile_bins(TABLE_PULLS, TABLE_BINS)


@njit(cache=True, error_model="numpy")
def _beta_within(state: np.ndarray, a: float, b: float, lo: float, hi: float) -> float:
    """theta ~ Beta(a, b) conditioned on lo <= theta <= hi, by rejection from the uniform on
    [lo, hi] under the density's largest value there (log-concave: at the mode, clamped)."""
    mode = (a - 1.0) / (a + b - 2.0) if a + b > 2.0 else lo
    peak = _log_density(a, b, min(max(mode, lo), hi))
    while True:
        x = lo + (hi - lo) * draw_uniform(state, _AGENT)
        if 0.0 < x < 1.0 and math.log(draw_uniform(state, _AGENT)) <= _log_density(a, b, x) - peak:
            return x


@njit(cache=True, error_model="numpy", inline="always")
def _leader_run(
    state: np.ndarray, mean: float, gap: float, regret: float, most: int
) -> tuple[int, float]:
    """The leader's successes from now on, at most ``most``: the Bernoulli(mean) rewards of
    the env stream, one a step as ``_reward`` draws them, taken while they are 1 and the
    stream left at the first 0 (not drawn, so the step that fails draws it again).
    Returns (successes, regret + gap for each)."""
    counter = state[_ENV]
    wins = 0
    while wins < most:
        z = counter + SPLITMIX_GOLDEN
        if unit_float(mix64(z)) >= mean:
            break
        counter = z
        wins += 1
        regret += gap
    state[_ENV] = counter
    return wins, regret


@njit(cache=True, error_model="numpy", inline="always")
def _argmax_except(values: np.ndarray, skip: int) -> int:
    """The first index of the largest value but ``skip`` (``skip`` when it is the only one;
    ``skip = -1``: the argmax, with the step path's tie rule)."""
    best = -1
    for k in range(values.size):
        if k != skip and (best < 0 or values[k] > values[best]):
            best = k
    return skip if best < 0 else best


@njit(cache=True, parallel=True, error_model="numpy")
def thompson_beta_loop(
    means: np.ndarray,
    bins: np.ndarray,
    work: np.ndarray,
    steps: np.ndarray,
    env_seeds: np.ndarray,
    agent_seeds: np.ndarray,
    out: np.ndarray,
) -> None:
    """Beta-Bernoulli Thompson sampling (Thompson 1933; Agrawal & Goyal 2012), exact, drawing
    only the thetas that can win (see the module doc).

    Every other arm k has a threshold q_k and ``tail_k = P(theta_k > q_k)``; its "theta_k >
    q_k" events are i.i.d. Bernoulli(tail_k) over the steps while q_k and its posterior stay
    as they are, so the step of the next one is drawn ahead as a geometric waiting time
    (``event[k]``). The leader's "theta_lead <= ell" events (``ell``: the largest q_k) are
    thinned: candidates come at rate ``pbar``, a bound on their probability that holds until
    the leader has failed ``budget`` more times (Beta is stochastically increasing in a and
    decreasing in b), and a candidate is an event with probability P(theta_lead <= ell) / pbar.
    Until the next event of any kind, every theta_k <= q_k <= ell < theta_lead: the leader is
    pulled and no theta is drawn. At an event the arms always drawn (``drawn``) are drawn
    first; the others matter only when one crossed its threshold or a threshold lies above the
    largest theta so far. The first ``PLAIN_STEPS_PER_ARM * K`` steps treat every theta as
    one that can win (with wide posteriors the thresholds would not pay for themselves): each
    is placed in its quantile bin (``bins``, from :func:`quantile_bins`) or drawn, and the
    bins that reach above the highest bin floor are drawn within. Every non-leader's
    threshold is one reference (unless it is always drawn), set from the leader's posterior
    when the leader has fallen close to it and at steps 2^j; an arm's tail is recomputed after
    it is pulled or stops leading.

    ``work``: (runs, 2) to count, per run, the thetas drawn (full, conditioned or within a
    bin) and the agent stream's uniforms (64-bit words) it took; (0, 2) not to.
    """
    n_runs, n_arms = means.shape
    counting = work.shape[0] > 0
    horizon = steps[-1]
    never = horizon + 1
    shapes = shape_constants(horizon + 2)
    for n in prange(n_runs):
        state = _run_state(env_seeds[n], agent_seeds[n])
        mu = means[n].copy()
        gap = _gaps(mu)
        a = np.ones(n_arms)  # Beta(1 + S, 1 + F)
        b = np.ones(n_arms)
        post = np.full(n_arms, 0.5)  # posterior means
        q = np.ones(n_arms)
        tail = np.zeros(n_arms)  # P(theta_k > q_k)
        hazard = np.zeros(n_arms)  # density / tail at q_k
        event = np.zeros(n_arms, dtype=np.int64)  # next step at which theta_k > q_k
        stale = np.ones(n_arms, dtype=np.bool_)
        any_stale = True
        lead = 0
        reference = 0.0  # the non-leaders' threshold, set from the leader's posterior
        renew = True  # set the reference anew and every threshold with it
        lead_stale = True
        ell, pbar, budget, cand = 1.0, 1.0, 0, 0  # the leader's thinned "theta <= ell" events
        next_any = 0  # the first step with an event of any arm
        next_ev = 0  # ... of a non-leader's threshold (a lower bound)
        drawn = np.empty(n_arms, dtype=np.int64)  # the non-leaders without a threshold
        n_drawn, q_others = 0, 0.0  # ... how many, and the others' largest threshold
        held = np.empty(n_arms, dtype=np.int64)  # the non-leaders with a threshold
        n_held = 0
        runner = 0  # the non-leader of largest posterior mean (first on ties)
        refresh = 1
        plain = PLAIN_STEPS_PER_ARM * n_arms
        n_bins = bins.shape[1] - 1
        n_table = int(0.5 * (math.sqrt(8.0 * bins.shape[0] + 1.0) - 1.0))  # rows: n(n+1)/2
        low = np.empty(n_arms)  # the plain steps' bins
        high = np.empty(n_arms)
        binned = np.zeros(n_arms, dtype=np.bool_)
        regret = 0.0
        variates = 0
        cp = 0
        t = 0
        while t < horizon:
            if t > plain and t < next_any and not (renew or any_stale or lead_stale):
                # until the next event, a refresh or a checkpoint the leader is pulled without
                # a draw, and only its failure changes more than its count: its successes
                # are taken in one run, the first failure (if any) as a step of its own
                most = min(next_any, refresh, steps[cp] - 1) - t
                if most > 0:
                    wins, regret = _leader_run(state, mu[lead], gap[lead], regret, most)
                    if wins > 0:
                        t += wins
                        a[lead] += wins
                        post[lead] = a[lead] / (a[lead] + b[lead])
            if t < plain:  # wide posteriors: every theta can win
                # each theta is placed in its quantile bin (few pulls) or drawn; only those
                # whose bins reach above the highest bin floor are then drawn within them
                floor, first = -1.0, 0
                for k in range(n_arms):
                    pulls = int(a[k] + b[k]) - 2
                    if pulls < n_table:
                        u = draw_uniform(state, _AGENT) * n_bins
                        j = min(int(u), n_bins - 1)
                        row = pulls * (pulls + 1) // 2 + int(a[k]) - 1
                        low[k], high[k], binned[k] = bins[row, j], bins[row, j + 1], True
                    else:
                        low[k] = high[k] = draw_theta(state, shapes, a, b, k)
                        binned[k] = False
                        variates += 1
                    if low[k] > floor:
                        floor, first = low[k], k
                arm, top = first, -1.0
                contenders = 0
                for k in range(n_arms):
                    if high[k] > floor or k == first:
                        contenders += 1
                if contenders > 1:
                    for k in range(n_arms):
                        if high[k] > floor or k == first:
                            theta = low[k]
                            if binned[k]:
                                theta = _beta_within(state, a[k], b[k], low[k], high[k])
                                variates += 1
                            if theta > top:
                                top, arm = theta, k
            else:
                if t == plain:
                    lead = _argmax_except(post, -1)
                    runner = _argmax_except(post, lead)
                    refresh = 2 * max(plain, 1)
                if t == refresh:
                    renew = True
                    refresh *= 2
                for attempt in range(2):
                    if renew:
                        reference = _reference(a, b, lead)
                        stale[:] = True
                        any_stale = True
                        renew = False
                    if any_stale:
                        for k in range(n_arms):
                            if stale[k]:
                                stale[k] = False
                                if k != lead:
                                    was = q[k]
                                    q[k], tail[k], hazard[k] = _threshold(a[k], b[k], reference)
                                    event[k] = t - 1 + _geometric(state, tail[k], never)
                                    next_any = min(next_any, event[k])
                                    next_ev = min(next_ev, event[k])
                                    lead_stale = lead_stale or q[k] != was  # ell may move
                        any_stale = False
                    if not lead_stale:
                        break
                    # the arms always drawn, and the largest threshold of the others
                    n_drawn, n_held, q_others = 0, 0, 0.0
                    for k in range(n_arms):
                        if k != lead:
                            if q[k] >= 1.0:
                                drawn[n_drawn] = k
                                n_drawn += 1
                            else:
                                held[n_held] = k
                                n_held += 1
                                q_others = max(q_others, q[k])
                    ell = 1.0 if n_drawn > 0 else q_others
                    budget = 1 + int(0.5 * math.sqrt(a[lead] * b[lead] / (a[lead] + b[lead])))
                    pbar = beta_tails(ell, a[lead], b[lead] + budget)[0]
                    if attempt == 0 and ell < 1.0 and pbar > 0.05:
                        renew = True  # the leader fell towards the thresholds set under it before
                        continue
                    lead_stale = False
                    cand = t - 1 + _geometric(state, pbar, never)
                    next_ev = never
                    for k in range(n_arms):
                        if k != lead and event[k] < next_ev:
                            next_ev = event[k]
                    next_any = min(cand, next_ev)
                    break
                arm = lead  # until the next event: every theta_k <= q_k <= ell < theta_lead
                if t >= next_any:
                    variates += 1 + n_drawn
                    if ell >= 1.0:  # theta_lead <= ell always: no condition
                        cand = t + 1
                        top = draw_theta(state, shapes, a, b, lead)
                    else:
                        p = 0.0 if pbar <= 0.5 else beta_tails(ell, a[lead], b[lead])[0]
                        below = False
                        if cand == t:
                            if pbar <= 0.5:
                                p = beta_tails(ell, a[lead], b[lead])[0]
                            below = draw_uniform(state, _AGENT) * pbar < p
                            cand = t + _geometric(state, pbar, never)
                        top = _beta_side(state, shapes, a, b, lead, ell, below, p)
                    for i in range(n_drawn):  # the arms without a threshold
                        k = drawn[i]
                        theta = draw_theta(state, shapes, a, b, k)
                        if theta > top:
                            top = theta
                            arm = k
                    # the others matter only at a crossing or where a threshold is above top
                    if t >= next_ev or top <= q_others:
                        next_ev = never
                        for i in range(n_held):
                            k = held[i]
                            if event[k] == t:
                                theta = _crossed(state, a[k], b[k], q[k], tail[k], hazard[k], top)
                                event[k] = t + _geometric(state, tail[k], never)
                            elif q[k] <= top:
                                theta = -1.0  # theta_k <= q_k <= top: cannot win, not drawn
                            else:  # P(theta_k <= q_k) = 1 - tail_k >= 1/2
                                theta = _beta_side(state, shapes, a, b, k, q[k], True, 1.0)
                            if theta >= 0.0:
                                variates += 1
                            if theta > top:
                                top = theta
                                arm = k
                            if event[k] < next_ev:
                                next_ev = event[k]
                    next_any = min(cand, next_ev)
            if draw_uniform(state, _ENV) < mu[arm]:
                a[arm] += 1.0
                failed = False
            else:
                b[arm] += 1.0
                failed = True
            post[arm] = a[arm] / (a[arm] + b[arm])
            regret += gap[arm]
            if t >= plain and (arm != lead or failed):
                if arm != lead:  # its posterior moved: its tail is recomputed
                    stale[arm] = True
                    any_stale = True
                    runner = _argmax_except(post, lead)
                else:  # the leader's mean fell; its bound holds for ``budget`` failures
                    budget -= 1
                # the new argmax of the posterior means (first index on ties), from the runner-up
                new = lead
                if post[runner] > post[lead] or (post[runner] == post[lead] and runner < lead):
                    new = runner
                if new != lead:  # the old leader is one of the others now; the
                    stale[lead] = True  # reference stays (any threshold is exact)
                    any_stale = True
                    lead = new
                    runner = _argmax_except(post, lead)
                    lead_stale = True
                elif budget < 0:
                    lead_stale = True
            if t + 1 == steps[cp]:
                out[n, cp] = regret
                cp = min(cp + 1, steps.size - 1)
            t += 1
        if counting:
            work[n, 0] = variates
            work[n, 1] = (state[_AGENT] - agent_seeds[n]) * SPLITMIX_GOLDEN_INVERSE


@njit(cache=True, parallel=True, error_model="numpy")
def thompson_gaussian_loop(
    means: np.ndarray,
    gaussian: bool,
    env_sigma: float,
    sigma: float,
    steps: np.ndarray,
    env_seeds: np.ndarray,
    agent_seeds: np.ndarray,
    out: np.ndarray,
) -> None:
    """Gaussian Thompson sampling (Agrawal & Goyal 2013, Algorithm 2): theta_k ~
    N(S_k / (n_k + 1), sigma^2 / (n_k + 1)), every theta drawn."""
    n_runs, n_arms = means.shape
    horizon = steps[-1]
    for n in prange(n_runs):
        state = _run_state(env_seeds[n], agent_seeds[n])
        mu = means[n].copy()
        gap = _gaps(mu)
        counts = np.zeros(n_arms)
        sums = np.zeros(n_arms)
        centre = np.zeros(n_arms)
        spread = np.full(n_arms, sigma)
        regret = 0.0
        cp = 0
        for t in range(horizon):
            arm = 0
            top = -np.inf
            for k in range(n_arms):
                theta = centre[k] + spread[k] * draw_normal(state, _AGENT)
                if theta > top:
                    top = theta
                    arm = k
            r = _reward(state, mu[arm], gaussian, env_sigma)
            counts[arm] += 1.0
            sums[arm] += r
            centre[arm] = sums[arm] / (counts[arm] + 1.0)
            spread[arm] = sigma / math.sqrt(counts[arm] + 1.0)
            regret += gap[arm]
            if t + 1 == steps[cp]:
                out[n, cp] = regret
                cp = min(cp + 1, steps.size - 1)


# ----- fusers ------------------------------------------------------------------------------------
def _fusable_env(env: Any, agent: Any, metric: str) -> bool:
    """Exactly a K-armed Bernoulli or Gaussian bandit of fixed means, no switching cost, the
    agent fresh and acting for the env's runs, regret the plain one."""
    return (
        type(env) in (BernoulliBanditVec, GaussianBanditVec)
        and not env.switching_cost
        and metric == "regret"
        and env.num_envs == agent.n_runs
        and env.n_arms == agent.n_arms
        and not np.any(agent.t)
    )


def _streams(seed: int | None, n_runs: int) -> np.ndarray:
    """One splitmix64 seed per run: words of ``SeedSequence(seed)`` (fresh entropy for None)."""
    return np.random.SeedSequence(seed).generate_state(n_runs, dtype=np.uint64)


def _runner(env: Any, agent: Any, loop: Any, *params: Any) -> Run:
    """``run(total_steps, checkpoints, seed)`` for ``loop(means, *params, steps, env_seeds,
    agent_seeds, out)``: resets the env with ``seed`` (its means, drawn per run when it has no
    fixed ones) and returns the regret at the checkpoints, as ``learn`` does."""

    def run(total_steps: int, checkpoints: np.ndarray | None, seed: int | None) -> np.ndarray:
        total_steps, steps, column = check_steps(env, total_steps, checkpoints)
        env.reset(seed=seed)
        means = np.ascontiguousarray(env.means, dtype=np.float64)
        out = np.zeros((env.num_envs, steps.size))
        loop(
            means,
            *params,
            steps,
            _streams(seed, env.num_envs),
            _streams(agent.seed, env.num_envs),
            out,
        )
        return out[:, column]

    return run


def _env_noise(env: Any) -> tuple[bool, float]:
    gaussian = type(env) is GaussianBanditVec
    return gaussian, float(env.sigma) if gaussian else 0.0


def fuse_ucb1(env: Any, agent: UCB1, metric: str) -> Run | None:
    """UCB1 on a Bernoulli or Gaussian bandit."""
    if not _fusable_env(env, agent, metric):
        return None
    return _runner(env, agent, ucb1_loop, *_env_noise(env), float(agent.alpha))


def fuse_kl_ucb(env: Any, agent: KLUCB, metric: str) -> Run | None:
    """KL-UCB on a Bernoulli bandit (the agent refuses other reward families)."""
    if not _fusable_env(env, agent, metric) or type(env) is not BernoulliBanditVec:
        return None
    return _runner(env, agent, kl_ucb_loop, float(agent.c), float(agent.tol))


def fuse_thompson(env: Any, agent: ThompsonSampling, metric: str) -> Run | None:
    """Thompson sampling: Beta prior on a Bernoulli bandit, Gaussian prior on either."""
    if not _fusable_env(env, agent, metric):
        return None
    if agent.prior == "beta":
        if type(env) is not BernoulliBanditVec:
            return None
        return _runner(env, agent, thompson_beta_loop, quantile_bins(), np.zeros((0, 2)))
    return _runner(env, agent, thompson_gaussian_loop, *_env_noise(env), float(agent.sigma))


register(UCB1, fuse_ucb1)
register(KLUCB, fuse_kl_ucb)
register(ThompsonSampling, fuse_thompson)
