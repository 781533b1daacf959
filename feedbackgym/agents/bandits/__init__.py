"""K-armed bandit agents, vectorised across runs (numpy, numba), one module per family:

- :mod:`~feedbackgym.agents.bandits.base`: :class:`BanditAgent` (the verbs every bandit and
  dueling agent shares), the ``AGENTS`` registry and the per-run clock helpers.
- :mod:`~feedbackgym.agents.bandits.algorithms`: epsilon-greedy, UCB1, KL-UCB, Thompson
  sampling, EXP3, LinUCB, linear Thompson sampling.
- :mod:`~feedbackgym.agents.bandits.delayed`: agents built for late feedback (delayed-UCB,
  Q-PMD, delayed and batched Thompson sampling).
- :mod:`~feedbackgym.agents.bandits.language`: Thompson sampling that also reads corrections
  in words (lang-ts).
- :mod:`~feedbackgym.agents.bandits.kernels`: the numba kernels the agents step with (and the
  counter-based random streams the dueling kernels share).
- :mod:`~feedbackgym.agents.bandits.fused` and :mod:`~feedbackgym.agents.bandits.fused_loops`:
  a regret cell's whole horizon in one compiled loop (``--path``), and its registry.
"""

from feedbackgym.agents.bandits import (  # noqa: F401  (each module registers its agents)
    algorithms,
    delayed,
    language,
)
