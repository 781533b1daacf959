"""Numba kernels of the dueling-bandit agents: one loop over runs, each run a sequential procedure.

State lives in arrays with a leading run axis; ``W[n, i, j]`` counts the duels run n saw i win
against j. Random choices come from each run's splitmix64 stream (``state[n]``), so results
depend on the seed only, whatever the number of threads.

Confidence bounds follow RUCB (Zoghi et al. 2014): u_ij = mu_ij + sqrt(alpha log t / N_ij) and
l_ij = mu_ij - sqrt(alpha log t / N_ij), with mu_ij = W_ij / N_ij, N_ij = W_ij + W_ji, x/0 := 1
(so u = 2 and l = 0 for a pair never compared) and u_ii = l_ii = 1/2. Tests of the form
``u_ij >= 1/2`` are done without a square root: with ``c = 4 alpha log t`` and
D = W_ji - W_ij, u_ij >= 1/2 iff D <= 0 or D^2 <= c N_ij.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from feedbackgym.agents.bandits.kernels import (
    beta_tails,
    draw_gamma,
    draw_uniform,
    set_gamma_constants,
)

_THIRD = 1.0 / 3.0


# ----- shared helpers --------------------------------------------------------------------------
@njit(cache=True, error_model="numpy", inline="always")
def _upper_ge(W: np.ndarray, n: int, i: int, j: int, c: float) -> bool:
    """u_ij >= 1/2 (``c = 4 alpha log t``)."""
    if i == j:
        return True
    d = W[n, j, i] - W[n, i, j]
    if d <= 0.0:
        return True
    return d * d <= c * (W[n, i, j] + W[n, j, i])


@njit(cache=True, error_model="numpy", inline="always")
def _upper_gt(W: np.ndarray, n: int, i: int, j: int, c: float) -> bool:
    """u_ij > 1/2."""
    if i == j:
        return False
    nij = W[n, i, j] + W[n, j, i]
    if nij == 0.0:
        return True
    d = W[n, j, i] - W[n, i, j]
    if d < 0.0:
        return True
    return d * d < c * nij


@njit(cache=True, error_model="numpy", inline="always")
def _lower_gt(W: np.ndarray, n: int, i: int, j: int, c: float) -> bool:
    """l_ij > 1/2."""
    if i == j:
        return False
    d = W[n, i, j] - W[n, j, i]
    if d <= 0.0:
        return False
    return d * d > c * (W[n, i, j] + W[n, j, i])


@njit(cache=True, error_model="numpy", inline="always")
def _ucb(W: np.ndarray, n: int, i: int, j: int, a_log_t: float) -> float:
    """u_ij (``a_log_t = alpha log t``)."""
    if i == j:
        return 0.5
    nij = W[n, i, j] + W[n, j, i]
    if nij == 0.0:
        return 2.0
    return W[n, i, j] / nij + math.sqrt(a_log_t / nij)


@njit(cache=True, error_model="numpy", inline="always")
def _mean(W: np.ndarray, n: int, i: int, j: int) -> float:
    """mu_ij, 1/2 for a pair never compared."""
    nij = W[n, i, j] + W[n, j, i]
    if nij == 0.0 or i == j:
        return 0.5
    return W[n, i, j] / nij


@njit(cache=True, error_model="numpy", inline="always")
def draw_beta(state: np.ndarray, n: int, a: float, b: float) -> float:
    """Beta(a, b) for a, b >= 1, as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b)."""
    da = a - _THIRD
    db = b - _THIRD
    x = draw_gamma(state, n, da, 1.0 / math.sqrt(9.0 * da))
    y = draw_gamma(state, n, db, 1.0 / math.sqrt(9.0 * db))
    return x / (x + y)


@njit(cache=True, error_model="numpy", inline="always")
def draw_index(state: np.ndarray, n: int, count: int) -> int:
    """Uniform index in [0, count)."""
    return min(int(draw_uniform(state, n) * count), count - 1)


@njit(cache=True, error_model="numpy", inline="always")
def draw_tie(state: np.ndarray, n: int, ties: int) -> bool:
    """Reservoir step of a random tie-break: keep the ``ties``-th equal candidate w.p. 1/ties."""
    return draw_uniform(state, n) * ties < 1.0


@njit(cache=True, error_model="numpy")
def record_duels(W: np.ndarray, actions: np.ndarray, outcomes: np.ndarray) -> bool:
    """W[n, winner, loser] += 1 for each run; False (and no change) unless outcomes are 0/1."""
    for n in range(actions.shape[0]):
        if outcomes[n] != 0.0 and outcomes[n] != 1.0:
            return False
    for n in range(actions.shape[0]):
        i = actions[n, 0]
        j = actions[n, 1]
        if outcomes[n] == 1.0:
            W[n, i, j] += 1.0
        else:
            W[n, j, i] += 1.0
    return True


@njit(cache=True, error_model="numpy", inline="always")
def rucb_challenger(W: np.ndarray, n: int, c: int, a_log_t: float, state: np.ndarray) -> int:
    """argmax_j u_jc over j != c (random ties); c itself when every u_jc < 1/2 = u_cc."""
    k = W.shape[1]
    best = -1.0
    arg = c
    ties = 0
    for j in range(k):
        if j == c:
            continue
        v = _ucb(W, n, j, c, a_log_t)
        if v > best:
            best = v
            arg = j
            ties = 1
        elif v == best:
            ties += 1
            if draw_tie(state, n, ties):
                arg = j
    return arg if best >= 0.5 else c


# ----- RUCB ------------------------------------------------------------------------------------
@njit(cache=True, error_model="numpy", inline="always")
def rucb_champion(
    hypothesis: np.ndarray,
    n: int,
    cand: np.ndarray,
    n_cand: int,
    has_b: bool,
    k: int,
    state: np.ndarray,
) -> int:
    """RUCB's champion c (Zoghi et al. 2014, Algorithm 1, lines 5-8) from the candidates C
    (``cand[n, :n_cand]``; ``has_b``: the hypothesis B is among them); updates B."""
    if not has_b:  # B <- B intersect C
        hypothesis[n] = -1
    if n_cand == 0:
        return draw_index(state, n, k)
    if n_cand == 1:
        hypothesis[n] = cand[n, 0]
        return cand[n, 0]
    if hypothesis[n] >= 0:  # p(B) = 1/2, the rest of C shares the other half
        if draw_uniform(state, n) < 0.5:
            return hypothesis[n]
        c = cand[n, draw_index(state, n, n_cand - 1)]
        return cand[n, n_cand - 1] if c == hypothesis[n] else c
    return cand[n, draw_index(state, n, n_cand)]


@njit(cache=True, parallel=True, error_model="numpy")
def rucb_choose(
    W: np.ndarray,
    hypothesis: np.ndarray,
    alpha: float,
    t: int,
    state: np.ndarray,
    scratch: np.ndarray,
    out: np.ndarray,
) -> None:
    """One RUCB round (Zoghi et al. 2014, Algorithm 1, lines 3-9) for every run."""
    n_runs, k, _ = W.shape
    log_t = math.log(t)
    c4 = 4.0 * alpha * log_t
    for n in prange(n_runs):
        # C = arms whose upper bound against every other arm is at least 1/2.
        n_cand = 0
        has_b = False
        for i in range(k):
            ok = True
            for j in range(k):
                if not _upper_ge(W, n, i, j, c4):
                    ok = False
                    break
            if ok:
                scratch[n, n_cand] = i
                n_cand += 1
                if i == hypothesis[n]:
                    has_b = True
        c = rucb_champion(hypothesis, n, scratch, n_cand, has_b, k, state)
        out[n, 0] = c
        out[n, 1] = rucb_challenger(W, n, c, alpha * log_t, state)


# ----- Double Thompson Sampling ----------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def beta_above_half(a: float, b: float) -> float:
    """P(Beta(a, b) > 1/2), the regularised incomplete beta function."""
    return beta_tails(0.5, a, b)[1]


@njit(cache=True, parallel=True, error_model="numpy")
def dts_record(W: np.ndarray, above: np.ndarray, actions: np.ndarray) -> None:
    """Refresh above[n, i, j] = P(theta_ij > 1/2), theta_ij ~ Beta(W_ij + 1, W_ji + 1), for the
    pair each run just dueled (after :func:`record_duels`)."""
    for n in prange(actions.shape[0]):
        i = actions[n, 0]
        j = actions[n, 1]
        if i != j:
            p = beta_above_half(W[n, i, j] + 1.0, W[n, j, i] + 1.0)
            above[n, i, j] = p
            above[n, j, i] = 1.0 - p


@njit(cache=True, error_model="numpy", inline="always")
def _dts_first(
    above: np.ndarray,
    n: int,
    cand: np.ndarray,
    n_cand: int,
    state: np.ndarray,
    wins_half: np.ndarray,
) -> int:
    """DTS's first arm (Wu & Liu 2016, Algorithm 1, lines 9-13) among the candidates
    ``cand[n, :n_cand]``: the largest Copeland score of sampled events theta_ij > 1/2, each a
    uniform against ``above[n, i, j]`` = P(theta_ij > 1/2), random ties."""
    if n_cand == 1:
        return cand[n, 0]
    k = above.shape[1]
    # 1(theta_ij > 1/2) for the rows in C (the other rows cannot change the choice).
    for a in range(n_cand):
        i = cand[n, a]
        for j in range(k):
            wins_half[n, i, j] = -1
    for a in range(n_cand):
        i = cand[n, a]
        for j in range(k):
            if j != i and wins_half[n, i, j] < 0:
                won = draw_uniform(state, n) < above[n, i, j]
                wins_half[n, i, j] = won
                wins_half[n, j, i] = not won
    best = -1
    first = cand[n, 0]
    ties = 0
    for a in range(n_cand):
        i = cand[n, a]
        score = 0
        for j in range(k):
            if j != i and wins_half[n, i, j] == 1:
                score += 1
        if score > best:
            best = score
            first = i
            ties = 1
        elif score == best:
            ties += 1
            if draw_tie(state, n, ties):
                first = i
    return first


@njit(cache=True, parallel=True, error_model="numpy")
def dts_choose(
    W: np.ndarray,
    above: np.ndarray,
    alpha: float,
    t: int,
    state: np.ndarray,
    wins_half: np.ndarray,
    scratch: np.ndarray,
    out: np.ndarray,
) -> None:
    """One round of Double Thompson Sampling (Wu & Liu 2016, Algorithm 1) for every run.

    Phase 1 only needs the events theta_ij > 1/2, so each is drawn as one uniform against
    ``above[n, i, j]`` = P(theta_ij > 1/2) (same distribution as drawing theta, with
    theta_ji = 1 - theta_ij: the event for (j, i) is the complement).
    """
    n_runs, k, _ = W.shape
    c4 = 4.0 * alpha * math.log(t)
    for n in prange(n_runs):
        # Phase 1: C = arms of largest upper Copeland score, zeta_i = #{j : u_ij > 1/2}.
        best_z = -1
        n_cand = 0
        for i in range(k):
            z = 0
            for j in range(k):
                if _upper_gt(W, n, i, j, c4):
                    z += 1
            if z > best_z:
                best_z = z
                n_cand = 0
            if z == best_z:
                scratch[n, n_cand] = i
                n_cand += 1
        first = _dts_first(above, n, scratch, n_cand, state, wins_half)
        # Phase 2: among arms with l_{i,first} <= 1/2, the largest theta_{i,first}.
        best_th = 0.5  # theta_{first,first} = 1/2
        second = first
        ties = 1
        for i in range(k):
            if i == first or _lower_gt(W, n, i, first, c4):
                continue
            th = draw_beta(state, n, W[n, i, first] + 1.0, W[n, first, i] + 1.0)
            if th > best_th:
                best_th = th
                second = i
                ties = 1
            elif th == best_th:
                ties += 1
                if draw_tie(state, n, ties):
                    second = i
        out[n, 0] = first
        out[n, 1] = second


# ----- Copeland Confidence Bound ---------------------------------------------------------------
@njit(cache=True, error_model="numpy", inline="always")
def _ccb_reset(n: int, in_b: np.ndarray, opp: np.ndarray, opp_size: np.ndarray, lc: np.ndarray):
    k = in_b.shape[1]
    for i in range(k):
        in_b[n, i] = True
        opp_size[n, i] = 0
        for j in range(k):
            opp[n, i, j] = False
    lc[n] = k


@njit(cache=True, parallel=True, error_model="numpy")
def ccb_choose(
    W: np.ndarray,
    in_b: np.ndarray,
    opp: np.ndarray,
    opp_size: np.ndarray,
    lc: np.ndarray,
    alpha: float,
    t: int,
    state: np.ndarray,
    scratch: np.ndarray,
    out: np.ndarray,
) -> None:
    """One CCB round (Zoghi et al. 2015, Algorithm 1, lines 3-9) for every run.

    ``in_b[n]`` is the set B_t of hypothesised Copeland winners, ``opp[n, i]`` the set B^i_t of
    arms hypothesised to beat i (``opp_size`` its size), ``lc[n]`` the hypothesised number of
    losses L_C of a Copeland winner.
    """
    n_runs, k, _ = W.shape
    log_t = math.log(t)
    c4 = 4.0 * alpha * log_t
    for n in prange(n_runs):
        cu = scratch[n, 0]  # optimistic Copeland scores #{j : u_ij >= 1/2}
        cl = scratch[n, 1]  # pessimistic Copeland scores #{j : l_ij > 1/2}
        for i in range(k):
            cu[i] = 0
            cl[i] = 0
        for i in range(k):
            for j in range(i + 1, k):
                if _upper_ge(W, n, i, j, c4):
                    cu[i] += 1
                if _upper_ge(W, n, j, i, c4):
                    cu[j] += 1
                if _lower_gt(W, n, i, j, c4):
                    cl[i] += 1
                elif _lower_gt(W, n, j, i, c4):
                    cl[j] += 1
        max_cu = 0
        max_cl = 0
        for i in range(k):
            max_cu = max(max_cu, cu[i])
            max_cl = max(max_cl, cl[i])
        # A. Reset disproven hypotheses: some i confidently beats an arm of B^i.
        reset = False
        for i in range(k):
            if opp_size[n, i] == 0:
                continue
            for j in range(k):
                if opp[n, i, j] and _lower_gt(W, n, i, j, c4):
                    reset = True
                    break
            if reset:
                break
        if reset:
            _ccb_reset(n, in_b, opp, opp_size, lc)
        # B. Remove non-Copeland winners; a removed arm keeps the arms that beat it as B^i.
        remaining = 0
        for i in range(k):
            if not in_b[n, i]:
                continue
            if cu[i] < max_cl:
                in_b[n, i] = False
                if opp_size[n, i] != lc[n] + 1:
                    size = 0
                    for j in range(k):
                        beaten = not _upper_ge(W, n, i, j, c4)
                        opp[n, i, j] = beaten
                        size += beaten
                    opp_size[n, i] = size
            else:
                remaining += 1
        if remaining == 0:
            _ccb_reset(n, in_b, opp, opp_size, lc)
        # C. Add Copeland winners: arms of C_t whose Copeland score is known exactly.
        for i in range(k):
            if cu[i] != max_cu or cu[i] != cl[i]:
                continue
            in_b[n, i] = True
            for j in range(k):
                opp[n, i, j] = False
            opp_size[n, i] = 0
            lc[n] = k - 1 - cu[i]
            keep = lc[n] + 1
            for j in range(k):
                if j == i or opp_size[n, j] == keep:
                    continue
                if opp_size[n, j] < keep:
                    for m in range(k):
                        opp[n, j, m] = False
                    opp_size[n, j] = 0
                else:  # keep a uniformly random subset of size L_C + 1
                    left = opp_size[n, j]
                    need = keep
                    for m in range(k):
                        if not opp[n, j, m]:
                            continue
                        if draw_uniform(state, n) * left < need:
                            need -= 1
                        else:
                            opp[n, j, m] = False
                        left -= 1
                    opp_size[n, j] = keep
        # Line 6: w.p. 1/4 a uniformly drawn unresolved pair (i, j in B^i, 1/2 in [l_ij, u_ij]).
        if draw_uniform(state, n) < 0.25:
            count = 0
            for i in range(k):
                if opp_size[n, i] == 0:
                    continue
                for j in range(k):
                    if opp[n, i, j] and _upper_ge(W, n, i, j, c4) and not _lower_gt(W, n, i, j, c4):
                        count += 1
            if count > 0:
                r = draw_index(state, n, count)
                for i in range(k):
                    if opp_size[n, i] == 0:
                        continue
                    for j in range(k):
                        if (
                            opp[n, i, j]
                            and _upper_ge(W, n, i, j, c4)
                            and not _lower_gt(W, n, i, j, c4)
                        ):
                            if r == 0:
                                out[n, 0] = i
                                out[n, 1] = j
                            r -= 1
                continue
        # Lines 7-8: c from C_t, or w.p. 2/3 from B_t intersect C_t when that is not empty.
        n_both = 0
        n_c = 0
        for i in range(k):
            if cu[i] == max_cu:
                n_c += 1
                if in_b[n, i]:
                    n_both += 1
        use_both = n_both > 0 and draw_uniform(state, n) < 2.0 / 3.0
        r = draw_index(state, n, n_both if use_both else n_c)
        c = 0
        for i in range(k):
            if cu[i] == max_cu and (in_b[n, i] or not use_both):
                if r == 0:
                    c = i
                    break
                r -= 1
        # Line 9: d maximises u_jc over j with l_jc <= 1/2, in B^c w.p. 1/2 (all arms when B^c
        # has no such j), else in all arms, where c itself (u_cc = 1/2) wins if no u_jc >= 1/2.
        restrict = draw_uniform(state, n) < 0.5 and opp_size[n, c] > 0
        best = -1.0
        d = c
        for _ in range(2):
            ties = 0
            for j in range(k):
                if j == c or (restrict and not opp[n, c, j]) or _lower_gt(W, n, j, c, c4):
                    continue
                v = _ucb(W, n, j, c, alpha * log_t)
                if v > best:
                    best = v
                    d = j
                    ties = 1
                elif v == best:
                    ties += 1
                    if draw_tie(state, n, ties):
                        d = j
            if best >= 0.0 or not restrict:
                break
            restrict = False
        if best < 0.5 and not restrict:
            d = c
        out[n, 0] = c
        out[n, 1] = d


# ----- RMED1 -----------------------------------------------------------------------------------
@njit(cache=True, error_model="numpy", inline="always")
def _kl_half(p: float) -> float:
    """KL(Bernoulli(p) || Bernoulli(1/2))."""
    v = math.log(2.0)
    if p > 0.0:
        v += p * math.log(p)
    if p < 1.0:
        v += (1.0 - p) * math.log(1.0 - p)
    return v


@njit(cache=True, error_model="numpy", inline="always")
def divergence_term(W: np.ndarray, n: int, i: int, j: int) -> float:
    """Pair (i, j)'s term of I_i: N_ij KL(mu_ij, 1/2) when mu_ij <= 1/2, else 0 (i != j)."""
    nij = W[n, i, j] + W[n, j, i]
    if nij > 0.0 and W[n, i, j] <= W[n, j, i]:
        return nij * _kl_half(W[n, i, j] / nij)
    return 0.0


