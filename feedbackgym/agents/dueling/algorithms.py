"""Dueling-bandit agents, vectorised across independent runs (numba kernels, one stream per run)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from feedbackgym.agents.bandits import kernels as bandit_kernels
from feedbackgym.agents.bandits.base import (
    AGENTS,
    BanditAgent,
    by_clock,
    default_metric,
    init_params,
    on_rows,
    register_agent,
)
from feedbackgym.agents.dueling import kernels
from feedbackgym.envs.dueling import std_normal_cdf
from feedbackgym.errors import ConfigError, check_positive_int, check_range
from feedbackgym.registry import check_kwargs


class DuelingAgent(BanditAgent):
    """Base class of the dueling-bandit agents: act with arm pairs, learn from who won.

    ``predict(obs)`` returns the pair (i, j) each run duels next, shape ``(n_runs, 2)`` (agents
    for multi-dueling envs return ``(n_runs, m)``); ``update(actions, outcomes, obs)`` takes
    the outcome of each run's duel, 1.0 when ``actions[:, 0]`` won (in every dueling env, a
    multi-dueling one with subsets of 2 included; with subsets of m > 2 arms: the winner's
    position in the action); ``learn(env, total_steps)`` is the interaction loop.
    Random choices come from one splitmix64 stream per run, drawn from ``seed``. The clock
    ``t`` in the confidence bounds is each run's own (the duels it has learned from).

    :param n_arms: number of arms K.
    :param n_runs: number of independent runs acted for together.
    :param seed: seed of the agent's random generator.
    """

    feedback_type = "duel"
    #: The algorithm assumes a Condorcet winner (it is refused on a matrix without one).
    needs_condorcet: ClassVar[bool] = True
    #: The agent can choose subsets of more than two arms (multi-dueling envs).
    multi_dueling: ClassVar[bool] = False

    def reset(self) -> None:
        super().reset()
        self._streams = self.rng.integers(0, 2**63, size=self.n_runs, dtype=np.uint64)
        self._out = np.zeros((self.n_runs, 2), dtype=np.int64)

    def learn(
        self,
        env: Any,
        total_steps: int,
        checkpoints: np.ndarray | None = None,
        seed: int | None = None,
        regret_key: str | None = None,
        callback: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """As :meth:`BanditAgent.learn`; ``regret_key`` defaults to the env's first regret metric
        that applies (``regret_average``, or ``regret_copeland`` without a Condorcet winner)."""
        if regret_key is None:
            metric = default_metric(env)
            regret_key = "regret" if metric == "regret" else f"regret_{metric}"
        return super().learn(env, total_steps, checkpoints, seed, regret_key, callback)

    def _record(self, actions: np.ndarray, outcomes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Check the feedback, add it to ``self.wins``; returns actions and outcomes as arrays."""
        actions = np.asarray(actions, dtype=np.int64).reshape(self.n_runs, 2)
        outcomes = np.asarray(outcomes, dtype=np.float64).reshape(self.n_runs)
        if not kernels.record_duels(self.wins, actions, outcomes):
            raise ConfigError(
                f"agent {self.registry_name!r} needs duel outcomes 0 or 1 (1: the first arm won)"
            )
        self.t += 1
        return actions, outcomes

    @classmethod
    def check_env(cls, env: Any) -> None:
        """Raise ConfigError when this agent cannot act in ``env`` (say why and what would do)."""
        base = getattr(env, "unwrapped", env)
        name = cls.registry_name or cls.__name__
        kind = getattr(base, "feedback_type", "reward")
        if kind != cls.feedback_type:
            fitting = [n for n in AGENTS.names() if AGENTS.get(n).feedback_type == kind]
            raise ConfigError(
                f"agent {name!r} learns from {cls.feedback_type} feedback but the env gives "
                f"{kind} feedback; agents for it: {', '.join(fitting) or 'none registered'}"
            )
        contextual = bool(getattr(base, "contextual", False))
        if cls.contextual and not contextual:
            raise ConfigError(
                f"agent {name!r} needs a contextual dueling env (observation = arm features); "
                "use it with e.g. feedbackgym/ContextualDuelingBandit-v0"
            )
        if contextual and not cls.contextual:
            raise ConfigError(
                f"agent {name!r} ignores contexts; on a contextual dueling env use "
                f"{', '.join(_dueling_agents(contextual=True)) or 'a contextual agent'}"
            )
        m = int(np.asarray(env.single_action_space.nvec).size)
        if m != 2 and not cls.multi_dueling:
            raise ConfigError(
                f"agent {name!r} duels pairs but the env asks for subsets of {m} arms; agents "
                f"for it: {', '.join(_dueling_agents(multi=True)) or 'none registered'}"
            )
        if cls.needs_condorcet and not getattr(base, "has_condorcet_winner", True):
            what = getattr(base, "_describe", lambda: "this env")()
            raise ConfigError(
                f"agent {name!r} assumes a Condorcet winner, which this preference matrix "
                f"({what}) does not have; agents that do not: "
                f"{', '.join(_dueling_agents(condorcet=False))}; metrics that apply: "
                "copeland, borda"
            )

    @classmethod
    def from_env(cls, env: Any, seed: int | None = None, **params: Any) -> BanditAgent:
        """Build the agent for a vector ``env``: K, runs, horizon, subset size, d read off it."""
        cls.check_env(env)
        check_kwargs(cls, params, f"agent {cls.registry_name or cls.__name__!r}")
        base = getattr(env, "unwrapped", env)
        kwargs: dict[str, Any] = {"n_runs": env.num_envs, "seed": seed, **params}
        accepted = init_params(cls)
        nvec = np.asarray(env.single_action_space.nvec)
        if cls.contextual:
            kwargs["dim"] = int(env.single_observation_space.shape[-1])
        if "horizon" in accepted and hasattr(base, "horizon"):
            kwargs.setdefault("horizon", int(base.horizon))
        if "subset_size" in accepted:
            kwargs.setdefault("subset_size", int(nvec.size))
        if "link" in accepted and hasattr(base, "link"):
            kwargs.setdefault("link", base.link)
        return cls(int(nvec[0]), **kwargs)


