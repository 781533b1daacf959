"""A bandit agent that learns which arm is best from corrections in words (Thompson sampling)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Any

import numpy as np

from feedbackgym.agents.bandits.base import BanditAgent, register_agent
from feedbackgym.errors import ConfigError, check_range
from feedbackgym.feedback.grounding import one_torch_thread, shared_grounding

#: Largest consistency table (runs x arms x classes x arms numbers) kept; beyond it the
#: likelihood is computed afresh at each step.
TABLE_MAX = 2**23


@register_agent("lang-ts")
class LanguageThompsonSampling(BanditAgent):
    """Thompson sampling over which arm is best, from corrections in words.

    For the language bandit (``feedbackgym/LanguageBandit-v0``; LLF-Bench, Cheng et al. 2023,
    "LLF-Bench: Benchmark for Interactive Learning from Language Feedback"): the observation
    gives every arm's features, and after each pull a teacher says how the pulled arm differs
    from the best ("you went too far left", "next time move a lot more up", "that was right").
    Each run keeps a belief over which arm is the best one (log-probabilities, shape
    ``(n_runs, K)``, uniform at first). Each sentence is grounded by a
    :class:`~feedbackgym.feedback.grounding.Grounding` (``encoder``: ``builtin`` or ``minilm``)
    into class probabilities, and the belief is multiplied by
    :meth:`Grounding.likelihood <feedbackgym.feedback.grounding.Grounding.likelihood>` of every
    hypothesis k, with gaps ``features[pulled] - features[k]``. The agent pulls an arm drawn
    from its belief: Thompson sampling (Thompson 1933; Chapelle & Li 2011, "An Empirical
    Evaluation of Thompson Sampling"; Russo et al. 2018, "A Tutorial on Thompson Sampling")
    with the best arm's identity as the unknown.

    Deviations: the likelihood is not the teacher's generative model (which kind of feedback
    it drew, which paraphrase) but an approximate consistency likelihood, ``floor + sum_c
    p(c | sentence) * [class c is consistent with hypothesis k]``, a named direction being
    reversed with the assumed probability ``wrong_direction``; the ``floor`` keeps a noisy or
    misgrounded sentence from ruling the truth out for good. Rewards are ignored: the belief
    learns from words only (thompson on the same env is the baseline from rewards alone).
    Sentences the grounding cannot use (off-topic, empty) are counted in :attr:`unusable` and
    ignored. The teacher's thresholds (``tolerance``: a gap called right; ``large``: a gap
    called "a lot") and axis words are read from the env's ``teacher`` by :meth:`from_env`.

    The consistency of every (pulled arm, class, hypothesis) is tabulated once per instance
    (when it has at most :data:`TABLE_MAX` numbers), so a step costs a table look-up, one
    small batched product and a dictionary look-up per sentence.

    :param encoder: sentence encoder of the grounding, ``builtin`` (no model) or ``minilm``.
    :param wrong_direction: assumed probability that the teacher names the wrong direction,
        in [0, 0.5).
    :param floor: likelihood added to every hypothesis, > 0.
    :param tolerance: a gap up to this on every axis is "right" (the teacher's), >= 0.
    :param large: a gap above this is "a lot" (the teacher's), >= tolerance.
    :param axis_names: ``(negative, positive)`` words of each feature axis (the teacher's).
    """

    #: Its sentences are not carried by the delay wrapper: refused under ``--delay``.
    delay_ok = False

    feedback_type = "correction"

    def __init__(
        self,
        n_arms: int,
        n_runs: int = 1,
        seed: int | None = None,
        encoder: str = "builtin",
        wrong_direction: float = 0.05,
        floor: float = 0.05,
        tolerance: float = 0.1,
        large: float = 0.5,
        axis_names: Sequence[Sequence[str]] = (("left", "right"), ("down", "up")),
    ) -> None:
        if not isinstance(encoder, str):
            raise ConfigError(f"encoder must be an encoder name (builtin, minilm), got {encoder!r}")
        self.encoder = encoder
        self.wrong_direction = check_range(
            "wrong_direction", wrong_direction, 0.0, 0.5, high_open=True
        )
        self.floor = check_range("floor", floor, 0.0, low_open=True)
        self.tolerance = check_range("tolerance", tolerance, 0.0)
        self.large = check_range("large", large, self.tolerance)
        self.axis_names = tuple(tuple(str(w) for w in pair) for pair in axis_names)
        if not self.axis_names or any(len(pair) != 2 for pair in self.axis_names):
            raise ConfigError("axis_names must be a list of (negative, positive) word pairs")
        self.grounding = shared_grounding(encoder, self.axis_names)
        super().__init__(n_arms, n_runs, seed, dim=len(self.axis_names))

    def reset(self) -> None:
        super().reset()
        self.log_belief = np.zeros((self.n_runs, self.n_arms))
        #: Sentences heard and, of those, the ones the grounding could not use.
        self.heard = 0
        self.unusable = 0
        self._features: np.ndarray | None = None  # (n, K, d) as observed
        self._table: np.ndarray | None = None  # (n, K pulled, C, K hypotheses)
        # Sentence -> row of the grounded tables (row 0: nothing usable said).
        n_classes = len(self.grounding.classes)
        self._sentence_row: dict[Any, int] = {}
        self._usable = np.zeros(1, dtype=bool)
        self._probs = np.zeros((1, n_classes))

    @classmethod
    def from_env(cls, env: Any, seed: int | None = None, **params: Any) -> BanditAgent:
        """As :meth:`BanditAgent.from_env`, with the teacher's ``tolerance``, ``large`` and
        ``axis_names`` (public, like the reward family) unless given."""
        teacher = getattr(getattr(env, "unwrapped", env), "teacher", None)
        for name in ("tolerance", "large", "axis_names"):
            if teacher is not None and hasattr(teacher, name):
                params.setdefault(name, getattr(teacher, name))
        return super().from_env(env, seed=seed, **params)

    # ----- acting ------------------------------------------------------------------------------
    def predict(self, obs: Any = None) -> np.ndarray:
        """Each run's arm, drawn from its belief over the best arm."""
        weights = np.exp(self.log_belief - self.log_belief.max(axis=1, keepdims=True))
        cumulative = np.cumsum(weights, axis=1)
        u = self.rng.random(self.n_runs) * cumulative[:, -1]
        return np.minimum((cumulative <= u[:, None]).sum(axis=1), self.n_arms - 1)

    # ----- learning ----------------------------------------------------------------------------
    def update(
        self,
        actions: np.ndarray,
        rewards: np.ndarray,
        obs: Any = None,
        feedback: Sequence[Any] | None = None,
    ) -> None:
        """Multiply each run's belief by the likelihood of its sentence ``feedback[run]``.

        ``obs`` holds the arms' features ``(n_runs, K, d)``; ``rewards`` are not used.
        """
        if feedback is None:
            raise ConfigError(
                f"agent {self.registry_name!r} learns from corrections in info['feedback'], "
                "which the env does not give; use it on feedbackgym/LanguageBandit-v0"
            )
        if len(feedback) != self.n_runs:
            raise ConfigError(f"feedback must hold {self.n_runs} sentences, got {len(feedback)}")
        actions = np.asarray(actions, dtype=np.int64).reshape(self.n_runs)
        self._observe(obs)
        rows = self._rows_of(feedback)
        usable = self._usable[rows]
        probs = self._probs[rows]
        if self._table is not None:
            consistent = self._table[self._rows, actions]  # (n, C, K)
            lik = self.floor + np.matmul(probs[:, None, :], consistent)[:, 0, :]
        else:
            x = self._features
            gaps = x[self._rows, actions][:, None, :] - x
            lik = self.grounding.likelihood(
                probs, gaps, self.tolerance, self.large, self.wrong_direction, self.floor
            )
        log_lik = np.log(lik)
        log_lik[~usable] = 0.0
        self.log_belief += log_lik
        self.log_belief -= self.log_belief.max(axis=1, keepdims=True)
        self.heard += self.n_runs
        self.unusable += int(self.n_runs - usable.sum())
        self.t += 1

    @property
    def belief(self) -> np.ndarray:
        """Each run's probability that each arm is the best, shape ``(n_runs, K)``."""
        p = np.exp(self.log_belief - self.log_belief.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)

    def _rows_of(self, feedback: Sequence[Any]) -> np.ndarray:
        """Row of each sentence in the grounded tables; new sentences are grounded first."""
        index = self._sentence_row
        try:
            rows = np.fromiter(map(index.get, feedback, repeat(-1)), np.int64, self.n_runs)
        except TypeError:  # an unhashable item: nothing usable
            feedback = [t if isinstance(t, str) else None for t in feedback]
            rows = np.fromiter(map(index.get, feedback, repeat(-1)), np.int64, self.n_runs)
        if (rows < 0).any():
            new = list(dict.fromkeys(feedback[i] for i in np.flatnonzero(rows < 0)))
            texts = [t if isinstance(t, str) else None for t in new]
            with one_torch_thread():
                usable, probs = self.grounding.ground(texts)
            start = len(self._usable)
            self._usable = np.concatenate([self._usable, usable])
            self._probs = np.concatenate([self._probs, probs])
            for offset, text in enumerate(new):
                index[text] = start + offset
            rows = np.fromiter(map(index.get, feedback, repeat(-1)), np.int64, self.n_runs)
        return rows

    def _observe(self, obs: Any) -> None:
        """Keep the arms' features; a run whose features changed (a new instance) starts over."""
        if obs is None:
            raise ConfigError(
                f"agent {self.registry_name!r} needs the arms' features as observation"
            )
        x = np.asarray(obs)
        shape = (self.n_runs, self.n_arms, self.dim)
        if x.shape != shape:
            raise ConfigError(
                f"observation must be the arms' features, shape {shape}, got {x.shape}"
            )
        if self._features is not None and np.array_equal(x, self._features):
            return
        x = x.astype(np.float64)
        if self._features is None:
            changed = self._rows
            self._features = x.copy()
        else:
            changed = np.flatnonzero((x != self._features).any(axis=(1, 2)))
            self._features[changed] = x[changed]
            self.log_belief[changed] = 0.0
        n_classes = len(self.grounding.classes)
        if self.n_runs * self.n_arms**2 * n_classes > TABLE_MAX:
            self._table = None
            return
        if self._table is None:
            self._table = np.empty((self.n_runs, self.n_arms, n_classes, self.n_arms))
        self._table[changed] = self._consistency(x[changed])

    def _consistency(self, x: np.ndarray) -> np.ndarray:
        """``(m, K pulled, C, K hypotheses)``: the likelihood of each class (floor 0) when
        arm ``a`` was pulled and arm ``h`` is the best, from :meth:`Grounding.likelihood`."""
        m, k, d = x.shape
        n_classes = len(self.grounding.classes)
        out = np.empty((m, k, n_classes, k))
        chunk = max(1, 4096 // k)  # runs per batch: bounded temporaries
        eye = np.eye(n_classes)
        for start in range(0, m, chunk):
            xs = x[start : start + chunk]
            gaps = (xs[:, :, None, :] - xs[:, None, :, :]).reshape(-1, k, d)
            for c in range(n_classes):
                probs = np.broadcast_to(eye[c], (gaps.shape[0], n_classes))
                lik = self.grounding.likelihood(
                    probs, gaps, self.tolerance, self.large, self.wrong_direction, floor=0.0
                )
                out[start : start + chunk, :, c, :] = lik.reshape(xs.shape[0], k, k)
        return out
