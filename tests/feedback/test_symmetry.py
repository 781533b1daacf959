"""Symmetry augmentation of the reward model: the maps are the square's, moves follow them,
and a reward invariant under them is learned where no label was given."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from feedbackgym.errors import ConfigError
from feedbackgym.feedback import Comparisons, PlackettLuceTeacher, RewardModel
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


def _gradient_steps(monkeypatch, model: RewardModel, data: Comparisons, epochs: int) -> list:
    """The comparisons (pairs, rankings) of each gradient step of ``model.fit(data, epochs)``."""
    steps: list = []
    real_pair, real_rank = RewardModel._pair_loss, RewardModel._rank_loss

    def pair_loss(self, x, y):
        steps.append(["pairs", x.shape[:2]])
        return real_pair(self, x, y)

    def rank_loss(self, x, orders):
        steps.append(["rankings", x.shape[:2]])
        return real_rank(self, x, orders)

    real_step = torch.optim.Adam.step
    stepped: list = []

    def step(self, *args, **kwargs):
        stepped.append(1)
        return real_step(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(RewardModel, "_pair_loss", pair_loss)
        patch.setattr(RewardModel, "_rank_loss", rank_loss)
        patch.setattr(torch.optim.Adam, "step", step)
        model.fit(data, epochs=epochs)
    return [len(stepped), steps]


@pytest.mark.parametrize(
    ("pairs", "rankings", "batch_size", "epochs"),
    [(150, 0, 64, 5), (150, 0, 64, 50), (40, 0, None, 13), (100, 30, 32, 7), (0, 30, 16, 3)],
)
def test_the_symmetry_costs_no_extra_gradient_step(
    monkeypatch, pairs, rankings, batch_size, epochs
):
    """With and without ``symmetry``: the same optimiser steps, each on as many comparisons
    (the images are walked through across epochs, not each epoch), and one loss per epoch."""
    rng = np.random.default_rng(5)
    data = Comparisons()
    if pairs:
        a, b = _segments(rng, pairs, 1.0), _segments(rng, pairs, 1.0)
        data.add_pairs(a, b, (a.rewards.sum(1) > b.rewards.sum(1)).astype(float))
    if rankings:
        groups = [_segments(rng, rankings, 1.0) for _ in range(3)]
        data.add_rankings(groups, PlackettLuceTeacher(rng=0).rank(groups))
    counted = {}
    for symmetry in (None, "planar"):
        model = RewardModel(
            members=2, hidden=8, batch_size=batch_size, device="cpu", seed=0, symmetry=symmetry
        )
        counted[symmetry] = _gradient_steps(monkeypatch, model, data, epochs)
        assert len(model.losses) == epochs
    assert counted["planar"] == counted[None]
    assert counted[None][0] == epochs * -(-max(pairs, rankings) // (batch_size or 10**9))


def test_eight_epochs_with_the_symmetry_see_every_image_of_every_comparison_once():
    model = RewardModel(members=3, batch_size=16, device="cpu", seed=0, symmetry="planar")
    for n_pairs, n_ranks in ((50, 0), (37, 11)):
        seen = {"pairs": [], "rankings": []}
        for epoch in model._epochs(n_pairs, n_ranks, epochs=8, images=8):
            for pair_idx, rank_idx in epoch:
                for name, idx in (("pairs", pair_idx), ("rankings", rank_idx)):
                    if idx is not None:
                        seen[name].append(idx.numpy())
        for name, n in (("pairs", n_pairs), ("rankings", n_ranks)):
            if n:
                every = np.sort(np.concatenate(seen[name], axis=1), axis=1)
                np.testing.assert_array_equal(every, np.tile(np.arange(8 * n), (3, 1)))
