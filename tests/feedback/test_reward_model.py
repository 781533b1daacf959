"""The reward-model ensemble: Bradley-Terry and Plackett-Luce fits, soft and skipped labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from feedbackgym.errors import ConfigError
from feedbackgym.feedback import (
    Comparisons,
    OracleTeacher,
    PlackettLuceTeacher,
    RewardModel,
    Segments,
    SkipTeacher,
)

#: The hidden reward of the synthetic task: linear in a 3-d observation and a 1-d action.
WEIGHTS = np.array([1.0, -2.0, 0.5])
ACTION_WEIGHT = 1.5


def segments(n: int, rng: np.random.Generator, length: int = 5) -> Segments:
    obs = rng.normal(size=(n, length, 3)).astype(np.float32)
    actions = rng.uniform(-1, 1, size=(n, length, 1)).astype(np.float32)
    rewards = obs @ WEIGHTS + ACTION_WEIGHT * actions[..., 0]
    return Segments(rewards, obs, actions)


def labelled_pairs(n: int, seed: int) -> tuple[Segments, Segments, np.ndarray]:
    rng = np.random.default_rng(seed)
    a, b = segments(n, rng), segments(n, rng)
    return a, b, OracleTeacher(rng=seed).prefer(a, b)


def small_model(**overrides) -> RewardModel:
    return RewardModel(**{"members": 3, "hidden": 32, "device": "cpu", "seed": 0, **overrides})


def test_a_few_hundred_preferences_give_held_out_accuracy_well_above_chance():
    a, b, labels = labelled_pairs(300, seed=1)
    data = Comparisons()
    assert data.add_pairs(a, b, labels) == 300
    model = small_model()
    model.fit(data, epochs=30)
    test_a, test_b, test_labels = labelled_pairs(500, seed=2)
    assert model.accuracy(test_a, test_b, test_labels) > 0.8
    # The learned step reward orders unseen steps like the true one.
    rng = np.random.default_rng(3)
    steps = segments(2000, rng, length=1)
    learned = model.reward(steps.obs[:, 0], steps.actions[:, 0])
    assert np.corrcoef(learned, steps.rewards[:, 0])[0, 1] > 0.8


def test_plackett_luce_rankings_fit_above_chance():
    rng = np.random.default_rng(4)
    groups = [segments(100, rng) for _ in range(4)]
    orders = PlackettLuceTeacher(rng=4).rank(groups)
    data = Comparisons()
    assert data.add_rankings(groups, orders) == 100 and data.n_pairs == 0
    model = small_model()
    model.fit(data, epochs=30)
    test_a, test_b, test_labels = labelled_pairs(500, seed=5)
    assert model.accuracy(test_a, test_b, test_labels) > 0.8


def test_pairs_and_rankings_fit_together():
    a, b, labels = labelled_pairs(60, seed=6)
    rng = np.random.default_rng(7)
    groups = [segments(40, rng) for _ in range(3)]
    data = Comparisons()
    data.add_pairs(a, b, labels)
    data.add_rankings(groups, PlackettLuceTeacher(beta=float("inf"), rng=7).rank(groups))
    assert (data.n_pairs, data.n_rankings, len(data)) == (60, 40, 100)
    model = small_model()
    model.fit(data, epochs=30)
    assert model.accuracy(*labelled_pairs(400, seed=8)) > 0.75


def test_equal_answers_are_soft_targets():
    """0.5 pulls both returns together: the fitted P(a > b) stays near one half, where the
    same pairs labelled by the oracle are learned as clear preferences."""
    a, b, labels = labelled_pairs(200, seed=9)
    strict, equal = Comparisons(), Comparisons()
    strict.add_pairs(a, b, labels)
    equal.add_pairs(a, b, np.full(200, 0.5))
    model_strict, model_equal = small_model(), small_model()
    model_strict.fit(strict, epochs=30)
    model_equal.fit(equal, epochs=30)
    p_strict = model_strict.probabilities(a, b).mean(axis=0)
    p_equal = model_equal.probabilities(a, b).mean(axis=0)
    assert np.abs(p_strict - 0.5).mean() > 0.25
    assert np.abs(p_equal - 0.5).mean() < 0.1


def test_skipped_answers_are_dropped_and_refused_rankings_too():
    rng = np.random.default_rng(10)
    a, b = segments(6, rng), segments(6, rng)
    labels = np.array([1.0, np.nan, 0.0, 0.5, np.nan, 1.0])
    data = Comparisons()
    assert data.add_pairs(a, b, labels) == 4
    arrays = data.arrays()
    np.testing.assert_array_equal(arrays["labels"], [1.0, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(arrays["pair_obs"][:, 0], a.obs[[0, 2, 3, 5]])
    np.testing.assert_array_equal(arrays["pair_actions"][:, 1], b.actions[[0, 2, 3, 5]])
    assert data.add_pairs(a, b, np.full(6, np.nan)) == 0 and data.n_pairs == 4

    groups = [segments(3, rng) for _ in range(3)]
    orders = np.array([[2, 0, 1], [-1, -1, -1], [0, 1, 2]])
    assert data.add_rankings(groups, orders) == 2
    np.testing.assert_array_equal(data.arrays()["orders"], [[2, 0, 1], [0, 1, 2]])
    # A round trip through arrays (what a checkpoint stores) keeps everything.
    again = Comparisons.from_arrays(data.arrays())
    assert (again.n_pairs, again.n_rankings) == (4, 2)


def test_a_skip_teachers_answers_fit_without_the_skipped_pairs():
    a, b, _ = labelled_pairs(300, seed=11)
    # Skip the pairs whose better segment's return is below the median of such returns.
    threshold = float(np.median(np.maximum(a.rewards.sum(1), b.rewards.sum(1))))
    labels = SkipTeacher(skip_threshold=threshold, rng=11).prefer(a, b)
    skipped = int(np.isnan(labels).sum())
    assert 100 < skipped < 200
    data = Comparisons()
    assert data.add_pairs(a, b, labels) == 300 - skipped
    model = small_model()
    model.fit(data, epochs=30)
    assert np.isfinite(model.losses).all()
    assert model.accuracy(*labelled_pairs(400, seed=12)) > 0.75


def test_accuracy_counts_only_strict_labels():
    a, b, labels = labelled_pairs(100, seed=13)
    data = Comparisons()
    data.add_pairs(a, b, labels)
    model = small_model()
    model.fit(data, epochs=5)
    mixed = labels.copy()
    mixed[:50] = np.where(np.arange(50) % 2, 0.5, np.nan)
    strict = slice(50, None)
    assert model.accuracy(a, b, mixed) == model.accuracy(
        a.take(np.arange(50, 100)), b.take(np.arange(50, 100)), labels[strict]
    )
    assert np.isnan(model.accuracy(a, b, np.full(100, 0.5)))


def test_members_disagree_and_calibration_standardises_the_reward():
    a, b, labels = labelled_pairs(200, seed=14)
    data = Comparisons()
    data.add_pairs(a, b, labels)
    model = small_model(members=4)
    model.fit(data, epochs=10)
    steps = segments(500, np.random.default_rng(15), length=1)
    obs, actions = steps.obs[:, 0], steps.actions[:, 0]
    members = model.member_rewards(obs, actions)
    assert members.shape == (4, 500) and members.std(axis=0).mean() > 1e-3
    model.calibrate(obs, actions)
    reward = model.reward(obs, actions)
    assert reward.dtype == np.float32
    assert abs(reward.mean()) < 1e-4 and abs(reward.std() - 1.0) < 1e-3
    np.testing.assert_allclose(model.reward(obs, actions, normalise=False), members.mean(axis=0))


def test_saved_model_predicts_and_keeps_training_exactly_like_the_original(tmp_path):
    first, second = Comparisons(), Comparisons()
    first.add_pairs(*labelled_pairs(100, seed=16))
    second.add_pairs(*labelled_pairs(100, seed=17))
    model = small_model()
    model.fit(first, epochs=5)
    model.save(tmp_path / "reward_model.pt")
    loaded = RewardModel.load(tmp_path / "reward_model.pt", device="cpu")
    steps = segments(50, np.random.default_rng(18), length=1)
    obs, actions = steps.obs[:, 0], steps.actions[:, 0]
    np.testing.assert_array_equal(loaded.reward(obs, actions), model.reward(obs, actions))
    model.fit(second, epochs=3)
    loaded.fit(second, epochs=3)
    np.testing.assert_array_equal(loaded.reward(obs, actions), model.reward(obs, actions))
    assert loaded.losses == model.losses


def test_discrete_states_and_actions_are_one_hot_features():
    rng = np.random.default_rng(19)
    table = rng.normal(size=(6, 3))  # true reward of (state, action)

    def discrete(n: int) -> Segments:
        obs = rng.integers(6, size=(n, 4))
        actions = rng.integers(3, size=(n, 4))
        return Segments(table[obs, actions], obs, actions)

    a, b = discrete(400), discrete(400)
    data = Comparisons()
    data.add_pairs(a, b, OracleTeacher(rng=0).prefer(a, b))
    model = small_model()
    model.fit(data, epochs=40)
    assert model.one_hot == {"obs": 6, "actions": 3}
    test_a, test_b = discrete(400), discrete(400)
    assert model.accuracy(test_a, test_b, OracleTeacher(rng=1).prefer(test_a, test_b)) > 0.8


def test_auto_device_is_cuda_exactly_when_torch_sees_a_gpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert RewardModel(device="auto").device == expected


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: RewardModel(members=0), "members must be a positive integer, got 0"),
        (lambda: RewardModel(lr=0.0), "lr must be in (0, inf)"),
        (lambda: RewardModel(device="tpu"), "device must be auto, cpu or cuda, got 'tpu'"),
        (lambda: small_model().fit(Comparisons()), "no answered comparison"),
        (lambda: small_model().reward(np.zeros((2, 3)), None), "not fitted yet"),
        (lambda: RewardModel.load("/nonexistent/reward_model.pt"), "cannot be read"),
    ],
)
def test_bad_input_is_a_one_line_config_error(call, message):
    with pytest.raises(ConfigError) as err:
        call()
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_says_what_to_use():
    with pytest.raises(ConfigError, match="torch sees no CUDA GPU; use auto or cpu"):
        RewardModel(device="cuda")


def test_a_mistake_aware_likelihood_recovers_the_ordering_from_noisy_answers():
    from feedbackgym.feedback import MistakeTeacher

    rng = np.random.default_rng(7)
    a, b = segments(400, rng), segments(400, rng)
    labels = MistakeTeacher(mistake=0.2, rng=7).prefer(a, b)
    data = Comparisons()
    data.add_pairs(a, b, labels)
    aware = small_model(mistake_rate=0.2)
    aware.fit(data, epochs=40)
    test_a, test_b, test_labels = labelled_pairs(500, seed=8)
    assert aware.accuracy(test_a, test_b, test_labels) > 0.75  # one answer in five flipped
    with pytest.raises(ConfigError, match=r"mistake_rate must be in \[0, 0.5\), got 0.5"):
        small_model(mistake_rate=0.5)


# ----- discrete observations (GridWorld) ---------------------------------------------------------
def gridworld_pairs(states: np.ndarray, n: int, seed: int) -> tuple[Segments, Segments, np.ndarray]:
    """Pairs of 4-step GridWorld segments whose states are drawn from ``states`` only, each
    step rewarded by the env's expected reward ``R[s, a]``, labelled by an oracle."""
    from feedbackgym.envs.gridworld import GridWorld

    table = GridWorld().rewards
    rng = np.random.default_rng(seed)

    def draw() -> Segments:
        obs = rng.choice(states, size=(n, 4))
        actions = rng.integers(4, size=(n, 4))
        return Segments(table[obs, actions], obs, actions)

    a, b = draw(), draw()
    return a, b, OracleTeacher(rng=seed).prefer(a, b)


