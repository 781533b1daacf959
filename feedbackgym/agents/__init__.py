"""Agents: bandit agents vectorised across runs (numpy/numba), and learners from feedback."""

from feedbackgym.agents import (
    bandits,  # noqa: F401  (registers the bandit agents)
    delayed,  # noqa: F401  (registers the delay-aware agents)
)
from feedbackgym.agents.bandits import (
    EXP3,
    KLUCB,
    UCB1,
    EpsilonGreedy,
    LinearThompsonSampling,
    LinUCB,
    ThompsonSampling,
)
from feedbackgym.agents.base import AGENTS, BanditAgent, make_agent, register_agent
from feedbackgym.agents.dueling import (
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
from feedbackgym.agents.language_bandit import LanguageThompsonSampling

#: The learners from feedback (SB3, torch) load on first use: ``feedbackgym.agents.PrefPPO``.
_LEARNERS = ("LEARNERS", "PreferenceLearner", "PrefPPO", "PrefSAC", "TruePPO", "TrueSAC")


def __getattr__(name: str) -> object:
    if name in _LEARNERS or name == "register_learner":
        from feedbackgym.agents import preference

        return getattr(preference, name)
    raise AttributeError(f"module 'feedbackgym.agents' has no attribute {name!r}")


__all__ = [
    *_LEARNERS,
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
