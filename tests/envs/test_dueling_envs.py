"""Dueling envs: matrix validation, families' promised structure, regret in info, env checkers."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from hypothesis import given, settings
from hypothesis import strategies as st

import feedbackgym  # noqa: F401  (registers the envs)
from feedbackgym.cli import main
from feedbackgym.envs.dueling import (
    FAMILIES,
    DuelingBanditVec,
    borda_scores,
    condorcet_winner,
    copeland_scores,
    generate_matrix,
    validate_preference_matrix,
)
from feedbackgym.errors import ConfigError

ROCK_PAPER_SCISSORS = [[0.5, 0.8, 0.3], [0.2, 0.5, 0.9], [0.7, 0.1, 0.5]]
SINGLE_IDS = [
    ("feedbackgym/DuelingBandit-v0", {"family": "cyclic", "n_arms": 5}),
    ("feedbackgym/MultiDuelingBandit-v0", {"subset_size": 3}),
    ("feedbackgym/MultiDuelingBandit-v0", {"subset_size": 3, "feedback": "ranking"}),
    ("feedbackgym/ContextualDuelingBandit-v0", {"n_arms": 4, "dim": 3}),
]


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ([[0.5, 0.6, 0.1], [0.4, 0.5, 0.2]], "square"),
        ([[0.5]], "square"),
        ([[0.5, 1.2], [-0.2, 0.5]], r"\[0\]\[1\] = 1.2 is not a probability"),
        ([[0.5, 0.7], [0.2, 0.5]], r"\+ preference_matrix\[1\]\[0\] = 0.9, must be 1"),
        ([[0.4, 0.6], [0.4, 0.6]], "diagonal must be 1/2"),
        ([[0.5, "x"], [0.5, 0.5]], "lists of numbers"),
    ],
)
def test_a_bad_matrix_is_refused_in_one_line(matrix, message):
    with pytest.raises(ConfigError, match=message) as info:
        DuelingBanditVec(preference_matrix=matrix)
    assert "\n" not in str(info.value)


@settings(max_examples=60, deadline=None)
@given(
    family=st.sampled_from(FAMILIES),
    n_arms=st.integers(3, 12),
    seed=st.integers(0, 2**32 - 1),
    margin=st.floats(0.0, 0.45),
)
def test_every_generated_matrix_is_valid_and_has_its_structure(family, n_arms, seed, margin):
    rng = np.random.default_rng(seed)
    p = generate_matrix(family, n_arms, rng, margin=margin, n_winners=3)
    validate_preference_matrix(p)
    winner = condorcet_winner(p)
    copeland = copeland_scores(p)
    top = np.flatnonzero(copeland == copeland.max())
    if family in ("btl", "thurstone"):
        # A total order by utility: strong stochastic transitivity along it.
        order = np.argsort(-p.sum(axis=1))
        ranked = p[np.ix_(order, order)]
        assert np.all(ranked[np.triu_indices(n_arms, 1)] >= 0.5)
        assert np.all(np.diff(ranked, axis=1)[np.triu_indices(n_arms - 1)] >= -1e-12)
        assert winner == order[0]
    elif family == "random-condorcet":
        assert winner is not None
        assert np.all(np.delete(p[winner], winner) >= 0.5 + margin - 1e-12)
    elif family == "cyclic":
        assert winner is None
        assert p[0, 1] > 0.5 and p[1, 2] > 0.5 and p[2, 0] > 0.5  # the top cycle
        assert set(top) == {0, 1, 2}
        decided = np.abs(p - 0.5)[~np.eye(n_arms, dtype=bool)]
        assert np.all(decided >= margin - 1e-12)
    else:  # copeland
        assert winner is None
        assert len(top) == 3


def test_btl_family_matches_the_formula():
    u = np.linspace(1, 0, 10)
    env = DuelingBanditVec(utilities=list(u), scale=3.0)
    expected = 1 / (1 + np.exp(-3 * (u[:, None] - u[None, :])))
    np.testing.assert_allclose(env.preference_matrix[0], expected, atol=1e-12)


def test_info_carries_regrets_and_winners():
    env = gym.make_vec(
        "feedbackgym/DuelingBandit-v0", num_envs=3, preference_matrix=ROCK_PAPER_SCISSORS
    )
    env.reset(seed=0)
    _, outcome, _, _, info = env.step(np.array([[0, 0], [0, 1], [1, 2]]))
    assert set(np.unique(outcome)) <= {0.0, 1.0}
    assert np.all(info["condorcet_winner"] == -1)
    assert "regret_average" not in info
    # Copeland: every arm beats exactly one other; Borda scores 0.55, 0.55, 0.4.
    np.testing.assert_allclose(info["regret_copeland"], 0.0)
    np.testing.assert_allclose(info["regret_borda"], [0.0, 0.0, 0.075])
    assert info["copeland_winners"].all()
    np.testing.assert_allclose(borda_scores(np.array(ROCK_PAPER_SCISSORS)), [0.55, 0.55, 0.4])


def test_condorcet_regrets_follow_the_definitions():
    p = [[0.5, 0.6, 0.9], [0.4, 0.5, 0.7], [0.1, 0.3, 0.5]]
    env = gym.make_vec("feedbackgym/DuelingBandit-v0", num_envs=2, preference_matrix=p)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([[1, 2], [0, 0]]))
    np.testing.assert_allclose(info["regret_average"], [0.25, 0.0])
    np.testing.assert_allclose(info["regret_strong"], [0.4, 0.0])
    np.testing.assert_allclose(info["regret_weak"], [0.1, 0.0])
    np.testing.assert_allclose(info["regret_copeland"], [0.75, 0.0])
    assert list(info["condorcet_winner"]) == [0, 0]


def test_arm_regrets_are_what_the_duels_regrets_combine():
    p = [[0.5, 0.6, 0.9], [0.4, 0.5, 0.7], [0.1, 0.3, 0.5]]
    env = gym.make_vec("feedbackgym/DuelingBandit-v0", num_envs=1, preference_matrix=p)
    env.reset(seed=0)
    vec = env.unwrapped
    np.testing.assert_allclose(vec.arm_regrets("average")[0], [0.0, 0.1, 0.4])
    np.testing.assert_allclose(vec.arm_regrets("copeland")[0], [0.0, 0.5, 1.0])
    _, _, _, _, info = env.step(np.array([[1, 2]]))
    assert info["regret_average"][0] == pytest.approx(vec.arm_regrets("average")[0, 1:].mean())
    assert info["regret_borda"][0] == pytest.approx(vec.arm_regrets("borda")[0, 1:].mean())
    with pytest.raises(ConfigError, match="unknown regret notion 'best'; valid: average"):
        vec.arm_regrets("best")


def test_outcomes_follow_the_matrix():
    env = gym.make_vec("feedbackgym/DuelingBandit-v0", num_envs=20000, family="btl", matrix_seed=3)
    env.reset(seed=0)
    p = env.unwrapped.preference_matrix[0]
    _, outcome, _, _, _ = env.step(np.tile([1, 4], (20000, 1)))
    assert abs(outcome.mean() - p[1, 4]) < 0.015


def test_per_run_matrices_and_autoreset():
    env = gym.make_vec("feedbackgym/DuelingBandit-v0", num_envs=4, family="copeland", horizon=2)
    env.reset(seed=0)
    first = env.unwrapped.preference_matrix.copy()
    assert not np.allclose(first[0], first[1])
    for _ in range(2):
        _, _, _, truncated, _ = env.step(np.zeros((4, 2), dtype=np.int64))
    assert truncated.all()
    _, outcome, _, truncated, info = env.step(np.zeros((4, 2), dtype=np.int64))
    assert not truncated.any() and np.all(outcome == 0) and np.all(info["regret_copeland"] == 0)
    assert not np.allclose(env.unwrapped.preference_matrix, first)


def test_plackett_luce_winner_frequencies():
    u = [1.0, 0.5, 0.0]
    env = gym.make_vec(
        "feedbackgym/MultiDuelingBandit-v0", num_envs=40000, utilities=u, subset_size=3, scale=1.0
    )
    env.reset(seed=0)
    winner_slot = env.step(np.tile([2, 1, 0], (40000, 1)))[1]
    w = np.exp(u)[[2, 1, 0]]
    np.testing.assert_allclose(np.bincount(winner_slot.astype(int)) / 40000, w / w.sum(), atol=0.01)
    env = gym.make_vec(
        "feedbackgym/MultiDuelingBandit-v0", num_envs=5, utilities=u, feedback="ranking"
    )
    env.reset(seed=0)
    ranking, winner, _, _, info = env.step(np.tile([0, 1, 2], (5, 1)))
    assert np.all(np.sort(ranking, axis=1) == [0, 1, 2]) and np.all(ranking[:, 0] == winner)
    np.testing.assert_allclose(info["regret_weak"], 0.0)


@pytest.mark.parametrize("feedback", ["winner", "ranking"])
def test_a_two_arm_multi_duel_reports_its_outcome_as_a_duel_does(feedback):
    # Arm 0 beats arm 1 with probability 1 - 1e-22 under both models.
    u = [1.0, 0.0]
    duel = gym.make_vec("feedbackgym/DuelingBandit-v0", num_envs=3, utilities=u, scale=50.0)
    multi = gym.make_vec(
        "feedbackgym/MultiDuelingBandit-v0",
        num_envs=3,
        utilities=u,
        scale=50.0,
        subset_size=2,
        feedback=feedback,
    )
    for env in (duel, multi):
        env.reset(seed=0)
        first_won = env.step(np.array([[0, 1], [0, 1], [0, 0]]))[1]
        second_won = env.step(np.array([[1, 0], [1, 0], [1, 0]]))[1]
        np.testing.assert_array_equal(second_won, 0.0)
        np.testing.assert_array_equal(first_won[:2], 1.0)
    # The observation still gives positions in the action: the winner's, or all best first.
    obs = multi.step(np.array([[1, 0], [1, 0], [1, 0]]))[0]
    np.testing.assert_array_equal(obs, [[1, 0]] * 3 if feedback == "ranking" else [1, 1, 1])


def test_contextual_env_regret_is_zero_for_the_best_pair():
    env = gym.make_vec("feedbackgym/ContextualDuelingBandit-v0", num_envs=6, n_arms=5, dim=3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (6, 5, 3)
    base = env.unwrapped
    best = np.einsum("nkd,nd->nk", base.contexts.astype(np.float64), base.theta).argmax(axis=1)
    _, _, _, _, info = env.step(np.stack([best, best], axis=1))
    for metric in ("average", "strong", "weak", "utility"):
        np.testing.assert_allclose(info[f"regret_{metric}"], 0.0, atol=1e-12)
    _, _, _, _, info = env.step(np.zeros((6, 2), dtype=np.int64))
    assert np.all(info["regret_strong"] >= info["regret_weak"])


@pytest.mark.parametrize(("env_id", "kwargs"), SINGLE_IDS)
def test_single_run_envs_pass_the_checkers(env_id, kwargs):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    gym_check_env(gym.make(env_id, **kwargs).unwrapped, skip_render_check=True)
    sb3_check_env(gym.make(env_id, **kwargs), warn=False)


def test_bad_actions_are_refused():
    env = gym.make_vec("feedbackgym/DuelingBandit-v0", num_envs=2)
    env.reset(seed=0)
    with pytest.raises(ConfigError, match="arm indices in"):
        env.step(np.array([[0, 10], [1, 2]]))
    with pytest.raises(ConfigError, match="2 arm indices per run"):
        env.step(np.array([0, 1]))


def test_metric_without_condorcet_winner_says_which_apply():
    env = DuelingBanditVec(family="cyclic")
    with pytest.raises(ConfigError, match="needs a Condorcet winner.*metrics that apply: copeland"):
        env.check_metric("average")
    env.check_metric("borda")


@pytest.mark.parametrize(
    ("env_kwargs", "extra", "message"),
    [
        ('{"preference_matrix": [[0.5, 0.7], [0.2, 0.5]]}', [], "must be 1"),
        ('{"family": "circular"}', [], "unknown family 'circular'; valid: btl"),
        ('{"family": "cyclic"}', ["--metric", "strong"], "metrics that apply: copeland, borda"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, env_kwargs, extra, message):
    argv = [
        "regret",
        "--env",
        "feedbackgym/DuelingBandit-v0",
        "--env-kwargs",
        env_kwargs,
        "--agents",
        "ccb",
        "--horizon",
        "10",
        "--runs",
        "2",
        "--out",
        str(tmp_path / "out"),
        "--no-progress",
        *extra,
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
