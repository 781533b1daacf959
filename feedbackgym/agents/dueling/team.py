"""Agents for the multi-agent dueling bandit (``feedbackgym/team_duel_v0``), vectorised over runs.

Each agent proposes an arm; what it learns from is the env's ``feedback`` mode (see
:mod:`feedbackgym.envs.multiagent.team_duel_v0`). One object acts for all N agents of every run,
but agent i's proposal depends only on what agent i was told and on its own random stream:

- from **per-agent** feedback (each agent hears only its own proposal's outcome), every agent
  runs a cardinal bandit on its own win fraction: Sparring (Ailon, Karnin & Joachims 2014),
  here with Thompson sampling (``sparring-ts``) or UCB1 (``sparring-ucb``) as the black box;
- from **team** feedback (every agent sees all proposals and the whole verdict), every agent
  learns from every duel of the round robin: independent Self-Sparring over the team's shared
  Beta posterior (``team-self-sparring``; Sui et al. 2017), or, with two agents, a copy of any
  pairwise dueling-bandit agent (``team-dueling``: RUCB, Zoghi et al. 2014; DTS, Wu & Liu 2016;
  ...) per agent, the copies kept in step by a shared seed.

The agents share the verbs of :class:`~feedbackgym.agents.bandits.base.BanditAgent`:
``predict(obs)`` returns the proposals, shape ``(n_runs, n_agents)``; ``update(actions, rewards,
obs, next_obs)`` learns from one step (rewards ``(n_runs, n_agents)``, the next observation
carrying the team's verdict); ``learn(env, total_steps, checkpoints)`` plays a :class:`TeamDuelVec`
and returns the cumulative team regret. They live in their own registry (:data:`TEAM_AGENTS`,
:func:`make_team_agent`): they act only in the team-duel env, and it only with them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from feedbackgym.agents.bandits import kernels
from feedbackgym.agents.bandits.base import AGENTS, BanditAgent, init_params, log_clock
from feedbackgym.agents.dueling.algorithms import DuelingAgent
from feedbackgym.envs.multiagent.team_duel_v0 import MAX_AGENTS, TeamDuelVec, observation_layout
from feedbackgym.errors import ConfigError, check_positive_int, check_range
from feedbackgym.registry import Registry, check_kwargs

#: name -> agent class for the multi-agent dueling bandit.
TEAM_AGENTS: Registry[TeamDuelAgent] = Registry("multi-agent dueling agent")


class TeamDuelAgent(BanditAgent):
    """Base class: N agents proposing arms in ``n_runs`` independent team-duel runs.

    :param n_arms: number of arms K.
    :param n_agents: number of agents N, 2 .. 16.
    :param n_runs: number of independent runs acted for together.
    :param seed: seed of the agents' random generator (one stream per agent and run).
    """

    feedback_type = "team-duel"
    #: The env's feedback mode the agents learn from: "team" or "per-agent".
    feedback: ClassVar[str] = "team"
    #: Agent i's state holds what agent i was told at each step; learning from late feedback
    #: would need the step each item belongs to.
    delay_ok = False

    def __init__(
        self, n_arms: int, n_agents: int = 2, n_runs: int = 1, seed: int | None = None
    ) -> None:
        self.n_agents = check_positive_int("n_agents", n_agents)
        if not 2 <= self.n_agents <= MAX_AGENTS:
            raise ConfigError(f"n_agents must be in [2, {MAX_AGENTS}], got {n_agents}")
        if check_positive_int("n_arms", n_arms) < 2:
            raise ConfigError(f"n_arms must be at least 2, got {n_arms}")
        super().__init__(n_arms, n_runs, seed)

    def reset(self) -> None:
        super().reset()
        # Agent-major, so that agent i's rows are contiguous for the numba kernels.
        self._streams = self.rng.integers(
            0, 2**63, size=(self.n_agents, self.n_runs), dtype=np.uint64
        )
        self._proposals = np.zeros((self.n_agents, self.n_runs), dtype=np.int64)

    def _check_step(self, actions: Any, rewards: Any) -> tuple[np.ndarray, np.ndarray]:
        shape = (self.n_runs, self.n_agents)
        actions = np.asarray(actions)
        rewards = np.asarray(rewards, dtype=np.float64)
        if actions.size != self.n_runs * self.n_agents or rewards.size != actions.size:
            raise ConfigError(
                f"agent {self.registry_name!r} needs actions and rewards of shape {shape}, got "
                f"{actions.shape} and {rewards.shape}"
            )
        return actions.reshape(shape).astype(np.int64, copy=False), rewards.reshape(shape)

    @classmethod
    def check_env(cls, env: Any) -> None:
        """Raise ConfigError unless ``env`` is a team-duel env giving this agent's feedback."""
        base = getattr(env, "unwrapped", env)
        name = cls.registry_name or cls.__name__
        if getattr(base, "feedback_type", None) != "team-duel":
            raise ConfigError(
                f"agent {name!r} acts in the multi-agent dueling bandit (feedbackgym/team_duel_v0"
                f", TeamDuelVec), not in {type(base).__name__}"
            )
        if base.feedback != cls.feedback:
            fitting = [n for n in TEAM_AGENTS if TEAM_AGENTS.get(n).feedback == base.feedback]
            raise ConfigError(
                f"agent {name!r} learns from {cls.feedback} feedback but the env gives "
                f"feedback={base.feedback!r}; agents for it: {', '.join(fitting)}"
            )

    @classmethod
    def from_env(cls, env: Any, seed: int | None = None, **params: Any) -> TeamDuelAgent:
        """Build the agents for a :class:`TeamDuelVec`: K, N, runs and horizon read off it."""
        cls.check_env(env)
        check_kwargs(cls, params, f"agent {cls.registry_name or cls.__name__!r}")
        base = getattr(env, "unwrapped", env)
        kwargs: dict[str, Any] = {"n_agents": base.n_agents, "n_runs": env.num_envs, "seed": seed}
        if "horizon" in init_params(cls):
            kwargs["horizon"] = int(base.horizon)
        return cls(base.n_arms, **{**kwargs, **params})


