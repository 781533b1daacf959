"""lang-ts: learns the best arm from words far faster than Thompson sampling from rewards."""

from __future__ import annotations

import csv
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from feedbackgym.agents import AGENTS, BanditAgent, LanguageThompsonSampling, make_agent
from feedbackgym.agents.bandits import language as lb
from feedbackgym.errors import ConfigError

ENV_ID = "feedbackgym/LanguageBandit-v0"
RUNS, STEPS = 50, 300
CHECKPOINTS = [1, 10, 150, 300]


def study(name: str, teacher_kwargs: dict[str, Any] | None = None, **params: Any) -> np.ndarray:
    """Cumulative regret (runs x CHECKPOINTS) of ``name`` on the same instances (seed 3)."""
    env = gym.make_vec(ENV_ID, num_envs=RUNS, horizon=STEPS, teacher_kwargs=teacher_kwargs)
    agent = make_agent(name, env, seed=0, **params)
    return agent.learn(env, STEPS, checkpoints=CHECKPOINTS, seed=3)


def test_regret_with_corrections_is_far_below_thompson_and_sublinear():
    words = study("lang-ts").mean(axis=0)
    rewards = study("thompson").mean(axis=0)
    assert words[-1] < rewards[-1] / 5
    # Sublinear: the second half of the run adds almost nothing (the best arm is found).
    assert words[3] - words[2] < 0.05 * words[2]
    assert rewards[3] - rewards[2] > words[3] - words[2]


def test_a_noisy_vague_teacher_still_beats_rewards_alone():
    teacher = {"wrong_direction": 0.1, "vagueness": 0.2}
    words = study("lang-ts", teacher, wrong_direction=0.1).mean(axis=0)
    rewards = study("thompson", teacher).mean(axis=0)
    assert words[-1] < rewards[-1] / 3


def test_the_table_and_the_direct_likelihood_agree(monkeypatch):
    tabled = study("lang-ts", {"wrong_direction": 0.1})
    monkeypatch.setattr(lb, "TABLE_MAX", 0)
    direct = study("lang-ts", {"wrong_direction": 0.1})
    np.testing.assert_allclose(tabled, direct)


def _agent_and_features(n_runs: int = 4) -> tuple[LanguageThompsonSampling, np.ndarray]:
    env = gym.make_vec(ENV_ID, num_envs=n_runs, n_arms=5)
    obs, _ = env.reset(seed=0)
    return make_agent("lang-ts", env, seed=0), obs


def test_unusable_sentences_are_counted_and_ignored():
    agent, obs = _agent_and_features()
    actions = np.zeros(4, dtype=np.int64)
    said = ["", "The weather is lovely today.", None, "You went too far left."]
    agent.update(actions, np.zeros(4), obs, feedback=said)
    assert agent.unusable == 3 and agent.heard == 4
    np.testing.assert_array_equal(agent.log_belief[:3], 0.0)
    assert np.ptp(agent.log_belief[3]) > 0
    agent.update(actions, np.zeros(4), obs, feedback=[{"step": 0}] * 4)  # not text at all
    assert agent.unusable == 7
    assert agent.predict(obs).shape == (4,)


def test_a_teacher_speaking_off_topic_does_not_crash_the_study(monkeypatch):
    from feedbackgym.feedback.language_bandit import LanguageBanditVec

    step = LanguageBanditVec.step

    def off_topic(self, actions):
        obs, rewards, terminated, truncated, info = step(self, actions)
        info["feedback"] = ["Lovely weather."] * self.num_envs
        return obs, rewards, terminated, truncated, info

    monkeypatch.setattr(LanguageBanditVec, "step", off_topic)
    env = gym.make_vec(ENV_ID, num_envs=8, horizon=20)
    agent = make_agent("lang-ts", env, seed=0)
    agent.learn(env, 20, seed=0)
    assert agent.unusable == agent.heard == 160


