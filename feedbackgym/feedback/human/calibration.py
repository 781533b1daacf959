"""Calibrating the simulated teachers to logged (human) preferences by maximum likelihood."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from feedbackgym.errors import ConfigError
from feedbackgym.feedback.base import Segments
from feedbackgym.feedback.learned import LearnedPreferenceModel, preference_data
from feedbackgym.feedback.preferences import myopic_weights, sigmoid
from feedbackgym.feedback.returns import advantages
from feedbackgym.feedback.reward_model import RewardModel
from feedbackgym.io import atomic_path

#: Grid of the myopic discount searched (the likelihood is piecewise constant in gamma).
GAMMA_GRID = np.round(np.arange(0.50, 1.0001, 0.01), 2)
#: Probabilities are kept in [EPS, 1 - EPS] where a fitted parameter sits on its boundary.
EPS = 1e-9


@dataclass
class TeacherFit:
    """How well one teacher, with its fitted parameters, explains the logged labels.

    :param teacher: registry name of the teacher.
    :param params: fitted parameters (empty for the oracle); keyword arguments of the teacher.
    :param log_likelihood: total log-likelihood of the labels (``-inf`` when the teacher
        could not have given one of them; None when it does not apply).
    :param agreement: fraction of the strict labels (a or b) on which the teacher's likelier
        answer is the logged one (a tie counts half).
    :param labels: labels scored.
    :param note: why a teacher does not apply, or how it was scored.
    """

    teacher: str
    params: dict[str, float] = field(default_factory=dict)
    log_likelihood: float | None = None
    agreement: float | None = None
    labels: int = 0
    note: str = ""

    @property
    def per_label(self) -> float | None:
        """Mean log-likelihood per label."""
        if self.log_likelihood is None or not self.labels:
            return None
        return self.log_likelihood / self.labels


def log_likelihood(p: np.ndarray, labels: np.ndarray) -> float:
    """``sum y log p + (1 - y) log (1 - p)`` over labels ``y`` in {0, 0.5, 1} (an "equal"
    answer scores half of each, as in the Bradley-Terry loss the reward model uses)."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.where(labels > 0, labels * np.log(p), 0.0)
        second = np.where(labels < 1, (1 - labels) * np.log(1 - p), 0.0)
    return float(np.sum(first + second))


def agreement(p: np.ndarray, labels: np.ndarray) -> float | None:
    """Fraction of strict labels matching the likelier answer (ties count half)."""
    strict = (labels == 0.0) | (labels == 1.0)
    if not strict.any():
        return None
    p, y = p[strict], labels[strict]
    hits = np.where(p == 0.5, 0.5, ((p > 0.5) == (y == 1.0)).astype(float))
    return float(hits.mean())


def _fit(
    teacher: str, params: dict[str, float], p: np.ndarray, y: np.ndarray, note: str = ""
) -> TeacherFit:
    return TeacherFit(teacher, params, log_likelihood(p, y), agreement(p, y), len(y), note)


def _oracle_p(diff: np.ndarray) -> np.ndarray:
    return np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5))


def fit_beta(diff: np.ndarray, labels: np.ndarray) -> tuple[float, bool]:
    """MLE of ``beta`` in ``P(a) = sigmoid(beta diff)``; ``(beta, capped)`` where ``capped``
    says the maximum sits at the search bound (the labels never contradict ``diff``'s sign,
    so the likelihood keeps rising: the data fit the oracle)."""
    from scipy.optimize import minimize_scalar

    scale = float(np.max(np.abs(diff))) if diff.size else 0.0
    if scale == 0.0:
        return 0.0, False
    upper = 200.0 / scale  # sigmoid(200) is 1 to double precision: larger betas are the oracle
    result = minimize_scalar(
        lambda beta: -log_likelihood(np.clip(sigmoid(beta * diff), EPS, 1 - EPS), labels),
        bounds=(0.0, upper),
        method="bounded",
        options={"xatol": 1e-6 * upper},
    )
    beta = float(result.x)
    return beta, beta > 0.99 * upper


