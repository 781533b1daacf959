"""Fused study loops: a cell's whole horizon in one compiled loop (env draws, agent, regret).

The step-by-step loop (:meth:`BanditAgent.learn`) is the reference and serves every env and
agent. For built-in envs with fixed parameters and agents with numba kernels, a *fuser*
registered here for the agent's class can run the same cell without Python in the loop.

A fuser is ``fuser(env, agent, metric) -> run | None``: ``env`` is the cell's bare vector env
(no wrappers), already reset with the cell's env seed, ``agent`` the constructed agent,
``metric`` the info key summed into regret. It returns None when it cannot reproduce that
(env, agent, metric) exactly — another env class (subclasses included), means that change,
an option it does not implement — and otherwise ``run(total_steps, checkpoints, seed)``, which
returns the cumulative regret per run at each checkpoint, shape ``(n_runs, len(checkpoints))``,
as ``learn`` does. The fused path draws from its own per-run streams: it agrees with the
step-by-step path in distribution, not number by number, and is deterministic on its own.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

Run = Callable[[int, np.ndarray, int], np.ndarray]
Fuser = Callable[[Any, Any, str], Run | None]

PATHS = ("auto", "fused", "steps")

_FUSERS: dict[type, Fuser] = {}
#: Modules whose import registers fusers; loaded on first use (they import the agent classes,
#: so importing them here at the top would be circular).
KERNEL_MODULES = (
    "feedbackgym.agents.bandits.fused_loops",
    "feedbackgym.agents.dueling.fused_loops",
)
_loaded = False


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in KERNEL_MODULES:
        importlib.import_module(module)


def register(agent_class: type, fuser: Fuser) -> None:
    """Register ``fuser`` for agents of exactly ``agent_class`` (not its subclasses)."""
    _FUSERS[agent_class] = fuser


def fused_run(env: Any, agent: Any, metric: str) -> Run | None:
    """The fused loop for this (env, agent, metric), or None when the step path must run it."""
    _load()
    fuser = _FUSERS.get(type(agent))
    return None if fuser is None else fuser(env, agent, metric)


def fused_agents() -> list[str]:
    """Registry names of the agents with a fused loop (for messages)."""
    _load()
    return sorted(getattr(cls, "registry_name", "") or cls.__name__ for cls in _FUSERS)
