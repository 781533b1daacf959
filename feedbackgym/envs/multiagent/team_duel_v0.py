"""Multi-agent dueling bandit: each agent proposes an arm, the team says which proposal it prefers.

N agents share K arms with a preference matrix P (P_ij: the probability that arm i beats arm j).
Every step each agent proposes an arm; the team compares the proposals pairwise (a round robin:
every pair of agents' proposals is dueled once, i beating j with probability P_ij) and gives its
verdict. Feedback is the point: in ``feedback="team"`` mode every agent is shown all proposals
and the whole verdict, and every agent's reward is the team's verdict, coded as in
``DuelingBandit-v0`` and ``MultiDuelingBandit-v0``: with 2 agents 1.0 when agent 0's proposal
won, else the index of the winning agent (most pairwise wins, ties broken at random). In
``feedback="per-agent"`` mode each agent is told only how its own proposal fared: its reward is
the fraction of its duels it won, and it sees neither the others' proposals nor their duels.
With two agents learning from per-agent feedback this is Sparring (Ailon, Karnin & Joachims
2014, "Reducing Dueling Bandits to Cardinal Bandits", ICML); with team feedback it is the
multi-dueling setting of Sui, Zhuang, Burdick & Yue (2017, "Multi-dueling Bandits with
Dependent Arms", UAI) and Brost et al. (2016, "Multi-Dueling Bandits and Their Application to
Online Ranker Evaluation", CIKM) with the subset chosen by independent agents.

The hidden truth goes to ``infos[agent]`` (the agents never read it): ``regret``, the team's
dueling regret of the step, the mean of Delta_k = P(b* beats k) - 1/2 over the proposals (b* the
Condorcet winner; with 2 agents ARCHITECTURE.md's "average" regret, in general Sui et al.'s
multi-dueling regret), ``regret_strong`` / ``regret_weak`` (max / min), ``team_reward`` = -regret
(the same for every agent), ``agent_reward`` = -Delta of the agent's own proposal, and
``condorcet_winner``.

One implementation: :class:`TeamDuelVec` steps many independent runs in one numpy call (for
regret studies, ``feedbackgym.agents.dueling.team``); :class:`raw_env`, the PettingZoo
``ParallelEnv``, is a one-run view of it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from feedbackgym.envs.bandits import DEFAULT_HORIZON, BanditVectorEnv
from feedbackgym.envs.dueling import (
    CONDORCET_FAMILIES,
    condorcet_winner,
    generate_matrix,
    utility_matrix,
    validate_preference_matrix,
)
from feedbackgym.errors import ConfigError, check_positive_int, check_range

FEEDBACK_MODES = ("team", "per-agent")
#: Most agents a team may have (the observation grows as N K + N (N - 1) / 2).
MAX_AGENTS = 16


def observation_layout(n_agents: int, n_arms: int) -> dict[str, slice]:
    """Where each part of an agent's observation lies (all parts describe the previous step).

    Seen from agent i, with "others" the other agents in index order:

    - ``own_proposal``: one-hot of i's proposal (K entries);
    - ``other_proposals``: one-hot of each other agent's proposal ((N - 1) K; team mode only);
    - ``own_outcomes``: 1.0 where i's proposal beat that other agent's (N - 1 entries);
    - ``other_outcomes``: for each pair (j, l), j < l, of others, 1.0 where j's proposal beat
      l's ((N - 1)(N - 2) / 2 entries; team mode only).

    Entries a mode does not show are 0, and so is everything before the first step.
    """
    n, k = n_agents, n_arms
    own_end = n * k + n - 1
    return {
        "own_proposal": slice(0, k),
        "other_proposals": slice(k, n * k),
        "own_outcomes": slice(n * k, own_end),
        "other_outcomes": slice(own_end, n * k + n * (n - 1) // 2),
    }


def observation_size(n_agents: int, n_arms: int) -> int:
    """Length of one agent's observation: N K + N (N - 1) / 2."""
    return n_agents * n_arms + n_agents * (n_agents - 1) // 2


