"""Delayed rewards (episode-end, lagged) and the learners that redistribute returns (RRD)."""

from __future__ import annotations

import json

import gymnasium
import numpy as np
import pytest

from feedbackgym.agents.learners.redistribution import (
    RRDPPO,
    Episode,
    ReturnDecomposition,
)
from feedbackgym.errors import ConfigError
from feedbackgym.feedback.delayed_rewards import (
    EpisodeEndReward,
    LaggedReward,
    parse_reward_delay,
    wrap_reward_delay,
)
from feedbackgym.studies.train import Evaluator, TrainConfig, make_env, train
from tests.conftest import interrupt_at_evaluation

pytestmark = pytest.mark.usefixtures("restore_torch_threads")

LAGS = [
    "lag:fixed:0",
    "lag:fixed:5",
    "lag:fixed:100",  # longer than the episode: all at its end
    "lag:geometric:0.1",
    "lag:uniform:0:20",
    "lag:uniform:low=2:high=3",
    "lag:batched:7",
    "lag:episode-end",
]


def play(env, episodes: int = 3, seed: int = 0):
    """(delivered, true, arrivals) per episode under random actions."""
    out = []
    env.action_space.seed(seed)
    for k in range(episodes):
        env.reset(seed=seed + k)
        delivered, true, arrivals = [], [], []
        done = False
        while not done:
            _, reward, terminated, truncated, info = env.step(env.action_space.sample())
            delivered.append(reward)
            true.append(info["true_reward"])
            arrivals.append(info.get("reward_arrivals", 0))
            done = terminated or truncated
        out.append((np.array(delivered), np.array(true), np.array(arrivals)))
    return out


def pendulum(steps: int = 30):
    return gymnasium.make("Pendulum-v1", max_episode_steps=steps)


# ----- the wrappers -------------------------------------------------------------------------
def test_episode_end_reward_delivers_the_return_at_the_last_step_only():
    for delivered, true, _ in play(EpisodeEndReward(pendulum())):
        assert len(delivered) == 30
        assert np.all(delivered[:-1] == 0.0)
        assert delivered[-1] == pytest.approx(true.sum(), rel=1e-12)
        assert np.all(true < 0)  # the true step rewards are kept for evaluation


@pytest.mark.parametrize("spec", LAGS)
def test_lagged_rewards_keep_each_episode_sum_and_arrive_exactly_once(spec):
    for delivered, true, arrivals in play(wrap_reward_delay(pendulum(), spec, seed=3)):
        assert delivered.sum() == pytest.approx(true.sum(), rel=1e-12)
        assert arrivals.sum() == len(true)  # every step's reward, once, in its own episode


def test_a_fixed_lag_shifts_rewards_by_its_steps():
    delivered, true, _ = play(LaggedReward(pendulum(), "fixed"), episodes=1)[0]  # delay 1
    assert delivered[0] == 0.0
    np.testing.assert_allclose(delivered[1:-1], true[:-2])
    assert delivered[-1] == pytest.approx(true[-2] + true[-1])
    delivered, true, _ = play(wrap_reward_delay(pendulum(), "lag:fixed:5"), episodes=1)[0]
    np.testing.assert_allclose(delivered[5:-1], true[:-6])
    assert np.all(delivered[:5] == 0.0)


def test_random_lags_repeat_with_the_reset_seed():
    a = play(wrap_reward_delay(pendulum(), "lag:geometric:0.2", seed=1), seed=7)
    b = play(wrap_reward_delay(pendulum(), "lag:geometric:0.2", seed=2), seed=7)
    for (da, _, _), (db, _, _) in zip(a, b, strict=True):
        np.testing.assert_array_equal(da, db)
    assert not np.array_equal(a[0][0], a[0][1])  # the rewards really moved


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "end",
        "lag",
        "lag:nope",
        "lag:fixed:-1",
        "lag:geometric:x",
        "lag:geometric:2",
        "lag:fixed:1:2",
        "lag:fixed:steps=3",
        "episode-end:3",
    ],
)
def test_bad_reward_delay_specs_are_one_line_config_errors(spec):
    with pytest.raises(ConfigError) as err:
        parse_reward_delay(spec)
    assert "\n" not in str(err.value) and "reward_delay" in str(err.value)