def make_team_agent(name: str, env: TeamDuelVec, seed: int | None = None, **params: Any) -> Any:
    """Build the agent registered as ``name`` in :data:`TEAM_AGENTS` for ``env``."""
    return TEAM_AGENTS.get(name).from_env(env, seed=seed, **params)


class _BetaThompson(TeamDuelAgent):
    """Shared state of the Thompson-sampling agents: Beta(S + 1, F + 1) per arm.

    ``successes`` and ``failures`` have shape ``(n_agents, n_runs, K)`` for agents that each
    keep their own, ``(1, n_runs, K)`` when every agent's copy is the same (team feedback).
    """

    _own_posterior: ClassVar[bool] = True

    def reset(self) -> None:
        super().reset()
        copies = self.n_agents if self._own_posterior else 1
        self.successes = np.zeros((copies, self.n_runs, self.n_arms))
        self.failures = np.zeros_like(self.successes)
        self._refresh()

    def _refresh(self) -> None:
        # Gamma-sampler constants of Beta(S + 1, F + 1) (see kernels.beta_thompson_choose).
        self._alpha = np.ascontiguousarray(kernels.gamma_constants(self.successes + 1.0))
        self._beta = np.ascontiguousarray(kernels.gamma_constants(self.failures + 1.0))

    def predict(self, obs: Any = None) -> np.ndarray:
        for i in range(self.n_agents):
            c = i if self._own_posterior else 0
            kernels.beta_thompson_choose(
                self._alpha[c], self._beta[c], self._streams[i], self._proposals[i]
            )
        return self._proposals.T.copy()


@TEAM_AGENTS.register("sparring-ts")
class SparringThompson(_BetaThompson):
    """Sparring with Thompson sampling: each agent a Beta-Bernoulli bandit on its own outcomes.

    Ailon, Karnin & Joachims (2014), "Reducing Dueling Bandits to Cardinal Bandits" (ICML),
    Sparring: each player runs a cardinal (multi-armed) bandit whose reward is whether its own
    arm won. With N agents, agent i's proposal a_i duels each of the N - 1 others and its reward
    is the fraction r_i it won; it credits S[a_i] += (N - 1) r_i and F[a_i] += (N - 1)(1 - r_i)
    and proposes the argmax of theta_k ~ Beta(S_k + 1, F_k + 1) (Thompson 1933; Agrawal & Goyal
    2012). Deviations: Ailon et al.'s guarantee for Sparring is for adversarial black boxes
    (EXP3) and two players; Thompson sampling as the black box and N > 2 players are our
    choices. Learns from ``feedback="per-agent"``.
    """

    feedback = "per-agent"

    def update(self, actions: np.ndarray, rewards: np.ndarray, obs: Any = None) -> None:
        actions, rewards = self._check_step(actions, rewards)
        duels = self.n_agents - 1
        wins = rewards * duels
        if np.any((rewards < 0.0) | (rewards > 1.0)) or np.any(wins != np.round(wins)):
            raise ConfigError(
                f"agent {self.registry_name!r} needs per-agent feedback: each agent's fraction "
                f"of its {duels} duel(s) won, in [0, 1]"
            )
        for i in range(self.n_agents):
            a = actions[:, i]
            self.successes[i, self._rows, a] += wins[:, i]
            self.failures[i, self._rows, a] += duels - wins[:, i]
            self._alpha[i, self._rows, a] = kernels.gamma_constants(
                self.successes[i, self._rows, a] + 1.0
            )
            self._beta[i, self._rows, a] = kernels.gamma_constants(
                self.failures[i, self._rows, a] + 1.0
            )
        self.t += 1


