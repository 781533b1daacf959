"""JSONL logs of every feedback query and answer, and replaying a run from such a log."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import IO, Any

import numpy as np

from feedbackgym.errors import ConfigError
from feedbackgym.feedback.base import (
    FeedbackModel,
    Segments,
    as_segments,
    from_config,
    register_feedback_model,
)
from feedbackgym.feedback.scores import Scores

LOG_VERSION = 1


def _encode(value: Any) -> Any:
    """JSON-ready answer: arrays to lists, NaN to null."""
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # Scores
        return {field: _encode(getattr(value, field)) for field in value._fields}
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            return np.where(np.isnan(value), None, value).tolist()
        return value.tolist()
    return value


def _fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class FeedbackLog:
    """Appends feedback to a JSONL file, one line per model and one per answered batch.

    Lines are ``{"type": "model", "model": id, "config": ..., "rng_state": ...}`` when a model
    is attached (its description and the state of its generator at that moment) and ``{"type":
    "batch", "model": id, "kind", "verb", "batch", "query", "answer", "fingerprint"}`` per
    batch. Each line is written and flushed at once (``fsync=True`` also forces it to disk), so
    a crash loses at most the batch being written; :func:`read_log` ignores a torn last line.
    Opening an existing log appends to it.

    :param path: the ``.jsonl`` file (its folder is created).
    :param fsync: call ``os.fsync`` after every line.
    :param store_queries: keep whole queries (needed to fit a learned model); else only their
        fingerprints are kept.
    """

    def __init__(self, path: str | Path, fsync: bool = False, store_queries: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.store_queries = store_queries
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            existing = read_log(self.path) if self.path.exists() else []
            self._file: IO[str] | None = self.path.open("a", encoding="utf-8")
        except OSError as err:
            raise ConfigError(
                f"feedback log {str(path)!r} cannot be written: {err.strerror}"
            ) from None
        self._models = sum(1 for r in existing if r.get("type") == "model")
        self._batches = sum(1 for r in existing if r.get("type") == "batch")

    def add_model(self, model: FeedbackModel) -> int:
        """Describe ``model`` in the log; returns its id there."""
        model_id = self._models
        self._models += 1
        states = [_jsonable_state(g.bit_generator.state) for g in model_generators(model)]
        record = {
            "type": "model",
            "version": LOG_VERSION,
            "model": model_id,
            "config": model.config(),
            "rng_state": states,
        }
        running = [_running_state(m) for m in _model_tree(model)]
        if any(running):  # e.g. the returns seen by a teacher with relative thresholds
            record["running_state"] = running
        self._write(record)
        return model_id

    def append(self, model_id: int | None, kind: str, verb: str, query: Any, answer: Any) -> None:
        """Append one answered batch."""
        query_text = json.dumps(query, separators=(",", ":"))
        record: dict[str, Any] = {
            "type": "batch",
            "model": model_id,
            "kind": kind,
            "verb": verb,
            "batch": self._batches,
            "fingerprint": _fingerprint(query_text),
            "answer": _encode(answer),
        }
        self._batches += 1
        line = json.dumps(record, separators=(",", ":"))
        if self.store_queries:
            line = line[:-1] + ',"query":' + query_text + "}"
        self._write_line(line)

    def _write(self, record: dict[str, Any]) -> None:
        self._write_line(json.dumps(record, separators=(",", ":")))

    def _write_line(self, line: str) -> None:
        if self._file is None:
            raise ConfigError(f"feedback log {str(self.path)!r} is closed")
        self._file.write(line + "\n")
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file (further writes raise)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> FeedbackLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _model_tree(model: Any) -> list[Any]:
    """A model, then its members (panels) and the model it wraps (budgets, hindsight)."""
    out = [model]
    members = getattr(model, "members", None)
    for member in members if isinstance(members, (list, tuple)) else []:
        out.extend(_model_tree(member))
    inner = getattr(model, "teacher", None) or getattr(model, "model", None)
    if isinstance(inner, FeedbackModel):
        out.extend(_model_tree(inner))
    return out


def model_generators(model: Any) -> list[np.random.Generator]:
    """Every generator a model draws from: its own, then its members' (panels, wrappers)."""
    return [m.rng for m in _model_tree(model)]


