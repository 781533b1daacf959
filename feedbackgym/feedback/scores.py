"""Scalar feedback per step: TAMER-style scores and COACH-style policy-dependent signs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from feedbackgym.errors import ConfigError, check_range
from feedbackgym.feedback.base import (
    AdvantageFn,
    FeedbackModel,
    Segments,
    as_segments,
    check_callable,
    check_choice,
    check_int,
    register_feedback_model,
)
from feedbackgym.feedback.returns import advantages, check_q_values, hindsight_returns


class Scores(NamedTuple):
    """Answers of a score teacher for ``n`` trajectories of ``T`` judged steps.

    :param value: feedback about step ``t`` of each trajectory, NaN where none is given.
    :param arrival: step at which that feedback reaches the learner (``t`` + hindsight + lag).
    """

    value: np.ndarray
    arrival: np.ndarray


class ScoreModel(FeedbackModel):
    """Base of the per-step score teachers.

    ``score(trajectories)`` judges each step of each trajectory. A person does not react to
    every step: feedback is given with probability ``feedback_prob`` and reaches the learner
    after a reaction lag drawn uniformly from ``min_lag .. max_lag`` steps (Deep TAMER,
    Warnell et al. 2018, models a 0.2-4 s human reaction window). With ``hindsight = h`` the
    teacher judges step ``t`` after seeing its ``h`` following steps (RLHS), so the feedback
    cannot arrive before ``t + h``.

    :param feedback_prob: probability of giving feedback at a step, in [0, 1].
    :param min_lag: shortest reaction lag in steps, an integer >= 0.
    :param max_lag: longest reaction lag in steps, an integer >= min_lag.
    :param hindsight: steps of consequences seen before judging, an integer >= 0.
    :param rng: a numpy Generator or an integer seed.
    """

    kind = "score"

    def __init__(
        self,
        feedback_prob: float = 1.0,
        min_lag: int = 0,
        max_lag: int = 0,
        hindsight: int = 0,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(rng)
        self.feedback_prob = check_range("feedback_prob", feedback_prob, 0.0, 1.0)
        self.min_lag = check_int("min_lag", min_lag, 0)
        self.max_lag = check_int("max_lag", max_lag, self.min_lag)
        self.hindsight = check_int("hindsight", hindsight, 0)

    def _signal(self, trajectories: Segments, policy: Any) -> np.ndarray:
        """The noiseless per-step quantity the teacher reacts to, shape ``(n, T)``."""
        raise NotImplementedError

    def _answer(self, signal: np.ndarray) -> np.ndarray:
        """Turn the signal into the person's feedback (noise, discretisation)."""
        raise NotImplementedError

    def score(
        self,
        trajectories: Segments | np.ndarray,
        judge: int | None = None,
        policy: np.ndarray | None = None,
    ) -> Scores:
        """Feedback about the first ``judge`` steps of each trajectory (default: every step).

        Steps after the judged ones serve only as consequences for a hindsight teacher.
        ``policy`` (COACH) is the learner's current policy ``pi[s, a]``.
        """
        trajectories = as_segments(trajectories)
        n, length = trajectories.rewards.shape
        judge = length if judge is None else check_int("judge", judge, 0)
        if judge > length:
            raise ConfigError(f"judge must be in [0, {length}], got {judge}")
        signal = self._signal(trajectories, policy)[:, :judge]
        values = self._answer(signal)
        given = self.rng.random((n, judge)) < self.feedback_prob
        lag = self.rng.integers(self.min_lag, self.max_lag + 1, size=(n, judge))
        values = np.where(given & ~np.isnan(values), values, np.nan)
        arrival = np.arange(judge)[None, :] + self.hindsight + lag
        self._count(n * judge, int(np.count_nonzero(~np.isnan(values))))
        scores = Scores(values, arrival)
        self._record(
            "score", lambda: {"trajectories": trajectories.to_dict(), "judge": judge}, scores
        )
        return scores


