"""Learners from preferences: query pools and schedules, label counting, relabelling, resume."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

from feedbackgym.agents.learners import LEARNERS
from feedbackgym.agents.learners.preference import (
    LearnedRewardVecEnv,
    PrefPPO,
    PrefSAC,
    TruePPO,
)
from feedbackgym.agents.learners.queries import SegmentPool, label_schedule, select_queries
from feedbackgym.errors import ConfigError
from feedbackgym.feedback import (
    Budget,
    Comparisons,
    OracleTeacher,
    PlackettLuceTeacher,
    RewardModel,
    SkipTeacher,
    TamerTeacher,
)

PPO_KWARGS = {"n_steps": 64, "batch_size": 64, "n_epochs": 2}
SAC_KWARGS = {"learning_starts": 100, "batch_size": 64}


def pendulum(n_envs: int = 2):
    return make_vec_env("Pendulum-v1", n_envs=n_envs, seed=0)


def pref_ppo(teacher=None, labels: int = 30, **kwargs) -> PrefPPO:
    options = {
        "segment_length": 10,
        "reward_epochs": 5,
        "algo_kwargs": PPO_KWARGS,
        "device": "cpu",
        **kwargs,
    }
    return PrefPPO(pendulum(), teacher=teacher or OracleTeacher(rng=0), labels=labels, **options)


def pref_sac(labels: int = 30, **kwargs) -> PrefSAC:
    options = {
        "segment_length": 10,
        "reward_epochs": 5,
        "update_every": 200,
        "algo_kwargs": SAC_KWARGS,
        "device": "cpu",
        **kwargs,
    }
    return PrefSAC(pendulum(), teacher=OracleTeacher(rng=0), labels=labels, **options)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """xdist runs a worker per core already; torch's thread pool on top only contends."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class StopAt(BaseCallback):
    """Stops SB3's learn() at ``timesteps`` (what a killed run leaves behind)."""

    def __init__(self, timesteps: int) -> None:
        super().__init__()
        self.stop = timesteps

    def _on_step(self) -> bool:
        return self.num_timesteps < self.stop


# ----- label schedules ----------------------------------------------------------------------
@given(
    labels=st.integers(1, 5000),
    rounds=st.integers(1, 60),
    schedule=st.sampled_from(["hyperbolic", "constant"]),
    initial_fraction=st.floats(0.0, 1.0),
)
def test_label_schedule_sums_exactly_to_the_labels(labels, rounds, schedule, initial_fraction):
    counts = label_schedule(labels, rounds, schedule, initial_fraction)
    assert counts.shape == (rounds,) and counts.dtype == np.int64
    assert counts.sum() == labels and (counts >= 0).all()
    if rounds > 1:
        assert counts[0] == round(labels * initial_fraction)
        rest = counts[1:]
        if schedule == "hyperbolic":
            assert (np.diff(rest) <= 0).all()  # front-loaded
        else:
            assert rest.max() - rest.min() <= 1  # even


def test_hyperbolic_schedule_asks_more_early_than_late():
    counts = label_schedule(1000, 20, "hyperbolic", 0.25)
    assert counts[0] == 250 and counts[1] > 1.5 * counts[-1]
    assert label_schedule(7, 1).tolist() == [7]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 5), "labels must be a positive integer, got 0"),
        ((10, 0), "rounds must be a positive integer, got 0"),
        ((10, 5, "linear"), "schedule must be one of 'hyperbolic', 'constant', got 'linear'"),
        ((10, 5, "constant", 1.5), "initial_fraction must be in [0, 1], got 1.5"),
    ],
)
def test_bad_schedules_are_one_line_errors(args, message):
    with pytest.raises(ConfigError) as err:
        label_schedule(*args)
    assert message in str(err.value)


# ----- the segment pool and query selection -------------------------------------------------
def filled_pool(steps: int, n_envs: int = 3, capacity: int = 8) -> SegmentPool:
    """Step t of env e has observation 100 t + e, action -t and reward t."""
    pool = SegmentPool(n_envs, capacity)
    for t in range(steps):
        obs = 100.0 * t + np.arange(n_envs, dtype=np.float64)
        pool.add(obs[:, None], np.full((n_envs, 1), -t), np.full(n_envs, float(t)))
    return pool


