"""Delay-aware bandit agents: they learn from feedback that arrives late (a delayed env).

Any agent runs in a :class:`~feedbackgym.feedback.delayed_bandit.DelayedFeedbackEnv` by updating
when its feedback arrives (:meth:`BanditAgent.update_arrived`); the agents here are built for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from feedbackgym.agents.bandits.algorithms import thompson_prior
from feedbackgym.agents.bandits.base import (
    AGENTS,
    BanditAgent,
    init_params,
    log_clock,
    register_agent,
    restore_rows,
    snapshot_rows,
)
from feedbackgym.errors import ConfigError, check_positive_int, check_range
from feedbackgym.registry import check_kwargs


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
        self.rounds = np.zeros(self.n_runs, dtype=np.int64)  # rounds played, per run

    def predict(self, obs: Any = None) -> np.ndarray:
        self.rounds += 1
        with np.errstate(divide="ignore", invalid="ignore"):
            index = self.sums / self.counts
            index += np.sqrt((self.alpha * log_clock(self.rounds))[:, None] / self.counts)
        waiting = self.counts == 0
        index[waiting] = np.inf
        # among arms with no feedback yet: the least pulled (ties: the lowest index)
        first = np.where(waiting, -self.pulls, -np.inf).argmax(axis=1)
        actions = np.where(waiting.any(axis=1), first, index.argmax(axis=1))
        self.pulls[self._rows, actions] += 1
        return actions

    def update_masked(
        self, actions: np.ndarray, rewards: np.ndarray, obs: Any, mask: np.ndarray, **extras: Any
    ) -> None:
        rows = self._rows[mask]
        arms = np.asarray(actions)[mask]
        self.counts[rows, arms] += 1
        self.sums[rows, arms] += np.asarray(rewards, dtype=np.float64)[mask]
        self.t[rows] += 1


@register_agent("qpmd")
class QueuedDelayReduction(BanditAgent):
    """Q-PMD, the black-box reduction of Joulani, Gyorgy & Szepesvari (2013), Algorithm 1.

    "Online Learning under Delayed Feedback" (ICML 2013): a ``base`` agent built for undelayed
    feedback is run as if there were no delay. Arrived rewards wait in one queue per arm; when
    the base agent asks for an arm whose queue holds a reward, that reward is fed to it at once
    (no pull), and it is asked again; the first arm with an empty queue is really pulled. For
    stochastic rewards the base agent sees an undelayed i.i.d. stream, and the regret is that of
    the base agent plus ``sum_i Delta_i E[G*_i]`` (G*: the most rewards missing at once, about
    E[tau]). Deviation: a queue is consumed last-in first-out (rewards of an arm are i.i.d.,
    so order does not matter). Every run is its own instance of the reduction: the base agent's
    clock and state advance only in the runs that are fed, and the runs that are not asking
    again keep their base state (snapshotted around the repeated ``predict``), so a run's
    numbers do not depend on the runs simulated beside it (a base agent drawing from one
    generator for all runs, e.g. ``epsilon-greedy``, still shares that generator's stream).

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
        if cls.contextual or cls.feedback_type != "reward" or cls.__module__ == __name__:
            raise ConfigError(
                f"qpmd needs a non-contextual reward agent that is not itself delay-aware as "
                f"base, got {base!r}; e.g. ucb1, thompson"
            )
        if base_kwargs is not None and not isinstance(base_kwargs, dict):
            raise ConfigError(f"qpmd base_kwargs must be a JSON object, got {base_kwargs!r}")
        kwargs = dict(base_kwargs or {})
        check_kwargs(cls, kwargs, f"qpmd base agent {base!r}")
        if "reward_family" in init_params(cls):
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
            idle = self._rows[~asking]
            saved = snapshot_rows(self.base, idle, self.base.predict_state) if idle.size else {}
            arms = np.asarray(self.base.predict(obs), dtype=np.int64)
            if saved:  # asking again changes nothing for the runs that are done
                restore_rows(self.base, idle, saved)
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
        self.t[rows] += 1

    @classmethod
    def from_env(cls, env: Any, seed: int | None = None, **params: Any) -> BanditAgent:
        """As :meth:`BanditAgent.from_env`; the base agent must also fit the env."""
        AGENTS.get(params.get("base", "ucb1")).check_env(env)
        return super().from_env(env, seed=seed, **params)


def _check_binary(rewards: np.ndarray, name: str) -> None:
    if not np.all((rewards == 0.0) | (rewards == 1.0)):
        raise ConfigError(f"{name} prior 'beta' needs rewards in {{0, 1}}")


@register_agent("delayed-ts")
class DelayedThompsonSampling(BanditAgent):
    """Thompson sampling that hallucinates the outcomes of its outstanding pulls.

    Plain Thompson sampling already runs under delays by sampling from the posterior of the
    rewards received so far (Chapelle & Li 2011, "An Empirical Evaluation of Thompson
    Sampling", Section 4: delayed, batched updates); its extra regret is the additive
    ``sum_i Delta_i E[tau]`` of Joulani, Gyorgy & Szepesvari (2013), spent re-pulling arms whose
    earlier pulls have not reported yet. This agent also counts, per arm, the pulls still
    pending, ``P_i``, and treats them as observed at the current posterior mean: the posterior
    keeps its mean but is as concentrated as if the ``P_i`` outcomes had arrived (the
    *hallucinated* observations of GP-BUCB, Desautels, Krause & Burdick 2014, "Parallelizing
    Exploration-Exploitation Tradeoffs in Gaussian Process Bandit Optimization", JMLR, which do
    exactly this for pending batch evaluations). Beta model: theta_i ~ Beta(1 + S_i + h P_i m_i,
    1 + F_i + h P_i (1 - m_i)), m_i = (1 + S_i) / (2 + n_i); Gaussian model: theta_i ~
    N(S_i / (n_i + 1), sigma^2 / (n_i + h P_i + 1)). An arm with many pulls on the way is thus
    sampled less often far from its mean, so fewer redundant pulls go to a suboptimal arm while
    its feedback is outstanding (the source of the additive delay term); ``h = 0`` is plain
    Thompson sampling. Without delay ``P_i = 0`` at every decision, and the agent is Thompson
    sampling (with numpy's Beta sampler, so not the same draws as ``thompson``). Deviation from
    GP-BUCB: no confidence-ratio correction of the hallucinated variance (an index policy would
    need one; a posterior sampler keeps its mean unbiased without it). Pulls whose feedback
    expires (due after the horizon) stay pending.

    :param hallucinate: weight h in [0, 1] of a pending pull (1: a full observation).
    :param prior: "auto", "beta" or "gaussian" (as ``thompson``).
    :param sigma: scale of the Gaussian model, > 0.
    :param reward_family: filled in from the env by ``from_env`` (used by ``prior="auto"``).
    """

    def __init__(
        self,
        n_arms: int,
        n_runs: int = 1,
        seed: int | None = None,
        hallucinate: float = 1.0,
        prior: str = "auto",
        sigma: float = 1.0,
        reward_family: str | None = "bernoulli",
    ) -> None:
        self.hallucinate = check_range("hallucinate", hallucinate, 0.0, 1.0)
        self.prior = thompson_prior(prior, reward_family, "delayed-ts")
        self.sigma = check_range("sigma", sigma, 0.0, low_open=True)
        super().__init__(n_arms, n_runs, seed)

    def reset(self) -> None:
        super().reset()
        self.counts = np.zeros((self.n_runs, self.n_arms))
        self.sums = np.zeros((self.n_runs, self.n_arms))
        self.pending = np.zeros((self.n_runs, self.n_arms))

    def predict(self, obs: Any = None) -> np.ndarray:
        extra = self.hallucinate * self.pending
        if self.prior == "beta":
            mean = (1.0 + self.sums) / (2.0 + self.counts)
            a = 1.0 + self.sums + extra * mean
            b = 1.0 + (self.counts - self.sums) + extra * (1.0 - mean)
            theta = self.rng.beta(a, b)
        else:
            mean = self.sums / (self.counts + 1.0)
            std = self.sigma / np.sqrt(self.counts + extra + 1.0)
            theta = mean + std * self.rng.standard_normal(mean.shape)
        actions = theta.argmax(axis=1)
        self.pending[self._rows, actions] += 1
        return actions

    def update_masked(
        self, actions: np.ndarray, rewards: np.ndarray, obs: Any, mask: np.ndarray, **extras: Any
    ) -> None:
        rows = self._rows[mask]
        arms = np.asarray(actions, dtype=np.int64)[mask]
        got = np.asarray(rewards, dtype=np.float64)[mask]
        if self.prior == "beta":
            _check_binary(got, "delayed-ts")
        np.add.at(self.counts, (rows, arms), 1.0)
        np.add.at(self.sums, (rows, arms), got)
        np.subtract.at(self.pending, (rows, arms), 1.0)
        np.maximum(self.pending, 0.0, out=self.pending)
        self.t[rows] += 1


@register_agent("batched-ts")
class BatchedThompsonSampling(BanditAgent):
    """Thompson sampling whose posterior changes only at batch boundaries.

    The batched bandit of Perchet, Rigollet, Chassang & Snowberg (2016), "Batched bandit
    problems" (Annals of Statistics): the policy may change only at the ends of batches, and
    the outcomes of a batch are seen together at its end (as in an Adyen-style pipeline that
    ships the day's logs at midnight: ``--delay batched:PERIOD``). Within a batch the agent
    draws a fresh sample per step from the posterior frozen at the last boundary (batched
    Thompson sampling with a fixed grid, Kalkanli & Ozgur 2021, "Batched Thompson Sampling",
    NeurIPS; Chapelle & Li 2011 ran TS this way). Feedback that arrives inside a batch is
    staged and folded in at the next boundary, so the decision rule is the same across the
    batch whatever the delays. Boundaries fall after steps ``period, 2 period, ...``, matching
    ``batched:PERIOD`` releases (outcomes of a batch arrive at its last step and are used from
    the next one). ``period=None`` reads PERIOD off a batched delay of the env (``from_env``),
    else 1 (plain Thompson sampling). Beta or Gaussian model as ``thompson``.

    :param period: batch length in steps, >= 1 (None: from the env's batched delay, else 1).
    :param prior: "auto", "beta" or "gaussian".
    :param sigma: scale of the Gaussian model, > 0.
    :param reward_family: filled in from the env by ``from_env``.
    """

    def __init__(
        self,
        n_arms: int,
        n_runs: int = 1,
        seed: int | None = None,
        period: int | None = None,
        prior: str = "auto",
        sigma: float = 1.0,
        reward_family: str | None = "bernoulli",
    ) -> None:
        self.period = 1 if period is None else check_positive_int("period", period)
        self.prior = thompson_prior(prior, reward_family, "batched-ts")
        self.sigma = check_range("sigma", sigma, 0.0, low_open=True)
        super().__init__(n_arms, n_runs, seed)

    def reset(self) -> None:
        super().reset()
        shape = (self.n_runs, self.n_arms)
        self.counts, self.sums = np.zeros(shape), np.zeros(shape)  # frozen posterior
        self.staged_counts, self.staged_sums = np.zeros(shape), np.zeros(shape)
        self.rounds = np.zeros(self.n_runs, dtype=np.int64)  # rounds played, per run

    def predict(self, obs: Any = None) -> np.ndarray:
        boundary = self.rounds % self.period == 0  # fold the staged feedback in
        if boundary.any():
            self.counts[boundary] += self.staged_counts[boundary]
            self.sums[boundary] += self.staged_sums[boundary]
            self.staged_counts[boundary] = 0.0
            self.staged_sums[boundary] = 0.0
        self.rounds += 1
        if self.prior == "beta":
            theta = self.rng.beta(1.0 + self.sums, 1.0 + self.counts - self.sums)
        else:
            mean = self.sums / (self.counts + 1.0)
            std = self.sigma / np.sqrt(self.counts + 1.0)
            theta = mean + std * self.rng.standard_normal(mean.shape)
        return theta.argmax(axis=1)

    def update_masked(
        self, actions: np.ndarray, rewards: np.ndarray, obs: Any, mask: np.ndarray, **extras: Any
    ) -> None:
        rows = self._rows[mask]
        arms = np.asarray(actions, dtype=np.int64)[mask]
        got = np.asarray(rewards, dtype=np.float64)[mask]
        if self.prior == "beta":
            _check_binary(got, "batched-ts")
        np.add.at(self.staged_counts, (rows, arms), 1.0)
        np.add.at(self.staged_sums, (rows, arms), got)
        self.t[rows] += 1

    @classmethod
    def from_env(cls, env: Any, seed: int | None = None, **params: Any) -> BanditAgent:
        """As :meth:`BanditAgent.from_env`; ``period=None`` takes a batched delay's period."""
        if params.get("period") is None:
            delay = getattr(env, "delay", None)
            if getattr(delay, "registry_name", "") == "batched":
                params["period"] = int(delay.period)
        return super().from_env(env, seed=seed, **params)
