"""Goal learners from corrections (lang-goal) and from preferences (pref-goal) on PointGoal."""

from __future__ import annotations

import csv
import json
import zipfile

import numpy as np
import pytest
import torch

from feedbackgym.agents.learners.corrections import LanguageGoalLearner
from feedbackgym.envs.point_goal import PointGoalEnv
from feedbackgym.errors import ConfigError
from feedbackgym.feedback import read_log
from feedbackgym.feedback.grounding import Grounding, HashingEncoder
from feedbackgym.feedback.language import LanguageTeacher
from feedbackgym.studies.train import (
    Evaluator,
    TrainConfig,
    load_yaml,
    make_learner,
    make_teacher,
    train,
)
from tests.conftest import interrupt_at_evaluation

GOAL = 0  # PointGoal's default goal_index: the same candidate is the goal in every episode
BANANAS = ["Bananas are yellow."]


def tiny(**overrides) -> TrainConfig:
    """lang-goal on PointGoal with 6 candidates: 15 attempts, at most 5 corrections (~1 s)."""
    options = {
        "env": "feedbackgym/PointGoal-v0",
        "env_kwargs": {"n_targets": 6},
        "algo": "lang-goal",
        "labels": 5,
        "timesteps": 1500,
        "n_envs": 1,
        "device": "cpu",
        "eval_episodes": 20,
        "progress": False,
    }
    options.update(overrides)
    return TrainConfig.from_dict(options)


def answers(folder) -> list:
    """Every answer (sentence, label or refusal) of a run's feedback.jsonl, in order."""
    out: list = []
    for record in read_log(folder / "feedback.jsonl"):
        if record["type"] == "batch":
            out.extend(record["answer"])
    return out


def summary_of(folder) -> dict:
    return json.loads((folder / "summary.json").read_text(), parse_constant=pytest.fail)


def curve(folder) -> list[dict[str, str]]:
    with open(folder / "curve.csv") as handle:
        return list(csv.DictReader(handle))


