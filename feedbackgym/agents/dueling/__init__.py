"""Dueling-bandit agents, vectorised across runs, built on :mod:`feedbackgym.agents.bandits`:

- :mod:`~feedbackgym.agents.dueling.algorithms`: :class:`DuelingAgent`, Interleaved Filter,
  Beat the Mean, RUCB, RMED1, Double Thompson Sampling, CCB, MergeRUCB, Self-Sparring, CoLSTIM.
- :mod:`~feedbackgym.agents.dueling.delayed`: RUCB and DTS under delayed duels (Q-PMD).
- :mod:`~feedbackgym.agents.dueling.team`: agents of the multi-agent team duel
  (``TEAM_AGENTS``: sparring, self-sparring, team dueling).
- :mod:`~feedbackgym.agents.dueling.kernels` and :mod:`~feedbackgym.agents.dueling.fused_loops`:
  their numba kernels and fused regret loops.
"""

from feedbackgym.agents.dueling import (  # noqa: F401  (each module registers its agents)
    algorithms,
    delayed,
)
