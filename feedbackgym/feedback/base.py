"""The feedback-model interface, the segment batches it reads, and the feedback-model registry."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from feedbackgym.errors import ConfigError
from feedbackgym.registry import Registry

#: Preference labels: the probability-style target "P(first segment is preferred)".
A_PREFERRED = 1.0
B_PREFERRED = 0.0
EQUAL = 0.5
#: A skipped query is labelled NaN (the annotator declined to answer; B-Pref "skip").
SKIPPED = float("nan")

FEEDBACK_MODELS: Registry[FeedbackModel] = Registry("feedback model")


def register_feedback_model(
    name: str, cls: type[FeedbackModel] | None = None, **kwargs: Any
) -> Any:
    """Add a feedback-model class to the registry under ``name`` (also usable as a decorator)."""
    return FEEDBACK_MODELS.register(name, cls, **kwargs)


def make_feedback_model(name: str, rng: Any = None, **params: Any) -> FeedbackModel:
    """Build the feedback model registered as ``name``; unknown keywords raise ConfigError."""
    return FEEDBACK_MODELS.make(name, rng=rng, **params)


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A numpy Generator from a Generator, an integer seed or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise ConfigError(f"rng must be a numpy Generator, an integer seed or None, got {rng!r}")


@dataclass
class Segments:
    """A batch of ``n`` trajectory segments of length ``L`` (what a teacher is shown).

    :param rewards: true reward of each step, shape ``(n, L)`` (hidden from the learner).
    :param obs: observation of each step, shape ``(n, L)`` for discrete states or ``(n, L, d)``.
    :param actions: action of each step, shape ``(n, L)`` or ``(n, L, k)``.
    """

    rewards: np.ndarray
    obs: np.ndarray | None = None
    actions: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.rewards = np.asarray(self.rewards, dtype=np.float64)
        if self.rewards.ndim == 1:
            self.rewards = self.rewards[None, :]
        if self.rewards.ndim != 2:
            raise ConfigError(
                f"segment rewards must have shape (n, length), got shape {self.rewards.shape}"
            )
        for name in ("obs", "actions"):
            value = getattr(self, name)
            if value is None:
                continue
            value = np.asarray(value)
            if value.shape[:2] != self.rewards.shape:
                raise ConfigError(
                    f"segment {name} must start with shape {self.rewards.shape} like the "
                    f"rewards, got {value.shape}"
                )
            setattr(self, name, value)

    def __len__(self) -> int:
        return self.rewards.shape[0]

    @property
    def length(self) -> int:
        """Number of steps per segment."""
        return self.rewards.shape[1]

    def take(self, index: np.ndarray) -> Segments:
        """The segments selected by ``index`` (an integer or boolean array)."""
        return Segments(
            self.rewards[index],
            None if self.obs is None else self.obs[index],
            None if self.actions is None else self.actions[index],
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready lists (for the feedback log)."""
        out: dict[str, Any] = {"rewards": self.rewards.tolist()}
        if self.obs is not None:
            out["obs"] = self.obs.tolist()
        if self.actions is not None:
            out["actions"] = self.actions.tolist()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segments:
        """Inverse of :meth:`to_dict`."""
        return cls(
            np.asarray(data["rewards"], dtype=np.float64),
            None if data.get("obs") is None else np.asarray(data["obs"]),
            None if data.get("actions") is None else np.asarray(data["actions"]),
        )


def as_segments(value: Segments | np.ndarray | Any) -> Segments:
    """Segments as given, or built from an array of rewards of shape ``(n, L)``."""
    return value if isinstance(value, Segments) else Segments(np.asarray(value, dtype=np.float64))


def as_pair(a: Segments | np.ndarray, b: Segments | np.ndarray) -> tuple[Segments, Segments]:
    """The two sides of pairwise queries as Segments; sides of different shapes are a
    one-line ConfigError."""
    a, b = as_segments(a), as_segments(b)
    if a.rewards.shape != b.rewards.shape:
        raise ConfigError(
            f"segments a and b must have the same shape, got {a.rewards.shape} and "
            f"{b.rewards.shape}"
        )
    return a, b