@TEAM_AGENTS.register("sparring-ucb")
class SparringUCB(TeamDuelAgent):
    """Sparring with UCB1: each agent an upper-confidence bandit on its own outcomes.

    Ailon, Karnin & Joachims (2014), Sparring, with UCB1 (Auer, Cesa-Bianchi & Fischer 2002) as
    each agent's black box: agent i proposes the arm of largest mean own win fraction
    + sqrt(2 log t / n), n its proposals of that arm, untried arms first. Deviations: Ailon et
    al.'s guarantee for Sparring is for adversarial black boxes (EXP3) and two players, so
    UCB1's comes without one; ties are broken at random per agent (so that identical agents
    need not propose in lockstep). Learns from ``feedback="per-agent"``.

    :param exploration: the constant c of the bonus sqrt(c log t / n) (UCB1: 2), > 0.
    """

    feedback = "per-agent"

    def __init__(
        self,
        n_arms: int,
        n_agents: int = 2,
        n_runs: int = 1,
        seed: int | None = None,
        exploration: float = 2.0,
    ) -> None:
        self.exploration = check_range("exploration", exploration, 0.0, low_open=True)
        super().__init__(n_arms, n_agents, n_runs, seed)

    def reset(self) -> None:
        super().reset()
        shape = (self.n_agents, self.n_runs, self.n_arms)
        self.counts = np.zeros(shape)
        self.wins = np.zeros(shape)

    def predict(self, obs: Any = None) -> np.ndarray:
        bonus = self.exploration * log_clock(self.t + 1)  # each run's own clock
        with np.errstate(divide="ignore", invalid="ignore"):
            index = self.wins / self.counts + np.sqrt(bonus[None, :, None] / self.counts)
        index = np.where(self.counts == 0, np.inf, index)
        jitter = self.rng.random(index.shape)
        best = index.max(axis=2, keepdims=True)
        return np.where(index == best, jitter, -1.0).argmax(axis=2).T.copy()

    def update(self, actions: np.ndarray, rewards: np.ndarray, obs: Any = None) -> None:
        actions, rewards = self._check_step(actions, rewards)
        if np.any((rewards < 0.0) | (rewards > 1.0)):
            raise ConfigError(
                f"agent {self.registry_name!r} needs per-agent feedback: each agent's fraction "
                "of its duels won, in [0, 1]"
            )
        agents = np.arange(self.n_agents)[None, :]
        rows = self._rows[:, None]
        self.counts[agents, rows, actions] += 1.0
        self.wins[agents, rows, actions] += rewards
        self.t += 1


@TEAM_AGENTS.register("team-self-sparring")
class TeamSelfSparring(_BetaThompson):
    """Independent Self-Sparring on the team's verdict: every agent learns from every duel.

    Sui, Zhuang, Burdick & Yue (2017), "Multi-dueling Bandits with Dependent Arms" (UAI),
    Algorithm 1 (independent Beta priors, eta = 1), with the m slots played by the N agents:
    each agent draws theta_k ~ Beta(S_k + 1, F_k + 1) from its own random stream and proposes
    the argmax; every pairwise outcome of the round robin credits S_winner += 1 and
    F_loser += 1. The verdict is read from the observation each agent receives, the same for
    all agents under ``feedback="team"``, so every agent's posterior is the same; it is stored
    once. As in ``self-sparring``, a duel of an arm against itself is credited both ways.
    Deviation: the slots are chosen by agents that do not coordinate (Sui et al.'s slots are
    drawn by one learner, which here changes nothing: their draws are independent too).
    """

    feedback = "team"
    _own_posterior = False

    def update(
        self, actions: np.ndarray, rewards: np.ndarray, obs: Any = None, next_obs: Any = None
    ) -> None:
        actions, rewards = self._check_step(actions, rewards)
        outcomes = _verdict(self, next_obs)
        n = self.n_agents
        first, second = np.triu_indices(n, 1)
        s, f = self.successes[0], self.failures[0]
        for c in range(first.size):
            a, b = actions[:, first[c]], actions[:, second[c]]
            won = outcomes[:, c]
            s[self._rows, a] += won
            f[self._rows, b] += won
            s[self._rows, b] += 1.0 - won
            f[self._rows, a] += 1.0 - won
        self._refresh()
        self.t += 1


