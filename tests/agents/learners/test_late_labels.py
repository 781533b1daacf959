"""Late preference labels (``label_delay_rounds``) and hindsight teachers in pref-PPO's loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3.common.env_util import make_vec_env

import feedbackgym  # noqa: F401  (registers the envs)
from feedbackgym.agents.learners.preference import PrefPPO, takes_consequences
from feedbackgym.errors import ConfigError
from feedbackgym.feedback import Budget, OracleTeacher
from feedbackgym.feedback.delays import HindsightTeacher

PPO_KWARGS = {"n_steps": 64, "batch_size": 64, "n_epochs": 1}
#: 2 envs x 64 steps: a round every 128 steps, from step 128; 640 steps: 4 rounds.
STEPS = 640


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def learner(labels: int = 28, env: str = "Pendulum-v1", teacher=None, **kwargs) -> PrefPPO:
    options = {
        "segment_length": 10,
        "reward_epochs": 2,
        "initial_epochs": 5,
        "reward_model": {"members": 2, "hidden": 16, "threads": 1},
        "algo_kwargs": PPO_KWARGS,
        "device": "cpu",
        **kwargs,
    }
    return PrefPPO(
        make_vec_env(env, n_envs=2, seed=0),
        teacher=teacher or OracleTeacher(rng=0),
        labels=labels,
        **options,
    )


def spy_deliveries(model: PrefPPO) -> list[tuple[int, int, int]]:
    """Record (round asked, round delivered, id of the label array) of each delivered batch."""
    seen: list[tuple[int, int, int]] = []
    deliver = model._deliver

    def wrapped() -> None:
        before = list(model.pending)
        deliver()
        now = {id(entry[2]) for entry in model.pending}
        for asked, _, answers in before:
            if id(answers) not in now:
                seen.append((asked, model.round, id(answers)))

    model._deliver = wrapped
    return seen


def test_late_answers_arrive_d_rounds_later_exactly_once():
    model = learner(label_delay_rounds=2)
    delivered = spy_deliveries(model)
    model.learn(STEPS)
    assert model.round == len(model.round_times) == 4
    assert model.labels_used == 28
    # Every answer asked is either fitted (once) or still on its way; none is lost or doubled.
    assert len(model.comparisons) + model.labels_pending == model.labels_used
    assert model.answered == len(model.comparisons)
    assert len({answers for _, _, answers in delivered}) == len(delivered)
    assert all(done - asked == 2 for asked, done, _ in delivered)
    # The last two rounds' answers have not arrived; their count is reported.
    assert sorted(asked for asked, _, _ in model.pending) == [3, 4]
    assert model.labels_pending > 0
    assert model.summary_metrics() == {"labels_pending": model.labels_pending}


def test_no_answer_arrives_before_its_round_so_the_first_fit_waits():
    model = learner(label_delay_rounds=3)
    model.plan(STEPS)
    model.learn(128 * 3)  # rounds 1-3 of 4
    assert model.round == 3 and model.labels_used > 0
    assert len(model.comparisons) == 0 and not model.reward_model.fitted
    assert model.labels_pending == model.labels_used


def test_resume_keeps_the_pending_answers(tmp_path):
    first = learner(label_delay_rounds=2)
    first.plan(STEPS)
    first.learn(128 * 2)  # rounds 1-2 asked, none arrived
    assert first.labels_pending == first.labels_used > 0
    first.save(tmp_path / "checkpoint")

    resumed = learner(label_delay_rounds=2).load_state(tmp_path / "checkpoint")
    assert resumed.labels_pending == first.labels_pending
    for (r1, g1, a1), (r2, g2, a2) in zip(first.pending, resumed.pending, strict=True):
        assert r1 == r2
        np.testing.assert_array_equal(a1, a2)
        np.testing.assert_array_equal(g1[0].obs, g2[0].obs)
    delivered = spy_deliveries(resumed)
    resumed.learn(STEPS)
    assert resumed.labels_used == 28
    assert len(resumed.comparisons) + resumed.labels_pending == 28
    assert len({answers for _, _, answers in delivered}) == len(delivered)
    assert {asked for asked, _, _ in delivered} == {1, 2}  # those saved arrived
    assert {asked for asked, _, _ in resumed.pending} == {3, 4}


def test_delay_zero_learns_exactly_as_before():
    default = learner().learn(STEPS)
    zero = learner(label_delay_rounds=0).learn(STEPS)
    assert default.pending == zero.pending == []
    for name, array in default.comparisons.arrays().items():
        np.testing.assert_array_equal(array, zero.comparisons.arrays()[name])
    for p, q in zip(default.model.policy.parameters(), zero.model.policy.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    assert default.accuracy_hits == zero.accuracy_hits
    assert zero.summary_metrics() == {}


def test_bad_options_are_one_line_errors():
    with pytest.raises(ConfigError, match="label_delay_rounds must be an integer >= 0"):
        learner(label_delay_rounds=-1)
    with pytest.raises(ConfigError, match="consequence_steps=5 needs a hindsight teacher"):
        learner(consequence_steps=5)


def test_a_hindsight_teacher_is_shown_what_followed_each_segment():
    shown: list[tuple[int, int]] = []

    class Spy(HindsightTeacher):
        def prefer(self, a, b, a_after=None, b_after=None):
            shown.append((a.length, -1 if a_after is None else a_after.length))
            # The steps after continue the segment: progress t/50 goes on by 1/50 a step,
            # except once at most, where an episode ended (20 steps within 50-step episodes).
            steps = np.diff(np.concatenate([a.obs, a_after.obs], axis=1)[..., 0], axis=1)
            assert (~np.isclose(steps, 1 / 50, atol=1e-5)).sum(axis=1).max() <= 1
            return super().prefer(a, b, a_after, b_after)

    teacher = Spy(OracleTeacher(rng=0))
    assert takes_consequences(teacher) and not takes_consequences(OracleTeacher())
    assert not takes_consequences(Budget(OracleTeacher(), max_queries=5))
    model = learner(env="feedbackgym/DelayedConsequence-v0", teacher=teacher)
    assert model.consequence_steps == 10 and model.first_round_at() == (10 + 10) * 2
    model.learn(384)
    assert shown and set(shown) == {(10, 10)}
    # The reward model learns from the segments alone.
    assert model.comparisons.arrays()["pair_obs"].shape[-2] == 10
    assert len(model.comparisons) == model.labels_used
