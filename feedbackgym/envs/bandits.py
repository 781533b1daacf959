"""Stochastic multi-armed bandit environments, each native-vectorised across independent runs."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from feedbackgym.errors import ConfigError, check_positive_int, check_range

DEFAULT_HORIZON = 1000


def _bernoulli_kl(p: np.ndarray | float, q: np.ndarray | float) -> np.ndarray:
    """KL(Bernoulli(p) || Bernoulli(q)), clipped away from 0 and 1."""
    eps = 1e-15
    p = np.clip(p, eps, 1 - eps)
    q = np.clip(q, eps, 1 - eps)
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


class BanditVectorEnv(VectorEnv):
    """Base class: ``num_envs`` independent runs of a stochastic bandit, stepped in one numpy call.

    A subclass keeps per-run state in arrays of leading size ``num_envs`` and fills four hooks:
    ``_reset_runs`` (draw a fresh instance for some runs), ``_mean_rewards`` (expected reward of
    every arm at the current step, shape ``(num_envs, n_arms)``), ``_draw_rewards`` (sample the
    pulled arms) and, when it changes over time, ``_advance`` (move to the next step). The base
    class does the bookkeeping every bandit shares: the step counter and horizon, switching
    costs, next-step autoreset, and the hidden truth in ``info``:

    - ``info["regret"]``: pseudo-regret of this step, ``max_a mu_a - mu_pulled + switching cost``;
    - ``info["optimal_action"]``: the best arm at this step;
    - ``info["true_reward"]``: the expected reward of the pulled arm, less the switching cost;
    - ``info["means"]``: the expected reward of every arm at this step (a read-only copy,
      which later steps and resets leave as it was).

    The learner sees only the observation (a context for contextual bandits, else nothing) and the
    sampled reward.

    :param num_envs: number of independent runs simulated together.
    :param n_arms: number of arms K.
    :param horizon: steps per episode; the episode is truncated after ``horizon`` pulls.
    :param switching_cost: cost charged (in regret) whenever a run pulls a different arm than at its
        previous step. It is known to the learner and is not subtracted from the sampled reward.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "autoreset_mode": AutoresetMode.NEXT_STEP,
        "render_modes": [],
    }
    #: Distribution family of the sampled rewards ("bernoulli", "gaussian"): public knowledge
    #: that agents may use (e.g. to choose a Beta or Gaussian prior), unlike the means. None
    #: (undeclared) promises nothing: agents that need rewards in [0, 1] refuse such an env.
    reward_family: ClassVar[str | None] = None
    #: What the learner gets back from a step: "reward" (a sampled reward per pull); dueling
    #: envs say "duel" (who won). Agents declare the same attribute and are matched on it.
    feedback_type: ClassVar[str] = "reward"
    #: Whether the observation is a (n_arms, dim) matrix of arm features.
    contextual: ClassVar[bool] = False
    #: Regret notions this env reports, the first being the default; metric "m" is reported as
    #: ``info["regret"]`` when m == "regret", else as ``info["regret_<m>"]``.
    regret_metrics: ClassVar[tuple[str, ...]] = ("regret",)

    def __init__(
        self,
        num_envs: int = 1,
        n_arms: int = 10,
        horizon: int = DEFAULT_HORIZON,
        switching_cost: float = 0.0,
    ) -> None:
        self.num_envs = check_positive_int("num_envs", num_envs)
        self.n_arms = check_positive_int("n_arms", n_arms)
        if self.n_arms < 2:
            raise ConfigError(f"n_arms must be at least 2, got {n_arms}")
        self.horizon = check_positive_int("horizon", horizon)
        self.switching_cost = check_range("switching_cost", switching_cost, 0.0)
        self.single_action_space = spaces.Discrete(self.n_arms)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        if not hasattr(self, "single_observation_space"):
            self.single_observation_space = spaces.Discrete(1)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.t = np.zeros(self.num_envs, dtype=np.int64)
        self._prev_action = np.full(self.num_envs, -1, dtype=np.int64)
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)
        self._rows = np.arange(self.num_envs)
        self._truth: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    # ----- hooks for subclasses -------------------------------------------------------------
    def _reset_runs(self, runs: np.ndarray) -> None:
        """Draw a fresh instance for the runs indexed by ``runs`` (use ``self.np_random``)."""

    def _mean_rewards(self) -> np.ndarray:
        """Expected reward of every arm at the current step, shape ``(num_envs, n_arms)``."""
        raise NotImplementedError

    def _draw_rewards(self, means: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Sample the reward of the pulled arms, shape ``(num_envs,)``."""
        raise NotImplementedError

    def _advance(self, runs: np.ndarray) -> None:
        """Move the runs indexed by ``runs`` to their next step (new context, drifting means)."""

    def _observation(self) -> Any:
        return np.zeros(self.num_envs, dtype=np.int64)

    # ----- gymnasium API ----------------------------------------------------------------------
    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        if isinstance(seed, (list, tuple)):
            seed = seed[0]
        super().reset(seed=seed, options=options)
        return self._reset_all()

    def _reset_all(self) -> tuple[Any, dict[str, Any]]:
        self.t[:] = 0
        self._prev_action[:] = -1
        self._needs_reset[:] = False
        self._reset_runs(self._rows)
        self._truth = None
        return self._observation(), {}

    def _restart_finished_runs(self) -> np.ndarray:
        """Next-step autoreset: start afresh the runs truncated at the previous step.

        Returns their mask; those runs' step gets no reward and no regret.
        """
        restarting = self._needs_reset
        if restarting.any():
            runs = np.flatnonzero(restarting)
            self.t[runs] = 0
            self._prev_action[runs] = -1
            self._reset_runs(runs)
            self._truth = None
        return restarting

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions).reshape(self.num_envs)
        if actions.dtype.kind not in "iu" or actions.min() < 0 or actions.max() >= self.n_arms:
            raise ConfigError(
                f"actions must be arm indices in [0, {self.n_arms - 1}], got {actions.tolist()[:8]}"
            )
        actions = actions.astype(np.int64, copy=False)
        restarting = self._restart_finished_runs()
        means = self._mean_rewards()
        if self._truth is None or self._truth[0] is not means:
            # Stationary bandits return the same array until a reset: compute its optimum once.
            optimal = means.argmax(axis=1)
            # info gets a read-only copy: a subclass may overwrite its own array at reset.
            shown = means.copy()
            shown.flags.writeable = False
            self._truth = (means, optimal, means[self._rows, optimal], shown)
        _, optimal, best, shown = self._truth
        chosen = means[self._rows, actions]
        regret = best - chosen
        rewards = self._draw_rewards(means, actions)
        if self.switching_cost:
            cost = self.switching_cost * ((self._prev_action >= 0) & (self._prev_action != actions))
            regret = regret + cost
            chosen = chosen - cost
        self._prev_action = actions.copy()
        stepping = ~restarting
        self.t += stepping
        truncated = stepping & (self.t >= self.horizon)
        if restarting.any():
            rewards = np.where(restarting, 0.0, rewards)
            regret = np.where(restarting, 0.0, regret)
            self._advance(np.flatnonzero(stepping))
        else:
            self._advance(self._rows)
        self._needs_reset = truncated
        info = {"regret": regret, "optimal_action": optimal, "true_reward": chosen, "means": shown}
        return (
            self._observation(),
            np.asarray(rewards, dtype=np.float64),
            np.zeros(self.num_envs, dtype=bool),
            truncated,
            info,
        )

    def lai_robbins_constant(self) -> float | None:
        """Constant c of the Lai-Robbins bound ``regret(t) >= c log t``; None when not defined."""
        return None

    def check_metric(self, metric: str) -> None:
        """Raise ConfigError when ``metric`` does not apply to this instance (after reset)."""
        if metric not in self.regret_metrics:
            raise ConfigError(
                f"metric {metric!r} does not apply to this env; "
                f"valid: {', '.join(self.regret_metrics)}"
            )


class SingleRunBandit(gym.Env):
    """A single-run ``gymnasium.Env`` view of a :class:`BanditVectorEnv` (``num_envs=1``).

    Every bandit registers both: this class as ``entry_point`` (for ``gymnasium.make``, SB3 and the
    env checkers) and the vector class as ``vector_entry_point`` (for ``gymnasium.make_vec``), so
    one implementation serves both.
    """

    vector_class: ClassVar[type[BanditVectorEnv]]
    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, vector_class: type[BanditVectorEnv] | None = None, **kwargs: Any) -> None:
        if vector_class is not None:
            self.vector_class = vector_class
        self._vec = self.vector_class(num_envs=1, **kwargs)
        self.observation_space = self._vec.single_observation_space
        self.action_space = self._vec.single_action_space

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self._vec.np_random = self.np_random  # one generator for both views
        obs, info = self._vec._reset_all()
        return obs[0], info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, rewards, terminated, truncated, info = self._vec.step(np.asarray([action]))
        return (
            obs[0],
            float(rewards[0]),
            bool(terminated[0]),
            bool(truncated[0]),
            {key: value[0] for key, value in info.items()},
        )

    def __getattr__(self, name: str) -> Any:
        # Expose the hidden truth (means, n_arms, ...) to evaluation code via env.unwrapped.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._vec, name)


def _check_means(means: Any, family: str) -> np.ndarray:
    try:
        arr = np.asarray(means, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"means must be a list of numbers, got {means!r}") from None
    if arr.ndim != 1 or arr.size < 2:
        raise ConfigError(f"means must be a flat list of at least 2 numbers, got {means!r}")
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"means must be finite numbers, got {means!r}")
    if family == "bernoulli" and (arr.min() < 0 or arr.max() > 1):
        bad = arr[(arr < 0) | (arr > 1)][0]
        raise ConfigError(f"Bernoulli means must be in [0, 1], got {bad:g}")
    return arr


class _KArmedVec(BanditVectorEnv):
    """Shared parts of the K-armed bandits: means given, or drawn from a seeded prior."""

    def __init__(
        self,
        num_envs: int = 1,
        means: list[float] | None = None,
        n_arms: int = 10,
        prior_seed: int | None = None,
        horizon: int = DEFAULT_HORIZON,
        switching_cost: float = 0.0,
    ) -> None:
        if means is not None:
            means = _check_means(means, self.reward_family)
            n_arms = means.size
        super().__init__(num_envs, n_arms, horizon, switching_cost)
        self.prior_seed = prior_seed
        if means is None and prior_seed is not None:
            means = self._draw_prior(np.random.default_rng(prior_seed), 1)[0]
        self._fixed_means = means
        self.means = np.zeros((self.num_envs, self.n_arms))

    def _draw_prior(self, rng: np.random.Generator, n: int) -> np.ndarray:
        raise NotImplementedError

    def _reset_runs(self, runs: np.ndarray) -> None:
        if self._fixed_means is not None:
            self.means[runs] = self._fixed_means
        else:  # a new instance per run: Bayesian regret over the prior
            self.means[runs] = self._draw_prior(self.np_random, runs.size)

    def _mean_rewards(self) -> np.ndarray:
        return self.means


class BernoulliBanditVec(_KArmedVec):
    """K-armed bandit with Bernoulli rewards; means given or drawn from Uniform(0, 1).

    :param means: the arms' success probabilities, each in [0, 1]; when omitted they are drawn
        from Uniform(0, 1): once from ``prior_seed`` when given (one instance for every run),
        else per run at reset (Bayesian regret).
    :param n_arms: number of arms when ``means`` is omitted.
    :param prior_seed: seed for drawing one fixed instance from the prior.
    :param horizon: steps per episode.
    :param switching_cost: cost charged in regret when the pulled arm changes.
    """

    reward_family = "bernoulli"

    def _draw_prior(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.random((n, self.n_arms))

    def _draw_rewards(self, means: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return (self.np_random.random(self.num_envs) < means[self._rows, actions]).astype(
            np.float64
        )

    def lai_robbins_constant(self) -> float | None:
        if self._fixed_means is None or self.switching_cost:
            return None
        mu = self._fixed_means
        best = mu.max()
        sub = mu[mu < best]
        return float(np.sum((best - sub) / _bernoulli_kl(sub, best)))


class GaussianBanditVec(_KArmedVec):
    """K-armed bandit with Gaussian rewards N(mu_a, sigma^2); means given or drawn from N(0, 1).

    :param means: the arms' mean rewards; drawn from N(0, 1) when omitted (see
        :class:`BernoulliBanditVec` for ``prior_seed``).
    :param sigma: reward noise standard deviation, > 0 (known to the agents).
    :param n_arms: number of arms when ``means`` is omitted.
    :param prior_seed: seed for drawing one fixed instance from the prior.
    :param horizon: steps per episode.
    :param switching_cost: cost charged in regret when the pulled arm changes.
    """

    reward_family = "gaussian"

    def __init__(
        self,
        num_envs: int = 1,
        means: list[float] | None = None,
        sigma: float = 1.0,
        n_arms: int = 10,
        prior_seed: int | None = None,
        horizon: int = DEFAULT_HORIZON,
        switching_cost: float = 0.0,
    ) -> None:
        self.sigma = check_range("sigma", sigma, 0.0, low_open=True)
        super().__init__(num_envs, means, n_arms, prior_seed, horizon, switching_cost)

    def _draw_prior(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.standard_normal((n, self.n_arms))

    def _draw_rewards(self, means: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return means[self._rows, actions] + self.sigma * self.np_random.standard_normal(
            self.num_envs
        )


class SwitchingCostBanditVec(BernoulliBanditVec):
    """Bernoulli bandit that charges a cost each time the pulled arm changes.

    Regret counts the cost (Dekel et al. 2014, "Bandits with switching costs"); the sampled reward
    does not, since the learner knows when it switched. Parameters as :class:`BernoulliBanditVec`,
    with ``switching_cost`` defaulting to 0.1.
    """

    def __init__(
        self,
        num_envs: int = 1,
        means: list[float] | None = None,
        n_arms: int = 10,
        prior_seed: int | None = None,
        horizon: int = DEFAULT_HORIZON,
        switching_cost: float = 0.1,
    ) -> None:
        super().__init__(num_envs, means, n_arms, prior_seed, horizon, switching_cost)


class PiecewiseStationaryBanditVec(BanditVectorEnv):
    """Bernoulli bandit whose means jump every ``change_period`` steps (Garivier & Moulines 2011).

    :param means: optional list of phases, each a list of K means in [0, 1], cycled through at each
        change; when omitted every phase is drawn from Uniform(0, 1) per run.
    :param n_arms: number of arms when ``means`` is omitted.
    :param change_period: steps between changes, >= 1.
    :param horizon: steps per episode.
    :param switching_cost: cost charged in regret when the pulled arm changes.
    """

    reward_family = "bernoulli"

    def __init__(
        self,
        num_envs: int = 1,
        means: list[list[float]] | None = None,
        n_arms: int = 5,
        change_period: int = 1000,
        horizon: int = DEFAULT_HORIZON,
        switching_cost: float = 0.0,
    ) -> None:
        phases = None
        if means is not None:
            if not isinstance(means, (list, tuple)) or not all(
                isinstance(m, (list, tuple)) for m in means
            ):
                raise ConfigError(
                    "means must be a list of phases, each a list of K means, e.g. [[0.9, 0.1], "
                    f"[0.1, 0.9]], got {means!r}"
                )
            phases = np.stack([_check_means(m, "bernoulli") for m in means]) if means else None
            if phases is None or len({len(m) for m in means}) != 1:
                raise ConfigError("means must hold at least one phase, all with the same K arms")
            n_arms = phases.shape[1]
        super().__init__(num_envs, n_arms, horizon, switching_cost)
        self.change_period = check_positive_int("change_period", change_period)
        self.phases = phases
        self.means = np.zeros((self.num_envs, self.n_arms))

    def _set_phase(self, runs: np.ndarray) -> None:
        if self.phases is not None:
            self.means[runs] = self.phases[(self.t[runs] // self.change_period) % len(self.phases)]
        else:
            self.means[runs] = self.np_random.random((runs.size, self.n_arms))

    def _reset_runs(self, runs: np.ndarray) -> None:
        self._set_phase(runs)

    def _advance(self, runs: np.ndarray) -> None:
        changing = runs[self.t[runs] % self.change_period == 0]
        if changing.size:
            self.means = self.means.copy()  # means handed out in info stay as they were
            self._set_phase(changing)

    def _mean_rewards(self) -> np.ndarray:
        return self.means

    def _draw_rewards(self, means: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return (self.np_random.random(self.num_envs) < means[self._rows, actions]).astype(
            np.float64
        )


class ContextualLinearBanditVec(BanditVectorEnv):
    """Linear contextual bandit: arm a at step t has features x_{t,a} in R^d and mean <theta, x>.

    Each step draws fresh features x_{t,a} uniformly on the unit sphere; the observation is the
    (K, d) feature matrix. The reward is
    ``<theta, x> + eps * cos(3 <w, x> * sqrt(d)) + N(0, noise_sigma^2)``: with
    ``misspecification`` eps > 0 the means are not linear in x (Lattimore et al. 2020). theta
    and w are unit vectors, drawn per run, or once from ``prior_seed``. A given ``theta`` is
    one instance for every run: its w is drawn once from ``prior_seed`` (0 when omitted), so
    envs built alike are alike.

    :param n_arms: number of arms K.
    :param dim: feature dimension d.
    :param noise_sigma: reward noise standard deviation, >= 0.
    :param misspecification: amplitude eps >= 0 of the non-linear part of the means.
    :param theta: the true parameter (length d); drawn when omitted.
    :param prior_seed: seed for drawing one fixed theta and w for every run (w only, when
        ``theta`` is given).
    :param horizon: steps per episode.
    :param switching_cost: cost charged in regret when the pulled arm changes.
    """

    reward_family = "gaussian"
    contextual = True

    def __init__(
        self,
        num_envs: int = 1,
        n_arms: int = 10,
        dim: int = 5,
        noise_sigma: float = 0.1,
        misspecification: float = 0.0,
        theta: list[float] | None = None,
        prior_seed: int | None = None,
        horizon: int = DEFAULT_HORIZON,
        switching_cost: float = 0.0,
    ) -> None:
        self.dim = check_positive_int("dim", dim)
        self.single_observation_space = spaces.Box(
            -1.0, 1.0, shape=(n_arms, self.dim), dtype=np.float32
        )
        super().__init__(num_envs, n_arms, horizon, switching_cost)
        self.noise_sigma = check_range("noise_sigma", noise_sigma, 0.0)
        self.misspecification = check_range("misspecification", misspecification, 0.0)
        fixed_theta = None
        if theta is not None:
            fixed_theta = np.asarray(theta, dtype=np.float64)
            if fixed_theta.shape != (self.dim,) or not np.all(np.isfinite(fixed_theta)):
                raise ConfigError(f"theta must be a list of {self.dim} finite numbers, got {theta}")
        self._fixed = None
        if prior_seed is not None or fixed_theta is not None:
            # A given theta without prior_seed still gets one seeded w: same kwargs, same env.
            rng = np.random.default_rng(0 if prior_seed is None else prior_seed)
            th, w = self._draw_params(rng, 1)
            self._fixed = (th[0] if fixed_theta is None else fixed_theta, w[0])
        self.theta = np.zeros((self.num_envs, self.dim))
        self._w = np.zeros((self.num_envs, self.dim))
        self.contexts = np.zeros((self.num_envs, self.n_arms, self.dim), dtype=np.float32)

    def _draw_params(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        both = rng.standard_normal((2, n, self.dim))
        both /= np.linalg.norm(both, axis=2, keepdims=True)
        return both[0], both[1]

    def _reset_runs(self, runs: np.ndarray) -> None:
        if self._fixed is not None:
            self.theta[runs], self._w[runs] = self._fixed
        else:
            self.theta[runs], self._w[runs] = self._draw_params(self.np_random, runs.size)
        self._advance(runs)

    def _advance(self, runs: np.ndarray) -> None:
        self.contexts = self.contexts.copy()
        x = self.np_random.standard_normal((runs.size, self.n_arms, self.dim))
        self.contexts[runs] = x / np.linalg.norm(x, axis=2, keepdims=True)

    def _mean_rewards(self) -> np.ndarray:
        x = self.contexts.astype(np.float64)
        means = np.einsum("nkd,nd->nk", x, self.theta)
        if self.misspecification:
            proj = np.einsum("nkd,nd->nk", x, self._w) * np.sqrt(self.dim)
            means += self.misspecification * np.cos(3.0 * proj)
        return means

    def _draw_rewards(self, means: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return means[self._rows, actions] + self.noise_sigma * self.np_random.standard_normal(
            self.num_envs
        )

    def _observation(self) -> np.ndarray:
        return self.contexts.copy()


class FeatureBanditVec(BanditVectorEnv):
    """Bernoulli bandit whose K arms are points of [-1, 1]^d; the nearer the best arm, the better.

    Each run draws the arms' features uniformly in [-1, 1]^d, every two arms at least
    ``min_separation`` apart on some axis (L-infinity distance, by rejection), and one best arm
    x* uniformly among them; arm k pays 1 with probability
    ``mu_k = mu_max * exp(-||x_k - x*||^2 / (2 width^2))`` (so the best arm pays ``mu_max``).
    With ``prior_seed`` one instance is drawn once for every run; otherwise each run draws its
    own at reset (Bayesian regret). Features are float32 values, exactly as observed.

    The observation is the (K, d) feature matrix, fixed for the episode: the learner knows
    where the arms are, not which is best. ``contextual`` stays False: the features do not
    change and the means are not linear in them, so K-armed agents (which ignore the
    observation) act here too. It is the base of the language bandit
    (``feedbackgym/LanguageBandit-v0``), whose teacher says where the best arm lies.

    :param n_arms: number of arms K.
    :param dim: feature dimension d.
    :param mu_max: success probability of the best arm, in (0, 1].
    :param width: length scale of the means' decay with distance, > 0.
    :param min_separation: least L-infinity distance between two arms, in [0, 1].
    :param prior_seed: seed for drawing one fixed instance for every run.
    :param horizon: steps per episode.
    :param switching_cost: cost charged in regret when the pulled arm changes.
    """

    reward_family = "bernoulli"
    #: Attempts per arm of the rejection sampler before giving up on a run.
    max_tries: ClassVar[int] = 10_000

    def __init__(
        self,
        num_envs: int = 1,
        n_arms: int = 20,
        dim: int = 2,
        mu_max: float = 0.9,
        width: float = 0.5,
        min_separation: float = 0.2,
        prior_seed: int | None = None,
        horizon: int = DEFAULT_HORIZON,
        switching_cost: float = 0.0,
    ) -> None:
        self.dim = check_positive_int("dim", dim)
        k = check_positive_int("n_arms", n_arms)
        self.mu_max = check_range("mu_max", mu_max, 0.0, 1.0, low_open=True)
        self.width = check_range("width", width, 0.0, low_open=True)
        self.min_separation = check_range("min_separation", min_separation, 0.0, 1.0)
        # Sequential random placement jams near half the area of the squares around the
        # arms; well below that every run finds room at once.
        sep = self.min_separation
        if k * sep**self.dim > 0.4 * (2.0 + sep) ** self.dim:
            raise ConfigError(
                f"{k} arms do not fit in [-1, 1]^{self.dim} at min_separation={sep:g}; "
                "lower n_arms or min_separation"
            )
        self.single_observation_space = spaces.Box(-1.0, 1.0, shape=(k, self.dim), dtype=np.float32)
        super().__init__(num_envs, n_arms, horizon, switching_cost)
        self.prior_seed = prior_seed
        self._fixed = None
        if prior_seed is not None:
            self._fixed = self._draw_instance(np.random.default_rng(prior_seed), 1)
        self.features = np.zeros((self.num_envs, self.n_arms, self.dim))
        self.best_arm = np.zeros(self.num_envs, dtype=np.int64)
        self.means = np.zeros((self.num_envs, self.n_arms))

    def _draw_instance(
        self, rng: np.random.Generator, n: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Features ``(n, K, d)``, best arm ``(n,)`` and means ``(n, K)`` of ``n`` instances."""
        k, d, sep = self.n_arms, self.dim, self.min_separation
        x = np.zeros((n, k, d))
        for arm in range(k):
            todo = np.arange(n)
            for _ in range(self.max_tries):
                cand = rng.uniform(-1.0, 1.0, (todo.size, d)).astype(np.float32)
                cand = cand.astype(np.float64)
                gap = np.abs(x[todo, :arm] - cand[:, None, :]).max(axis=2)
                ok = (gap >= sep).all(axis=1)
                x[todo[ok], arm] = cand[ok]
                todo = todo[~ok]
                if not todo.size:
                    break
            else:
                raise ConfigError(
                    f"could not place {k} arms at min_separation={sep:g}; lower either"
                )
        best = rng.integers(0, k, n)
        dist2 = ((x - x[np.arange(n), best][:, None, :]) ** 2).sum(axis=2)
        means = self.mu_max * np.exp(-dist2 / (2.0 * self.width**2))
        return x, best, means

    def _reset_runs(self, runs: np.ndarray) -> None:
        if self._fixed is not None:
            x, best, means = self._fixed
        else:
            x, best, means = self._draw_instance(self.np_random, runs.size)
        self.features[runs], self.best_arm[runs], self.means[runs] = x, best, means

    def _mean_rewards(self) -> np.ndarray:
        return self.means

    def _draw_rewards(self, means: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return (self.np_random.random(self.num_envs) < means[self._rows, actions]).astype(
            np.float64
        )

    def _observation(self) -> np.ndarray:
        return self.features.astype(np.float32)


class BernoulliBandit(SingleRunBandit):
    __doc__ = BernoulliBanditVec.__doc__
    vector_class = BernoulliBanditVec


class GaussianBandit(SingleRunBandit):
    __doc__ = GaussianBanditVec.__doc__
    vector_class = GaussianBanditVec


class SwitchingCostBandit(SingleRunBandit):
    __doc__ = SwitchingCostBanditVec.__doc__
    vector_class = SwitchingCostBanditVec


class PiecewiseStationaryBandit(SingleRunBandit):
    __doc__ = PiecewiseStationaryBanditVec.__doc__
    vector_class = PiecewiseStationaryBanditVec


class ContextualLinearBandit(SingleRunBandit):
    __doc__ = ContextualLinearBanditVec.__doc__
    vector_class = ContextualLinearBanditVec


class FeatureBandit(SingleRunBandit):
    __doc__ = FeatureBanditVec.__doc__
    vector_class = FeatureBanditVec
