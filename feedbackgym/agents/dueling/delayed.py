"""Delay-aware dueling agents: Q-PMD's queue reduction (Joulani, Gyorgy & Szepesvari 2013)
around RUCB and Double Thompson Sampling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from feedbackgym.agents.bandits.base import (
    AGENTS,
    register_agent,
    restore_rows,
    snapshot_rows,
)
from feedbackgym.agents.dueling.algorithms import DuelingAgent
from feedbackgym.errors import ConfigError


class _QueuedDuelingReduction(DuelingAgent):
    """Q-PMD (Joulani, Gyorgy & Szepesvari 2013, Algorithm 1) around a dueling agent.

    The base agent (built for undelayed duels) is run as if there were no delay. Arrived duel
    outcomes wait in one queue per unordered pair {i, j}; when the base agent asks for a duel
    whose queue holds an outcome, that outcome is fed to it at once (oriented as asked: "i won"
    if the queued winner was i) and it is asked again; the first pair with an empty queue is
    really dueled. For stochastic duels the base agent sees an undelayed i.i.d. stream of
    outcomes for each pair it asks for, so its guarantees carry over with the additive term of
    the reduction (about the pairs' regret times E[tau]). A queue only needs the count of wins
    of each side, ``queued[n, winner, loser]``: the outcome fed is drawn uniformly from the
    queued ones (a random order of an i.i.d. multiset: the fed stream stays i.i.d.), with one
    random stream per run. Runs that are not asking again keep their base state (snapshotted
    around the repeated ``predict``). As in ``qpmd``, every run is its own instance of the
    reduction: the base agent's clock and state advance only in the runs that are fed.
    """

    base_name: ClassVar[str] = ""

    def __init__(
        self, n_arms: int, n_runs: int = 1, seed: int | None = None, alpha: float = 0.51
    ) -> None:
        self.alpha = alpha
        self.base = AGENTS.get(self.base_name)(n_arms, n_runs=n_runs, seed=seed, alpha=alpha)
        super().__init__(n_arms, n_runs, seed)

    def reset(self) -> None:
        super().reset()
        # the outcome draws get their own streams, one per run (the base agent's come from
        # the same seed), so a run's draws do not depend on how often the others are fed
        self._run_rngs = [
            np.random.default_rng(None if self.seed is None else [self.seed, 1, run])
            for run in range(self.n_runs)
        ]
        self.base.reset()
        self.queued = np.zeros((self.n_runs, self.n_arms, self.n_arms))

    @property
    def wins(self) -> np.ndarray:
        """The win counts the base agent has been fed (W[n, i, j]: i beat j)."""
        return self.base.wins

    def predict(self, obs: Any = None) -> np.ndarray:
        choice = np.zeros((self.n_runs, 2), dtype=np.int64)
        asking = np.ones(self.n_runs, dtype=bool)
        while True:
            idle = self._rows[~asking]
            saved = snapshot_rows(self.base, idle) if idle.size else {}
            pairs = np.asarray(self.base.predict(obs), dtype=np.int64).reshape(self.n_runs, 2)
            if saved:
                restore_rows(self.base, idle, saved)
            i, j = pairs[:, 0], pairs[:, 1]
            first = self.queued[self._rows, i, j]
            second = np.where(i == j, 0.0, self.queued[self._rows, j, i])
            feed = asking & (first + second > 0)
            pull = asking & ~feed
            choice[pull] = pairs[pull]
            if not feed.any():
                return choice
            asking = feed
            rows = self._rows[feed]
            draw = np.zeros(self.n_runs)
            draw[rows] = [self._run_rngs[run].random() for run in rows.tolist()]
            draw *= np.maximum(first + second, 1.0)
            outcome = (draw < first).astype(np.float64)  # 1.0: the first arm asked won
            won = outcome[feed] == 1.0
            winner = np.where(won, i[feed], j[feed])
            loser = np.where(won, j[feed], i[feed])
            self.queued[rows, winner, loser] -= 1
            self.base.update_masked(pairs, outcome, obs, feed)

    def update(self, actions: np.ndarray, outcomes: np.ndarray, obs: Any = None) -> None:
        self._enqueue(np.asarray(actions), np.asarray(outcomes), np.ones(self.n_runs, bool))

    def update_arrived(
        self, arrived: dict[str, Any], extras: Callable[[Any, dict[str, Any]], dict[str, Any]]
    ) -> None:
        mask = arrived["mask"]
        for j in range(mask.shape[1]):
            if mask[:, j].any():
                self._enqueue(arrived["actions"][:, j], arrived["rewards"][:, j], mask[:, j])

    def update_masked(
        self, actions: np.ndarray, rewards: np.ndarray, obs: Any, mask: np.ndarray, **extras: Any
    ) -> None:
        self._enqueue(np.asarray(actions), np.asarray(rewards), mask)

    def _enqueue(self, actions: np.ndarray, outcomes: np.ndarray, mask: np.ndarray) -> None:
        actions = actions.astype(np.int64).reshape(self.n_runs, 2)[mask]
        outcomes = outcomes.astype(np.float64).reshape(self.n_runs)[mask]
        if not np.all((outcomes == 0.0) | (outcomes == 1.0)):
            raise ConfigError(
                f"agent {self.registry_name!r} needs duel outcomes 0 or 1 (1: the first arm won)"
            )
        won = outcomes == 1.0
        winner = np.where(won, actions[:, 0], actions[:, 1])
        loser = np.where(won, actions[:, 1], actions[:, 0])
        np.add.at(self.queued, (self._rows[mask], winner, loser), 1.0)
        self.t[mask] += 1


@register_agent("delayed-rucb")
class DelayedRUCB(_QueuedDuelingReduction):
    """RUCB (Zoghi, Whiteson, Munos & de Rijke 2014, "Relative Upper Confidence Bound for the
    K-Armed Dueling Bandit Problem") under delayed duels through the Q-PMD reduction of
    Joulani, Gyorgy & Szepesvari (2013); see :class:`_QueuedDuelingReduction`.

    :param alpha: RUCB's exploration constant, > 1/2 (0.51 as in the paper).
    """

    __doc__ = (__doc__ or "") + (_QueuedDuelingReduction.__doc__ or "")
    base_name = "rucb"
    needs_condorcet = True


@register_agent("delayed-dts")
class DelayedDTS(_QueuedDuelingReduction):
    """Double Thompson Sampling (Wu & Liu 2016, "Double Thompson Sampling for Dueling
    Bandits") under delayed duels through the Q-PMD reduction of Joulani, Gyorgy &
    Szepesvari (2013); see :class:`_QueuedDuelingReduction`. Targets the Copeland winner, so
    it runs without a Condorcet winner, as ``dts``.

    :param alpha: DTS's exploration constant of the confidence bounds, > 1/2.
    """

    __doc__ = (__doc__ or "") + (_QueuedDuelingReduction.__doc__ or "")
    base_name = "dts"
    needs_condorcet = False