def _dueling_agents(
    contextual: bool = False, multi: bool | None = None, condorcet: bool | None = None
) -> list[str]:
    """Registered dueling agents with the given properties (for error messages)."""
    names = []
    for name in AGENTS.names():
        cls = AGENTS.get(name)
        if getattr(cls, "feedback_type", "") != "duel" or cls.contextual != contextual:
            continue
        if multi is not None and getattr(cls, "multi_dueling", False) != multi:
            continue
        if condorcet is not None and getattr(cls, "needs_condorcet", True) != condorcet:
            continue
        names.append(name)
    return names


class _WinsAgent(DuelingAgent):
    """Shared state: the win counts W[n, i, j] (i beat j) of every run."""

    def reset(self) -> None:
        super().reset()
        self.wins = np.zeros((self.n_runs, self.n_arms, self.n_arms))

    def update(self, actions: np.ndarray, outcomes: np.ndarray, obs: Any = None) -> None:
        self._record(actions, outcomes)


@register_agent("interleaved-filter")
class InterleavedFilter(DuelingAgent):
    """Interleaved Filter (IF1): a candidate duels the survivors round robin until one remains.

    Yue, Broder, Kleinberg & Joachims (2012), "The K-armed dueling bandits problem" (JCSS;
    COLT 2009), Algorithm IF1. A random candidate b duels every arm of W once per round; after
    each round the arms b beats confidently (P_hat - c > 1/2, c = sqrt(4 log(1/delta) / t),
    delta = 1 / (T K^2)) leave W, and an arm that confidently beats b (P_hat + c < 1/2) becomes
    the new candidate, with all estimates restarted. When W is empty the candidate is played
    against itself for the rest of the horizon. Each run is its own explore-then-exploit
    procedure; runs advance in lockstep, one duel per step. Deviations: when several arms beat
    the candidate confidently, the one with the lowest P_hat takes over (the paper says "any");
    the IF2 pruning step is not applied (IF1).

    :param horizon: the horizon T in delta (set from the env by ``from_env``).
    """

    #: A duel is credited to the current candidate, so a late duel against an earlier one
    #: would be miscounted: refused under ``--delay``.
    delay_ok = False

    def __init__(
        self, n_arms: int, n_runs: int = 1, seed: int | None = None, horizon: int = 1000
    ) -> None:
        self.horizon = check_positive_int("horizon", horizon)
        super().__init__(n_arms, n_runs, seed)

    def reset(self) -> None:
        super().reset()
        k = self.n_arms
        self.candidate = self.rng.integers(0, k, self.n_runs)
        self.active = np.ones((self.n_runs, k), dtype=bool)
        self.active[self._rows, self.candidate] = False
        self.candidate_wins = np.zeros((self.n_runs, k))
        self.rounds = np.zeros(self.n_runs)
        self._pos = self.active.argmax(axis=1).astype(np.int64)
        self._log_inv_delta = math.log(self.horizon * k * k)

    def predict(self, obs: Any = None) -> np.ndarray:
        kernels.if_choose(self.candidate, self.active, self._pos, self._out)
        return self._out.copy()

    def update(self, actions: np.ndarray, outcomes: np.ndarray, obs: Any = None) -> None:
        actions, outcomes = _checked(self, actions, outcomes)
        kernels.if_update(
            self.candidate,
            self.active,
            self.candidate_wins,
            self.rounds,
            self._pos,
            actions,
            outcomes,
            self._log_inv_delta,
        )
        self.t += 1


