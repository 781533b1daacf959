"""Delayed environment rewards: the return only at the episode's end, or each reward after a lag.

Both wrappers keep every episode's sum of rewards: what the learner loses is *when* the reward
arrives, never how much. The step's true reward stays in ``info["true_reward"]`` (for
evaluation; a learner must not read it).

A reward-delay spec (``TrainConfig.reward_delay``, ``feedbackgym train --reward-delay``) names
one of them:

- ``episode-end``: :class:`EpisodeEndReward`;
- ``lag:NAME[:ARG...]``: :class:`LaggedReward` with the delay model ``NAME`` of
  :mod:`feedbackgym.feedback.delays` and its parameters in order, positional or ``key=value``
  (``lag:fixed:10``, ``lag:geometric:0.1``, ``lag:uniform:0:20``, ``lag:batched:25``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from feedbackgym.errors import ConfigError
from feedbackgym.feedback.base import as_generator
from feedbackgym.feedback.delays import DELAYS, Delay, DelayQueue, make_delay

#: The forms a reward-delay spec takes (for error messages and help texts).
SPEC_FORMS = (
    "episode-end, lag:fixed:STEPS, lag:geometric:P, lag:uniform:LOW:HIGH, lag:batched:PERIOD, "
    "lag:episode-end"
)


def _true_reward(info: dict[str, Any], reward: Any) -> dict[str, Any]:
    info = dict(info)
    info.setdefault("true_reward", float(reward))
    return info


class EpisodeEndReward(gym.Wrapper):
    """Reward 0 at every step but the episode's last (terminated or truncated), which gets the
    episode's summed reward: the return, arriving at the end (as in RUDDER's and RRD's
    "episodic reward" tasks). ``info["true_reward"]`` keeps each step's own reward.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self._sum = 0.0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._sum = 0.0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._sum += float(reward)
        delivered = 0.0
        if terminated or truncated:
            delivered, self._sum = self._sum, 0.0
        return obs, delivered, terminated, truncated, _true_reward(info, reward)


class LaggedReward(gym.Wrapper):
    """Each step's reward arrives later, after a delay drawn from ``delay``; the learner's reward
    at a step is the sum of the rewards arriving then (0 when none).

    Rewards still held when the episode ends (terminated or truncated) arrive at its last
    step, so every reward is delivered exactly once, in its own episode.
    ``info["reward_arrivals"]`` counts the rewards arriving at the step.

    :param env: the env to wrap.
    :param delay: a :class:`~feedbackgym.feedback.delays.Delay` or its registry name.
    :param rng: seed or Generator of random delays; ``reset(seed=s)`` reseeds it with ``s``.
    """

    def __init__(
        self, env: gym.Env, delay: Delay | str, rng: np.random.Generator | int | None = None
    ) -> None:
        super().__init__(env)
        self.delay = make_delay(delay) if isinstance(delay, str) else delay
        self.queue = DelayQueue(self.delay, as_generator(rng))
        self.t = 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        if kwargs.get("seed") is not None:
            self.queue.rng = np.random.default_rng(kwargs["seed"])
        self.queue.flush()  # an episode cut short by a reset takes its rewards with it
        self.t = 0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.queue.push([float(reward)], self.t)
        arrived = self.queue.flush() if terminated or truncated else self.queue.pop(self.t)
        self.t += 1
        info = _true_reward(info, reward)
        info["reward_arrivals"] = len(arrived)
        return obs, float(sum(arrived)), terminated, truncated, info


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_reward_delay(spec: str) -> Callable[[gym.Env, int], gym.Env]:
    """``wrap(env, seed)`` for the reward-delay ``spec``; a bad spec is a one-line ConfigError.

    See the module's docstring for the forms; ``seed`` seeds a lag's random delays.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"reward_delay must be a string ({SPEC_FORMS}), got {spec!r}")
    parts = spec.strip().split(":")
    if parts == ["episode-end"]:
        return lambda env, seed: EpisodeEndReward(env)
    if parts[0] != "lag" or len(parts) < 2:
        raise ConfigError(f"reward_delay {spec!r} is not one of: {SPEC_FORMS}")
    name, args = parts[1], parts[2:]
    if name not in DELAYS.names():
        raise ConfigError(
            f"reward_delay {spec!r}: unknown delay {name!r}; valid: {', '.join(DELAYS.names())}"
        )
    params = list(inspect.signature(DELAYS.get(name)).parameters)
    kwargs: dict[str, Any] = {}
    try:
        for k, arg in enumerate(args):
            key, sep, value = arg.partition("=")
            if not sep:
                if k >= len(params):
                    raise ConfigError(
                        f"reward_delay {spec!r}: delay {name!r} takes at most {len(params)} "
                        f"argument(s) ({', '.join(params) or 'none'})"
                    )
                key, value = params[k], arg
            if key not in params:
                raise ConfigError(
                    f"reward_delay {spec!r}: delay {name!r} has no parameter {key!r}; valid: "
                    f"{', '.join(params) or 'none'}"
                )
            kwargs[key] = _number(value)
        delay = make_delay(name, **kwargs)
    except ConfigError as err:  # before ValueError, which it subclasses
        message = str(err)
        if not message.startswith("reward_delay"):
            message = f"reward_delay {spec!r}: {message}"
        raise ConfigError(message) from None
    except ValueError:
        raise ConfigError(f"reward_delay {spec!r}: arguments must be numbers") from None
    return lambda env, seed: LaggedReward(env, delay, rng=seed)


def wrap_reward_delay(env: gym.Env, spec: str | None, seed: int = 0) -> gym.Env:
    """``env`` with the reward delay ``spec`` (unchanged for None)."""
    return env if spec is None else parse_reward_delay(spec)(env, seed)
