"""Stochastic and adversarial bandit agents, vectorised across independent runs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from feedbackgym.agents.bandits import kernels
from feedbackgym.agents.bandits.base import BanditAgent, log_clock, register_agent
from feedbackgym.errors import ConfigError, check_range


class _CountingAgent(BanditAgent):
    """Shared state of index policies: pull counts and reward sums per (run, arm)."""

    def reset(self) -> None:
        super().reset()
        self.counts = np.zeros((self.n_runs, self.n_arms))
        self.sums = np.zeros((self.n_runs, self.n_arms))

    def update(self, actions: np.ndarray, rewards: np.ndarray, obs: Any = None) -> None:
        kernels.count_update(self.counts, self.sums, actions, np.asarray(rewards, np.float64))
        self.t += 1

    def update_arrived(self, arrived: dict[str, Any], extras: Any = None) -> None:
        """All of a delayed env's arrivals at once: counts and sums of the items' (run, arm)
        pairs, in slot order (as slot-by-slot :meth:`update_masked` calls leave them); each
        run's clock counts the items that reached it, as those calls do."""
        mask = np.asarray(arrived["mask"], dtype=np.bool_)
        if mask.shape[1]:
            self._learn_items(
                np.asarray(arrived["actions"], np.int64),
                np.asarray(arrived["rewards"], np.float64),
                mask,
            )
            self.t += mask.sum(axis=1)

    def update_masked(
        self, actions: np.ndarray, rewards: np.ndarray, obs: Any, mask: np.ndarray, **extras: Any
    ) -> None:
        """:meth:`update` for the runs where ``mask`` is True only (native: no save/restore)."""
        mask = np.asarray(mask, dtype=np.bool_)
        self._learn_items(
            np.asarray(actions, np.int64)[:, None],
            np.asarray(rewards, np.float64)[:, None],
            mask[:, None],
        )
        self.t[mask] += 1  # the masked runs' clocks only

    def _learn_items(self, actions: np.ndarray, rewards: np.ndarray, mask: np.ndarray) -> None:
        """Learn the items ``mask[n, j]`` (arrays ``(n_runs, m)``). ``t`` is left to the
        caller."""
        kernels.count_update_arrived(self.counts, self.sums, actions, rewards, mask)


@register_agent("epsilon-greedy")
class EpsilonGreedy(_CountingAgent):
    """Epsilon-greedy with a fixed or decaying exploration rate.

    Auer, Cesa-Bianchi & Fischer (2002), "Finite-time analysis of the multiarmed bandit problem"
    (epsilon_n-greedy). With ``epsilon=None`` the rate decays as ``min(1, c K / t)`` (t: the
    run's own clock, the rewards it has learned from); the paper's
    ``c K / (d^2 t)`` needs a gap bound d, which we fold into ``c``. A fixed ``epsilon`` gives
    linear regret, as it should. Ties in the greedy step go to the lowest arm index.

    :param epsilon: fixed exploration probability in [0, 1], or None for the decaying schedule.
    :param c: scale of the decaying schedule, > 0.
    """

    predict_state = ()

    def __init__(
        self,
        n_arms: int,
        n_runs: int = 1,
        seed: int | None = None,
        epsilon: float | None = None,
        c: float = 5.0,
    ) -> None:
        self.epsilon = None if epsilon is None else check_range("epsilon", epsilon, 0.0, 1.0)
        self.c = check_range("c", c, 0.0, low_open=True)
        super().__init__(n_arms, n_runs, seed)

    def predict(self, obs: Any = None) -> np.ndarray:
        eps = (
            self.epsilon
            if self.epsilon is not None
            else np.minimum(1.0, self.c * self.n_arms / np.maximum(self.t, 1))
        )
        means = np.divide(
            self.sums, self.counts, out=np.full_like(self.sums, np.inf), where=self.counts > 0
        )
        greedy = means.argmax(axis=1)
        explore = self.rng.random(self.n_runs) < eps
        random_arms = self.rng.integers(0, self.n_arms, self.n_runs)
        return np.where(explore, random_arms, greedy)


