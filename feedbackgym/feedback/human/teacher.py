"""The ``human`` teacher: preference queries shown to people as clips, answered in a browser."""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from feedbackgym.errors import ConfigError, check_range
from feedbackgym.feedback.base import (
    SKIPPED,
    FeedbackModel,
    Segments,
    as_pair,
    check_int,
    register_feedback_model,
)
from feedbackgym.feedback.human.queue import ANSWERS, LabelQueue, check_writable
from feedbackgym.feedback.human.server import check_host, running_server
from feedbackgym.feedback.log import FeedbackLog

StateSetter = Callable[[Any, np.ndarray, np.ndarray | None], None]
#: env id -> ``setter(unwrapped_env, obs, action)`` that puts the env in the state ``obs``
#: describes, so that ``env.render()`` draws it. Only envs whose observation determines what
#: is drawn belong here: a clip must show what the learner saw, not a guess.
STATE_SETTERS: dict[str, StateSetter] = {}


def register_state_setter(env_id: str, setter: StateSetter | None = None) -> Any:
    """Let the human teacher render ``env_id``: ``setter(unwrapped_env, obs, action)`` sets the
    env's state from one observation (and the action taken there). Usable as a decorator."""

    def add(fn: StateSetter) -> StateSetter:
        STATE_SETTERS[env_id] = fn
        return fn

    return add(setter) if setter is not None else add


@register_state_setter("Pendulum-v1")
def _set_pendulum(env: Any, obs: np.ndarray, action: np.ndarray | None) -> None:
    # (cos theta, sin theta, theta_dot) is the whole state: the render is exact.
    env.state = np.array([math.atan2(float(obs[1]), float(obs[0])), float(obs[2])])
    env.last_u = None if action is None else float(np.ravel(action)[0])  # the torque arrow


@register_state_setter("feedbackgym/PointGoal-v0")
def _set_point_goal(env: Any, obs: np.ndarray, action: np.ndarray | None) -> None:
    # (x, y, vx, vy, candidates...) is the whole state: the point's joints and the targets.
    candidates = np.asarray(obs[4:], dtype=np.float64).reshape(-1, 2)
    if candidates.shape[0] != env.n_targets:
        raise ConfigError(
            f"PointGoal observations hold {candidates.shape[0]} targets, the env {env.n_targets}"
        )
    env.candidates = candidates
    env._obs[4:] = candidates.ravel()
    env.data.mocap_pos[env._target_mocap, :2] = candidates
    env.set_state(np.asarray(obs[0:2], np.float64), np.asarray(obs[2:4], np.float64))


def query_id(a: Segments, b: Segments, index: int) -> str:
    """The id of pair ``index`` of a batch: a digest of what is shown (obs, actions) and
    of the hidden rewards. A pair asked again after a restart gets the same id, so an answer
    already on disk is used instead of asking twice."""
    digest = hashlib.sha256()
    for seg in (a, b):
        for array in (seg.obs, seg.actions, seg.rewards):
            if array is not None:
                digest.update(np.ascontiguousarray(array[index], dtype=np.float64).tobytes())
            digest.update(b"|")
    return digest.hexdigest()[:24]


def encode_gif(frames: list[np.ndarray], fps: float, size: int) -> bytes:
    """An animated GIF (Pillow) of RGB ``frames``, scaled to ``size`` pixels wide, looping.

    One 64-colour palette, taken from up to 8 frames spread over the clip, serves every
    frame (no dithering): rendered scenes have few colours, and quantising each frame on its
    own is four times slower and makes larger files."""
    from PIL import Image

    images = []
    for frame in frames:
        image = Image.fromarray(np.asarray(frame, dtype=np.uint8))
        height = max(1, round(image.height * size / image.width))
        images.append(image.resize((size, height), Image.Resampling.BILINEAR))
    samples = [images[k] for k in np.linspace(0, len(images) - 1, min(8, len(images))).astype(int)]
    sheet = Image.new("RGB", (size * len(samples), samples[0].height))
    for k, image in enumerate(samples):
        sheet.paste(image, (k * size, 0))
    palette = sheet.quantize(colors=64)
    indexed = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
    buffer = io.BytesIO()
    indexed[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=indexed[1:],
        duration=max(20, round(1000 / fps)),
        loop=0,
    )
    return buffer.getvalue()