def test_segments_are_consecutive_steps_of_one_env_across_the_ring_buffer():
    pool = filled_pool(steps=13)  # 13 steps in a ring of 8: steps 5..12 are kept
    segments = pool.sample(200, 4, np.random.default_rng(0))
    steps = segments.rewards  # the step index t
    assert steps.shape == (200, 4)
    assert (np.diff(steps, axis=1) == 1).all()
    assert steps.min() == 5 and steps.max() == 12
    env = segments.obs[..., 0] - 100 * steps
    assert (env == env[:, :1]).all() and set(env[:, 0]) == {0, 1, 2}
    np.testing.assert_array_equal(segments.actions[..., 0], -steps)
    obs, actions = pool.steps()
    assert obs.shape == (8 * 3, 1) and actions.shape == (8 * 3, 1)


def test_collect_fills_the_pool_with_seeded_random_experience():
    first, second = SegmentPool(2, 30), SegmentPool(2, 30)
    first.collect(pendulum(), 30, seed=3)
    second.collect(pendulum(), 30, seed=3)
    assert first.filled == 30
    np.testing.assert_array_equal(first.actions, second.actions)
    np.testing.assert_array_equal(first.obs, second.obs)
    assert np.abs(first.actions).max() <= 2.0 and first.actions.std() > 0.5  # the whole box
    # the stored reward is the env's reward of each action in the observation stored with it
    env = pendulum()
    obs = env.reset()
    np.testing.assert_array_equal(first.obs[0], obs)
    env.step(first.actions[0])
    _, rewards, _, _ = env.step(first.actions[1])
    np.testing.assert_allclose(first.rewards[1], rewards)


def test_a_segment_longer_than_the_pool_is_a_one_line_error():
    with pytest.raises(ConfigError, match="segment_length=5 is longer than the 4 steps"):
        filled_pool(steps=4).sample(1, 5, np.random.default_rng(0))


def test_active_queries_pick_what_the_ensemble_is_unsure_about():
    pool = filled_pool(steps=50, capacity=50)
    rng = np.random.default_rng(1)
    data = Comparisons()
    a, b = pool.sample(100, 5, rng), pool.sample(100, 5, rng)
    data.add_pairs(a, b, OracleTeacher(rng=0).prefer(a, b))
    model = RewardModel(members=5, hidden=16, device="cpu", seed=0)
    # Before the first fit every strategy draws uniformly.
    unfitted = RewardModel(device="cpu")
    assert len(select_queries(pool, 7, 2, 5, "disagreement", unfitted, rng)[0]) == 7
    model.fit(data, epochs=5)

    def spread(groups):
        p = model.probabilities(groups[0], groups[1])
        return p.std(axis=0).mean()

    uniform = select_queries(pool, 20, 2, 5, "uniform", model, np.random.default_rng(2))
    active = select_queries(pool, 20, 2, 5, "disagreement", model, np.random.default_rng(2))
    assert len(active) == 2 and len(active[0]) == 20
    assert spread(active) > spread(uniform)
    ranked = select_queries(pool, 6, 4, 5, "entropy", model, np.random.default_rng(3))
    assert len(ranked) == 4 and all(len(g) == 6 for g in ranked)


def test_the_agent_sees_the_learned_reward_and_evaluation_the_true_one():
    venv = LearnedRewardVecEnv(pendulum(), SegmentPool(2, 10), lambda o, a, n: np.full(2, 7.0))
    venv.reset()
    _, rewards, _, infos = venv.step(np.zeros((2, 1), dtype=np.float32))
    assert rewards.tolist() == [7.0, 7.0]
    true = [info["true_reward"] for info in infos]
    assert all(r < 0 for r in true)  # Pendulum's reward is a cost
    np.testing.assert_allclose(venv.pool.rewards[0], true)


# ----- labels are counted exactly -----------------------------------------------------------
@pytest.mark.parametrize("update_every", [None, 32])
def test_labels_are_counted_exactly(update_every):
    """Every label is asked by the end, also when rounds fall due faster than rollouts end."""
    teacher = OracleTeacher(rng=0)
    learner = pref_ppo(teacher, labels=37, update_every=update_every).learn(512)
    assert learner.labels_used == teacher.queries == learner.round_labels.sum() == 37
    assert learner.answered == learner.comparisons.n_pairs == 37
    assert learner.round == len(learner.round_times)