def _running_state(model: Any) -> dict[str, Any]:
    """What a model keeps from the queries it answered (``running_state()``), else ``{}``."""
    get = getattr(model, "running_state", None)
    return get() if callable(get) else {}


def _jsonable_state(state: dict[str, Any]) -> dict[str, Any]:
    return {k: (_jsonable_state(v) if isinstance(v, dict) else v) for k, v in state.items()}


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """Every record of a feedback log; a torn last line (crash while writing) is ignored."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ConfigError(f"feedback log {str(path)!r} cannot be read: {err.strerror}") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise ConfigError(f"feedback log {str(path)!r}: line {number} is not JSON") from None
    return records


def decode_answer(record: dict[str, Any]) -> Any:
    """The answer of a batch record as the model returned it."""
    answer = record["answer"]
    verb = record["verb"]
    if verb == "prefer":
        return np.array([np.nan if v is None else v for v in answer], dtype=np.float64)
    if verb == "rank":
        return np.asarray(answer, dtype=np.int64)
    if verb == "score":
        values = np.array(
            [[np.nan if v is None else v for v in row] for row in answer["value"]], float
        )
        return Scores(values, np.asarray(answer["arrival"], dtype=np.int64))
    return list(answer)


def rebuild_models(path: str | Path, **overrides: Any) -> dict[int, FeedbackModel]:
    """The models described in a log, rebuilt with their generators (and running state, e.g.
    the returns a teacher with relative thresholds had seen) as they were when attached.

    Asking a rebuilt model the logged queries in the logged order reproduces the logged
    answers. Each model gets its own generator: models that shared one generator while logging
    are reproduced only if they did not interleave their draws. ``overrides`` replace
    constructor arguments a log cannot hold (e.g. a callable
    ``advantage_fn``).
    """
    models: dict[int, FeedbackModel] = {}
    for record in read_log(path):
        if record.get("type") != "model":
            continue
        model = from_config(record["config"], **overrides)
        generators = model_generators(model)
        if len(generators) != len(record["rng_state"]):
            raise ConfigError(f"feedback log {str(path)!r}: model {record['model']} does not match")
        for generator, state in zip(generators, record["rng_state"], strict=True):
            generator.bit_generator.state = state
        for member, running in zip(
            _model_tree(model), record.get("running_state", []), strict=False
        ):
            if running:
                member.set_running_state(running)
        models[record["model"]] = model
    return models


def logged_queries(path: str | Path, model: int | None = None) -> list[dict[str, Any]]:
    """The batch records of a log (of one model id when given), in the order they were asked."""
    return [
        r
        for r in read_log(path)
        if r.get("type") == "batch" and (model is None or r.get("model") == model)
    ]


@register_feedback_model("replay")
class ReplayTeacher(FeedbackModel):
    """Answers from a feedback log: the same queries, in the same order, get the same answers.

    Each verb (``prefer``, ``rank``, ``score``, ``correct``) returns the next logged answer of
    that verb after checking that the query is the logged one (by fingerprint); a different
    query or a log with no answers left raises a one-line ConfigError. Used to re-run an
    experiment against recorded (possibly real human) feedback. Its ``kind`` is that of the
    logged batches when they share one (so a replayed preference teacher is a preference
    teacher), else ``"replay"``.

    :param path: the JSONL feedback log, e.g. an earlier run's ``feedback.jsonl`` (required:
        a log that does not exist or holds no answers is a one-line ConfigError).
    :param model: replay only the batches of this model id (None: all).
    :param rng: unused (answers are recorded); kept for the common constructor.
    """

    kind = "replay"
    example = '{"path": "runs/earlier/feedback.jsonl"}'

    def __init__(
        self,
        path: str | Path,
        model: int | None = None,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(rng)
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise ConfigError(f"replay's path must be a feedback log's path, got {path!r}")
        if model is not None and (isinstance(model, bool) or not isinstance(model, int)):
            raise ConfigError(f"replay's model must be a model id of the log, got {model!r}")
        self.path = str(path)
        self.model = model
        self._records = logged_queries(path, model)
        if not self._records:
            of = "" if model is None else f" of model {model}"
            raise ConfigError(f"feedback log {self.path!r} holds no answered batch{of} to replay")
        self._next: dict[str, int] = {}
        kinds = {r["kind"] for r in self._records}
        if len(kinds) == 1:  # answers like the model it replays (e.g. "preference")
            self.kind = kinds.pop()

    def check_spaces(self, observation_space: Any, action_space: Any) -> None:
        """Refuse an env whose steps are not the logged ones: the first logged segment's
        observation and action shapes must be those of the spaces (the queries would differ)."""
        for record in self._records:
            query = record.get("query") or {}
            segment = query.get("a") or (query.get("segments") or [None])[0]
            if not isinstance(segment, dict):
                continue
            for name, space in (("obs", observation_space), ("actions", action_space)):
                shape = getattr(space, "shape", None)
                if segment.get(name) is None or shape is None:
                    continue
                logged = tuple(np.shape(segment[name])[2:])  # after (segments, steps)
                shape = tuple(shape)  # the trailing axes (a multi-agent log has an agent axis)
                if len(logged) < len(shape) or logged[len(logged) - len(shape) :] != shape:
                    raise ConfigError(
                        f"feedback log {self.path!r} holds steps whose {name} have shape "
                        f"{logged}, this env's have {shape}: replay a log of "
                        "a run on this env"
                    )
            return

    def _replay(self, verb: str, query: dict[str, Any]) -> Any:
        position = self._next.get(verb, 0)
        todo = [r for r in self._records if r["verb"] == verb]
        if position >= len(todo):
            raise ConfigError(
                f"feedback log {self.path!r} holds no more {verb!r} answers ({len(todo)} used)"
            )
        record = todo[position]
        if _fingerprint(json.dumps(query, separators=(",", ":"))) != record["fingerprint"]:
            raise ConfigError(
                f"query {position} of {verb!r} differs from batch {record['batch']} of the log"
            )
        self._next[verb] = position + 1
        answer = decode_answer(record)
        n = answer.value.size if verb == "score" else len(answer)
        self._count(n, n)
        self._record(verb, query, answer)
        return answer

    def prefer(self, a: Segments | np.ndarray, b: Segments | np.ndarray) -> np.ndarray:
        """The logged labels of this pair batch."""
        return self._replay(
            "prefer", {"a": as_segments(a).to_dict(), "b": as_segments(b).to_dict()}
        )

    def rank(self, segments: Any) -> np.ndarray:
        """The logged rankings of this batch."""
        if isinstance(segments, np.ndarray) and segments.ndim == 3:
            batches = [Segments(segments[:, k]) for k in range(segments.shape[1])]
        else:
            batches = [as_segments(s) for s in segments]
        return self._replay("rank", {"segments": [s.to_dict() for s in batches]})

    def score(self, trajectories: Any, judge: int | None = None, policy: Any = None) -> Any:
        """The logged :class:`~feedbackgym.feedback.scores.Scores` of this batch."""
        trajectories = as_segments(trajectories)
        judge = trajectories.length if judge is None else judge
        return self._replay("score", {"trajectories": trajectories.to_dict(), "judge": judge})

    def correct(self, agent: np.ndarray, expert: np.ndarray, *args: Any) -> list[str]:
        """The logged sentences of this batch."""
        agent = np.atleast_2d(np.asarray(agent, dtype=np.float64))
        expert = np.atleast_2d(np.asarray(expert, dtype=np.float64))
        return self._replay("correct", {"agent": agent.tolist(), "expert": expert.tolist()})
