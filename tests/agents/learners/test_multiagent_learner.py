"""Learning from a team's teacher: the team VecEnv, team/per-agent labels, the team reward
model (agent axis, MARLHF's temporal regulariser), pref-PPO on mpe2, and the CLI's checks."""

from __future__ import annotations

import json
from importlib import metadata

import numpy as np
import pytest

from feedbackgym.agents.learners.queries import TeamPool
from feedbackgym.envs.multiagent import check_versions, make_parallel_env
from feedbackgym.envs.multiagent.vector import make_team_vec_env
from feedbackgym.errors import ConfigError
from feedbackgym.feedback import Comparisons, RewardModel, make_feedback_model
from feedbackgym.studies.train import TrainConfig, make_learner, make_teacher, train
from tests.conftest import interrupt_at_evaluation

pytestmark = pytest.mark.usefixtures("restore_torch_threads")

SPREAD = "mpe2/simple_spread_v3"
PPO_KWARGS = {"n_steps": 32, "batch_size": 96, "n_epochs": 2}


def random_pool(scope: str = "team", steps: int = 120, copies: int = 4, seed: int = 0):
    """A TeamPool filled by random actions in simple_spread (3 agents)."""
    env = make_team_vec_env(SPREAD, copies, seed=seed)
    pool = TeamPool(env.num_envs, steps, env.n_agents, scope)
    pool.collect(env, steps, seed=seed)
    return env, pool


# ----- the team VecEnv ------------------------------------------------------------------------
def test_team_vec_env_is_seeded_and_reports_the_team_reward():
    first, second = make_team_vec_env(SPREAD, 2, seed=5), make_team_vec_env(SPREAD, 2, seed=5)
    assert first.num_envs == 6 and first.n_agents == 3 and first.n_copies == 2
    np.testing.assert_array_equal(first.reset(), second.reset())
    actions = np.arange(6) % 5
    for _ in range(25):
        _, rewards, dones, infos = first.step(actions)
    team = [info["team_reward"] for info in infos]
    # mpe2 gives no team reward: it is the mean of the team's agent rewards, shared by all three
    assert team[0] == team[1] == team[2] == pytest.approx(rewards[:3].mean(), rel=1e-5)
    assert dones.all() and all(info["TimeLimit.truncated"] for info in infos)  # 25 = max_cycles


def test_agents_of_different_kinds_are_padded_for_one_shared_policy():
    env = make_team_vec_env("mpe2/simple_tag_v3", 1, seed=0)
    obs = env.reset()
    assert env.n_agents == 4 and obs.shape[0] == 4  # 3 predators + 1 prey, padded alike


# ----- team and per-agent teachers -------------------------------------------------------------
def oracle(a, b) -> np.ndarray:
    """1 where a's return is larger, 0 where b's is, 0.5 on a tie."""
    diff = a.rewards.sum(1) - b.rewards.sum(1)
    return np.where(diff > 0, 1.0, np.where(diff < 0, 0.0, 0.5))


def test_team_labels_follow_the_team_return_and_per_agent_labels_the_agents_own():
    _, team_pool = random_pool("team")
    rng = np.random.default_rng(1)
    a, b = team_pool.sample(200, 10, rng), team_pool.sample(200, 10, rng)
    assert a.obs.shape == (200, 10, 3, 18) and a.actions.shape == (200, 10, 3)
    labels = make_feedback_model("team", rng=0).prefer(a, b)
    np.testing.assert_array_equal(labels, oracle(a, b))
    flipped = make_feedback_model("team", rng=0, mistake=1.0).prefer(a, b)  # B-Pref's options
    np.testing.assert_array_equal(flipped, 1.0 - labels)

    _, agent_pool = random_pool("agent")
    a, b = agent_pool.sample(200, 10, rng), agent_pool.sample(200, 10, rng)
    assert a.obs.shape == (200, 10, 1, 18)
    per_agent = make_feedback_model("per-agent", rng=0).prefer(a, b)
    np.testing.assert_array_equal(per_agent, oracle(a, b))


def test_a_team_segment_is_one_copy_of_the_team_at_the_same_steps():
    _, pool = random_pool("team", steps=30, copies=2)
    seg = pool.sample(1, 30, np.random.default_rng(0))
    copy = next(c for c in range(2) if np.array_equal(pool.team[:, c], seg.rewards[0]))
    np.testing.assert_array_equal(seg.obs[0], pool.obs[:, 3 * copy : 3 * copy + 3])