def test_skipped_answers_count_as_labels_but_are_not_fitted():
    teacher = SkipTeacher(skip_threshold=-8.0, rng=0)  # skips when both 10 steps cost > 8
    learner = pref_ppo(teacher, labels=30).learn(512)
    assert learner.labels_used == teacher.queries == 30
    assert learner.answered == teacher.answered == learner.comparisons.n_pairs < 30
    assert not np.isnan(learner.comparisons.arrays()["labels"]).any()


def test_a_budget_teacher_is_never_exceeded():
    refusing = Budget(OracleTeacher(rng=0), max_queries=12, on_exhausted="refuse")
    learner = pref_ppo(refusing, labels=30).learn(512)
    assert refusing.used == learner.answered == learner.comparisons.n_pairs == 12
    exact = Budget(OracleTeacher(rng=0), max_queries=30)  # raises if asked once more
    learner = pref_ppo(exact, labels=30).learn(512)
    assert exact.used == exact.max_queries == learner.labels_used == 30


def test_a_ranking_teacher_ranks_queries_of_ranking_size_segments():
    teacher = PlackettLuceTeacher(rng=0)
    learner = pref_ppo(teacher, labels=20, ranking_size=3).learn(512)
    assert learner.verb == "rank"
    assert learner.labels_used == teacher.queries == learner.comparisons.n_rankings == 20
    assert learner.comparisons.arrays()["orders"].shape == (20, 3)
    assert learner.reward_model.fitted


# ----- pref-SAC: relabelling and pre-training -----------------------------------------------
def buffer_and_model_rewards(learner: PrefSAC) -> tuple[np.ndarray, np.ndarray]:
    buffer = learner.model.replay_buffer
    upto = buffer.pos
    obs = buffer.observations[:upto].reshape(upto * buffer.n_envs, -1)
    actions = learner.model.policy.unscale_action(
        buffer.actions[:upto].reshape(upto * buffer.n_envs, -1)
    )
    model = learner.reward_model.reward(obs, actions).reshape(upto, buffer.n_envs)
    return buffer.rewards[:upto], model


def test_relabelling_replaces_every_reward_in_the_sac_buffer_with_the_models():
    learner = pref_sac(labels=30).learn(1000)
    assert learner.round >= 3 and learner.labels_used == 30
    stored, model = buffer_and_model_rewards(learner)
    # The buffer holds steps from before the first round (when the reward was 0), and from
    # the very steps at which rounds ran: all now carry the last model's reward.
    assert learner.model.replay_buffer.pos * 2 > learner.round_times[0]
    np.testing.assert_allclose(stored, model, atol=1e-5)
    assert np.abs(stored).max() > 0.1