@register_agent("ucb1")
class UCB1(_CountingAgent):
    """UCB1: pull the arm maximising ``mean + sqrt(alpha log t / n)``.

    Auer, Cesa-Bianchi & Fischer (2002), "Finite-time analysis of the multiarmed bandit problem".
    ``alpha = 2`` is the paper's constant. Each arm is pulled once first (lowest index first).
    ``t`` and ``n`` are each run's own: the rewards it has learned from (under delayed feedback,
    those that reached it).

    :param alpha: exploration constant, > 0.
    """

    predict_state = ()

    def __init__(
        self, n_arms: int, n_runs: int = 1, seed: int | None = None, alpha: float = 2.0
    ) -> None:
        self.alpha = check_range("alpha", alpha, 0.0, low_open=True)
        super().__init__(n_arms, n_runs, seed)

    def predict(self, obs: Any = None) -> np.ndarray:
        starting = self.t < self.n_arms  # initialisation: run n pulls arm t[n]
        if starting.all():
            return self.t.copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            index = self.sums / self.counts
            bonus = self.alpha * log_clock(np.maximum(self.t, 1))
            index += np.sqrt(bonus[:, None] / self.counts)
        # Under delayed feedback an arm may have no reward back yet: it is tried first.
        index[self.counts == 0] = np.inf
        return np.where(starting, self.t, index.argmax(axis=1))


@register_agent("kl-ucb")
class KLUCB(_CountingAgent):
    """KL-UCB for Bernoulli rewards: the largest q with ``n kl(mean, q) <= c log t``.

    Garivier & Cappé (2011), "The KL-UCB algorithm for bounded stochastic bandits and beyond".
    Deviation: the paper's analysis uses ``log t + 3 log log t``; like the paper's experiments
    and SMPyBandits we use ``c log t`` with c = 1 (t: the run's own clock, the rewards it has
    learned from). The index is found by Newton's method (to ``tol``) in a numba kernel,
    skipping arms whose Pinsker bound cannot beat the leader.

    :param c: multiplier of the exploration term ``log t``, > 0.
    :param tol: precision of the index.
    """

    needs_unit_rewards = True
    predict_state = ("_index_cache", "_out")

    def __init__(
        self,
        n_arms: int,
        n_runs: int = 1,
        seed: int | None = None,
        c: float = 1.0,
        tol: float = 1e-6,
    ) -> None:
        self.c = check_range("c", c, 0.0, low_open=True)
        self.tol = check_range("tol", tol, 0.0, 0.1, low_open=True)
        super().__init__(n_arms, n_runs, seed)
        self._out = np.zeros(self.n_runs, dtype=np.int64)

    def reset(self) -> None:
        super().reset()
        self._index_cache = np.full((self.n_runs, self.n_arms, 3), -1.0)

    def update(self, actions: np.ndarray, rewards: np.ndarray, obs: Any = None) -> None:
        super().update(actions, rewards, obs)
        self._index_cache[self._rows, actions, 0] = -1.0  # the pulled arm's index is stale

    def _learn_items(self, actions: np.ndarray, rewards: np.ndarray, mask: np.ndarray) -> None:
        rows, slots = np.nonzero(mask)
        self._index_cache[rows, actions[rows, slots], 0] = -1.0
        super()._learn_items(actions, rewards, mask)

    def predict(self, obs: Any = None) -> np.ndarray:
        log_t = log_clock(np.maximum(self.t, 1))
        kernels.kl_ucb_choose(
            self.counts, self.sums, log_t, self.c, self.tol, self._index_cache, self._out
        )
        return self._out.copy()


