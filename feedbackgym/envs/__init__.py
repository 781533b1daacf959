"""Gymnasium environments of feedbackgym and their registration under ``feedbackgym/``."""

from __future__ import annotations

import inspect
from typing import Any

import gymnasium as gym

from feedbackgym.envs.bandits import (
    BanditVectorEnv,
    BernoulliBandit,
    BernoulliBanditVec,
    ContextualLinearBandit,
    ContextualLinearBanditVec,
    FeatureBanditVec,
    GaussianBandit,
    GaussianBanditVec,
    PiecewiseStationaryBandit,
    PiecewiseStationaryBanditVec,
    SingleRunBandit,
    SwitchingCostBandit,
    SwitchingCostBanditVec,
)
from feedbackgym.envs.dueling import (
    ContextualDuelingBandit,
    ContextualDuelingBanditVec,
    DuelingBandit,
    DuelingBanditVec,
    MultiDuelingBandit,
    MultiDuelingBanditVec,
)

NAMESPACE = "feedbackgym"

# (name, single-run entry point, vector entry point); one implementation serves both views.
_BUILTIN: list[tuple[str, type[gym.Env], type[BanditVectorEnv]]] = [
    ("BernoulliBandit-v0", BernoulliBandit, BernoulliBanditVec),
    ("GaussianBandit-v0", GaussianBandit, GaussianBanditVec),
    ("SwitchingCostBandit-v0", SwitchingCostBandit, SwitchingCostBanditVec),
    ("PiecewiseStationaryBandit-v0", PiecewiseStationaryBandit, PiecewiseStationaryBanditVec),
    ("ContextualLinearBandit-v0", ContextualLinearBandit, ContextualLinearBanditVec),
    ("DuelingBandit-v0", DuelingBandit, DuelingBanditVec),
    ("MultiDuelingBandit-v0", MultiDuelingBandit, MultiDuelingBanditVec),
    ("ContextualDuelingBandit-v0", ContextualDuelingBandit, ContextualDuelingBanditVec),
]


def _path(obj: Any) -> str:
    return f"{obj.__module__}:{obj.__qualname__}"


def register_bandit(
    env_id: str,
    vector_class: type[BanditVectorEnv],
    single_class: type[gym.Env] | None = None,
    **kwargs: Any,
) -> None:
    """Register a bandit under ``env_id`` for ``gymnasium.make`` and ``gymnasium.make_vec``.

    ``vector_class`` is a :class:`BanditVectorEnv` subclass; the single-run view is derived from
    it unless ``single_class`` is given. ``kwargs`` become the registered default arguments.
    Registering an id twice is a no-op, so modules that register on import can be re-imported.
    """
    if env_id in gym.registry:
        return
    if single_class is None:
        single_class = type(
            vector_class.__name__.removesuffix("Vec") + "Single",
            (SingleRunBandit,),
            {
                "vector_class": vector_class,
                "__doc__": vector_class.__doc__,
                "__module__": vector_class.__module__,
            },
        )
        entry_point: Any = single_class  # a dynamic class is passed as a callable
    else:
        entry_point = _path(single_class)
    vector_entry = (
        _path(vector_class) if "<locals>" not in vector_class.__qualname__ else vector_class
    )
    gym.register(id=env_id, entry_point=entry_point, vector_entry_point=vector_entry, kwargs=kwargs)


def register_envs() -> None:
    """Register every built-in environment (runs on ``import feedbackgym``)."""
    for name, single, vector in _BUILTIN:
        register_bandit(f"{NAMESPACE}/{name}", vector, single)
    if f"{NAMESPACE}/GridWorld-v0" not in gym.registry:
        gym.register(
            id=f"{NAMESPACE}/GridWorld-v0", entry_point="feedbackgym.envs.gridworld:GridWorld"
        )
    if f"{NAMESPACE}/LanguageBandit-v0" not in gym.registry:
        # String entry points: the teacher lives in feedbackgym.feedback, which envs never imports.
        module = "feedbackgym.feedback.language_bandit"
        gym.register(
            id=f"{NAMESPACE}/LanguageBandit-v0",
            entry_point=f"{module}:LanguageBandit",
            vector_entry_point=f"{module}:LanguageBanditVec",
        )
    if f"{NAMESPACE}/PointGoal-v0" not in gym.registry:
        # A string entry point: MuJoCo is imported only when the env is made.
        gym.register(
            id=f"{NAMESPACE}/PointGoal-v0",
            entry_point="feedbackgym.envs.point_goal:PointGoalEnv",
            max_episode_steps=100,
        )
    if f"{NAMESPACE}/DelayedConsequence-v0" not in gym.registry:  # hindsight vs foresight
        gym.register(
            f"{NAMESPACE}/DelayedConsequence-v0", "feedbackgym.envs.hindsight:DelayedConsequenceEnv"
        )


def describe(env_id: str) -> str:
    """First line of the docstring of the env registered as ``env_id``."""
    spec = gym.spec(env_id)
    entry = spec.vector_entry_point or spec.entry_point
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(__import__(module, fromlist=[attr]), attr)
    doc = inspect.getdoc(entry) or ""
    return doc.splitlines()[0] if doc else ""


def registered_ids(namespace: str | None = NAMESPACE) -> list[str]:
    """Ids in gymnasium's registry under ``namespace`` (all ids when None)."""
    return sorted(
        env_id
        for env_id, spec in gym.registry.items()
        if namespace is None or spec.namespace == namespace
    )


__all__ = [
    "BanditVectorEnv",
    "SingleRunBandit",
    "FeatureBanditVec",
    "DuelingBanditVec",
    "MultiDuelingBanditVec",
    "ContextualDuelingBanditVec",
    "register_bandit",
    "register_envs",
    "registered_ids",
    "describe",
    "NAMESPACE",
]