def fit_mistake(diff: np.ndarray, labels: np.ndarray) -> float:
    """Closed-form MLE of the flip rate of the oracle's choice: the share of labels (equal
    ones counting half) against the return's sign, among pairs whose returns differ."""
    decisive = diff != 0
    if not decisive.any():
        return 0.0
    agrees = np.where(diff[decisive] > 0, labels[decisive], 1.0 - labels[decisive])
    return float(np.mean(1.0 - agrees))


def _mistake_p(diff: np.ndarray, mistake: float) -> np.ndarray:
    m = float(np.clip(mistake, EPS, 1 - EPS))
    return np.where(diff > 0, 1.0 - m, np.where(diff < 0, m, 0.5))


def calibrate(
    path: str | Path,
    model: int | None = None,
    env: Any = None,
    learned_kwargs: dict[str, Any] | None = None,
    holdout: float = 0.2,
    seed: int = 0,
) -> tuple[list[TeacherFit], LearnedPreferenceModel]:
    """Fit each simulated teacher to the preferences of a feedback log, and a learned teacher.

    Which simulated annotator answers like the people in the log, and with which parameter?
    Each teacher's parameter is fitted by maximum likelihood of the logged labels (skipped
    queries left out; "equal" scores half of each side): ``stochastic`` its rationality
    ``beta`` (Bradley-Terry on returns), ``mistake`` its flip rate (closed form), ``myopic``
    its discount ``gamma`` (grid search, with the flip rate fitted alongside so the likelihood
    is finite), ``regret`` its ``beta`` on summed optimal advantages when ``env`` has
    ``optimal_values()`` and the segments are discrete (else n/a); the ``oracle`` has nothing
    to fit and is scored as is (its log-likelihood is ``-inf`` as soon as one label goes
    against the larger return). This is the calibration step of AlpacaFarm (Dubois et al.
    2023, "AlpacaFarm: A Simulation Framework for Methods that Learn from Human Feedback"),
    whose simulated annotators are tuned to match human agreement and variability.

    The ``learned`` teacher (:class:`~feedbackgym.feedback.learned.LearnedPreferenceModel`,
    the toolkit's one Bradley-Terry reward model) is scored on a held-out ``holdout`` share of
    the labels, then refitted to all of them and returned: a stand-in for the annotators that
    can go on labelling after they leave, as in GUIDE (Zhang et al. 2024, "GUIDE: Real-Time
    Human-Shaped Agents"). Deviation from both: one pairwise-preference likelihood for every
    teacher, fitted to returns of the logged segments (GUIDE regresses scalar feedback).

    :param path: a feedback log (``feedback.jsonl``) with its queries.
    :param model: use only the batches of this model id of the log (None: all).
    :param env: an env (or id) with ``optimal_values()`` for the regret teacher.
    :param learned_kwargs: keyword arguments of the learned teacher (``hidden``, ``epochs``...).
    :param holdout: share of the labels the learned teacher is scored on, in [0, 0.9].
    :param seed: seed of the learned teacher and of the held-out split.
    :returns: one :class:`TeacherFit` per teacher, and the learned teacher fitted to all labels.
    """
    if not 0.0 <= holdout <= 0.9:
        raise ConfigError(f"holdout must be in [0, 0.9], got {holdout!r}")
    a, b, labels = preference_data(path, model)
    kept = ~np.isnan(labels)
    if not kept.any():
        raise ConfigError(f"feedback log {str(path)!r} holds only skipped preferences")
    a, b, y = a.take(kept), b.take(kept), labels[kept]
    diff = a.rewards.sum(axis=1) - b.rewards.sum(axis=1)

    fits = [_fit("oracle", {}, _oracle_p(diff), y)]
    beta, capped = fit_beta(diff, y)
    fits.append(
        _fit(
            "stochastic",
            {"beta": beta},
            np.clip(sigmoid(beta * diff), EPS, 1 - EPS),
            y,
            "beta at its search bound: the labels follow the oracle" if capped else "",
        )
    )
    mistake = fit_mistake(diff, y)
    fits.append(_fit("mistake", {"mistake": mistake}, _mistake_p(diff, mistake), y))
    fits.append(_fit_myopic(a, b, y))
    fits.append(_fit_regret(a, b, y, env))

    learned_kwargs = dict(learned_kwargs or {})
    learned_kwargs.setdefault("rng", seed)
    n_test = int(round(holdout * len(y)))
    if n_test >= 1 and len(y) - n_test >= 1:
        order = np.random.default_rng(seed).permutation(len(y))
        test, train = order[:n_test], order[n_test:]
        scorer = LearnedPreferenceModel(**learned_kwargs).fit(
            (a.take(train), b.take(train), y[train])
        )
        p = np.clip(scorer.probabilities(a.take(test), b.take(test)), EPS, 1 - EPS)
        fits.append(_fit("learned", {}, p, y[test], f"held-out {n_test} of {len(y)} labels"))
    learned = LearnedPreferenceModel(**learned_kwargs).fit((a, b, y))
    if not n_test:
        p = np.clip(learned.probabilities(a, b), EPS, 1 - EPS)
        fits.append(_fit("learned", {}, p, y, "in-sample (no held-out labels)"))
    return fits, learned