@njit(cache=True, error_model="numpy", inline="always")
def _divergence(W: np.ndarray, n: int, i: int) -> float:
    """I_i = sum over j with mu_ij <= 1/2 of N_ij KL(mu_ij, 1/2) (Komiyama et al. 2015, eq. 2)."""
    total = 0.0
    for j in range(W.shape[1]):
        if j != i:
            total += divergence_term(W, n, i, j)
    return total


@njit(cache=True, error_model="numpy", inline="always")
def rmed_pick(
    W: np.ndarray,
    n: int,
    div: np.ndarray,
    order: np.ndarray,
    in_c: np.ndarray,
    pos: np.ndarray,
    state: np.ndarray,
) -> tuple[int, int]:
    """Run n's duel (l(t), m(t)) of RMED1 (Komiyama et al. 2015, Algorithm 2)."""
    k = W.shape[1]
    p = pos[n]
    while not in_c[n, order[n, p]]:
        p += 1
    pos[n] = p
    arm = order[n, p]
    # i*(t): the arm of least empirical divergence, ties broken at random.
    best = np.inf
    star = 0
    ties = 0
    for i in range(k):
        v = div[n, i]
        if v < best:
            best = v
            star = i
            ties = 1
        elif v == best:
            ties += 1
            if draw_tie(state, n, ties):
                star = i
    # O_l = {j != l : mu_lj <= 1/2}; draw i* when O_l is empty or holds i*, else the arm
    # that beats l most.
    empty = True
    star_in = False
    low = np.inf
    m = star
    ties = 0
    for j in range(k):
        if j == arm:
            continue
        mu = _mean(W, n, arm, j)
        if mu <= 0.5:
            empty = False
            if j == star:
                star_in = True
        if mu < low:
            low = mu
            m = j
            ties = 1
        elif mu == low:
            ties += 1
            if draw_tie(state, n, ties):
                m = j
    return arm, (star if (empty or star_in) else m)