def test_gridworld_states_outside_the_labelled_segments_get_rewards_on_the_labelled_scale():
    """Labels cover the grid's top three rows (states 0-14 of 25): the other ten states, whose
    one-hot columns are constant (zero) in the labelled data, are scored on the same scale,
    not as features of 1e6 (the deviation of a constant column was 1e-6)."""
    data = Comparisons()
    data.add_pairs(*gridworld_pairs(np.arange(15), 300, seed=30))
    model = small_model(n_obs=25, n_actions=4)
    model.fit(data, epochs=20)
    states, actions = np.divmod(np.arange(100), 4)  # every (state, action)
    rewards = np.abs(model.reward(states, actions, normalise=False)).reshape(25, 4)
    labelled_max = rewards[:15].max()
    assert rewards[15:].max() <= 3 * labelled_max, (rewards[15:].max(), labelled_max)
    # one-hot columns keep their 0/1 scale: mean 0 and deviation 1, even where all zero
    np.testing.assert_array_equal(model.feature_mean, np.zeros(29, np.float32))
    np.testing.assert_array_equal(model.feature_std, np.ones(29, np.float32))


def test_a_discrete_value_outside_the_one_hot_width_is_refused_not_aliased(tmp_path):
    data = Comparisons()
    data.add_pairs(*gridworld_pairs(np.arange(15), 50, seed=31))
    declared = small_model(n_obs=25, n_actions=4)
    declared.fit(data, epochs=2)
    with pytest.raises(ConfigError) as err:
        declared.reward(np.array([3, 25]), np.array([0, 1]))
    assert str(err.value) == (
        "observation 25 is outside the reward model's one-hot width 25 (valid: 0 to 24); "
        "set n_obs to the number of discrete observations"
    )
    with pytest.raises(ConfigError, match="action -1 is outside .* width 4 .*n_actions"):
        declared.reward(np.array([3]), np.array([-1]))
    # without n_obs the width is read from the first fit (states 0-14): a later state 20 was
    # scored as state 14; now it is refused, at fit and when scoring alike
    read = small_model()
    read.fit(data, epochs=2)
    assert read.one_hot == {"obs": 15, "actions": 4}
    with pytest.raises(ConfigError, match="observation 20 is outside .* width 15 .*0 to 14"):
        read.reward(np.array([20]), np.array([0]))
    wider = Comparisons()
    wider.add_pairs(*gridworld_pairs(np.arange(25), 50, seed=32))
    with pytest.raises(ConfigError, match="outside the reward model's one-hot width 15"):
        read.fit(wider, epochs=1)
    # saved and loaded, the widths and the refusal stay
    declared.save(tmp_path / "rm.pt")
    loaded = RewardModel.load(tmp_path / "rm.pt", device="cpu")
    assert loaded.one_hot == {"obs": 25, "actions": 4}
    states = np.arange(25)
    np.testing.assert_array_equal(
        loaded.reward(states, states % 4), declared.reward(states, states % 4)
    )
    with pytest.raises(ConfigError, match="observation 25"):
        loaded.reward(np.array([25]), np.array([0]))


