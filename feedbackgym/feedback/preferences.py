"""Preference teachers over pairs of segments (B-Pref family, regret) and Plackett-Luce rankings."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from feedbackgym.errors import ConfigError, check_range
from feedbackgym.feedback.base import (
    EQUAL,
    FEEDBACK_MODELS,
    AdvantageFn,
    FeedbackModel,
    Segments,
    as_pair,
    as_segments,
    check_callable,
    register_feedback_model,
)
from feedbackgym.feedback.returns import advantages, check_q_values

INF = float("inf")
#: B-Pref's ratio of its "Skip" teacher (``teacher_eps_skip=0.1`` in its scripts): the skip
#: teacher's default with relative thresholds (``skip_threshold=None``).
BPREF_EPS_SKIP = 0.1


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow warnings."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


def myopic_weights(length: int, gamma: float) -> np.ndarray:
    """Weight ``gamma ** (L - 1 - t)`` of step ``t``: the last step of a segment weighs most."""
    return gamma ** np.arange(length - 1, -1, -1, dtype=np.float64)


class PreferenceModel(FeedbackModel):
    """Base of the pairwise teachers: ``prefer(a, b)`` labels which of two segments is better.

    Labels are floats: 1.0 when the first segment ``a`` is preferred, 0.0 when ``b`` is, 0.5
    ("equal") when the teacher finds them equally good, NaN when it skips the query. This is
    the target of the Bradley-Terry loss ``P(a > b)``.

    The simulated annotator follows the B-Pref teachers of Lee et al. (2021), "B-Pref:
    Benchmarking Preference-Based Reinforcement Learning", applied in their order:

    1. *skip*: when ``max(U_a, U_b) <= skip_threshold`` neither segment is good enough and the
       query is skipped;
    2. *equal*: when ``|U_a - U_b| < equal_threshold`` the answer is "equal";
    3. *choice*: Bradley-Terry / Boltzmann-rational, ``P(a > b) = sigmoid(beta (W_a - W_b))``,
       where ``W`` weighs step ``t`` by ``gamma ** (L - 1 - t)`` (myopic: recent steps weigh
       more); ``beta = inf`` always picks the better segment (ties answer "equal");
    4. *mistake*: with probability ``mistake`` the choice is flipped.

    ``U`` is the undiscounted utility of a segment and ``W`` its discounted utility; for the
    partial-return teachers the utility of a step is its reward (Christiano et al. 2017), for
    the regret teacher its optimal advantage (Knox et al. 2023).

    Thresholds come in two modes. By default (``relative_thresholds=False``) they are
    absolute, in units of the utility. With ``relative_thresholds=True`` they are B-Pref's
    ratios ``eps_skip`` and ``eps_equal`` and the thresholds used are, as in B-Pref's
    ``RewardModel.set_teacher_thres_skip`` / ``set_teacher_thres_equal`` and ``get_label``::

        margin      = (average step utility seen so far) * L      # L: this batch's length
        thres_skip  = skip_threshold * margin    # skip when max(U_a, U_b) <= thres_skip
        thres_equal = equal_threshold * margin   # "equal" when |U_a - U_b| < thres_equal

    and, as in B-Pref, a rule whose threshold is not positive is off (an average utility
    <= 0 switches both off). "Seen so far" is every step of every segment this teacher has
    been asked about, both sides, the batch being labelled included: B-Pref's margin is the
    mean true return of the agent's last 10 training episodes times ``segment / episode
    length``, but a teacher only sees the segments it is shown. See :meth:`thresholds`.

    Other deviations from B-Pref: labels say "first preferred" (B-Pref's 1 means the second);
    the oracle is ``beta = inf`` rather than B-Pref's ``beta <= 0`` (here ``beta = 0`` is a
    coin flip); an oracle tie answers "equal".

    :param beta: rationality, in [0, inf]; ``inf`` is the oracle.
    :param gamma: myopic discount, in (0, 1]; 1 weighs every step equally.
    :param mistake: probability of flipping the choice, in [0, 1].
    :param skip_threshold: skip a query when neither utility exceeds it (``-inf``: never);
        with ``relative_thresholds``, B-Pref's ratio ``eps_skip`` in [0, inf) (0 or ``-inf``:
        never). None: B-Pref's Skip teacher, 0 (absolute) or ``BPREF_EPS_SKIP`` = 0.1
        (relative).
    :param equal_threshold: answer "equal" when the utilities differ by less (0: never);
        with ``relative_thresholds``, B-Pref's ratio ``eps_equal`` >= 0.
    :param relative_thresholds: read both thresholds as B-Pref's ratios of the average
        segment utility seen so far (True) rather than as utilities (False).
    :param rng: a numpy Generator or an integer seed.
    """

    kind = "preference"
    # Class-level defaults: a teacher pickled (checkpointed) before relative thresholds
    # existed still loads, in absolute mode.
    relative_thresholds: bool = False
    _seen_utility: float = 0.0
    _seen_steps: int = 0

    def __init__(
        self,
        beta: float = INF,
        gamma: float = 1.0,
        mistake: float = 0.0,
        skip_threshold: float | None = -INF,
        equal_threshold: float = 0.0,
        relative_thresholds: bool = False,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(rng)
        self.beta = check_range("beta", beta, 0.0, allow_inf=True)
        self.gamma = check_range("gamma", gamma, 0.0, 1.0, low_open=True)
        self.mistake = check_range("mistake", mistake, 0.0, 1.0)
        if not isinstance(relative_thresholds, (bool, np.bool_)):
            raise ConfigError(
                f"relative_thresholds must be true or false, got {relative_thresholds!r}"
            )
        self.relative_thresholds = bool(relative_thresholds)
        if skip_threshold is None:
            skip_threshold = BPREF_EPS_SKIP if self.relative_thresholds else 0.0
        self.skip_threshold = check_range("skip_threshold", skip_threshold, high=INF)
        if self.skip_threshold == INF:
            raise ConfigError("skip_threshold must be in [-inf, inf), got inf")
        if self.relative_thresholds and -INF < self.skip_threshold < 0:
            raise ConfigError(
                "skip_threshold must be in [0, inf) or -inf with relative_thresholds (a ratio, "
                f"B-Pref's eps_skip), got {self.skip_threshold!r}"
            )
        self.equal_threshold = check_range("equal_threshold", equal_threshold, 0.0)
        # Relative thresholds: the utility summed over every step seen so far, and the count.
        self._seen_utility = 0.0
        self._seen_steps = 0

    def thresholds(self, length: int) -> tuple[float, float]:
        """``(skip, equal)`` thresholds, in utility units, for segments of ``length`` steps.

        Absolute mode: ``skip_threshold`` and ``equal_threshold``. Relative mode: each ratio
        times ``(average step utility seen so far) * length``; a threshold that is not
        positive (nothing seen yet, an average <= 0, a ratio of 0) switches its rule off and
        is returned as ``-inf`` (skip) or ``0`` (equal), the absolute values meaning "never".
        """
        if not self.relative_thresholds:
            return self.skip_threshold, self.equal_threshold
        if self._seen_steps == 0:
            return -INF, 0.0
        margin = self._seen_utility / self._seen_steps * length
        skip = -INF if self.skip_threshold == -INF else self.skip_threshold * margin
        equal = self.equal_threshold * margin
        return (skip if skip > 0 else -INF), (equal if equal > 0 else 0.0)

    def running_state(self) -> dict[str, Any]:
        """The utility seen so far (relative thresholds), so a log can restore it."""
        if not self.relative_thresholds:
            return {}
        return {"seen_utility": self._seen_utility, "seen_steps": self._seen_steps}

    def set_running_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`running_state` returned."""
        self._seen_utility = float(state.get("seen_utility", 0.0))
        self._seen_steps = int(state.get("seen_steps", 0))

    def step_utilities(self, segments: Segments) -> np.ndarray:
        """Utility of each step, shape ``(n, L)``: the reward (partial-return model)."""
        return segments.rewards

    def utilities(self, segments: Segments) -> tuple[np.ndarray, np.ndarray]:
        """``(U, W)``: undiscounted and myopically discounted utility of each segment."""
        steps = self.step_utilities(segments)
        total = steps.sum(axis=1)
        if self.gamma == 1.0:
            return total, total
        return total, steps @ myopic_weights(steps.shape[1], self.gamma)

    def probabilities(self, a: Segments | np.ndarray, b: Segments | np.ndarray) -> np.ndarray:
        """``P(a > b)`` of the choice step (before skip, equal and mistakes), shape ``(n,)``."""
        _, wa = self.utilities(as_segments(a))
        _, wb = self.utilities(as_segments(b))
        return self._choice_probability(wa - wb)

    def _choice_probability(self, diff: np.ndarray) -> np.ndarray:
        if self.beta == INF:
            return np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5))
        with np.errstate(invalid="ignore"):
            return sigmoid(self.beta * diff)

    def prefer(self, a: Segments | np.ndarray, b: Segments | np.ndarray) -> np.ndarray:
        """Label each pair ``(a[i], b[i])``: 1.0 a, 0.0 b, 0.5 equal, NaN skipped."""
        a, b = as_pair(a, b)
        labels = self._label(a, b)
        self._count(len(labels), int(np.count_nonzero(~np.isnan(labels))))
        self._record("prefer", lambda: {"a": a.to_dict(), "b": b.to_dict()}, labels)
        return labels

    def _label(self, a: Segments, b: Segments) -> np.ndarray:
        ua, wa = self.utilities(a)
        ub, wb = self.utilities(b)
        n = ua.shape[0]
        # Both uniforms are always drawn, so every beta consumes the generator alike
        # (beta -> inf then gives exactly the oracle's labels for the same seed).
        u_choice = self.rng.random(n)
        u_mistake = self.rng.random(n)
        p = self._choice_probability(wa - wb)
        if self.beta == INF:
            labels = p.copy()  # 1, 0, or 0.5 on an exact tie
        else:
            labels = (u_choice < p).astype(np.float64)
        flip = u_mistake < self.mistake
        labels = np.where(flip, 1.0 - labels, labels)
        if self.relative_thresholds:  # the teacher has now seen this batch's steps too
            self._seen_utility += float(ua.sum() + ub.sum())
            self._seen_steps += 2 * n * a.length
        skip_threshold, equal_threshold = self.thresholds(a.length)
        if equal_threshold > 0:
            labels[np.abs(ua - ub) < equal_threshold] = EQUAL
        if skip_threshold > -INF:
            labels[np.maximum(ua, ub) <= skip_threshold] = np.nan
        return labels


