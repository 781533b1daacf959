"""Delayed feedback for bandit and dueling vector envs: outcomes reach the agent later.

:class:`DelayedFeedbackEnv` wraps any bandit or dueling ``VectorEnv`` (one sub-env per run).
Each pull's outcome is held for a delay drawn from a :class:`~feedbackgym.feedback.delays.Delay`
(Joulani, Gyorgy & Szepesvari 2013, "Online Learning under Delayed Feedback": delays drawn
independently of the learner; the item made at step ``t`` arrives at step ``t + delay``, with a
delay of 0 arriving in the same step). ``step`` returns zero rewards and, in
``info["arrived"]``, what arrived this step for every run, as arrays of shape ``(n_runs, m)``
(m: most items any run received this step):

- ``actions`` (``(n_runs, m, ...)``), ``rewards``, ``steps`` (the step each item was made at,
  1-based), ``mask`` (True where the slot holds an item), ``obs`` and ``next_obs`` (the
  observation the pull was made on, and the one its step returned).

``info["regret"]`` (and every other hidden key) still describes the pull made now. Nothing is
delivered twice; items due after the env's horizon (or at ``inf``) are never delivered and
counted in :attr:`DelayedFeedbackEnv.expired`. Storage is a calendar queue (ring over release
steps x slots x runs), so a step costs O(n_runs x m), not O(items held).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import VectorWrapper
from numba import njit

from feedbackgym.errors import ConfigError
from feedbackgym.feedback.delays import DELAYS, Delay, make_delay

#: How a ``--delay`` spec is written, per kind (for error messages).
DELAY_SPECS = {
    "fixed": "fixed:D (D >= 0 steps)",
    "geometric": "geometric:P (0 < P <= 1, mean (1 - P) / P)",
    "uniform": "uniform:LOW-HIGH (0 <= LOW <= HIGH)",
    "batched": "batched:PERIOD (PERIOD >= 1)",
}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def parse_delay(spec: str | Delay | None) -> Delay | None:
    """A delay from its spec ``kind:args`` (fixed:50, geometric:0.01, uniform:10-200,
    batched:500); None or "none" gives None. Bad specs raise a one-line ConfigError."""
    if spec is None or isinstance(spec, Delay):
        return spec
    text = str(spec).strip()
    if text.lower() in ("", "none"):
        return None
    kind, _, args = text.partition(":")
    kind = kind.strip().lower()
    valid = "; ".join(DELAY_SPECS.values())
    if kind not in DELAY_SPECS:
        raise ConfigError(f"unknown delay kind {kind!r} in {text!r}; valid: {valid}")
    usage = f"bad delay {text!r}: write {DELAY_SPECS[kind]}"
    args = args.strip()
    try:
        if kind == "uniform":
            match = re.fullmatch(rf"({_NUMBER})\s*-\s*({_NUMBER})", args)
            if match is None:
                raise ConfigError(usage)
            low, high = _whole(match.group(1), usage), _whole(match.group(2), usage)
            if low < 0 or high < low:
                raise ConfigError(f"{usage}; got LOW={low}, HIGH={high}")
            return make_delay("uniform", low=low, high=high)
        if not re.fullmatch(_NUMBER, args):
            raise ConfigError(usage)
        if kind == "geometric":
            p = float(args)
            if not 0.0 < p <= 1.0:
                raise ConfigError(f"{usage}; got P={p:g}")
            return make_delay("geometric", p=p)
        value = _whole(args, usage)
        if kind == "fixed":
            if value < 0:
                raise ConfigError(f"{usage}; got D={value}")
            return make_delay("fixed", delay=value)
        if value < 1:
            raise ConfigError(f"{usage}; got PERIOD={value}")
        return make_delay("batched", period=value)
    except ConfigError as exc:
        raise ConfigError(str(exc).splitlines()[0]) from None


def _whole(text: str, usage: str) -> int:
    value = float(text)
    if not math.isfinite(value) or abs(value) > 2**40:
        raise ConfigError(f"{usage}; {text} is too large")
    if value != round(value):
        raise ConfigError(f"{usage}; {text} is not a whole number")
    return int(round(value))


def delay_spec(delay: Delay) -> str:
    """The spec string of ``delay`` (inverse of :func:`parse_delay`)."""
    name = delay.registry_name
    if name == "fixed":
        return f"fixed:{delay.delay}"
    if name == "geometric":
        return f"geometric:{delay.p!r}"
    if name == "uniform":
        return f"uniform:{delay.low}-{delay.high}"
    if name == "batched":
        return f"batched:{delay.period}"
    return name


def mean_delay(delay: Delay) -> float:
    """Expected delay E[tau] in steps.

    Batched releases at the next multiple of ``period`` strictly after the step: waits of
    ``period, period - 1, ..., 1`` steps, mean ``(period + 1) / 2``.
    """
    name = delay.registry_name
    if name == "fixed":
        return float(delay.delay)
    if name == "geometric":
        return (1.0 - delay.p) / delay.p
    if name == "uniform":
        return (delay.low + delay.high) / 2.0
    if name == "batched":
        return (delay.period + 1) / 2.0
    return float("inf")


class DelayedFeedbackEnv(VectorWrapper):
    """A bandit or dueling vector env whose outcomes reach the agent after a random delay.

    :param env: the vector env (``num_envs`` runs, all stepped together).
    :param delay: a :class:`Delay`, a spec string (``"geometric:0.01"``) or a registry name.
    :param seed: seed of the delays' random generator (independent of the env's randomness, so
        a delay of 0 leaves every number unchanged).
    """

    delayed = True

    def __init__(self, env: Any, delay: Delay | str, seed: int | None = None) -> None:
        super().__init__(env)
        if isinstance(delay, str):
            delay = parse_delay(delay) if ":" in delay else make_delay(delay)
        if not isinstance(delay, Delay):
            raise ConfigError(
                f"delay must be a Delay or a spec; kinds: {', '.join(DELAYS.names())}"
            )
        self.delay = delay
        self.delay_seed = seed
        self.n = int(env.num_envs)
        self._rows = np.arange(self.n)
        self._times = np.empty(self.n)
        self._release = np.empty(self.n, dtype=np.int64)
        horizon = getattr(env.unwrapped, "horizon", None)
        self.horizon = int(horizon) if isinstance(horizon, (int, np.integer)) else None
        self._action_shape = tuple(env.single_action_space.shape or ())
        self._width = int(np.prod(self._action_shape, dtype=np.int64))  # ints per action
        # A Discrete observation is the non-contextual envs' placeholder: not worth keeping.
        self.keep_obs = not isinstance(env.single_observation_space, spaces.Discrete)
        self._reset_state()

    def _reset_state(self) -> None:
        self.rng = np.random.default_rng(self.delay_seed)
        self.t = 0
        self.pushed = np.zeros(self.n, dtype=np.int64)
        self.delivered = np.zeros(self.n, dtype=np.int64)
        self.expired = np.zeros(self.n, dtype=np.int64)
        self._capacity, self._slots = 0, 0
        self._obs: np.ndarray | None = None
        self._next: np.ndarray | None = None
        self._last_obs: Any = None
        self._grow(8, 1)

    @property
    def pending(self) -> np.ndarray:
        """Items held (made, not yet delivered nor expired) per run."""
        return self.pushed - self.delivered - self.expired

    def reset(self, *, seed: Any = None, options: Any = None) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._reset_state()
        self._last_obs = obs
        return obs, info

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions, dtype=np.int64).reshape((self.n, *self._action_shape))
        next_obs, rewards, terminated, truncated, info = self.env.step(actions)
        self.t += 1
        t = self.t
        times = self._times
        times.fill(float(t))
        release = np.asarray(self.delay.release_steps(times, self.rng), dtype=np.float64)
        horizon = -1 if self.horizon is None else self.horizon
        wait = _plan(release, t, horizon, self._release, self.expired, self.pushed)
        if wait >= self._capacity:
            self._grow(1 << int(wait + 1).bit_length(), self._slots)
        self._remember(t, self._last_obs, next_obs)
        flat = actions.reshape(self.n, self._width)
        rewards = np.asarray(rewards, dtype=np.float64).reshape(self.n)
        while True:
            need = _push(
                self._act.reshape(self._capacity, self._slots, self.n, self._width),
                self._rew,
                self._made,
                self._count,
                self._release,
                flat,
                rewards,
                t,
            )
            if need <= self._slots:
                break
            self._grow(self._capacity, max(need, 2 * self._slots))
        info = {k: v for k, v in info.items() if k != "feedback"}
        info["arrived"] = self._pop(t)
        self._last_obs = next_obs
        return next_obs, np.zeros(self.n), terminated, truncated, info

    def _remember(self, t: int, obs: Any, next_obs: Any) -> None:
        if not self.keep_obs or not isinstance(obs, np.ndarray) or obs.shape[:1] != (self.n,):
            return
        if self._obs is None or self._obs.shape[1:] != obs.shape:
            self._obs = np.zeros((self._capacity, *obs.shape), dtype=obs.dtype)
            self._next = np.zeros((self._capacity, *np.shape(next_obs)), np.asarray(next_obs).dtype)
        self._obs[t % self._capacity] = obs
        self._next[t % self._capacity] = next_obs

    def _pop(self, t: int) -> dict[str, np.ndarray]:
        slot = t % self._capacity
        count = self._count[slot]
        m = int(count.max())
        n = self.n
        actions = np.empty((n, m, *self._action_shape), dtype=np.int64)
        rewards = np.empty((n, m))
        made = np.empty((n, m), dtype=np.int64)
        mask = np.empty((n, m), dtype=np.bool_)
        _pop_slot(
            self._act.reshape(self._capacity, self._slots, n, self._width),
            self._rew,
            self._made,
            self._count,
            self.delivered,
            slot,
            actions.reshape(n, m, self._width),
            rewards,
            made,
            mask,
        )
        out = {"actions": actions, "rewards": rewards, "steps": made, "mask": mask}
        if self._obs is not None:
            ring = made.T % self._capacity  # (m, n)
            out["obs"] = self._obs[ring, self._rows].swapaxes(0, 1)
            out["next_obs"] = self._next[ring, self._rows].swapaxes(0, 1)
        else:
            out["obs"] = out["next_obs"] = None
        return out

    def _grow(self, capacity: int, slots: int) -> None:
        """Re-lay the calendar out with ``capacity`` release steps and ``slots`` items each."""
        n, shape = self.n, self._action_shape
        act = np.zeros((capacity, slots, n, *shape), dtype=np.int64)
        if shape:  # placeholder duels (0, 1, ...) in empty slots
            act[...] = np.arange(shape[-1]) % max(1, self.unwrapped_arms())
        rew = np.zeros((capacity, slots, n))
        made = np.zeros((capacity, slots, n), dtype=np.int64)
        count = np.zeros((capacity, n), dtype=np.int64)
        if self._capacity:
            valid = np.arange(self._slots)[None, :, None] < self._count[:, None, :]
            s, j, r = np.nonzero(valid)
            # pending items are due at steps t .. t + old capacity - 1: the slot gives the step
            due = self.t + (s - self.t) % self._capacity
            new = due % capacity
            act[new, j, r] = self._act[s, j, r]
            rew[new, j, r] = self._rew[s, j, r]
            made[new, j, r] = self._made[s, j, r]
            np.maximum.at(count, (new, r), j + 1)
            if self._obs is not None:
                steps = np.arange(max(1, self.t - self._capacity + 1), self.t + 1)
                obs = np.zeros((capacity, *self._obs.shape[1:]), self._obs.dtype)
                nxt = np.zeros((capacity, *self._next.shape[1:]), self._next.dtype)
                obs[steps % capacity] = self._obs[steps % self._capacity]
                nxt[steps % capacity] = self._next[steps % self._capacity]
                self._obs, self._next = obs, nxt
        self._act, self._rew, self._made, self._count = act, rew, made, count
        self._capacity, self._slots = capacity, slots

    def unwrapped_arms(self) -> int:
        nvec = getattr(self.env.single_action_space, "nvec", None)
        return int(np.asarray(nvec).ravel()[0]) if nvec is not None else 2


@njit(cache=True, error_model="numpy")
def _plan(
    release: np.ndarray,
    t: int,
    horizon: int,
    out: np.ndarray,
    expired: np.ndarray,
    pushed: np.ndarray,
) -> int:
    """Release step of each run's item made at ``t`` into ``out`` (-1: never delivered, counted
    in ``expired``: at ``inf`` or after ``horizon``, when ``horizon >= 0``); returns the longest
    wait."""
    wait = 0
    for r in range(release.size):
        pushed[r] += 1
        when = release[r]
        if not np.isfinite(when) or (horizon >= 0 and when > horizon):
            expired[r] += 1
            out[r] = -1
            continue
        out[r] = np.int64(when)
        wait = max(wait, out[r] - t)
    return wait


@njit(cache=True, error_model="numpy")
def _push(
    act: np.ndarray,
    rew: np.ndarray,
    made: np.ndarray,
    count: np.ndarray,
    release: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    t: int,
) -> int:
    """File each run's item under its release step (calendar ``(capacity, slots, n_runs)``).

    Returns the slots a release step needs; when that is more than the calendar has, nothing
    is written (the caller grows the calendar and calls again).
    """
    capacity, slots = count.shape[0], rew.shape[1]
    need = 0
    for r in range(release.size):
        if release[r] >= 0:
            need = max(need, count[release[r] % capacity, r] + 1)
    if need > slots:
        return need
    for r in range(release.size):
        if release[r] < 0:
            continue
        s = release[r] % capacity
        j = count[s, r]
        for w in range(actions.shape[1]):
            act[s, j, r, w] = actions[r, w]
        rew[s, j, r] = rewards[r]
        made[s, j, r] = t
        count[s, r] = j + 1
    return need


@njit(cache=True, error_model="numpy")
def _pop_slot(
    act: np.ndarray,
    rew: np.ndarray,
    made: np.ndarray,
    count: np.ndarray,
    delivered: np.ndarray,
    slot: int,
    out_act: np.ndarray,
    out_rew: np.ndarray,
    out_made: np.ndarray,
    mask: np.ndarray,
) -> None:
    """Copy the first ``m`` slots of release step ``slot`` out (runs first), mark the filled
    ones, and empty the step."""
    m = out_rew.shape[1]
    for r in range(out_rew.shape[0]):
        c = count[slot, r]
        for j in range(m):
            for w in range(out_act.shape[2]):
                out_act[r, j, w] = act[slot, j, r, w]
            out_rew[r, j] = rew[slot, j, r]
            out_made[r, j] = made[slot, j, r]
            mask[r, j] = j < c
        delivered[r] += c
        count[slot, r] = 0