@njit(cache=True, parallel=True, error_model="numpy")
def rmed_choose(
    W: np.ndarray,
    div: np.ndarray,
    order: np.ndarray,
    in_c: np.ndarray,
    pos: np.ndarray,
    state: np.ndarray,
    out: np.ndarray,
) -> None:
    """RMED1's next duel (l(t), m(t)) (Komiyama et al. 2015, Algorithms 1 and 2)."""
    for n in prange(W.shape[0]):
        arm, opponent = rmed_pick(W, n, div, order, in_c, pos, state)
        out[n, 0] = arm
        out[n, 1] = opponent


@njit(cache=True, error_model="numpy", inline="always")
def rmed_advance(
    n: int,
    div: np.ndarray,
    order: np.ndarray,
    in_c: np.ndarray,
    in_r: np.ndarray,
    in_n: np.ndarray,
    pos: np.ndarray,
    arm: int,
    level: float,
) -> None:
    """RMED1's loop bookkeeping after arm l = ``arm`` dueled (Komiyama et al. 2015, Algorithm
    1): l leaves L_R, arms out of L_R with I_j - min I <= ``level`` (log t + f(K)) join L_N,
    and at the end of L_C the loop restarts with L_C <- L_R <- L_N, L_N <- {}."""
    k = div.shape[1]
    in_r[n, arm] = False
    low = np.inf
    for a in range(k):
        low = min(low, div[n, a])
    for a in range(k):
        if not in_r[n, a] and div[n, a] - low <= level:
            in_n[n, a] = True
    p = pos[n] + 1
    while p < k and not in_c[n, order[n, p]]:
        p += 1
    if p < k:
        pos[n] = p
        return
    # End of the loop: L_C <- L_R <- L_N, L_N <- {}.
    for a in range(k):
        in_c[n, a] = in_n[n, a]
        in_r[n, a] = in_n[n, a]
        in_n[n, a] = False
    pos[n] = 0


