"""Contrastive Preference Learning: a policy fitted to segment preferences, no reward, no RL.

CPL (Hejna, Sikchi, Rafailov, Knox, Finn, Niekum & Sadigh 2023, "Contrastive Preference
Learning: Learning from Human Feedback without Reinforcement Learning",
https://arxiv.org/abs/2310.13639) reads preferences with the regret preference model: a person
prefers the segment whose optimal advantages sum higher. Under maximum-entropy RL the optimal
advantage is ``alpha log pi*(a | s)``, so the probability of a preference is a function of the
policy alone,

    P(s+ > s-) = exp(sum_t gamma^t alpha log pi(a+_t | s+_t))
                 / (exp(sum_t gamma^t alpha log pi(a+_t | s+_t))
                    + exp(lambda sum_t gamma^t alpha log pi(a-_t | s-_t))),

and the policy is fitted to the answers by maximum likelihood, a supervised (contrastive)
loss: no reward model is learned and no RL is run. ``lambda`` in (0, 1] is the paper's
conservative bias (the authors' ``contrastive_bias``); below 1 it also raises the likelihood
of every labelled action a little, which keeps the policy on the data.
"""

from __future__ import annotations

import inspect
import io
import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.logger import Logger, configure
from stable_baselines3.common.vec_env import VecEnv
from torch.nn.functional import softplus

from feedbackgym.agents.learners.preference import (
    QUERY_VERBS,
    FeedbackCallback,
    PreferenceLearner,
    teacher_verb,
)
from feedbackgym.agents.learners.registry import register_learner
from feedbackgym.errors import ConfigError, check_positive_int, check_range
from feedbackgym.feedback.base import Segments, check_choice, check_int
from feedbackgym.feedback.log import decode_answer, logged_queries
from feedbackgym.feedback.reward_model import Comparisons, resolve_device

#: Query strategies CPL can use: uniform draws, or the binary entropy of the policy's own
#: preference (there is no reward ensemble to disagree).
CPL_QUERIES = ("uniform", "entropy")
#: Which labelled segments the behaviour-cloning term imitates.
BC_DATA = ("all", "preferred")


