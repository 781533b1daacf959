"""The feedbackgym command: listings, a study end to end, the demo, one-line bad-input errors."""

from __future__ import annotations

import builtins
import json
import subprocess
import sys
import uuid
from pathlib import Path

import gymnasium as gym
import numpy as np
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


# ----- a user's module that registers envs: module:ID everywhere ------------------------------
USER_MODULE = """
import gymnasium as gym
import numpy as np

from feedbackgym.envs import register_bandit
from feedbackgym.envs.bandits import BernoulliBanditVec

NS = {ns!r}


class Reach(gym.Env):
    \"\"\"A point on [-1, 1] moved towards +0.7 (a user's env).\"\"\"

    def __init__(self):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.x = 0.0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-1.0, 1.0))
        return np.array([self.x], dtype=np.float32), {{}}

    def step(self, action):
        self.x = float(np.clip(self.x + 0.1 * float(action[0]), -1.0, 1.0))
        return np.array([self.x], dtype=np.float32), -abs(self.x - 0.7), False, False, {{}}


register_bandit(NS + "/Arms-v0", BernoulliBanditVec, means=[0.9, 0.6, 0.2])
if NS + "/Reach-v0" not in gym.registry:
    gym.register(NS + "/Reach-v0", entry_point=__name__ + ":Reach", max_episode_steps=20)
if NS + "/Grid-v0" not in gym.registry:
    gym.register(NS + "/Grid-v0", entry_point="feedbackgym.envs.gridworld:GridWorld")
"""


def user_env_module(tmp_path, monkeypatch):
    """A module (written to tmp_path, on sys.path and PYTHONPATH) whose import registers
    ``NS/Arms-v0`` (a bandit), ``NS/Reach-v0`` (a continuous-control env) and ``NS/Grid-v0``
    (a gridworld with optimal values); yields (module name, namespace). Nothing of it is
    imported yet: only the ``module:ID`` form makes a command import it."""
    tag = uuid.uuid4().hex[:8]
    module, ns = f"user_envs_{tag}", f"user{tag}"
    folder = tmp_path / "user_code"
    folder.mkdir()
    (folder / f"{module}.py").write_text(USER_MODULE.format(ns=ns))
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", str(folder))  # worker processes import it too
    yield module, ns
    for env_id in [e for e in gym.registry if e.startswith(ns + "/")]:
        del gym.registry[env_id]
    sys.modules.pop(module, None)


@pytest.fixture
def user_envs(tmp_path, monkeypatch):
    """:func:`user_env_module`: (module name, namespace) of a user's env module."""
    yield from user_env_module(tmp_path, monkeypatch)


def test_regret_runs_a_users_env_named_module_colon_id(cli, tmp_path, user_envs):
    module, ns = user_envs
    out = tmp_path / "study"
    args = ["regret", "--env", f"{module}:{ns}/Arms-v0", "--agents", "ucb1,thompson",
            "--horizon", "200", "--runs", "6", "--runs-per-cell", "3", "--no-progress"]  # fmt: skip
    code, stdout, err = cli(*args, "--out", out)
    assert code == 0, err
    assert f"{ns}/Arms-v0" in (out / "summary.csv").read_text()
    # worker processes import the module too (the id travels as module:ID)
    code, _, err = cli(*args, "--workers", "2", "--out", tmp_path / "workers")
    assert code == 0, err
    assert (tmp_path / "workers" / "regret.csv").read_text() == (out / "regret.csv").read_text()


def test_a_dueling_study_runs_a_users_dueling_env(cli, tmp_path, user_envs):
    module, ns = user_envs
    code, _, err = cli("regret", "--env", f"{module}:feedbackgym/DuelingBandit-v0",
                       "--agents", "rucb", "--horizon", "100", "--runs", "4", "--no-progress",
                       "--out", tmp_path / "duel")  # fmt: skip
    assert code == 0, err