class FeedbackSink(Protocol):
    """Where a model's batches go once :meth:`FeedbackModel.attach_log` is called: what
    :class:`~feedbackgym.feedback.log.FeedbackLog` offers. Declared here so that this module
    needs nothing from the log module (which builds on this one)."""

    path: Path

    def add_model(self, model: FeedbackModel) -> int: ...

    def append(
        self, model_id: int | None, kind: str, verb: str, query: Any, answer: Any
    ) -> None: ...


class FeedbackModel:
    """Base class of every simulated (or learned, or replayed) annotator.

    A feedback model answers batches of queries with numpy, drawing all randomness from one
    ``np.random.Generator`` so equal seeds give equal answers. It counts what it is asked
    (``queries``: items shown, skipped ones included; ``answered``: items given a label),
    describes itself with :meth:`config`, and appends every batch of queries and answers to a
    :class:`~feedbackgym.feedback.log.FeedbackLog` once :meth:`attach_log` is called.

    Subclasses set ``kind`` (``"preference"``, ``"ranking"``, ``"score"`` or ``"correction"``),
    keep every constructor argument as an attribute of the same name (so :meth:`config` can
    read it back), and implement the verb of their kind: ``prefer``, ``rank``, ``score`` or
    ``correct``.

    :param rng: a numpy Generator or an integer seed (None: fresh entropy).
    """

    kind: ClassVar[str] = ""
    registry_name: ClassVar[str] = ""
    #: Keyword arguments that build the model by name, as JSON (``--teacher-kwargs``), for the
    #: message when a required one is missing; None when every argument has a default.
    example: ClassVar[str | None] = None

    def __init__(self, rng: np.random.Generator | int | None = None) -> None:
        self.seed = rng if isinstance(rng, (int, np.integer)) else None
        self.rng = as_generator(rng)
        self.queries = 0
        self.answered = 0
        self.log: FeedbackSink | None = None
        self._log_id: int | None = None

    def config(self) -> dict[str, Any]:
        """The model as a JSON-ready dict: ``{"name": ..., <constructor arguments>}``.

        Arrays become lists and callables their qualified name (a callable cannot be rebuilt
        from its name: pass it again when rebuilding). ``rng`` is the integer seed when one
        was given, else None; a log also stores the generator's state.
        """
        out: dict[str, Any] = {"name": self.registry_name or type(self).__name__}
        for name in inspect.signature(type(self).__init__).parameters:
            if name in ("self", "args", "kwargs"):
                continue
            value = self.seed if name == "rng" else getattr(self, name, None)
            out[name] = _jsonable(value)
        return out

    def attach_log(self, log: FeedbackSink) -> FeedbackModel:
        """Append this model's description, then every batch it answers, to ``log``."""
        self.log = log
        self._log_id = log.add_model(self)
        return self

    def check_spaces(self, observation_space: Any, action_space: Any) -> None:
        """Raise a one-line ConfigError when this model cannot answer queries about steps of
        these Gymnasium spaces (e.g. a learned teacher fitted to another env's steps, or none).
        A training run calls it with its env's spaces before it writes anything. Models that
        judge steps by their rewards alone accept any spaces (this default); models that wrap
        others ask them too."""

    def running_state(self) -> dict[str, Any]:
        """What the model keeps from the queries it has answered, besides its generator (e.g.
        the returns a teacher with relative thresholds has seen), JSON-ready; ``{}`` when
        nothing. A log records it with the model's description, and
        :func:`~feedbackgym.feedback.log.rebuild_models` restores it."""
        return {}

    def set_running_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`running_state` returned."""

    def _child_seed(self) -> int:
        """A seed for a model this one builds from a config (panel members, inner teachers),
        drawn from this model's generator so one seed reproduces the whole assembly."""
        return int(self.rng.integers(2**63))

    def _count(self, n_items: int, n_answered: int) -> None:
        self.queries += int(n_items)
        self.answered += int(n_answered)

    def _record(
        self, verb: str, query: dict[str, Any] | Callable[[], dict[str, Any]], answer: Any
    ) -> None:
        """Log a batch; ``query`` may be a callable, so unlogged runs never serialise it."""
        if self.log is not None:
            query = query() if callable(query) else query
            self.log.append(self._log_id, self.kind, verb, query, answer)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)  # "inf", "-inf", "nan": valid JSON, parsed back by from_config
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, FeedbackModel):
        return value.config()
    if callable(value):
        return f"{getattr(value, '__module__', '?')}:{getattr(value, '__qualname__', value)}"
    return value


