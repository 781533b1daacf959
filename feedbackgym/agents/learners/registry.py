"""The ``--algo`` registry of learners from feedback.

Every learner module imports :func:`register_learner` from here and registers its classes; the
built-in names are listed below as data (``"module:Class"``), so the registry names every
learner without importing any, and a learner's module loads (torch, SB3) when it is first used.
User classes join with :func:`register_learner`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from feedbackgym.registry import Registry

if TYPE_CHECKING:
    from feedbackgym.agents.learners.preference import PreferenceLearner

_HERE = "feedbackgym.agents.learners"

#: The built-in learners: ``--algo`` name -> ``"module:Class"``.
BUILTIN_LEARNERS = {
    "pref-ppo": f"{_HERE}.preference:PrefPPO",
    "ppo": f"{_HERE}.preference:TruePPO",
    "pref-sac": f"{_HERE}.preference:PrefSAC",
    "sac": f"{_HERE}.preference:TrueSAC",
    "rrd-ppo": f"{_HERE}.redistribution:RRDPPO",
    "rrd-sac": f"{_HERE}.redistribution:RRDSAC",
    "cpl": f"{_HERE}.cpl:CPL",
    "lang-goal": f"{_HERE}.corrections:LanguageGoalLearner",
    "pref-goal": f"{_HERE}.corrections:PreferenceGoalLearner",
}

LEARNERS: Registry[PreferenceLearner] = Registry("algo")
for _name, _target in BUILTIN_LEARNERS.items():
    LEARNERS.register_lazy(_name, _target)


def register_learner(name: str, cls: type | None = None, **kwargs: Any) -> Any:
    """Add a learner class to the ``--algo`` registry under ``name`` (also a decorator)."""
    return LEARNERS.register(name, cls, **kwargs)