@register_feedback_model("bpref")
class BPrefTeacher(PreferenceModel):
    """B-Pref's simulated teachers (Lee et al. 2021), every knob at once; the defaults give the
    oracle, and each of B-Pref's teachers is a preset of this class (:data:`BPREF_PRESETS`):
    ``make_feedback_model("mistake")`` is ``BPrefTeacher(mistake=0.1)`` named ``mistake``.

    See :class:`PreferenceModel` for the model and its deviations from B-Pref.

    :param beta: rationality, in [0, inf].
    :param gamma: myopic discount, in (0, 1].
    :param mistake: probability of flipping the choice, in [0, 1].
    :param skip_threshold: skip when neither segment's return exceeds it (None: the Skip
        teacher's 0, or 0.1 with ``relative_thresholds``).
    :param equal_threshold: answer "equal" when the returns differ by less.
    :param relative_thresholds: both thresholds are B-Pref's ratios ``eps_skip`` and
        ``eps_equal`` of the average segment return seen so far (B-Pref's own rule).
    :param rng: a numpy Generator or an integer seed.
    """


#: B-Pref's teachers (Lee et al. 2021) by registry name: the :class:`BPrefTeacher` arguments in
#: which each differs from the oracle, and what it does. Each is registered as a preset.
BPREF_PRESETS: dict[str, tuple[dict[str, Any], str]] = {
    "oracle": (
        {},
        'B-Pref "Oracle": always prefers the segment with the larger return; ties answer "equal".',
    ),
    "stochastic": (
        {"beta": 1.0},
        'B-Pref "Stoc": Bradley-Terry choice, ``P(a > b) = sigmoid(beta (R_a - R_b))`` '
        "(Christiano et al. 2017), with rationality ``beta = 1``.",
    ),
    "mistake": (
        {"mistake": 0.1},
        'B-Pref "Mistake": the oracle\'s choice flipped with probability 0.1.',
    ),
    "skip": (
        {"skip_threshold": None},
        'B-Pref "Skip": skips a query unless some segment\'s return exceeds ``skip_threshold``: '
        "0 with absolute thresholds (set it to your env's reward scale), B-Pref's ``eps_skip`` "
        "= 0.1 times the average segment return seen so far with ``relative_thresholds``.",
    ),
    "equal": (
        {"equal_threshold": 0.1},
        'B-Pref "Equal": answers "equal" when the returns differ by less than 0.1, in units of '
        "the return (set it to your env's reward scale), or with ``relative_thresholds`` "
        "B-Pref's ``eps_equal`` = 0.1 times the average segment return seen so far.",
    ),
    "myopic": (
        {"gamma": 0.9},
        'B-Pref "Myopic": step ``t`` of ``L`` weighs ``0.9 ** (L - 1 - t)``.',
    ),
}
for _name, (_defaults, _) in BPREF_PRESETS.items():
    register_feedback_model(_name, BPrefTeacher, defaults=_defaults)