@njit(cache=True, parallel=True, error_model="numpy")
def rmed_update(
    W: np.ndarray,
    div: np.ndarray,
    order: np.ndarray,
    in_c: np.ndarray,
    in_r: np.ndarray,
    in_n: np.ndarray,
    pos: np.ndarray,
    actions: np.ndarray,
    log_t: float,
    tolerance: float,
    initial: bool,
) -> None:
    """Refresh I for the two dueled arms and run RMED's loop bookkeeping (L_C, L_R, L_N)."""
    for n in prange(W.shape[0]):
        i = actions[n, 0]
        j = actions[n, 1]
        div[n, i] = _divergence(W, n, i)
        div[n, j] = _divergence(W, n, j)
        if not initial:
            rmed_advance(n, div, order, in_c, in_r, in_n, pos, i, log_t + tolerance)


# ----- Interleaved Filter ----------------------------------------------------------------------
@njit(cache=True, parallel=True, error_model="numpy")
def if_choose(candidate: np.ndarray, active: np.ndarray, pos: np.ndarray, out: np.ndarray) -> None:
    """The candidate against the next arm of W in the round robin; (b, b) once W is empty."""
    n_runs, k = active.shape
    for n in prange(n_runs):
        b = candidate[n]
        out[n, 0] = b
        out[n, 1] = b
        for a in range(pos[n], k):
            if active[n, a]:
                out[n, 1] = a
                break