def no_feedback_success(config: TrainConfig, tmp_path) -> tuple[float, object]:
    """Success of a fresh learner's deterministic policy (uniform belief: it goes for one
    seeded candidate) on the same evaluation episodes as the trained one."""
    learner = make_learner(config, make_teacher(config), tensorboard=str(tmp_path / "tb"))
    evaluator = Evaluator(config, config.eval_episodes)
    try:
        return evaluator(learner)["success_rate"], learner
    finally:
        evaluator.close()


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """train() sets one torch thread; give the other modules theirs back."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def lang_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lang") / "run"
    train(tiny(), folder)
    return folder


@pytest.fixture(scope="module")
def pref_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pref") / "run"
    train(tiny(algo="pref-goal", labels=10, timesteps=2000), folder)
    return folder


# ----- learning -------------------------------------------------------------------------------
def test_lang_goal_finds_the_goal_far_better_than_no_feedback(lang_run, tmp_path):
    summary = summary_of(lang_run)
    assert summary["algo"] == "lang-goal" and summary["teacher"] == "language"
    assert summary["success_rate"] >= 0.9
    assert summary["attempts"] == 15 and summary["unusable_answers"] == 0
    with zipfile.ZipFile(lang_run / "model.zip") as archive:
        belief = json.loads(archive.read("belief.json"))
    assert belief["goal_estimate"] == GOAL and max(belief["belief"]) >= 0.95
    # Without feedback: a uniform belief, one seeded candidate, right about 1 time in 6.
    baseline, fresh = no_feedback_success(tiny(), tmp_path)
    np.testing.assert_allclose(fresh.belief, 1 / 6)
    assert baseline == float(fresh.estimate == GOAL) and baseline < summary["success_rate"]
    over_seeds = [no_feedback_success(tiny(seed=s), tmp_path)[0] for s in range(6)]
    assert np.mean(over_seeds) <= 0.5 < summary["success_rate"]


def test_pref_goal_finds_the_goal_far_better_than_no_feedback(pref_run, tmp_path):
    summary = summary_of(pref_run)
    assert summary["algo"] == "pref-goal" and summary["teacher"] == "oracle"
    assert summary["success_rate"] >= 0.9 and 1 <= summary["labels_used"] <= 10
    assert "corrections_used" not in summary and summary["attempts"] == 20
    baseline, _ = no_feedback_success(tiny(algo="pref-goal", labels=10), tmp_path)
    assert baseline < summary["success_rate"]


# ----- counting answers -----------------------------------------------------------------------
def test_labels_are_counted_exactly_and_never_exceed_the_budget(lang_run):
    summary = summary_of(lang_run)
    used = summary["labels_used"]
    assert 1 <= used <= 5 and summary["corrections_used"] == used
    said = answers(lang_run)
    assert len(said) == used and all(isinstance(s, str) and s for s in said)
    rows = curve(lang_run)
    counts = [int(r["labels_used"]) for r in rows]
    assert counts == sorted(counts) and counts[-1] == used


@pytest.mark.parametrize(
    ("labels", "timesteps", "n_envs", "expected"),
    [(5, 1500, 1, 5), (20, 1000, 1, 10), (20, 1000, 2, 10)],
    ids=["labels<attempts", "attempts<labels", "two-envs"],
)
def test_ask_always_uses_one_answer_per_attempt_up_to_labels(
    tmp_path, labels, timesteps, n_envs, expected
):
    config = tiny(
        labels=labels, timesteps=timesteps, n_envs=n_envs, learner_kwargs={"ask": "always"}
    )
    summary = train(config, tmp_path / "run")
    assert summary["attempts"] == timesteps // 100
    assert summary["labels_used"] == summary["corrections_used"] == expected
    assert len(answers(tmp_path / "run")) == expected


def test_a_budget_teacher_is_never_exceeded(tmp_path):
    refuse = {"model": {"name": "language"}, "max_queries": 3, "on_exhausted": "refuse"}
    config = tiny(labels=8, timesteps=1000, teacher="budget", teacher_kwargs=refuse,
                  learner_kwargs={"ask": "always"})  # fmt: skip
    summary = train(config, tmp_path / "refuse")
    said = answers(tmp_path / "refuse")
    # Eight asked, three answered; the five refusals (None) are unusable, not crashes.
    assert summary["labels_used"] == 8 and len(said) == 8
    assert sum(s is not None for s in said) == 3 and said[3:] == [None] * 5
    assert summary["unusable_answers"] == 5
    strict = {"model": {"name": "language"}, "max_queries": 5}  # on_exhausted="raise"
    summary = train(tiny(teacher="budget", teacher_kwargs=strict), tmp_path / "raise")
    assert summary["labels_used"] <= 5 and len(answers(tmp_path / "raise")) <= 5
    assert summary["teacher"] == "budget"


def test_off_topic_sentences_are_counted_and_ignored(tmp_path):
    templates = {"hn": BANANAS, "fp": BANANAS, "fn": BANANAS, "r_bad": BANANAS}
    config = tiny(teacher_kwargs={"templates": templates})
    summary = train(config, tmp_path / "run")
    said = answers(tmp_path / "run")
    assert summary["unusable_answers"] > 0 and said.count(BANANAS[0]) > 0
    assert summary["unusable_answers"] == said.count(BANANAS[0])
    assert summary["labels_used"] == len(said) <= 5
    assert summary["attempts"] == 15 and 0.0 <= summary["success_rate"] <= 1.0


def test_only_off_topic_answers_leave_the_belief_uniform(tmp_path):
    off = {meaning: BANANAS for meaning in ("r_good", "r_bad", "hp", "hn", "fp", "fp_keep", "fn")}
    summary = train(tiny(teacher_kwargs={"templates": off, "kinds": ["r", "hn", "fp"]}),
                    tmp_path / "run")  # fmt: skip
    assert summary["unusable_answers"] == summary["labels_used"] == 5
    with zipfile.ZipFile(tmp_path / "run" / "model.zip") as archive:
        np.testing.assert_allclose(json.loads(archive.read("belief.json"))["belief"], 1 / 6)


# ----- reproducibility and resume -------------------------------------------------------------
@pytest.mark.parametrize("algo", ["lang-goal", "pref-goal"])
def test_the_same_seed_gives_the_same_run(tmp_path, lang_run, pref_run, algo):
    first = lang_run if algo == "lang-goal" else pref_run
    config = TrainConfig.from_dict(load_yaml(first / "config.yaml"))
    train(config, tmp_path / "again")
    keys = ("success_rate", "labels_used", "attempts", "unusable_answers", "true_return_mean")
    again = summary_of(tmp_path / "again")
    assert {k: again[k] for k in keys} == {k: summary_of(first)[k] for k in keys}
    for name in ("curve.csv", "feedback.jsonl"):
        assert (tmp_path / "again" / name).read_bytes() == (first / name).read_bytes()


@pytest.mark.parametrize(
    "overrides",
    [{"labels": 8}, {"algo": "pref-goal", "labels": 4}],
    ids=["lang-goal", "pref-goal"],
)
def test_a_killed_run_keeps_its_checkpoints_and_resumes(tmp_path, monkeypatch, overrides):
    config = tiny(timesteps=1000, eval_every=250, checkpoint_every=250,
                  learner_kwargs={"ask": "always"}, **overrides)  # fmt: skip
    folder = tmp_path / "run"
    interrupt_at_evaluation(monkeypatch, call=3)  # at 750 steps, after checkpoints at 250, 500
    with pytest.raises(KeyboardInterrupt):
        train(config, folder)
    monkeypatch.undo()
    assert not (folder / "summary.json").exists()
    checkpoint = json.loads((folder / "checkpoints" / "latest.json").read_text())["folder"]
    assert checkpoint == "step_000000000500"
    saved = folder / "checkpoints" / checkpoint
    assert (saved / "learner.pkl").exists() and (saved / "model.zip").exists()
    with zipfile.ZipFile(saved / "model.zip") as archive:
        belief = json.loads(archive.read("belief.json"))
    assert belief["attempts"] == 5 and 1 <= belief["labels_used"] < config.labels
    run_state = json.loads((saved / "run_state.json").read_text())
    rows_before = curve(folder)[: len(run_state["curve"])]
    log_before = (folder / "feedback.jsonl").read_bytes()[: run_state["log_bytes"]]
    assert len(answers(folder)) > belief["labels_used"]  # answers after the save were on disk

    summary = train(config, folder)  # the same call resumes
    assert summary["timesteps"] == 1000 and summary["attempts"] == 10
    assert summary["labels_used"] == config.labels
    rows = curve(folder)
    assert rows[: len(rows_before)] == rows_before
    assert [int(r["timesteps"]) for r in rows] == [250, 500, 750, 1000]
    assert (folder / "feedback.jsonl").read_bytes().startswith(log_before)
    assert len(answers(folder)) == config.labels  # answers after the save were dropped


# ----- misread sentences ----------------------------------------------------------------------
#: Phrasings the grounding was not fitted on (all but the amounts and "fp_vague"-style meanings).
UNSEEN = {
    "r_good": ["Oh yes, that was lovely work."],
    "hp": ["Whoa, you landed perfectly on it."],
    "r_bad": ["Hmm, that one was poor."],
    "hn": [
        "Oops, you ended up {amount} too far to the {direction} there.",
        "Hmm, {amount} too far {direction} this time.",
    ],
    "fp": [
        "Alright, next round go {amount} more {opposite}.",
        "Let's head {amount} further {opposite} now.",
    ],
    "fn": ["Please, not so far {direction} again."],
    "fp_keep": ["Yep, same again next time.", "Right, stick with it."],
}  # fmt: skip
#: What a misreading grounding hears instead of half of those phrasings: a confident reading of
#: another meaning (right heard as wrong, a direction heard reversed), every time it is said.
MISHEARD = {
    "Oh yes": "That didn't go well.",
    "Whoa": "Not good.",
    "Yep": "Do it differently next time.",
    "Oops": "Next time, move a little more side.",
    "Let's head": "You went a little too far side.",
}


class Mishearing(HashingEncoder):
    """The built-in encoder, except that a text holding a key of ``swap`` is encoded as that
    key's value: the grounding reads the sentence, confidently, as that other one."""

    swap: dict[str, str] = {}

    def _embed(self, texts):
        return super()._embed([next((v for k, v in self.swap.items() if k in t), t) for t in texts])


