"""CPL: its loss, a policy from preferences alone, offline from a feedback log, resume, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from gymnasium import spaces

from feedbackgym.agents.learners.cpl import CPL, CPLPolicy, read_dataset
from feedbackgym.agents.learners.queries import SegmentPool
from feedbackgym.errors import ConfigError
from feedbackgym.feedback import make_feedback_model, read_log
from feedbackgym.feedback.reward_model import Comparisons
from feedbackgym.studies.train import Evaluator, TrainConfig, make_env, train
from tests.conftest import interrupt_at_evaluation, with_flags

pytestmark = pytest.mark.usefixtures("restore_torch_threads")

POLICY = {"net_arch": [32, 32], "learning_rate": 1e-3}


def tiny(**overrides) -> TrainConfig:
    """CPL on Pendulum with 30 oracle labels in 1024 steps (a second)."""
    options = {
        "env": "Pendulum-v1",
        "algo": "cpl",
        "timesteps": 1024,
        "teacher": "oracle",
        "labels": 30,
        "query": "uniform",
        "segment_length": 10,
        "n_envs": 2,
        "device": "cpu",
        "algo_kwargs": POLICY,
        "learner_kwargs": {"update_every": 200, "epochs": 5, "initial_epochs": 20},
        "eval_every": 512,
        "progress": False,
    }
    options.update(overrides)
    return TrainConfig.from_dict(options)


def swing_up(obs: np.ndarray) -> np.ndarray:
    """A Pendulum-v1 expert (return about -160): pump energy, then balance with a PD law."""
    cos, sin, velocity = obs[..., 0], obs[..., 1], obs[..., 2]
    energy = velocity**2 / 6 + 5 * (cos - 1)  # 0 at rest upright (g = 10, m = l = 1)
    pump = 2.0 * np.sign(velocity + 1e-3) * (energy < 0)
    balance = -10.0 * np.arctan2(sin, cos) - 2.0 * velocity
    return np.clip(np.where(cos > 0.85, balance, pump), -2.0, 2.0)[..., None]


def regret_dataset(pairs: int, seed: int = 0) -> tuple[object, Comparisons]:
    """Pairs of 10-step segments of a half-expert, half-random behaviour, labelled by regret
    (the preference model CPL assumes), with the advantage ``-(a - expert(s))^2``."""
    env = make_env(TrainConfig.from_dict({"env": "Pendulum-v1"}), 8, seed)
    rng = np.random.default_rng(seed)
    pool, obs = SegmentPool(8, 500), env.reset()
    for _ in range(500):
        noise = rng.uniform(-2.0, 2.0, (8, 1))
        actions = np.where(rng.random((8, 1)) < 0.5, swing_up(obs), noise).astype(np.float32)
        after, rewards, _, _ = env.step(actions)
        pool.add(obs, actions, rewards)
        obs = after
    teacher = make_feedback_model(
        "regret",
        advantage_fn=lambda o, a: -((a[..., 0] - swing_up(o)[..., 0]) ** 2),
        beta=float("inf"),
        rng=seed,
    )
    a, b = pool.sample(pairs, 10, rng), pool.sample(pairs, 10, rng)
    data = Comparisons()
    data.add_pairs(a, b, teacher.prefer(a, b))
    return env, data


def uniform_return(evaluator: Evaluator) -> float:
    class Uniform:
        def __init__(self, space) -> None:
            self.space = space
            space.seed(0)

        def predict(self, obs, deterministic=True):
            return np.stack([self.space.sample() for _ in range(len(obs))]), None

    return evaluator(Uniform(evaluator.env.action_space))["true_return_mean"]


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory):
    """A finished pref-PPO run with 30 oracle answers: the data set of offline CPL."""
    folder = tmp_path_factory.mktemp("earlier") / "run"
    train(
        tiny(
            algo="pref-ppo",
            algo_kwargs={"n_steps": 64, "batch_size": 64, "n_epochs": 2},
            learner_kwargs={"reward_epochs": 5},
        ),
        folder,
    )
    return folder


@pytest.fixture(scope="module")
def cpl_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cpl") / "run"
    train(tiny(), folder)
    return folder


# ----- the loss and the policy ---------------------------------------------------------------
def test_the_cpl_loss_decreases_on_a_fixed_dataset():
    torch.set_num_threads(1)
    env, data = regret_dataset(200)
    policy = CPLPolicy("MlpPolicy", env, seed=0, device="cpu", **POLICY)
    losses = [policy.fit(data, epochs)["loss"] for epochs in (1, 10, 20)]
    assert losses[0] > losses[1] > losses[2]
    assert losses[2] < losses[0] - 0.05
    assert policy.fitted and policy._n_updates == 31 * 4  # 200 pairs in batches of 64


def test_the_loss_is_the_papers_with_its_conservative_bias():
    """-log P(first > second) = softplus(lambda A(second) - A(first)), A = alpha sum log pi."""
    env = make_env(TrainConfig.from_dict({"env": "Pendulum-v1"}), 1, 0)
    policy = CPLPolicy("MlpPolicy", env, device="cpu", alpha=0.5, conservative_bias=0.25)
    obs = torch.randn(3, 2, 4, 3)
    actions = torch.rand(3, 2, 4, 1) * 2 - 1
    labels = torch.tensor([1.0, 0.0, 0.5])
    loss, _, _ = policy._cpl_loss(obs, actions, labels)
    with torch.no_grad():
        lp = policy.log_prob(obs.reshape(-1, 3), actions.reshape(-1, 1)).reshape(3, 2, 4)
    adv = 0.5 * lp.sum(-1)
    first = torch.nn.functional.softplus(0.25 * adv[:, 1] - adv[:, 0])
    second = torch.nn.functional.softplus(0.25 * adv[:, 0] - adv[:, 1])
    expected = (labels * first + (1 - labels) * second).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_the_policy_beats_a_random_one_from_a_few_hundred_answers():
    torch.set_num_threads(1)
    env, data = regret_dataset(400)
    policy = CPLPolicy(
        "MlpPolicy", env, seed=0, device="cpu", net_arch=[64, 64], learning_rate=1e-3
    )
    policy.fit(data, 100)
    evaluator = Evaluator(TrainConfig.from_dict({"env": "Pendulum-v1"}), 20)
    random = uniform_return(evaluator)
    learned = evaluator(policy)["true_return_mean"]
    assert learned > random + 400, (learned, random)


# ----- training runs -------------------------------------------------------------------------
def test_a_cpl_run_writes_every_output_without_a_reward_model(cpl_run):
    names = {p.name for p in cpl_run.iterdir()}
    assert names >= {"config.yaml", "summary.json", "curve.csv", "curve.png", "tensorboard",
                     "model.zip", "feedback.jsonl", "checkpoints"}  # fmt: skip
    assert "reward_model.pt" not in names  # CPL fits none
    assert (cpl_run / "tensorboard" / "CPL_1").is_dir()
    summary = json.loads((cpl_run / "summary.json").read_text())
    assert summary["algo"] == "cpl" and summary["labels_used"] == 30
    assert (summary["dataset_labels"], summary["online_labels"]) == (0, 30)
    assert summary["policy_updates"] > 0
    assert summary["reward_correlation"] is None  # no learned reward to correlate
    assert 0.0 <= summary["reward_model_accuracy"] <= 1.0  # the policy's own, prequential
    labels = [v for r in read_log(cpl_run / "feedback.jsonl") if r["type"] == "batch"
              for v in r["answer"]]  # fmt: skip
    assert len(labels) == 30
    policy = CPLPolicy.load(cpl_run / "model.zip", device="cpu")
    assert policy.num_timesteps == 1024
    obs = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 2.0]], dtype=np.float32)
    actions, _ = policy.predict(obs)
    assert actions.shape == (2, 1) and np.all(np.abs(actions) <= 2.0)


def test_the_same_seed_gives_the_same_run(cpl_run, tmp_path):
    train(tiny(), tmp_path / "again")
    assert (tmp_path / "again" / "curve.csv").read_text() == (cpl_run / "curve.csv").read_text()
    a = CPLPolicy.load(cpl_run / "model.zip", device="cpu").network.state_dict()
    b = CPLPolicy.load(tmp_path / "again" / "model.zip", device="cpu").network.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    train(tiny(seed=1), tmp_path / "other")
    assert (tmp_path / "other" / "curve.csv").read_text() != (cpl_run / "curve.csv").read_text()


def test_a_killed_run_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    config = tiny(eval_every=256, checkpoint_every=256, query="entropy")
    folder = tmp_path / "run"
    interrupt_at_evaluation(monkeypatch, call=3)
    with pytest.raises(KeyboardInterrupt):
        train(config, folder)
    monkeypatch.undo()
    assert not (folder / "summary.json").exists()
    summary = train(config, folder)
    assert summary["timesteps"] == 1024 and summary["labels_used"] == 30
    rows = (folder / "curve.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [256, 512, 768, 1024]


def test_offline_from_an_earlier_runs_feedback_log(earlier_run, tmp_path):
    dataset = str(earlier_run / "feedback.jsonl")
    counts = ("labels_used", "dataset_labels", "online_labels")
    offline = tiny(
        timesteps=400,
        learner_kwargs={"dataset": dataset, "pretrain_epochs": 20, "bc_epochs": 5},
    )
    summary = train(offline, tmp_path / "offline")
    assert [summary[k] for k in counts] == [30, 30, 0]
    assert summary["policy_updates"] == 25  # 30 pairs: one batch per pass, before any step
    log = read_log(tmp_path / "offline" / "feedback.jsonl")
    assert [r for r in log if r["type"] == "batch"] == []  # every answer came from the data set
    # A larger budget asks the rest online, about segments as long as the data set's.
    both = tiny(labels=40, learner_kwargs={"dataset": dataset, "update_every": 200})
    assert [train(both, tmp_path / "both")[k] for k in counts] == [40, 30, 10]


def test_a_dataset_that_does_not_fit_the_run_is_refused(earlier_run, tmp_path):
    dataset = earlier_run / "feedback.jsonl"
    with pytest.raises(ConfigError, match="this env has"):
        read_dataset(dataset, spaces.Box(-1.0, 1.0, (5,)), spaces.Box(-1.0, 1.0, (1,)))
    longer = tiny(labels=40, segment_length=20, learner_kwargs={"dataset": str(dataset)})
    with pytest.raises(ConfigError, match="holds segments of 10 steps"):
        train(longer, tmp_path / "run")


# ----- bad options ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"teacher": "tamer"}, "algo 'cpl' learns from preferences or rankings"),
        ({"teacher": "plackett-luce"}, "give it a pairwise teacher"),
        ({"query": "disagreement"}, "cannot use query 'disagreement'"),
        ({"learner_kwargs": {"dataset": "/nowhere/feedback.jsonl"}}, "does not exist"),
        ({"learner_kwargs": {"reward_epochs": 3}}, "reward_epochs does not apply"),
        ({"algo_kwargs": {"n_steps": 64}}, "no option 'n_steps' in algo_kwargs; valid:"),
        ({"algo_kwargs": {"conservative_bias": 0}}, "conservative_bias must be in (0, 1]"),
        ({"env": "CartPole-v1"}, "needs a continuous (Box) action space"),
    ],
)
def test_bad_options_are_one_line_errors_before_writing(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as err:
        train(tiny(**overrides), tmp_path / "run")
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


def test_the_learner_refuses_a_missing_teacher():
    env = make_env(TrainConfig.from_dict({"env": "Pendulum-v1"}), 1, 0)
    with pytest.raises(ConfigError, match="was given no teacher"):
        CPL(env, teacher=None, labels=10, device="cpu")


# ----- the command line ----------------------------------------------------------------------
CLI = ["train", "--env", "Pendulum-v1", "--algo", "cpl", "--labels", "20",
       "--timesteps", "2000", "--segment-length", "10", "--n-envs", "2", "--device", "cpu",
       "--no-progress"]  # fmt: skip


def test_feedbackgym_train_algo_cpl_runs(cli, tmp_path):
    code, stdout, err = cli(*CLI, "--out", tmp_path / "run")
    assert code == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["algo"], summary["labels_used"]) == ("cpl", 20)


def test_feedbackgym_train_algo_cpl_refuses_a_query_it_cannot_use_with_exit_2(cli, tmp_path):
    code, _, err = cli(*with_flags(CLI, query="disagreement"), "--out", tmp_path / "run")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "cannot use query 'disagreement'" in err
    assert not (tmp_path / "run").exists()