@register_agent("beat-the-mean")
class BeatTheMean(DuelingAgent):
    """Beat-the-Mean: drop the arm that is confidently worst against the mean of the rest.

    Yue & Joachims (2011), "Beat the Mean Bandit" (ICML), Algorithm 1 (online BTM). Each step
    the least-compared arm b of the working set W duels a uniformly drawn member of W (b
    included, as in the paper); P_hat_b = w_b / n_b estimates P(b beats the mean of W). With
    n* = min n_b and c* = 3 gamma^2 sqrt(log(1/delta) / n*), delta = 1 / (2 T K), the arm of
    least P_hat leaves W once min P_hat + c* <= max P_hat - c*, and every comparison against it
    is forgotten. When one arm is left it is played against itself. Each run is its own
    explore-then-exploit procedure, advanced one duel per step. Deviation: ties for the
    least-compared arm are broken at random (the paper leaves them open).

    :param horizon: the horizon T in delta (set from the env by ``from_env``).
    :param gamma: the relaxed stochastic transitivity constant gamma >= 1.
    """

    def __init__(
        self,
        n_arms: int,
        n_runs: int = 1,
        seed: int | None = None,
        horizon: int = 1000,
        gamma: float = 1.0,
    ) -> None:
        self.horizon = check_positive_int("horizon", horizon)
        self.gamma = check_range("gamma", gamma, 1.0)
        super().__init__(n_arms, n_runs, seed)

    def reset(self) -> None:
        super().reset()
        n, k = self.n_runs, self.n_arms
        self.active = np.ones((n, k), dtype=bool)
        self.pair_wins = np.zeros((n, k, k))
        self.pair_counts = np.zeros((n, k, k))
        self.n_b = np.zeros((n, k))
        self.w_b = np.zeros((n, k))
        self.size = np.full(n, k, dtype=np.int64)
        self._log_inv_delta = math.log(2.0 * self.horizon * k)

    def predict(self, obs: Any = None) -> np.ndarray:
        kernels.btm_choose(self.active, self.n_b, self.size, self._streams, self._out)
        return self._out.copy()

    def update(self, actions: np.ndarray, outcomes: np.ndarray, obs: Any = None) -> None:
        actions, outcomes = _checked(self, actions, outcomes)
        kernels.btm_update(
            self.active,
            self.pair_wins,
            self.pair_counts,
            self.n_b,
            self.w_b,
            self.size,
            actions,
            outcomes,
            self._log_inv_delta,
            self.gamma,
        )
        self.t += 1


@register_agent("rucb")
class RUCB(_WinsAgent):
    """Relative Upper Confidence Bound: an optimistic champion against its strongest challenger.

    Zoghi, Whiteson, Munos & de Rijke (2014), "Relative Upper Confidence Bound for the K-Armed
    Dueling Bandit Problem" (ICML), Algorithm 1, followed line by line: U = W / N +
    sqrt(alpha log t / N) (x/0 := 1), candidates C = {c : u_cj >= 1/2 for all j}, the
    hypothesised best arm B kept while in C and drawn with probability 1/2, challenger
    d = argmax_j u_jc with ties broken at random and never towards c (d = c only when c's
    u_cc = 1/2 beats every u_jc). No deviation; alpha defaults to 0.51 as in the paper's
    experiments (and duelpy).

    :param alpha: exploration constant, > 1/2.
    """

    def __init__(
        self, n_arms: int, n_runs: int = 1, seed: int | None = None, alpha: float = 0.51
    ) -> None:
        self.alpha = check_range("alpha", alpha, 0.5, low_open=True)
        super().__init__(n_arms, n_runs, seed)

    def reset(self) -> None:
        super().reset()
        self.hypothesis = np.full(self.n_runs, -1, dtype=np.int64)
        self._scratch = np.zeros((self.n_runs, self.n_arms), dtype=np.int64)

    def predict(self, obs: Any = None) -> np.ndarray:
        state = (self.wins, self.hypothesis, self._streams, self._scratch, self._out)
        by_clock(self.t, self._choose, *state)
        return self._out.copy()

    def _choose(self, t: int, *state: np.ndarray) -> None:
        wins, hypothesis, streams, scratch, out = state
        kernels.rucb_choose(wins, hypothesis, self.alpha, t + 1, streams, scratch, out)


