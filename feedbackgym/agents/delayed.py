"""Delay-aware bandit agents: they learn from feedback that arrives late (a delayed env).

Any agent runs in a :class:`~feedbackgym.feedback.delayed_bandit.DelayedFeedbackEnv` by updating
when its feedback arrives (:meth:`BanditAgent.update_arrived`); the agents here are built for it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from feedbackgym.agents.base import AGENTS, BanditAgent, _init_params, register_agent
from feedbackgym.errors import ConfigError, check_range


@register_agent("delayed-ucb")
class DelayedUCB(BanditAgent):
    """UCB1 on the rewards received so far, with the round count in the exploration term.

    The naive-but-analysed way to run UCB under delays (Joulani, Gyorgy & Szepesvari 2013,
    "Online Learning under Delayed Feedback", Section 3: its regret exceeds the undelayed one
    by ``O(sum_i Delta_i E[tau])``): index ``mean_i + sqrt(alpha log t / n_i)``, where ``n_i``
    counts the rewards of arm i received, ``t`` the rounds played. Arms with no reward back
    yet come first, the least pulled of them first (round robin while the first feedback is
    on its way, rather than pulling arm 0 for the whole first delay).

    :param alpha: exploration constant, > 0 (2 as in UCB1).
    """

    def __init__(
        self, n_arms: int, n_runs: int = 1, seed: int | None = None, alpha: float = 2.0
    ) -> None:
        self.alpha = check_range("alpha", alpha, 0.0, low_open=True)
        super().__init__(n_arms, n_runs, seed)

    def reset(self) -> None:
        super().reset()
        self.counts = np.zeros((self.n_runs, self.n_arms))
        self.sums = np.zeros((self.n_runs, self.n_arms))
        self.pulls = np.zeros((self.n_runs, self.n_arms))
        self.rounds = 0

    def predict(self, obs: Any = None) -> np.ndarray:
        self.rounds += 1
        with np.errstate(divide="ignore", invalid="ignore"):
            index = self.sums / self.counts
            index += np.sqrt(self.alpha * math.log(self.rounds) / self.counts)
        waiting = self.counts == 0
        index[waiting] = np.inf
        # among arms with no feedback yet: the least pulled (ties: the lowest index)
        first = np.where(waiting, -self.pulls, -np.inf).argmax(axis=1)
        actions = np.where(waiting.any(axis=1), first, index.argmax(axis=1))
        self.pulls[self._rows, actions] += 1
        return actions

    def update(self, actions: np.ndarray, rewards: np.ndarray, obs: Any = None) -> None:
        self.update_masked(actions, rewards, obs, np.ones(self.n_runs, dtype=bool))

    def update_masked(
        self, actions: np.ndarray, rewards: np.ndarray, obs: Any, mask: np.ndarray, **extras: Any
    ) -> None:
        rows = self._rows[mask]
        arms = np.asarray(actions)[mask]
        self.counts[rows, arms] += 1
        self.sums[rows, arms] += np.asarray(rewards, dtype=np.float64)[mask]
        self.t += 1


@register_agent("qpmd")
class QueuedDelayReduction(BanditAgent):
    """Q-PMD, the black-box reduction of Joulani, Gyorgy & Szepesvari (2013), Algorithm 1.

    "Online Learning under Delayed Feedback" (ICML 2013): a ``base`` agent built for undelayed
    feedback is run as if there were no delay. Arrived rewards wait in one queue per arm; when
    the base agent asks for an arm whose queue holds a reward, that reward is fed to it at once
    (no pull), and it is asked again; the first arm with an empty queue is really pulled. For
    stochastic rewards the base agent sees an undelayed i.i.d. stream, and the regret is that of
    the base agent plus ``sum_i Delta_i E[G*_i]`` (G*: the most rewards missing at once, about
    E[tau]). Deviations: a queue is consumed last-in first-out (rewards of an arm are i.i.d.,
    so order does not matter); the base agent's step counter ``t`` is shared by the runs, and
    counts the runs' updates together.

    :param base: registry name of a non-contextual reward agent (ucb1, kl-ucb, thompson, ...).
    :param base_kwargs: its keyword arguments.
    :param reward_family: filled in from the env by ``from_env`` (passed on to the base agent).
    """

    def __init__(
        self,
        n_arms: int,
        n_runs: int = 1,
        seed: int | None = None,
        base: str = "ucb1",
        base_kwargs: dict[str, Any] | None = None,
        reward_family: str | None = None,
    ) -> None:
        cls = AGENTS.get(base)
        if cls.contextual or cls.feedback_type != "reward" or cls is type(self):
            raise ConfigError(
                f"qpmd needs a non-contextual reward agent as base, got {base!r}; e.g. ucb1"
            )
        kwargs = dict(base_kwargs or {})
        if "reward_family" in _init_params(cls):
            kwargs.setdefault("reward_family", reward_family)
        self.base_name = base
        self.base = cls(n_arms, n_runs=n_runs, seed=seed, **kwargs)
        super().__init__(n_arms, n_runs, seed)

    def reset(self) -> None:
        super().reset()
        self.base.reset()
        self.queue = np.zeros((self.n_runs, self.n_arms, 4))
        self.queued = np.zeros((self.n_runs, self.n_arms), dtype=np.int64)

    def predict(self, obs: Any = None) -> np.ndarray:
        choice = np.zeros(self.n_runs, dtype=np.int64)
        asking = np.ones(self.n_runs, dtype=bool)
        while True:
            arms = np.asarray(self.base.predict(obs), dtype=np.int64)
            feed = asking & (self.queued[self._rows, arms] > 0)
            pull = asking & ~feed
            choice[pull] = arms[pull]
            if not feed.any():
                return choice
            asking = feed
            rows = self._rows[feed]
            self.queued[rows, arms[feed]] -= 1
            rewards = np.zeros(self.n_runs)
            rewards[feed] = self.queue[rows, arms[feed], self.queued[rows, arms[feed]]]
            self.base.update_masked(arms, rewards, obs, feed)

    def update(self, actions: np.ndarray, rewards: np.ndarray, obs: Any = None) -> None:
        self._enqueue(np.asarray(actions), np.asarray(rewards), np.ones(self.n_runs, dtype=bool))

    def update_arrived(
        self, arrived: dict[str, Any], extras: Callable[[Any, dict[str, Any]], dict[str, Any]]
    ) -> None:
        mask = arrived["mask"]
        for j in range(mask.shape[1]):
            self._enqueue(arrived["actions"][:, j], arrived["rewards"][:, j], mask[:, j])

    def _enqueue(self, actions: np.ndarray, rewards: np.ndarray, mask: np.ndarray) -> None:
        rows = self._rows[mask]
        arms = actions[mask]
        place = self.queued[rows, arms]
        if place.size and int(place.max()) >= self.queue.shape[2]:
            grown = np.zeros((*self.queue.shape[:2], 2 * self.queue.shape[2]))
            grown[:, :, : self.queue.shape[2]] = self.queue
            self.queue = grown
        self.queue[rows, arms, place] = np.asarray(rewards, dtype=np.float64)[mask]
        self.queued[rows, arms] += 1
        self.t += 1

    @classmethod
    def from_env(cls, env: Any, seed: int | None = None, **params: Any) -> BanditAgent:
        """As :meth:`BanditAgent.from_env`; the base agent must also fit the env."""
        AGENTS.get(params.get("base", "ucb1")).check_env(env)
        return super().from_env(env, seed=seed, **params)