def test_belief_moves_towards_the_named_direction():
    agent, obs = _agent_and_features(1)
    x = obs[0].astype(np.float64)
    pulled = int(np.argmin(x[:, 0]))  # the leftmost arm
    agent.update(np.array([pulled]), np.zeros(1), obs, feedback=["Next time, move more right."])
    belief = agent.belief[0]
    further_right = x[:, 0] > x[pulled, 0] + agent.tolerance
    assert belief[further_right].sum() > 0.9 and belief[pulled] < 1 / 5  # 1 / 5: the prior


def test_new_features_start_the_run_over():
    agent, obs = _agent_and_features(2)
    agent.update(np.zeros(2, dtype=np.int64), np.zeros(2), obs, feedback=["Too far left."] * 2)
    moved = obs.copy()
    moved[1] = -moved[1]
    agent.update(np.zeros(2, dtype=np.int64), np.zeros(2), moved, feedback=[None, None])
    assert np.ptp(agent.log_belief[0]) > 0 and np.all(agent.log_belief[1] == 0)


def test_learn_passes_the_feedback_and_nothing_else_of_info():
    seen: list[Any] = []

    class Listener(BanditAgent):
        feedback_type = "correction"

        def predict(self, obs=None):
            return np.zeros(self.n_runs, dtype=np.int64)

        def update(self, actions, rewards, obs=None, feedback=None):
            seen.append(feedback)

    env = gym.make_vec(ENV_ID, num_envs=3, horizon=5)
    Listener.from_env(env).learn(env, 5, seed=0)
    assert len(seen) == 5 and all(len(f) == 3 and all(isinstance(s, str) for s in f) for f in seen)


def test_reward_agents_act_on_the_language_bandit_but_lang_ts_needs_words():
    env = gym.make_vec(ENV_ID, num_envs=2)
    for name in ("thompson", "ucb1", "kl-ucb"):
        assert make_agent(name, env).feedback_type == "reward"
    with pytest.raises(
        ConfigError, match="learns from correction feedback but the env gives reward"
    ):
        make_agent("lang-ts", gym.make_vec("feedbackgym/BernoulliBandit-v0", num_envs=2))
    with pytest.raises(ConfigError, match="learns from duel feedback"):
        make_agent("rucb", env)
    assert AGENTS.get("lang-ts") is LanguageThompsonSampling


def test_the_teachers_thresholds_are_read_from_the_env():
    env = gym.make_vec(ENV_ID, num_envs=1, min_separation=0.3, teacher_kwargs={"large": 0.8})
    agent = make_agent("lang-ts", env)
    assert agent.tolerance == pytest.approx(0.15) and agent.large == 0.8


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"wrong_direction": 0.5}, "wrong_direction must be in [0, 0.5)"),
        ({"floor": 0}, "floor must be in (0, inf)"),
        ({"encoder": 3}, "encoder must be an encoder name"),
        ({"encoder": "bert"}, "unknown encoder 'bert'"),
        ({"axis_names": [["left"]]}, "axis_names must be a list of (negative, positive)"),
    ],
)
def test_bad_parameters_are_one_line(params, message):
    with pytest.raises(ConfigError) as err:
        LanguageThompsonSampling(5, **params)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_feedback_is_refused():
    agent, obs = _agent_and_features()
    with pytest.raises(ConfigError, match="learns from corrections in info"):
        agent.update(np.zeros(4, dtype=np.int64), np.zeros(4), obs)


def test_regret_study_through_the_cli(cli, tmp_path):
    code, out, err = cli(
        "regret",
        "--env", ENV_ID,
        "--agents", "lang-ts,thompson",
        "--agent-kwargs", '{"lang-ts": {"wrong_direction": 0.1}}',
        "--env-kwargs", '{"n_arms": 10, "teacher_kwargs": {"vagueness": 0.2}}',
        "--horizon", "200",
        "--runs", "10",
        "--no-progress",
        "--out", tmp_path / "study",
    )  # fmt: skip
    assert code == 0, err
    with open(tmp_path / "study" / "summary.csv") as f:
        rows = {row["agent"]: float(row["final_regret_mean"]) for row in csv.DictReader(f)}
    assert rows["lang-ts"] < rows["thompson"] / 3