# ----- the run config -----------------------------------------------------------------------
def tiny(**overrides) -> TrainConfig:
    options = {
        "env": "Pendulum-v1",
        "algo": "rrd-ppo",
        "timesteps": 1024,
        "n_envs": 2,
        "device": "cpu",
        "reward_delay": "episode-end",
        "algo_kwargs": {"n_steps": 128, "batch_size": 64, "n_epochs": 2},
        "learner_kwargs": {"fit_steps": 20, "initial_fit_steps": 50},
        "eval_every": 512,
        "progress": False,
    }
    options.update(overrides)
    return TrainConfig.from_dict(options)


def test_a_bad_reward_delay_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError) as err:
        tiny(reward_delay="lag:sometimes")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="must be a string"):
        tiny(reward_delay=3)
    config = tiny()
    config.reward_delay = "lag:fixed:-2"  # built without from_dict's checks
    with pytest.raises(ConfigError) as err:
        train(config, tmp_path / "run")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


def test_training_envs_are_delayed_and_evaluation_scores_the_true_reward():
    venv = make_env(tiny(), 2, seed=0)
    venv.reset()
    rewards = [venv.step(np.zeros((2, 1)))[1] for _ in range(200)]
    assert np.all(np.array(rewards[:-1]) == 0.0) and np.all(rewards[-1] < 0)

    class Still:
        def predict(self, obs, deterministic=True):
            return np.zeros((len(obs), 1)), None

    delayed = Evaluator(tiny(), 20)(Still())
    dense = Evaluator(tiny(reward_delay=None), 20)(Still())
    assert delayed["true_return_mean"] == pytest.approx(dense["true_return_mean"])


# ----- the return decomposition ---------------------------------------------------------------
def synthetic_episodes(n: int, rng: np.random.Generator) -> list[Episode]:
    """Episodes of 40-60 steps whose step reward is ``-obs[0]^2 + action``; delivered at the end."""
    out = []
    for _ in range(n):
        length = int(rng.integers(40, 61))
        obs = rng.normal(size=(length, 2)).astype(np.float32)
        actions = rng.uniform(-1, 1, size=(length, 1)).astype(np.float32)
        true = -(obs[:, 0] ** 2) + actions[:, 0]
        delayed = np.zeros(length)
        delayed[-1] = true.sum()
        out.append(Episode(obs, actions, delayed))
    return out


def test_redistributed_rewards_sum_to_each_episodes_return():
    rng = np.random.default_rng(0)
    episodes = synthetic_episodes(200, rng)
    model = ReturnDecomposition(members=1, hidden=32, lr=1e-2, device="cpu", seed=0, threads=1)
    metrics = model.fit_episodes(episodes, steps=300, subset_size=32, batch_episodes=32)
    returns = np.array([e.ret for e in episodes])
    sums = np.array([model.reward(e.obs, e.actions, normalise=False).sum() for e in episodes])
    # The learned rewards alone sum to within 10% of the returns on average (7% here); a
    # model that learned only the mean return is off by 19%.
    nothing = np.mean(np.abs(returns - returns.mean())) / np.mean(np.abs(returns))
    assert nothing > 0.15
    assert np.mean(np.abs(sums - returns)) / np.mean(np.abs(returns)) < 0.1
    assert metrics["return_error"] == pytest.approx(
        np.mean(np.abs(sums - returns)) / np.mean(np.abs(returns)), rel=1e-3
    )
    # redistribute() shifts them to sum to the return exactly (float rounding only).
    for e in episodes[:20]:
        assert model.redistribute(e).sum() == pytest.approx(e.ret, abs=1e-9)
    # Credit goes to the steps that earned it: the learned reward follows the true one.
    e = synthetic_episodes(1, rng)[0]
    true = -(e.obs[:, 0] ** 2) + e.actions[:, 0]
    assert np.corrcoef(model.reward(e.obs, e.actions), true)[0, 1] > 0.9


