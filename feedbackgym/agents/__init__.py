"""Agents: bandit agents vectorised across runs (numpy/numba), and learners from feedback."""

from feedbackgym.agents import bandits  # noqa: F401  (registers the bandit agents)
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

__all__ = [
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