@register_agent("rmed1")
class RMED1(_WinsAgent):
    """RMED1: duel the likely Condorcet winners, found by relative minimum empirical divergence.

    Komiyama, Honda, Kashima & Nakagawa (2015), "Regret Lower Bound and Optimal Algorithm in
    Dueling Bandit Problem" (COLT), Algorithms 1 and 2. After every pair is compared once, each
    loop visits the arms of L_C in a fixed (per-run random) order; arm l duels i* (the arm of
    least empirical divergence I_i = sum_{j: mu_ij <= 1/2} N_ij KL(mu_ij, 1/2)) when l's
    opponent set is empty or holds i*, else the arm that beats l most; an arm j no longer in
    L_R joins the next loop when I_j - I_{i*} <= log t + f(K), f(K) = 0.3 K^1.01 (the paper's
    experiments). No deviation; I is refreshed only for the two arms of each duel, the only
    ones whose divergence changes.

    :param divergence_tolerance: f(K); 0.3 K^1.01 when None.
    """

    def __init__(
        self,
        n_arms: int,
        n_runs: int = 1,
        seed: int | None = None,
        divergence_tolerance: float | None = None,
    ) -> None:
        self.divergence_tolerance = (
            0.3 * n_arms**1.01
            if divergence_tolerance is None
            else check_range("divergence_tolerance", divergence_tolerance, 0.0)
        )
        super().__init__(n_arms, n_runs, seed)

    def reset(self) -> None:
        super().reset()
        n, k = self.n_runs, self.n_arms
        self.divergence = np.zeros((n, k))
        self._order = np.argsort(self.rng.random((n, k)), axis=1).astype(np.int64)
        self.in_current = np.ones((n, k), dtype=bool)
        self.in_remaining = np.ones((n, k), dtype=bool)
        self.in_next = np.zeros((n, k), dtype=bool)
        self._pos = np.zeros(n, dtype=np.int64)
        first, second = np.triu_indices(k, 1)
        self._initial = np.stack([first, second], axis=1).astype(np.int64)
        self._pulled = np.zeros((n, 2), dtype=np.int64)  # the last duel predicted

    def predict(self, obs: Any = None) -> np.ndarray:
        initial = self.t < len(self._initial)  # initial phase: every pair once
        looping = np.flatnonzero(~initial)
        state = (self.wins, self.divergence, self._order, self.in_current, self._pos)
        if looping.size == self.n_runs:
            kernels.rmed_choose(*state, self._streams, self._out)
        elif looping.size:  # under delays: only the runs past their initial phase
            on_rows(looping, kernels.rmed_choose, *state, self._streams, self._out)
        pulled = self._out.copy()
        pulled[initial] = self._initial[self.t[initial]]
        self._pulled = pulled.copy()
        return pulled

    def update(self, actions: np.ndarray, outcomes: np.ndarray, obs: Any = None) -> None:
        actions, _ = self._record(actions, outcomes)
        self._advance(actions)

    def _advance(self, actions: np.ndarray) -> None:
        """The loop bookkeeping after the duels ``actions``, each run at its own clock
        (``t``, just advanced: it was in its initial phase when ``t - 1`` was)."""
        state = (self.wins, self.divergence, self._order, self.in_current, self.in_remaining)
        by_clock(self.t, self._advance_at, *state, self.in_next, self._pos, actions.copy())

    def _advance_at(self, t: int, *state: np.ndarray) -> None:
        initial = t - 1 < len(self._initial)
        kernels.rmed_update(*state, math.log(t), self.divergence_tolerance, initial)

    def update_arrived(self, arrived: dict[str, Any], extras: Any = None) -> None:
        """Delayed feedback: learn every duel that arrived (W and I), then run the loop
        bookkeeping once for the duel pulled this step, as :meth:`update` does for it.

        ``t`` counts steps (pulls), not arrivals, so the initial phase is K(K-1)/2 pulls and
        each pull advances the loop over L_C exactly once, whatever arrives: the loop always
        ends with every arm of L_C out of L_R, so L_N (hence the next L_C) is never empty.
        """
        mask = np.asarray(arrived["mask"], dtype=np.bool_)
        if mask.shape[1] and not kernels.rmed_record_arrived(
            self.wins,
            self.divergence,
            np.asarray(arrived["actions"], np.int64).reshape(self.n_runs, -1, 2),
            np.asarray(arrived["rewards"], np.float64),
            mask,
        ):
            raise ConfigError(
                f"agent {self.registry_name!r} needs duel outcomes 0 or 1 (1: the first arm won)"
            )
        self.t += 1
        self._advance(self._pulled)