@register_feedback_model("human")
class HumanTeacher(FeedbackModel):
    """People answer the preference queries, in a browser (``feedbackgym label``).

    ``prefer(a, b)`` renders each pair of segments as two looping GIF clips, publishes the
    pairs to the :class:`LabelQueue` in ``dir`` and blocks until every pair has an answer on
    disk (or ``timeout`` seconds pass: pairs still open are withdrawn and labelled NaN,
    skipped, and one line on stderr says so). While it waits, a line on stderr every
    ``remind_every`` seconds says how many answers are missing and where to give them, so a
    run blocked on people is never silent. Labels follow
    :class:`~feedbackgym.feedback.preferences.PreferenceModel`: 1.0 for a, 0.0 for b, 0.5
    equal, NaN skipped. The label server (``feedbackgym label --out
    DIR``) can run in another process, before, after or while training, and either can
    restart: a pair asked again finds its answer already on disk. Each answered batch is also
    appended (fsynced) to ``dir/feedback.jsonl`` with its segments, for ``feedbackgym
    calibrate``.

    Clips are rendered by putting a second copy of the env (``render_mode="rgb_array"``) in
    the state each observation describes, which is exact only where the observation is the
    whole state: envs with a registered state setter (:data:`STATE_SETTERS`: ``Pendulum-v1``,
    ``feedbackgym/PointGoal-v0``; add one with :func:`register_state_setter`). Other envs are
    refused. MuJoCo envs render headless with ``MUJOCO_GL=egl`` (or ``osmesa``).

    With ``port`` set, the teacher also serves the label page itself (a background thread of
    the training process, started at the first query; links go to stderr), so one command
    does both; without it, run ``feedbackgym label --out DIR`` beside the run.

    :param dir: the label folder shared with ``feedbackgym label --out``.
    :param env: id of the run's env (the clips are rendered from it).
    :param env_kwargs: keyword arguments of that env (e.g. PointGoal's ``n_targets``).
    :param timeout: seconds ``prefer`` waits for a batch (None: until answered).
    :param remind_every: seconds between the "still waiting" lines on stderr while ``prefer``
        waits (None: none).
    :param poll_interval: seconds between looks at the answers folder.
    :param fps: frames per second of the clips (None: the env's ``render_fps``).
    :param clip_size: width of the clips in pixels, >= 32.
    :param port: serve the label page on this port from the training process (None: don't).
    :param host: address the page is served on when ``port`` is set.
    :param rng: unused (people are not seeded); kept for the common constructor.
    """

    kind = "preference"

    def __init__(
        self,
        dir: str = "labels",
        env: str | None = None,
        env_kwargs: dict[str, Any] | None = None,
        timeout: float | None = None,
        remind_every: float | None = 60.0,
        poll_interval: float = 0.2,
        fps: float | None = None,
        clip_size: int = 256,
        port: int | None = None,
        host: str = "127.0.0.1",
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(rng)
        if env is None:
            raise ConfigError(
                "the human teacher needs env, the id of the run's env its clips are rendered "
                f"from; one of: {', '.join(sorted(STATE_SETTERS))}"
            )
        if env not in STATE_SETTERS:
            raise ConfigError(
                f"the human teacher cannot render env {env!r}: clips need a state setter (an "
                f"exact render from observations); envs with one: "
                f"{', '.join(sorted(STATE_SETTERS))} (add one with register_state_setter)"
            )
        if env_kwargs is not None and not isinstance(env_kwargs, dict):
            raise ConfigError(f"env_kwargs must be a dict of env arguments, got {env_kwargs!r}")
        if timeout is not None:
            timeout = check_range("timeout", timeout, 0.0, low_open=True)
        if remind_every is not None:
            remind_every = check_range("remind_every", remind_every, 0.0, low_open=True)
        check_writable(dir)  # writes nothing: a run is refused before its folder is made
        self.dir = str(dir)
        self.env = env
        self.env_kwargs = env_kwargs
        self.timeout = timeout
        self.remind_every = remind_every
        self.poll_interval = check_range("poll_interval", poll_interval, 0.0, low_open=True)
        self.fps = None if fps is None else check_range("fps", fps, 0.0, 100.0, low_open=True)
        self.clip_size = check_int("clip_size", clip_size, 32)
        if port is not None and (isinstance(port, bool) or not isinstance(port, int)
                                 or not 0 <= port < 65536):  # fmt: skip
            raise ConfigError(f"port must be an integer in 0..65535 (0: any free), got {port!r}")
        self.port = port
        self.host = check_host(host)
        self._server: Any = None
        self._queue: LabelQueue | None = None  # made on first use: checking a run writes nothing
        self._render_env: Any = None
        self._own_log: Any = None

    def check_spaces(self, observation_space: Any, action_space: Any) -> None:
        """Refuse a run whose env's spaces are not those of ``env`` (with ``env_kwargs``): the
        clips are drawn from ``env``, so another env's steps would crash the state setter or,
        with enough dimensions, show people scenes the learner never saw. Only the spaces are
        built (no render, nothing written)."""
        import gymnasium as gym

        from feedbackgym.envs import resolve_env_id

        env = gym.make(resolve_env_id(self.env), **(self.env_kwargs or {}))
        try:
            mine = (env.observation_space, env.action_space)
        finally:
            env.close()
        if mine != (observation_space, action_space):

            def show(space: Any) -> str:
                return " ".join(str(space).split())  # a large Box prints on several lines

            raise ConfigError(
                f"the human teacher renders env {self.env!r} (observations {show(mine[0])}, "
                f"actions {show(mine[1])}), but the run's env has observations "
                f"{show(observation_space)}, actions {show(action_space)}: give the teacher "
                "the run's env id and env_kwargs"
            )

    @contextlib.contextmanager
    def _writing(self) -> Any:
        """Turn a write to the label folder that fails (a disk that filled up or turned
        read-only mid-run) into one line."""
        try:
            yield
        except OSError as err:
            raise ConfigError(
                f"label folder {self.dir!r} cannot be written: {err.strerror or err} (make "
                "room or fix the folder, then resume the run from its checkpoint)"
            ) from None

    @property
    def queue(self) -> LabelQueue:
        """The label folder's queue (created with the folder on first use)."""
        if self._queue is None:
            self._queue = LabelQueue(self.dir)
        return self._queue

    # A checkpoint pickles the teacher: the render env and open log are rebuilt on demand.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_render_env"] = None
        state["_own_log"] = None
        state["_server"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("remind_every", 60.0)  # a checkpoint from before the option
        self.__dict__.update(state)

    def serve(self) -> str:
        """Start serving the label page from this process (once); returns its base URL and
        prints each new annotator's link to stderr."""
        if self._server is None:
            stack = contextlib.ExitStack()
            url = stack.enter_context(running_server(self.dir, self.host, self.port or 0))
            self._server = (stack, url)
            new = self.queue.add_annotators([] if self.queue.annotators() else ["annotator"])
            print(f"label page of {self.dir}: {url}", file=sys.stderr, flush=True)
            for name, token in new.items():
                print(f"  {name}: {url}/?token={token}", file=sys.stderr, flush=True)
            if not new:
                print("  (annotators' links were issued before; `feedbackgym label --out "
                      f"{self.dir} --annotator NAME --reissue` makes a new one)",
                      file=sys.stderr, flush=True)  # fmt: skip
        return self._server[1]

    def close(self) -> None:
        """Stop the label page this process serves, if any."""
        if self._server is not None:
            self._server[0].close()
            self._server = None

    def _renderer(self) -> Any:
        if self._render_env is None:
            import gymnasium as gym

            import feedbackgym.envs  # noqa: F401  (registers feedbackgym/ ids)

            os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # pygame: no sound card needed
            env = gym.make(self.env, render_mode="rgb_array", **(self.env_kwargs or {}))
            env.reset(seed=0)
            self._render_env = env
        return self._render_env

    def render_clip(self, obs: np.ndarray, actions: np.ndarray | None) -> bytes:
        """The GIF of one segment: its observations (and actions) drawn by the env."""
        env = self._renderer()
        setter = STATE_SETTERS[self.env]
        frames = []
        for t in range(obs.shape[0]):
            setter(env.unwrapped, obs[t], None if actions is None else actions[t])
            frames.append(env.render())
        fps = self.fps or env.metadata.get("render_fps") or 30
        return encode_gif(frames, float(fps), self.clip_size)

    def prefer(self, a: Segments | np.ndarray, b: Segments | np.ndarray) -> np.ndarray:
        """Ask people about each pair ``(a[i], b[i])``; blocks until answered (or timeout)."""
        a, b = as_pair(a, b)
        if a.obs is None or b.obs is None or a.obs.ndim != 3:
            raise ConfigError(
                "the human teacher needs segments with vector observations (n, length, d)"
            )
        if self.port is not None:
            self.serve()
        ids = [query_id(a, b, i) for i in range(len(a))]
        for i, qid in enumerate(ids):
            if self.queue.read_answer(qid) is None and not self.queue.is_query(qid):
                clips = [
                    self.render_clip(s.obs[i], None if s.actions is None else s.actions[i])
                    for s in (a, b)
                ]
                with self._writing():
                    self.queue.publish(qid, *clips, {"env": self.env, "length": a.length})
        answers = self._wait(ids)
        labels = np.array([ANSWERS[r["answer"]] if r["answer"] else SKIPPED for r in answers])
        self._count(len(labels), int(np.count_nonzero(~np.isnan(labels))))
        query = {"a": a.to_dict(), "b": b.to_dict()}
        self._record("prefer", query, labels)
        self._own_log_append(query, labels)
        return labels

    def _wait(self, ids: list[str]) -> list[dict[str, Any]]:
        started = time.monotonic()
        deadline = None if self.timeout is None else started + self.timeout
        remind = None if self.remind_every is None else started + self.remind_every
        found: dict[str, dict[str, Any]] = {}
        while True:
            for qid in ids:
                if qid not in found:
                    record = self.queue.read_answer(qid)
                    if record is not None:
                        found[qid] = record
            if len(found) == len(set(ids)):
                return [found[qid] for qid in ids]
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                for qid in set(ids) - set(found):
                    with self._writing():
                        self.queue.withdraw(qid)  # or, if an answer just won the race, read it
                    found[qid] = self.queue.read_answer(qid) or {"answer": None}
                unanswered = sum(1 for r in found.values() if not r.get("answer"))
                self._say(
                    f"timeout ({self.timeout:g} s): {unanswered} of {len(set(ids))} queries "
                    "unanswered, withdrawn and labelled skipped"
                )
                return [found[qid] for qid in ids]
            if remind is not None and now >= remind:
                remind = now + self.remind_every
                where = (
                    f"at {self._server[1]}"
                    if self._server is not None
                    else f"with `feedbackgym label --out {self.dir}`"
                )
                bound = "no timeout" if self.timeout is None else f"timeout {self.timeout:g} s"
                self._say(
                    f"waiting {now - started:.0f} s for {len(set(ids)) - len(found)} of "
                    f"{len(set(ids))} answers in {self.dir} (serve the queries {where}; {bound})"
                )
            time.sleep(self.poll_interval)

    @staticmethod
    def _say(message: str) -> None:
        print(f"human teacher: {message}", file=sys.stderr, flush=True)

    def _own_log_append(self, query: dict[str, Any], labels: np.ndarray) -> None:
        path = Path(self.dir) / "feedback.jsonl"
        if self.log is not None and Path(self.log.path).resolve() == path.resolve():
            return  # the run logs into the label folder itself: one log is enough
        with self._writing():
            if self._own_log is None:
                log = FeedbackLog(path, fsync=True)
                self._own_log = (log, log.add_model(self))
            log, model_id = self._own_log
            log.append(model_id, self.kind, "prefer", query, labels)
