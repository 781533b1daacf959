"""What to ask a teacher: recent experience as segments, active query selection, label schedules."""

from __future__ import annotations

from typing import Any

import numpy as np

from feedbackgym.errors import ConfigError, check_positive_int, check_range
from feedbackgym.feedback.base import Segments, check_choice, check_int
from feedbackgym.feedback.reward_model import RewardModel

QUERY_STRATEGIES = ("uniform", "disagreement", "entropy")
SCHEDULES = ("hyperbolic", "constant")


class SegmentPool:
    """The last ``capacity`` steps of each of ``n_envs`` envs: what queries are drawn from.

    Each step stores the observation the action was taken in, the action, and the true reward
    (which only the teacher reads). Segments are ``length`` consecutive steps of one env; they
    may run across an episode boundary, which the partial-return and regret teachers handle
    as they would any other steps (their utilities add up per step).

    :param n_envs: number of parallel envs feeding the pool.
    :param capacity: steps kept per env (the oldest are overwritten).
    """

    def __init__(self, n_envs: int, capacity: int) -> None:
        self.n_envs = check_positive_int("n_envs", n_envs)
        self.capacity = check_positive_int("capacity", capacity)
        self.obs: np.ndarray | None = None
        self.actions: np.ndarray | None = None
        self.rewards = np.zeros((self.capacity, self.n_envs), dtype=np.float64)
        self.head = 0  # next row to write
        self.filled = 0

    def add(
        self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, infos: Any = None
    ) -> None:
        """Store one step of every env (``obs``: what each env's action was taken in)."""
        obs, actions = np.asarray(obs), np.asarray(actions)
        if self.obs is None:
            self.obs = np.zeros((self.capacity,) + obs.shape, dtype=obs.dtype)
            self.actions = np.zeros((self.capacity,) + actions.shape, dtype=actions.dtype)
        self.obs[self.head] = obs
        self.actions[self.head] = actions
        self.rewards[self.head] = rewards
        self.head = (self.head + 1) % self.capacity
        self.filled = min(self.filled + 1, self.capacity)

    def collect(self, env: Any, steps: int, seed: int | None = None) -> Any:
        """Add ``steps`` vector steps of ``env`` (an SB3 VecEnv, reset first) under the
        uniform-random policy (its action space's ``sample``, seeded by ``seed``); returns the
        observation after the last step. Experience to learn a reward from before any policy
        is trained (offline queries, diagnostics)."""
        space = env.action_space
        space.seed(seed)
        obs = env.reset()
        for _ in range(check_positive_int("steps", steps)):
            actions = np.stack([space.sample() for _ in range(env.num_envs)])
            nxt, rewards, _, infos = env.step(actions)
            self.add(obs, actions, rewards, infos)
            obs = nxt
        return obs

    def steps(self) -> tuple[np.ndarray, np.ndarray]:
        """All stored ``(obs, actions)`` as flat arrays of steps (to calibrate a reward)."""
        if self.obs is None or self.actions is None:
            raise ConfigError("the segment pool is empty")
        obs = self.obs[: self.filled]
        actions = self.actions[: self.filled]
        return obs.reshape((-1,) + obs.shape[2:]), actions.reshape((-1,) + actions.shape[2:])

    def sample(self, n: int, length: int, rng: np.random.Generator) -> Segments:
        """``n`` segments of ``length`` consecutive steps, each from a random env and start."""
        rows, cols = self._windows(n, length, rng, self.n_envs)
        return Segments(self.rewards[rows, cols], self.obs[rows, cols], self.actions[rows, cols])

    def _windows(
        self, n: int, length: int, rng: np.random.Generator, columns: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Indices ``(rows (n, length), cols (n, 1))`` of ``n`` windows of ``length`` steps,
        each in a random one of ``columns`` columns, at a random start."""
        if self.obs is None or self.actions is None or self.filled < length:
            raise ConfigError(
                f"segment_length={length} is longer than the {self.filled} steps collected per "
                f"env so far; use a shorter segment_length"
            )
        column = rng.integers(columns, size=n)
        start = rng.integers(self.filled - length + 1, size=n)
        oldest = self.head if self.filled == self.capacity else 0
        rows = (oldest + start[:, None] + np.arange(length)) % self.capacity
        return rows, column[:, None]

    def state(self) -> dict[str, np.ndarray | int | None]:
        return {k: getattr(self, k) for k in ("obs", "actions", "rewards", "head", "filled")}

    def load_state(self, state: dict[str, np.ndarray | int | None]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


class TeamPool(SegmentPool):
    """A :class:`SegmentPool` of a multi-agent VecEnv (slot ``c * n_agents + i`` is agent ``i``
    of copy ``c``, as :class:`~feedbackgym.envs.multiagent.vector.TeamVecEnv` lays them out).

    Segments carry an agent axis: observations ``(n, L, agents, ...)`` and actions
    ``(n, L, agents, ...)``. With ``scope="team"`` a segment is the whole team of one copy and
    its rewards are the team reward (``info["team_reward"]``); with ``scope="agent"`` it is one
    agent's steps (an agent axis of 1) with that agent's own reward.

    :param n_envs: slots of the VecEnv (copies times agents).
    :param capacity: steps kept per slot.
    :param n_agents: agents per copy.
    :param scope: "team" or "agent".
    """

    def __init__(self, n_envs: int, capacity: int, n_agents: int, scope: str = "team") -> None:
        super().__init__(n_envs, capacity)
        self.n_agents = check_positive_int("n_agents", n_agents)
        if self.n_envs % self.n_agents:
            raise ConfigError(f"{n_envs} slots do not split into teams of {n_agents} agents")
        self.scope = check_choice("scope", scope, ("team", "agent"))
        self.copies = self.n_envs // self.n_agents
        self.team = np.zeros((self.capacity, self.copies), dtype=np.float64)

    def add(
        self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, infos: Any = None
    ) -> None:
        rewards = np.asarray(rewards, dtype=np.float64)
        if infos is not None and "team_reward" in infos[0]:
            team = np.array([infos[c * self.n_agents]["team_reward"] for c in range(self.copies)])
        else:
            team = rewards.reshape(self.copies, self.n_agents).mean(axis=1)
        self.team[self.head] = team
        super().add(obs, actions, rewards)

    def _team_view(self, array: np.ndarray) -> np.ndarray:
        """``(capacity, slots, ...)`` -> ``(capacity, copies, agents, ...)``."""
        return array.reshape((self.capacity, self.copies, self.n_agents) + array.shape[2:])

    def steps(self) -> tuple[np.ndarray, np.ndarray]:
        """Every stored joint step: ``(obs (n, agents, ...), actions (n, agents, ...))``."""
        if self.obs is None or self.actions is None:
            raise ConfigError("the segment pool is empty")
        obs = self._team_view(self.obs)[: self.filled]
        actions = self._team_view(self.actions)[: self.filled]
        return obs.reshape((-1,) + obs.shape[2:]), actions.reshape((-1,) + actions.shape[2:])

    def sample(self, n: int, length: int, rng: np.random.Generator) -> Segments:
        if self.scope == "agent":  # one agent's steps, as a team of one
            seg = super().sample(n, length, rng)
            return Segments(seg.rewards, seg.obs[:, :, None], seg.actions[:, :, None])
        rows, cols = self._windows(n, length, rng, self.copies)
        obs, actions = self._team_view(self.obs), self._team_view(self.actions)
        return Segments(self.team[rows, cols], obs[rows, cols], actions[rows, cols])

    def state(self) -> dict[str, np.ndarray | int | None]:
        return {**super().state(), "team": self.team}


def label_schedule(
    labels: int, rounds: int, schedule: str = "hyperbolic", initial_fraction: float = 0.25
) -> np.ndarray:
    """How many labels to ask in each of ``rounds`` rounds; sums to ``labels`` exactly.

    ``initial_fraction`` of the labels go to the first round (on the first experience, as
    imitation's ``initial_comparison_frac``); the rest are spread with weight ``1 / (1 + k /
    rounds)`` for round ``k`` ("hyperbolic", imitation's front-loaded default) or equally
    ("constant"). Integer counts by largest remainders.
    """
    labels = check_positive_int("labels", labels)
    rounds = check_positive_int("rounds", rounds)
    check_choice("schedule", schedule, SCHEDULES)
    initial_fraction = check_range("initial_fraction", initial_fraction, 0.0, 1.0)
    first = int(round(labels * initial_fraction)) if rounds > 1 else labels
    k = np.arange(rounds - 1, dtype=np.float64)
    weights = 1.0 / (1.0 + k / rounds) if schedule == "hyperbolic" else np.ones(rounds - 1)
    rest = labels - first
    share = rest * weights / weights.sum() if rounds > 1 else np.zeros(0)
    counts = np.floor(share).astype(np.int64)
    left = rest - int(counts.sum())
    if left:
        counts[np.argsort(-(share - counts), kind="stable")[:left]] += 1
    return np.concatenate([[first], counts]).astype(np.int64)


def pair_scores(model: RewardModel, groups: list[Segments], strategy: str) -> np.ndarray:
    """How informative each query (a tuple of ``m`` segments) is; higher is asked first.

    ``disagreement``: the ensemble's standard deviation of ``P(i > j)``; ``entropy``: the
    binary entropy of the members' mean ``P(i > j)`` (PEBBLE, Lee et al. 2021). For ``m > 2``
    segments the score is the mean over the query's pairs.
    """
    returns = model.segment_returns(groups)  # (members, n, m)
    m = returns.shape[2]
    scores = np.zeros(returns.shape[1])
    for i in range(m):
        for j in range(i + 1, m):
            p = 0.5 * (1.0 + np.tanh(0.5 * (returns[..., i] - returns[..., j])))
            if strategy == "disagreement":
                scores += p.std(axis=0)
            else:
                q = np.clip(p.mean(axis=0), 1e-9, 1 - 1e-9)
                scores += -(q * np.log(q) + (1 - q) * np.log(1 - q))
    return scores / (m * (m - 1) / 2)


def split_segments(segments: Segments, length: int) -> tuple[Segments, Segments]:
    """The first ``length`` steps of each segment, and the steps after them."""

    def part(cut: slice) -> Segments:
        return Segments(
            segments.rewards[:, cut],
            None if segments.obs is None else segments.obs[:, cut],
            None if segments.actions is None else segments.actions[:, cut],
        )

    return part(slice(None, length)), part(slice(length, None))


def select_queries(
    pool: SegmentPool,
    n: int,
    m: int,
    length: int,
    strategy: str,
    model: RewardModel | None,
    rng: np.random.Generator,
    oversample: int = 10,
    after: int = 0,
) -> list[Segments]:
    """``n`` queries of ``m`` segments each (``m`` batches of ``n`` segments).

    ``uniform`` draws them at random from the pool; ``disagreement`` and ``entropy`` draw
    ``oversample * n`` candidates and keep the ``n`` the ensemble is least sure about (before
    the model is first fitted they fall back to uniform).

    ``after > 0`` (for hindsight teachers): each segment comes with the ``after`` steps of the
    same env that followed it, so segments are ``length + after`` steps long (split them with
    :func:`split_segments`); the ensemble scores only their first ``length`` steps.
    """
    check_choice("query", strategy, QUERY_STRATEGIES)
    after = check_int("after", after, 0)
    active = strategy != "uniform" and model is not None and model.fitted
    size = n * oversample if active else n
    groups = [pool.sample(size, length + after, rng) for _ in range(m)]
    if not active:
        return groups
    seen = [split_segments(g, length)[0] for g in groups] if after else groups
    keep = np.argsort(-pair_scores(model, seen, strategy), kind="stable")[:n]
    return [g.take(keep) for g in groups]