class CPLPolicy:
    """The policy CPL fits: a Gaussian MLP whose scaled log-likelihood is its advantage.

    What ``learner.model`` is for the ``cpl`` learner, with SB3's verbs: :meth:`predict`,
    :meth:`save`, :meth:`load`, ``num_timesteps``, a ``logger`` and ``get_env``. It is also a
    preference model over segments (``fit``, ``probabilities``, ``segment_returns``, as
    :class:`~feedbackgym.feedback.reward_model.RewardModel` offers them), with a segment's
    "return" the sum of ``gamma^t alpha log pi(a_t | s_t)`` over its steps; the feedback
    round fits it in place of a reward model.

    The policy is ``N(mu(s), sigma(s)^2)`` in actions rescaled to ``[-1, 1]`` (the action
    box), with ``mu = tanh(.)`` of an MLP head and ``log sigma`` a second head clamped to
    ``log_std_bounds`` (``std="learned"``), or a fixed ``sigma`` (``std=<number>``: the
    authors' state-based configs use a fixed-variance actor, whose log-likelihood is a
    scaled squared error). Sampled actions are clipped to the box, not tanh-squashed, and
    the likelihood of a stored action is the Gaussian density at it (clipping's mass at the
    bounds is ignored, so an action on a bound has a finite log-likelihood). Observations
    are rescaled to ``[-1, 1]`` by the observation box where its bounds are finite.

    :param policy: ``"MlpPolicy"`` (the only one; SB3's first argument).
    :param env: the VecEnv the policy acts in (None when loaded from a file).
    :param seed: seed of the initial weights, the exploration noise and the minibatches.
    :param device: "auto", "cpu" or "cuda".
    :param tensorboard_log: folder of the TensorBoard log (None: none).
    :param verbose: 1 also prints the logged figures.
    :param learning_rate: Adam's step size.
    :param alpha: the temperature ``alpha`` of the advantage ``alpha log pi``.
    :param conservative_bias: the paper's ``lambda`` in (0, 1]; 1 is the unbiased loss.
    :param bc_weight: weight of the behaviour-cloning term ``-mean log pi`` on labelled
        segments (the authors' ``bc_coeff``; 0: none).
    :param bc_data: the segments it clones: ``all`` (the authors' default) or ``preferred``.
    :param gamma: discount of the sum over a segment's steps (1: the plain sum, as in the
        authors' code).
    :param batch_size: labelled pairs per gradient step.
    :param net_arch: hidden layer widths of the MLP.
    :param std: ``"learned"`` (a state-dependent head) or a fixed standard deviation.
    :param log_std_bounds: ``(low, high)`` of a learned ``log sigma``.
    :param max_grad_norm: gradient-norm clip of each step (None: none).
    """

    def __init__(
        self,
        policy: str,
        env: VecEnv | None,
        seed: int = 0,
        device: str = "auto",
        tensorboard_log: str | None = None,
        verbose: int = 0,
        learning_rate: float = 3e-4,
        alpha: float = 0.1,
        conservative_bias: float = 0.5,
        bc_weight: float = 0.0,
        bc_data: str = "all",
        gamma: float = 1.0,
        batch_size: int = 64,
        net_arch: Sequence[int] = (256, 256),
        std: str | float = "learned",
        log_std_bounds: Sequence[float] = (-5.0, 0.0),
        max_grad_norm: float | None = 10.0,
        _spaces: tuple[spaces.Box, spaces.Box] | None = None,
    ) -> None:
        if policy != "MlpPolicy":
            raise ConfigError(f"algo 'cpl' has one policy, 'MlpPolicy'; got {policy!r}")
        self.env = env
        observation_space, action_space = (
            _spaces if env is None else (env.observation_space, env.action_space)
        )
        check_spaces(observation_space, action_space)
        self.observation_space, self.action_space = observation_space, action_space
        self.seed = int(seed)
        self.device = resolve_device(device)
        self.tensorboard_log = tensorboard_log
        self.verbose = int(verbose)
        self.learning_rate = check_range("learning_rate", learning_rate, 0.0, low_open=True)
        self.alpha = check_range("alpha", alpha, 0.0, low_open=True)
        self.conservative_bias = check_range(
            "conservative_bias", conservative_bias, 0.0, 1.0, low_open=True
        )
        self.bc_weight = check_range("bc_weight", bc_weight, 0.0)
        self.bc_data = check_choice("bc_data", bc_data, BC_DATA)
        self.gamma = check_range("gamma", gamma, 0.0, 1.0, low_open=True)
        self.batch_size = check_positive_int("batch_size", batch_size)
        if isinstance(net_arch, (str, bytes)) or not isinstance(net_arch, Sequence):
            raise ConfigError(f"net_arch must be a list of layer widths, got {net_arch!r}")
        self.net_arch = [check_positive_int("net_arch width", w) for w in net_arch]
        if std == "learned":
            self.std: str | float = "learned"
        else:
            self.std = check_range("std", std, 0.0, low_open=True)
        if len(log_std_bounds) != 2 or log_std_bounds[0] >= log_std_bounds[1]:
            raise ConfigError(
                f"log_std_bounds must be (low, high), low < high; got {log_std_bounds}"
            )
        self.log_std_bounds = (float(log_std_bounds[0]), float(log_std_bounds[1]))
        self.max_grad_norm = (
            None
            if max_grad_norm is None
            else check_range("max_grad_norm", max_grad_norm, 0.0, low_open=True)
        )
        self.num_timesteps = 0
        self._n_updates = 0
        self._logger: Logger | None = None
        self.rng = np.random.default_rng(self.seed)
        self.obs_dim = int(np.prod(observation_space.shape))
        self.act_dim = int(np.prod(action_space.shape))
        low = np.asarray(observation_space.low, dtype=np.float64).reshape(-1)
        high = np.asarray(observation_space.high, dtype=np.float64).reshape(-1)
        finite = np.isfinite(low) & np.isfinite(high) & (high > low)
        self._obs_mid = np.where(finite, (low + high) / 2, 0.0).astype(np.float32)
        self._obs_half = np.where(finite, (high - low) / 2, 1.0).astype(np.float32)
        act_low = np.asarray(action_space.low, dtype=np.float64).reshape(-1)
        act_high = np.asarray(action_space.high, dtype=np.float64).reshape(-1)
        self._act_mid = ((act_low + act_high) / 2).astype(np.float32)
        self._act_half = ((act_high - act_low) / 2).astype(np.float32)
        with torch.random.fork_rng(devices=[]):  # seeded weights, global torch state untouched
            torch.manual_seed(self.seed)
            self.network = GaussianMLP(
                self.obs_dim, self.act_dim, self.net_arch, self.std == "learned"
            ).to(self.device)
        self.optimiser = torch.optim.Adam(self.network.parameters(), lr=self.learning_rate)
        self._tensors: dict[str, Any] = {}  # of the last data trained on, kept on the device

    # ----- what callbacks and the training run read -------------------------------------
    @property
    def logger(self) -> Logger:
        """SB3's logger, made on first use (it creates its folder), i.e. once training starts."""
        if self._logger is None:
            formats = (["stdout"] if self.verbose else []) + (
                ["tensorboard"] if self.tensorboard_log else []
            )
            folder = os.path.join(self.tensorboard_log, "CPL_1") if self.tensorboard_log else None
            self._logger = configure(folder, formats) if formats else Logger(None, [])
        return self._logger

    def get_env(self) -> VecEnv | None:
        return self.env

    # ----- the policy ---------------------------------------------------------------------
    def _obs_tensor(self, obs: np.ndarray) -> torch.Tensor:
        flat = np.asarray(obs, dtype=np.float32).reshape(-1, self.obs_dim)
        return torch.as_tensor((flat - self._obs_mid) / self._obs_half, device=self.device)

    def _act_tensor(self, actions: np.ndarray) -> torch.Tensor:
        flat = np.asarray(actions, dtype=np.float32).reshape(-1, self.act_dim)
        scaled = np.clip((flat - self._act_mid) / self._act_half, -1.0, 1.0)
        return torch.as_tensor(scaled, device=self.device)

    def _mean_log_std(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.network(x)
        if log_std is None:
            log_std = torch.full_like(mean, float(np.log(self.std)))
        else:
            log_std = log_std.clamp(*self.log_std_bounds)
        return mean, log_std

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``log pi(a | s)`` of rescaled observations and actions (tensors), one per row."""
        mean, log_std = self._mean_log_std(obs)
        z = (actions - mean) * (-log_std).exp()
        return (-0.5 * z.pow(2) - log_std - 0.5 * np.log(2 * np.pi)).sum(dim=-1)

    def predict(
        self, observation: np.ndarray, deterministic: bool = True, **_: Any
    ) -> tuple[np.ndarray, None]:
        """Actions in the env's units: the mean (deterministic), or a draw clipped to the box."""
        obs = np.asarray(observation)
        single = obs.shape == tuple(self.observation_space.shape)
        with torch.no_grad():
            mean, log_std = self._mean_log_std(self._obs_tensor(obs))
            mean, std = mean.cpu().numpy(), log_std.exp().cpu().numpy()
        actions = mean if deterministic else mean + std * self.rng.standard_normal(mean.shape)
        actions = np.clip(actions, -1.0, 1.0) * self._act_half + self._act_mid
        actions = actions.astype(self.action_space.dtype, copy=False)
        actions = actions.reshape((-1,) + tuple(self.action_space.shape))
        return (actions[0] if single else actions), None

    # ----- CPL: the policy as a preference model -------------------------------------------
    @property
    def fitted(self) -> bool:
        """Whether the policy has been fitted to any answer."""
        return self._n_updates > 0

    def _segment_scores(
        self, obs: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``sum_t gamma^t alpha log pi`` of segments ``(..., L, d)`` -> ``(...)``; also the
        per-step log-likelihoods ``(..., L)``."""
        lead = obs.shape[:-1]
        lp = self.log_prob(obs.reshape(-1, obs.shape[-1]), actions.reshape(-1, actions.shape[-1]))
        lp = lp.reshape(lead)
        discount = self.gamma ** torch.arange(lead[-1], device=self.device, dtype=lp.dtype)
        return self.alpha * (lp * discount).sum(dim=-1), lp

    def _cpl_loss(
        self, obs: torch.Tensor, actions: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """CPL's loss of pairs ``obs (b, 2, L, d)``, ``actions (b, 2, L, k)``, ``labels (b,)``
        (P(first preferred)): ``-log P`` of each answer with the conservative bias on the
        other segment, the behaviour-cloning term, and the unbiased accuracy."""
        adv, lp = self._segment_scores(obs, actions)  # (b, 2), (b, 2, L)
        bias = self.conservative_bias
        first = softplus(bias * adv[:, 1] - adv[:, 0])  # -log P(first > second)
        second = softplus(bias * adv[:, 0] - adv[:, 1])
        loss = (labels * first + (1 - labels) * second).mean()
        if self.bc_data == "all":
            bc = -lp.mean()
        else:
            weights = torch.stack([labels, 1 - labels], dim=1)[..., None]  # (b, 2, 1)
            bc = -(weights * lp).sum() / (weights.sum() * lp.shape[-1]).clamp_min(1e-8)
        with torch.no_grad():
            strict = (labels == 0) | (labels == 1)
            right = (adv[:, 0] > adv[:, 1]) == (labels == 1)
            accuracy = right[strict].float().mean() if strict.any() else torch.tensor(float("nan"))
        return loss, bc, accuracy

    def _data(self, comparisons: Comparisons) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The labelled pairs as device tensors (rebuilt only when new answers arrived)."""
        arrays = comparisons.arrays()
        if "labels" not in arrays:
            raise ConfigError("no answered pair to fit the CPL policy to")
        key = (id(comparisons), len(arrays["labels"]))  # answers are only ever added
        if self._tensors.get("key") != key:
            obs, actions = arrays["pair_obs"], arrays["pair_actions"]
            lead = obs.shape[:3]
            self._tensors = {
                "key": key,
                "obs": self._obs_tensor(obs).reshape(lead + (self.obs_dim,)),
                "actions": self._act_tensor(actions).reshape(lead + (self.act_dim,)),
                "labels": torch.as_tensor(arrays["labels"], dtype=torch.float32).to(self.device),
            }
        return self._tensors["obs"], self._tensors["actions"], self._tensors["labels"]

    def fit(
        self, comparisons: Comparisons, epochs: int = 1, bc_only: bool = False
    ) -> dict[str, float]:
        """``epochs`` passes over every labelled pair in minibatches of ``batch_size``;
        ``bc_only`` takes the behaviour-cloning term alone (the authors' ``bc_steps``
        pre-training). Returns the last pass's mean loss, BC term and accuracy."""
        epochs = check_positive_int("epochs", epochs)
        obs, actions, labels = self._data(comparisons)
        n = len(labels)
        self.network.train()
        for _ in range(epochs):
            totals = np.zeros(3)
            order = self.rng.permutation(n)
            for start in range(0, n, self.batch_size):
                idx = torch.as_tensor(order[start : start + self.batch_size], device=self.device)
                loss, bc, accuracy = self._cpl_loss(obs[idx], actions[idx], labels[idx])
                total = bc if bc_only else loss + self.bc_weight * bc
                self.optimiser.zero_grad()
                total.backward()
                if self.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.max_grad_norm)
                self.optimiser.step()
                self._n_updates += 1
                share = len(idx) / n
                totals += share * np.array([loss.item(), bc.item(), accuracy.item()])
        self.network.eval()
        return {"loss": totals[0], "bc_loss": totals[1], "train_accuracy": totals[2]}

    def calibrate(self, obs: np.ndarray, actions: np.ndarray | None) -> None:
        """Nothing to rescale: the policy's advantage is ``alpha log pi`` as it is."""

    def segment_returns(self, segments: Segments | Sequence[Segments]) -> np.ndarray:
        """Each segment's ``sum_t gamma^t alpha log pi``: ``(1, n)`` for one batch,
        ``(1, n, m)`` for ``m`` (one "member", as a reward ensemble's are laid out)."""
        batches = [segments] if isinstance(segments, Segments) else list(segments)
        obs = np.stack([s.obs for s in batches], axis=1)  # (n, m, L, ...)
        actions = np.stack([s.actions for s in batches], axis=1)
        lead = obs.shape[:3]
        with torch.no_grad():
            x = self._obs_tensor(obs).reshape(lead + (self.obs_dim,))
            a = self._act_tensor(actions).reshape(lead + (self.act_dim,))
            scores = self._segment_scores(x, a)[0].double().cpu().numpy()[None]
        return scores[..., 0] if isinstance(segments, Segments) else scores

    def probabilities(self, a: Segments, b: Segments) -> np.ndarray:
        """The policy's ``P(a > b)`` (unbiased), shape ``(1, n)``."""
        scores = self.segment_returns([a, b])
        return 0.5 * (1.0 + np.tanh(0.5 * (scores[..., 0] - scores[..., 1])))

    # ----- persistence --------------------------------------------------------------------
    _OPTIONS: ClassVar[tuple[str, ...]] = (
        "learning_rate",
        "alpha",
        "conservative_bias",
        "bc_weight",
        "bc_data",
        "gamma",
        "batch_size",
        "net_arch",
        "std",
        "log_std_bounds",
        "max_grad_norm",
    )

    @classmethod
    def options(cls) -> list[str]:
        """The hyperparameters (``algo_kwargs`` of ``cpl``)."""
        parameters = inspect.signature(cls.__init__).parameters
        return [p for p in parameters if p in cls._OPTIONS]

    def save(self, path: str | Path) -> None:
        """A zip of ``data.json`` (options, spaces, counters, generator state) and
        ``policy.pth`` (weights and optimiser state)."""
        data = {
            "options": {k: getattr(self, k) for k in self._OPTIONS},
            "seed": self.seed,
            "observation_space": _box_dict(self.observation_space),
            "action_space": _box_dict(self.action_space),
            "num_timesteps": self.num_timesteps,
            "n_updates": self._n_updates,
            "rng": self.rng.bit_generator.state,
        }
        weights = io.BytesIO()
        torch.save(
            {"network": self.network.state_dict(), "optimiser": self.optimiser.state_dict()},
            weights,
        )
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("data.json", json.dumps(data))
            archive.writestr("policy.pth", weights.getvalue())
        Path(path).write_bytes(buffer.getvalue())

    @staticmethod
    def _read(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            with zipfile.ZipFile(path) as archive:
                data = json.loads(archive.read("data.json"))
                weights = torch.load(
                    io.BytesIO(archive.read("policy.pth")), map_location="cpu", weights_only=True
                )
        except (OSError, KeyError, zipfile.BadZipFile) as err:
            raise ConfigError(f"CPL policy {str(path)!r} cannot be read: {err}") from None
        return data, weights

    def set_parameters(
        self, path: str | Path, exact_match: bool = True, device: str = "auto"
    ) -> None:
        """Load the weights, optimiser and generator state of a file written by :meth:`save`."""
        data, weights = self._read(path)
        self.network.load_state_dict(weights["network"], strict=exact_match)
        self.optimiser.load_state_dict(weights["optimiser"])
        self.rng.bit_generator.state = data["rng"]
        self._tensors = {}

    @classmethod
    def load(cls, path: str | Path, env: VecEnv | None = None, device: str = "auto") -> CPLPolicy:
        """The policy of a file written by :meth:`save` (``predict`` works without an env)."""
        data, _ = cls._read(path)
        boxes = (_box(data["observation_space"]), _box(data["action_space"]))
        model = cls(
            "MlpPolicy", env, seed=data["seed"], device=device, _spaces=boxes, **data["options"]
        )
        model.set_parameters(path, device=device)
        model.num_timesteps = int(data["num_timesteps"])
        model._n_updates = int(data["n_updates"])
        return model


class GaussianMLP(torch.nn.Module):
    """``obs -> hidden layers (ReLU) -> (tanh mean, log std)``; the log std head only when
    the std is learned."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], learned_std: bool) -> None:
        super().__init__()
        layers: list[torch.nn.Module] = []
        width = obs_dim
        for size in hidden:
            layers += [torch.nn.Linear(width, size), torch.nn.ReLU()]
            width = size
        self.body = torch.nn.Sequential(*layers)
        self.mean = torch.nn.Linear(width, act_dim)
        self.log_std = torch.nn.Linear(width, act_dim) if learned_std else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.body(x)
        log_std = None if self.log_std is None else self.log_std(h)
        return torch.tanh(self.mean(h)), log_std


def _box_dict(box: spaces.Box) -> dict[str, Any]:
    return {
        "low": np.asarray(box.low, dtype=np.float64).tolist(),
        "high": np.asarray(box.high, dtype=np.float64).tolist(),
        "shape": list(box.shape),
        "dtype": str(box.dtype),
    }


def _box(data: dict[str, Any]) -> spaces.Box:
    low = np.asarray(data["low"], dtype=np.float64).reshape(data["shape"])
    high = np.asarray(data["high"], dtype=np.float64).reshape(data["shape"])
    return spaces.Box(low.astype(data["dtype"]), high.astype(data["dtype"]), dtype=data["dtype"])


def check_spaces(observation_space: Any, action_space: Any) -> None:
    """CPL's Gaussian policy needs a Box of observations and a bounded Box of actions."""
    if not isinstance(action_space, spaces.Box):
        raise ConfigError(
            f"algo 'cpl' needs a continuous (Box) action space, got {action_space}; use "
            "pref-ppo for discrete actions"
        )
    if not (np.isfinite(action_space.low).all() and np.isfinite(action_space.high).all()):
        raise ConfigError(
            f"algo 'cpl' needs finite action bounds (its Gaussian's mean is tanh-bounded), got "
            f"{action_space}"
        )
    if not isinstance(observation_space, spaces.Box):
        raise ConfigError(
            f"algo 'cpl' needs a Box observation space, got {observation_space}; use pref-ppo"
        )


def read_dataset(path: str | Path, observation_space: Any, action_space: Any) -> Comparisons:
    """The answered pairs of a ``feedback.jsonl`` (every ``prefer`` batch, in order), checked
    against the env's spaces; a missing file, a log without stored pairs, or pairs of another
    env are one-line ConfigErrors."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"dataset {str(path)!r} does not exist; give the feedback.jsonl of an earlier run"
        )
    comparisons = Comparisons()
    batches = [r for r in logged_queries(path) if r.get("verb") == "prefer"]
    obs_shape, act_shape = tuple(observation_space.shape), tuple(action_space.shape)
    for record in batches:
        query = record.get("query")
        if query is None or "obs" not in query["a"] or "actions" not in query["a"]:
            raise ConfigError(
                f"dataset {str(path)!r} keeps no segments (a log written with "
                "store_queries=False, or of bare rewards); CPL needs observations and actions"
            )
        a, b = Segments.from_dict(query["a"]), Segments.from_dict(query["b"])
        if a.obs.shape[2:] != obs_shape or a.actions.shape[2:] != act_shape:
            raise ConfigError(
                f"dataset {str(path)!r} holds observations {a.obs.shape[2:]} and actions "
                f"{a.actions.shape[2:]} per step; this env has {obs_shape} and {act_shape}"
            )
        obs_dtype, act_dtype = observation_space.dtype, action_space.dtype
        comparisons.add_pairs(
            Segments(a.rewards, a.obs.astype(obs_dtype), a.actions.astype(act_dtype)),
            Segments(b.rewards, b.obs.astype(obs_dtype), b.actions.astype(act_dtype)),
            decode_answer(record),
        )
    if not comparisons.n_pairs:
        raise ConfigError(
            f"dataset {str(path)!r} holds no answered pairwise preference ('prefer' batch)"
        )
    return comparisons


def first_pairs(comparisons: Comparisons, n: int) -> Comparisons:
    """The first ``n`` pairs of ``comparisons``."""
    arrays = comparisons.arrays()
    out = Comparisons()
    out.pair_obs.append(arrays["pair_obs"][:n])
    out.pair_actions.append(arrays["pair_actions"][:n])
    out.labels.append(arrays["labels"][:n])
    return out


@register_learner("cpl")
class CPL(PreferenceLearner):
    """Contrastive Preference Learning (Hejna et al. 2023): the policy fitted to segment
    preferences directly, with the regret preference model and ``A = alpha log pi``.

    Online: the policy (:class:`CPLPolicy`) acts in the env with its stochastic policy; its
    steps go to the segment pool, and every ``update_every`` timesteps the feedback round of
    :class:`~feedbackgym.agents.learners.preference.PreferenceLearner` draws queries
    (``uniform``, or ``entropy``: the pairs whose preference the policy itself is least sure
    of), asks the teacher on the same label schedule as pref-PPO/pref-SAC, and the policy,
    standing in for the reward model, is fitted to every answer so far (``epochs`` passes;
    ``initial_epochs`` the first time). Answers are scored by the policy before it is fitted to
    them, which is the ``reward_model_accuracy`` reported (the policy's own preference, there being
    no reward model). The teacher reads the true reward; the policy never does.

    Offline: ``dataset`` is the ``feedback.jsonl`` of an earlier run (or of real people); its
    answered pairs are the first answers the policy is fitted to, before it takes a step:
    ``bc_epochs`` passes of behaviour cloning on them (the authors' ``bc_steps``), then
    ``pretrain_epochs`` passes of CPL. ``labels`` is the run's whole budget: the dataset's
    answers count first (at most ``labels`` of them, in the log's order) and the rest are asked
    online; with ``labels`` no more than the dataset holds, no new query is asked and the run
    is offline CPL (its timesteps only move the evaluation curve).

    Deviations from the paper: online queries on the policy's own experience (the paper is
    offline, on a fixed data set of segments); segments are drawn and compared once (its
    "sparse" setting), never densely; partial-return teachers (e.g. ``oracle``) answer by the
    sum of rewards, not the regret the model assumes; no dropout or learning-rate warm-up;
    ``disagreement`` queries need a reward ensemble and are refused.

    :param env: an SB3 VecEnv with a Box action space of finite bounds.
    :param dataset: a feedback.jsonl whose answered pairs pre-train the policy (None: online
        only).
    :param epochs: passes over every answer after each feedback round.
    :param initial_epochs: passes in the first round.
    :param bc_epochs: passes of behaviour cloning on the dataset before CPL (offline only).
    :param pretrain_epochs: passes of CPL on the dataset before the first step.
    See :class:`~feedbackgym.agents.learners.preference.PreferenceLearner` for the feedback loop's
    parameters (``teacher``, ``labels``, ``query``, ``segment_length``, ``schedule``,
    ``initial_fraction``, ``update_every``, ``pool_steps``, ``label_delay_rounds``, ...);
    ``algo_kwargs`` are :class:`CPLPolicy`'s hyperparameters.
    """

    sb3_class = CPLPolicy
    round_at_rollout_end = True
    multiagent_ok = False

    def __init__(
        self,
        env: VecEnv,
        dataset: str | Path | None = None,
        epochs: int = 20,
        initial_epochs: int = 100,
        bc_epochs: int = 0,
        pretrain_epochs: int = 200,
        **kwargs: Any,
    ) -> None:
        for name in ("reward_model", "reward_epochs"):
            if name in kwargs:
                raise ConfigError(
                    f"algo 'cpl' fits no reward model: {name} does not apply (the policy's "
                    "passes are epochs and initial_epochs; its hyperparameters are algo_kwargs)"
                )
        unknown = sorted(set(kwargs.get("algo_kwargs") or {}) - set(CPLPolicy.options()))
        if unknown:
            raise ConfigError(
                f"algo 'cpl' has no option {unknown[0]!r} in algo_kwargs; valid: "
                f"{', '.join(CPLPolicy.options())}"
            )
        kwargs.setdefault("query", "uniform")
        if kwargs["query"] not in CPL_QUERIES:
            raise ConfigError(
                f"algo 'cpl' cannot use query {kwargs['query']!r} (it needs a reward ensemble, "
                f"and CPL has none); valid: {', '.join(CPL_QUERIES)}"
            )
        self.check_teacher(kwargs.get("teacher"), "cpl")
        epochs = check_positive_int("epochs", epochs)
        initial_epochs = check_positive_int("initial_epochs", initial_epochs)
        self.bc_epochs = check_int("bc_epochs", bc_epochs, 0)
        self.pretrain_epochs = check_int("pretrain_epochs", pretrain_epochs, 0)
        super().__init__(env, reward_epochs=epochs, initial_epochs=initial_epochs, **kwargs)
        self.dataset = None if dataset is None else str(dataset)
        self.dataset_labels = 0
        if self.dataset is not None:
            data = read_dataset(self.dataset, env.observation_space, env.action_space)
            self.dataset_labels = min(data.n_pairs, self.labels)
            self.comparisons = first_pairs(data, self.dataset_labels)
            self.labels_used = self.answered = self.dataset_labels
        self.online_labels = self.labels - self.dataset_labels
        if self.dataset_labels and self.online_labels:
            length = self.comparisons.pair_obs[0].shape[2]
            if length != self.segment_length:
                raise ConfigError(
                    f"dataset {self.dataset!r} holds segments of {length} steps, and the "
                    f"{self.online_labels} answers asked online would be about segments of "
                    f"segment_length={self.segment_length}; set segment_length: {length}"
                )
        self._obs: np.ndarray | None = None

    @classmethod
    def check_teacher(cls, teacher: Any, algo: str) -> None:
        if teacher_verb(teacher, algo) != QUERY_VERBS["preference"]:
            raise ConfigError(
                f"algo {algo!r} learns from pairwise preferences; give it a pairwise teacher "
                f"(oracle, stochastic, mistake, ...), not a {teacher.kind} one"
            )

    @classmethod
    def check_env(cls, env: VecEnv) -> None:
        check_spaces(env.observation_space, env.action_space)

    # ----- the feedback loop --------------------------------------------------------------
    def plan(self, total_timesteps: int) -> None:
        """The rounds of the online labels (none when the dataset covers ``labels``)."""
        if self.online_labels == 0:
            self.round_times = np.zeros(0, dtype=np.int64)
            self.round_labels = np.zeros(0, dtype=np.int64)
            return
        labels, self.labels = self.labels, self.online_labels
        try:
            super().plan(total_timesteps)
        finally:
            self.labels = labels

    def feedback_round(self) -> dict[str, float]:
        """:meth:`PreferenceLearner.feedback_round` with the policy in the reward model's place:
        it scores ``entropy`` queries, is checked against each new answer before it is fitted
        to it, and is fitted to every answer so far. Outside the rounds the learner holds no
        fitted reward model (the run folder gets none, the evaluation no learned reward)."""
        no_reward_model, self.reward_model = self.reward_model, self.model
        try:
            return super().feedback_round()
        finally:
            self.reward_model = no_reward_model

    def pretrain(self) -> dict[str, float]:
        """Fit the policy to the dataset before it acts (behaviour cloning, then CPL)."""
        metrics: dict[str, float] = {}
        if self.bc_epochs:
            bc = self.model.fit(self.comparisons, self.bc_epochs, bc_only=True)
            metrics["pretrain_bc_loss"] = bc["bc_loss"]
        if self.pretrain_epochs:
            fit = self.model.fit(self.comparisons, self.pretrain_epochs)
            metrics.update({f"pretrain_{k}": v for k, v in fit.items()})
        return metrics

    def summary_metrics(self) -> dict[str, Any]:
        """Extra figures for the run's summary: the dataset's answers and the online ones,
        and the policy's gradient steps."""
        return {
            **super().summary_metrics(),
            "dataset_labels": self.dataset_labels,
            "online_labels": self.labels_used - self.dataset_labels,
            "policy_updates": self.model._n_updates,
        }

    # ----- SB3's verbs --------------------------------------------------------------------
    def learn(self, total_timesteps: int, callback: Any = None, progress_bar: bool = False) -> CPL:
        """Act until ``total_timesteps`` steps in all (a resumed learner counts the steps it
        took before), with feedback rounds on the way; ``callback`` is any SB3 callback (its
        rollout hooks run around every vector step)."""
        total_timesteps = check_positive_int("total_timesteps", total_timesteps)
        if self.round_times is None:
            self.plan(total_timesteps)
        callbacks = CallbackList([FeedbackCallback(self)] + ([callback] if callback else []))
        callbacks.init_callback(self.model)
        callbacks.on_training_start(locals(), globals())
        logger = self.model.logger
        if self.dataset_labels and not self.model.fitted:
            for key, value in self.pretrain().items():
                logger.record(f"feedback/{key}", value)
        if self._obs is None:  # a fresh run, or one resumed from a checkpoint
            self.env.seed(self.seed + self.num_timesteps)
            self._obs = self.env.reset()
        rounds = self.round
        while self.model.num_timesteps < total_timesteps:
            callbacks.on_rollout_start()
            actions, _ = self.model.predict(self._obs, deterministic=False)
            self._obs, _, _, _ = self.env.step(actions)
            self.model.num_timesteps += self.env.num_envs
            callbacks.update_locals(locals())
            if not callbacks.on_step():
                break
            callbacks.on_rollout_end()
            if self.round != rounds:
                rounds = self.round
                logger.dump(self.num_timesteps)
        callbacks.on_training_end()
        logger.dump(self.num_timesteps)
        return self