class TeamDuelVec(BanditVectorEnv):
    """``num_envs`` independent runs of the multi-agent dueling bandit, stepped together.

    The action of a run is one arm per agent, shape ``(num_envs, n_agents)``. A step returns
    per-agent arrays: observations ``(num_envs, n_agents, D)`` (see :func:`observation_layout`)
    and rewards ``(num_envs, n_agents)`` (the verdict in team mode, the own win fraction in
    per-agent mode: see the module docstring). ``info`` holds the hidden truth per run:
    ``regret`` (mean Delta of the proposals), ``regret_strong``, ``regret_weak``,
    ``team_reward`` (= -regret), ``agent_reward`` (``(num_envs, n_agents)``, -Delta of each
    proposal) and ``condorcet_winner``.

    The preference matrix is given, built from BTL utilities, or drawn from a family that always
    has a Condorcet winner (``btl``, ``thurstone``, ``random-condorcet``; see
    :class:`~feedbackgym.envs.dueling.DuelingBanditVec`): once from ``matrix_seed`` (default 0:
    one fixed matrix for every run and every reset), or per run at reset when ``matrix_seed``
    is None. A matrix without a Condorcet winner is refused: team regret is measured against it.

    :param n_agents: number of agents N, 2 .. 16.
    :param preference_matrix: the K x K matrix (validated; needs a Condorcet winner).
    :param family: the family the matrix is drawn from when none is given.
    :param n_arms: number of arms K when the matrix is drawn.
    :param utilities: BTL utilities (P_ij = logistic(scale (u_i - u_j))); K = their count.
    :param scale: slope of the btl / thurstone link, > 0.
    :param margin: smallest P(b* beats k) - 1/2 in the random-condorcet family, in [0, 1/2).
    :param matrix_seed: seed of the one fixed matrix; None draws a matrix per run at reset.
    :param feedback: "team" or "per-agent": what every agent is shown and rewarded with.
    :param horizon: steps per episode.
    """

    feedback_type = "team-duel"
    regret_metrics = ("regret", "strong", "weak")
    has_condorcet_winner = True

    def __init__(
        self,
        num_envs: int = 1,
        n_agents: int = 2,
        preference_matrix: list[list[float]] | None = None,
        family: str = "btl",
        n_arms: int = 5,
        utilities: list[float] | None = None,
        scale: float = 3.0,
        margin: float = 0.1,
        matrix_seed: int | None = 0,
        feedback: str = "team",
        horizon: int = DEFAULT_HORIZON,
    ) -> None:
        if feedback not in FEEDBACK_MODES:
            raise ConfigError(
                f"feedback must be one of {', '.join(FEEDBACK_MODES)}, got {feedback!r}"
            )
        self.feedback = feedback
        self.n_agents = check_positive_int("n_agents", n_agents)
        if not 2 <= self.n_agents <= MAX_AGENTS:
            raise ConfigError(f"n_agents must be in [2, {MAX_AGENTS}], got {n_agents}")
        if family not in CONDORCET_FAMILIES:
            raise ConfigError(
                f"family must be one with a Condorcet winner ({', '.join(CONDORCET_FAMILIES)}), "
                f"got {family!r}"
            )
        self.family = family
        self.scale = check_range("scale", scale, 0.0, low_open=True)
        self.margin = check_range("margin", margin, 0.0, 0.5, high_open=True)
        fixed = None
        if preference_matrix is not None and utilities is not None:
            raise ConfigError("give either preference_matrix or utilities, not both")
        if preference_matrix is not None:
            fixed = validate_preference_matrix(preference_matrix)
            if condorcet_winner(fixed) is None:
                raise ConfigError(
                    "preference_matrix has no Condorcet winner (an arm beating every other with "
                    "probability > 1/2); team regret is measured against one"
                )
            self.family = "given"
        elif utilities is not None:
            u = _as_utilities(utilities)
            fixed = utility_matrix(u, "logistic", self.scale)
            if condorcet_winner(fixed) is None:
                raise ConfigError(f"utilities must have a single largest value, got {utilities!r}")
            self.family = "given"
        if fixed is not None:
            n_arms = fixed.shape[0]
        elif matrix_seed is not None:
            if check_positive_int("n_arms", n_arms) < 2:
                raise ConfigError(f"n_arms must be at least 2, got {n_arms}")
            fixed = self._draw(np.random.default_rng(matrix_seed), int(n_arms))
        self.matrix_seed = matrix_seed
        self._fixed = fixed
        super().__init__(num_envs, n_arms, horizon)
        n, k = self.n_agents, self.n_arms
        self.observation_size = observation_size(n, k)
        self.layout = observation_layout(n, k)
        self.single_observation_space = spaces.Box(
            0.0, 1.0, shape=(n, self.observation_size), dtype=np.float32
        )
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.single_action_space = spaces.MultiDiscrete([k] * n)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        # The round robin's pairs (j, l), j < l, and for each agent i: the columns of its own
        # pairs, whether i is first in each, and the columns of the others' pairs (the order
        # observation_layout promises).
        first, second = np.triu_indices(n, 1)
        self._pairs = (first.astype(np.int64), second.astype(np.int64))
        pair_of = {(j, l): c for c, (j, l) in enumerate(zip(first, second, strict=True))}
        others = [[j for j in range(n) if j != i] for i in range(n)]
        self._own_pairs = np.array(
            [[pair_of[min(i, j), max(i, j)] for j in others[i]] for i in range(n)], dtype=np.int64
        ).reshape(n, n - 1)
        self._own_first = np.array([[i < j for j in others[i]] for i in range(n)]).reshape(n, -1)
        self._other_pairs = np.array(
            [
                [pair_of[j, l] for a, j in enumerate(others[i]) for l in others[i][a + 1 :]]
                for i in range(n)
            ],
            dtype=np.int64,
        ).reshape(n, (n - 1) * (n - 2) // 2)
        self._others = np.array(others, dtype=np.int64).reshape(n, n - 1)
        self._first_of = np.eye(n)[first]  # (pairs, N): 1 at the pair's first agent
        self._second_of = np.eye(n)[second]
        self._obs = np.zeros((self.num_envs, n, self.observation_size), dtype=np.float32)
        # Until the first reset draws them, per-run matrices are placeholders (all 1/2).
        self._set_truth(fixed[None] if fixed is not None else np.full((self.num_envs, k, k), 0.5))

    # ----- the instance ---------------------------------------------------------------------
    def _draw(self, rng: np.random.Generator, n_arms: int) -> np.ndarray:
        return generate_matrix(self.family, n_arms, rng, scale=self.scale, margin=self.margin)

    def _set_truth(self, matrices: np.ndarray) -> None:
        """Store the matrices (leading axis 1 or num_envs), their Condorcet winners and Delta."""
        self.preference_matrix = matrices
        winners = np.array([condorcet_winner(m) or 0 for m in matrices], dtype=np.int64)
        self._best = np.broadcast_to(winners, (self.num_envs,)).copy()
        self._delta = matrices[np.arange(matrices.shape[0]), winners] - 0.5  # Delta_k per matrix

    def _reset_runs(self, runs: np.ndarray) -> None:
        self._obs = self._obs.copy()
        self._obs[runs] = 0.0
        if self._fixed is not None:
            return
        matrices = self.preference_matrix.copy()  # matrices handed out stay as they were
        for r in runs:
            matrices[r] = self._draw(self.np_random, self.n_arms)
        self._set_truth(matrices)

    @property
    def condorcet_winner(self) -> np.ndarray:
        """The Condorcet winner b* of each run, shape ``(num_envs,)``."""
        return self._best.copy()

    def _observation(self) -> np.ndarray:
        return self._obs.copy()

    # ----- stepping -------------------------------------------------------------------------
    def _check_actions(self, actions: Any) -> np.ndarray:
        arr = np.asarray(actions)
        n, k = self.n_agents, self.n_arms
        if arr.dtype.kind not in "iu" or arr.size != self.num_envs * n:
            shown = arr.tolist()[:8] if arr.size < 64 else arr.shape
            raise ConfigError(
                f"actions must be one arm index per agent and run, shape ({self.num_envs}, {n}), "
                f"got {shown}"
            )
        arr = arr.reshape(self.num_envs, n).astype(np.int64, copy=False)
        if arr.min() < 0 or arr.max() >= k:
            bad = arr[(arr < 0) | (arr >= k)][0]
            raise ConfigError(f"actions must be arm indices in [0, {k - 1}], got {bad}")
        return arr

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        proposals = self._check_actions(actions)
        restarting = self._restart_finished_runs()
        n_runs, n = self.num_envs, self.n_agents
        first, second = self._pairs
        # Every pair of proposals is dueled once: beats[:, c] is 1.0 when the first agent of pair
        # c (in np.triu_indices order) won.
        matrix_rows = self._rows if self.preference_matrix.shape[0] > 1 else 0
        win_prob = self.preference_matrix[
            np.asarray(matrix_rows)[..., None], proposals[:, first], proposals[:, second]
        ]
        beats = (self.np_random.random(win_prob.shape) < win_prob).astype(np.float64)
        wins = beats @ self._first_of + (1.0 - beats) @ self._second_of  # duels won per agent
        delta = self._delta[np.asarray(matrix_rows)[..., None], proposals]  # (n_runs, N)
        regret = delta.mean(axis=1)
        if self.feedback == "team":
            if n == 2:
                verdict = beats[:, 0]  # 1.0 when agent 0's proposal won, as in DuelingBandit-v0
            else:  # the agent with most wins, ties broken at random (draws < 1 keep the order)
                verdict = (wins + self.np_random.random((n_runs, n))).argmax(axis=1)
            rewards = np.repeat(verdict.astype(np.float64)[:, None], n, axis=1)
        else:
            rewards = wins / (n - 1)
        self._obs = self._observe(proposals, beats)
        agent_reward = -delta
        info_regret = [regret, delta.max(axis=1), delta.min(axis=1)]
        if restarting.any():
            rewards[restarting] = 0.0
            agent_reward[restarting] = 0.0
            for r in info_regret:
                r[restarting] = 0.0
            self._obs[restarting] = 0.0
        stepping = ~restarting
        self.t += stepping
        truncated = stepping & (self.t >= self.horizon)
        self._needs_reset = truncated
        info = {
            "regret": info_regret[0],
            "regret_strong": info_regret[1],
            "regret_weak": info_regret[2],
            "team_reward": -info_regret[0],
            "agent_reward": agent_reward,
            "condorcet_winner": self._best.copy(),
        }
        terminated = np.zeros(n_runs, dtype=bool)
        return self._obs.copy(), rewards, terminated, truncated, info

    def _observe(self, proposals: np.ndarray, beats: np.ndarray) -> np.ndarray:
        """Each agent's view of the step just played (see :func:`observation_layout`)."""
        n_runs, n, k = self.num_envs, self.n_agents, self.n_arms
        lay = self.layout
        obs = np.zeros((n_runs, n, self.observation_size), dtype=np.float32)
        one_hot = np.zeros((n_runs, n, k), dtype=np.float32)
        one_hot[self._rows[:, None], np.arange(n)[None, :], proposals] = 1.0
        obs[:, :, lay["own_proposal"]] = one_hot
        own = beats[:, self._own_pairs]  # (n_runs, N, N - 1), from the pair's first agent
        obs[:, :, lay["own_outcomes"]] = np.where(self._own_first, own, 1.0 - own)
        if self.feedback == "team":
            obs[:, :, lay["other_proposals"]] = one_hot[:, self._others].reshape(n_runs, n, -1)
            obs[:, :, lay["other_outcomes"]] = beats[:, self._other_pairs]
        return obs


def _as_utilities(values: Any) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.ndim != 1 or arr.size < 2 or not np.all(np.isfinite(arr)):
        raise ConfigError(f"utilities must be a list of >= 2 finite numbers, got {values!r}")
    return arr


class raw_env(ParallelEnv):  # lower case: PettingZoo's module convention
    """The multi-agent dueling bandit as a PettingZoo ``ParallelEnv`` (one run of TeamDuelVec).

    Agents ``agent_0 .. agent_{N-1}`` each choose an arm (``Discrete(K)``) and observe a
    ``Box(0, 1, (N K + N (N - 1) / 2,))`` view of the previous step (:func:`observation_layout`).
    Rewards follow ``feedback`` (module docstring); ``infos[agent]`` holds ``team_reward``,
    ``agent_reward``, ``regret``, ``regret_strong``, ``regret_weak`` and ``condorcet_winner``.
    Every agent is truncated after ``horizon`` steps; nothing terminates earlier. Parameters as
    :class:`TeamDuelVec`, plus ``render_mode`` (None only: there is nothing to draw).
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "team_duel_v0",
        "render_modes": [],
        "is_parallelizable": True,
    }

    def __init__(
        self,
        n_agents: int = 2,
        n_arms: int = 5,
        preference_matrix: list[list[float]] | None = None,
        family: str = "btl",
        utilities: list[float] | None = None,
        scale: float = 3.0,
        margin: float = 0.1,
        matrix_seed: int | None = 0,
        feedback: str = "team",
        horizon: int = DEFAULT_HORIZON,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None:
            raise ConfigError(
                f"render_mode must be None (team_duel_v0 draws nothing), got {render_mode!r}"
            )
        self.render_mode = render_mode
        self.core = TeamDuelVec(
            num_envs=1,
            n_agents=n_agents,
            preference_matrix=preference_matrix,
            family=family,
            n_arms=n_arms,
            utilities=utilities,
            scale=scale,
            margin=margin,
            matrix_seed=matrix_seed,
            feedback=feedback,
            horizon=horizon,
        )
        self.possible_agents = [f"agent_{i}" for i in range(self.core.n_agents)]
        self.agents: list[str] = []
        self._observation_space = spaces.Box(
            0.0, 1.0, shape=(self.core.observation_size,), dtype=np.float32
        )
        self._action_space = spaces.Discrete(self.core.n_arms)

    def observation_space(self, agent: str) -> spaces.Box:
        # The same object every call (PettingZoo's API test checks it; seeding relies on it).
        return self._observation_space

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._action_space

    @property
    def preference_matrix(self) -> np.ndarray:
        """The hidden K x K preference matrix of the current episode."""
        return self.core.preference_matrix[0].copy()

    @property
    def condorcet_winner(self) -> int:
        """The hidden Condorcet winner of the current episode."""
        return int(self.core.condorcet_winner[0])

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        obs, _ = self.core.reset(seed=seed)
        self.agents = list(self.possible_agents)
        return self._per_agent(obs[0]), {agent: {} for agent in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise ConfigError("the episode is over: call reset() before step()")
        missing = [agent for agent in self.agents if agent not in actions]
        if missing:
            raise ConfigError(f"actions are missing for {', '.join(missing)}")
        try:
            joint = np.asarray([[int(actions[agent]) for agent in self.agents]])
        except (TypeError, ValueError):
            raise ConfigError(f"actions must be arm indices, got {actions!r}") from None
        obs, rewards, _, truncated, info = self.core.step(joint)
        infos = {
            agent: {
                "team_reward": float(info["team_reward"][0]),
                "agent_reward": float(info["agent_reward"][0, i]),
                "regret": float(info["regret"][0]),
                "regret_strong": float(info["regret_strong"][0]),
                "regret_weak": float(info["regret_weak"][0]),
                "condorcet_winner": int(info["condorcet_winner"][0]),
            }
            for i, agent in enumerate(self.agents)
        }
        done = bool(truncated[0])
        out = (
            self._per_agent(obs[0]),
            {agent: float(rewards[0, i]) for i, agent in enumerate(self.agents)},
            dict.fromkeys(self.agents, False),
            dict.fromkeys(self.agents, done),
            infos,
        )
        if done:
            self.agents = []
        return out

    def _per_agent(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        return {agent: obs[i].copy() for i, agent in enumerate(self.possible_agents)}

    def render(self) -> None:
        return None

    def close(self) -> None:
        return None


def parallel_env(**kwargs: Any) -> raw_env:
    """The ``ParallelEnv`` (keyword arguments as :class:`TeamDuelVec`, plus ``render_mode``)."""
    return raw_env(**kwargs)


def env(**kwargs: Any) -> Any:
    """The AEC version (``parallel_to_aec`` of :func:`parallel_env`, order enforced)."""
    return parallel_to_aec(raw_env(**kwargs))


__all__ = ["TeamDuelVec", "env", "observation_layout", "parallel_env", "raw_env"]