@register_agent("dts")
class DoubleThompsonSampling(_WinsAgent):
    """Double Thompson Sampling: both arms of a duel drawn by Thompson sampling.

    Wu & Liu (2016), "Double Thompson Sampling for Dueling Bandits" (NeurIPS), Algorithm 1.
    The first arm maximises the Copeland score of a sampled matrix theta_ij ~ Beta(W_ij + 1,
    W_ji + 1) among the arms of largest upper Copeland score (u_ij > 1/2, RUCB bounds); the
    second maximises a fresh sample theta_{i,first} among arms with l_{i,first} <= 1/2, the
    first arm included with theta = 1/2. Targets Copeland winners, so it runs without a
    Condorcet winner. Deviation (none in distribution): phase 1 uses theta only through the
    events theta_ij > 1/2, so each is drawn as a uniform against P(theta_ij > 1/2) (a Beta
    tail, cached per pair), only in the rows of the candidate set (the other rows cannot
    change the choice) and not at all when that set has a single arm. alpha defaults to 0.51
    (the paper's experiments).

    :param alpha: exploration constant of the confidence bounds, > 1/2.
    """

    needs_condorcet = False

    def __init__(
        self, n_arms: int, n_runs: int = 1, seed: int | None = None, alpha: float = 0.51
    ) -> None:
        self.alpha = check_range("alpha", alpha, 0.5, low_open=True)
        super().__init__(n_arms, n_runs, seed)

    def reset(self) -> None:
        super().reset()
        n, k = self.n_runs, self.n_arms
        self._above_half = np.full((n, k, k), 0.5)  # P(theta_ij > 1/2)
        self._wins_half = np.zeros((n, k, k), dtype=np.int8)
        self._scratch = np.zeros((n, k), dtype=np.int64)

    def predict(self, obs: Any = None) -> np.ndarray:
        state = (self.wins, self._above_half, self._streams, self._wins_half, self._scratch)
        by_clock(self.t, self._choose, *state, self._out)
        return self._out.copy()

    def _choose(self, t: int, *state: np.ndarray) -> None:
        wins, above_half, streams, wins_half, scratch, out = state
        kernels.dts_choose(wins, above_half, self.alpha, t + 1, streams, wins_half, scratch, out)

    def update(self, actions: np.ndarray, outcomes: np.ndarray, obs: Any = None) -> None:
        actions, _ = self._record(actions, outcomes)
        kernels.dts_record(self.wins, self._above_half, actions)


@register_agent("ccb")
class CopelandConfidenceBound(_WinsAgent):
    """Copeland Confidence Bound: regret against the Copeland winners, no Condorcet assumption.

    Zoghi, Karnin, Whiteson & de Rijke (2015), "Copeland Dueling Bandits" (NeurIPS), Algorithm
    1 (CCB), lines 3-10 each round: RUCB-style bounds give optimistic/pessimistic Copeland
    scores; the hypothesised Copeland winners B_t, their hypothesised number of losses L_C and,
    for each arm i, a set B^i_t of arms hypothesised to beat it are reset when disproven,
    pruned and grown as in lines 5A-5C; w.p. 1/4 an unresolved pair (i, j in B^i_t) is dueled,
    else c is drawn from the optimistic Copeland winners (w.p. 2/3 restricted to B_t) and d
    maximises u_dc over arms with l_dc <= 1/2 in B^c_t (w.p. 1/2) or in all arms (where c
    itself, u_cc = 1/2, is chosen when no other arm reaches 1/2). Deviations (readings of points
    the paper leaves open): in line 5B, B^i_t is refilled only for the arms removed from B_t;
    in line 9, an empty B^c_t (as for every hypothesised winner) means all arms.

    :param alpha: exploration constant, > 1/2 (0.501, as duelpy).
    """

    needs_condorcet = False

    def __init__(
        self, n_arms: int, n_runs: int = 1, seed: int | None = None, alpha: float = 0.501
    ) -> None:
        self.alpha = check_range("alpha", alpha, 0.5, low_open=True)
        super().__init__(n_arms, n_runs, seed)

    def reset(self) -> None:
        super().reset()
        n, k = self.n_runs, self.n_arms
        self.hypothesis = np.ones((n, k), dtype=bool)  # B_t
        self.opponents = np.zeros((n, k, k), dtype=bool)  # B^i_t
        self._opponent_counts = np.zeros((n, k), dtype=np.int64)
        self.max_losses = np.full(n, k, dtype=np.int64)  # L_C
        self._scratch = np.zeros((n, 2, k), dtype=np.int64)

    def predict(self, obs: Any = None) -> np.ndarray:
        state = (self.wins, self.hypothesis, self.opponents, self._opponent_counts, self.max_losses)
        by_clock(self.t, self._choose, *state, self._streams, self._scratch, self._out)
        return self._out.copy()

    def _choose(self, t: int, *state: np.ndarray) -> None:
        wins, hypothesis, opponents, opponent_counts, max_losses, streams, scratch, out = state
        kernels.ccb_choose(
            wins,
            hypothesis,
            opponents,
            opponent_counts,
            max_losses,
            self.alpha,
            t + 1,
            streams,
            scratch,
            out,
        )