def test_state_entropy_pretraining_rewards_reaching_new_states():
    learner = pref_sac(labels=10, update_every=100, unsupervised_steps=300)
    near = learner._state_entropy(np.zeros((1, 3)), np.random.default_rng(0).normal(size=(50, 3)))
    far = learner._state_entropy(
        np.full((1, 3), 5.0), np.random.default_rng(0).normal(size=(50, 3))
    )
    assert far[0] > near[0] > 0
    seen = {}
    first_round = learner.feedback_round

    def snapshot():
        if not seen:
            seen["rewards"] = learner.model.replay_buffer.rewards[: 300 // 2 - 1].copy()
        return first_round()

    learner.feedback_round = snapshot
    learner.learn(400)
    # Before the first labels the buffer holds the standardised entropy reward.
    pretraining = seen["rewards"]
    assert abs(pretraining.mean()) < 0.1 and abs(pretraining.std() - 1.0) < 0.1
    assert learner.round_times[0] == 300


# ----- SB3's verbs and resume -----------------------------------------------------------------
def test_learn_predict_save_and_load_state(tmp_path):
    learner = pref_ppo(labels=20).learn(512)
    obs = learner.env.reset()
    actions, _ = learner.predict(obs)
    assert actions.shape == (2, 1) and learner.num_timesteps == 512
    learner.save(tmp_path / "run")
    assert {p.name for p in (tmp_path / "run").iterdir()} == {
        "model.zip",
        "reward_model.pt",
        "learner.pkl",
    }
    # model.zip is a plain SB3 model.
    np.testing.assert_allclose(
        PPO.load(tmp_path / "run" / "model.zip").predict(obs, deterministic=True)[0], actions
    )
    again = pref_ppo(labels=20).load_state(tmp_path / "run")
    np.testing.assert_allclose(again.predict(obs)[0], actions)
    assert (again.num_timesteps, again.labels_used) == (512, 20)
    with pytest.raises(ConfigError, match="holds a PrefPPO, not a PrefSAC"):
        pref_sac().load_state(tmp_path / "run")


def test_resume_continues_steps_labels_and_replay_buffer(tmp_path):
    first = pref_sac(labels=30)
    first.learn(1000, callback=StopAt(600))
    assert first.num_timesteps == 600 and 0 < first.labels_used < 30
    first.save(tmp_path / "checkpoint")

    resumed = pref_sac(labels=30).load_state(tmp_path / "checkpoint")
    assert resumed.num_timesteps == 600
    assert (resumed.labels_used, resumed.round) == (first.labels_used, first.round)
    assert resumed.comparisons.n_pairs == first.comparisons.n_pairs
    old, new = first.model.replay_buffer, resumed.model.replay_buffer
    assert new.pos == old.pos > 0
    np.testing.assert_array_equal(new.observations[: old.pos], old.observations[: old.pos])
    np.testing.assert_array_equal(new.rewards[: old.pos], old.rewards[: old.pos])
    np.testing.assert_array_equal(resumed.pool.obs, first.pool.obs)
    obs = np.zeros((4, 3), dtype=np.float32)
    np.testing.assert_array_equal(
        resumed.reward_model.reward(obs, np.zeros((4, 1))),
        first.reward_model.reward(obs, np.zeros((4, 1))),
    )

    resumed.learn(1000)
    assert resumed.num_timesteps == 1000 and resumed.labels_used == 30
    assert resumed.model.replay_buffer.pos > old.pos


# ----- bad input ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: pref_ppo(labels=0), "labels must be a positive integer, got 0"),
        (
            lambda: pref_ppo(TamerTeacher(rng=0)),
            "algo 'pref-ppo' learns from preferences or rankings but was given a score teacher",
        ),
        (lambda: pref_ppo(query="random"), "query must be one of 'uniform'"),
        (lambda: pref_ppo(ranking_size=1), "ranking_size must be >= 2, got 1"),
        (lambda: pref_ppo(device="tpu"), "device must be auto, cpu or cuda, got 'tpu'"),
        (
            lambda: TruePPO(pendulum(), teacher=OracleTeacher(rng=0)),
            "algo 'ppo' learns from the true reward: it takes no teacher or labels",
        ),
        (
            lambda: PrefSAC(make_vec_env("CartPole-v1"), OracleTeacher(rng=0), labels=5),
            "algo 'pref-sac' needs a continuous (Box) action space, got Discrete(2)",
        ),
        (lambda: pref_ppo().learn(100), "timesteps=100 ends before the first feedback round"),
        (lambda: pref_sac(unsupervised_steps=-1), "unsupervised_steps must be >= 0, got -1"),
    ],
)
def test_bad_input_is_a_one_line_config_error(build, message):
    with pytest.raises(ConfigError) as err:
        build()
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_registry_holds_the_four_learners():
    assert set(LEARNERS.names()) >= {"pref-ppo", "pref-sac", "ppo", "sac"}
    assert LEARNERS.get("pref-sac") is PrefSAC and not LEARNERS.get("sac").uses_feedback


# ----- discrete observations ----------------------------------------------------------------
def gridworld(n_envs: int = 2):
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([lambda: gymnasium.make("feedbackgym/GridWorld-v0")] * n_envs)
    venv.seed(0)
    return venv


def test_one_hot_widths_come_from_the_envs_discrete_spaces():
    """GridWorld's 25 states and 4 moves: the widths are the spaces', not read from the first
    labels (which would give the highest state labelled + 1 and alias the states above)."""
    learner = PrefPPO(
        gridworld(),
        OracleTeacher(rng=0),
        labels=10,
        algo_kwargs=PPO_KWARGS,
        device="cpu",
        segment_length=5,
    )
    assert learner.reward_model.one_hot == {"obs": 25, "actions": 4}
    learner.learn(256)
    assert learner.reward_model.fitted and learner.reward_model.one_hot == {"obs": 25, "actions": 4}
    states = np.arange(25)
    rewards = learner.reward_model.reward(states, states % 4)
    assert np.isfinite(rewards).all() and np.abs(rewards).max() < 100
    with pytest.raises(
        ConfigError, match=r"reward_model n_obs=20 does not match the env's Discrete\(25\)"
    ):
        PrefPPO(gridworld(), OracleTeacher(rng=0), labels=10, reward_model={"n_obs": 20})