def thompson_prior(prior: str, reward_family: str | None, name: str) -> str:
    """The posterior model (``beta`` or ``gaussian``) of Thompson-sampling agent ``name``."""
    if prior not in ("auto", "beta", "gaussian"):
        raise ConfigError(f"prior must be one of auto, beta, gaussian, got {prior!r}")
    if prior == "auto":
        prior = "beta" if reward_family == "bernoulli" else "gaussian"
    if prior == "beta" and reward_family not in ("bernoulli", None):
        raise ConfigError(
            f"{name} prior 'beta' needs 0/1 rewards but the env's are {reward_family}; "
            "use prior 'gaussian'"
        )
    return prior


@register_agent("thompson")
class ThompsonSampling(_CountingAgent):
    """Thompson sampling with a Beta-Bernoulli or a Gaussian model.

    Thompson (1933); Agrawal & Goyal (2012, 2013), "Analysis of Thompson Sampling for the
    multi-armed bandit problem" and "Further optimal regret bounds for Thompson Sampling".
    ``prior="beta"``: theta_k ~ Beta(1 + S_k, 1 + F_k) (rewards must be 0/1; Beta draws run in a
    numba kernel with one random stream per run). ``prior="gaussian"``: theta_k ~
    N(mean_k, sigma^2 / (n_k + 1)) with a N(0, sigma^2) prior per arm (Agrawal & Goyal 2013,
    Algorithm 2 uses sigma = 1). ``prior="auto"`` picks beta on Bernoulli envs, else gaussian.

    :param prior: "auto", "beta" or "gaussian".
    :param sigma: scale of the Gaussian model, > 0.
    :param reward_family: filled in from the env by ``from_env`` (used by ``prior="auto"``).
    """

    predict_state = ("_streams", "_out")

    def __init__(
        self,
        n_arms: int,
        n_runs: int = 1,
        seed: int | None = None,
        prior: str = "auto",
        sigma: float = 1.0,
        reward_family: str | None = "bernoulli",
    ) -> None:
        self.prior = thompson_prior(prior, reward_family, "thompson")
        self.sigma = check_range("sigma", sigma, 0.0, low_open=True)
        super().__init__(n_arms, n_runs, seed)
        self._out = np.zeros(self.n_runs, dtype=np.int64)

    def reset(self) -> None:
        super().reset()
        self._streams = self.rng.integers(0, 2**63, size=self.n_runs, dtype=np.uint64)
        # Gamma-sampler constants of Beta(1 + S, 1 + F); only the pulled arm's change per step.
        self._alpha = kernels.gamma_constants(np.ones((self.n_runs, self.n_arms)))
        self._beta = self._alpha.copy()

    def update(self, actions: np.ndarray, rewards: np.ndarray, obs: Any = None) -> None:
        if self.prior != "beta":
            return super().update(actions, rewards, obs)
        rewards = np.asarray(rewards, np.float64)
        if not kernels.beta_posterior_update(
            self.counts, self.sums, self._alpha, self._beta, actions, rewards
        ):
            raise ConfigError("thompson prior 'beta' needs rewards in {0, 1}")
        self.t += 1

    def _learn_items(self, actions: np.ndarray, rewards: np.ndarray, mask: np.ndarray) -> None:
        if self.prior != "beta":
            return super()._learn_items(actions, rewards, mask)
        filled = kernels.beta_posterior_update_arrived(
            self.counts, self.sums, self._alpha, self._beta, actions, rewards, mask
        )
        if filled < 0:
            raise ConfigError("thompson prior 'beta' needs rewards in {0, 1}")

    def predict(self, obs: Any = None) -> np.ndarray:
        if self.prior == "beta":
            kernels.beta_thompson_choose(self._alpha, self._beta, self._streams, self._out)
            return self._out.copy()
        mean = self.sums / (self.counts + 1.0)
        std = self.sigma / np.sqrt(self.counts + 1.0)
        return (mean + std * self.rng.standard_normal(mean.shape)).argmax(axis=1)