@register_agent("merge-rucb")
class MergeRUCB(_WinsAgent):
    """MergeRUCB: RUCB inside small batches of arms, merging batches as losers are pruned.

    Zoghi, Whiteson & de Rijke (2015), "MergeRUCB: A Method for Large-Scale Online Ranker
    Evaluation" (WSDM). The arms are split at random into ceil(K / P) batches; batches are
    visited round robin, each pruned of arms a_i with u_ij < 1/2 against a batch mate (bounds
    with log(t + C), C = ((4 alpha - 1) K^2 / ((2 alpha - 1) delta))^(1 / (2 alpha - 1))), and
    a uniformly drawn c duels d = argmax_j u_jc in its batch. Once at most K / 2^s arms are left
    (stage s, from 1), batches are merged small-with-large towards P arms each. When one arm is
    left it is played against itself. Deviations: a step that visits a batch of one arm moves
    on to the next batch instead of spending the step without a duel, batches that all hold a
    single arm are merged at once, and pruning never empties a batch.

    :param partition_size: batch size P.
    :param alpha: exploration constant, > 1/2.
    :param failure_probability: delta in C.
    """

    def __init__(
        self,
        n_arms: int,
        n_runs: int = 1,
        seed: int | None = None,
        partition_size: int = 4,
        alpha: float = 1.01,
        failure_probability: float = 0.01,
    ) -> None:
        self.partition_size = check_positive_int("partition_size", partition_size)
        if self.partition_size < 2:
            raise ConfigError(f"partition_size must be at least 2, got {partition_size}")
        self.alpha = check_range("alpha", alpha, 0.5, low_open=True)
        self.failure_probability = check_range(
            "failure_probability", failure_probability, 0.0, 1.0, low_open=True, high_open=True
        )
        a = self.alpha
        self.offset = math.ceil(
            ((4 * a - 1) * n_arms**2 / ((2 * a - 1) * self.failure_probability))
            ** (1.0 / (2 * a - 1))
        )
        super().__init__(n_arms, n_runs, seed)

    def reset(self) -> None:
        super().reset()
        n, k = self.n_runs, self.n_arms
        n_batches = math.ceil(k / self.partition_size)
        perm = np.argsort(self.rng.random((n, k)), axis=1)
        self.batch = np.empty((n, k), dtype=np.int64)
        # array_split sizes: the first K mod nb batches get one arm more.
        labels = np.concatenate([np.repeat(b, s) for b, s in enumerate(_split_sizes(k, n_batches))])
        self.batch[np.arange(n)[:, None], perm] = labels
        self.n_batches = np.full(n, n_batches, dtype=np.int64)
        self.stage = np.ones(n, dtype=np.int64)
        self._turn = np.zeros(n, dtype=np.int64)
        self._scratch = np.zeros((n, 5, k), dtype=np.int64)

    def predict(self, obs: Any = None) -> np.ndarray:
        state = (self.wins, self.batch, self.n_batches, self._turn)
        by_clock(self.t, self._choose, *state, self._streams, self._scratch, self._out)
        return self._out.copy()

    def _choose(self, t: int, *state: np.ndarray) -> None:
        wins, batch, n_batches, turn, streams, scratch, out = state
        kernels.merge_rucb_choose(
            wins,
            batch,
            n_batches,
            turn,
            self.alpha,
            math.log(t + 1 + self.offset),
            self.partition_size,
            streams,
            scratch,
            out,
        )

    def update(self, actions: np.ndarray, outcomes: np.ndarray, obs: Any = None) -> None:
        self._record(actions, outcomes)
        kernels.merge_rucb_update(
            self.batch,
            self.n_batches,
            self.stage,
            self._turn,
            self.partition_size,
            self._streams,
            self._scratch,
        )