def test_envs_describes_a_users_envs(cli, user_envs):
    module, ns = user_envs
    code, out, err = cli("envs", f"{module}:{ns}/Arms-v0")
    assert code == 0, err
    assert out.startswith(f"{ns}/Arms-v0") and "Bernoulli rewards" in out
    code, out, err = cli("envs", f"{module}:")  # every env the module registers
    assert code == 0, err
    assert [line.split()[0] for line in out.splitlines()] == [
        f"{ns}/Arms-v0",
        f"{ns}/Grid-v0",
        f"{ns}/Reach-v0",
    ]
    assert "towards +0.7" in out


BAD_USER_ENVS = [  # --env (MODULE, NS: the user's), what the one-line error must say
    ("MODULE:NS/Nope-v0",
     "unknown env 'MODULE:NS/Nope-v0' (importing 'MODULE' registered NS/Arms-v0, NS/Grid-v0, "
     "NS/Reach-v0); valid: feedbackgym/BernoulliBandit-v0"),
    ("no_such_module_xyz:NS/Arms-v0",
     "env 'no_such_module_xyz:NS/Arms-v0': module 'no_such_module_xyz' cannot be imported "
     "(ModuleNotFoundError: No module named 'no_such_module_xyz')"),
    ("MODULE:", "env 'MODULE:': write module:ID"),
    ("NS/Arms-v0", "unknown env 'NS/Arms-v0'; valid:"),  # not imported: the module was not named
    ("MODULE:NS/Reach-v0", "has no parameter"),  # a registered env, but not a bandit
]  # fmt: skip


@pytest.mark.parametrize(("env", "message"), BAD_USER_ENVS)
def test_a_bad_module_or_id_is_one_line_naming_it(cli, tmp_path, user_envs, env, message):
    module, ns = user_envs
    env, message = (x.replace("MODULE", module).replace("NS", ns) for x in (env, message))
    code, _, err = cli(*with_flag(GOOD, "--env", env), "--out", tmp_path / "study")
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert message in err
    assert not (tmp_path / "study").exists()


def test_a_module_that_fails_on_import_is_one_line(cli, tmp_path, monkeypatch):
    (tmp_path / "broken_envs_mod.py").write_text("import gymnasium\nraise RuntimeError('oops')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    env = "broken_envs_mod:x/Y-v0"
    for args in (with_flag(GOOD, "--env", env) + ["--out", tmp_path / "study"], ["envs", env]):
        code, _, err = cli(*args)
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert "module 'broken_envs_mod' cannot be imported (RuntimeError: oops)" in err
    assert not (tmp_path / "study").exists()


def grid_log(path):
    """A feedback log of preferences over GridWorld steps (discrete obs and actions)."""
    from feedbackgym.feedback import FeedbackLog, Segments, StochasticTeacher

    env = gym.make("feedbackgym/GridWorld-v0").unwrapped
    n_states, n_actions = env.observation_space.n, env.action_space.n
    rng = np.random.default_rng(0)

    def segments(n):
        obs = rng.integers(n_states, size=(n, 5))
        return Segments(rng.normal(size=(n, 5)), obs, rng.integers(n_actions, size=(n, 5)))

    with FeedbackLog(path) as log:
        teacher = StochasticTeacher(rng=0).attach_log(log)
        teacher.prefer(segments(40), segments(40))
    return path


def test_calibrate_reads_a_users_env_by_module_colon_id(cli, tmp_path, user_envs):
    module, ns = user_envs
    log = grid_log(tmp_path / "feedback.jsonl")
    code, out, err = cli("calibrate", "--log", log, "--env", f"{module}:{ns}/Grid-v0",
                         "--epochs", "3", "--save", tmp_path / "learned.pt")  # fmt: skip
    assert code == 0, err
    assert "regret" in out and "beta=" in out.split("regret", 1)[1].splitlines()[0]
    for env, message in [
        ("no_such_module_xyz:a/B-v0", "module 'no_such_module_xyz' cannot be imported"),
        (f"{module}:{ns}/Nope-v0", f"(importing '{module}' registered {ns}/Arms-v0"),
    ]:
        code, _, err = cli("calibrate", "--log", log, "--env", env, "--epochs", "3",
                           "--save", tmp_path / "other.pt")  # fmt: skip
        assert code == 2 and len(err.strip().splitlines()) == 1 and message in err
        assert not (tmp_path / "other.pt").exists()