@njit(cache=True, parallel=True, error_model="numpy")
def if_update(
    candidate: np.ndarray,
    active: np.ndarray,
    wins: np.ndarray,
    rounds: np.ndarray,
    pos: np.ndarray,
    actions: np.ndarray,
    outcomes: np.ndarray,
    log_inv_delta: float,
) -> None:
    """Record candidate-vs-b; at the end of each round robin, filter W (Yue et al. 2012, IF1)."""
    n_runs, k = active.shape
    for n in prange(n_runs):
        b = actions[n, 1]
        if b == candidate[n]:
            continue  # exploiting: W is empty
        wins[n, b] += outcomes[n]
        p = b + 1
        while p < k and not active[n, p]:
            p += 1
        if p < k:
            pos[n] = p
            continue
        rounds[n] += 1
        t = rounds[n]
        conf = math.sqrt(4.0 * log_inv_delta / t)  # c_t of the paper, eq. (7)
        # Remove the arms the candidate beats confidently (P_hat > 1/2 and 1/2 not in C).
        for a in range(k):
            if active[n, a] and wins[n, a] / t - conf > 0.5:
                active[n, a] = False
        # A confident winner over the candidate becomes the new candidate; estimates restart.
        new = -1
        low = 0.5
        for a in range(k):
            if active[n, a]:
                p_hat = wins[n, a] / t
                if p_hat + conf < 0.5 and p_hat < low:
                    low = p_hat
                    new = a
        if new >= 0:
            candidate[n] = new
            active[n, new] = False
            for a in range(k):
                wins[n, a] = 0.0
            rounds[n] = 0
        pos[n] = k
        for a in range(k):
            if active[n, a]:
                pos[n] = a
                break