def _split_sizes(k: int, parts: int) -> list[int]:
    return [k // parts + (1 if b < k % parts else 0) for b in range(parts)]


@register_agent("self-sparring")
class SelfSparring(DuelingAgent):
    """Independent Self-Sparring: every arm of the subset drawn by its own Thompson sample.

    Sui, Zhuang, Burdick & Yue (2017), "Multi-dueling Bandits with Dependent Arms" (UAI),
    Algorithm 1 (independent Beta priors). Each of the m slots draws theta_k ~ Beta(S_k + 1,
    F_k + 1) for every arm and plays the argmax (an arm may fill several slots); a pairwise
    outcome r credits S_winner += eta and F_loser += eta. On a multi-dueling env that shows the
    full ranking (``feedback="ranking"``) every one of the m (m - 1) / 2 pairs it reveals is
    credited; with winner-only feedback, the winner against each other pick (the losers'
    mutual outcomes are unobserved). Deviation: when an arm fills several slots, its duels
    against itself are credited both ways (S and F grow alike) instead of being dropped.
    It needs no Condorcet winner (on matrices without one it favours high Borda scores). The
    Beta draws use the numba kernel of ``thompson``.

    :param subset_size: arms per action m (set from the env by ``from_env``).
    :param eta: learning rate eta > 0.
    """

    needs_condorcet = False
    multi_dueling = True

    def __init__(
        self,
        n_arms: int,
        n_runs: int = 1,
        seed: int | None = None,
        subset_size: int = 2,
        eta: float = 1.0,
    ) -> None:
        self.subset_size = check_positive_int("subset_size", subset_size)
        if self.subset_size < 2:
            raise ConfigError(f"subset_size must be at least 2, got {subset_size}")
        self.eta = check_range("eta", eta, 0.0, low_open=True)
        super().__init__(n_arms, n_runs, seed)

    def reset(self) -> None:
        super().reset()
        n, k = self.n_runs, self.n_arms
        self.successes = np.zeros((n, k))
        self.failures = np.zeros((n, k))
        self._alpha = bandit_kernels.gamma_constants(np.ones((n, k)))
        self._beta = self._alpha.copy()
        self._out = np.zeros((n, self.subset_size), dtype=np.int64)
        self._slot = np.zeros(n, dtype=np.int64)

    def predict(self, obs: Any = None) -> np.ndarray:
        for s in range(self.subset_size):
            bandit_kernels.beta_thompson_choose(self._alpha, self._beta, self._streams, self._slot)
            self._out[:, s] = self._slot
        return self._out.copy()

    def update(
        self, actions: np.ndarray, outcomes: np.ndarray, obs: Any = None, next_obs: Any = None
    ) -> None:
        m = self.subset_size
        actions = np.asarray(actions, dtype=np.int64).reshape(self.n_runs, m)
        if next_obs is not None and np.ndim(next_obs) == 2 and m > 2:
            ranking = np.asarray(next_obs, dtype=np.int64).reshape(self.n_runs, m)
            if not kernels.sparring_ranking_update(
                self.successes, self.failures, self._alpha, self._beta, actions, ranking, self.eta
            ):
                raise ConfigError("self-sparring needs rankings that order the subset's slots")
            self.t += 1
            return
        outcomes = np.asarray(outcomes, dtype=np.float64).reshape(self.n_runs)
        if not kernels.sparring_update(
            self.successes,
            self.failures,
            self._alpha,
            self._beta,
            actions,
            outcomes,
            self.eta,
            m == 2,
        ):
            raise ConfigError(
                "self-sparring needs duel outcomes 0/1 (pairs) or the winner's position 0..m-1"
            )
        self.t += 1


@register_agent("colstim")
class CoLSTIM(DuelingAgent):
    """CoLSTIM: contextual dueling by perturbed utility estimates under a CoLST model.

    Bengs, Saha & Hüllermeier (2022), "Stochastic Contextual Dueling Bandits under Linear
    Stochastic Transitivity Models" (ICML), Algorithm 1. After ``warmup`` uniformly random
    duels, the first arm maximises the perturbed utility x_i^T theta_hat + eps_i ||x_i||_{M^-1}
    with eps_i drawn from the link's noise (Gumbel for logistic, N(0, 1/2) for probit) and
    clipped to [-threshold, threshold]; the second maximises x_j^T theta_hat +
    c1 ||x_j - x_i||_{M^-1}, M = lambda I + sum of z z^T over past differences z = x_i - x_j.
    Deviation: theta_hat is not the full maximum-likelihood estimate refitted each round but
    its online version, one Fisher-scoring (Newton) step per duel with the running Fisher
    information lambda I + sum w_s z_s z_s^T (the estimate coincides with the MLE's to first
    order); the default ``threshold`` sqrt(d log T) and ``c1`` = 1 are our choices.

    :param dim: feature dimension d (set from the env by ``from_env``).
    :param link: "logistic" or "probit" (set from the env by ``from_env``).
    :param horizon: T, used in the default threshold (set from the env).
    :param warmup: number of initial uniformly random duels (played, whatever feedback has
        come back); d when None.
    :param confidence_width: c1, scale of the second arm's exploration bonus, >= 0.
    :param threshold: clipping level of the perturbations; sqrt(d log T) when None.
    :param regularization: lambda > 0.
    """

    contextual = True
    needs_condorcet = False

    def __init__(
        self,
        n_arms: int,
        n_runs: int = 1,
        seed: int | None = None,
        dim: int | None = None,
        link: str = "logistic",
        horizon: int = 1000,
        warmup: int | None = None,
        confidence_width: float = 1.0,
        threshold: float | None = None,
        regularization: float = 1.0,
    ) -> None:
        if dim is None:
            raise ConfigError("colstim needs dim, the feature dimension")
        if link not in ("logistic", "probit"):
            raise ConfigError(f"link must be logistic or probit, got {link!r}")
        self.link = link
        self.horizon = check_positive_int("horizon", horizon)
        self.warmup = int(dim) if warmup is None else int(check_range("warmup", warmup, 0.0))
        self.confidence_width = check_range("confidence_width", confidence_width, 0.0)
        self.threshold = (
            math.sqrt(int(dim) * math.log(max(self.horizon, 3)))
            if threshold is None
            else check_range("threshold", threshold, 0.0, low_open=True)
        )
        self.regularization = check_range("regularization", regularization, 0.0, low_open=True)
        super().__init__(n_arms, n_runs, seed, dim=int(dim))

    def reset(self) -> None:
        super().reset()
        n, d = self.n_runs, self.dim
        self.theta_hat = np.zeros((n, d))
        self.design_inv = np.tile(np.eye(d) / self.regularization, (n, 1, 1))
        self.fisher_inv = self.design_inv.copy()
        self.rounds = np.zeros(n, dtype=np.int64)  # duels played, per run

    def _noise(self, shape: tuple[int, ...]) -> np.ndarray:
        if self.link == "logistic":
            eps = self.rng.gumbel(size=shape)
        else:
            eps = self.rng.normal(0.0, math.sqrt(0.5), size=shape)
        return np.clip(eps, -self.threshold, self.threshold)

    def predict(self, obs: Any = None) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float64)
        n, k, _ = x.shape
        # The warm-up counts duels played (under delays, not the outcomes back): every run
        # plays one per call, so all runs leave it together and draw alike.
        warming = self.rounds < self.warmup
        self.rounds += 1
        if warming.all():
            return self.rng.integers(0, k, size=(n, 2))
        util = np.einsum("nkd,nd->nk", x, self.theta_hat)
        width = _norms(x, self.design_inv)
        first = (util + self._noise((n, k)) * width).argmax(axis=1)
        spread = _norms(x - x[self._rows, first][:, None, :], self.design_inv)
        second = (util + self.confidence_width * spread).argmax(axis=1)
        return np.stack([first, second], axis=1)

    def update(self, actions: np.ndarray, outcomes: np.ndarray, obs: Any = None) -> None:
        actions = np.asarray(actions, dtype=np.int64).reshape(self.n_runs, 2)
        y = np.asarray(outcomes, dtype=np.float64).reshape(self.n_runs)
        if np.any((y != 0.0) & (y != 1.0)):
            raise ConfigError("colstim needs duel outcomes 0 or 1 (1: the first arm won)")
        x = np.asarray(obs, dtype=np.float64)
        z = x[self._rows, actions[:, 0]] - x[self._rows, actions[:, 1]]
        s = np.einsum("nd,nd->n", z, self.theta_hat)
        if self.link == "logistic":
            p = 0.5 * (1.0 + np.tanh(0.5 * s))
            slope = p * (1.0 - p)
        else:
            p = std_normal_cdf(s)
            slope = np.exp(-0.5 * s * s) / math.sqrt(2.0 * math.pi)
        p = p.clip(1e-12, 1.0 - 1e-12)
        weight = slope * slope / (p * (1.0 - p))  # Fisher information of the pair
        score = (y - p) * slope / (p * (1.0 - p))
        _sherman_morrison(self.fisher_inv, z, weight)
        self.theta_hat += np.einsum("nij,nj->ni", self.fisher_inv, z) * score[:, None]
        _sherman_morrison(self.design_inv, z, np.ones(self.n_runs))
        self.t += 1


