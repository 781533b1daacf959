"""Commons harvest: each agent's own harvest and the team's long-run total disagree.

N agents share a renewable resource (a fish stock, a pasture) of level s in [0, 1], the
carrying capacity. Each step every agent asks for a harvest of 0 .. ``n_levels - 1`` units of
``max_take / (n_levels - 1)``; when the requests exceed the stock, everyone gets the same
fraction of theirs. The rest regrows logistically, s <- s + r s (1 - s) xi, with xi a
multiplicative noise of mean 1 (the Schaefer surplus-production model; Schaefer 1954, Gordon
1954): regrowth is largest at s = 1/2 (r / 4 per step) and vanishes as s -> 0, so a stock
harvested down to nothing stays there.

An agent's reward is its own harvest (in units of ``max_take``, so in [0, 1]). The team's
reward is the mean harvest of the step, and its return the episode's total: the long run.
The two disagree as in the tragedy of the commons (Hardin 1968; as a multi-agent RL task,
Perolat et al. 2017, "A multi-agent reinforcement learning model of common-pool resource
appropriation", NeurIPS; Leibo et al. 2017, "Multi-agent Reinforcement Learning in Sequential
Social Dilemmas", AAMAS): an extra unit taken now is the agent's alone, while the stock it
no longer regrows is lost to the whole team, so a learner of its own reward keeps taking more,
and when every agent does, the stock collapses. With the defaults, agents that always take
the most (``greedy_actions``) leave the team a small fraction of the return of agents that keep
the stock near 1/2 (``sustainable_actions``), yet a single greedy agent among sustainable ones
earns more than they do, and more than it would by restraint.

Observation (the same ``Box(0, 1, (4,))`` for every agent): the stock, the fraction of the
episode left, the agent's own last harvest and the team's mean last harvest (both in units of
``max_take``). Action: ``Discrete(n_levels)``. Every agent stays for the whole episode of
``horizon`` steps (truncation), so SuperSuit's ``pettingzoo_env_to_vec_env_v1`` and
``concat_vec_envs_v1`` turn it into an SB3 VecEnv for parameter-sharing PPO. ``rewards``
(option ``reward``) are the own harvests ("per-agent", default) or the team reward for everyone
("team"); ``infos[agent]`` always holds both, ``team_reward`` and ``agent_reward``, with
``stock`` (after regrowth) and ``harvest`` (the agent's, in stock units).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from feedbackgym.errors import ConfigError, check_positive_int, check_range

REWARD_MODES = ("per-agent", "team")
#: The stock level of largest regrowth, r s (1 - s): what sustainable harvesting keeps.
MSY_STOCK = 0.5


class raw_env(ParallelEnv):  # lower case: PettingZoo's module convention
    """The commons harvest task as a PettingZoo ``ParallelEnv`` (see the module docstring).

    :param n_agents: number of agents N, >= 2.
    :param n_levels: number of harvest levels (actions 0 .. n_levels - 1), >= 2.
    :param max_take: the most one agent may take per step, a fraction of capacity in (0, 1].
    :param growth_rate: r of the logistic regrowth, in (0, 1].
    :param growth_noise: standard deviation of the regrowth's multiplicative noise xi ~
        max(0, 1 + growth_noise N(0, 1)), in [0, 1].
    :param initial_stock: the stock at reset, a number in (0, 1] or a range [low, high] to draw
        it from uniformly.
    :param horizon: steps per episode.
    :param reward: what ``rewards`` hold: "per-agent" (own harvest) or "team" (team reward).
    :param render_mode: None or "rgb_array" (a bar for the stock, one per agent's harvest).
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "commons_v0",
        "render_modes": ["rgb_array"],
        "render_fps": 10,
        "is_parallelizable": True,
    }

    def __init__(
        self,
        n_agents: int = 3,
        n_levels: int = 5,
        max_take: float = 0.1,
        growth_rate: float = 0.5,
        growth_noise: float = 0.1,
        initial_stock: float | tuple[float, float] = (0.5, 1.0),
        horizon: int = 50,
        reward: str = "per-agent",
        render_mode: str | None = None,
    ) -> None:
        self.n_agents = check_positive_int("n_agents", n_agents)
        if self.n_agents < 2:
            raise ConfigError(f"n_agents must be at least 2, got {n_agents}")
        self.n_levels = check_positive_int("n_levels", n_levels)
        if self.n_levels < 2:
            raise ConfigError(f"n_levels must be at least 2, got {n_levels}")
        self.max_take = check_range("max_take", max_take, 0.0, 1.0, low_open=True)
        self.growth_rate = check_range("growth_rate", growth_rate, 0.0, 1.0, low_open=True)
        self.growth_noise = check_range("growth_noise", growth_noise, 0.0, 1.0)
        self.initial_stock = _stock_range(initial_stock)
        self.horizon = check_positive_int("horizon", horizon)
        if reward not in REWARD_MODES:
            raise ConfigError(f"reward must be one of {', '.join(REWARD_MODES)}, got {reward!r}")
        self.reward = reward
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ConfigError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.possible_agents = [f"agent_{i}" for i in range(self.n_agents)]
        self.agents: list[str] = []
        self._observation_space = spaces.Box(0.0, 1.0, shape=(4,), dtype=np.float32)
        self._action_space = spaces.Discrete(self.n_levels)
        self.unit = self.max_take / (self.n_levels - 1)
        self.np_random, _ = seeding.np_random(None)
        self.stock = 0.0
        self.t = 0
        self._last = np.zeros(self.n_agents)  # last harvests, in units of max_take

    def observation_space(self, agent: str) -> spaces.Box:
        # The same object every call (PettingZoo's API test checks it; seeding relies on it).
        return self._observation_space

    def action_space(self, agent: str) -> spaces.Discrete:
        return self._action_space

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
        low, high = self.initial_stock
        self.stock = float(self.np_random.uniform(low, high)) if high > low else low
        self.t = 0
        self._last = np.zeros(self.n_agents)
        self.agents = list(self.possible_agents)
        infos = {agent: {"stock": self.stock} for agent in self.agents}
        return self._observations(), infos

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        if not self.agents:
            raise ConfigError("the episode is over: call reset() before step()")
        levels = self._levels(actions)
        request = levels * self.unit
        total = float(request.sum())
        harvest = request * min(1.0, self.stock / total) if total > 0.0 else request
        left = max(self.stock - float(harvest.sum()), 0.0)
        noise = max(0.0, 1.0 + self.growth_noise * float(self.np_random.standard_normal()))
        self.stock = min(1.0, left + self.growth_rate * left * (1.0 - left) * noise)
        self.t += 1
        own = harvest / self.max_take
        team = float(own.mean())
        self._last = own
        done = self.t >= self.horizon
        rewards = {
            agent: team if self.reward == "team" else float(own[i])
            for i, agent in enumerate(self.agents)
        }
        infos = {
            agent: {
                "team_reward": team,
                "agent_reward": float(own[i]),
                "stock": self.stock,
                "harvest": float(harvest[i]),
            }
            for i, agent in enumerate(self.agents)
        }
        out = (
            self._observations(),
            rewards,
            dict.fromkeys(self.agents, False),
            dict.fromkeys(self.agents, done),
            infos,
        )
        if done:
            self.agents = []
        return out

    def _levels(self, actions: dict[str, Any]) -> np.ndarray:
        missing = [agent for agent in self.agents if agent not in actions]
        if missing:
            raise ConfigError(f"actions are missing for {', '.join(missing)}")
        try:
            levels = np.array([int(actions[agent]) for agent in self.agents], dtype=np.int64)
        except (TypeError, ValueError):
            raise ConfigError(f"actions must be harvest levels, got {actions!r}") from None
        bad = levels[(levels < 0) | (levels >= self.n_levels)]
        if bad.size:
            raise ConfigError(
                f"actions must be harvest levels in [0, {self.n_levels - 1}], got {bad[0]}"
            )
        return levels

    def _observations(self) -> dict[str, np.ndarray]:
        left = (self.horizon - self.t) / self.horizon
        team = float(self._last.mean())
        return {
            agent: np.array([self.stock, left, self._last[i], team], dtype=np.float32)
            for i, agent in enumerate(self.possible_agents)
        }

    # ----- reference policies (scripted; for tests, teachers and baselines) -----------------
    def greedy_actions(self) -> dict[str, int]:
        """Every agent asks for the most: what each agent's own reward alone favours."""
        return dict.fromkeys(self.agents, self.n_levels - 1)

    def sustainable_actions(self) -> dict[str, int]:
        """The agents share the stock above 1/2 equally (rounded to a level), so that the
        stock stays near the level of largest regrowth."""
        share = max(self.stock - MSY_STOCK, 0.0) / self.n_agents
        level = int(np.clip(round(share / self.unit), 0, self.n_levels - 1))
        return dict.fromkeys(self.agents, level)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        height, bar = 64, 12
        image = np.full((height, bar * (self.n_agents + 1) + 2, 3), 255, dtype=np.uint8)
        fill = round(self.stock * height)
        image[height - fill :, 0:bar] = (40, 160, 60)  # the stock
        for i, taken in enumerate(self._last):
            x = bar * (i + 1) + 2
            h = round(float(taken) * height)
            image[height - h :, x : x + bar - 2] = (50, 90, 200)  # each agent's last harvest
        return image

    def close(self) -> None:
        return None


def _stock_range(value: Any) -> tuple[float, float]:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ConfigError(
                f"initial_stock must be a number in (0, 1] or a range [low, high], got {value!r}"
            )
        low = check_range("initial_stock low", value[0], 0.0, 1.0, low_open=True)
        high = check_range("initial_stock high", value[1], 0.0, 1.0, low_open=True)
        if low > high:
            raise ConfigError(f"initial_stock range must have low <= high, got {list(value)}")
        return low, high
    stock = check_range("initial_stock", value, 0.0, 1.0, low_open=True)
    return stock, stock


def parallel_env(**kwargs: Any) -> raw_env:
    """The ``ParallelEnv`` (keyword arguments as :class:`raw_env`)."""
    return raw_env(**kwargs)


def env(**kwargs: Any) -> Any:
    """The AEC version (``parallel_to_aec`` of :func:`parallel_env`, order enforced)."""
    return parallel_to_aec(raw_env(**kwargs))


__all__ = ["env", "parallel_env", "raw_env"]
