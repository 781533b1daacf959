"""Gymnasium environments of feedbackgym and their registration under ``feedbackgym/``."""

from __future__ import annotations

import difflib
import importlib
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
from feedbackgym.errors import ConfigError

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
    """First line of the docstring of the env registered as ``env_id`` (headings skipped;
    ``module:ID`` imports ``module`` first)."""
    spec = gym.spec(resolve_env_id(env_id))
    for entry in (spec.vector_entry_point, spec.entry_point):
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = getattr(__import__(module, fromlist=[attr]), attr)
        # a docstring of its own: gymnasium's generic vector classes only inherit theirs
        own = entry.__dict__.get("__doc__") if isinstance(entry, type) else entry.__doc__
        lines = [ln for ln in inspect.cleandoc(own or "").splitlines() if ln.strip()]
        text = [ln for ln in lines if not ln.startswith("#")]  # Gymnasium's "## Description"
        if text:
            return text[0]
    return ""


def resolve_env_id(env_id: str) -> str:
    """The registered id that ``env_id`` names; every command and study reads env ids here.

    ``module:ID`` (gymnasium's convention) imports ``module`` first, whose import registers
    ``ID`` (with ``gymnasium.register``, :func:`register_bandit` or
    :func:`~feedbackgym.envs.multiagent.register_multiagent_env`), and returns ``ID``; a plain
    ``ID`` is returned as it is. ``ID`` must then be a Gymnasium id or a multi-agent id
    (``feedbackgym envs`` lists both). A module that fails to import, or an id still unknown,
    is a one-line ConfigError naming it and what is valid. Callers keep the ``module:ID`` form
    they were given wherever it travels (configs, worker processes), so each process that
    resolves it imports the module too.
    """
    from feedbackgym.envs.multiagent import MULTIAGENT_ENVS

    if not isinstance(env_id, str) or not env_id.strip():
        raise ConfigError(
            f"env must be an env id like {NAMESPACE}/BernoulliBandit-v0 or module:ID, "
            f"got {env_id!r}"
        )
    module, colon, name = env_id.rpartition(":")
    new: list[str] = []
    if colon:
        if not module or not name:
            raise ConfigError(
                f"env {env_id!r}: write module:ID (the module whose import registers ID), "
                "e.g. my_envs:my/Env-v0"
            )
        new = import_env_module(module, env_id)
    if name in gym.registry or name in MULTIAGENT_ENVS:
        return name
    try:
        gym.spec(name)  # gymnasium's own message for a known name of another version
        reason = ""
    except gym.error.Error as err:
        reason = str(err).splitlines()[0] if "version" in str(err).lower() else ""
    valid = registered_ids() + sorted(MULTIAGENT_ENVS)
    close = difflib.get_close_matches(name, [*gym.registry, *MULTIAGENT_ENVS], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    if colon:
        made = f"registered {', '.join(new)}" if new else "registered no env"
        reason = f"importing {module!r} {made}" + (f"; {reason}" if reason else "")
    raise ConfigError(
        f"unknown env {env_id!r}{f' ({reason})' if reason else ''}; valid: {', '.join(valid)}, "
        f"any Gymnasium id, or module:ID to import module first{hint}"
    )


#: module -> the ids its import registered (the first time :func:`import_env_module` ran it).
_REGISTERED_BY: dict[str, set[str]] = {}


def import_env_module(module: str, env_id: str | None = None) -> list[str]:
    """Import ``module`` (whose import registers envs) and return the ids it registers
    (those of its envs already registered by an earlier import included); a module that fails
    to import is a one-line ConfigError naming it (and ``env_id``, the id that named it)."""
    from feedbackgym.envs.multiagent import MULTIAGENT_ENVS

    before = set(gym.registry) | set(MULTIAGENT_ENVS)
    what = f"env {env_id!r}: module" if env_id else "module"
    try:
        importlib.import_module(module)
    except Exception as err:  # the user's module: any failure of its import is one line
        detail = str(err).splitlines()[0] if str(err) else ""
        cause = f"{type(err).__name__}: {detail}" if detail else type(err).__name__
        raise ConfigError(
            f"{what} {module!r} cannot be imported ({cause}); the module must be importable, "
            "e.g. on PYTHONPATH or installed"
        ) from None
    ids = (set(gym.registry) | set(MULTIAGENT_ENVS)) - before
    # what its first import registered; else (imported elsewhere) the envs whose code it holds
    ids = _REGISTERED_BY.setdefault(module, ids) | ids
    for env, spec in gym.registry.items():
        entries = (spec.entry_point, spec.vector_entry_point)
        if any(_entry_module(e) == module for e in entries if e is not None):
            ids.add(env)
    ids |= {
        env for env, mod in MULTIAGENT_ENVS.items() if mod == module or mod.startswith(module + ".")
    }
    return sorted(env for env in ids if env in gym.registry or env in MULTIAGENT_ENVS)


def _entry_module(entry: Any) -> str:
    if isinstance(entry, str):
        return entry.partition(":")[0]
    return getattr(entry, "__module__", "") or ""


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
    "resolve_env_id",
    "import_env_module",
    "describe",
    "NAMESPACE",
]
