"""Fused regret-study loops of the dueling agents RUCB, RMED1, DTS and MergeRUCB.

Each kernel runs a cell's whole horizon in one compiled loop per run (duel outcomes drawn from
the env's fixed preference matrix, the agent's choice and update, regret summed and kept at the
checkpoints), the runs spread over numba's threads with ``prange``. A run draws from two
splitmix64 streams of its own: the agent's (``agent._streams`` after a reset, as the step path
seeds them) and the env's (drawn from the env's generator after ``reset(seed)``), so the result
depends on the seeds only, whatever the number of threads. It agrees with
:meth:`~feedbackgym.agents.bandits.base.BanditAgent.learn` in distribution, not number by number:
the env's outcomes come from another generator.

The algorithms are those of :mod:`feedbackgym.agents.dueling.algorithms` (the papers'
pseudo-code), and the step path's helpers in :mod:`feedbackgym.agents.dueling.kernels` are reused
where the step path's per-step work is already small (RUCB's champion and challenger, RMED1's
choice and loop bookkeeping, all of MergeRUCB, whose fused loop is the step path's without Python
between steps). What changes is how the per-step tests and draws are computed:

- *Confidence tests by threshold times* (RUCB, DTS). With D = W_ji - W_ij > 0 and N = N_ij,
  u_ij >= 1/2 iff D^2 <= 4 alpha N log t, i.e. iff log t >= L_ij = D^2 / (4 alpha N). L_ij
  changes only when (i, j) is dueled, so a step compares log t with stored thresholds instead
  of recomputing K^2 bounds: RUCB keeps each arm's largest L_ij (the arm is a candidate once
  log t reaches it); DTS keeps each arm's number of pairs still confidently lost and the next
  threshold to pass. (The tests differ from the step path's only by rounding, at log t within
  an ulp of a threshold.)
- *DTS's Beta tails by recurrence.* P(theta_ij > 1/2) for theta_ij ~ Beta(W_ij + 1, W_ji + 1)
  is P(Bin(N + 1, 1/2) <= W_ij) (the Beta as an order statistic of uniforms), updated in O(1)
  per duel from the binomial pmf (itself updated by a ratio, rescaled instead of underflowing)
  instead of the incomplete beta function's continued fraction.
- *DTS's first arm drawn lazily* (Algorithm 1, lines 9-13: the Copeland winner of sampled
  events theta_ij > 1/2 among the candidates, random ties). Each event is drawn when first
  needed, starting with the previous first arm; a candidate stops drawing once its losses
  leave it below the best score found. Same distribution (ties broken uniformly among the
  winners, as the step path's reservoir does), a handful of uniforms per step instead of all
  pairs of the candidates' rows.
- *DTS's second arm drawn lazily* (Wu & Liu 2016, Algorithm 1, lines 14-16: argmax of fresh
  theta_{i,first}, theta_{first,first} = 1/2). Only arms with theta_{i,first} > 1/2 can win,
  so each eligible arm first draws that event (one uniform against the tail above); when one
  arm has it, it is the second arm, and only when two or more do, their theta is drawn given
  theta > 1/2 (by rejection when the tail is at least 1/4, else exactly as 1/2 + Beta(a + 1 -
  k, b + 1) / 2 with k ~ Bin(N + 1, 1/2) given k <= a). Same distribution, a few uniforms per
  step instead of K - 1 Beta draws.
- *RMED1's divergences by pair terms.* I_i = sum_j N_ij KL(mu_ij, 1/2) [mu_ij <= 1/2]: each
  pair's term is cached and only the dueled pair's is recomputed; I_i is re-summed from the
  cached terms in the same order, so it equals the step path's to the bit.

A duel of an arm against itself teaches nothing and is not recorded (the step path counts it in
W_ii, which no algorithm reads). References: Zoghi, Whiteson, Munos & de Rijke (2014), RUCB,
ICML; Komiyama, Honda, Kashima & Nakagawa (2015), RMED, COLT; Wu & Liu (2016), Double Thompson
Sampling, NeurIPS; Zoghi, Whiteson & de Rijke (2015), MergeRUCB, WSDM.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit, prange

from feedbackgym.agents.bandits.base import check_steps
from feedbackgym.agents.bandits.fused import Run, register
from feedbackgym.agents.bandits.kernels import draw_uniform
from feedbackgym.agents.dueling.algorithms import RMED1, RUCB, DoubleThompsonSampling, MergeRUCB
from feedbackgym.agents.dueling.kernels import (
    divergence_term,
    draw_beta,
    draw_index,
    draw_tie,
    merge_rucb_pick,
    merge_rucb_stage,
    rmed_advance,
    rmed_pick,
    rucb_challenger,
    rucb_champion,
)
from feedbackgym.envs.dueling import CONDORCET_METRICS, DuelingBanditVec


# ----- shared pieces ---------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def log_table(total_steps: int, offset: float) -> np.ndarray:
    """``table[t] = log(t + offset)`` for t = 1 .. total_steps (libm's log, as the step path)."""
    table = np.zeros(total_steps + 1)
    for t in range(1, total_steps + 1):
        table[t] = math.log(t + offset)
    return table


@njit(cache=True, error_model="numpy", inline="always")
def _duel(
    matrix: np.ndarray, r: int, W: np.ndarray, n: int, i: int, j: int, env_state: np.ndarray
) -> bool:
    """Draw duel (i, j) of run n from ``matrix[r]`` and count it in W; True when i won."""
    won = draw_uniform(env_state, n) < matrix[r, i, j]
    if won:
        W[n, i, j] += 1.0
    else:
        W[n, j, i] += 1.0
    return won


@njit(cache=True, error_model="numpy", inline="always")
def _threshold(W: np.ndarray, n: int, i: int, j: int, inv_4alpha: float) -> float:
    """L_ij: log t below which u_ij < 1/2 (D = W_ji - W_ij > 0: D^2 / (4 alpha N)), else -1."""
    d = W[n, j, i] - W[n, i, j]
    if d <= 0.0:
        return -1.0
    return d * d * inv_4alpha / (W[n, i, j] + W[n, j, i])


# ----- RUCB ------------------------------------------------------------------------------------
@njit(cache=True, parallel=True, error_model="numpy")
def rucb_cells(
    rows: np.ndarray,
    matrix: np.ndarray,
    cost: np.ndarray,
    alpha: float,
    log_t: np.ndarray,
    steps: np.ndarray,
    hypothesis: np.ndarray,
    state: np.ndarray,
    env_state: np.ndarray,
    out: np.ndarray,
    W: np.ndarray,
    L: np.ndarray,
    worst: np.ndarray,
    cand: np.ndarray,
) -> None:
    """RUCB (Zoghi et al. 2014, Algorithm 1) for ``len(log_t) - 1`` steps in every run.

    Candidates C = {i : u_ij >= 1/2 for all j} = {i : log t >= max_j L_ij} (``worst``), the
    thresholds L and their row maxima refreshed for the dueled pair only. ``rows[n]``: the
    matrix (and cost) row of run n; W, L (-1), worst (0) and cand are the runs' scratch state.
    """
    for n in prange(out.shape[0]):
        _rucb_run(
            n,
            rows[n],
            matrix,
            cost,
            alpha,
            log_t,
            steps,
            hypothesis,
            state,
            env_state,
            out,
            W,
            L,
            worst,
            cand,
        )


@njit(cache=True, error_model="numpy")
def _rucb_run(
    n: int,
    r: int,
    matrix: np.ndarray,
    cost: np.ndarray,
    alpha: float,
    log_t: np.ndarray,
    steps: np.ndarray,
    hypothesis: np.ndarray,
    state: np.ndarray,
    env_state: np.ndarray,
    out: np.ndarray,
    W: np.ndarray,
    L: np.ndarray,
    worst: np.ndarray,
    cand: np.ndarray,
) -> None:
    """Run n of :func:`rucb_cells`."""
    k = W.shape[1]
    total_steps = log_t.size - 1
    inv_4alpha = 1.0 / (4.0 * alpha)
    total = 0.0
    cp = 0
    for t in range(1, total_steps + 1):
        lt = log_t[t]
        n_cand = 0
        has_b = False
        for i in range(k):
            if lt >= worst[n, i]:
                cand[n, n_cand] = i
                n_cand += 1
                if i == hypothesis[n]:
                    has_b = True
        c = rucb_champion(hypothesis, n, cand, n_cand, has_b, k, state)
        d = rucb_challenger(W, n, c, alpha * lt, state)
        if c != d:
            _duel(matrix, r, W, n, c, d, env_state)
            L[n, c, d] = _threshold(W, n, c, d, inv_4alpha)
            L[n, d, c] = _threshold(W, n, d, c, inv_4alpha)
            for a in (c, d):
                top = 0.0
                for j in range(k):
                    top = max(top, L[n, a, j])
                worst[n, a] = top
        total += cost[r, c, d]
        if cp < steps.size and steps[cp] == t:
            out[n, cp] = total
            cp += 1


# ----- RMED1 -----------------------------------------------------------------------------------
@njit(cache=True, parallel=True, error_model="numpy")
def rmed1_cells(
    rows: np.ndarray,
    matrix: np.ndarray,
    cost: np.ndarray,
    tolerance: float,
    log_t: np.ndarray,
    steps: np.ndarray,
    order: np.ndarray,
    state: np.ndarray,
    env_state: np.ndarray,
    out: np.ndarray,
    W: np.ndarray,
    term: np.ndarray,
    div: np.ndarray,
    in_c: np.ndarray,
    in_r: np.ndarray,
    in_n: np.ndarray,
    pos: np.ndarray,
) -> None:
    """RMED1 (Komiyama et al. 2015, Algorithms 1 and 2) for ``len(log_t) - 1`` steps.

    The first K (K - 1) / 2 duels compare every pair once (in ``np.triu_indices`` order); then
    the loop over L_C of :func:`rmed_pick` / :func:`rmed_advance`. I_i (``div``) is
    re-summed from cached pair terms (``term``), of which a duel changes one pair's. L_C, L_R
    start full, L_N empty.
    """
    for n in prange(out.shape[0]):
        _rmed1_run(
            n,
            rows[n],
            matrix,
            cost,
            tolerance,
            log_t,
            steps,
            order,
            state,
            env_state,
            out,
            W,
            term,
            div,
            in_c,
            in_r,
            in_n,
            pos,
        )


@njit(cache=True, error_model="numpy")
def _rmed1_run(
    n: int,
    r: int,
    matrix: np.ndarray,
    cost: np.ndarray,
    tolerance: float,
    log_t: np.ndarray,
    steps: np.ndarray,
    order: np.ndarray,
    state: np.ndarray,
    env_state: np.ndarray,
    out: np.ndarray,
    W: np.ndarray,
    term: np.ndarray,
    div: np.ndarray,
    in_c: np.ndarray,
    in_r: np.ndarray,
    in_n: np.ndarray,
    pos: np.ndarray,
) -> None:
    """Run n of :func:`rmed1_cells`."""
    k = W.shape[1]
    total_steps = log_t.size - 1
    n_initial = k * (k - 1) // 2
    total = 0.0
    cp = 0
    first = 0
    second = 1
    for t in range(1, total_steps + 1):
        if t <= n_initial:
            i = first
            j = second
            second += 1
            if second == k:
                first += 1
                second = first + 1
        else:
            i, j = rmed_pick(W, n, div, order, in_c, pos, state)
        if i != j:
            _duel(matrix, r, W, n, i, j, env_state)
            term[n, i, j] = divergence_term(W, n, i, j)
            term[n, j, i] = divergence_term(W, n, j, i)
            for a in (i, j):
                s = 0.0
                for b in range(k):
                    s += term[n, a, b]
                div[n, a] = s
        if t > n_initial:
            rmed_advance(n, div, order, in_c, in_r, in_n, pos, i, log_t[t] + tolerance)
        total += cost[r, i, j]
        if cp < steps.size and steps[cp] == t:
            out[n, cp] = total
            cp += 1


# ----- Double Thompson Sampling ----------------------------------------------------------------
@njit(cache=True, error_model="numpy", inline="always")
def _dts_count(
    L: np.ndarray, lost: np.ndarray, next_l: np.ndarray, n: int, i: int, lt: float
) -> None:
    """Arm i's pairs still confidently lost at log t = ``lt`` (u_ij <= 1/2: L_ij >= lt), and
    the least of their thresholds (when log t passes it, the count drops)."""
    count = 0
    low = np.inf
    for j in range(L.shape[1]):
        v = L[n, i, j]
        if v >= lt:
            count += 1
            low = min(low, v)
    lost[n, i] = count
    next_l[n, i] = low


_SCALE = 2.0**500  # binomial pmfs below 2^-500 are kept scaled up by 2^500 per level
_UNSCALE = 2.0**-500


@njit(cache=True, error_model="numpy", inline="always")
def _dts_tail_update(
    above: np.ndarray,
    pmf: np.ndarray,
    level: np.ndarray,
    W: np.ndarray,
    n: int,
    i: int,
    j: int,
    i_won: bool,
) -> None:
    """Refresh P(theta_ij > 1/2) = P(Bin(M, 1/2) <= a) (a = W_ij, b = W_ji, M = a + b + 1)
    after a duel, a and b being the counts before it, from p = P(Bin(M, 1/2) = a).

    Kept for i < j (``above[n, j, i]`` = 1 - ``above[n, i, j]``); p is
    ``pmf[n, i, j] * 2^(-500 level[n, i, j])``, rescaled instead of underflowing. A p below
    2^-500 moves the tail by less than that: it is left out of the tail's update.
    """
    if i > j:
        i, j = j, i
        i_won = not i_won
    b = W[n, j, i]
    a = W[n, i, j]
    if i_won:
        a -= 1.0  # counts before the duel
    else:
        b -= 1.0
    p = pmf[n, i, j]
    exact = level[n, i, j] == 0
    f = above[n, i, j]
    if i_won:  # P(Bin(M + 1) <= a + 1) = F + P(Bin(M) = a + 1) / 2
        if exact:
            f += 0.5 * p * (b + 1.0) / (a + 1.0)
        p *= (a + b + 2.0) / (2.0 * (a + 1.0))
    else:  # P(Bin(M + 1) <= a) = F - P(Bin(M) = a) / 2
        if exact:
            f -= 0.5 * p
        p *= (a + b + 2.0) / (2.0 * (b + 2.0))
    if p < _UNSCALE:
        p *= _SCALE
        level[n, i, j] += 1
    elif p > 1.0 and level[n, i, j] > 0:
        p *= _UNSCALE
        level[n, i, j] -= 1
    pmf[n, i, j] = p
    f = min(max(f, 0.0), 1.0)
    above[n, i, j] = f
    above[n, j, i] = 1.0 - f


@njit(cache=True, error_model="numpy")
def _beta_above_half(state: np.ndarray, n: int, a: float, b: float, tail: float, p: float) -> float:
    """theta ~ Beta(a + 1, b + 1) given theta > 1/2; ``tail`` = P(theta > 1/2), ``p`` =
    P(Bin(a + b + 1, 1/2) = a) (0 when not known).

    By rejection when the tail is at least 1/4 (or p is unknown); else as the (a + 1)-th
    smallest of M = a + b + 1 uniforms given that k <= a of them are below 1/2: k ~ Bin(M, 1/2)
    given k <= a (inversion from a down), and the order statistic is 1/2 + Beta(a + 1 - k,
    b + 1) / 2.
    """
    rejection = tail >= 0.25 or p <= 0.0
    k = 0.0
    if not rejection:
        m = a + b + 1.0
        target = draw_uniform(state, n) * tail
        acc = p
        k = a
        while acc < target and k > 0.0:
            p *= k / (m - k + 1.0)
            k -= 1.0
            acc += p
    while True:
        theta = draw_beta(state, n, a + 1.0 - k, b + 1.0)
        if not rejection:
            return 0.5 + 0.5 * theta
        if theta > 0.5:
            return theta


@njit(cache=True, error_model="numpy")
def _dts_first_lazy(
    above: np.ndarray,
    n: int,
    cand: np.ndarray,
    n_cand: int,
    lead: int,
    t: int,
    state: np.ndarray,
    drawn: np.ndarray,
    wins: np.ndarray,
    losses: np.ndarray,
    best_arms: np.ndarray,
) -> int:
    """DTS's first arm (Wu & Liu 2016, Algorithm 1, lines 9-13): the largest Copeland score
    of sampled events theta_ij > 1/2 among the candidates ``cand[n, :n_cand]``, random ties.

    The events are drawn lazily, each at most once (``drawn[n, i, j]`` = 2 t + outcome for
    step t; theta_ji > 1/2 is the complement), starting with ``lead`` when it is a candidate:
    a candidate whose losses so far leave it below the best score found stops drawing, as no
    further draw can make it a winner. Same distribution as drawing every event of the
    candidates' rows (:func:`_dts_first`).
    """
    if n_cand == 1:
        return cand[n, 0]
    k = above.shape[1]
    now = 2 * t
    for i in range(k):
        wins[n, i] = 0
        losses[n, i] = 0
    start = 0
    for a in range(n_cand):
        if cand[n, a] == lead:
            start = a
    best = -1
    n_best = 0
    for x in range(n_cand):
        a = start + x
        i = cand[n, a - n_cand if a >= n_cand else a]
        top = k - 1 - losses[n, i]
        if top < best:
            continue
        for j in range(k):
            if j == i or drawn[n, i, j] >= now:
                continue
            won = draw_uniform(state, n) < above[n, i, j]
            drawn[n, i, j] = now + won
            drawn[n, j, i] = now + (not won)
            if won:
                wins[n, i] += 1
                losses[n, j] += 1
            else:
                wins[n, j] += 1
                losses[n, i] += 1
                top -= 1
                if top < best:
                    break
        if top < best:
            continue
        if top > best:
            best = top
            n_best = 0
        best_arms[n, n_best] = i
        n_best += 1
    return best_arms[n, 0] if n_best == 1 else best_arms[n, draw_index(state, n, n_best)]


@njit(cache=True, error_model="numpy")
def _dts_second_lazy(
    W: np.ndarray,
    L: np.ndarray,
    above: np.ndarray,
    pmf: np.ndarray,
    level: np.ndarray,
    n: int,
    first: int,
    lt: float,
    state: np.ndarray,
    hits: np.ndarray,
) -> int:
    """DTS's second arm (Wu & Liu 2016, Algorithm 1, lines 14-16): the largest fresh
    theta_{i,first} ~ Beta(W_{i,first} + 1, W_{first,i} + 1) over arms with l_{i,first} <= 1/2
    (log t >= L_{first,i}), theta_{first,first} = 1/2.

    Only arms with theta_{i,first} > 1/2 can beat ``first``: each draws that event (a uniform
    against the tail); one such arm is the second arm, and only among two or more are thetas
    drawn, given theta > 1/2 (:func:`_beta_above_half`).
    """
    k = W.shape[1]
    n_hit = 0
    for i in range(k):
        if i != first and lt >= L[n, first, i]:
            if draw_uniform(state, n) < above[n, i, first]:
                hits[n, n_hit] = i
                n_hit += 1
    if n_hit == 0:
        return first
    if n_hit == 1:
        return hits[n, 0]
    second = first
    best = -1.0
    ties = 0
    for h in range(n_hit):
        i = hits[n, h]
        a = W[n, i, first]
        b = W[n, first, i]
        lo = min(i, first)
        hi = max(i, first)
        p = pmf[n, lo, hi] if level[n, lo, hi] == 0 else 0.0
        if i > first:  # P(Bin = a) from P(Bin = b), b = M - 1 - a
            p *= (a + 1.0) / (b + 1.0)
        theta = _beta_above_half(state, n, a, b, above[n, i, first], p)
        if theta > best:
            best = theta
            second = i
            ties = 1
        elif theta == best:
            ties += 1
            if draw_tie(state, n, ties):
                second = i
    return second


@njit(cache=True, parallel=True, error_model="numpy")
def dts_cells(
    rows: np.ndarray,
    matrix: np.ndarray,
    cost: np.ndarray,
    alpha: float,
    log_t: np.ndarray,
    steps: np.ndarray,
    state: np.ndarray,
    env_state: np.ndarray,
    out: np.ndarray,
    W: np.ndarray,
    L: np.ndarray,
    lost: np.ndarray,
    next_l: np.ndarray,
    above: np.ndarray,
    pmf: np.ndarray,
    level: np.ndarray,
    drawn: np.ndarray,
    ints: np.ndarray,
) -> None:
    """Double Thompson Sampling (Wu & Liu 2016, Algorithm 1) for ``len(log_t) - 1`` steps.

    Phase 1's candidates are the arms with the fewest pairs confidently lost (largest upper
    Copeland score), counted against threshold times (L, -1 when none; ``lost``, ``next_l``);
    the first arm is :func:`_dts_first_lazy`'s and the second :func:`_dts_second_lazy`'s, with
    the Beta tails kept by :func:`_dts_tail_update` (``above``, ``pmf``, ``level``).
    """
    for n in prange(out.shape[0]):
        _dts_run(
            n,
            rows[n],
            matrix,
            cost,
            alpha,
            log_t,
            steps,
            state,
            env_state,
            out,
            W,
            L,
            lost,
            next_l,
            above,
            pmf,
            level,
            drawn,
            ints,
        )


@njit(cache=True, error_model="numpy")
def _dts_run(
    n: int,
    r: int,
    matrix: np.ndarray,
    cost: np.ndarray,
    alpha: float,
    log_t: np.ndarray,
    steps: np.ndarray,
    state: np.ndarray,
    env_state: np.ndarray,
    out: np.ndarray,
    W: np.ndarray,
    L: np.ndarray,
    lost: np.ndarray,
    next_l: np.ndarray,
    above: np.ndarray,
    pmf: np.ndarray,
    level: np.ndarray,
    drawn: np.ndarray,
    ints: np.ndarray,
) -> None:
    """Run n of :func:`dts_cells`."""
    k = W.shape[1]
    total_steps = log_t.size - 1
    inv_4alpha = 1.0 / (4.0 * alpha)
    cand = ints[:, 0]
    hits = ints[:, 1]
    wins = ints[:, 2]
    losses = ints[:, 3]
    best_arms = ints[:, 4]
    total = 0.0
    cp = 0
    first = 0
    for t in range(1, total_steps + 1):
        lt = log_t[t]
        # Phase 1: C = arms of largest upper Copeland score #{j : u_ij > 1/2}.
        fewest = k
        n_cand = 0
        for i in range(k):
            if lt > next_l[n, i]:
                _dts_count(L, lost, next_l, n, i, lt)
            v = lost[n, i]
            if v < fewest:
                fewest = v
                n_cand = 0
            if v == fewest:
                cand[n, n_cand] = i
                n_cand += 1
        first = _dts_first_lazy(
            above, n, cand, n_cand, first, t, state, drawn, wins, losses, best_arms
        )
        second = _dts_second_lazy(W, L, above, pmf, level, n, first, lt, state, hits)
        if first != second:
            won = _duel(matrix, r, W, n, first, second, env_state)
            _dts_tail_update(above, pmf, level, W, n, first, second, won)
            L[n, first, second] = _threshold(W, n, first, second, inv_4alpha)
            L[n, second, first] = _threshold(W, n, second, first, inv_4alpha)
            _dts_count(L, lost, next_l, n, first, lt)
            _dts_count(L, lost, next_l, n, second, lt)
        total += cost[r, first, second]
        if cp < steps.size and steps[cp] == t:
            out[n, cp] = total
            cp += 1


# ----- MergeRUCB -------------------------------------------------------------------------------
@njit(cache=True, parallel=True, error_model="numpy")
def merge_rucb_cells(
    rows: np.ndarray,
    matrix: np.ndarray,
    cost: np.ndarray,
    alpha: float,
    log_t: np.ndarray,
    steps: np.ndarray,
    partition: int,
    batch: np.ndarray,
    n_batches: np.ndarray,
    stage: np.ndarray,
    state: np.ndarray,
    env_state: np.ndarray,
    out: np.ndarray,
    W: np.ndarray,
    turn: np.ndarray,
    scratch: np.ndarray,
    pair: np.ndarray,
) -> None:
    """MergeRUCB (Zoghi et al. 2015) for ``len(log_t) - 1`` steps, ``log_t[t]`` = log(t + C):
    the step path's :func:`merge_rucb_pick` and :func:`merge_rucb_stage` in one loop."""
    for n in prange(out.shape[0]):
        _merge_rucb_run(
            n,
            rows[n],
            matrix,
            cost,
            alpha,
            log_t,
            steps,
            partition,
            batch,
            n_batches,
            stage,
            state,
            env_state,
            out,
            W,
            turn,
            scratch,
            pair,
        )


@njit(cache=True, error_model="numpy")
def _merge_rucb_run(
    n: int,
    r: int,
    matrix: np.ndarray,
    cost: np.ndarray,
    alpha: float,
    log_t: np.ndarray,
    steps: np.ndarray,
    partition: int,
    batch: np.ndarray,
    n_batches: np.ndarray,
    stage: np.ndarray,
    state: np.ndarray,
    env_state: np.ndarray,
    out: np.ndarray,
    W: np.ndarray,
    turn: np.ndarray,
    scratch: np.ndarray,
    pair: np.ndarray,
) -> None:
    """Run n of :func:`merge_rucb_cells`."""
    total_steps = log_t.size - 1
    total = 0.0
    cp = 0
    for t in range(1, total_steps + 1):
        merge_rucb_pick(
            W, n, batch, n_batches, turn, alpha, log_t[t], partition, state, scratch, pair
        )
        c = pair[n, 0]
        d = pair[n, 1]
        if c != d:
            _duel(matrix, r, W, n, c, d, env_state)
        merge_rucb_stage(n, batch, n_batches, stage, turn, partition, state, scratch)
        total += cost[r, c, d]
        if cp < steps.size and steps[cp] == t:
            out[n, cp] = total
            cp += 1


# ----- fusers ----------------------------------------------------------------------------------
def duel_costs(env: DuelingBanditVec, metric: str) -> np.ndarray | None:
    """Regret of every duel (i, j) under info key ``metric``, shape (R, K, K) (R = 1 for one
    matrix shared by every run, else num_envs), computed as the env's step does; None when the
    env does not report that key."""
    name = metric[len("regret_") :] if metric.startswith("regret_") else None
    if name not in env.regret_metrics:
        return None
    if name in CONDORCET_METRICS:
        if not env.has_condorcet_winner:
            return None
        per_arm = env.arm_regrets(name)
        di, dj = per_arm[:, :, None], per_arm[:, None, :]
        if name == "average":
            return 0.5 * (di + dj)
        return np.maximum(di, dj) if name == "strong" else np.minimum(di, dj)
    per_arm = env.arm_regrets(name)
    return 0.5 * (per_arm[:, :, None] + per_arm[:, None, :])


class _Cell:
    """What every kernel is given: the matrix row and regret of each run's duels, the
    checkpoint steps, the env's streams, the output, log(t + offset) and a fresh agent."""

    def __init__(
        self, env: DuelingBanditVec, agent: Any, metric: str, total_steps: int, steps: np.ndarray
    ) -> None:
        self.n_runs, self.k = env.num_envs, env.n_arms
        self.matrix = np.ascontiguousarray(env.preference_matrix, dtype=np.float64)
        self.cost = np.ascontiguousarray(duel_costs(env, metric))
        shared = self.matrix.shape[0] == 1
        self.rows = np.zeros(self.n_runs, np.int64) if shared else np.arange(self.n_runs)
        self.steps = steps.astype(np.int64)
        self.env_state = env.np_random.integers(0, 2**63, size=self.n_runs, dtype=np.uint64)
        self.out = np.zeros((self.n_runs, steps.size))
        self.total_steps = total_steps
        self.agent = copy.copy(agent)  # reset() rebinds the state: the agent is left as it was
        self.agent.reset()

    def log_t(self, offset: float = 0.0) -> np.ndarray:
        return log_table(self.total_steps, offset)

    def zeros(self, *shape: int, dtype: Any = np.float64, fill: float = 0) -> np.ndarray:
        return np.full((self.n_runs, *shape), fill, dtype=dtype)

    def head(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.rows, self.matrix, self.cost


def _fuser(body: Callable[[_Cell], None]) -> Callable[[Any, Any, str], Run | None]:
    """A fuser that runs ``body(cell)``, the kernel, on a freshly reset copy of the agent."""

    def fuser(env: Any, agent: Any, metric: str) -> Run | None:
        if type(env) is not DuelingBanditVec or env.num_envs != agent.n_runs:
            return None
        if env.n_arms != agent.n_arms or duel_costs(env, metric) is None:
            return None

        def run(total_steps: int, checkpoints: np.ndarray | None, seed: int | None) -> np.ndarray:
            total_steps, steps, column = check_steps(env, total_steps, checkpoints)
            env.reset(seed=seed)  # as learn: per-run matrices are drawn here
            cell = _Cell(env, agent, metric, total_steps, steps)
            body(cell)
            return cell.out[:, column]

        return run

    return fuser


def _run_rucb(cell: _Cell) -> None:
    agent, k = cell.agent, cell.k
    rucb_cells(
        *cell.head(),
        agent.alpha,
        cell.log_t(),
        cell.steps,
        agent.hypothesis,
        agent._streams,
        cell.env_state,
        cell.out,
        cell.zeros(k, k),
        cell.zeros(k, k, fill=-1.0),
        cell.zeros(k),
        cell.zeros(k, dtype=np.int64),
    )


def _run_rmed1(cell: _Cell) -> None:
    agent, k = cell.agent, cell.k
    rmed1_cells(
        *cell.head(),
        float(agent.divergence_tolerance),
        cell.log_t(),
        cell.steps,
        agent._order,
        agent._streams,
        cell.env_state,
        cell.out,
        cell.zeros(k, k),
        cell.zeros(k, k),
        cell.zeros(k),
        cell.zeros(k, dtype=np.bool_, fill=True),
        cell.zeros(k, dtype=np.bool_, fill=True),
        cell.zeros(k, dtype=np.bool_),
        cell.zeros(dtype=np.int64),
    )


def _run_dts(cell: _Cell) -> None:
    agent, k = cell.agent, cell.k
    dts_cells(
        *cell.head(),
        agent.alpha,
        cell.log_t(),
        cell.steps,
        agent._streams,
        cell.env_state,
        cell.out,
        cell.zeros(k, k),
        cell.zeros(k, k, fill=-1.0),
        cell.zeros(k, dtype=np.int64),
        cell.zeros(k, fill=np.inf),
        cell.zeros(k, k, fill=0.5),
        cell.zeros(k, k, fill=0.5),
        cell.zeros(k, k, dtype=np.int64),
        cell.zeros(k, k, dtype=np.int64),
        cell.zeros(5, k, dtype=np.int64),
    )


def _run_merge_rucb(cell: _Cell) -> None:
    agent, k = cell.agent, cell.k
    merge_rucb_cells(
        *cell.head(),
        agent.alpha,
        cell.log_t(float(agent.offset)),
        cell.steps,
        agent.partition_size,
        agent.batch,
        agent.n_batches,
        agent.stage,
        agent._streams,
        cell.env_state,
        cell.out,
        cell.zeros(k, k),
        cell.zeros(dtype=np.int64),
        cell.zeros(5, k, dtype=np.int64),
        cell.zeros(2, dtype=np.int64),
    )


fuse_rucb = _fuser(_run_rucb)
fuse_rmed1 = _fuser(_run_rmed1)
fuse_dts = _fuser(_run_dts)
fuse_merge_rucb = _fuser(_run_merge_rucb)

register(RUCB, fuse_rucb)
register(RMED1, fuse_rmed1)
register(DoubleThompsonSampling, fuse_dts)
register(MergeRUCB, fuse_merge_rucb)
