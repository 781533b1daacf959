"""A feedback model learned from a feedback log (GUIDE-style), standing in for the teacher."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from feedbackgym.errors import ConfigError, check_positive_int, check_range
from feedbackgym.feedback.base import (
    FeedbackModel,
    Segments,
    as_segments,
    register_feedback_model,
)
from feedbackgym.feedback.log import decode_answer, logged_queries
from feedbackgym.feedback.preferences import sigmoid
from feedbackgym.feedback.reward_model import (
    Comparisons,
    RewardModel,
    one_hot_sizes,
    resolve_device,
)

__all__ = ["LearnedPreferenceModel", "preference_data", "resolve_device"]


@register_feedback_model("learned")
class LearnedPreferenceModel(FeedbackModel):
    """A Bradley-Terry reward model fitted to logged preferences, answering like a teacher.

    After GUIDE (Zhang et al. 2024, "GUIDE: Real-Time Human-Shaped Agents"), which trains a
    simulated feedback module on a person's feedback so it can keep giving feedback once the
    person leaves. Here the toolkit's one reward model
    (:class:`~feedbackgym.feedback.reward_model.RewardModel`: ``members`` MLPs
    ``r_theta(step features)``, one by default) is fitted with full-batch Adam to the labelled
    pairs of a :class:`~feedbackgym.feedback.log.FeedbackLog` (or arrays) by the Bradley-Terry
    loss ``BCE(sigmoid(sum r_theta(a) - sum r_theta(b)), label)`` of Christiano et al. (2017);
    skipped pairs are left out, "equal" is the target 0.5. It then answers ``prefer`` like a
    Bradley-Terry teacher: sampling with ``P(a > b) = sigmoid(beta (R_a - R_b))`` (``beta = 1``
    reproduces the fitted probabilities), or the likelier label when ``beta = inf``.
    Deviation: GUIDE regresses continuous scalar feedback from images; this model learns
    pairwise preferences from state/action features.

    Step features: discrete observations/actions (integer arrays of shape ``(n, L)``) are
    one-hot encoded, ``n_obs``/``n_actions`` wide (when None, the largest value in the log +
    1; a training run refuses the teacher when that is not its env's ``Discrete`` size, see
    :meth:`check_spaces`), continuous ones flattened; segments with neither use the reward.

    :param hidden: width of the two hidden layers, a positive integer.
    :param epochs: full passes of Adam over the data, a positive integer.
    :param lr: Adam's learning rate, > 0.
    :param beta: rationality when answering, in [0, inf].
    :param members: ensemble size; answers use the members' mean return.
    :param fit_log: a feedback log (e.g. a training run's ``feedback.jsonl``) to fit to at
        construction, so the model can be built by name, e.g. as a training run's teacher.
    :param device: torch device; "auto" is CUDA when available.
    :param rng: a numpy Generator or an integer seed (weights and answers).
    :param n_obs: the number of discrete observations (states) of the env the log comes
        from (None: read from the log; give it when the log may not hold the highest state).
    :param n_actions: the number of discrete actions (None: read from the log).
    """

    kind = "preference"

    def __init__(
        self,
        hidden: int = 64,
        epochs: int = 200,
        lr: float = 1e-2,
        beta: float = 1.0,
        members: int = 1,
        fit_log: str | None = None,
        device: str = "auto",
        rng: np.random.Generator | int | None = None,
        n_obs: int | None = None,
        n_actions: int | None = None,
    ) -> None:
        super().__init__(rng)
        self.n_obs = None if n_obs is None else check_positive_int("n_obs", n_obs)
        self.n_actions = None if n_actions is None else check_positive_int("n_actions", n_actions)
        self.hidden = check_positive_int("hidden", hidden)
        self.epochs = check_positive_int("epochs", epochs)
        self.lr = check_range("lr", lr, 0.0, low_open=True)
        self.beta = check_range("beta", beta, 0.0, allow_inf=True)
        self.members = check_positive_int("members", members)
        self.device = device
        self.fit_log = None if fit_log is None else str(fit_log)
        self.reward_model: RewardModel | None = None
        if fit_log is not None:
            if not isinstance(fit_log, (str, Path)):
                raise ConfigError(f"fit_log must be a feedback log's path, got {fit_log!r}")
            self.fit(fit_log)

    @property
    def losses(self) -> list[float]:
        """Training loss after each epoch of the last :meth:`fit`."""
        return [] if self.reward_model is None else self.reward_model.losses

    def check_spaces(self, observation_space: Any, action_space: Any) -> None:
        """Refuse before any query when not fitted (built by name: give ``fit_log``) or when
        fitted to steps unlike this env's (one step of zeros from its spaces is scored)."""
        if self.reward_model is None:
            raise ConfigError(
                "the learned teacher is not fitted: give fit_log, the feedback log to learn the "
                'teacher from, e.g. {"fit_log": "runs/earlier/feedback.jsonl"}'
            )
        obs = np.zeros((1, 1, *observation_space.shape), observation_space.dtype)
        actions = np.zeros((1, 1, *action_space.shape), action_space.dtype)
        try:
            self.returns(Segments(np.zeros((1, 1)), obs, actions))
        except (RuntimeError, ValueError) as err:
            raise ConfigError(
                f"the learned teacher was fitted to steps unlike this env's "
                f"({str(err).splitlines()[0]}); fit it to a log of a run on this env"
            ) from None
        # One-hot widths read from a log that never held the highest state would refuse (or,
        # wider, misplace) the env's states in the middle of the run.
        sizes = one_hot_sizes(observation_space, action_space)
        for name, option in (("obs", "n_obs"), ("actions", "n_actions")):
            fitted, wanted = self.reward_model.one_hot.get(name), sizes[option]
            if fitted is not None and wanted is not None and fitted != wanted:
                space = observation_space if name == "obs" else action_space
                source = f"its {option}" if getattr(self, option) else "read from its log"
                raise ConfigError(
                    f"the learned teacher one-hot encodes {fitted} discrete "
                    f"{'observations' if name == 'obs' else 'actions'} ({source}), but the "
                    f"env's {space} has {wanted}: give {option}={wanted} in its options"
                )

    # ----- fitting ----------------------------------------------------------------------
    def fit(
        self,
        data: str | Path | tuple[Segments, Segments, np.ndarray],
        model: int | None = None,
    ) -> LearnedPreferenceModel:
        """Fit to a feedback log path (its ``prefer`` batches; of model id ``model`` when
        given) or to a tuple ``(a, b, labels)``. Returns self."""
        if isinstance(data, (str, Path)):
            a, b, labels = preference_data(data, model)
        else:
            a, b, labels = as_segments(data[0]), as_segments(data[1]), np.asarray(data[2], float)
        comparisons = Comparisons()
        if not comparisons.add_pairs(a, b, labels):
            raise ConfigError("no answered preference to fit the learned model to")
        self.reward_model = RewardModel(
            members=self.members,
            hidden=self.hidden,
            lr=self.lr,
            batch_size=None,  # full-batch Adam: a log is small
            device=self.device,
            seed=int(self.rng.integers(2**31)),
            n_obs=self.n_obs,
            n_actions=self.n_actions,
        )
        self.reward_model.fit(comparisons, epochs=self.epochs)
        return self

    def returns(self, segments: Segments | np.ndarray) -> np.ndarray:
        """Learned return ``sum_t r_theta`` of each segment (members' mean), shape ``(n,)``."""
        if self.reward_model is None:
            raise ConfigError("the learned feedback model is not fitted; call fit() first")
        return self.reward_model.segment_returns(as_segments(segments)).mean(axis=0)

    def probabilities(self, a: Segments | np.ndarray, b: Segments | np.ndarray) -> np.ndarray:
        """Fitted ``P(a > b)``, shape ``(n,)``."""
        return sigmoid(self.returns(a) - self.returns(b))

    def prefer(self, a: Segments | np.ndarray, b: Segments | np.ndarray) -> np.ndarray:
        """Labels drawn from the fitted model (1.0 a, 0.0 b)."""
        a, b = as_segments(a), as_segments(b)
        diff = self.returns(a) - self.returns(b)
        u = self.rng.random(diff.shape[0])
        if self.beta == float("inf"):
            labels = np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5))
        else:
            labels = (u < sigmoid(self.beta * diff)).astype(np.float64)
        self._count(len(labels), len(labels))
        self._record("prefer", lambda: {"a": a.to_dict(), "b": b.to_dict()}, labels)
        return labels


def preference_data(
    path: str | Path, model: int | None = None
) -> tuple[Segments, Segments, np.ndarray]:
    """All labelled pairs of a feedback log's ``prefer`` batches, concatenated."""
    firsts: list[Segments] = []
    seconds: list[Segments] = []
    labels: list[np.ndarray] = []
    for record in logged_queries(path, model):
        if record["verb"] != "prefer":
            continue
        if "query" not in record:
            raise ConfigError(f"feedback log {str(path)!r} was written without its queries")
        firsts.append(Segments.from_dict(record["query"]["a"]))
        seconds.append(Segments.from_dict(record["query"]["b"]))
        labels.append(decode_answer(record))
    if not firsts:
        raise ConfigError(f"feedback log {str(path)!r} holds no preference answers")

    def cat(batches: list[Segments]) -> Segments:
        def join(name: str) -> np.ndarray | None:
            parts = [getattr(s, name) for s in batches]
            return None if any(p is None for p in parts) else np.concatenate(parts)

        return Segments(join("rewards"), join("obs"), join("actions"))

    return cat(firsts), cat(seconds), np.concatenate(labels)
