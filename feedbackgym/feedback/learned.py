"""A feedback model learned from a feedback log (GUIDE-style), standing in for the teacher."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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
from feedbackgym.feedback.preferences import sigmoid


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` is ``"cuda"`` when torch sees a GPU, else ``"cpu"``; other names pass."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


#: Below this many step rows a CPU pass runs on one thread.
SMALL_BATCH = 100_000


@contextmanager
def _one_cpu_thread(device: str, rows: int) -> Iterator[None]:
    """Run small CPU batches on one thread: there a thread pool costs more than it saves, and
    its spinning threads slow down badly on a busy machine. Large batches keep torch's pool."""
    import torch

    if device != "cpu" or rows >= SMALL_BATCH:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@register_feedback_model("learned")
class LearnedPreferenceModel(FeedbackModel):
    """A Bradley-Terry reward model fitted to logged preferences, answering like a teacher.

    After GUIDE (Zhang et al. 2024, "GUIDE: Real-Time Human-Shaped Agents"), which trains a
    simulated feedback module on a person's feedback so it can keep giving feedback once the
    person leaves. Here a small MLP ``r_theta(step features)`` is fitted with Adam to the
    labelled pairs of a :class:`~feedbackgym.feedback.log.FeedbackLog` (or arrays) by the
    Bradley-Terry loss ``BCE(sigmoid(sum r_theta(a) - sum r_theta(b)), label)`` of Christiano
    et al. (2017); skipped pairs are left out, "equal" is the target 0.5. It then answers
    ``prefer`` like a Bradley-Terry teacher: sampling with ``P(a > b) = sigmoid(beta (R_a -
    R_b))`` (``beta = 1`` reproduces the fitted probabilities), or the likelier label when
    ``beta = inf``. Deviation: GUIDE regresses continuous scalar feedback from images; this
    model learns pairwise preferences from state/action features.

    Step features: discrete observations/actions (integer arrays of shape ``(n, L)``) are
    one-hot encoded, continuous ones flattened; segments with neither use the reward.

    :param hidden: width of the two hidden layers, a positive integer.
    :param epochs: full passes of Adam over the data, a positive integer.
    :param lr: Adam's learning rate, > 0.
    :param beta: rationality when answering, in [0, inf].
    :param device: torch device; "auto" is CUDA when available.
    :param rng: a numpy Generator or an integer seed (weights and answers).
    """

    kind = "preference"

    def __init__(
        self,
        hidden: int = 64,
        epochs: int = 200,
        lr: float = 1e-2,
        beta: float = 1.0,
        device: str = "auto",
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(rng)
        self.hidden = check_positive_int("hidden", hidden)
        self.epochs = check_positive_int("epochs", epochs)
        self.lr = check_range("lr", lr, 0.0, low_open=True)
        self.beta = check_range("beta", beta, 0.0)
        self.device = device
        self.network: Any = None
        self._one_hot: dict[str, int] = {}
        self.losses: list[float] = []

    # ----- features ---------------------------------------------------------------------
    def _part(self, name: str, value: np.ndarray | None, fitting: bool) -> np.ndarray | None:
        if value is None:
            return None
        n, length = value.shape[:2]
        if value.dtype.kind in "iub" and value.ndim == 2:
            if fitting:
                self._one_hot[name] = max(int(value.max()) + 1, self._one_hot.get(name, 0))
            size = self._one_hot.get(name)
            if size is None:
                raise ConfigError(f"the learned model was fitted without {name}")
            out = np.zeros((n, length, size), dtype=np.float32)
            clipped = np.clip(value, 0, size - 1)
            np.put_along_axis(out, clipped[..., None], 1.0, axis=2)
            return out
        return value.reshape(n, length, -1).astype(np.float32)

    def features(self, segments: Segments, fitting: bool = False) -> np.ndarray:
        """Per-step features, shape ``(n, L, f)``."""
        parts = [
            p
            for p in (
                self._part("obs", segments.obs, fitting),
                self._part("actions", segments.actions, fitting),
            )
            if p is not None
        ]
        if not parts:
            return segments.rewards[..., None].astype(np.float32)
        return np.concatenate(parts, axis=2)

    # ----- fitting ----------------------------------------------------------------------
    def fit(
        self,
        data: str | Path | tuple[Segments, Segments, np.ndarray],
        model: int | None = None,
    ) -> LearnedPreferenceModel:
        """Fit to a feedback log path (its ``prefer`` batches; of model id ``model`` when
        given) or to a tuple ``(a, b, labels)``. Returns self."""
        import torch

        if isinstance(data, (str, Path)):
            a, b, labels = preference_data(data, model)
        else:
            a, b, labels = as_segments(data[0]), as_segments(data[1]), np.asarray(data[2], float)
        keep = ~np.isnan(labels)
        if not keep.any():
            raise ConfigError("no answered preference to fit the learned model to")
        a, b, labels = a.take(keep), b.take(keep), labels[keep]
        self._one_hot = {}
        self.features(a, fitting=True)
        self.features(b, fitting=True)  # one-hot sizes cover both sides
        fa, fb = self.features(a), self.features(b)
        device = resolve_device(self.device)
        torch.manual_seed(int(self.rng.integers(2**31)))
        width = fa.shape[2]
        self.network = torch.nn.Sequential(
            torch.nn.Linear(width, self.hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(self.hidden, self.hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(self.hidden, 1),
        ).to(device)
        xa = torch.as_tensor(fa, device=device)
        xb = torch.as_tensor(fb, device=device)
        y = torch.as_tensor(labels, dtype=torch.float32, device=device)
        optimiser = torch.optim.Adam(self.network.parameters(), lr=self.lr)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        self.losses = []
        with _one_cpu_thread(device, fa.shape[0] * fa.shape[1]):
            for _ in range(self.epochs):
                optimiser.zero_grad()
                logits = self.network(xa).sum(dim=(1, 2)) - self.network(xb).sum(dim=(1, 2))
                loss = loss_fn(logits, y)
                loss.backward()
                optimiser.step()
                self.losses.append(loss.item())
        self.network.eval()
        return self

    def returns(self, segments: Segments | np.ndarray) -> np.ndarray:
        """Learned return ``sum_t r_theta`` of each segment, shape ``(n,)``."""
        import torch

        if self.network is None:
            raise ConfigError("the learned feedback model is not fitted; call fit() first")
        segments = as_segments(segments)
        device = next(self.network.parameters()).device
        features = self.features(segments)
        with torch.no_grad(), _one_cpu_thread(device.type, features.shape[0] * features.shape[1]):
            x = torch.as_tensor(features, device=device)
            return self.network(x).sum(dim=(1, 2)).cpu().numpy().astype(np.float64)

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
    from feedbackgym.feedback.log import decode_answer, logged_queries

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