@register_agent("exp3")
class EXP3(BanditAgent):
    """EXP3 for adversarial bandits, anytime version with a decreasing learning rate.

    Auer, Cesa-Bianchi, Freund & Schapire (2002), "The nonstochastic multiarmed bandit problem".
    Deviation: we use the loss-based, horizon-free form of Bubeck & Cesa-Bianchi (2012, Thm 3.1):
    p_t ∝ exp(-eta_t L_hat), eta_t = sqrt(log K / (t K)), importance-weighted loss estimates
    (1 - r) / p, no explicit uniform mixing. Regret <= 2 sqrt(T K log K) for rewards in [0, 1].
    t is each run's own clock (the rewards it has learned from, plus one).

    :param eta_scale: multiplier of the learning rate, > 0.
    """

    needs_unit_rewards = True
    predict_state = ("_probs",)

    def __init__(
        self, n_arms: int, n_runs: int = 1, seed: int | None = None, eta_scale: float = 1.0
    ) -> None:
        self.eta_scale = check_range("eta_scale", eta_scale, 0.0, low_open=True)
        super().__init__(n_arms, n_runs, seed)

    def reset(self) -> None:
        super().reset()
        self.loss_estimates = np.zeros((self.n_runs, self.n_arms))
        self._probs = np.full((self.n_runs, self.n_arms), 1.0 / self.n_arms)

    def predict(self, obs: Any = None) -> np.ndarray:
        eta = self.eta_scale * np.sqrt(math.log(self.n_arms) / ((self.t + 1) * self.n_arms))
        logits = -eta[:, None] * self.loss_estimates
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        self._probs = probs
        u = self.rng.random((self.n_runs, 1))
        return np.minimum((probs.cumsum(axis=1) < u).sum(axis=1), self.n_arms - 1)

    def update(self, actions: np.ndarray, rewards: np.ndarray, obs: Any = None) -> None:
        # Under delayed feedback the probabilities are today's, not the pull's: keep p > 0.
        p = np.maximum(self._probs[self._rows, actions], 1e-12)
        self.loss_estimates[self._rows, actions] += (1.0 - rewards) / p
        self.t += 1

    def update_arrived(self, arrived: dict[str, Any], extras: Any = None) -> None:
        """All arrivals at once: the items' loss estimates added in slot order (as slot-by-slot
        updates add them), weighted by today's probabilities; each run's clock counts the
        items that reached it."""
        mask = np.asarray(arrived["mask"], dtype=np.bool_)
        slots, rows = np.nonzero(mask.T)  # slot-major: the order slot-by-slot updates take
        if rows.size:
            self._learn_items(
                rows, arrived["actions"][rows, slots], arrived["rewards"][rows, slots]
            )
            self.t += mask.sum(axis=1)

    def update_masked(
        self, actions: np.ndarray, rewards: np.ndarray, obs: Any, mask: np.ndarray, **extras: Any
    ) -> None:
        """:meth:`update` for the runs where ``mask`` is True only (native: no save/restore)."""
        rows = np.flatnonzero(mask)
        self._learn_items(rows, np.asarray(actions)[rows], np.asarray(rewards)[rows])
        self.t[rows] += 1

    def _learn_items(self, rows: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        p = np.maximum(self._probs[rows, actions], 1e-12)
        np.add.at(self.loss_estimates, (rows, actions), (1.0 - np.asarray(rewards)) / p)


class _LinearAgent(BanditAgent):
    """Ridge-regression state of the linear agents: A^{-1} and b per run (theta shared by arms)."""

    contextual = True

    def __init__(
        self,
        n_arms: int,
        n_runs: int = 1,
        seed: int | None = None,
        dim: int | None = None,
        regularization: float = 1.0,
    ) -> None:
        if dim is None:
            raise ConfigError("linear agents need dim, the feature dimension")
        self.regularization = check_range("regularization", regularization, 0.0, low_open=True)
        super().__init__(n_arms, n_runs, seed, dim=int(dim))

    def reset(self) -> None:
        super().reset()
        d = self.dim
        self.a_inv = np.tile(np.eye(d) / self.regularization, (self.n_runs, 1, 1))
        self.b = np.zeros((self.n_runs, d))
        self.theta_hat = np.zeros((self.n_runs, d))

    def update(self, actions: np.ndarray, rewards: np.ndarray, obs: Any = None) -> None:
        x = np.asarray(obs, dtype=np.float64)[self._rows, actions]  # (n, d)
        a_inv_x = np.einsum("nij,nj->ni", self.a_inv, x)
        denom = 1.0 + np.einsum("ni,ni->n", x, a_inv_x)
        # Sherman-Morrison: (A + x x^T)^{-1} = A^{-1} - A^{-1} x x^T A^{-1} / (1 + x^T A^{-1} x)
        self.a_inv -= np.einsum("ni,nj->nij", a_inv_x, a_inv_x) / denom[:, None, None]
        self.b += rewards[:, None] * x
        self.theta_hat = np.einsum("nij,nj->ni", self.a_inv, self.b)
        self.t += 1


@register_agent("linucb")
class LinUCB(_LinearAgent):
    """LinUCB with one parameter shared by all arms: ``x^T theta_hat + alpha ||x||_{A^{-1}}``.

    Li, Chu, Langford & Schapire (2010), "A contextual-bandit approach to personalized news article
    recommendation". Deviation: the paper's disjoint model keeps one theta per arm; we keep one
    theta for all arms, whose features differ (its "hybrid" model without per-arm parts, the form
    analysed by Chu et al. 2011 and Abbasi-Yadkori et al. 2011). A^{-1} is kept by Sherman-Morrison.

    :param alpha: width of the confidence bonus, > 0.
    :param regularization: ridge parameter lambda, > 0.
    """

    def __init__(
        self,
        n_arms: int,
        n_runs: int = 1,
        seed: int | None = None,
        dim: int | None = None,
        alpha: float = 1.0,
        regularization: float = 1.0,
    ) -> None:
        self.alpha = check_range("alpha", alpha, 0.0, low_open=True)
        super().__init__(n_arms, n_runs, seed, dim, regularization)

    def predict(self, obs: Any = None) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float64)  # (n, K, d)
        mean = np.einsum("nkd,nd->nk", x, self.theta_hat)
        width = np.sqrt(np.einsum("nkd,nde,nke->nk", x, self.a_inv, x).clip(min=0.0))
        return (mean + self.alpha * width).argmax(axis=1)