def _fit_myopic(a: Segments, b: Segments, y: np.ndarray) -> TeacherFit:
    best: TeacherFit | None = None
    for gamma in GAMMA_GRID:
        w = myopic_weights(a.length, float(gamma))
        diff = a.rewards @ w - b.rewards @ w
        mistake = fit_mistake(diff, y)
        fit = _fit(
            "myopic",
            {"gamma": float(gamma), "mistake": mistake},
            _mistake_p(diff, mistake),
            y,
            "gamma on a 0.01 grid in [0.5, 1], flip rate fitted alongside",
        )
        if best is None or fit.log_likelihood > best.log_likelihood:  # type: ignore[operator]
            best = fit
    assert best is not None
    return best


def _fit_regret(a: Segments, b: Segments, y: np.ndarray, env: Any) -> TeacherFit:
    if env is None:
        return TeacherFit("regret", note="n/a: needs --env with optimal values (e.g. GridWorld)")
    if isinstance(env, str):
        import gymnasium as gym

        from feedbackgym.envs import resolve_env_id  # module:ID imports module first

        try:
            env = gym.make(resolve_env_id(env))
        except gym.error.Error as err:
            raise ConfigError(f"env {env!r} cannot be made: {err}") from None
    core = getattr(env, "unwrapped", env)
    if not hasattr(core, "optimal_values"):
        return TeacherFit("regret", note="n/a: the env has no optimal_values()")
    if a.obs is None or a.actions is None or a.obs.dtype.kind not in "iu":
        return TeacherFit("regret", note="n/a: needs discrete obs and actions in the log")
    q = core.optimal_values()[1]
    diff = advantages(q, a.obs, a.actions).sum(axis=1) - advantages(q, b.obs, b.actions).sum(axis=1)
    beta, capped = fit_beta(diff, y)
    p = np.clip(sigmoid(beta * diff), EPS, 1 - EPS)
    return _fit("regret", {"beta": beta}, p, y, "beta at its search bound" if capped else "")


def save_learned(model: LearnedPreferenceModel, path: str | Path) -> None:
    """Write a fitted learned teacher (its config and reward model) with ``torch.save``."""

    import torch

    if model.reward_model is None:
        raise ConfigError("the learned teacher is not fitted")
    with atomic_path(path) as tmp:
        torch.save({"config": model.config(), "reward_model": model.reward_model.state()}, tmp)


def load_learned(path: str | Path, device: str = "auto") -> LearnedPreferenceModel:
    """The learned teacher written by :func:`save_learned`, ready to answer ``prefer``."""
    import torch

    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
        config = {k: v for k, v in saved["config"].items() if k not in ("name", "fit_log")}
        config = {k: float(v) if v in ("inf", "-inf", "nan") else v for k, v in config.items()}
    except (OSError, KeyError, TypeError, AttributeError) as err:
        raise ConfigError(f"{str(path)!r} is not a saved learned teacher ({err})") from None
    model = LearnedPreferenceModel(**{**config, "device": device})
    model.reward_model = RewardModel.from_state(saved["reward_model"], device=device)
    return model
