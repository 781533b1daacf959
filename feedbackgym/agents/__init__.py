"""Agents, in two worlds:

- bandit and dueling-bandit agents, vectorised across runs (numpy, numba; ``AGENTS``):
  :mod:`feedbackgym.agents.bandits`, :mod:`feedbackgym.agents.dueling`;
- learners from feedback (torch; SB3 does the RL; ``LEARNERS``):
  :mod:`feedbackgym.agents.learners`.
"""

from feedbackgym.agents import (  # noqa: F401  (each subpackage registers its agents)
    bandits,
    dueling,
)
from feedbackgym.agents.bandits.algorithms import (
    EXP3,
    KLUCB,
    UCB1,
    EpsilonGreedy,
    LinearThompsonSampling,
    LinUCB,
    ThompsonSampling,
)
from feedbackgym.agents.bandits.base import AGENTS, BanditAgent, make_agent, register_agent
from feedbackgym.agents.bandits.language import LanguageThompsonSampling
from feedbackgym.agents.dueling.algorithms import (
    RMED1,
    RUCB,
    BeatTheMean,
    CoLSTIM,
    CopelandConfidenceBound,
    DoubleThompsonSampling,
    DuelingAgent,
    InterleavedFilter,
    MergeRUCB,
    SelfSparring,
)
from feedbackgym.agents.learners import LEARNERS, register_learner

#: The learners from feedback (SB3, torch) load on first use: ``feedbackgym.agents.PrefPPO``.
_LEARNERS = ("PreferenceLearner", "PrefPPO", "PrefSAC", "TruePPO", "TrueSAC")


def __getattr__(name: str) -> object:
    if name in _LEARNERS:
        from feedbackgym.agents import learners

        return getattr(learners, name)
    raise AttributeError(f"module 'feedbackgym.agents' has no attribute {name!r}")


__all__ = [
    *_LEARNERS,
    "LEARNERS",
    "register_learner",
    "AGENTS",
    "BanditAgent",
    "make_agent",
    "register_agent",
    "EpsilonGreedy",
    "UCB1",
    "KLUCB",
    "ThompsonSampling",
    "EXP3",
    "LinUCB",
    "LinearThompsonSampling",
    "LanguageThompsonSampling",
    "DuelingAgent",
    "InterleavedFilter",
    "BeatTheMean",
    "RUCB",
    "RMED1",
    "DoubleThompsonSampling",
    "CopelandConfidenceBound",
    "MergeRUCB",
    "SelfSparring",
    "CoLSTIM",
]