@pytest.fixture(scope="module")
def mishearing():
    """A built-in grounding fitted on the true sentences that then mishears MISHEARD."""
    encoder = Mishearing()
    grounding = Grounding(encoder, PointGoalEnv.axis_names)
    encoder.swap = dict(MISHEARD)
    encoder._cache.clear()
    grounding._cache.clear()
    return grounding


def goal_learner(grounding, teacher, n_targets, **kwargs):
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env("feedbackgym/PointGoal-v0", n_envs=1, env_kwargs={"n_targets": n_targets})
    learner = LanguageGoalLearner(env, teacher, **kwargs)
    learner.grounding = grounding
    return learner


def attempt(learner, end, candidates, goal) -> None:
    """One attempt that ended at ``end``, then the learner's question about it (if it asks)."""
    final = np.concatenate([end, [0.0, 0.0], np.ravel(candidates)])[None]
    learner._ask(final, None, None, None, np.asarray(candidates)[goal][None])


def test_a_misread_phrasing_said_again_and_again_never_rules_the_goal_out(mishearing):
    # The goal is left of where the point ends; the teacher always says the learner went a
    # little too far right, in one phrasing the grounding hears as "move a little more right".
    candidates = np.array([[-0.5, 0.0], [0.5, 0.0], [0.0, 0.6], [0.0, -0.6]])
    one_phrasing = {"hn": UNSEEN["hn"][:1], "amount_small": ["a little"]}
    teacher = LanguageTeacher(kinds=["hn"], templates=one_phrasing, rng=0)
    learner = goal_learner(mishearing, teacher, 4, labels=10, ask="always", seed=0)
    attempt(learner, np.zeros(2), candidates, 0)
    assert learner.belief[0] > 0.05  # one misread sentence: the goal is not ruled out
    for _ in range(9):
        attempt(learner, np.zeros(2), candidates, 0)
    assert learner.labels_used == 10
    # The same misreading ten times is still one phrasing misread: the goal keeps a share of
    # the belief set by the grounding's own error rate, and the learner is not confident.
    assert learner.belief[0] > 0.05 and learner.belief.max() < 0.95
    assert learner.describe()["unusable"] == 0