def test_a_model_saved_before_one_hot_columns_kept_their_scale_reads_as_before(tmp_path):
    """A file written when one-hot columns were standardised holds that scale; it is used."""
    data = Comparisons()
    data.add_pairs(*gridworld_pairs(np.arange(25), 50, seed=33))
    model = small_model(n_obs=25, n_actions=4)
    model.fit(data, epochs=2)
    state = model.state()
    state["feature_mean"] = np.full(29, 0.04, np.float32)  # what the old fit would have set
    state["feature_std"] = np.full(29, 0.2, np.float32)
    torch.save(state, tmp_path / "old.pt")
    old = RewardModel.load(tmp_path / "old.pt", device="cpu")
    np.testing.assert_array_equal(old.feature_std, state["feature_std"])
    states = np.arange(25)
    feats = np.concatenate([np.eye(25), np.eye(4)[states % 4]], axis=1)
    x = (feats - 0.04) / 0.2
    with torch.no_grad():
        expected = old.network(torch.as_tensor(x, dtype=torch.float32)).mean(0).numpy()
    np.testing.assert_allclose(old.reward(states, states % 4, normalise=False), expected, atol=1e-6)


def test_constant_continuous_columns_are_centred_not_blown_up():
    """A float column constant in the labelled data (e.g. a one-hot stored as floats) keeps
    deviation 1; the others are standardised as before."""
    rng = np.random.default_rng(34)
    a, b, labels = labelled_pairs(100, seed=34)
    for s in (a, b):
        s.obs[..., 2] = 0.0  # never set in the labelled data
    data = Comparisons()
    data.add_pairs(a, b, labels)
    model = small_model()
    model.fit(data, epochs=5)
    assert model.feature_std[2] == 1.0 and model.feature_mean[2] == 0.0
    flat = np.concatenate([a.obs, b.obs]).reshape(-1, 3)
    np.testing.assert_allclose(model.feature_std[:2], flat[:, :2].std(0) + 1e-6, rtol=1e-5)
    probe = segments(20, rng, length=1)
    probe.obs[..., 2] = 1.0
    seen = np.abs(model.reward(probe.obs[:, 0] * [1, 1, 0], probe.actions[:, 0], False)).max()
    unseen = np.abs(model.reward(probe.obs[:, 0], probe.actions[:, 0], False)).max()
    assert unseen < 5 * seen + 5


