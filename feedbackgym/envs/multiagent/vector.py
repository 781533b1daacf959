"""Multi-agent envs as one SB3 VecEnv for parameter sharing (SuperSuit underneath).

SuperSuit's ``pettingzoo_env_to_vec_env_v1`` makes each agent of a ParallelEnv one slot of a
vector env and ``concat_vec_envs_v1`` stacks copies, so one SB3 policy acts for every agent
(parameter sharing, Gupta, Egorov & Kochenderfer 2017). Its own SB3 adapter loses what SB3
needs (``seed`` fails on the concatenated env, truncations are folded into terminations, the
reset seed is dropped), so :class:`TeamVecEnv` adapts SuperSuit's Gymnasium-style vector env to
SB3's ``VecEnv`` itself, and adds the hidden team reward to each slot's ``info``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from feedbackgym.envs.multiagent import make_parallel_env, team_reward
from feedbackgym.errors import ConfigError


class TeamVecEnv(VecEnv):
    """``n_copies`` copies of a ParallelEnv with ``n_agents`` agents, as ``n_copies * n_agents``
    SB3 slots; slot ``c * n_agents + i`` is agent ``i`` (of ``possible_agents``) in copy ``c``.

    Each step's ``infos[slot]`` holds ``team_reward`` (the env's, or the mean of the copy's
    agent rewards, :func:`~feedbackgym.envs.multiagent.team_reward`) and, at the end of an
    episode, ``terminal_observation`` and ``TimeLimit.truncated`` as SB3 expects. Copy ``c``
    resets with seed ``seed + c`` after :meth:`seed`. ``agent_indicator`` says that the agents
    are of different kinds, so each observation is zero-padded to one size and ends in an
    agent-type one-hot (:func:`make_team_vec_env`).
    """

    def __init__(
        self, venv: Any, n_agents: int, agents: list[str], agent_indicator: bool = False
    ) -> None:
        self.venv = venv
        self.n_agents = int(n_agents)
        self.agent_names = list(agents)
        self.agent_indicator = bool(agent_indicator)
        self.n_copies = venv.num_envs // self.n_agents
        self._seed: int | None = None
        self._actions: np.ndarray | None = None
        super().__init__(venv.num_envs, venv.observation_space, venv.action_space)

    def seed(self, seed: int | None = None) -> list[int | None]:
        self._seed = None if seed is None else int(seed)
        return [None if seed is None else int(seed) + c for c in range(self.n_copies)]

    def reset(self) -> np.ndarray:
        obs, infos = self.venv.reset(seed=self._seed)
        self._seed = None
        self.reset_infos = list(infos)
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> Any:
        obs, rewards, terminated, truncated, infos = self.venv.step(self._actions)
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool)
        dones = terminated | truncated
        infos = [dict(info) for info in infos]
        a = self.n_agents
        for c in range(self.n_copies):
            slots = range(c * a, (c + 1) * a)
            team = team_reward({i: float(rewards[i]) for i in slots}, {i: infos[i] for i in slots})
            for i in slots:
                infos[i]["team_reward"] = team
                if dones[i]:
                    infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, np.asarray(rewards, dtype=np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        if attr_name == "render_mode":
            return [None] * len(self._get_indices(indices))
        value = getattr(self, attr_name)
        return [value] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list:
        raise AttributeError(f"{method_name} is not available on a multi-agent VecEnv")

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._get_indices(indices))

    def team_rewards(self, rewards: np.ndarray, infos: list[dict[str, Any]]) -> np.ndarray:
        """The team reward of each copy, shape ``(n_copies,)``, from a step's ``infos``."""
        return np.array([infos[c * self.n_agents]["team_reward"] for c in range(self.n_copies)])


def make_team_vec_env(
    env_id: str, n_copies: int, seed: int, env_kwargs: dict[str, Any] | None = None
) -> TeamVecEnv:
    """A :class:`TeamVecEnv` of ``n_copies`` copies of the multi-agent env ``env_id``.

    Agents with different observation or action spaces (e.g. predators and prey) are padded
    to common ones and told their type by a one-hot indicator (SuperSuit's
    ``pad_observations_v0``, ``pad_action_space_v0``, ``agent_indicator_v0``), so one policy
    can act for all of them. The copies reset with seeds ``seed + c``.
    """
    import supersuit as ss

    def build() -> Any:
        env = make_parallel_env(env_id, **(env_kwargs or {}))
        agents = list(env.possible_agents)
        obs_spaces = {str(env.observation_space(a)) for a in agents}
        act_spaces = {str(env.action_space(a)) for a in agents}
        mixed = len(obs_spaces) > 1 or len(act_spaces) > 1
        if mixed:
            env = ss.pad_action_space_v0(ss.pad_observations_v0(env))
            env = ss.agent_indicator_v0(env, type_only=True)
        return env, agents, mixed

    env, agents, mixed = build()
    for space in (env.observation_space(agents[0]), env.action_space(agents[0])):
        if type(space).__name__ not in ("Box", "Discrete", "MultiDiscrete"):
            raise ConfigError(
                f"env {env_id!r}: {type(space).__name__} spaces are not supported by "
                "parameter-sharing learners (Box, Discrete or MultiDiscrete)"
            )
    markov = ss.pettingzoo_env_to_vec_env_v1(env)
    venv = ss.concat_vec_envs_v1(markov, n_copies, num_cpus=0, base_class="gymnasium")
    out = TeamVecEnv(venv, len(agents), agents, agent_indicator=mixed)
    out.seed(seed)
    return out


__all__ = ["TeamVecEnv", "make_team_vec_env"]