@register_agent("lin-ts")
class LinearThompsonSampling(_LinearAgent):
    """Linear Thompson sampling: theta ~ N(theta_hat, v^2 A^{-1}), pull argmax x^T theta.

    Agrawal & Goyal (2013), "Thompson Sampling for contextual bandits with linear payoffs".
    Deviation: the paper's v = R sqrt(24 d log(1/delta) / eps) is very conservative; ``v`` is a
    free scale (default 0.25), as in most empirical work.

    :param v: scale of the posterior, > 0.
    :param regularization: ridge parameter lambda, > 0.
    """

    def __init__(
        self,
        n_arms: int,
        n_runs: int = 1,
        seed: int | None = None,
        dim: int | None = None,
        v: float = 0.25,
        regularization: float = 1.0,
    ) -> None:
        self.v = check_range("v", v, 0.0, low_open=True)
        super().__init__(n_arms, n_runs, seed, dim, regularization)

    def predict(self, obs: Any = None) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float64)
        sym = 0.5 * (self.a_inv + self.a_inv.transpose(0, 2, 1))
        chol = np.linalg.cholesky(sym)
        z = self.rng.standard_normal((self.n_runs, self.dim))
        theta = self.theta_hat + self.v * np.einsum("nij,nj->ni", chol, z)
        return np.einsum("nkd,nd->nk", x, theta).argmax(axis=1)
