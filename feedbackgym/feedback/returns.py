"""What teachers compute from the steps of a segment: hindsight returns and optimal advantages.

Shared by the preference, score and calibration modules; it depends only on
:mod:`feedbackgym.feedback.base`, so those modules never need to import one another for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from feedbackgym.errors import ConfigError
from feedbackgym.feedback.base import check_int


def hindsight_returns(rewards: np.ndarray, horizon: int, gamma: float = 1.0) -> np.ndarray:
    """``G_t = sum_{k=0}^{h} gamma^k r_{t+k}`` within each row (truncated at the row's end).

    What a hindsight teacher (Liang et al. 2025, "RLHS: Mitigating Misalignment in RLHF with
    Hindsight Simulation") sees of step ``t``: its reward and the ``horizon`` steps of
    consequences that followed.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    horizon = check_int("hindsight", horizon, 0)
    out = rewards.copy()
    weight = 1.0
    for k in range(1, horizon + 1):
        if k >= rewards.shape[1]:
            break
        weight *= gamma
        out[:, :-k] += weight * rewards[:, k:]
    return out


def check_q_values(q_values: Any) -> np.ndarray:
    """``q_values`` as a finite float ``(n_states, n_actions)`` table, else a ConfigError."""
    q = np.asarray(q_values, dtype=np.float64)
    if q.ndim != 2 or not np.all(np.isfinite(q)):
        raise ConfigError(f"q_values must be a finite (n_states, n_actions) table, got {q.shape}")
    return q


def advantages(q_values: np.ndarray, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """``A(s, a) = Q(s, a) - max_a' Q(s, a')`` for integer arrays of states and actions."""
    obs = np.asarray(obs)
    actions = np.asarray(actions)
    if obs.dtype.kind not in "iu" or actions.dtype.kind not in "iu":
        raise ConfigError("a q_values table needs integer (discrete) obs and actions")
    n_states, n_actions = q_values.shape
    if obs.size and (obs.min() < 0 or obs.max() >= n_states):
        raise ConfigError(f"obs must be states in [0, {n_states - 1}] of the q_values table")
    if actions.size and (actions.min() < 0 or actions.max() >= n_actions):
        raise ConfigError(f"actions must be in [0, {n_actions - 1}] of the q_values table")
    return q_values[obs, actions] - q_values.max(axis=1)[obs]