def _verdict(agent: TeamDuelAgent, next_obs: Any) -> np.ndarray:
    """The round robin's outcomes, ``(n_runs, N (N - 1) / 2)`` in ``np.triu_indices`` order.

    Read from agent 0's observation: its own outcomes (pairs (0, l)) followed by the others'
    (pairs (j, l), 1 <= j < l) are exactly that order (see ``observation_layout``).
    """
    n, k = agent.n_agents, agent.n_arms
    size = n * k + n * (n - 1) // 2
    obs = None if next_obs is None else np.asarray(next_obs, dtype=np.float64)
    if obs is None or obs.size != agent.n_runs * n * size:
        raise ConfigError(
            f"agent {agent.registry_name!r} needs the team's verdict: the env's next "
            f"observation, shape ({agent.n_runs}, {n}, {size}) (feedback='team')"
        )
    obs = obs.reshape(agent.n_runs, n, size)
    lay = observation_layout(n, k)
    outcomes = obs[:, 0, lay["own_outcomes"].start : lay["other_outcomes"].stop]
    if np.any((outcomes != 0.0) & (outcomes != 1.0)):
        raise ConfigError(f"agent {agent.registry_name!r} needs duel outcomes 0 or 1")
    return outcomes


@TEAM_AGENTS.register("team-dueling")
class TeamDueling(TeamDuelAgent):
    """Two agents, each running a copy of a pairwise dueling-bandit agent on the team's verdict.

    Both agents see the same verdicts under ``feedback="team"``; their copies of the learner
    (any registered pairwise, non-contextual dueling agent: ``rucb``, Zoghi et al. 2014;
    ``dts``, Wu & Liu 2016; ``rmed1``, ``ccb``, ...) are seeded alike, so they choose the same
    duel (i, j) every step without talking, and agent 0 proposes i, agent 1 proposes j. The
    verdict, 1.0 when agent 0's proposal won, is the learner's duel outcome. One copy is kept.
    Deviation from a single dueling learner: none in what is played; what it assumes is the
    shared seed (common randomness), which a team of separate learners would have to agree on.

    :param learner: the registered dueling agent each agent runs.
    :param learner_kwargs: keyword arguments of that agent (e.g. ``{"alpha": 0.51}``).
    :param horizon: passed to learners that take one (set from the env by ``from_env``).
    """

    feedback = "team"

    def __init__(
        self,
        n_arms: int,
        n_agents: int = 2,
        n_runs: int = 1,
        seed: int | None = None,
        learner: str = "rucb",
        learner_kwargs: dict[str, Any] | None = None,
        horizon: int = 1000,
    ) -> None:
        if n_agents != 2:
            raise ConfigError(
                f"team-dueling runs a pairwise dueling agent, so it needs n_agents=2, got "
                f"{n_agents}; for more agents use team-self-sparring"
            )
        cls = AGENTS.get(learner)
        pairwise = [
            n
            for n in AGENTS
            if issubclass(AGENTS.get(n), DuelingAgent) and not AGENTS.get(n).contextual
        ]
        if not issubclass(cls, DuelingAgent) or cls.contextual:
            raise ConfigError(
                f"learner must be a pairwise dueling agent ({', '.join(pairwise)}), got {learner!r}"
            )
        self.learner_name = learner
        self.learner_kwargs = dict(learner_kwargs or {})
        check_kwargs(cls, self.learner_kwargs, f"learner {learner!r}")
        self.horizon = check_positive_int("horizon", horizon)
        super().__init__(n_arms, n_agents, n_runs, seed)

    def reset(self) -> None:
        super().reset()
        cls = AGENTS.get(self.learner_name)
        kwargs = dict(self.learner_kwargs)
        if "horizon" in init_params(cls):
            kwargs.setdefault("horizon", self.horizon)
        self.learner = cls(self.n_arms, n_runs=self.n_runs, seed=self.seed, **kwargs)

    def predict(self, obs: Any = None) -> np.ndarray:
        return np.asarray(self.learner.predict(None), dtype=np.int64).reshape(self.n_runs, 2)

    def update(self, actions: np.ndarray, rewards: np.ndarray, obs: Any = None) -> None:
        actions, rewards = self._check_step(actions, rewards)
        verdict = rewards[:, 0]
        if np.any((verdict != 0.0) & (verdict != 1.0)) or np.any(rewards[:, 1] != verdict):
            raise ConfigError(
                f"agent {self.registry_name!r} needs the team's verdict, the same for both "
                "agents: 1.0 when agent 0's proposal won, else 0.0 (feedback='team')"
            )
        self.learner.update(actions, verdict)
        self.t += 1


__all__ = [
    "TEAM_AGENTS",
    "SparringThompson",
    "SparringUCB",
    "TeamDuelAgent",
    "TeamDueling",
    "TeamSelfSparring",
    "make_team_agent",
]
