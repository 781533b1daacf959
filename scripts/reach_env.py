"""A user's own environment, trained from preferences with `feedbackgym train`.

A point on a line must reach a target at +0.7; the reward (minus the distance) is what the
simulated teacher judges segments by, and the learner never sees it. Importing this module
registers ``Reach1D-v0``; the ``module:ID`` form makes the CLI import it:

    PYTHONPATH=scripts .venv/bin/feedbackgym train --env reach_env:Reach1D-v0 \\
        --algo pref-ppo --labels 60 --timesteps 20000 --out runs/reach
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class Reach1D(gym.Env):
    """Move a point on [-1, 1] to the target at 0.7; 40 steps per episode."""

    def __init__(self, target: float = 0.7) -> None:
        self.target = float(target)
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.position = 0.0

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.position = float(self.np_random.uniform(-1.0, 1.0))
        return np.array([self.position], dtype=np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.position = float(np.clip(self.position + 0.1 * float(action[0]), -1.0, 1.0))
        distance = abs(self.position - self.target)
        info = {"success": distance < 0.05}
        return np.array([self.position], dtype=np.float32), -distance, False, False, info


if "Reach1D-v0" not in gym.registry:
    gym.register(id="Reach1D-v0", entry_point=Reach1D, max_episode_steps=40)
