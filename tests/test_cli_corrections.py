"""`feedbackgym train` with learners from corrections: a run, and one-line bad-input errors."""

from __future__ import annotations

import json

import pytest

from tests.conftest import with_flags

pytestmark = pytest.mark.usefixtures("restore_torch_threads")

GOOD = [
    "train",
    "--env", "feedbackgym/PointGoal-v0",
    "--algo", "lang-goal",
    "--labels", "5",
    "--timesteps", "1000",
    "--n-envs", "1",
    "--no-progress",
]  # fmt: skip


def test_train_lang_goal_writes_its_summary(cli, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = cli(*GOOD, "--out", out)
    assert code == 0, err
    assert str(out / "summary.json") in stdout and "lang-goal" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algo"] == "lang-goal" and summary["teacher"] == "language"
    assert 0.0 <= summary["success_rate"] <= 1.0
    assert 1 <= summary["corrections_used"] == summary["labels_used"] <= 5
    assert summary["attempts"] == 10 and summary["unusable_answers"] == 0


def test_train_pref_goal_and_an_explicit_encoder(cli, tmp_path):
    code, _, err = cli(*with_flags(GOOD, algo="pref-goal"), "--out", tmp_path / "pref")
    assert code == 0, err
    assert json.loads((tmp_path / "pref" / "summary.json").read_text())["teacher"] == "oracle"
    code, _, err = cli(*with_flags(GOOD, encoder="builtin"), "--out", tmp_path / "lang")
    assert code == 0, err


def bad_templates(tmp_path, text: str | None) -> str:
    """--teacher-kwargs naming a templates file holding ``text`` (None: no such file)."""
    path = tmp_path / "templates.yaml"
    if text is not None:
        path.write_text(text)
    return json.dumps({"templates": str(path)})


BAD = [  # flags to change (TEMPLATES: a file of that text), what the one-line error must say
    ({"encoder": "bert"}, "unknown encoder 'bert'; valid: builtin, minilm"),
    ({"teacher": "oracle"}, "algo 'lang-goal' learns from corrections in words but was given"),
    ({"algo": "pref-goal", "teacher": "language"}, "was given a correction teacher"),
    ({"algo": "pref-goal", "encoder": "builtin"}, "algo 'pref-goal' reads no sentences"),
    ({"env": "Pendulum-v1"}, "algo 'lang-goal' needs a PointGoal-like env"),
    ({"query": "entropy"}, "query and segment_length do not apply"),
    ({"labels": None}, "labels must be a positive integer, got 0"),
    ({"teacher_kwargs": "TEMPLATES:None"}, "templates file '{path}' cannot be read"),
    ({"teacher_kwargs": "TEMPLATES:"}, "templates file '{path}' must map meanings to lists"),
    ({"teacher_kwargs": "TEMPLATES:hn: []\n"}, "templates: hn must be a non-empty list"),
    (
        {"teacher_kwargs": 'TEMPLATES:hx:\n  - "Go left."\n'},
        "templates: unknown meaning 'hx'; valid: r_good",
    ),
    (
        {"teacher_kwargs": 'TEMPLATES:hn:\n  - "Go {where}."\n'},
        "templates: hn uses unknown placeholder(s) where",
    ),
]


@pytest.mark.parametrize(("flags", "message"), BAD)
def test_bad_input_exits_2_with_one_line_before_writing(cli, tmp_path, flags, message):
    flags = dict(flags)
    path = tmp_path / "templates.yaml"
    kwargs = flags.get("teacher_kwargs", "")
    if kwargs.startswith("TEMPLATES:"):
        text = kwargs.removeprefix("TEMPLATES:")
        flags["teacher_kwargs"] = bad_templates(tmp_path, None if text == "None" else text)
    out = tmp_path / "run"
    code, _, err = cli(*with_flags(GOOD, **flags), "--out", out)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert message.format(path=path) in err
    assert not out.exists()