def test_the_learned_teacher_takes_one_hot_widths_and_checks_them_against_the_env():
    from gymnasium import spaces

    from feedbackgym.feedback import LearnedPreferenceModel

    a, b, labels = gridworld_pairs(np.arange(15), 200, seed=35)  # a log of states 0-14 only
    grid = spaces.Discrete(25), spaces.Discrete(4)
    declared = LearnedPreferenceModel(epochs=50, device="cpu", rng=0, n_obs=25, n_actions=4)
    declared.fit((a, b, labels))
    assert declared.reward_model.one_hot == {"obs": 25, "actions": 4}
    assert declared.config()["n_obs"] == 25
    declared.check_spaces(*grid)
    seen, unseen = (
        gridworld_pairs(np.arange(15), 50, seed=36),
        gridworld_pairs(np.arange(15, 25), 50, seed=36),
    )
    scale = np.abs(declared.returns(seen[0])).max()
    assert np.abs(declared.returns(unseen[0])).max() <= 3 * scale
    read = LearnedPreferenceModel(epochs=5, device="cpu", rng=0).fit((a, b, labels))
    with pytest.raises(ConfigError) as err:
        read.check_spaces(*grid)
    assert str(err.value) == (
        "the learned teacher one-hot encodes 15 discrete observations (read from its log), but "
        "the env's Discrete(25) has 25: give n_obs=25 in its options"
    )