# ----- Beat the Mean ---------------------------------------------------------------------------
@njit(cache=True, parallel=True, error_model="numpy")
def btm_choose(
    active: np.ndarray, n_b: np.ndarray, size: np.ndarray, state: np.ndarray, out: np.ndarray
) -> None:
    """The least-compared arm of the working set against a uniformly drawn member of it."""
    n_runs, k = active.shape
    for n in prange(n_runs):
        least = np.inf
        b = 0
        ties = 0
        for a in range(k):
            if not active[n, a]:
                continue
            if n_b[n, a] < least:
                least = n_b[n, a]
                b = a
                ties = 1
            elif n_b[n, a] == least:
                ties += 1
                if draw_tie(state, n, ties):
                    b = a
        out[n, 0] = b
        out[n, 1] = b
        if size[n] <= 1:
            continue
        r = draw_index(state, n, size[n])
        for a in range(k):
            if active[n, a]:
                if r == 0:
                    out[n, 1] = a
                    break
                r -= 1


@njit(cache=True, parallel=True, error_model="numpy")
def btm_update(
    active: np.ndarray,
    wins: np.ndarray,
    comps: np.ndarray,
    n_b: np.ndarray,
    w_b: np.ndarray,
    size: np.ndarray,
    actions: np.ndarray,
    outcomes: np.ndarray,
    log_inv_delta: float,
    gamma: float,
) -> None:
    """Count b's duel against the mean; drop the worst arm once it is confidently below the best
    (Yue & Joachims 2011, Algorithm 1), forgetting every comparison against it."""
    n_runs, k = active.shape
    for n in prange(n_runs):
        if size[n] <= 1:
            continue
        b = actions[n, 0]
        o = actions[n, 1]
        wins[n, b, o] += outcomes[n]
        comps[n, b, o] += 1.0
        w_b[n, b] += outcomes[n]
        n_b[n, b] += 1.0
        least = np.inf
        p_min = np.inf
        p_max = -np.inf
        worst = 0
        for a in range(k):
            if not active[n, a]:
                continue
            least = min(least, n_b[n, a])
            p = w_b[n, a] / n_b[n, a] if n_b[n, a] > 0.0 else 0.5
            if p < p_min:
                p_min = p
                worst = a
            p_max = max(p_max, p)
        conf = 1.0 if least == 0.0 else 3.0 * gamma * gamma * math.sqrt(log_inv_delta / least)
        if p_min + conf <= p_max - conf:
            active[n, worst] = False
            size[n] -= 1
            for a in range(k):
                n_b[n, a] -= comps[n, a, worst]
                w_b[n, a] -= wins[n, a, worst]


