"""The language bandit: a feature bandit whose teacher says, in words, where the best arm lies."""

from __future__ import annotations

from typing import Any

import numpy as np

from feedbackgym.envs.bandits import DEFAULT_HORIZON, FeatureBanditVec, SingleRunBandit
from feedbackgym.errors import ConfigError
from feedbackgym.feedback.language import LanguageTeacher
from feedbackgym.registry import check_kwargs

#: Teacher settings the env may not be given: it owns the teacher's random generator.
_OWNED = ("rng",)


class LanguageBanditVec(FeatureBanditVec):
    """Feature bandit with a teacher who corrects every pull in words (LLF-Bench style).

    The arms, means and rewards are those of :class:`~feedbackgym.envs.bandits.FeatureBanditVec`
    (K arms at points of [-1, 1]^2, Bernoulli rewards ``mu_max * exp(-||x_k - x*||^2 / (2
    width^2))``, the (K, 2) feature matrix as observation). After each pull a
    :class:`~feedbackgym.feedback.language.LanguageTeacher` compares the pulled arm's features
    (the learner's behaviour) with the best arm's (the expert's) and says one sentence per run,
    e.g. "You went too far left." or "Next time move a lot more up."; the sentences are
    ``info["feedback"]``, a list of ``num_envs`` strings ("" for a run restarting at this step,
    which gets no reward either). Axis words are ("left", "right") and ("down", "up"). The
    sampled reward is still returned, so reward-only agents (thompson, ucb1, ...) act here too
    and give the baseline "from rewards alone" on the same instances.

    The teacher's ``tolerance`` (a gap up to it on every axis is "right") defaults to half of
    ``min_separation``, so only the best arm itself is ever called right; ``large`` (a gap
    above it is "a lot") defaults to 0.5, a quarter of the feature range. Both are public, like
    the reward family: :attr:`teacher` holds them, and learners read them from it. The teacher
    draws from the env's generator, so a seeded reset replays the same sentences.

    Follows LLF-Bench (Cheng et al. 2023, "LLF-Bench: Benchmark for Interactive Learning from
    Language Feedback"), whose bandit tasks describe the arms to the learner and answer each
    pull with feedback in words; here the feedback is the template teacher's, vectorised over
    runs, instead of LLF-Bench's per-episode text environment.

    :param n_arms: number of arms K.
    :param mu_max: success probability of the best arm, in (0, 1].
    :param width: length scale of the means' decay with distance, > 0.
    :param min_separation: least L-infinity distance between two arms, in (0, 1].
    :param prior_seed: seed for drawing one fixed instance for every run.
    :param horizon: steps per episode.
    :param switching_cost: cost charged in regret when the pulled arm changes.
    :param teacher_kwargs: arguments of the :class:`LanguageTeacher` (``kinds``, ``templates``,
        ``axis_names``, ``tolerance``, ``large``, ``wrong_direction``, ``vagueness``); the
        tolerance must be below ``min_separation``.
    """

    feedback_type = "correction"

    def __init__(
        self,
        num_envs: int = 1,
        n_arms: int = 20,
        mu_max: float = 0.9,
        width: float = 0.5,
        min_separation: float = 0.2,
        prior_seed: int | None = None,
        horizon: int = DEFAULT_HORIZON,
        switching_cost: float = 0.0,
        teacher_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if teacher_kwargs is None:
            teacher_kwargs = {}
        if not isinstance(teacher_kwargs, dict):
            raise ConfigError(f"teacher_kwargs must be a dict, got {teacher_kwargs!r}")
        check_kwargs(LanguageTeacher, teacher_kwargs, "teacher_kwargs")
        owned = [key for key in _OWNED if key in teacher_kwargs]
        if owned:
            raise ConfigError(
                f"teacher_kwargs may not set {owned[0]!r}: the teacher draws from the env's "
                "generator (seed the env's reset instead)"
            )
        kwargs = {"tolerance": float(min_separation) / 2.0, "large": 0.5, **teacher_kwargs}
        self.teacher = LanguageTeacher(**kwargs)
        self.teacher_kwargs = dict(teacher_kwargs)
        super().__init__(
            num_envs,
            n_arms,
            len(self.teacher.axis_names),
            mu_max,
            width,
            min_separation,
            prior_seed,
            horizon,
            switching_cost,
        )
        if self.teacher.tolerance >= self.min_separation:
            raise ConfigError(
                f"the teacher's tolerance ({self.teacher.tolerance:g}) must be below "
                f"min_separation ({self.min_separation:g}), else arms near the best one are "
                "called right too"
            )

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        restarting = self._needs_reset.copy()
        obs, rewards, terminated, truncated, info = super().step(actions)
        pulled = np.asarray(actions).reshape(self.num_envs).astype(np.int64)
        self.teacher.rng = self.np_random  # one generator: a seeded reset replays the sentences
        sentences = self.teacher.correct(
            self.features[self._rows, pulled], self.features[self._rows, self.best_arm]
        )
        if restarting.any():
            for run in np.flatnonzero(restarting):
                sentences[run] = ""
        info["feedback"] = sentences
        return obs, rewards, terminated, truncated, info


class LanguageBandit(SingleRunBandit):
    __doc__ = LanguageBanditVec.__doc__
    vector_class = LanguageBanditVec
