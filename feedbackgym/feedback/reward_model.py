"""The toolkit's one learned reward model: an MLP ensemble fitted to preferences and rankings."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from feedbackgym.errors import ConfigError, check_positive_int, check_range
from feedbackgym.feedback.base import Segments, as_segments, check_choice
from feedbackgym.feedback.symmetry import SYMMETRIES
from feedbackgym.io import atomic_path


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` is ``"cuda"`` when torch sees a GPU, else ``"cpu"``; other names are checked."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {device!r}")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device {device!r} asked for, but torch sees no CUDA GPU; use auto or cpu"
        )
    return device


def one_hot_sizes(observation_space: Any, action_space: Any) -> dict[str, int | None]:
    """``n_obs`` and ``n_actions`` of a :class:`RewardModel` for an env with these spaces: a
    ``Discrete`` space's values ``0 .. start + n - 1`` are one-hot codes of that width; any
    other space is None (its values are features as they are)."""
    from gymnasium import spaces

    out: dict[str, int | None] = {}
    for option, space in (("n_obs", observation_space), ("n_actions", action_space)):
        out[option] = None
        if isinstance(space, spaces.Discrete):
            if int(space.start) < 0:
                raise ConfigError(
                    f"{space} holds negative values, which the reward model cannot one-hot "
                    "encode; use a Discrete space starting at 0"
                )
            out[option] = int(space.start) + int(space.n)
    return out


#: Below this many rows a CPU pass runs on one thread.
SMALL_BATCH = 100_000
#: Up to this many steps, CPU inference runs in numpy (one vector step of the envs).
SMALL_STEP_BATCH = 256


@contextmanager
def cpu_threads(device: str, rows: int, threads: int | None = None) -> Iterator[None]:
    """Run a CPU pass on ``threads`` threads when given; else small batches on one thread
    (there a thread pool costs more than it saves, and its spinning threads slow down badly on
    a busy machine) and large ones on torch's pool."""
    import torch

    wanted = threads if threads else (1 if rows < SMALL_BATCH else None)
    if device != "cpu" or wanted is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class Comparisons:
    """Labelled comparisons of segments: what a reward model is fitted to.

    Pairs hold ``labels`` = P(first preferred) (1, 0, 0.5 for "equal"; NaN for skipped, which
    :meth:`add_pairs` drops); rankings hold ``m`` segments per query and the order a teacher
    gave, best first. Segment arrays are ``(n, L, ...)`` for pairs and ``(n, m, L, ...)`` for
    rankings; obs/actions may be None when the segments carry only rewards.
    """

    pair_obs: list[np.ndarray] = field(default_factory=list)
    pair_actions: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    rank_obs: list[np.ndarray] = field(default_factory=list)
    rank_actions: list[np.ndarray] = field(default_factory=list)
    orders: list[np.ndarray] = field(default_factory=list)

    def add_pairs(self, a: Segments, b: Segments, labels: np.ndarray) -> int:
        """Keep the answered pairs (NaN labels are skipped queries); returns how many."""
        labels = np.asarray(labels, dtype=np.float64)
        keep = ~np.isnan(labels)
        if keep.any():
            self.pair_obs.append(np.stack([_obs(a)[keep], _obs(b)[keep]], axis=1))
            self.pair_actions.append(np.stack([_act(a)[keep], _act(b)[keep]], axis=1))
            self.labels.append(labels[keep])
        return int(keep.sum())

    def add_rankings(self, segments: Sequence[Segments], orders: np.ndarray) -> int:
        """Keep the complete rankings (a refused query is a row of -1); returns how many."""
        orders = np.asarray(orders, dtype=np.int64)
        keep = (orders >= 0).all(axis=1)
        if keep.any():
            self.rank_obs.append(np.stack([_obs(s)[keep] for s in segments], axis=1))
            self.rank_actions.append(np.stack([_act(s)[keep] for s in segments], axis=1))
            self.orders.append(orders[keep])
        return int(keep.sum())

    @property
    def n_pairs(self) -> int:
        return int(sum(len(x) for x in self.labels))

    @property
    def n_rankings(self) -> int:
        return int(sum(len(x) for x in self.orders))

    def __len__(self) -> int:
        return self.n_pairs + self.n_rankings

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything concatenated (for fitting and for saving with ``np.savez``)."""
        out: dict[str, np.ndarray] = {}
        for name in ("pair_obs", "pair_actions", "labels", "rank_obs", "rank_actions", "orders"):
            parts = getattr(self, name)
            if parts:
                out[name] = np.concatenate(parts)
        return out

    @classmethod
    def from_arrays(cls, arrays: Any) -> Comparisons:
        """Inverse of :meth:`arrays` (e.g. an ``np.load`` result)."""
        out = cls()
        for name in ("pair_obs", "pair_actions", "labels", "rank_obs", "rank_actions", "orders"):
            if name in arrays:
                getattr(out, name).append(np.asarray(arrays[name]))
        return out


def _obs(segments: Segments) -> np.ndarray:
    return segments.rewards[..., None] if segments.obs is None else segments.obs


def _act(segments: Segments) -> np.ndarray:
    if segments.actions is None:
        return np.zeros(segments.rewards.shape + (0,), dtype=np.float32)
    return segments.actions


class RewardModel:
    """An ensemble of MLP rewards ``r_k(obs, action)`` fitted to preferences and rankings.

    Each member is fitted by maximum likelihood under the Bradley-Terry model over summed
    rewards, ``P(a > b) = sigmoid(sum_t r(a_t) - sum_t r(b_t))`` (Christiano et al. 2017,
    "Deep Reinforcement Learning from Human Preferences"): binary cross-entropy with the label
    as a soft target, so "equal" (0.5) pulls both returns together and skipped pairs (NaN) are
    left out. Rankings of ``m`` segments use the Plackett-Luce likelihood ``prod_k exp(R_(k)) /
    sum_{j >= k} exp(R_(j))`` (Zhu, Jordan & Jiao 2023), of which Bradley-Terry is ``m = 2``.

    The members differ by initialisation and by the order they see the data in, as in PEBBLE
    (Lee, Smith & Abbeel 2021); their spread is what active queries use. All members train at
    once as batched matrix products. Inputs are standardised with the mean and standard
    deviation of all the features the model was last fitted on, except one-hot codes (kept 0/1)
    and columns constant in those features (only centred), whose deviation of ~0 would blow up
    any state the labels never held. Each member's output is linear,
    as in imitation's reward nets (deviation from PEBBLE, whose ``tanh`` output, kept as
    ``bounded=True``, flattened the learned reward around the best states in our tasks and
    cost pref-PPO most of its success on PointGoal). :meth:`reward` is the members' mean,
    optionally scaled by :meth:`calibrate` to zero mean and unit variance on a sample of
    experience.

    Features: continuous observations and actions are flattened; integer arrays of shape
    ``(n, L)`` (discrete states or actions) are one-hot encoded, ``n_obs``/``n_actions`` wide
    (the learners give their env's ``Discrete`` sizes; when None, the largest value of the
    first fit's data + 1); a value outside that width is a ConfigError, never folded onto
    another column. Segments without observations use their rewards as the only feature (the
    GUIDE-style ``learned`` teacher on bare reward arrays).

    :param members: ensemble size, a positive integer.
    :param hidden: width of each hidden layer, a positive integer.
    :param layers: number of hidden layers, a positive integer.
    :param lr: Adam's learning rate, > 0.
    :param weight_decay: L2 penalty of Adam, >= 0.
    :param batch_size: comparisons per gradient step (None: the whole data set).
    :param device: "auto", "cpu" or "cuda".
    :param seed: seed of the members' initialisation and data order.
    :param n_obs: one-hot size of discrete observations, the number of states (None: the
        first fit's largest + 1).
    :param n_actions: one-hot size of discrete actions (None: the first fit's largest + 1).
    :param bounded: each member's step reward ``tanh``-bounded to [-1, 1] (PEBBLE), or
        linear (the default, as imitation's reward nets).
    :param mistake_rate: the share of pairwise answers assumed flipped, in [0, 0.5): the
        likelihood becomes ``eps + (1 - 2 eps) sigmoid(R_a - R_b)`` (B-Pref's mistake
        teacher's own model), so a few wrong answers cannot push the returns apart without
        bound. 0 is plain Bradley-Terry.
    :param threads: CPU threads while fitting (None: one for small data sets, else torch's).
    :param use_actions: a reward of observation and action (Christiano et al.; PEBBLE), or of
        the observation alone (False: the reward cannot favour actions for their own sake).
    :param agent_axis: steps carry an agent axis after the step axis (multi-agent segments
        ``(n, L, agents, ...)``): one network, shared by the agents, scores each agent's
        observation and action, and a step's reward is the sum over its agents (a team reward
        decomposed over agents, as in MARLHF, Zhang et al. 2024). :meth:`reward` then returns
        each agent's part, shape ``(n, agents)``.
    :param temporal_reg: weight of MARLHF's temporal regulariser (Zhang et al. 2024): the mean
        squared difference between consecutive steps' rewards within each labelled segment,
        which spreads a segment's return evenly over its steps instead of on a few of them.
        0 (the default) turns it off.
    :param symmetry: a group of maps that leave the task's reward unchanged (one of
        :data:`~feedbackgym.feedback.symmetry.SYMMETRIES`, e.g. ``"planar"``: rotations by
        quarter turns and mirror images of MPE's plane), or None. :meth:`fit` then fits every
        image of every labelled segment, with the same label, in the same gradient steps of
        the same batch size as without it (an epoch's steps take their batches from a shuffle
        of all the images; the group's size in epochs sees each image once), so the symmetry
        adds data, not compute. Observations padded and ending in an agent-type indicator
        (teams of different kinds) are refused (:meth:`check_steps`).
    """

    def __init__(
        self,
        members: int = 3,
        hidden: int = 64,
        layers: int = 2,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        batch_size: int | None = 64,
        device: str = "auto",
        seed: int | None = 0,
        n_obs: int | None = None,
        n_actions: int | None = None,
        use_actions: bool = True,
        bounded: bool = False,
        threads: int | None = None,
        mistake_rate: float = 0.0,
        agent_axis: bool = False,
        temporal_reg: float = 0.0,
        symmetry: str | None = None,
    ) -> None:
        self.members = check_positive_int("members", members)
        self.hidden = check_positive_int("hidden", hidden)
        self.layers = check_positive_int("layers", layers)
        self.lr = check_range("lr", lr, 0.0, low_open=True)
        self.weight_decay = check_range("weight_decay", weight_decay, 0.0)
        self.batch_size = (
            None if batch_size is None else check_positive_int("batch_size", batch_size)
        )
        self.device = resolve_device(device)
        self.seed = seed
        self.one_hot = {
            name: None if size is None else check_positive_int(option, size)
            for name, option, size in (("obs", "n_obs", n_obs), ("actions", "n_actions", n_actions))
        }
        self.use_actions = bool(use_actions)
        self.bounded = bool(bounded)
        self.threads = None if threads is None else check_positive_int("threads", threads)
        self.mistake_rate = check_range("mistake_rate", mistake_rate, 0.0, 0.5, high_open=True)
        self.agent_axis = bool(agent_axis)
        self.temporal_reg = check_range("temporal_reg", temporal_reg, 0.0)
        self.symmetry = (
            None if symmetry is None else check_choice("symmetry", symmetry, tuple(SYMMETRIES))
        )
        self.network: Any = None
        self.optimiser: Any = None
        self.feature_mean: np.ndarray | None = None
        self.feature_std: np.ndarray | None = None
        self.reward_mean = 0.0
        self.reward_std = 1.0
        self.losses: list[float] = []
        self._order_rng = np.random.default_rng(seed)
        self._numpy_weights: list[tuple[np.ndarray, np.ndarray]] | None = None

    # ----- features -----------------------------------------------------------------------
    @staticmethod
    def _discrete(value: np.ndarray, lead: int) -> bool:
        """Integer arrays with no axis past the step (and agent) axes: discrete states/actions."""
        return value.dtype.kind in "iub" and value.ndim == lead

    def _encode(self, name: str, value: np.ndarray, lead: int) -> np.ndarray:
        """Features of one input with ``lead`` leading axes (e.g. 1 for steps, 2 for segments)."""
        if self._discrete(value, lead):
            size = self.one_hot.get(name)
            if size is None:
                size = int(value.max()) + 1 if value.size else 1
                self.one_hot[name] = size
            if value.size and (value.min() < 0 or value.max() >= size):
                bad = int(value.min()) if value.min() < 0 else int(value.max())
                what, option = {
                    "obs": ("observation", "n_obs"),
                    "actions": ("action", "n_actions"),
                }[name]
                raise ConfigError(
                    f"{what} {bad} is outside the reward model's one-hot width {size} (valid: 0 "
                    f"to {size - 1}); set {option} to the number of discrete {what}s"
                )
            out = np.zeros(value.shape + (size,), dtype=np.float32)
            np.put_along_axis(out, value[..., None].astype(np.intp), 1.0, axis=-1)
            return out
        return value.reshape(value.shape[:lead] + (-1,)).astype(np.float32, copy=False)

    def features(self, obs: np.ndarray, actions: np.ndarray | None, lead: int = 1) -> np.ndarray:
        """Unnormalised step features, shape ``obs.shape[:lead] + (f,)`` (with the agent axis:
        ``obs.shape[:lead + 1] + (f,)``)."""
        lead += self.agent_axis
        parts = [self._encode("obs", np.asarray(obs), lead)]
        if actions is not None and self.use_actions:
            parts.append(self._encode("actions", np.asarray(actions), lead))
        return np.concatenate(parts, axis=-1)

    def one_hot_columns(
        self, obs: np.ndarray, actions: np.ndarray | None, lead: int = 1
    ) -> np.ndarray:
        """Which columns of :meth:`features` of these inputs are one-hot codes (a boolean mask;
        call it after :meth:`features`, which fixes the widths read from data)."""
        lead += self.agent_axis
        parts = []
        for name, value in (("obs", obs), ("actions", actions)):
            if value is None or (name == "actions" and not self.use_actions):
                continue
            value = np.asarray(value)
            if self._discrete(value, lead):
                parts.append(np.ones(int(self.one_hot[name]), dtype=bool))
            else:
                parts.append(np.zeros(int(np.prod(value.shape[lead:])), dtype=bool))
        return np.concatenate(parts)

    def set_feature_scale(self, sample: np.ndarray, one_hot: np.ndarray) -> None:
        """Standardise inputs by the mean and deviation of ``sample`` (rows of features), except
        one-hot columns (``one_hot``), which keep their 0/1 codes, and columns constant in the
        sample, which are only centred: the deviation of a column the labels never vary is
        ~0, and dividing by it would turn a state no labelled segment holds into a feature of
        1e6 and its reward into nonsense."""
        mean = sample.mean(axis=0).astype(np.float32)
        std = (sample.std(axis=0) + 1e-6).astype(np.float32)
        constant = (sample.min(axis=0) == sample.max(axis=0)) if len(sample) else one_hot
        mean[one_hot] = 0.0
        std[one_hot | constant] = 1.0
        self.feature_mean, self.feature_std = mean, std

    # ----- the network --------------------------------------------------------------------
    def build(self, width: int) -> None:
        """Create the members' network for ``width`` input features and its optimiser (what
        :meth:`fit` does on its first call; the weights draw from the model's own seed)."""
        import torch

        generator = torch.Generator().manual_seed(int(self._order_rng.integers(2**31)))
        from feedbackgym.feedback.networks import EnsembleMLP

        self.network = EnsembleMLP(
            width, self.hidden, self.layers, self.members, generator, self.bounded
        )
        self.network.to(self.device)
        self.optimiser = torch.optim.Adam(
            self.network.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )

    def scaled(self, feats: np.ndarray) -> Any:
        """``feats`` (see :meth:`features`) as the network's input tensor: standardised with
        the feature scale of the labelled steps (:meth:`set_feature_scale`)."""
        import torch

        x = torch.as_tensor(feats, device=self.device)
        mean = torch.as_tensor(self.feature_mean, device=self.device)
        std = torch.as_tensor(self.feature_std, device=self.device)
        return (x - mean) / std

    @property
    def fitted(self) -> bool:
        return self.network is not None

    def _check_fitted(self) -> None:
        if self.network is None:
            raise ConfigError("the reward model is not fitted yet; call fit() first")

    # ----- fitting ------------------------------------------------------------------------
    def fit(self, data: Comparisons, epochs: int = 20) -> dict[str, float]:
        """Train every member for ``epochs`` passes over ``data``; returns the last losses.

        The first call sets the feature sizes and builds the members; later calls continue
        training the same members (more labels arrive between calls). Each call standardises
        the inputs with the mean and deviation of all the labelled steps in ``data``. With a
        ``symmetry``, an epoch is as many gradient steps, on batches as large, as a pass over
        ``data`` alone, the batches drawn from all its images (see :meth:`_epochs`).
        """
        import torch

        epochs = check_positive_int("epochs", epochs)
        arrays = data.arrays()
        if not len(data):
            raise ConfigError("no answered comparison to fit the reward model to")
        for name in ("obs", "actions"):  # widths read from data: from all of the first fit's
            values = [
                v
                for v in (arrays.get(f"pair_{name}"), arrays.get(f"rank_{name}"))
                if v is not None and v.size and self._discrete(v, 3 + self.agent_axis)
            ]
            if self.one_hot[name] is None and values:
                self.one_hot[name] = max(int(v.max()) for v in values) + 1
        n_pairs, n_ranks = len(arrays.get("labels", ())), len(arrays.get("orders", ()))
        images = 1
        if self.symmetry is not None:
            arrays, images = self._images(arrays)
        pair_x = rank_x = None
        if "labels" in arrays:
            pair_x = self.features(arrays["pair_obs"], arrays["pair_actions"], lead=3)
        if "orders" in arrays:
            rank_x = self.features(arrays["rank_obs"], arrays["rank_actions"], lead=3)
        # The input scale follows all the labelled steps so far: the first labels come from an
        # untrained policy's narrow corner of the state space, and inputs scaled by it would
        # put later states far outside what the members were fitted on.
        sample = np.concatenate(
            [x.reshape(-1, x.shape[-1]) for x in (pair_x, rank_x) if x is not None]
        )
        kind = "pair" if pair_x is not None else "rank"
        one_hot = self.one_hot_columns(arrays[f"{kind}_obs"], arrays[f"{kind}_actions"], lead=3)
        self.set_feature_scale(sample, one_hot)
        if self.network is None:
            self.build(sample.shape[1])
        self.network.train()
        self._numpy_weights = None
        losses = {}
        rows = sum(x.size // x.shape[-1] for x in (pair_x, rank_x) if x is not None)
        with cpu_threads(self.device, rows, self.threads):
            xp = None if pair_x is None else self.scaled(pair_x)
            yp = (
                None
                if pair_x is None
                else torch.as_tensor(arrays["labels"], dtype=torch.float32, device=self.device)
            )
            xr = None if rank_x is None else self.scaled(rank_x)
            orders = (
                None if rank_x is None else torch.as_tensor(arrays["orders"], device=self.device)
            )
            for batches in self._epochs(n_pairs, n_ranks, epochs, images):
                epoch_losses = []
                for pair_idx, rank_idx in batches:
                    loss = torch.zeros((), device=self.device)
                    if pair_idx is not None:
                        loss = loss + self._pair_loss(xp[pair_idx], yp[pair_idx])
                    if rank_idx is not None:
                        loss = loss + self._rank_loss(xr[rank_idx], orders[rank_idx])
                    self.optimiser.zero_grad()
                    loss.backward()
                    self.optimiser.step()
                    epoch_losses.append(loss.item())
                self.losses.append(float(np.mean(epoch_losses)))
            losses["loss"] = self.losses[-1]
        self.network.eval()
        return losses

    def check_steps(
        self, obs: np.ndarray, actions: np.ndarray | None, agent_indicator: bool = False
    ) -> None:
        """Raise the ConfigError :meth:`fit` would on steps like these (a ``symmetry`` reads
        their observations and actions), so a learner can refuse them before it runs.

        ``agent_indicator``: the steps are a team's whose agents are of different kinds, each
        observation zero-padded to one size and ending in an agent-type one-hot (SuperSuit's
        ``pad_observations_v0`` and ``agent_indicator_v0``, e.g. ``simple_tag``'s predators
        and prey). A symmetry reads every value as part of an (x, y) vector: it would turn the
        indicator and swap the kinds, so it is refused there.
        """
        if self.symmetry is None:
            return
        if agent_indicator:
            raise ConfigError(
                f"symmetry {self.symmetry!r} cannot map this team's observations: its agents "
                "are of different kinds, so each observation is zero-padded to one size and "
                "ends in an agent-type indicator, which the symmetry would turn as an (x, y) "
                "vector, swapping the kinds; leave symmetry unset on this env (it suits teams "
                "of one kind, e.g. mpe2/simple_spread_v3)"
            )
        SYMMETRIES[str(self.symmetry)](obs, actions)

    def _images(self, arrays: dict[str, np.ndarray]) -> tuple[dict[str, Any], int]:
        """Every comparison once per map of ``symmetry`` (labels and orders repeated; image
        ``i`` of comparison ``j`` at row ``i * n + j``), and the group's size."""
        out = dict(arrays)
        size = 1
        for kind, answers in (("pair", "labels"), ("rank", "orders")):
            if answers not in arrays:
                continue
            obs, actions = arrays[f"{kind}_obs"], arrays[f"{kind}_actions"]
            bare = actions.dtype.kind == "f" and actions.shape[-1:] == (0,)  # no actions
            mapped = SYMMETRIES[str(self.symmetry)](obs, None if bare else actions)
            size = len(mapped)
            out[f"{kind}_obs"] = np.concatenate([o for o, _ in mapped])
            if not bare:
                out[f"{kind}_actions"] = np.concatenate([a for _, a in mapped])
            out[answers] = np.concatenate([arrays[answers]] * size)
        return out, size

    def _epochs(
        self, n_pairs: int, n_ranks: int, epochs: int, images: int = 1
    ) -> Iterator[list[tuple[Any, Any]]]:
        """The index batches ``(members, b)`` of each epoch's gradient steps; each member sees
        its own shuffle.

        An epoch is as many steps as one pass over the ``n_pairs`` and ``n_ranks`` labelled
        comparisons takes in batches of ``batch_size`` (both sets cut into the same number of
        batches). With ``images`` images of each comparison (a symmetry), the steps, of the
        same sizes, walk through one shuffle of all the images: ``images`` epochs see each
        image once, and the symmetry costs no extra gradient step.
        """
        import torch

        def perms(n: int) -> np.ndarray | None:
            if n == 0:
                return None
            return np.stack([self._order_rng.permutation(n) for _ in range(self.members)])

        size = self.batch_size or max(n_pairs, n_ranks)
        steps = max(-(-n_pairs // size), -(-n_ranks // size))
        pair_cuts = np.linspace(0, n_pairs, steps + 1).astype(int)
        rank_cuts = np.linspace(0, n_ranks, steps + 1).astype(int)

        def cut(p: np.ndarray | None, cuts: np.ndarray, k: int) -> Any:
            if p is None or cuts[k] == cuts[k + 1]:
                return None
            return torch.as_tensor(p[:, cuts[k] : cuts[k + 1]], device=self.device)

        pp = rp = None
        for epoch in range(epochs):
            part = epoch % images  # which n-sized stretch of the images' shuffle
            if part == 0:
                pp, rp = perms(n_pairs * images), perms(n_ranks * images)
            pairs, ranks = pair_cuts + part * n_pairs, rank_cuts + part * n_ranks
            yield [(cut(pp, pairs, k), cut(rp, ranks, k)) for k in range(steps)]

    def _step_rewards(self, x: Any) -> Any:
        """Member rewards of each step of segments ``x[member, query, slot, step, (agent,) f]``
        -> ``(M, q, slot, step)`` (summed over agents)."""
        m, f = x.shape[0], x.shape[-1]
        steps = self.network(x.reshape(m, -1, f)).reshape(x.shape[:-1])
        return steps.sum(dim=-1) if self.agent_axis else steps

    def _regulariser(self, steps: Any) -> Any:
        """MARLHF's temporal term: ``temporal_reg`` times the mean squared difference of
        consecutive step rewards, summed over members (as the likelihood terms are)."""
        if not self.temporal_reg or steps.shape[-1] < 2:
            return 0.0
        diff = steps[..., 1:] - steps[..., :-1]
        return self.temporal_reg * diff.pow(2).flatten(1).mean(dim=1).sum()

    def _pair_loss(self, x: Any, y: Any) -> Any:
        import torch

        steps = self._step_rewards(x)  # x: (M, b, 2, L, (A,) f)
        returns = steps.sum(dim=-1)
        logits = returns[..., 0] - returns[..., 1]
        target = y.expand_as(logits) if y.dim() == 1 else y
        if not self.mistake_rate:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits, target, reduction="sum"
            )
            return loss / logits.shape[1] + self._regulariser(steps)
        # P(a > b) = eps + (1 - 2 eps) sigmoid(R_a - R_b): the teacher flips a fraction eps.
        eps = self.mistake_rate
        p = eps + (1 - 2 * eps) * torch.sigmoid(logits)
        loss = -(target * torch.log(p) + (1 - target) * torch.log(1 - p)).sum()
        return loss / logits.shape[1] + self._regulariser(steps)

    def _rank_loss(self, x: Any, orders: Any) -> Any:
        import torch

        steps = self._step_rewards(x)
        returns = steps.sum(dim=-1)  # (M, b, m)
        ordered = torch.gather(returns, 2, orders)
        # log P(order) = sum_k R_(k) - logsumexp_{j >= k} R_(j): a reversed cumulative logsumexp.
        tail = torch.logcumsumexp(ordered.flip(-1), dim=-1).flip(-1)
        return -(ordered - tail).sum() / returns.shape[1] + self._regulariser(steps)

    # ----- prediction ---------------------------------------------------------------------
    def member_rewards(self, obs: np.ndarray, actions: np.ndarray | None) -> np.ndarray:
        """Each member's reward of each step, shape ``(members, n)`` for ``n`` steps
        (``(members, n, agents)``, each agent's part, with the agent axis)."""
        import torch

        self._check_fitted()
        feats = self.features(obs, actions, lead=1)
        shape = feats.shape[:-1]
        feats = feats.reshape(-1, feats.shape[-1])
        if self.device == "cpu" and feats.shape[0] <= SMALL_STEP_BATCH:
            return self._numpy_forward(feats).reshape((self.members,) + shape)
        out = np.empty((self.members, feats.shape[0]), dtype=np.float32)
        chunk = 1 << 16
        with torch.no_grad(), cpu_threads(self.device, feats.shape[0]):
            for start in range(0, feats.shape[0], chunk):
                x = self.scaled(feats[start : start + chunk])
                out[:, start : start + chunk] = self.network(x).cpu().numpy()
        return out.reshape((self.members,) + shape)

    def _numpy_forward(self, feats: np.ndarray) -> np.ndarray:
        """The network in numpy: for the few rows of one vector step, torch's per-call cost
        is most of the time (a copy of the weights is kept until the next fit)."""
        if self._numpy_weights is None:
            self._numpy_weights = [
                (w.detach().cpu().numpy(), b.detach().cpu().numpy())
                for w, b in zip(self.network.weights, self.network.biases, strict=True)
            ]
        x = (feats - self.feature_mean) / self.feature_std
        last = len(self._numpy_weights) - 1
        for k, (w, b) in enumerate(self._numpy_weights):
            x = np.matmul(x, w) + b  # (n, f) @ (members, f, h) -> (members, n, h)
            if k < last:
                x = np.where(x > 0, x, 0.01 * x)
            elif self.bounded:
                x = np.tanh(x)
        return x[..., 0].astype(np.float32, copy=False)

    def reward(
        self, obs: np.ndarray, actions: np.ndarray | None, normalise: bool = True
    ) -> np.ndarray:
        """The ensemble's mean reward of each step, shape ``(n,)`` (float32; ``(n, agents)``
        with the agent axis).

        ``normalise`` applies the scale set by :meth:`calibrate` (identity until then).
        """
        mean = self.member_rewards(obs, actions).mean(axis=0)
        if normalise:
            mean = (mean - self.reward_mean) / self.reward_std
        return mean.astype(np.float32, copy=False)

    def calibrate(self, obs: np.ndarray, actions: np.ndarray | None) -> None:
        """Set the output scale so :meth:`reward` has zero mean, unit variance on these steps."""
        raw = self.member_rewards(obs, actions).mean(axis=0)
        self.reward_mean = float(raw.mean())
        self.reward_std = float(raw.std()) + 1e-8

    def segment_returns(self, segments: Segments | Sequence[Segments]) -> np.ndarray:
        """Members' summed rewards: ``(members, n)`` for one batch, ``(members, n, m)`` for m."""
        batches = [segments] if isinstance(segments, Segments) else list(segments)
        obs = np.stack([_obs(s) for s in batches], axis=1)
        actions = np.stack([_act(s) for s in batches], axis=1)
        n, m, length = obs.shape[:3]
        flat_obs = obs.reshape((n * m * length,) + obs.shape[3:])
        flat_act = actions.reshape((n * m * length,) + actions.shape[3:])
        steps = self.member_rewards(flat_obs, flat_act).astype(np.float64)
        if self.agent_axis:
            steps = steps.sum(axis=-1)
        returns = steps.reshape(self.members, n, m, length).sum(axis=-1)
        return returns[..., 0] if isinstance(segments, Segments) else returns

    def probabilities(self, a: Segments, b: Segments) -> np.ndarray:
        """Each member's ``P(a > b)``, shape ``(members, n)``."""
        returns = self.segment_returns([as_segments(a), as_segments(b)])
        return 0.5 * (1.0 + np.tanh(0.5 * (returns[..., 0] - returns[..., 1])))

    def accuracy(self, a: Segments, b: Segments, labels: np.ndarray) -> float:
        """Share of strict labels (1 or 0) whose side the ensemble's mean prefers; NaN if none."""
        labels = np.asarray(labels, dtype=np.float64)
        strict = (labels == 1.0) | (labels == 0.0)
        if not strict.any():
            return float("nan")
        p = self.probabilities(a.take(strict), b.take(strict)).mean(axis=0)
        return float(np.mean((p > 0.5) == (labels[strict] == 1.0)))

    # ----- persistence --------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything needed to rebuild the model (for ``torch.save``)."""
        return {
            "config": {
                "members": self.members,
                "hidden": self.hidden,
                "layers": self.layers,
                "lr": self.lr,
                "weight_decay": self.weight_decay,
                "batch_size": self.batch_size,
                "seed": self.seed,
                "use_actions": self.use_actions,
                "bounded": self.bounded,
                "threads": self.threads,
                "mistake_rate": self.mistake_rate,
                "agent_axis": self.agent_axis,
                "temporal_reg": self.temporal_reg,
                "symmetry": self.symmetry,
            },
            "one_hot": dict(self.one_hot),
            "feature_mean": self.feature_mean,
            "feature_std": self.feature_std,
            "reward_mean": self.reward_mean,
            "reward_std": self.reward_std,
            "network": None if self.network is None else self.network.state_dict(),
            "optimiser": None if self.optimiser is None else self.optimiser.state_dict(),
            "order_rng": self._order_rng.bit_generator.state,
            "losses": list(self.losses),
        }

    def save(self, path: str | Path) -> None:
        """Write :meth:`state` with ``torch.save`` (atomically)."""
        import torch

        with atomic_path(path) as tmp:
            torch.save(self.state(), tmp)

    @classmethod
    def from_state(cls, state: dict[str, Any], device: str = "auto") -> RewardModel:
        """Rebuild a model saved by :meth:`state`."""
        model = cls(**state["config"], device=device)
        model.one_hot = dict(state["one_hot"])
        model.reward_mean = float(state["reward_mean"])
        model.reward_std = float(state["reward_std"])
        model.losses = list(state["losses"])
        if state["network"] is not None:
            model.feature_mean = np.asarray(state["feature_mean"], dtype=np.float32)
            model.feature_std = np.asarray(state["feature_std"], dtype=np.float32)
            model.build(model.feature_mean.shape[0])
            model.network.load_state_dict(state["network"])
            model.optimiser.load_state_dict(state["optimiser"])
            model.network.eval()
        # After _build, which draws from it: the next fit shuffles as the saved model's would.
        model._order_rng.bit_generator.state = state["order_rng"]
        return model

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> RewardModel:
        """Read a model written by :meth:`save`."""
        import torch

        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except OSError as err:
            raise ConfigError(
                f"reward model {str(path)!r} cannot be read: {err.strerror}"
            ) from None
        return cls.from_state(state, device=device)