# ----- MergeRUCB -------------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _merge(
    n: int,
    batch: np.ndarray,
    n_batches: np.ndarray,
    partition: int,
    state: np.ndarray,
    sizes: np.ndarray,
    order: np.ndarray,
    keys: np.ndarray,
    mapping: np.ndarray,
) -> None:
    """Merge batches, small with large, towards ``partition`` arms each (Zoghi et al. 2015b)."""
    k = batch.shape[1]
    nb = n_batches[n]
    for b in range(nb):
        sizes[b] = 0
        keys[b] = draw_uniform(state, n)
        order[b] = b
    for a in range(k):
        if batch[n, a] >= 0:
            sizes[batch[n, a]] += 1
    for b in range(1, nb):  # insertion sort by (size, random key)
        x = order[b]
        c = b - 1
        while c >= 0 and (
            sizes[order[c]] > sizes[x] or (sizes[order[c]] == sizes[x] and keys[order[c]] > keys[x])
        ):
            order[c + 1] = order[c]
            c -= 1
        order[c + 1] = x
    i = 0
    j = nb - 1
    new = 0
    acc = sizes[order[j]] if nb > 0 else 0
    mapping[order[j]] = 0
    while i < j:
        s = sizes[order[i]]
        if s + acc >= 1.5 * partition:  # the large batch is full: close it
            j -= 1
            new += 1
            mapping[order[j]] = new
            acc = sizes[order[j]]
        else:  # fold the small batch into the large one
            mapping[order[i]] = new
            acc += s
            i += 1
            if acc >= 0.5 * partition and i < j:
                j -= 1
                new += 1
                mapping[order[j]] = new
                acc = sizes[order[j]]
    for a in range(k):
        if batch[n, a] >= 0:
            batch[n, a] = mapping[batch[n, a]]
    n_batches[n] = new + 1


@njit(cache=True, error_model="numpy")
def merge_rucb_pick(
    W: np.ndarray,
    n: int,
    batch: np.ndarray,
    n_batches: np.ndarray,
    turn: np.ndarray,
    alpha: float,
    log_t: float,
    partition: int,
    state: np.ndarray,
    scratch: np.ndarray,
    out: np.ndarray,
) -> None:
    """Run n's MergeRUCB duel (see :func:`merge_rucb_choose`) into ``out[n]``."""
    k = W.shape[1]
    c4 = 4.0 * alpha * log_t
    members = scratch[n, 0]
    drop = scratch[n, 1]
    done = False
    while not done:
        nb = n_batches[n]
        for step in range(nb):
            lab = (turn[n] + step) % nb
            size = 0
            for a in range(k):
                if batch[n, a] == lab:
                    members[size] = a
                    size += 1
            # Prune: drop a_i with u_ij < 1/2 for some j of the batch (keep one arm).
            n_drop = 0
            for x in range(size):
                i = members[x]
                for y in range(size):
                    if not _upper_ge(W, n, i, members[y], c4):
                        drop[n_drop] = i
                        n_drop += 1
                        break
            if n_drop == size:
                n_drop -= 1
            for x in range(n_drop):
                batch[n, drop[x]] = -1
            if n_drop > 0:
                size = 0
                for a in range(k):
                    if batch[n, a] == lab:
                        members[size] = a
                        size += 1
            if size > 1:
                c = members[draw_index(state, n, size)]
                best = -1.0
                d = c
                ties = 0
                for x in range(size):
                    j = members[x]
                    if j == c:
                        continue
                    v = _ucb(W, n, j, c, alpha * log_t)
                    if v > best:
                        best = v
                        d = j
                        ties = 1
                    elif v == best:
                        ties += 1
                        if draw_tie(state, n, ties):
                            d = j
                out[n, 0] = c
                out[n, 1] = d
                turn[n] = (lab + 1) % nb
                done = True
                break
        if done:
            break
        if nb == 1:  # one batch of one arm: exploration is over
            for a in range(k):
                if batch[n, a] >= 0:
                    out[n, 0] = a
                    out[n, 1] = a
            done = True
        else:  # every batch holds a single arm: merge them
            sizes = scratch[n, 2]
            order = scratch[n, 3]
            mapping = scratch[n, 4]
            keys = np.empty(nb)
            _merge(n, batch, n_batches, partition, state, sizes, order, keys, mapping)
            turn[n] = 0


@njit(cache=True, parallel=True, error_model="numpy")
def merge_rucb_choose(
    W: np.ndarray,
    batch: np.ndarray,
    n_batches: np.ndarray,
    turn: np.ndarray,
    alpha: float,
    log_t: float,
    partition: int,
    state: np.ndarray,
    scratch: np.ndarray,
    out: np.ndarray,
) -> None:
    """Visit batches round robin, pruning each; duel inside the first with two or more arms.

    ``log_t`` is log(t + C); a run whose arms all collapsed into one batch of one arm plays
    that arm against itself.
    """
    for n in prange(W.shape[0]):
        merge_rucb_pick(W, n, batch, n_batches, turn, alpha, log_t, partition, state, scratch, out)


