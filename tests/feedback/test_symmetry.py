"""Symmetry augmentation of the reward model: the maps are the square's, moves follow them,
and a reward invariant under them is learned where no label was given."""

from __future__ import annotations

import numpy as np
import pytest

from feedbackgym.errors import ConfigError
from feedbackgym.feedback import Comparisons, RewardModel
from feedbackgym.feedback.base import Segments
from feedbackgym.feedback.symmetry import planar_images

MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]])  # mpe2's discrete moves


def test_planar_images_map_every_vector_and_every_move_alike():
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 5, size=(4, 6))
    obs = np.concatenate([rng.normal(size=(4, 6, 4)), MOVES[actions]], axis=-1)  # + move dirs
    mapped = planar_images(obs, actions)
    assert len(mapped) == 8
    np.testing.assert_array_equal(mapped[0][0], obs)  # the identity first
    np.testing.assert_array_equal(mapped[0][1], actions)
    distinct = {tuple(np.round(o[0, 0], 6)) for o, _ in mapped}
    assert len(distinct) == 8
    for image, moved in mapped:
        norms = np.linalg.norm(image.reshape(4, 6, 3, 2), axis=-1)
        np.testing.assert_allclose(norms, np.linalg.norm(obs.reshape(4, 6, 3, 2), axis=-1))
        np.testing.assert_allclose(image[..., 4:], MOVES[moved])  # moves turn with the plane
    continuous = np.eye(5)[actions]  # one component per move
    for (_, moved), (_, soft) in zip(mapped, planar_images(obs, continuous), strict=True):
        np.testing.assert_array_equal(soft, np.eye(5)[moved])


def _segments(rng, n, quadrant):
    """Segments of 5 steps of a point in one quadrant, rewarded by -|p|^2 (direction-free)."""
    pos = rng.uniform(0.1, 1.0, size=(n, 5, 2)) * quadrant
    return Segments(-(pos**2).sum(axis=-1), pos.astype(np.float32), rng.integers(0, 5, (n, 5)))


def test_a_symmetric_reward_is_learned_where_no_label_was():
    """Labels from the first quadrant only: with the planar symmetry the reward model ranks
    the opposite quadrant's points too; without it, it extrapolates the wrong way."""
    rng = np.random.default_rng(1)
    a, b = _segments(rng, 300, 1.0), _segments(rng, 300, 1.0)
    data = Comparisons()
    data.add_pairs(a, b, (a.rewards.sum(1) > b.rewards.sum(1)).astype(float))
    probe = _segments(rng, 200, -1.0)
    corr = {}
    for symmetry in (None, "planar"):
        model = RewardModel(seed=0, device="cpu", symmetry=symmetry)
        model.fit(data, epochs=80)
        learned = model.reward(probe.obs.reshape(-1, 2), probe.actions.reshape(-1))
        corr[symmetry] = np.corrcoef(learned, probe.rewards.reshape(-1))[0, 1]
    assert corr["planar"] > 0.9
    assert corr[None] < corr["planar"] - 0.3


def test_symmetry_is_checked_and_kept_with_the_model(tmp_path):
    with pytest.raises(ConfigError, match="symmetry.*planar"):
        RewardModel(symmetry="cubic")
    rng = np.random.default_rng(2)
    odd = Segments(rng.normal(size=(8, 4)), rng.normal(size=(8, 4, 3)), rng.integers(0, 5, (8, 4)))
    data = Comparisons()
    data.add_pairs(odd, odd, np.ones(8))
    with pytest.raises(ConfigError, match="3 values"):
        RewardModel(symmetry="planar", device="cpu").fit(data)
    a, b = _segments(rng, 20, 1.0), _segments(rng, 20, 1.0)
    data = Comparisons()
    data.add_pairs(a, b, np.ones(20))
    model = RewardModel(symmetry="planar", device="cpu")
    model.fit(data, epochs=2)
    model.save(tmp_path / "rm.pt")
    assert RewardModel.load(tmp_path / "rm.pt", device="cpu").symmetry == "planar"