def run_with_misreadings(grounding, seed: int, **kwargs) -> tuple[bool, float]:
    """A lang-goal run on 10 random candidates (20 corrections, attempts that reach the
    candidate aimed at); (ended on the goal, largest belief)."""
    rng = np.random.default_rng(seed)
    candidates = rng.uniform(-1.0, 1.0, (10, 2))
    goal = int(rng.integers(10))
    teacher = LanguageTeacher(templates=UNSEEN, rng=seed)
    learner = goal_learner(grounding, teacher, 10, labels=20, seed=seed, **kwargs)
    for _ in range(46):
        target = learner._sample_targets(1)[0]
        attempt(learner, candidates[target] + rng.normal(0.0, 0.02, 2), candidates, goal)
    return learner.estimate == goal, float(learner.belief.max())


def test_a_grounding_that_misreads_half_the_phrasings_still_ends_on_the_goal(mishearing):
    # Half the teacher's phrasings are heard as another meaning at every use, among them every
    # way it says "that was right". Each answer as evidence of its own (the likelihood before
    # misreadings were modelled) ends on the goal in 27 of 40 seeds; with the meaning of a
    # phrasing as one unknown, 36 of 40 (seeds 0-39 at the time of writing). 12 seeds here.
    seeds = range(12)
    runs = [run_with_misreadings(mishearing, s) for s in seeds]
    right = sum(ok for ok, _ in runs)
    assert right >= 10
    assert not any(not ok and top >= 0.95 for ok, top in runs)  # never confidently wrong
    each_answer = [run_with_misreadings(mishearing, s, misreads="answer") for s in seeds]
    assert right > sum(ok for ok, _ in each_answer)