def _norms(x: np.ndarray, inv: np.ndarray) -> np.ndarray:
    """||x_k||_{inv} for every run n and arm k: sqrt(x_k^T inv_n x_k), shape (n, K)."""
    return np.sqrt(np.einsum("nkd,nkd->nk", np.matmul(x, inv), x).clip(min=0.0))


def _sherman_morrison(inv: np.ndarray, z: np.ndarray, weight: np.ndarray) -> None:
    """In place: inv <- (inv^-1 + weight z z^T)^-1, for every run."""
    iz = np.einsum("nij,nj->ni", inv, z)
    denom = 1.0 + weight * np.einsum("ni,ni->n", z, iz)
    inv -= (weight / denom)[:, None, None] * np.einsum("ni,nj->nij", iz, iz)


def _checked(
    agent: DuelingAgent, actions: np.ndarray, outcomes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    actions = np.asarray(actions, dtype=np.int64).reshape(agent.n_runs, 2)
    outcomes = np.asarray(outcomes, dtype=np.float64).reshape(agent.n_runs)
    if np.any((outcomes != 0.0) & (outcomes != 1.0)):
        raise ConfigError(
            f"agent {agent.registry_name!r} needs duel outcomes 0 or 1 (1: the first arm won)"
        )
    return actions, outcomes