@njit(cache=True, error_model="numpy")
def merge_rucb_stage(
    n: int,
    batch: np.ndarray,
    n_batches: np.ndarray,
    stage: np.ndarray,
    turn: np.ndarray,
    partition: int,
    state: np.ndarray,
    scratch: np.ndarray,
) -> None:
    """Run n's merge check after a duel (see :func:`merge_rucb_update`)."""
    k = batch.shape[1]
    if n_batches[n] <= 1:
        return
    left = 0
    for a in range(k):
        if batch[n, a] >= 0:
            left += 1
    if left > k / 2.0 ** stage[n]:
        return
    sizes = scratch[n, 2]
    order = scratch[n, 3]
    mapping = scratch[n, 4]
    keys = np.empty(n_batches[n])
    _merge(n, batch, n_batches, partition, state, sizes, order, keys, mapping)
    smallest = k
    for b in range(n_batches[n]):
        sizes[b] = 0
    for a in range(k):
        if batch[n, a] >= 0:
            sizes[batch[n, a]] += 1
    for b in range(n_batches[n]):
        smallest = min(smallest, sizes[b])
    if n_batches[n] > 1 and smallest <= 0.5 * partition:
        keys = np.empty(n_batches[n])
        _merge(n, batch, n_batches, partition, state, sizes, order, keys, mapping)
    stage[n] += 1
    turn[n] = 0


@njit(cache=True, parallel=True, error_model="numpy")
def merge_rucb_update(
    batch: np.ndarray,
    n_batches: np.ndarray,
    stage: np.ndarray,
    turn: np.ndarray,
    partition: int,
    state: np.ndarray,
    scratch: np.ndarray,
) -> None:
    """Merge the batches once at most K / 2^s arms remain (then s <- s + 1)."""
    for n in prange(batch.shape[0]):
        merge_rucb_stage(n, batch, n_batches, stage, turn, partition, state, scratch)


# ----- Self-Sparring ---------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def sparring_update(
    successes: np.ndarray,
    failures: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    actions: np.ndarray,
    winners: np.ndarray,
    eta: float,
    pairwise: bool,
) -> bool:
    """Credit the winner of each run's subset against every other pick (S += eta, F += eta).

    ``pairwise``: ``winners`` holds 1.0 when actions[:, 0] won a duel, else the winning slot.
    Refreshes the Gamma-sampler constants of Beta(S + 1, F + 1) for the arms involved.
    Returns False (no change) on feedback outside the valid set.
    """
    n_runs, m = actions.shape
    for n in range(n_runs):
        w = winners[n]
        if pairwise:
            if w != 0.0 and w != 1.0:
                return False
        elif w != math.floor(w) or w < 0 or w >= m:
            return False
    for n in range(n_runs):
        slot = (0 if winners[n] == 1.0 else 1) if pairwise else int(winners[n])
        best = actions[n, slot]
        for s in range(m):
            if s == slot:
                continue
            successes[n, best] += eta
            failures[n, actions[n, s]] += eta
        for s in range(m):
            a = actions[n, s]
            set_gamma_constants(alpha, n, a, successes[n, a] + 1.0)
            set_gamma_constants(beta, n, a, failures[n, a] + 1.0)
    return True


@njit(cache=True, error_model="numpy")
def sparring_ranking_update(
    successes: np.ndarray,
    failures: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    actions: np.ndarray,
    ranking: np.ndarray,
    eta: float,
) -> bool:
    """Credit every pair a full ranking reveals: the pick ranked higher beat each one below.

    ``ranking[n]`` holds the slots of run n's subset from best to worst (a permutation of
    0 .. m - 1). Refreshes the Beta(S + 1, F + 1) sampler constants of the arms involved.
    Returns False (no change) when some row is not a permutation.
    """
    n_runs, m = actions.shape
    seen = np.zeros(m, dtype=np.bool_)
    for n in range(n_runs):
        seen[:] = False
        for i in range(m):
            s = ranking[n, i]
            if s < 0 or s >= m or seen[s]:
                return False
            seen[s] = True
    for n in range(n_runs):
        for i in range(m):
            better = actions[n, ranking[n, i]]
            for j in range(i + 1, m):
                successes[n, better] += eta
                failures[n, actions[n, ranking[n, j]]] += eta
        for s in range(m):
            a = actions[n, s]
            set_gamma_constants(alpha, n, a, successes[n, a] + 1.0)
            set_gamma_constants(beta, n, a, failures[n, a] + 1.0)
    return True


@njit(cache=True, error_model="numpy")
def rmed_record_arrived(
    W: np.ndarray, div: np.ndarray, actions: np.ndarray, outcomes: np.ndarray, mask: np.ndarray
) -> bool:
    """Record every duel ``mask[n, s]`` of a delayed env's arrivals (``actions`` ``(n, m, 2)``)
    in W and refresh I for the arms dueled; False (and no change) unless outcomes are 0/1."""
    n_runs, m = mask.shape
    for n in range(n_runs):
        for s in range(m):
            if mask[n, s] and outcomes[n, s] != 0.0 and outcomes[n, s] != 1.0:
                return False
    for n in range(n_runs):
        for s in range(m):
            if not mask[n, s]:
                continue
            i = actions[n, s, 0]
            j = actions[n, s, 1]
            if outcomes[n, s] == 1.0:
                W[n, i, j] += 1.0
            else:
                W[n, j, i] += 1.0
        for s in range(m):
            if mask[n, s]:
                div[n, actions[n, s, 0]] = _divergence(W, n, actions[n, s, 0])
                div[n, actions[n, s, 1]] = _divergence(W, n, actions[n, s, 1])
    return True
