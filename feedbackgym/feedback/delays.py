"""Delayed delivery of feedback (fixed, geometric, uniform, batched, episode-end) and hindsight."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from feedbackgym.errors import ConfigError, check_positive_int, check_range
from feedbackgym.feedback.base import (
    FeedbackModel,
    Segments,
    as_generator,
    as_segments,
    check_int,
    inner_model,
    register_feedback_model,
)
from feedbackgym.feedback.preferences import StochasticTeacher
from feedbackgym.feedback.returns import hindsight_returns as hindsight_returns  # re-exported
from feedbackgym.registry import Registry

DELAYS: Registry[Delay] = Registry("delay")


class Delay:
    """How long a piece of feedback is held: ``release_steps(steps, rng)`` -> release steps.

    As in the delayed-feedback bandit literature (Joulani, Gyorgy and Szepesvari 2013, "Online
    Learning under Delayed Feedback"), the delay of each item is drawn independently of the
    learner; the item made at step ``t`` is released at the first step ``>= t + delay``.
    ``inf`` means "at the end of the episode".
    """

    registry_name: ClassVar[str] = ""

    def release_steps(self, steps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Release step of items made at ``steps`` (float array; ``inf``: episode end)."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """The delay as a JSON-ready dict."""
        return {"name": self.registry_name, **{k: v for k, v in vars(self).items()}}


@DELAYS.register("fixed")
class FixedDelay(Delay):
    """Every item is released exactly ``delay`` steps after it was made.

    :param delay: steps to wait, an integer >= 0.
    """

    def __init__(self, delay: int = 1) -> None:
        self.delay = check_int("delay", delay, 0)

    def release_steps(self, steps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(steps, dtype=np.float64) + self.delay


@DELAYS.register("geometric")
class GeometricDelay(Delay):
    """Delays drawn from a geometric law on {0, 1, 2, ...} with success probability ``p``.

    The mean delay is ``(1 - p) / p`` (memoryless, as in Joulani et al. 2013's random delays).

    :param p: success probability per step, in (0, 1].
    """

    def __init__(self, p: float = 0.5) -> None:
        self.p = check_range("p", p, 0.0, 1.0, low_open=True)

    def release_steps(self, steps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        steps = np.asarray(steps, dtype=np.float64)
        return steps + rng.geometric(self.p, size=steps.shape) - 1


@DELAYS.register("uniform")
class UniformDelay(Delay):
    """Delays drawn uniformly from the integers ``low .. high`` (both included).

    :param low: shortest delay, an integer >= 0.
    :param high: longest delay, an integer >= low.
    """

    def __init__(self, low: int = 0, high: int = 10) -> None:
        self.low = check_int("low", low, 0)
        self.high = check_int("high", high, self.low)

    def release_steps(self, steps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        steps = np.asarray(steps, dtype=np.float64)
        return steps + rng.integers(self.low, self.high + 1, size=steps.shape)


@DELAYS.register("batched")
class BatchedDelay(Delay):
    """Feedback is logged and released in batches: at every ``period``-th step, all at once.

    Models batch-logged delayed feedback, as in "Contextual Bandits in Payment Processing"
    (Adyen): an item made at step ``t`` is released at step ``(t // period + 1) * period``.

    :param period: steps between two releases, a positive integer.
    """

    def __init__(self, period: int = 10) -> None:
        self.period = check_positive_int("period", period)

    def release_steps(self, steps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        steps = np.asarray(steps, dtype=np.float64)
        return (np.floor(steps / self.period) + 1) * self.period


@DELAYS.register("episode-end")
class EpisodeEndDelay(Delay):
    """All feedback of an episode is released together when the episode ends."""

    def release_steps(self, steps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.full(np.shape(steps), np.inf)


def make_delay(name: str, **params: Any) -> Delay:
    """Build the delay registered as ``name``: fixed, geometric, uniform, batched, episode-end."""
    return DELAYS.make(name, **params)


class DelayQueue:
    """Holds feedback items until their release step; every item is delivered exactly once.

    ``push(items, step)`` draws the items' release steps from ``delay``; ``pop(step)``
    returns the items due at ``step`` (in release order, ties in push order);
    ``pop(step, episode_end=True)`` also releases the items held for the episode's end, and
    ``flush()`` everything still held.

    :param delay: a :class:`Delay` or its registry name.
    :param rng: a numpy Generator or an integer seed (for random delays).
    """

    def __init__(self, delay: Delay | str, rng: np.random.Generator | int | None = None) -> None:
        self.delay = make_delay(delay) if isinstance(delay, str) else delay
        if not isinstance(self.delay, Delay):
            raise ConfigError(f"delay must be a Delay or one of {', '.join(DELAYS.names())}")
        self.rng = as_generator(rng)
        self._items: list[Any] = []
        self._release = np.empty(0)
        self._order = np.empty(0, dtype=np.int64)
        self.pushed = 0
        self.delivered = 0

    def __len__(self) -> int:
        return len(self._items)

    def push(self, items: list[Any], step: int | np.ndarray, release: Any = None) -> None:
        """Hold ``items`` made at ``step`` (one step for all, or one per item).

        ``release`` overrides the drawn release steps (e.g. a teacher's own reaction lag).
        """
        if not items:
            return
        steps = np.broadcast_to(np.asarray(step, dtype=np.float64), (len(items),))
        if release is None:
            release = self.delay.release_steps(steps, self.rng)
        release = np.broadcast_to(np.asarray(release, dtype=np.float64), (len(items),))
        self._items.extend(items)
        self._release = np.concatenate([self._release, release])
        self._order = np.concatenate([self._order, self.pushed + np.arange(len(items))])
        self.pushed += len(items)

    def pop(self, step: int, episode_end: bool = False) -> list[Any]:
        """Items due at ``step`` (and, at an episode's end, those held for it)."""
        due = self._release <= step
        if episode_end:
            due |= np.isinf(self._release)
        return self._take(due)

    def flush(self) -> list[Any]:
        """Every item still held (e.g. when the run ends)."""
        return self._take(np.ones(len(self._items), dtype=bool))

    def _take(self, due: np.ndarray) -> list[Any]:
        if not due.any():
            return []
        index = np.flatnonzero(due)
        index = index[np.lexsort((self._order[index], self._release[index]))]
        out = [self._items[i] for i in index]
        keep = np.flatnonzero(~due)
        self._items = [self._items[i] for i in keep]
        self._release = self._release[keep]
        self._order = self._order[keep]
        self.delivered += len(out)
        return out


@register_feedback_model("hindsight")
class HindsightTeacher(FeedbackModel):
    """Hindsight preference feedback (RLHS, Liang et al. 2025): judge after the consequences.

    A foresight annotator compares two segments by what it sees in them; a hindsight one is
    also shown what followed each segment (``a_after``, ``b_after``: the next steps of the
    same trajectories) and judges the whole. ``teacher`` (any pairwise model) makes the
    choice. Deviation: RLHS simulates the consequences with a world model; here they are the
    steps that really followed, which the caller passes.

    Built by name, ``teacher`` is a registry name or a config, e.g. ``{"teacher": {"name":
    "mistake", "mistake": 0.1}}``.

    :param teacher: the pairwise model that judges (e.g. ``StochasticTeacher``), its registry
        name or its config dict (None: a ``stochastic`` teacher with ``beta=1`` sharing this
        model's generator).
    :param rng: seeds a teacher given as a name or config (and the default one).
    """

    kind = "preference"

    def __init__(self, teacher: Any = None, rng: np.random.Generator | int | None = None) -> None:
        super().__init__(rng)
        if teacher is None:
            teacher = StochasticTeacher(rng=self.rng)
        elif isinstance(teacher, (dict, str)):
            own_seed = isinstance(teacher, dict) and teacher.get("rng") is not None
            teacher = inner_model(
                teacher, "hindsight's teacher", None if own_seed else self._child_seed()
            )
        else:
            teacher = inner_model(teacher, "hindsight's teacher")
        if not hasattr(teacher, "prefer"):
            raise ConfigError(
                f"hindsight's teacher ({_name(teacher)}) gives {getattr(teacher, 'kind', '')} "
                "feedback; it must answer pairwise preferences"
            )
        self.teacher = teacher

    def check_spaces(self, observation_space: Any, action_space: Any) -> None:
        check = getattr(self.teacher, "check_spaces", None)
        if check is not None:
            check(observation_space, action_space)

    def prefer(
        self,
        a: Segments | np.ndarray,
        b: Segments | np.ndarray,
        a_after: Segments | np.ndarray | None = None,
        b_after: Segments | np.ndarray | None = None,
    ) -> np.ndarray:
        """Label pairs judged on ``a + a_after`` vs ``b + b_after`` (foresight when omitted)."""
        a, b = as_segments(a), as_segments(b)
        if (a_after is None) != (b_after is None):
            raise ConfigError("pass both a_after and b_after (hindsight) or neither (foresight)")
        if a_after is not None:
            a = _concat(a, as_segments(a_after))
            b = _concat(b, as_segments(b_after))
        labels = self.teacher.prefer(a, b)
        self._count(len(labels), int(np.count_nonzero(~np.isnan(labels))))
        self._record("prefer", lambda: {"a": a.to_dict(), "b": b.to_dict()}, labels)
        return labels


def _name(model: Any) -> str:
    return getattr(model, "registry_name", "") or type(model).__name__


def _concat(first: Segments, then: Segments) -> Segments:
    def join(x: np.ndarray | None, y: np.ndarray | None) -> np.ndarray | None:
        return None if x is None or y is None else np.concatenate([x, y], axis=1)

    if len(first) != len(then):
        raise ConfigError("consequences must hold one row per segment")
    return Segments(
        np.concatenate([first.rewards, then.rewards], axis=1),
        join(first.obs, then.obs),
        join(first.actions, then.actions),
    )
