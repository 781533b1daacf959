"""A small tabular gridworld whose optimal values are computed exactly (for the regret teacher)."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from feedbackgym.errors import ConfigError, check_positive_int, check_range

DEFAULT_LAYOUT = (
    "....G",
    ".#.X.",
    ".....",
    ".X#..",
    "S....",
)

#: Moves of the four actions as (row, column) offsets: up, right, down, left.
MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int64)
ACTION_NAMES = ("up", "right", "down", "left")


class GridWorld(gym.Env):
    """A gridworld with walls, pits and a goal; exact optimal ``V*`` and ``Q*`` by value iteration.

    The grid is a list of equal-length strings: ``S`` start, ``G`` goal (reward ``goal_reward``,
    episode ends), ``X`` pit (reward ``pit_reward``, episode ends), ``#`` wall, ``.`` floor.
    Observations are cell indices ``row * width + column``; the four actions move up, right, down
    and left. A move into a wall or off the grid leaves the agent in place. With probability
    ``slip`` the agent moves in a uniformly random direction instead (stochastic transitions).
    Every step costs ``step_reward``.

    Because the model is known, :meth:`optimal_values` (value iteration) and :meth:`policy_values`
    (exact policy evaluation) give the values that the regret teacher of Knox et al. (2023),
    "Learning Optimal Advantage from Preferences and Mistaking it for Reward", and the COACH
    teacher need. The hidden truth in ``info``: ``true_reward`` (the reward of the step) and
    ``optimal_action`` (a greedy action of ``Q*`` in the state the agent acted in).

    :param layout: rows of the grid (see above); exactly one ``S`` and at least one ``G``.
    :param slip: probability that a move goes in a uniformly random direction, in [0, 1].
    :param step_reward: reward of every step that does not end in a goal or pit.
    :param goal_reward: reward of stepping onto a goal.
    :param pit_reward: reward of stepping into a pit.
    :param gamma: discount factor of the optimal values, in [0, 1).
    :param max_steps: steps after which the episode is truncated.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"]}

    def __init__(
        self,
        layout: tuple[str, ...] | list[str] = DEFAULT_LAYOUT,
        slip: float = 0.0,
        step_reward: float = -0.04,
        goal_reward: float = 1.0,
        pit_reward: float = -1.0,
        gamma: float = 0.95,
        max_steps: int = 100,
        render_mode: str | None = None,
    ) -> None:
        rows = [str(row) for row in layout]
        if not rows or any(len(row) != len(rows[0]) for row in rows) or not rows[0]:
            raise ConfigError("layout must be a non-empty list of equal-length strings")
        bad = set("".join(rows)) - set("SGX#.")
        if bad:
            raise ConfigError(f"layout may hold only 'S', 'G', 'X', '#', '.', got {sorted(bad)}")
        grid = np.array([list(row) for row in rows])
        if (grid == "S").sum() != 1 or (grid == "G").sum() < 1:
            raise ConfigError("layout must hold exactly one 'S' and at least one 'G'")
        self.layout = tuple(rows)
        self.slip = check_range("slip", slip, 0.0, 1.0)
        self.step_reward = check_range("step_reward", step_reward)
        self.goal_reward = check_range("goal_reward", goal_reward)
        self.pit_reward = check_range("pit_reward", pit_reward)
        self.gamma = check_range("gamma", gamma, 0.0, 1.0, high_open=True)
        self.max_steps = check_positive_int("max_steps", max_steps)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode
        self.height, self.width = grid.shape
        self.n_states = self.height * self.width
        self.n_actions = len(MOVES)
        flat = grid.reshape(-1)
        self.start_state = int(np.flatnonzero(flat == "S")[0])
        self.terminal = (flat == "G") | (flat == "X")
        self.walls = flat == "#"
        self.observation_space = spaces.Discrete(self.n_states)
        self.action_space = spaces.Discrete(self.n_actions)
        self.transitions, self.rewards = self._model()
        self._q_star: np.ndarray | None = None
        self.state = self.start_state
        self.steps = 0

    #: Direction of each action as an (x, y) vector with y pointing up, for language feedback.
    action_vectors: ClassVar[np.ndarray] = np.array([[0, 1], [1, 0], [0, -1], [-1, 0]], float)
    #: Words for the positive and negative direction of each axis of ``action_vectors``.
    axis_names: ClassVar[tuple[tuple[str, str], ...]] = (("left", "right"), ("down", "up"))

    def _model(self) -> tuple[np.ndarray, np.ndarray]:
        """Transition tensor ``P[s, a, s']`` and expected reward ``R[s, a]``."""
        rows, cols = np.divmod(np.arange(self.n_states), self.width)
        # Deterministic successor of every (state, move).
        nr = np.clip(rows[:, None] + MOVES[None, :, 0], 0, self.height - 1)
        nc = np.clip(cols[:, None] + MOVES[None, :, 1], 0, self.width - 1)
        succ = nr * self.width + nc
        succ = np.where(self.walls[succ], np.arange(self.n_states)[:, None], succ)
        move_prob = (1 - self.slip) * np.eye(self.n_actions) + self.slip / self.n_actions
        P = np.zeros((self.n_states, self.n_actions, self.n_states))
        every_state = np.arange(self.n_states)
        for action in range(self.n_actions):
            for move in range(self.n_actions):
                P[every_state, action, succ[:, move]] += move_prob[action, move]
        reward_of_cell = np.where(self.terminal, 0.0, self.step_reward)
        flat = np.array(list("".join(self.layout)))
        reward_of_cell = np.where(flat == "G", self.goal_reward, reward_of_cell)
        reward_of_cell = np.where(flat == "X", self.pit_reward, reward_of_cell)
        R = P @ reward_of_cell
        # Terminal states absorb with reward 0.
        P[self.terminal] = 0.0
        P[self.terminal, :, :] = np.eye(self.n_states)[self.terminal][:, None, :]
        R[self.terminal] = 0.0
        return P, R

    def optimal_values(self) -> tuple[np.ndarray, np.ndarray]:
        """Optimal values ``(V*, Q*)`` of shape ``(n_states,)`` and ``(n_states, 4)``.

        Value iteration to a sup-norm change below 1e-12 (exact to float precision). The
        values ignore the ``max_steps`` truncation (an infinite-horizon discounted MDP).
        """
        if self._q_star is None:
            tol = 1e-12
            q = np.zeros((self.n_states, self.n_actions))
            for _ in range(100_000):
                new_q = self.rewards + self.gamma * self.transitions @ q.max(axis=1)
                if np.max(np.abs(new_q - q)) < tol:
                    q = new_q
                    break
                q = new_q
            self._q_star = q
        return self._q_star.max(axis=1), self._q_star.copy()

    def policy_values(self, policy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact ``(V^pi, Q^pi)`` of a policy ``pi[s, a]`` (rows sum to 1), by a linear solve."""
        policy = np.asarray(policy, dtype=np.float64)
        if policy.shape != (self.n_states, self.n_actions) or not np.allclose(policy.sum(1), 1):
            raise ConfigError(
                f"policy must be a ({self.n_states}, {self.n_actions}) array of action "
                "probabilities whose rows sum to 1"
            )
        p_pi = np.einsum("sa,sat->st", policy, self.transitions)
        r_pi = (policy * self.rewards).sum(axis=1)
        v = np.linalg.solve(np.eye(self.n_states) - self.gamma * p_pi, r_pi)
        q = self.rewards + self.gamma * self.transitions @ v
        return v, q

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        super().reset(seed=seed)
        self.state = self.start_state
        self.steps = 0
        return self.state, {}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ConfigError(f"action must be in [0, {self.n_actions - 1}], got {action!r}")
        _, q_star = self.optimal_values()
        state = self.state
        optimal_action = int(q_star[state].argmax())
        next_state = int(self.np_random.choice(self.n_states, p=self.transitions[state, action]))
        # The reward of the realised move (R is its expectation under slips).
        flat = "".join(self.layout)
        if flat[next_state] == "G":
            reward = self.goal_reward
        elif flat[next_state] == "X":
            reward = self.pit_reward
        else:
            reward = self.step_reward
        self.state = next_state
        self.steps += 1
        terminated = bool(self.terminal[next_state])
        truncated = not terminated and self.steps >= self.max_steps
        info = {"true_reward": float(reward), "optimal_action": optimal_action}
        return next_state, float(reward), terminated, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        cells = np.array(list("".join(self.layout))).reshape(self.height, self.width)
        cells = np.where(cells == "S", ".", cells)
        cells[divmod(self.state, self.width)] = "A"
        return "\n".join("".join(row) for row in cells)