@register_feedback_model("tamer")
class TamerTeacher(ScoreModel):
    """TAMER-style scalar feedback (Knox and Stone 2009; Deep TAMER, Warnell et al. 2018).

    The person's score of step ``t`` is ``scale * signal_t + noise`` with Gaussian noise of
    std ``noise``, where the signal is the hidden reward (``source="reward"``) or the optimal
    advantage ``A*(s_t, a_t)`` (``source="advantage"``, from ``q_values``, ``env`` or
    ``advantage_fn`` as for the regret teacher); with ``hindsight = h`` the reward signal is
    the discounted return of the ``h + 1`` steps from ``t`` (RLHS). ``discrete=True`` gives the
    sign only (+1/-1 key presses, 0 becomes "no feedback"). Sparsity and reaction lag: see
    :class:`ScoreModel`. Deviation: TAMER's humans are real; this one's lag is in steps, not
    seconds.

    :param source: "reward" or "advantage".
    :param scale: factor from signal to score, > 0.
    :param noise: std of the Gaussian noise on the score, >= 0.
    :param discrete: give the sign of the score only.
    :param gamma: discount of the hindsight return, in [0, 1].
    :param env: an env with ``optimal_values()`` (for ``source="advantage"``).
    :param q_values: a ``(n_states, n_actions)`` table of ``Q*``.
    :param advantage_fn: ``f(obs, actions) -> A`` of shape ``(n, T)``.
    :param feedback_prob: probability of giving feedback at a step, in [0, 1].
    :param min_lag: shortest reaction lag in steps.
    :param max_lag: longest reaction lag in steps.
    :param hindsight: steps of consequences seen before judging.
    :param rng: a numpy Generator or an integer seed.
    """

    def __init__(
        self,
        source: str = "reward",
        scale: float = 1.0,
        noise: float = 0.0,
        discrete: bool = False,
        gamma: float = 1.0,
        env: Any = None,
        q_values: np.ndarray | Sequence[Sequence[float]] | None = None,
        advantage_fn: AdvantageFn | None = None,
        feedback_prob: float = 1.0,
        min_lag: int = 0,
        max_lag: int = 0,
        hindsight: int = 0,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(feedback_prob, min_lag, max_lag, hindsight, rng)
        self.source = check_choice("source", source, ("reward", "advantage"))
        self.scale = check_range("scale", scale, 0.0, low_open=True)
        self.noise = check_range("noise", noise, 0.0)
        self.discrete = bool(discrete)
        self.gamma = check_range("gamma", gamma, 0.0, 1.0)
        self.advantage_fn = check_callable("advantage_fn", advantage_fn)
        self.q_values = _q_from(env, q_values)
        self.env = None
        if self.source == "advantage" and self.q_values is None and advantage_fn is None:
            raise ConfigError('source="advantage" needs one of env, q_values or advantage_fn')

    def _signal(self, trajectories: Segments, policy: Any) -> np.ndarray:
        if self.source == "reward":
            return hindsight_returns(trajectories.rewards, self.hindsight, self.gamma)
        return _advantage(self, trajectories)

    def _answer(self, signal: np.ndarray) -> np.ndarray:
        values = self.scale * signal + self.noise * self.rng.standard_normal(signal.shape)
        if self.discrete:
            values = np.sign(values)
            values[values == 0] = np.nan
        return values


@register_feedback_model("coach")
class CoachTeacher(ScoreModel):
    """COACH-style policy-dependent feedback (MacGlashan et al. 2017, "Interactive Learning
    from Policy-Dependent Human Feedback"): +1 or -1, the sign of the advantage ``A^pi(s, a)``
    of the chosen action under the learner's *current* policy.

    With ``policy`` passed to :meth:`score` and a tabular ``env`` (``policy_values``), ``A^pi``
    is exact; otherwise the advantage comes from ``advantage_fn`` (e.g. the learner's critic)
    or the optimal ``Q*`` of ``env`` / ``q_values`` (deviation: ``A*`` instead of ``A^pi``).
    Advantages within ``tolerance`` of 0 get no feedback; a ``mistake`` fraction of signs is
    flipped. Sparsity and reaction lag: see :class:`ScoreModel`.

    :param env: an env with ``policy_values(pi)`` and/or ``optimal_values()``.
    :param q_values: a ``(n_states, n_actions)`` Q table used when no policy is given.
    :param advantage_fn: ``f(obs, actions) -> A`` of shape ``(n, T)``.
    :param tolerance: advantages with ``|A| <= tolerance`` get no feedback, >= 0.
    :param mistake: probability of flipping the sign, in [0, 1].
    :param feedback_prob: probability of giving feedback at a step, in [0, 1].
    :param min_lag: shortest reaction lag in steps.
    :param max_lag: longest reaction lag in steps.
    :param hindsight: steps of consequences seen before judging (delays arrival only).
    :param rng: a numpy Generator or an integer seed.
    """

    def __init__(
        self,
        env: Any = None,
        q_values: np.ndarray | Sequence[Sequence[float]] | None = None,
        advantage_fn: AdvantageFn | None = None,
        tolerance: float = 1e-9,
        mistake: float = 0.0,
        feedback_prob: float = 1.0,
        min_lag: int = 0,
        max_lag: int = 0,
        hindsight: int = 0,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(feedback_prob, min_lag, max_lag, hindsight, rng)
        self.tolerance = check_range("tolerance", tolerance, 0.0)
        self.mistake = check_range("mistake", mistake, 0.0, 1.0)
        self.advantage_fn = check_callable("advantage_fn", advantage_fn)
        self._core = None if env is None else getattr(env, "unwrapped", env)
        self.q_values = None if q_values is None else check_q_values(q_values)
        if self.q_values is None and advantage_fn is None:
            if self._core is None:
                raise ConfigError("the coach teacher needs one of env, q_values or advantage_fn")
            if hasattr(self._core, "optimal_values"):
                self.q_values = self._core.optimal_values()[1]
        self.env = None

    def _signal(self, trajectories: Segments, policy: Any) -> np.ndarray:
        if policy is not None:
            if self._core is None or not hasattr(self._core, "policy_values"):
                raise ConfigError("a policy needs an env with policy_values() (e.g. GridWorld)")
            policy = np.asarray(policy, dtype=np.float64)
            _, q_pi = self._core.policy_values(policy)
            if trajectories.obs is None or trajectories.actions is None:
                raise ConfigError("the coach teacher needs trajectories with obs and actions")
            obs, actions = trajectories.obs, trajectories.actions
            # A^pi(s, a) = Q^pi(s, a) - sum_a' pi(a'|s) Q^pi(s, a')
            return q_pi[obs, actions] - (policy * q_pi).sum(axis=1)[obs]
        if self.q_values is None and self.advantage_fn is None:
            raise ConfigError("this coach teacher needs the learner's policy in score()")
        return _advantage(self, trajectories)

    def _answer(self, signal: np.ndarray) -> np.ndarray:
        values = np.where(np.abs(signal) <= self.tolerance, np.nan, np.sign(signal))
        flip = self.rng.random(signal.shape) < self.mistake
        return np.where(flip, -values, values)


def _q_from(env: Any, q_values: Any) -> np.ndarray | None:
    if q_values is not None:
        return check_q_values(q_values)
    if env is None:
        return None
    core = getattr(env, "unwrapped", env)
    if not hasattr(core, "optimal_values"):
        raise ConfigError(
            "env must have an optimal_values() method (e.g. feedbackgym/GridWorld-v0)"
        )
    return core.optimal_values()[1]


def _advantage(model: Any, trajectories: Segments) -> np.ndarray:
    if trajectories.obs is None or trajectories.actions is None:
        raise ConfigError("advantage feedback needs trajectories with obs and actions")
    if model.advantage_fn is not None:
        adv = np.asarray(model.advantage_fn(trajectories.obs, trajectories.actions), float)
        if adv.shape != trajectories.rewards.shape:
            raise ConfigError(
                f"advantage_fn must return shape {trajectories.rewards.shape}, got {adv.shape}"
            )
        return adv
    return advantages(model.q_values, trajectories.obs, trajectories.actions)