def from_config(config: dict[str, Any], rng: Any = None, **overrides: Any) -> FeedbackModel:
    """Rebuild a model from :meth:`FeedbackModel.config` (``overrides`` replace arguments)."""
    params = {k: v for k, v in config.items() if k != "name"}
    for name, value in params.items():
        if isinstance(value, str) and value in ("inf", "-inf", "nan"):
            params[name] = float(value)
    params.update(overrides)
    if rng is not None or "rng" not in params:
        params["rng"] = rng
    return FEEDBACK_MODELS.make(config["name"], **params)


#: The verbs a feedback model answers with, one per kind.
VERBS = ("prefer", "rank", "score", "correct")
#: How a wrapped model is written in a config, for messages.
INNER_FORMS = (
    'a feedback model\'s name ("oracle") or its config {"name": NAME, <its parameters>}, '
    'e.g. {"name": "mistake", "mistake": 0.1}'
)


def inner_model(value: Any, where: str, rng: Any = None) -> FeedbackModel:
    """The model a wrapping teacher (``budget``, ``panel``, ``hindsight``) wraps, given as a
    :class:`FeedbackModel` (or any object with a feedback verb), a registry name
    (``"oracle"``) or a config dict (``{"name": "mistake", "mistake": 0.2}``, what
    :meth:`FeedbackModel.config` returns). Any other form, an unknown name or a bad parameter
    of it is a one-line ConfigError that starts with ``where`` (e.g. ``"budget's model"``).
    ``rng`` seeds a model built from a name or config (a config's own ``rng`` is kept when
    ``rng`` is None)."""
    if isinstance(value, FeedbackModel) or any(hasattr(value, verb) for verb in VERBS):
        return value
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ConfigError(f"{where} must be {INNER_FORMS}; got {value!r}")
    try:
        return from_config(value, rng=rng)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def read_yaml(path: str | Path, what: str) -> Any:
    """The YAML document in ``path``; an unreadable file or bad YAML is a one-line ConfigError
    naming ``what`` the file is (e.g. "config", "templates file") and, for YAML, the line."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or type(err).__name__
        raise ConfigError(f"{what} {str(path)!r} cannot be read: {reason}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{what} {str(path)!r} is not valid YAML{where}") from None


def check_choice(name: str, value: Any, valid: tuple[str, ...] | list[str]) -> str:
    """Return ``value`` when it is one of ``valid``, else raise a one-line ConfigError."""
    if value not in valid:
        raise ConfigError(f"{name} must be one of {', '.join(map(repr, valid))}, got {value!r}")
    return value


def check_int(name: str, value: Any, low: int) -> int:
    """Return ``value`` when it is an integer >= ``low``, else raise a one-line ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def check_callable(name: str, value: Any) -> Any:
    """Return ``value`` when it is None or callable; a name read back from a config is not."""
    if value is not None and not callable(value):
        raise ConfigError(
            f"{name} must be a callable (a config holds only its name {value!r}: pass it again)"
        )
    return value


AdvantageFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
