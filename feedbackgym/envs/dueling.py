"""Dueling-bandit environments (preference matrices, Plackett-Luce, contextual CoLST), vectorised.

The learner picks arms and learns only who won. The hidden truth (the preference matrix, the
Condorcet, Copeland and Borda winners, and the regret of each duel) goes to ``info``; regret
notions follow ARCHITECTURE.md: with a Condorcet winner b*, Delta_k = P(b* beats k) - 1/2 and a
duel (i, j) costs (Delta_i + Delta_j) / 2 ("average"), the max ("strong") or the min ("weak");
Copeland regret (Zoghi et al. 2015) and Borda regret apply to every matrix.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space
from numba import njit, vectorize

from feedbackgym.envs.bandits import DEFAULT_HORIZON, BanditVectorEnv, SingleRunBandit
from feedbackgym.errors import ConfigError, check_positive_int, check_range

FAMILIES = ("btl", "thurstone", "random-condorcet", "cyclic", "copeland")
#: Families whose every matrix has a Condorcet winner.
CONDORCET_FAMILIES = ("btl", "thurstone", "random-condorcet")
CONDORCET_METRICS = ("average", "strong", "weak")
LINKS = ("logistic", "probit")
_TOL = 1e-9


@vectorize(["float64(float64)"], cache=True)
def std_normal_cdf(x: float) -> float:  # pragma: no cover - compiled
    """Phi(x), the standard normal CDF (the Thurstone / probit link)."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def logistic(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), the Bradley-Terry-Luce link."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


# ----- preference matrices ---------------------------------------------------------------------
def validate_preference_matrix(matrix: Any, name: str = "preference_matrix") -> np.ndarray:
    """Return ``matrix`` as a float array, or raise a one-line ConfigError saying what is wrong.

    A preference matrix P is square (K >= 2), holds probabilities in [0, 1], has P + P^T = 1
    (P_ij is the probability that i beats j) and 1/2 on the diagonal.
    """
    try:
        arr = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name} must be a square list of lists of numbers, got {matrix!r}"
        ) from None
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 2:
        raise ConfigError(
            f"{name} must be square with K >= 2 rows, got shape {'x'.join(map(str, arr.shape))}"
        )
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{name} must hold finite numbers")
    bad = np.argwhere((arr < 0) | (arr > 1))
    if bad.size:
        i, j = bad[0]
        raise ConfigError(f"{name}[{i}][{j}] = {arr[i, j]:g} is not a probability in [0, 1]")
    diag = np.flatnonzero(np.abs(np.diag(arr) - 0.5) > _TOL)
    if diag.size:
        i = diag[0]
        raise ConfigError(f"{name}[{i}][{i}] = {arr[i, i]:g}; the diagonal must be 1/2")
    bad = np.argwhere(np.abs(arr + arr.T - 1.0) > _TOL)
    if bad.size:
        i, j = bad[0]
        raise ConfigError(
            f"{name}[{i}][{j}] + {name}[{j}][{i}] = {arr[i, j] + arr[j, i]:g}, must be 1 "
            "(P_ij is the probability that i beats j)"
        )
    return arr


def condorcet_winner(matrix: np.ndarray) -> int | None:
    """The arm that beats every other with probability > 1/2, or None."""
    beats = matrix > 0.5
    np.fill_diagonal(beats, True)
    winners = np.flatnonzero(beats.all(axis=1))
    return int(winners[0]) if winners.size else None


def copeland_scores(matrix: np.ndarray) -> np.ndarray:
    """Normalised Copeland score of each arm: the fraction of the others it beats (P > 1/2)."""
    k = matrix.shape[-1]
    return (matrix > 0.5).sum(axis=-1) / (k - 1)


def borda_scores(matrix: np.ndarray) -> np.ndarray:
    """Borda score of each arm: its mean probability of beating a uniformly drawn other arm."""
    k = matrix.shape[-1]
    return (matrix.sum(axis=-1) - 0.5) / (k - 1)


