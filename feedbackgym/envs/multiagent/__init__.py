"""Multi-agent environments (PettingZoo ``ParallelEnv``): the registry ``feedbackgym envs`` lists.

Gymnasium's registry holds single-agent envs only, so multi-agent envs have their own: an id
(``<package>/<name>_v<N>``) names a module following PettingZoo's convention (``env``,
``parallel_env``, ``raw_env``). The standard tasks come from ``mpe2`` as they are; our own live
beside this file. The hidden truth a study measures with is the *team reward*: an env puts it
in ``infos[agent]["team_reward"]`` (the same for every agent); for envs that do not (``mpe2``),
it is the mean of the agents' rewards (:func:`team_reward`).
"""

from __future__ import annotations

import importlib
import inspect
from importlib import metadata
from typing import Any

from feedbackgym.errors import ConfigError

#: id -> module exposing ``parallel_env`` (PettingZoo's module convention).
MULTIAGENT_ENVS: dict[str, str] = {
    "mpe2/simple_spread_v3": "mpe2.simple_spread_v3",
    "mpe2/simple_tag_v3": "mpe2.simple_tag_v3",
    "mpe2/simple_reference_v3": "mpe2.simple_reference_v3",
    "feedbackgym/team_duel_v0": "feedbackgym.envs.multiagent.team_duel_v0",
    "feedbackgym/commons_v0": "feedbackgym.envs.multiagent.commons_v0",
}

#: One line per id for ``feedbackgym envs`` (own modules: the first line of their docstring).
DESCRIPTIONS: dict[str, str] = {
    "mpe2/simple_spread_v3": "MPE cooperative navigation: N agents cover N landmarks",
    "mpe2/simple_tag_v3": "MPE predator-prey: slower adversaries chase a faster good agent",
    "mpe2/simple_reference_v3": "MPE: two agents each guide the other to a landmark by speaking",
}

#: The combination the ``multiagent`` extra pins and CI tests.
TESTED_VERSIONS = {"pettingzoo": "1.27.0", "supersuit": "3.11.0", "mpe2": "1.1.1"}

#: Versions known not to work with gymnasium 1.x and SB3 2.x, with why (PettingZoo #723,
#: #919, #1078; SuperSuit #220): (package, first good version, what breaks below it).
MINIMUM_VERSIONS = [
    ("pettingzoo", (1, 24, 0), "older PettingZoo targets gym/gymnasium 0.x APIs"),
    ("supersuit", (3, 9, 0), "older SuperSuit vector wrappers fail with gymnasium 1.x"),
]


def register_multiagent_env(env_id: str, module: str, description: str | None = None) -> None:
    """Make ``module`` (a PettingZoo-style module path with ``parallel_env``) known as ``env_id``.

    Re-registering the same pair is a no-op; a different module under a taken id is refused.
    ``description`` (default: the module docstring's first line) is what ``feedbackgym envs``
    shows.
    """
    if "/" not in env_id:
        raise ConfigError(f"multi-agent env id must be '<package>/<name>_v<N>', got {env_id!r}")
    if MULTIAGENT_ENVS.get(env_id, module) != module:
        raise ConfigError(f"multi-agent env id {env_id!r} is taken by {MULTIAGENT_ENVS[env_id]}")
    MULTIAGENT_ENVS[env_id] = module
    if description is not None:
        DESCRIPTIONS[env_id] = description


def is_multiagent(env_id: str) -> bool:
    """Whether ``env_id`` names a registered multi-agent env."""
    return env_id in MULTIAGENT_ENVS


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def check_versions() -> None:
    """One ConfigError line when PettingZoo or SuperSuit is missing or known not to work."""
    for package, minimum, why in MINIMUM_VERSIONS:
        try:
            installed = metadata.version(package)
        except metadata.PackageNotFoundError:
            raise ConfigError(
                f"multi-agent envs need {package} (install the extra: pip install "
                f"'feedbackgym[multiagent]'; tested: {_pins()})"
            ) from None
        if _version(installed) < minimum:
            raise ConfigError(
                f"{package} {installed} is known not to work here ({why}); install "
                f"{package}>={'.'.join(map(str, minimum))} (tested: {_pins()})"
            )


def _pins() -> str:
    return ", ".join(f"{k}=={v}" for k, v in TESTED_VERSIONS.items())


def _module(env_id: str) -> Any:
    if env_id not in MULTIAGENT_ENVS:
        raise ConfigError(
            f"unknown multi-agent env {env_id!r}; valid: {', '.join(sorted(MULTIAGENT_ENVS))}"
        )
    check_versions()
    try:
        return importlib.import_module(MULTIAGENT_ENVS[env_id])
    except ImportError as exc:
        raise ConfigError(
            f"multi-agent env {env_id!r} cannot be imported ({exc}); install the extra: pip "
            f"install 'feedbackgym[multiagent]' (tested: {_pins()})"
        ) from None


def make_parallel_env(env_id: str, **kwargs: Any) -> Any:
    """``parallel_env(**kwargs)`` of the module registered as ``env_id``; bad keyword arguments
    are a one-line ConfigError naming the valid ones."""
    module = _module(env_id)
    try:
        return module.parallel_env(**kwargs)
    except TypeError as exc:
        valid = ", ".join(_keywords(module)) or "none"
        raise ConfigError(f"env_kwargs for {env_id}: {exc}; valid keywords: {valid}") from None


def _keywords(module: Any) -> list[str]:
    target = getattr(module, "raw_env", module.parallel_env)
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [name for name, p in parameters.items() if p.kind in kinds]


def describe_multiagent(env_id: str) -> str:
    """The registered description, else the first line of the module's docstring."""
    if env_id in DESCRIPTIONS:
        return DESCRIPTIONS[env_id]
    try:
        module = importlib.import_module(MULTIAGENT_ENVS[env_id])
    except ImportError:
        return "(not installed: pip install 'feedbackgym[multiagent]')"
    doc = inspect.getdoc(module)
    return doc.splitlines()[0] if doc else ""


def team_reward(rewards: dict[str, float], infos: dict[str, dict[str, Any]]) -> float:
    """The hidden team reward of one step: ``infos[agent]["team_reward"]`` where the env gives
    it, else the mean of the agents' rewards."""
    for info in infos.values():
        if isinstance(info, dict) and "team_reward" in info:
            return float(info["team_reward"])
    return float(sum(rewards.values()) / max(len(rewards), 1))


__all__ = [
    "MULTIAGENT_ENVS",
    "TESTED_VERSIONS",
    "check_versions",
    "describe_multiagent",
    "is_multiagent",
    "make_parallel_env",
    "register_multiagent_env",
    "team_reward",
]