# ----- the team reward model -------------------------------------------------------------------
def fitted_model(pool, temporal_reg: float = 0.0, n: int = 300):
    rng = np.random.default_rng(2)
    teacher = make_feedback_model("team", rng=0)
    a, b = pool.sample(n, 20, rng), pool.sample(n, 20, rng)
    data = Comparisons()
    data.add_pairs(a, b, teacher.prefer(a, b))
    model = RewardModel(agent_axis=True, temporal_reg=temporal_reg, seed=0, device="cpu")
    model.fit(data, epochs=60)
    test_a, test_b = pool.sample(300, 20, rng), pool.sample(300, 20, rng)
    return model, model.accuracy(test_a, test_b, teacher.prefer(test_a, test_b))


def test_the_team_reward_model_predicts_held_out_team_preferences():
    _, pool = random_pool("team", steps=200)
    model, accuracy = fitted_model(pool)
    assert accuracy > 0.75
    obs, actions = pool.steps()
    assert model.reward(obs, actions).shape == (len(obs), 3)  # each agent's part


def test_the_temporal_regulariser_spreads_the_reward_evenly_over_steps():
    _, pool = random_pool("team", steps=200)
    seg = pool.sample(200, 20, np.random.default_rng(3))

    def roughness(model):
        steps = model.member_rewards(
            seg.obs.reshape((-1,) + seg.obs.shape[2:]),
            seg.actions.reshape((-1,) + seg.actions.shape[2:]),
        )
        steps = steps.sum(-1).reshape(model.members, 200, 20)
        return float(np.mean(np.diff(steps, axis=-1) ** 2) / np.var(steps.sum(-1)))

    plain, _ = fitted_model(pool, temporal_reg=0.0)
    smooth, accuracy = fitted_model(pool, temporal_reg=1.0)
    assert roughness(smooth) < 0.5 * roughness(plain)
    assert accuracy > 0.7  # still explains the labels


def test_an_agent_axis_model_saves_and_loads(tmp_path):
    _, pool = random_pool("team", steps=60)
    model, _ = fitted_model(pool, temporal_reg=0.5, n=50)
    model.save(tmp_path / "m.pt")
    back = RewardModel.load(tmp_path / "m.pt", device="cpu")
    obs, actions = pool.steps()
    assert back.agent_axis and back.temporal_reg == 0.5
    np.testing.assert_allclose(back.reward(obs, actions), model.reward(obs, actions), rtol=1e-5)


# ----- training runs ---------------------------------------------------------------------------
def tiny(**overrides) -> TrainConfig:
    options = {
        "env": SPREAD,
        "algo": "pref-ppo",
        "teacher": "team",
        "labels": 120,
        "query": "uniform",
        "segment_length": 10,
        "timesteps": 3072,
        "n_envs": 2,
        "device": "cpu",
        "algo_kwargs": PPO_KWARGS,
        "learner_kwargs": {"reward_model": {"temporal_reg": 0.1}},
        "eval_every": 1536,
        "progress": False,
    }
    options.update(overrides)
    return TrainConfig.from_dict(options)


def test_a_tiny_team_run_writes_the_single_agent_outputs(tmp_path):
    summary = train(tiny(), tmp_path / "run")
    assert summary["labels_used"] == 120
    assert summary["agents_per_team"] == 3 and summary["teacher_scope"] == "team"
    assert summary["eval_episodes"] == 20  # team episodes, not agent slots
    for name in ("config.yaml", "curve.csv", "curve.png", "model.zip", "reward_model.pt"):
        assert (tmp_path / "run" / name).exists()
    assert any((tmp_path / "run" / "tensorboard").iterdir())
    assert RewardModel.load(tmp_path / "run" / "reward_model.pt").agent_axis


@pytest.mark.parametrize("seed", [0, 1])
def test_a_tiny_team_run_raises_held_out_accuracy_above_chance(seed):
    config = tiny(seed=seed, labels=200, segment_length=25, learner_kwargs={"pool_steps": 512})
    learner = make_learner(config, make_teacher(config))
    learner.learn(config.timesteps)
    # fresh pairs of whole-episode team segments from the run, labelled by a fresh team oracle
    rng = np.random.default_rng(100 + seed)
    a, b = learner.pool.sample(400, 25, rng), learner.pool.sample(400, 25, rng)
    labels = make_feedback_model("team", rng=0).prefer(a, b)
    assert learner.reward_model.accuracy(a, b, labels) > 0.62  # chance: 0.5 +- 0.025