def utility_matrix(utilities: np.ndarray, link: str = "logistic", scale: float = 1.0) -> np.ndarray:
    """P_ij = F(scale (u_i - u_j)) with F the logistic (BTL) or normal (Thurstone) CDF."""
    diff = scale * (utilities[..., :, None] - utilities[..., None, :])
    return logistic(diff) if link == "logistic" else std_normal_cdf(diff)


def _won(rng: np.random.Generator, size: Any, margin: float) -> np.ndarray:
    """Probabilities of the pairs a winner beats: 1/2 + d, d ~ Uniform(margin, 1/2]."""
    return 0.5 + margin + (0.5 - margin) * (1.0 - rng.random(size))


def _from_wins(wins: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Matrix where i beats j with probability probs[i, j] when wins[i, j] (upper triangle used)."""
    k = wins.shape[0]
    upper = np.triu(np.ones((k, k), dtype=bool), 1)
    p = np.where(wins, probs, 1.0 - probs)
    p = np.where(upper, p, 0.0)
    p = p + np.where(upper, 1.0 - p, 0.0).T
    np.fill_diagonal(p, 0.5)
    return p


def generate_matrix(
    family: str,
    n_arms: int,
    rng: np.random.Generator,
    *,
    utilities: np.ndarray | None = None,
    scale: float = 3.0,
    margin: float = 0.1,
    n_winners: int = 3,
) -> np.ndarray:
    """One preference matrix of the named family (see :class:`DuelingBanditVec`)."""
    k = n_arms
    if family in ("btl", "thurstone"):
        u = rng.random(k) if utilities is None else utilities
        return utility_matrix(u, "logistic" if family == "btl" else "probit", scale)
    upper = np.triu(np.ones((k, k), dtype=bool), 1)
    if family == "random-condorcet":
        # Any tournament among the others (cycles allowed), one arm beating all of them.
        p = _from_wins(upper, rng.random((k, k)))
        best = int(rng.integers(k))
        p[best] = _won(rng, k, margin)
        p[:, best] = 1.0 - p[best]
        p[best, best] = 0.5
        return p
    idx = np.arange(k)
    if family == "cyclic":
        # Rock-paper-scissors blocks of 3 consecutive arms (a leftover of 1 or 2 arms forms a
        # last block), every block beating all later ones: arms 0-2 are the top cycle.
        block = idx // 3
        same = block[:, None] == block[None, :]
        cycle = (idx[None, :] - idx[:, None]) % 3 == 1
        wins = np.where(same, cycle, block[:, None] < block[None, :])
        return _from_wins(wins, _won(rng, (k, k), margin))
    if family == "copeland":
        # n_winners (odd) arms form a regular tournament (each beats the next (w - 1) / 2 round a
        # circle) and beat all others, who play a random tournament: every winner has Copeland
        # score (w - 1) / 2 + K - w, more than any other arm, and none beats all.
        w = n_winners
        ring = (idx[None, :] - idx[:, None]) % w
        among = (idx[:, None] < w) & (idx[None, :] < w)
        wins = np.where(among, (ring >= 1) & (ring <= (w - 1) // 2), idx[:, None] < w)
        rest = (idx[:, None] >= w) & (idx[None, :] >= w)
        wins = np.where(rest, rng.random((k, k)) < 0.5, wins)
        p = _from_wins(wins, _won(rng, (k, k), margin))
        perm = rng.permutation(k)
        return p[np.ix_(perm, perm)]
    raise ConfigError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")


# ----- step kernels ----------------------------------------------------------------------------
@njit(cache=True, error_model="numpy")
def _duel_step(
    matrix: np.ndarray,
    delta: np.ndarray,
    copeland: np.ndarray,
    borda: np.ndarray,
    actions: np.ndarray,
    u: np.ndarray,
    outcome: np.ndarray,
    regret: np.ndarray,
) -> int:
    """Draw each run's duel and its five regrets; returns the number of out-of-range actions.

    ``matrix``, ``delta`` (Delta_k), ``copeland`` and ``borda`` (best score minus the arm's)
    have a leading axis of size 1 (one instance for every run) or of size n_runs.
    ``regret`` rows: average, strong, weak, copeland, borda.
    """
    n_runs = actions.shape[0]
    k = matrix.shape[1]
    shared = matrix.shape[0] == 1
    bad = 0
    for n in range(n_runs):
        i = actions[n, 0]
        j = actions[n, 1]
        if i < 0 or i >= k or j < 0 or j >= k:
            bad += 1
            continue
        r = 0 if shared else n
        outcome[n] = 1.0 if u[n] < matrix[r, i, j] else 0.0
        di = delta[r, i]
        dj = delta[r, j]
        regret[0, n] = 0.5 * (di + dj)
        regret[1, n] = max(di, dj)
        regret[2, n] = min(di, dj)
        regret[3, n] = 0.5 * (copeland[r, i] + copeland[r, j])
        regret[4, n] = 0.5 * (borda[r, i] + borda[r, j])
    return bad


class DuelingBanditVec(BanditVectorEnv):
    """K-armed dueling bandit: pick a pair (i, j), observe 1 if i beat j, else 0.

    The preference matrix P (P_ij = probability that i beats j) is given, or drawn from a named
    family: once from ``matrix_seed`` when given (one instance for every run), else per run at
    reset. Families:

    - ``btl``: P_ij = 1 / (1 + exp(-scale (u_i - u_j))) (Bradley-Terry-Luce), utilities u given
      or drawn from Uniform(0, 1); a total order, Condorcet winner argmax u.
    - ``thurstone``: P_ij = Phi(scale (u_i - u_j)) (Thurstone case V / probit), likewise.
    - ``random-condorcet``: random pairwise probabilities (cycles among the others allowed) and one
      random arm that beats every other with probability 1/2 + d, d ~ U(margin, 1/2].
    - ``cyclic``: rock-paper-scissors blocks of 3 arms, each block beating every later one;
      arms 0, 1, 2 form the top cycle, so there is no Condorcet winner (3 Copeland winners).
    - ``copeland``: ``n_winners`` (odd) random arms tie as Copeland winners (a regular
      tournament among them, all beating the rest); no Condorcet winner.

    In the generated cyclic and copeland matrices every pair is decided with margin:
    |P_ij - 1/2| >= ``margin``. The reward (the learner's feedback) and the next observation
    are the outcome, 1.0 if i beat j. ``info`` carries per-duel regret (``regret_average``,
    ``regret_strong``, ``regret_weak`` when the matrix has a Condorcet winner;
    ``regret_copeland``, ``regret_borda`` always), ``condorcet_winner`` (-1 when none),
    ``copeland_winner`` (the lowest-index one), ``copeland_winners`` (a (K,) mask per run) and
    ``borda_winner``.

    :param preference_matrix: the K x K matrix; validated (square, entries in [0, 1],
        P + P^T = 1, diagonal 1/2).
    :param family: the family the matrix is drawn from when none is given.
    :param n_arms: number of arms K when the matrix is drawn.
    :param utilities: fixed utilities for ``btl`` and ``thurstone`` (then K = their count).
    :param scale: slope of the btl / thurstone link, > 0.
    :param margin: smallest |P_ij - 1/2| of decided pairs in the random-condorcet (winner's
        row), cyclic and copeland families, in [0, 1/2).
    :param n_winners: number of Copeland winners of the ``copeland`` family (odd, >= 3, <= K).
    :param matrix_seed: seed for drawing one fixed matrix for every run.
    :param horizon: duels per episode.
    """

    feedback_type = "duel"
    regret_metrics = ("average", "strong", "weak", "copeland", "borda")
    #: Arms per action (2: a duel).
    subset_size: ClassVar[int] = 2

    def __init__(
        self,
        num_envs: int = 1,
        preference_matrix: list[list[float]] | None = None,
        family: str = "btl",
        n_arms: int = 10,
        utilities: list[float] | None = None,
        scale: float = 3.0,
        margin: float = 0.1,
        n_winners: int = 3,
        matrix_seed: int | None = None,
        horizon: int = DEFAULT_HORIZON,
    ) -> None:
        if family not in FAMILIES:
            raise ConfigError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")
        self.family = family
        self.scale = check_range("scale", scale, 0.0, low_open=True)
        self.margin = check_range("margin", margin, 0.0, 0.5, high_open=True)
        fixed = None
        if preference_matrix is not None:
            fixed = validate_preference_matrix(preference_matrix)
            n_arms = fixed.shape[0]
            self.family = "given"
        self._utilities = None
        if utilities is not None:
            if preference_matrix is not None:
                raise ConfigError("give either preference_matrix or utilities, not both")
            if family not in ("btl", "thurstone"):
                raise ConfigError(
                    f"utilities apply to the btl and thurstone families, not {family!r}"
                )
            u = np.asarray(utilities, dtype=np.float64) if _is_numbers(utilities) else None
            if u is None or u.ndim != 1 or u.size < 2 or not np.all(np.isfinite(u)):
                raise ConfigError(
                    f"utilities must be a list of >= 2 finite numbers, got {utilities!r}"
                )
            self._utilities = u
            n_arms = u.size
        n_arms = check_positive_int("n_arms", n_arms)
        if self.family == "cyclic" and n_arms < 3:
            raise ConfigError(f"the cyclic family needs n_arms >= 3, got {n_arms}")
        if self.family == "copeland":
            n_winners = check_positive_int("n_winners", n_winners)
            if n_winners < 3 or n_winners % 2 == 0 or n_winners > n_arms:
                raise ConfigError(
                    f"n_winners must be odd, >= 3 and <= n_arms ({n_arms}), got {n_winners}"
                )
        self.n_winners = n_winners
        self.single_observation_space = spaces.Discrete(2)
        super().__init__(num_envs, n_arms, horizon)
        self.single_action_space = spaces.MultiDiscrete([self.n_arms] * self.subset_size)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.matrix_seed = matrix_seed
        if fixed is None and (matrix_seed is not None or self._utilities is not None):
            fixed = self._draw(np.random.default_rng(matrix_seed))
        self._fixed = fixed
        if fixed is not None:
            self.has_condorcet_winner = condorcet_winner(fixed) is not None
            self._set_truth(fixed[None].copy())
        else:
            self.has_condorcet_winner = self.family in CONDORCET_FAMILIES
            self._set_truth(np.full((self.num_envs, self.n_arms, self.n_arms), 0.5))
        self._last = np.zeros(self.num_envs, dtype=np.int64)

    def _draw(self, rng: np.random.Generator) -> np.ndarray:
        return generate_matrix(
            self.family,
            self.n_arms,
            rng,
            utilities=self._utilities,
            scale=self.scale,
            margin=self.margin,
            n_winners=self.n_winners,
        )

    def _set_truth(self, matrices: np.ndarray) -> None:
        """Store the matrices (leading axis 1 or num_envs) and what follows from them."""
        self.preference_matrix = matrices
        k = self.n_arms
        beats = matrices > 0.5
        beats[:, np.arange(k), np.arange(k)] = True
        is_cw = beats.all(axis=2)
        has = is_cw.any(axis=1)
        cw = np.where(has, is_cw.argmax(axis=1), -1)
        rows = np.arange(matrices.shape[0])
        delta = matrices[rows, np.maximum(cw, 0)] - 0.5
        self._delta = np.where(has[:, None], delta, np.nan)
        cpl = copeland_scores(matrices)
        brd = borda_scores(matrices)
        self._copeland = cpl.max(axis=1, keepdims=True) - cpl
        self._borda = brd.max(axis=1, keepdims=True) - brd
        winners = cpl == cpl.max(axis=1, keepdims=True)
        runs = self.num_envs
        self._winners = {
            "condorcet_winner": np.broadcast_to(cw, (runs,)).copy(),
            "copeland_winner": np.broadcast_to(winners.argmax(axis=1), (runs,)).copy(),
            "copeland_winners": np.broadcast_to(winners, (runs, k)).copy(),
            "borda_winner": np.broadcast_to(brd.argmax(axis=1), (runs,)).copy(),
        }

    def arm_regrets(self, notion: str) -> np.ndarray:
        """Each arm's regret under ``notion`` (a Condorcet metric, "copeland" or "borda"), one row
        per matrix (1 or num_envs): Delta_k = P(b* beats k) - 1/2 (NaN rows without a Condorcet
        winner), or the gap to the best Copeland or Borda score. A duel's regret combines its
        two arms' (mean, max or min for average, strong, weak; mean for copeland and borda)."""
        if notion in CONDORCET_METRICS:
            return self._delta
        if notion in ("copeland", "borda"):
            return self._copeland if notion == "copeland" else self._borda
        valid = ", ".join((*CONDORCET_METRICS, "copeland", "borda"))
        raise ConfigError(f"unknown regret notion {notion!r}; valid: {valid}")

    def _reset_runs(self, runs: np.ndarray) -> None:
        self._last = self._last.copy()
        self._last[runs] = 0
        if self._fixed is not None:
            return
        matrices = self.preference_matrix.copy()  # matrices handed out stay as they were
        for r in runs:
            matrices[r] = self._draw(self.np_random)
        self._set_truth(matrices)

    def _observation(self) -> np.ndarray:
        return self._last.copy()

    def check_metric(self, metric: str) -> None:
        super().check_metric(metric)
        if metric in CONDORCET_METRICS and not self.has_condorcet_winner:
            raise ConfigError(
                f"metric {metric!r} needs a Condorcet winner, which this preference matrix "
                f"({self._describe()}) does not have; metrics that apply: copeland, borda"
            )

    def _describe(self) -> str:
        return "given" if self.family == "given" else f"family {self.family!r}"

    def _check_actions(self, actions: Any) -> np.ndarray:
        actions = np.asarray(actions)
        m = self.subset_size
        if actions.dtype.kind not in "iu" or actions.size != self.num_envs * m:
            raise ConfigError(
                f"actions must be {m} arm indices per run, shape ({self.num_envs}, {m}), "
                f"got {actions.tolist()[:8] if actions.size < 64 else actions.shape}"
            )
        return actions.reshape(self.num_envs, m).astype(np.int64, copy=False)

    def _bad_actions(self, actions: np.ndarray) -> ConfigError:
        return ConfigError(
            f"actions must be arm indices in [0, {self.n_arms - 1}], got {actions.tolist()[:4]}"
        )

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = self._check_actions(actions)
        restarting = self._restart_finished_runs()
        any_restart = restarting.any()
        outcome = np.empty(self.num_envs)
        regret = np.empty((5, self.num_envs))
        bad = _duel_step(
            self.preference_matrix,
            self._delta,
            self._copeland,
            self._borda,
            actions,
            self.np_random.random(self.num_envs),
            outcome,
            regret,
        )
        if bad:
            raise self._bad_actions(actions)
        if any_restart:
            outcome[restarting] = 0.0
            regret[:, restarting] = 0.0
        stepping = ~restarting
        self.t += stepping
        truncated = stepping & (self.t >= self.horizon)
        self._needs_reset = truncated
        self._last = outcome.astype(np.int64)
        info = {"regret_copeland": regret[3], "regret_borda": regret[4], **self._winners}
        if self.has_condorcet_winner:
            info.update(regret_average=regret[0], regret_strong=regret[1], regret_weak=regret[2])
        terminated = np.zeros(self.num_envs, dtype=bool)
        return self._last.copy(), outcome, terminated, truncated, info


def _check_utilities(values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64) if _is_numbers(values) else None
    if arr is None or arr.ndim != 1 or arr.size < 2 or not np.all(np.isfinite(arr)):
        raise ConfigError(f"utilities must be a list of >= 2 finite numbers, got {values!r}")
    return arr


def _is_numbers(value: Any) -> bool:
    try:
        np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return True


class MultiDuelingBanditVec(BanditVectorEnv):
    """Multi-dueling bandit: pick ``subset_size`` arms, observe the winner (or full ranking).

    Outcomes follow the Plackett-Luce model with weights exp(scale * u_k): the winner of a
    subset S is arm a with probability w_a / sum_{b in S} w_b, and the ranking is drawn by
    repeatedly picking a winner among the rest (here by the Gumbel-max trick). An arm may be
    picked more than once. The reward is the *position in the action* of the winner (0 ..
    m - 1), except with ``subset_size=2``: the action is then a duel and the reward its outcome,
    1.0 when the first arm won, as in ``DuelingBandit-v0``, so that a pairwise agent reads it
    alike in both envs. The next observation is, for every m, the winner's position
    (``feedback="winner"``) or the positions from best to worst (``feedback="ranking"``).
    Pairwise marginals are BTL, so arm argmax u is the Condorcet winner;
    ``info["regret_average"]`` (``_strong``, ``_weak``) is the mean (max, min) of
    Delta_k = P(best beats k) - 1/2 over the chosen arms (Sui et al. 2017's multi-dueling
    regret).

    :param utilities: the arms' utilities u; drawn from Uniform(0, 1) when omitted (once from
        ``prior_seed`` when given, else per run at reset).
    :param n_arms: number of arms K when ``utilities`` is omitted.
    :param subset_size: arms per action m, >= 2.
    :param feedback: "winner" or "ranking".
    :param scale: PL weights are exp(scale * u), > 0.
    :param prior_seed: seed for drawing one fixed set of utilities for every run.
    :param horizon: multi-duels per episode.
    """

    feedback_type = "duel"
    regret_metrics = CONDORCET_METRICS

    def __init__(
        self,
        num_envs: int = 1,
        utilities: list[float] | None = None,
        n_arms: int = 10,
        subset_size: int = 3,
        feedback: str = "winner",
        scale: float = 3.0,
        prior_seed: int | None = None,
        horizon: int = DEFAULT_HORIZON,
    ) -> None:
        if feedback not in ("winner", "ranking"):
            raise ConfigError(f"feedback must be 'winner' or 'ranking', got {feedback!r}")
        self.feedback = feedback
        self.scale = check_range("scale", scale, 0.0, low_open=True)
        fixed = None
        if utilities is not None:
            fixed = np.asarray(utilities, dtype=np.float64) if _is_numbers(utilities) else None
            if fixed is None or fixed.ndim != 1 or fixed.size < 2 or not np.all(np.isfinite(fixed)):
                raise ConfigError(
                    f"utilities must be a list of >= 2 finite numbers, got {utilities!r}"
                )
            n_arms = fixed.size
        self.subset_size = check_positive_int("subset_size", subset_size)
        if self.subset_size < 2:
            raise ConfigError(f"subset_size must be at least 2, got {subset_size}")
        m = self.subset_size
        self.single_observation_space = (
            spaces.Discrete(m) if feedback == "winner" else spaces.MultiDiscrete([m] * m)
        )
        super().__init__(num_envs, n_arms, horizon)
        self.single_action_space = spaces.MultiDiscrete([self.n_arms] * m)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        if fixed is None and prior_seed is not None:
            fixed = np.random.default_rng(prior_seed).random(self.n_arms)
        self._fixed = fixed
        self.has_condorcet_winner = True
        self.utilities = np.zeros((self.num_envs, self.n_arms))
        self._last = np.zeros((self.num_envs, m), dtype=np.int64)
        self._last[:] = np.arange(m)

    def _reset_runs(self, runs: np.ndarray) -> None:
        self.utilities = self.utilities.copy()
        if self._fixed is not None:
            self.utilities[runs] = self._fixed
        else:
            self.utilities[runs] = self.np_random.random((runs.size, self.n_arms))
        self._last = self._last.copy()
        self._last[runs] = np.arange(self.subset_size)
        u = self.scale * self.utilities
        best = u.argmax(axis=1)
        self._best = best
        self._delta = logistic(u[np.arange(self.num_envs), best][:, None] - u) - 0.5

    def _observation(self) -> np.ndarray:
        return self._last[:, 0].copy() if self.feedback == "winner" else self._last.copy()

    _check_actions = DuelingBanditVec._check_actions
    _bad_actions = DuelingBanditVec._bad_actions

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = self._check_actions(actions)
        if actions.min() < 0 or actions.max() >= self.n_arms:
            raise self._bad_actions(actions)
        restarting = self._restart_finished_runs()
        rows = self._rows[:, None]
        u = self.scale * self.utilities[rows, actions]
        noisy = u + self.np_random.gumbel(size=u.shape)
        ranking = np.argsort(-noisy, axis=1, kind="stable")
        reward = ranking[:, 0].astype(np.float64)  # the winner's position
        if self.subset_size == 2:
            reward = 1.0 - reward  # a duel's outcome: 1.0 when the first arm won
        delta = self._delta[rows, actions]
        regret = [delta.mean(axis=1), delta.max(axis=1), delta.min(axis=1)]
        if restarting.any():
            reward[restarting] = 0.0
            for r in regret:
                r[restarting] = 0.0
        stepping = ~restarting
        self.t += stepping
        truncated = stepping & (self.t >= self.horizon)
        self._needs_reset = truncated
        self._last = ranking
        info = {
            "regret_average": regret[0],
            "regret_strong": regret[1],
            "regret_weak": regret[2],
            "condorcet_winner": self._best.copy(),
        }
        terminated = np.zeros(self.num_envs, dtype=bool)
        return self._observation(), reward, terminated, truncated, info


class ContextualDuelingBanditVec(BanditVectorEnv):
    """Contextual dueling bandit under linear stochastic transitivity (CoLST; Bengs et al. 2022).

    Each step draws arm features x_{t,k} uniformly on the unit sphere in R^d; the observation is
    the (K, d) feature matrix. Arm k's utility is u_{t,k} = <theta, x_{t,k}>, and i beats j with
    probability F(u_{t,i} - u_{t,j}), F the logistic or the standard normal CDF (``link``).
    theta is drawn uniformly on the sphere of radius ``theta_norm`` per run (or once from
    ``prior_seed``). The arm of highest utility is each step's Condorcet winner; ``info``
    carries the preference-based average/strong/weak regret of ARCHITECTURE.md and, as
    ``regret_utility``, Bengs et al.'s average utility regret u* - (u_i + u_j) / 2.

    :param n_arms: number of arms K.
    :param dim: feature dimension d.
    :param link: "logistic" (BTL-type) or "probit" (Thurstone-type).
    :param theta: the true parameter (length d); drawn when omitted.
    :param theta_norm: norm of the drawn theta, > 0.
    :param prior_seed: seed for drawing one fixed theta for every run.
    :param horizon: duels per episode.
    """

    feedback_type = "duel"
    contextual = True
    regret_metrics = (*CONDORCET_METRICS, "utility")
    subset_size: ClassVar[int] = 2

    def __init__(
        self,
        num_envs: int = 1,
        n_arms: int = 10,
        dim: int = 5,
        link: str = "logistic",
        theta: list[float] | None = None,
        theta_norm: float = 3.0,
        prior_seed: int | None = None,
        horizon: int = DEFAULT_HORIZON,
    ) -> None:
        if link not in LINKS:
            raise ConfigError(f"link must be one of {', '.join(LINKS)}, got {link!r}")
        self.link = link
        self.dim = check_positive_int("dim", dim)
        n_arms = check_positive_int("n_arms", n_arms)
        self.single_observation_space = spaces.Box(
            -1.0, 1.0, shape=(n_arms, self.dim), dtype=np.float32
        )
        super().__init__(num_envs, n_arms, horizon)
        self.single_action_space = spaces.MultiDiscrete([self.n_arms] * 2)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.theta_norm = check_range("theta_norm", theta_norm, 0.0, low_open=True)
        self.has_condorcet_winner = True
        fixed = None
        if theta is not None:
            fixed = np.asarray(theta, dtype=np.float64) if _is_numbers(theta) else None
            if fixed is None or fixed.shape != (self.dim,) or not np.all(np.isfinite(fixed)):
                raise ConfigError(f"theta must be a list of {self.dim} finite numbers, got {theta}")
        elif prior_seed is not None:
            fixed = self._draw_theta(np.random.default_rng(prior_seed), 1)[0]
        self._fixed = fixed
        self.theta = np.zeros((self.num_envs, self.dim))
        self.contexts = np.zeros((self.num_envs, self.n_arms, self.dim), dtype=np.float32)

    def _draw_theta(self, rng: np.random.Generator, n: int) -> np.ndarray:
        th = rng.standard_normal((n, self.dim))
        return self.theta_norm * th / np.linalg.norm(th, axis=1, keepdims=True)

    def _reset_runs(self, runs: np.ndarray) -> None:
        self.theta = self.theta.copy()
        if self._fixed is not None:
            self.theta[runs] = self._fixed
        else:
            self.theta[runs] = self._draw_theta(self.np_random, runs.size)
        self._advance(runs)

    def _advance(self, runs: np.ndarray) -> None:
        self.contexts = self.contexts.copy()
        x = self.np_random.standard_normal((runs.size, self.n_arms, self.dim))
        self.contexts[runs] = x / np.linalg.norm(x, axis=2, keepdims=True)

    def _observation(self) -> np.ndarray:
        return self.contexts.copy()

    def _link(self, x: np.ndarray) -> np.ndarray:
        return logistic(x) if self.link == "logistic" else std_normal_cdf(x)

    _check_actions = DuelingBanditVec._check_actions
    _bad_actions = DuelingBanditVec._bad_actions

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = self._check_actions(actions)
        if actions.min() < 0 or actions.max() >= self.n_arms:
            raise self._bad_actions(actions)
        restarting = self._restart_finished_runs()
        u = np.einsum("nkd,nd->nk", self.contexts.astype(np.float64), self.theta)
        rows = self._rows
        ui = u[rows, actions[:, 0]]
        uj = u[rows, actions[:, 1]]
        best = u.argmax(axis=1)
        ub = u[rows, best]
        outcome = (self.np_random.random(self.num_envs) < self._link(ui - uj)).astype(np.float64)
        di = self._link(ub - ui) - 0.5
        dj = self._link(ub - uj) - 0.5
        regret = [0.5 * (di + dj), np.maximum(di, dj), np.minimum(di, dj), ub - 0.5 * (ui + uj)]
        stepping = ~restarting
        if restarting.any():
            outcome[restarting] = 0.0
            for r in regret:
                r[restarting] = 0.0
            self._advance(np.flatnonzero(stepping))
        else:
            self._advance(rows)
        self.t += stepping
        truncated = stepping & (self.t >= self.horizon)
        self._needs_reset = truncated
        info = {
            "regret_average": regret[0],
            "regret_strong": regret[1],
            "regret_weak": regret[2],
            "regret_utility": regret[3],
            "condorcet_winner": best,
        }
        terminated = np.zeros(self.num_envs, dtype=bool)
        return self._observation(), outcome, terminated, truncated, info


class DuelingBandit(SingleRunBandit):
    __doc__ = DuelingBanditVec.__doc__
    vector_class = DuelingBanditVec


class MultiDuelingBandit(SingleRunBandit):
    __doc__ = MultiDuelingBanditVec.__doc__
    vector_class = MultiDuelingBanditVec


class ContextualDuelingBandit(SingleRunBandit):
    __doc__ = ContextualDuelingBanditVec.__doc__
    vector_class = ContextualDuelingBanditVec