def bpref_preset(name: str) -> Callable[..., BPrefTeacher]:
    """The function that builds the preset ``name`` of :data:`BPREF_PRESETS`, with its defaults
    in its signature: the public name of a B-Pref teacher (``OracleTeacher(rng=0)`` is
    ``make_feedback_model("oracle", rng=0)``)."""
    defaults, doc = BPREF_PRESETS[name]

    def build(*args: Any, **kwargs: Any) -> BPrefTeacher:
        return FEEDBACK_MODELS.make(name, *args, **kwargs)  # type: ignore[return-value]

    signature = inspect.signature(BPrefTeacher)
    build.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[
            p.replace(default=defaults.get(p.name, p.default))
            for p in signature.parameters.values()
        ],
        return_annotation=BPrefTeacher,
    )
    build.__name__ = build.__qualname__ = f"{name.capitalize()}Teacher"
    build.__doc__ = f"{doc}\n\nA :class:`BPrefTeacher` registered as ``{name}``; same parameters."
    return build


def legacy_preset_class(name: str) -> type[BPrefTeacher]:
    """What a checkpoint written before the presets (each B-Pref teacher its own class, e.g.
    ``MistakeTeacher``) unpickles as: the object becomes a :class:`BPrefTeacher` named ``name``
    once its state is restored, as one built by ``make_feedback_model(name)`` is."""

    class LegacyPreset(BPrefTeacher):
        def __setstate__(self, state: dict[str, Any]) -> None:
            self.__dict__.update(state)
            self.__class__ = BPrefTeacher
            self.registry_name = name

    return LegacyPreset


