"""Preference teachers: labels follow B-Pref / Bradley-Terry / regret / Plackett-Luce models."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import feedbackgym  # noqa: F401  (registers the envs)
from feedbackgym.errors import ConfigError
from feedbackgym.feedback import (
    FEEDBACK_MODELS,
    BPrefTeacher,
    FeedbackLog,
    MyopicTeacher,
    OracleTeacher,
    PlackettLuceTeacher,
    PreferenceModel,
    RegretTeacher,
    Segments,
    StochasticTeacher,
    from_config,
    make_feedback_model,
    rebuild_models,
    register_feedback_model,
)

REQUIRED = [
    "oracle",
    "stochastic",
    "mistake",
    "skip",
    "equal",
    "myopic",
    "regret",
    "plackett-luce",
    "tamer",
    "coach",
    "language",
]


def band(p: float, n: int, z: float = 4.5) -> float:
    """Half-width of a z-sigma confidence band of a frequency with success probability p."""
    return z * np.sqrt(max(p * (1 - p), 1e-12) / n)


def pairs(n: int = 5000, length: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, length)), rng.normal(size=(n, length))


def test_registry_holds_every_required_name_and_user_classes_join_it():
    assert set(REQUIRED) <= set(FEEDBACK_MODELS.names())

    @register_feedback_model("always-first-test")
    class AlwaysFirst(PreferenceModel):
        def _label(self, a, b):
            return np.ones(len(a))

    model = make_feedback_model("always-first-test", rng=0)
    assert np.all(model.prefer(*pairs(10)) == 1.0)
    assert model.queries == 10


def test_unknown_name_and_unknown_parameter_give_one_line_errors():
    with pytest.raises(ConfigError, match="did you mean 'oracle'"):
        make_feedback_model("oracel")
    with pytest.raises(ConfigError, match="no parameter 'temperature'"):
        make_feedback_model("stochastic", temperature=2.0)


def test_oracle_prefers_larger_return_and_answers_equal_on_ties():
    a = np.array([[1.0, 2.0], [0.0, 0.0], [1.0, 1.0]])
    b = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    labels = OracleTeacher(rng=0).prefer(a, b)
    assert labels.tolist() == [1.0, 0.0, 0.5]


def test_beta_to_infinity_gives_the_oracle_labels():
    a, b = pairs()
    oracle = OracleTeacher(rng=7).prefer(a, b)
    near = StochasticTeacher(beta=1e9, rng=7).prefer(a, b)
    np.testing.assert_array_equal(near, oracle)
    # and the disagreement with the oracle shrinks as beta grows
    rates = [
        np.mean(StochasticTeacher(beta=beta, rng=1).prefer(a, b) != oracle) for beta in (0.1, 1, 10)
    ]
    assert rates[0] > rates[1] > rates[2]


@pytest.mark.parametrize("beta", [0.5, 2.0])
def test_bradley_terry_label_frequencies_follow_the_logistic_curve(beta):
    n = 4000
    teacher = StochasticTeacher(beta=beta, rng=11)
    for diff in (-2.0, -0.5, 0.0, 0.3, 1.0, 2.5):
        a = np.zeros((n, 5))
        a[:, 0] = diff
        labels = teacher.prefer(a, np.zeros((n, 5)))
        p = 1 / (1 + np.exp(-beta * diff))
        assert abs(labels.mean() - p) < band(p, n), (diff, labels.mean(), p)


def test_beta_zero_is_a_fair_coin():
    a, b = pairs(20000, 5)
    labels = StochasticTeacher(beta=0.0, rng=3).prefer(a, b)
    assert abs(labels.mean() - 0.5) < band(0.5, labels.size)


@pytest.mark.parametrize("epsilon", [0.05, 0.3])
def test_measured_mistake_rate_is_within_band_of_epsilon(epsilon):
    a, b = pairs(20000, 10, seed=4)
    truth = OracleTeacher(rng=0).prefer(a, b)
    labels = make_feedback_model("mistake", mistake=epsilon, rng=5).prefer(a, b)
    rate = np.mean(labels != truth)
    assert abs(rate - epsilon) < band(epsilon, a.shape[0])


def test_skip_threshold_skips_exactly_the_queries_where_neither_segment_is_good_enough():
    a, b = pairs(3000, 10, seed=2)
    threshold = 1.0
    labels = make_feedback_model("skip", skip_threshold=threshold, rng=0).prefer(a, b)
    skipped = np.maximum(a.sum(1), b.sum(1)) <= threshold
    np.testing.assert_array_equal(np.isnan(labels), skipped)
    np.testing.assert_array_equal(labels[~skipped], OracleTeacher().prefer(a, b)[~skipped])


def test_equal_threshold_answers_equal_exactly_when_returns_are_close():
    a, b = pairs(3000, 10, seed=3)
    labels = make_feedback_model("equal", equal_threshold=0.5, rng=0).prefer(a, b)
    close = np.abs(a.sum(1) - b.sum(1)) < 0.5
    np.testing.assert_array_equal(labels == 0.5, close)
    assert set(np.unique(labels[~close])) <= {0.0, 1.0}


def test_myopic_teacher_weighs_recent_steps_more():
    early_big = np.array([[3.0, 0.0, 0.0, 0.0, 0.0]])
    late_small = np.array([[0.0, 0.0, 0.0, 0.0, 2.0]])
    assert OracleTeacher().prefer(early_big, late_small)[0] == 1.0
    assert MyopicTeacher(gamma=0.5).prefer(early_big, late_small)[0] == 0.0


def test_regret_teacher_compares_optimal_advantage_not_partial_return():
    env = gym.make("feedbackgym/GridWorld-v0").unwrapped
    _, q = env.optimal_values()
    rng = np.random.default_rng(0)
    obs = rng.integers(env.n_states, size=(500, 6))
    obs = obs[~env.terminal[obs].any(axis=1)]
    best = q[obs].argmax(axis=2)
    worst = q[obs].argmin(axis=2)
    # equal partial returns: only the regret model can tell the segments apart
    rewards = np.zeros(obs.shape)
    teacher = RegretTeacher(env=env, beta=float("inf"), rng=0)
    labels = teacher.prefer(Segments(rewards, obs, best), Segments(rewards, obs, worst))
    gap = (q[obs].max(2) - q[obs].min(2)).sum(1) > 0
    assert np.all(labels[gap] == 1.0)
    assert np.all(OracleTeacher().prefer(rewards, rewards) == 0.5)
    # a user-supplied advantage function is used as is
    custom = RegretTeacher(advantage_fn=lambda o, a: -a.astype(float), beta=float("inf"))
    lab = custom.prefer(Segments(rewards, obs, best * 0), Segments(rewards, obs, best * 0 + 1))
    assert np.all(lab == 1.0)


def test_regret_teacher_refuses_segments_without_states():
    env = gym.make("feedbackgym/GridWorld-v0").unwrapped
    with pytest.raises(ConfigError, match="obs and actions"):
        RegretTeacher(env=env).prefer(*pairs(3, 4))
    with pytest.raises(ConfigError, match="env, q_values or advantage_fn"):
        RegretTeacher()
    with pytest.raises(ConfigError, match="pass it again"):
        RegretTeacher(advantage_fn="mymodule:critic")  # a name read back from a config


def test_plackett_luce_rankings_are_permutations_with_softmax_top_choice():
    n, beta = 6000, 1.0
    utilities = np.array([1.0, 0.0, -0.5])
    segments = np.broadcast_to(utilities[None, :, None] / 4, (n, 3, 4)).copy()
    ranking = PlackettLuceTeacher(beta=beta, rng=9).rank(segments)
    assert np.all(np.sort(ranking, axis=1) == np.arange(3))
    top = np.exp(beta * utilities) / np.exp(beta * utilities).sum()
    for k in range(3):
        assert abs(np.mean(ranking[:, 0] == k) - top[k]) < band(top[k], n)
    sorted_ranking = PlackettLuceTeacher(beta=float("inf")).rank(segments[:5])
    assert np.all(sorted_ranking == [0, 1, 2])


@settings(max_examples=40, deadline=None)
@given(
    beta=st.one_of(st.floats(0, 50), st.just(float("inf"))),
    gamma=st.floats(0.01, 1.0),
    mistake=st.floats(0, 1),
    equal=st.floats(0, 2),
    skip=st.floats(-5, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_any_valid_parameters_give_valid_deterministic_labels(
    beta, gamma, mistake, equal, skip, seed
):
    a, b = pairs(64, 8, seed=seed % 100)
    kwargs = dict(
        beta=beta, gamma=gamma, mistake=mistake, equal_threshold=equal, skip_threshold=skip
    )
    first = BPrefTeacher(**kwargs, rng=seed)
    labels = first.prefer(a, b)
    again = BPrefTeacher(**kwargs, rng=seed).prefer(a, b)
    np.testing.assert_array_equal(labels, again)
    assert set(np.unique(labels[~np.isnan(labels)])) <= {0.0, 0.5, 1.0}
    assert first.queries == 64 and first.answered == np.count_nonzero(~np.isnan(labels))
    rebuilt = from_config(first.config(), rng=seed)
    np.testing.assert_array_equal(rebuilt.prefer(a, b), labels)


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(["beta", "mistake", "gamma", "equal_threshold"]),
    value=st.one_of(st.floats(-1e6, -1e-6), st.just(float("nan"))),
)
def test_out_of_range_parameters_name_the_parameter_and_its_range(name, value):
    with pytest.raises(ConfigError) as err:
        BPrefTeacher(**{name: value})
    message = str(err.value)
    assert message.startswith(f"{name} must be in ") and "\n" not in message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"beta": -1}, "beta must be in [0, inf], got -1"),
        ({"mistake": 1.5}, "mistake must be in [0, 1], got 1.5"),
        ({"gamma": 0}, "gamma must be in (0, 1], got 0"),
        ({"rng": "seed"}, "rng must be a numpy Generator"),
    ],
)
def test_bad_parameters_give_the_documented_message(kwargs, message):
    with pytest.raises(ConfigError) as err:
        StochasticTeacher(**kwargs)
    assert str(err.value).startswith(message)


def test_segments_of_different_shapes_are_refused():
    with pytest.raises(ConfigError, match="same shape"):
        OracleTeacher().prefer(np.zeros((3, 4)), np.zeros((3, 5)))


# ----- B-Pref's teachers: one class and its presets, pinned to answers recorded before -------
#: The B-Pref registry names and the public names that build them.
BPREF_NAMES = {
    "oracle": "OracleTeacher",
    "stochastic": "StochasticTeacher",
    "mistake": "MistakeTeacher",
    "skip": "SkipTeacher",
    "equal": "EqualTeacher",
    "myopic": "MyopicTeacher",
    "bpref": "BPrefTeacher",
}
#: Arguments each name is built with: its defaults, B-Pref's relative thresholds, overrides.
BPREF_VARIANTS = [{}, {"relative_thresholds": True}, {"beta": 3.0, "mistake": 0.05, "gamma": 0.95}]
BPREF_SEED = 7
#: Answers, configs, generator states and log lines recorded with the six teacher classes
#: (and ``bpref``) before they became one class with presets; ``errors``: the one-line
#: message for an unknown keyword, per name.
BPREF_FIXTURE = Path(__file__).with_name("bpref_presets.json")


def bpref_batches() -> list[tuple[np.ndarray, np.ndarray]]:
    """Three batches of 32 pairs of 8 steps; the last two have positive returns on average (so
    relative thresholds switch on) and the last one pairs of nearly equal returns."""
    a0, b0 = pairs(32, 8, seed=20)
    a1, b1 = pairs(32, 8, seed=21)
    a2, noise = pairs(32, 8, seed=22)
    return [(a0, b0), (a1 + 0.25, b1 + 0.25), (a2 + 0.25, a2 + 0.25 + 0.01 * noise)]


def observe_teacher(teacher: PreferenceModel, log_path: Path) -> dict:
    """What a teacher says and writes for :func:`bpref_batches`, JSON-ready."""
    with FeedbackLog(log_path, store_queries=False) as log:
        teacher.attach_log(log)
        config = teacher.config()
        batches = bpref_batches()
        probabilities = teacher.probabilities(*batches[0])
        answers = [teacher.prefer(a, b) for a, b in batches]
    observed = {
        "config": config,
        "probabilities": probabilities.tolist(),
        "answers": [np.where(np.isnan(x), None, x).tolist() for x in answers],
        "queries": teacher.queries,
        "answered": teacher.answered,
        "running_state": teacher.running_state(),
        "rng_state": teacher.rng.bit_generator.state,
        "log": log_path.read_text(encoding="utf-8").splitlines(),
    }
    return json.loads(json.dumps(observed))


def unknown_keyword_error(name: str) -> str:
    with pytest.raises(ConfigError) as err:
        make_feedback_model(name, temperature=2.0)
    return str(err.value)


@pytest.mark.parametrize("variant", range(len(BPREF_VARIANTS)))
@pytest.mark.parametrize("name", list(BPREF_NAMES))
def test_bpref_teachers_answer_log_and_describe_themselves_as_recorded(name, variant, tmp_path):
    import feedbackgym.feedback as feedback

    want = json.loads(BPREF_FIXTURE.read_text(encoding="utf-8"))["cases"][name][variant]
    kwargs = BPREF_VARIANTS[variant]
    by_name = make_feedback_model(name, rng=BPREF_SEED, **kwargs)
    assert observe_teacher(by_name, tmp_path / "by_name.jsonl") == want
    by_public_name = getattr(feedback, BPREF_NAMES[name])(rng=BPREF_SEED, **kwargs)
    assert observe_teacher(by_public_name, tmp_path / "by_public_name.jsonl") == want
    # the description rebuilds the same teacher, from a config and from the log
    rebuilt = from_config(want["config"])
    assert observe_teacher(rebuilt, tmp_path / "rebuilt.jsonl") == want
    assert rebuild_models(tmp_path / "by_name.jsonl")[0].config() == want["config"]


def test_bpref_names_are_listed_and_refuse_unknown_keywords_as_recorded():
    want = json.loads(BPREF_FIXTURE.read_text(encoding="utf-8"))["errors"]
    assert set(BPREF_NAMES) <= set(FEEDBACK_MODELS.names())
    assert {name: unknown_keyword_error(name) for name in BPREF_NAMES} == want
    for message in want.values():
        assert "\n" not in message and "valid: beta, gamma, mistake, skip_threshold" in message


def test_bpref_teachers_are_one_class_whose_presets_keep_their_names():
    import pickle

    import feedbackgym.feedback as feedback
    from feedbackgym.feedback.preferences import BPREF_PRESETS

    assert set(BPREF_PRESETS) == set(BPREF_NAMES) - {"bpref"}
    for name, (defaults, _) in BPREF_PRESETS.items():
        assert FEEDBACK_MODELS.get(name) is BPrefTeacher
        assert FEEDBACK_MODELS.defaults(name) == defaults
        public = getattr(feedback, BPREF_NAMES[name])
        teacher = public(rng=0)
        assert type(teacher) is BPrefTeacher and teacher.registry_name == name
        # the public name shows the preset's defaults; a checkpoint keeps the preset's name
        params = inspect.signature(public).parameters
        assert {key: params[key].default for key in defaults} == defaults
        assert pickle.loads(pickle.dumps(teacher)).config() == teacher.config()
    assert BPrefTeacher().config()["name"] == "bpref" and BPrefTeacher.registry_name == "bpref"
