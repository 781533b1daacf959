"""DelayedConsequence: a shortcut that pays now and costs more later (hindsight vs foresight)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from feedbackgym.errors import ConfigError, check_positive_int

#: The actions.
STEADY = 0
SHORTCUT = 1


class DelayedConsequenceEnv(gym.Env):
    """Each step: a steady action, or a shortcut that pays more now and costs more ``delay`` steps
    later.

    The env of the hindsight-versus-foresight comparison (RLHS, Liang et al. 2025, "RLHS:
    Mitigating Misalignment in RLHF with Hindsight Simulation"). Action 0 ("steady") earns
    ``steady_reward`` (0.5); action 1 ("shortcut") earns ``shortcut_reward`` (1.0) at once and
    costs ``penalty`` (2.0) exactly ``delay`` steps later; penalties still due when the episode
    ends are all charged at its last step, so every shortcut costs its penalty within the
    episode. A shortcut is thus worth ``1 - 2 = -1`` against the steady action's ``0.5``: the
    best policy never takes it (return ``0.5 * horizon``), the worst always does.

    The observation is the episode's progress ``t / horizon`` (float32, one number in [0, 1]):
    the debt of past shortcuts is hidden, so a reward model of ``(obs, action)`` can tell a
    penalty only from the action that caused it. A teacher judging a segment of fewer than
    ``delay`` steps by its own rewards (foresight, e.g. ``oracle``) never sees a shortcut's
    penalty in the segment that took it, and prefers shortcuts; a hindsight teacher, shown the
    ``delay`` steps that followed each segment (``HindsightTeacher``), sees them and prefers the
    steady action.

    ``info`` holds ``true_reward`` (the reward itself, the toolkit's convention),
    ``shortcut`` (whether this step took one), ``penalty`` (charged at this step) and ``debt``
    (penalties still due).

    :param horizon: steps per episode (truncated after it).
    :param delay: steps between a shortcut and its penalty (>= 1).
    :param steady_reward: reward of the steady action.
    :param shortcut_reward: immediate reward of a shortcut.
    :param penalty: the later cost of a shortcut (> 0).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        horizon: int = 50,
        delay: int = 10,
        steady_reward: float = 0.5,
        shortcut_reward: float = 1.0,
        penalty: float = 2.0,
    ) -> None:
        self.horizon = check_positive_int("horizon", horizon)
        self.delay = check_positive_int("delay", delay)
        self.steady_reward = float(steady_reward)
        self.shortcut_reward = float(shortcut_reward)
        self.penalty = float(penalty)
        if not self.penalty > 0:
            raise ConfigError(f"penalty must be > 0, got {penalty!r}")
        self.observation_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self._t = 0
        self._due = np.zeros(self.horizon + self.delay, dtype=np.float64)

    def _obs(self) -> np.ndarray:
        return np.array([self._t / self.horizon], dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._t = 0
        self._due[:] = 0.0
        return self._obs(), {"debt": 0.0}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(np.int64(np.asarray(action).item())):
            raise ConfigError(f"action must be 0 (steady) or 1 (shortcut), got {action!r}")
        shortcut = int(np.asarray(action).item()) == SHORTCUT
        if shortcut:
            reward = self.shortcut_reward
            self._due[self._t + self.delay] += self.penalty
        else:
            reward = self.steady_reward
        charged = float(self._due[self._t])
        self._due[self._t] = 0.0
        self._t += 1
        truncated = self._t >= self.horizon
        if truncated:  # the bill for every penalty still due
            charged += float(self._due.sum())
            self._due[:] = 0.0
        reward -= charged
        info = {
            "true_reward": float(reward),
            "shortcut": bool(shortcut),
            "penalty": charged,
            "debt": float(self._due.sum()),
        }
        return self._obs(), float(reward), False, truncated, info


def misleading_pairs(
    env: DelayedConsequenceEnv, length: int, after: int | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The pair the env is built around, from a fresh episode of ``env``: ``length`` shortcuts
    vs ``length`` steady steps, each followed by ``after`` (default ``delay``) steady steps.

    Returns two dicts ``{"obs", "actions", "rewards"}`` of ``length + after`` steps each
    (shortcuts first, steady second): judged on the first ``length`` steps alone the shortcuts
    look better; with what followed, they are worse.
    """
    after = env.delay if after is None else after
    out = []
    for first in (SHORTCUT, STEADY):
        obs, _ = env.reset(seed=0)
        actions = [first] * length + [STEADY] * after
        if len(actions) > env.horizon:
            raise ConfigError(f"length + after must be <= horizon={env.horizon}")
        seen, rewards = [], []
        for action in actions:
            seen.append(obs)
            obs, reward, _, _, _ = env.step(action)
            rewards.append(reward)
        out.append(
            {
                "obs": np.asarray(seen),
                "actions": np.asarray(actions, dtype=np.int64),
                "rewards": np.asarray(rewards),
            }
        )
    return out[0], out[1]
