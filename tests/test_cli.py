"""The feedbackgym command: listings, a study end to end, the demo, one-line bad-input errors."""

from __future__ import annotations

import builtins
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EASY_MEANS

GOOD = [
    "regret",
    "--env", "feedbackgym/BernoulliBandit-v0",
    "--env-kwargs", json.dumps({"means": EASY_MEANS}),
    "--agents", "ucb1,thompson",
    "--horizon", "200",
    "--runs", "10",
    "--no-progress",
]  # fmt: skip


def with_flag(args: list[str], flag: str, value: str | None) -> list[str]:
    """``args`` with ``flag`` set to ``value`` (dropped when None)."""
    out = list(args)
    if flag in out:
        i = out.index(flag)
        del out[i : i + 2]
    return out if value is None else [*out, flag, value]


def test_envs_lists_every_registered_id_with_a_description(cli):
    code, out, _ = cli("envs")
    assert code == 0
    line = next(row for row in out.splitlines() if row.startswith("feedbackgym/BernoulliBandit-v0"))
    assert "Bernoulli rewards" in line


def test_agents_lists_the_registry(cli):
    code, out, _ = cli("agents")
    names = {line.split()[0] for line in out.splitlines()}
    assert (
        code == 0
        and {"epsilon-greedy", "ucb1", "kl-ucb", "thompson", "exp3", "linucb", "lin-ts"} <= names
    )


def test_python_dash_m_runs_the_cli():
    out = subprocess.run(
        [sys.executable, "-m", "feedbackgym", "envs"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "feedbackgym/GaussianBandit-v0" in out.stdout


def test_regret_runs_a_study_and_prints_where_results_are(cli, tmp_path):
    code, out, _ = cli(*GOOD, "--out", tmp_path / "study")
    assert code == 0
    assert str(tmp_path / "study" / "regret.png") in out
    assert {p.name for p in (tmp_path / "study").iterdir()} >= {
        "config.json",
        "summary.csv",
        "regret.csv",
        "regret.png",
    }


def test_demo_writes_the_regret_plot(cli, tmp_path):
    code, out, _ = cli("demo", "--out", tmp_path / "demo", "--no-progress")
    assert code == 0 and (tmp_path / "demo" / "regret.png").exists()
    assert "summary.csv" in out


BAD = [  # flag, bad value, what the one-line error must say
    ("--env", "feedbackgym/Nope-v0", "unknown env 'feedbackgym/Nope-v0'; valid: feedbackgym/"),
    ("--agents", "ucb1,ucb2", "unknown agent 'ucb2' (did you mean 'ucb1'?)"),
    ("--env-kwargs", "{means: [0.5]}", "--env-kwargs is not valid JSON"),
    ("--env-kwargs", "[1, 2]", "--env-kwargs must be a JSON object"),
    ("--env-kwargs", '{"means": [0.5, 1.2]}', "Bernoulli means must be in [0, 1], got 1.2"),
    ("--env-kwargs", '{"arms": 3}', "env 'feedbackgym/BernoulliBandit-v0' has no parameter 'arms'"),
    ("--horizon", "0", "horizon must be a positive integer, got 0"),
    ("--horizon", "ten", "argument --horizon: invalid int value: 'ten'"),
    ("--runs", "-5", "runs must be a positive integer, got -5"),
    ("--seed", "-1", "seed must be a non-negative integer"),
    ("--backend", "spark", "unknown backend 'spark'; valid: local, ray"),
    ("--workers", "0", "workers must be a positive integer"),
    ("--metric", "borda", "metric 'borda' does not apply to this env; valid: regret"),
    ("--agent-kwargs", '{"ucb1": {"alpha": -1}}', "alpha must be in (0, inf), got -1"),
    ("--agent-kwargs", '{"exp3": {}}', "agent kwargs given for 'exp3', which is not in --agents"),
]  # fmt: skip


@pytest.mark.parametrize(("flag", "value", "message"), BAD)
def test_bad_input_exits_2_with_one_line_and_keeps_earlier_results(
    cli, tmp_path, flag, value, message
):
    out_dir = tmp_path / "study"
    assert cli(*GOOD, "--out", out_dir)[0] == 0
    before = {p: p.read_bytes() for p in out_dir.rglob("*") if p.is_file()}
    code, _, err = cli(*with_flag(GOOD, flag, value), "--out", out_dir)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert message in err
    assert {p: p.read_bytes() for p in out_dir.rglob("*") if p.is_file()} == before


def test_missing_required_flag_is_one_line(cli, tmp_path):
    code, _, err = cli("regret", "--env", "feedbackgym/BernoulliBandit-v0", "--out", tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "the following arguments are required: --agents, --horizon" in err


def test_out_pointing_at_a_file_is_refused(cli, tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    code, _, err = cli(*GOOD, "--out", target)
    assert code == 2 and "is a file" in err and target.read_text() == "mine"


def test_ray_backend_without_ray_says_how_to_install(cli, tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    code, _, err = cli(*GOOD, "--backend", "ray", "--out", tmp_path / "s")
    assert code == 2 and "pip install 'feedbackgym[distributed]'" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "s").exists()


def test_register_env_script_runs_a_study_on_a_user_env(tmp_path):
    script = Path(__file__).parents[1] / "scripts" / "register_env.py"
    out = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path / "drift"), "--horizon", "300",
         "--runs", "8", "--agents", "ucb1,exp3", "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    summary = (tmp_path / "drift" / "summary.csv").read_text()
    assert "myrecs/DriftingClicks-v0" in summary and summary.count("\n") == 3


def test_a_range_message_says_whether_inf_itself_is_valid():
    from feedbackgym.errors import ConfigError, check_range

    assert check_range("beta", float("inf"), 0.0, allow_inf=True) == float("inf")
    with pytest.raises(ConfigError, match=r"beta must be in \[0, inf\], got -1"):
        check_range("beta", -1, 0.0, allow_inf=True)
    with pytest.raises(ConfigError, match=r"sigma must be in \(0, inf\), got inf"):
        check_range("sigma", float("inf"), 0.0, low_open=True)