# ----- the MiniLM encoder ---------------------------------------------------------------------
def test_a_minilm_run_works_through_train(tmp_path):
    summary = train(tiny(encoder="minilm", timesteps=1000), tmp_path / "run")
    assert 1 <= summary["corrections_used"] == summary["labels_used"] <= 5
    assert summary["unusable_answers"] == 0 and summary["success_rate"] >= 0.9
    assert load_yaml(tmp_path / "run" / "config.yaml")["encoder"] == "minilm"


# ----- bad input ------------------------------------------------------------------------------
BAD = [  # overrides of tiny(), what the one-line error must say
    ({"teacher": "oracle"}, "learns from corrections in words but was given a preference teacher"),
    ({"teacher": "tamer"}, "valid teachers: language (or budget around one)"),
    ({"algo": "pref-goal", "teacher": "language"}, "was given a correction teacher"),
    (
        {"env": "Pendulum-v1", "env_kwargs": {}},
        "algo 'lang-goal' needs a PointGoal-like env (observation x, y, vx, vy",
    ),
    (
        {"algo": "pref-goal", "env": "CartPole-v1", "env_kwargs": {}},
        "algo 'pref-goal' needs a PointGoal-like env",
    ),
    (
        {"algo": "pref-ppo", "env": "Pendulum-v1", "env_kwargs": {}, "encoder": "builtin"},
        "algo 'pref-ppo' reads no sentences: encoder applies to lang-goal only",
    ),
    ({"algo": "pref-goal", "encoder": "minilm"}, "algo 'pref-goal' reads no sentences"),
    ({"query": "entropy"}, "query and segment_length do not apply (got query='entropy'"),
    ({"segment_length": 10}, "query and segment_length do not apply"),
    ({"algo_kwargs": {"n_steps": 64}}, "algo 'lang-goal' has no RL algorithm; algo_kwargs"),
    ({"labels": 0}, "labels must be a positive integer, got 0"),
    ({"learner_kwargs": {"ask": "sometimes"}}, "ask must be one of 'always', 'uncertain'"),
    ({"learner_kwargs": {"misreads": "never"}}, "misreads must be one of 'phrasing', 'answer'"),
    ({"learner_kwargs": {"beta": 2.0}}, "unexpected keyword argument 'beta'"),
    (
        {"teacher": "budget", "teacher_kwargs": {"model": {"name": "language"}, "max_queries": 3}},
        "teacher budget max_queries=3 is smaller than labels=5",
    ),
    (
        {"teacher_kwargs": {"templates": "/nonexistent.yaml"}},
        "templates file '/nonexistent.yaml' cannot be read",
    ),
    ({"teacher_kwargs": {"templates": {"hx": BANANAS}}}, "templates: unknown meaning 'hx'"),
    ({"teacher_kwargs": {"templates": {"hn": []}}}, "templates: hn must be a non-empty list"),
]

#: Bad values found only once the learner is built (its logger is made lazily, so still
#: nothing is written).
BAD_AFTER_THE_LOGGER = [
    ({"encoder": "bert"}, "unknown encoder 'bert'; valid: builtin, minilm"),
    ({"learner_kwargs": {"encoder": "bert"}}, "unknown encoder 'bert'"),
    ({"learner_kwargs": {"tolerance": -1.0}}, "tolerance must be in"),
    ({"timesteps": 50}, "timesteps=50 is shorter than one attempt per env (100 steps x 1 envs)"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD + BAD_AFTER_THE_LOGGER)
def test_bad_input_is_a_one_line_config_error(tmp_path, overrides, message):
    folder = tmp_path / "run"
    with pytest.raises(ConfigError) as info:
        train(tiny(**overrides), folder)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not folder.exists()
