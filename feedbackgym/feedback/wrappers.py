"""Gymnasium wrappers that attach a feedback model to any env and hide its true reward."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from feedbackgym.errors import ConfigError, check_positive_int
from feedbackgym.feedback.base import FeedbackModel, Segments
from feedbackgym.feedback.delays import Delay, DelayQueue


def _true_reward(info: dict[str, Any], reward: Any) -> dict[str, Any]:
    """``info`` with ``true_reward`` set (an env's own definition, e.g. a mean, is kept)."""
    info = dict(info)
    info.setdefault("true_reward", float(reward))
    return info


class HideReward(gym.Wrapper):
    """The learner gets reward 0; the true reward moves to ``info["true_reward"]``.

    Where the env already reports ``info["true_reward"]`` (e.g. a bandit's expected reward),
    that value is kept.
    """

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, 0.0, terminated, truncated, _true_reward(info, reward)


class ScoreFeedback(gym.Wrapper):
    """The reward becomes a score teacher's feedback (TAMER, COACH), arriving after its lag.

    Every step is shown to ``teacher``; its answer about step ``t`` arrives at step ``t +
    hindsight + lag`` (see :class:`~feedbackgym.feedback.scores.ScoreModel`) and the learner's
    reward is the sum of the feedback arriving at this step (0 when none). ``info["feedback"]``
    lists the arriving items ``{"step": t, "value": v}`` (``step`` counts the wrapper's steps
    over all episodes); the true reward is in ``info["true_reward"]``. Feedback still pending
    when an episode ends arrives at its last step. For COACH, ``policy_fn()`` returns the
    learner's current policy table.

    :param env: the env to wrap.
    :param teacher: a score model (``tamer``, ``coach``, or one of yours with ``score``).
    :param policy_fn: callable returning the learner's policy ``pi[s, a]`` (COACH), or None.
    """

    def __init__(
        self,
        env: gym.Env,
        teacher: FeedbackModel,
        policy_fn: Callable[[], np.ndarray] | None = None,
    ) -> None:
        super().__init__(env)
        if not hasattr(teacher, "score"):
            raise ConfigError("teacher must be a score model (tamer, coach) with score()")
        self.teacher = teacher
        self.policy_fn = policy_fn
        self.hindsight = int(getattr(teacher, "hindsight", 0))
        self.queue = DelayQueue("fixed")
        self.t = 0
        self._episode: list[tuple[Any, Any, float]] = []
        self._judged = 0
        self._first_step = 0
        self._obs: Any = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._obs = obs
        self._episode = []
        self._judged = 0
        self._first_step = self.t
        return obs, info

    def _judge(self, upto: int) -> None:
        """Ask the teacher about the episode's steps ``_judged .. upto - 1``."""
        policy = None if self.policy_fn is None else self.policy_fn()
        for j in range(self._judged, upto):
            window = self._episode[j:]
            segment = Segments(
                [[step[2] for step in window]],
                np.asarray([step[0] for step in window])[None],
                np.asarray([step[1] for step in window])[None],
            )
            answer = self.teacher.score(segment, judge=1, policy=policy)
            value = float(answer.value[0, 0])
            if value == value:  # NaN: no feedback this step
                step = self._first_step + j
                item = {"step": step, "value": value}
                self.queue.push([item], step, release=step + int(answer.arrival[0, 0]))
        self._judged = max(self._judged, upto)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._episode.append((self._obs, action, float(reward)))
        self._obs = obs
        done = terminated or truncated
        self._judge(len(self._episode) if done else len(self._episode) - self.hindsight)
        arrived = self.queue.flush() if done else self.queue.pop(self.t)
        self.t += 1
        info = _true_reward(info, reward)
        info["feedback"] = arrived
        return obs, float(sum(item["value"] for item in arrived)), terminated, truncated, info


class CorrectionFeedback(gym.Wrapper):
    """The learner gets a teacher's sentence about each action instead of a reward.

    ``expert(obs)`` gives the action the expert would take; ``teacher`` (a language model
    such as :class:`~feedbackgym.feedback.language.LanguageTeacher`) corrects the learner's
    action against it, comparing discrete actions by ``action_vectors`` (default: the env's
    ``action_vectors``, as in :class:`~feedbackgym.envs.gridworld.GridWorld`) and continuous
    actions directly. The reward is 0, ``info["feedback"]`` is ``[{"step": t, "value":
    sentence}]`` and the true reward is in ``info["true_reward"]``.

    :param env: the env to wrap.
    :param teacher: a correction model with ``correct`` (and ``correct_actions``).
    :param expert: callable ``obs -> action`` of the expert.
    :param action_vectors: direction of each discrete action, shape ``(n_actions, d)``.
    """

    def __init__(
        self,
        env: gym.Env,
        teacher: FeedbackModel,
        expert: Callable[[Any], Any],
        action_vectors: np.ndarray | None = None,
    ) -> None:
        super().__init__(env)
        if not hasattr(teacher, "correct"):
            raise ConfigError("teacher must be a correction model (language) with correct()")
        self.teacher = teacher
        self.expert = expert
        if action_vectors is None:
            action_vectors = getattr(env.unwrapped, "action_vectors", None)
        self.action_vectors = None if action_vectors is None else np.asarray(action_vectors)
        self.t = 0
        self._obs: Any = None

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._obs = obs
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        expert_action = self.expert(self._obs)
        if self.action_vectors is not None:
            agent_vec = self.action_vectors[[int(action)]]
            expert_vec = self.action_vectors[[int(expert_action)]]
        else:
            agent_vec = np.asarray(action, dtype=np.float64).reshape(1, -1)
            expert_vec = np.asarray(expert_action, dtype=np.float64).reshape(1, -1)
        sentence = self.teacher.correct(agent_vec, expert_vec)[0]
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._obs = obs
        info = _true_reward(info, reward)
        info["feedback"] = [{"step": self.t, "value": sentence}]
        self.t += 1
        return obs, 0.0, terminated, truncated, info


class PreferenceFeedback(gym.Wrapper):
    """Cuts experience into segments and lets the learner ask a teacher to compare them.

    The reward is 0 (the true reward is in ``info["true_reward"]``). Every
    ``segment_length`` steps of an episode form a segment (a shorter remainder at the end of
    an episode is dropped); :meth:`segments` shows the learner their observations and
    actions, never their rewards, and :meth:`ask` returns ``teacher.prefer`` labels for pairs
    of segment indices, as in Christiano et al. (2017).

    :param env: the env to wrap.
    :param teacher: a pairwise model (``oracle``, ``stochastic``, ``regret``, a panel, ...).
    :param segment_length: steps per segment, a positive integer.
    """

    def __init__(self, env: gym.Env, teacher: FeedbackModel, segment_length: int = 50) -> None:
        super().__init__(env)
        if not hasattr(teacher, "prefer"):
            raise ConfigError("teacher must be a pairwise model with prefer()")
        self.teacher = teacher
        self.segment_length = check_positive_int("segment_length", segment_length)
        self._obs_list: list[np.ndarray] = []
        self._act_list: list[np.ndarray] = []
        self._rew_list: list[np.ndarray] = []
        self._current: list[tuple[Any, Any, float]] = []
        self._obs: Any = None

    @property
    def n_segments(self) -> int:
        """Number of complete segments recorded."""
        return len(self._rew_list)

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._obs = obs
        self._current = []
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._current.append((self._obs, action, float(reward)))
        self._obs = obs
        if len(self._current) == self.segment_length:
            self._obs_list.append(np.asarray([s[0] for s in self._current]))
            self._act_list.append(np.asarray([s[1] for s in self._current]))
            self._rew_list.append(np.asarray([s[2] for s in self._current]))
            self._current = []
        if terminated or truncated:
            self._current = []
        return obs, 0.0, terminated, truncated, _true_reward(info, reward)

    def segments(self) -> tuple[np.ndarray, np.ndarray]:
        """Observations and actions of every recorded segment, shape ``(n, L, ...)``."""
        if not self._rew_list:
            raise ConfigError("no complete segment recorded yet; step the env first")
        return np.stack(self._obs_list), np.stack(self._act_list)

    def ask(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The teacher's labels for the segment pairs ``(first[i], second[i])``."""
        first = np.asarray(first, dtype=np.int64).reshape(-1)
        second = np.asarray(second, dtype=np.int64).reshape(-1)
        n = self.n_segments
        if first.shape != second.shape or (first.size and max(first.max(), second.max()) >= n):
            raise ConfigError(f"segment indices must be pairs in [0, {n - 1}]")
        obs, actions = self.segments()
        rewards = np.stack(self._rew_list)
        a = Segments(rewards[first], obs[first], actions[first])
        b = Segments(rewards[second], obs[second], actions[second])
        return self.teacher.prefer(a, b)


class DelayedFeedback(gym.Wrapper):
    """Holds the feedback items of an inner feedback wrapper and releases them later.

    Reads ``info["feedback"]`` of the wrapped env (e.g. :class:`ScoreFeedback`,
    :class:`CorrectionFeedback`), holds each item according to ``delay`` (fixed, geometric,
    uniform, batched, episode-end; see :mod:`feedbackgym.feedback.delays`) and puts the
    released items in ``info["feedback"]``; the reward is the sum of the numeric values
    released. Items not yet due when an episode ends stay held into the next episode (the
    episode-end delay releases at every episode's end); :meth:`flush` returns what is left,
    so every item is delivered exactly once.

    :param env: a feedback wrapper that reports ``info["feedback"]``.
    :param delay: a :class:`~feedbackgym.feedback.delays.Delay` or its registry name.
    :param rng: a numpy Generator or an integer seed (random delays).
    """

    def __init__(
        self, env: gym.Env, delay: Delay | str, rng: np.random.Generator | int | None = None
    ) -> None:
        super().__init__(env)
        self.queue = DelayQueue(delay, rng)
        self.t = 0

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, _, terminated, truncated, info = self.env.step(action)
        self.queue.push(list(info.get("feedback", [])), self.t)
        released = self.queue.pop(self.t, episode_end=terminated or truncated)
        self.t += 1
        info = dict(info)
        info["feedback"] = released
        reward = sum(
            item["value"]
            for item in released
            if isinstance(item.get("value"), (int, float, np.number))
        )
        return obs, float(reward), terminated, truncated, info

    def flush(self) -> list[Any]:
        """Every item still held (call when the run ends)."""
        return self.queue.flush()