def test_team_runs_are_reproducible_and_resume(tmp_path, monkeypatch):
    config = tiny(labels=40, timesteps=2048, learner_kwargs={}, checkpoint_every=1024)
    whole = train(config, tmp_path / "whole")
    again = train(config, tmp_path / "again")
    assert whole["true_return_mean"] == again["true_return_mean"]
    with monkeypatch.context() as patch:
        interrupt_at_evaluation(patch, call=2)
        with pytest.raises(KeyboardInterrupt):
            train(config, tmp_path / "resumed")
    resumed = train(config, tmp_path / "resumed")
    assert resumed["labels_used"] == 40
    lines = (tmp_path / "resumed" / "feedback.jsonl").read_text().splitlines()
    asked = sum(len(json.loads(x)["answer"]) for x in lines if '"batch"' in x)
    assert asked == 40  # no answer lost or asked twice across the interruption


def test_true_reward_ppo_and_the_per_agent_teacher_run_on_a_team(tmp_path):
    ppo = train(tiny(algo="ppo", teacher=None, labels=0, learner_kwargs={}), tmp_path / "ppo")
    assert "teacher_scope" not in ppo and ppo["eval_episodes"] == 20
    per_agent = train(tiny(teacher="per-agent", labels=30), tmp_path / "per-agent")
    assert per_agent["teacher_scope"] == "agent" and per_agent["labels_used"] == 30


# ----- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--teacher", "oracle"], "on a multi-agent env needs a team teacher, one of: team"),
        (["--algo", "pref-sac"], "algo 'pref-sac' does not train on multi-agent envs"),
        (["--env", "Pendulum-v1", "--teacher", "team"], "team-scoped teacher judges multi-agent"),
        (["--env", "mpe2/simple_nowhere_v3"], "unknown env 'mpe2/simple_nowhere_v3'"),
        (["--env-kwargs", '{"N": 3, "nope": 1}'], "env_kwargs for mpe2/simple_spread_v3"),
        (["--reward-delay", "episode-end"], "reward_delay"),
    ],
)
def test_the_cli_rejects_env_teacher_mismatches_with_one_line(cli, tmp_path, flags, message):
    base = ["train", "--env", SPREAD, "--algo", "pref-ppo", "--teacher", "team"]
    base += ["--labels", "20", "--timesteps", "2048", "--n-envs", "2"]
    out = tmp_path / "run"
    code, _, err = cli(*base, *flags, "--out", out)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert message in err
    assert not out.exists()


TAG = "mpe2/simple_tag_v3"


def test_agents_of_different_kinds_are_marked_as_padded_and_indicated():
    assert make_team_vec_env(TAG, 1, seed=0).agent_indicator
    assert not make_team_vec_env(SPREAD, 1, seed=0).agent_indicator


def test_the_planar_symmetry_is_refused_on_a_team_of_different_kinds(cli, tmp_path):
    """simple_tag's observations end in SuperSuit's predator/prey indicator (and the prey's
    are zero-padded): turned as an (x, y) vector, it would swap the kinds in every augmented
    label. Refused in one line when the learner is built, before --out is written."""
    planar = {"reward_model": {"symmetry": "planar"}}
    message = "symmetry 'planar' cannot map this team's observations: its agents are of"
    with pytest.raises(ConfigError, match=message):
        train(tiny(env=TAG, learner_kwargs=planar), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    config = tmp_path / "tag.yaml"
    config.write_text(
        f"env: {TAG}\nalgo: pref-ppo\nteacher: team\nlabels: 20\ntimesteps: 2048\n"
        "n_envs: 2\ndevice: cpu\nlearner_kwargs: {reward_model: {symmetry: planar}}\n"
    )
    code, _, err = cli("train", "--config", config, "--out", tmp_path / "cli")
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "cli").exists()
    # the same team without the symmetry, and simple_spread with it, are accepted
    for accepted in (tiny(env=TAG), tiny(learner_kwargs=planar)):
        learner = make_learner(accepted, make_teacher(accepted))
        learner.env.close()


def test_a_version_known_not_to_work_is_one_clear_line(monkeypatch):
    real = metadata.version
    monkeypatch.setattr(
        metadata, "version", lambda name: "3.3.2" if name == "supersuit" else real(name)
    )
    with pytest.raises(ConfigError, match=r"supersuit 3.3.2 is known not to work.*supersuit>=3.9"):
        check_versions()
    with pytest.raises(ConfigError, match="known not to work"):
        make_parallel_env(SPREAD)


def test_feedbackgym_envs_lists_the_multiagent_envs(cli):
    code, out, _ = cli("envs")
    assert code == 0
    assert "mpe2/simple_spread_v3" in out and "(multi-agent)" in out