OracleTeacher = bpref_preset("oracle")
StochasticTeacher = bpref_preset("stochastic")
MistakeTeacher = bpref_preset("mistake")
SkipTeacher = bpref_preset("skip")
EqualTeacher = bpref_preset("equal")
MyopicTeacher = bpref_preset("myopic")


@register_feedback_model("regret")
class RegretTeacher(PreferenceModel):
    """Regret preference model of Knox et al. (2023), "Learning Optimal Advantage from
    Preferences and Mistaking it for Reward": segments are compared by their summed optimal
    advantage ``sum_t A*(s_t, a_t) = -regret``, not by their partial return.

    ``P(a > b) = sigmoid(beta (sum A*(a) - sum A*(b)))``. The advantages come from, in order:
    ``advantage_fn(obs, actions)`` (any value function, e.g. a trained expert's critic), a
    tabular ``q_values[s, a]`` table, or an ``env`` with an ``optimal_values()`` method (the
    exact ``Q*`` of :class:`~feedbackgym.envs.gridworld.GridWorld`). Segments must then carry
    ``obs`` and ``actions``. The B-Pref knobs apply to the advantage sums; deviation: Knox et
    al. use no myopic discount, skip or equal answers (the defaults switch them off).

    :param beta: rationality, in [0, inf]; ``inf`` always picks the lower-regret segment.
    :param env: an env (or its unwrapped core) with ``optimal_values() -> (V*, Q*)``, or its
        id (``module:ID`` imports ``module`` first), e.g. ``"feedbackgym/GridWorld-v0"``.
    :param q_values: a ``(n_states, n_actions)`` table of ``Q*``.
    :param advantage_fn: ``f(obs, actions) -> A*`` of shape ``(n, L)``.
    :param gamma: myopic discount, in (0, 1].
    :param mistake: probability of flipping the choice, in [0, 1].
    :param skip_threshold: skip when neither advantage sum exceeds it.
    :param equal_threshold: answer "equal" when the advantage sums differ by less.
    :param relative_thresholds: thresholds as ratios of the average advantage sum seen so
        far (see :class:`PreferenceModel`); optimal advantages are <= 0, so this switches both
        rules off.
    :param rng: a numpy Generator or an integer seed.
    """

    def __init__(
        self,
        beta: float = 1.0,
        env: Any = None,
        q_values: np.ndarray | Sequence[Sequence[float]] | None = None,
        advantage_fn: AdvantageFn | None = None,
        gamma: float = 1.0,
        mistake: float = 0.0,
        skip_threshold: float = -INF,
        equal_threshold: float = 0.0,
        relative_thresholds: bool = False,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(
            beta=beta,
            gamma=gamma,
            mistake=mistake,
            skip_threshold=skip_threshold,
            equal_threshold=equal_threshold,
            relative_thresholds=relative_thresholds,
            rng=rng,
        )
        self.advantage_fn = check_callable("advantage_fn", advantage_fn)
        if q_values is None and isinstance(env, str):
            import gymnasium as gym

            from feedbackgym.envs import resolve_env_id

            env = gym.make(resolve_env_id(env))
        if q_values is None and env is not None:
            core = getattr(env, "unwrapped", env)
            if not hasattr(core, "optimal_values"):
                raise ConfigError(
                    "env must have an optimal_values() method (e.g. feedbackgym/GridWorld-v0); "
                    "else pass q_values or advantage_fn"
                )
            q_values = core.optimal_values()[1]
        if q_values is None and advantage_fn is None:
            raise ConfigError("the regret teacher needs one of env, q_values or advantage_fn")
        self.q_values = None if q_values is None else check_q_values(q_values)
        self.env = None  # described by q_values in config()

    def check_spaces(self, observation_space: Any, action_space: Any) -> None:
        """A ``Q*`` table (without ``advantage_fn``) needs Discrete spaces of its shape."""
        if self.advantage_fn is not None or self.q_values is None:
            return
        sizes = [getattr(space, "n", None) for space in (observation_space, action_space)]
        if None in sizes:
            raise ConfigError(
                f"the regret teacher's q_values table needs Discrete observations and actions, "
                f"this env has {observation_space} and {action_space}; give advantage_fn"
            )
        if tuple(int(n) for n in sizes) != self.q_values.shape:
            raise ConfigError(
                f"the regret teacher's q_values table has shape {self.q_values.shape}, this "
                f"env has {sizes[0]} states and {sizes[1]} actions"
            )

    def step_utilities(self, segments: Segments) -> np.ndarray:
        """Optimal advantage ``A*(s_t, a_t)`` of each step, shape ``(n, L)``."""
        if segments.obs is None or segments.actions is None:
            raise ConfigError("the regret teacher needs segments with obs and actions")
        if self.advantage_fn is not None:
            adv = np.asarray(self.advantage_fn(segments.obs, segments.actions), float)
            if adv.shape != segments.rewards.shape:
                raise ConfigError(
                    f"advantage_fn must return shape {segments.rewards.shape}, got {adv.shape}"
                )
            return adv
        return advantages(self.q_values, segments.obs, segments.actions)


@register_feedback_model("plackett-luce")
class PlackettLuceTeacher(PreferenceModel):
    """K-wise rankings of ``m`` segments under the Plackett-Luce model.

    ``P(ranking) = prod_k exp(beta W_(k)) / sum_{j >= k} exp(beta W_(j))`` over the segments'
    (myopically discounted) returns ``W``, sampled exactly with the Gumbel-max trick; the
    pairwise case is Bradley-Terry. As in Zhu, Jordan and Jiao (2023), "Principled
    Reinforcement Learning with Human Feedback from Pairwise or K-wise Comparisons". ``prefer``
    answers pairs like :class:`PreferenceModel`; ``beta = inf`` sorts by return (ties keep the
    given order). Deviation: no skip/equal answers in rankings.

    :param beta: rationality, in [0, inf].
    :param gamma: myopic discount, in (0, 1].
    :param mistake: probability of flipping a pairwise choice (``prefer`` only), in [0, 1].
    :param rng: a numpy Generator or an integer seed.
    """

    kind = "ranking"

    def __init__(
        self,
        beta: float = 1.0,
        gamma: float = 1.0,
        mistake: float = 0.0,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(beta, gamma, mistake, rng=rng)

    def rank(self, segments: Sequence[Segments | np.ndarray] | np.ndarray) -> np.ndarray:
        """Rank ``m`` segments per query: indices best first, shape ``(n, m)``.

        ``segments`` is an array of rewards of shape ``(n, m, L)`` or a list of ``m`` segment
        batches of ``n`` segments each.
        """
        if isinstance(segments, np.ndarray) and segments.ndim == 3:
            batches = [Segments(segments[:, k]) for k in range(segments.shape[1])]
        else:
            batches = [as_segments(s) for s in segments]
        if len(batches) < 2:
            raise ConfigError(f"rank needs at least 2 segments per query, got {len(batches)}")
        if len({s.rewards.shape for s in batches}) != 1:
            raise ConfigError("every segment batch given to rank must have the same shape")
        scores = np.stack([self.utilities(s)[1] for s in batches], axis=1)
        gumbel = self.rng.gumbel(size=scores.shape)
        if self.beta == INF:
            keys = scores
        else:
            keys = self.beta * scores + gumbel
        ranking = np.argsort(-keys, axis=1, kind="stable")
        self._count(ranking.shape[0], ranking.shape[0])
        self._record("rank", lambda: {"segments": [s.to_dict() for s in batches]}, ranking)
        return ranking