def test_rrd_ppo_trains_saves_and_resumes(tmp_path):
    summary = train(tiny(), tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["algo"] == "rrd-ppo" and summary["timesteps"] == 1024
    assert saved["episodes_seen"] == 4  # 512 steps in each of 2 envs
    assert saved["decomposition_rounds"] >= 1
    assert saved["return_error"] is not None and saved["reward_correlation"] is not None
    assert (tmp_path / "run" / "reward_model.pt").exists()

    config = tiny()
    kwargs = {**config.learner_kwargs, "algo_kwargs": config.algo_kwargs, "device": "cpu"}
    learner = RRDPPO(make_env(config, 2, 0), **kwargs)
    learner.learn(512)
    # What it fits on is what the delayed env gave: returns at the last step only.
    for e in learner.recorder.episodes:
        assert np.all(e.rewards[:-1] == 0.0) and e.rewards[-1] < 0
    learner.save(tmp_path / "ckpt")
    again = RRDPPO(make_env(config, 2, 0), **kwargs)
    again.load_state(tmp_path / "ckpt")
    assert isinstance(again.reward_model, ReturnDecomposition)
    assert again.recorder.finished == learner.recorder.finished
    assert again.num_timesteps == learner.num_timesteps
    e = learner.recorder.episodes[0]
    np.testing.assert_allclose(
        again.reward_model.reward(e.obs, e.actions), learner.reward_model.reward(e.obs, e.actions)
    )
    again.learn(768)
    assert again.num_timesteps == 768


def test_rrd_learners_take_no_teacher(tmp_path):
    with pytest.raises(ConfigError, match="takes no teacher"):
        train(tiny(teacher="oracle", labels=10), tmp_path / "run")
    with pytest.raises(ConfigError, match="subset_size"):
        train(tiny(learner_kwargs={"subset_size": 0}), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_rrd_sac_runs_on_a_lagged_reward(tmp_path):
    config = tiny(
        algo="rrd-sac",
        timesteps=600,
        reward_delay="lag:geometric:0.1",
        algo_kwargs={"learning_starts": 100, "batch_size": 64},
        learner_kwargs={"fit_steps": 10, "initial_fit_steps": 20, "update_every": 200},
        eval_every=300,
    )
    summary = train(config, tmp_path / "run")
    assert summary["algo"] == "rrd-sac" and summary["decomposition_rounds"] >= 1


def test_a_killed_rrd_run_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    config = tiny(eval_every=256, checkpoint_every=256)
    interrupt_at_evaluation(monkeypatch, 3)  # Ctrl-C at the third evaluation (768 steps)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "run")
    monkeypatch.undo()
    latest = json.loads((tmp_path / "run" / "checkpoints" / "latest.json").read_text())
    assert (tmp_path / "run" / "checkpoints" / latest["folder"] / "redistribution.pkl").exists()
    summary = train(config, tmp_path / "run")
    assert summary["timesteps"] == 1024
    assert summary["episodes_seen"] == 4 and summary["decomposition_rounds"] >= 2


@pytest.mark.parametrize(
    ("spec", "message"),
    [("lag:batched:0", "period"), ("lag:uniform:5:2", "high")],
)
def test_a_bad_delay_value_is_named_not_called_a_non_number(spec, message):
    with pytest.raises(ConfigError) as info:
        parse_reward_delay(spec)
    assert "must be numbers" not in str(info.value) and message in str(info.value)


def test_a_reward_delay_is_refused_for_learners_from_a_teacher(tmp_path):
    config = TrainConfig(
        env="Pendulum-v1", algo="pref-ppo", labels=10, timesteps=2000, reward_delay="episode-end"
    )
    with pytest.raises(ConfigError, match="learners of the env's own reward"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()
