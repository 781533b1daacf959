"""Learners from feedback (torch; SB3 does the RL), one module per family:

- :mod:`~feedbackgym.agents.learners.preference`: the shared feedback loop
  (:class:`PreferenceLearner`), pref-PPO and pref-SAC (PEBBLE), and the true-reward baselines.
- :mod:`~feedbackgym.agents.learners.queries`: which segment pairs to ask about.
- :mod:`~feedbackgym.agents.learners.cpl`: Contrastive Preference Learning (no reward model).
- :mod:`~feedbackgym.agents.learners.redistribution`: rewards from episode-end returns (RRD).
- :mod:`~feedbackgym.agents.learners.corrections`: PointGoal's goal learners from corrections
  in words and from preferences.
- :mod:`~feedbackgym.agents.learners.registry`: the ``--algo`` registry every learner joins.

The classes load on first use (``from feedbackgym.agents.learners import PrefPPO``), so importing
the registry does not import torch.
"""

from __future__ import annotations

from importlib import import_module

from feedbackgym.agents.learners.registry import LEARNERS, register_learner

#: Public classes -> the module defining them (imported on first access).
_CLASSES = {
    "PreferenceLearner": "preference",
    "PrefPPO": "preference",
    "PrefSAC": "preference",
    "TruePPO": "preference",
    "TrueSAC": "preference",
}


def __getattr__(name: str) -> object:
    if name in _CLASSES:
        return getattr(import_module(f"{__name__}.{_CLASSES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["LEARNERS", "register_learner", *_CLASSES]
