"""Training runs: one config -> one run folder (config, curve, summary, model, feedback, resume)."""

from __future__ import annotations

import dataclasses
import inspect
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from feedbackgym.errors import ConfigError, check_positive_int
from feedbackgym.studies import io

#: Options that change how a run is watched or where it runs, not what it computes: a run
#: may be resumed with other values.
RUNTIME_KEYS = ("progress", "device")


@dataclass
class TrainConfig:
    """Everything that defines a training run (the keys of its ``config.yaml``).

    :param env: a Gymnasium id (``module:ID`` imports ``module`` first), or a multi-agent id
        listed by ``feedbackgym envs`` (e.g. ``mpe2/simple_spread_v3``): every agent then acts
        with one shared policy, and the returns reported are the team's.
    :param algo: a registered learner: pref-ppo, pref-sac, ppo, sac, lang-goal, pref-goal,
        rrd-ppo, rrd-sac (from a delayed reward, see ``reward_delay``), cpl (a policy straight
        from preferences, no reward model, no RL).
    :param timesteps: environment steps in all (over every parallel env; on a multi-agent env
        every agent's step counts).
    :param teacher: a registered feedback model the algo can learn from (None: the algo's
        default, ``oracle`` or, for lang-goal, ``language``).
    :param labels: the most answers to ask for over the run, corrections included (learners
        from feedback only).
    :param env_kwargs: keyword arguments of ``gymnasium.make``.
    :param teacher_kwargs: keyword arguments of the teacher.
    :param query: uniform, disagreement or entropy (learners from segments only; None: the
        learner's default, disagreement, or uniform for cpl).
    :param segment_length: steps per segment shown to the teacher (learners from segments only).
    :param encoder: sentence encoder of learners from corrections (builtin, minilm).
    :param n_envs: parallel envs (on a multi-agent env: parallel teams).
    :param seed: seed of everything in the run.
    :param device: auto, cpu or cuda.
    :param algo_kwargs: hyperparameters of the SB3 algorithm (SB3's defaults, except PPO's
        ``n_steps``: at most a tenth of the run per rollout when not given).
    :param learner_kwargs: other arguments of the learner (schedule, reward_model, ...).
    :param eval_every: timesteps between evaluations (0: ten per run).
    :param eval_episodes: episodes per evaluation (>= 20 for the final one).
    :param checkpoint_every: timesteps between checkpoints (0: five per run).
    :param threads: torch CPU threads.
    :param reward_delay: how late the training envs' reward arrives (None: every step):
        ``episode-end`` (the return at the last step) or ``lag:DELAY[:ARGS]`` (each reward
        after a delay, e.g. ``lag:geometric:0.1``, ``lag:fixed:10``); see
        :mod:`feedbackgym.feedback.delayed_rewards`. Evaluation always scores the true reward.
    :param progress: show a progress bar.
    """

    env: str = "Pendulum-v1"
    algo: str = "pref-ppo"
    timesteps: int = 100_000
    teacher: str | None = None
    labels: int = 0
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    teacher_kwargs: dict[str, Any] = field(default_factory=dict)
    query: str | None = None
    segment_length: int = 50
    encoder: str | None = None
    n_envs: int = 8
    seed: int = 0
    device: str = "auto"
    algo_kwargs: dict[str, Any] = field(default_factory=dict)
    learner_kwargs: dict[str, Any] = field(default_factory=dict)
    eval_every: int = 0
    eval_episodes: int = 20
    checkpoint_every: int = 0
    threads: int = 1
    reward_delay: str | None = None
    progress: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a mapping; an unknown key is a one-line ConfigError naming the valid ones."""
        names = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in names:
                raise ConfigError(f"{source} has unknown key {key!r}; valid: {', '.join(names)}")
        config = cls(**data)
        config.check_types(source)
        return config

    def check_types(self, source: str = "config") -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            expected = {"int": int, "str": str, "bool": bool}.get(str(f.type))
            if f.name.endswith("kwargs") and not isinstance(value, dict):
                raise ConfigError(f"{source}: {f.name} must be a mapping, got {value!r}")
            if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"{source}: {f.name} must be an integer, got {value!r}")
            if expected is str and not isinstance(value, str):
                raise ConfigError(f"{source}: {f.name} must be a string, got {value!r}")
        if self.reward_delay is not None:
            from feedbackgym.feedback.delayed_rewards import parse_reward_delay

            parse_reward_delay(self.reward_delay)  # a bad spec is a one-line ConfigError

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def defining(self) -> dict[str, Any]:
        """The keys that decide what the run computes (a resumed run must match these)."""
        return {k: v for k, v in self.to_dict().items() if k not in RUNTIME_KEYS}


def load_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping of train options; unreadable files are a one-line ConfigError."""
    from feedbackgym.feedback.base import read_yaml

    data = read_yaml(path, "config")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {str(path)!r} must be a mapping of train options")
    return data


# ----- building a run -----------------------------------------------------------------------
def check_env_id(env_id: str) -> Any:
    """The env's spec (None for a multi-agent env); ``module:ID`` imports ``module`` first, and
    an unknown id or a module that fails to import is a one-line ConfigError
    (:func:`feedbackgym.envs.resolve_env_id`)."""
    import gymnasium

    import feedbackgym  # noqa: F401  (registers our envs)
    from feedbackgym.envs import resolve_env_id
    from feedbackgym.envs.multiagent import check_versions, is_multiagent

    name = resolve_env_id(env_id)
    if is_multiagent(name):
        check_versions()
        return None
    return gymnasium.spec(name)


def make_env(config: TrainConfig, n_envs: int, seed: int, delayed: bool = True) -> Any:
    """An SB3 VecEnv of ``n_envs`` copies of the run's env, each seeded ``seed + i`` (what SB3's
    ``make_vec_env`` does, without its request for ``rgb_array`` rendering); with the run's
    ``reward_delay`` unless ``delayed`` is False (evaluation scores the true reward)."""
    import gymnasium
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from feedbackgym.feedback.delayed_rewards import parse_reward_delay

    spec = check_env_id(config.env)
    if spec is None:
        from feedbackgym.envs import resolve_env_id
        from feedbackgym.envs.multiagent.vector import make_team_vec_env

        if config.reward_delay is not None:
            raise ConfigError(
                f"reward_delay applies to single-agent envs; {config.env!r} is multi-agent"
            )
        return make_team_vec_env(resolve_env_id(config.env), n_envs, seed, config.env_kwargs)
    delay = parse_reward_delay(config.reward_delay) if delayed and config.reward_delay else None

    def build(rank: int) -> Any:
        def make() -> Any:
            env = gymnasium.make(spec.id, **config.env_kwargs)
            env = Monitor(env if delay is None else delay(env, seed + rank))
            env.action_space.seed(seed + rank)
            return env

        return make

    try:
        venv = DummyVecEnv([build(rank) for rank in range(n_envs)])
    except ConfigError:
        raise
    except TypeError as err:
        raise ConfigError(f"env {config.env!r} rejects env_kwargs: {err}") from None
    venv.seed(seed)  # env i resets with seed + i
    return venv


def make_teacher(config: TrainConfig) -> Any:
    """The run's teacher (None for the true-reward baselines), checked against the algo."""
    from feedbackgym.agents.learners import LEARNERS
    from feedbackgym.feedback import FEEDBACK_MODELS, Budget, make_feedback_model

    learner = LEARNERS.get(config.algo)
    if not learner.uses_feedback:
        if config.teacher is not None or config.labels:
            raise ConfigError(
                f"algo {config.algo!r} trains on the true reward and takes no teacher or "
                f"labels (got teacher={config.teacher!r}, labels={config.labels}); "
                "use a learner from feedback (pref-ppo, pref-sac, lang-goal, pref-goal) to learn "
                "from a teacher"
            )
        return None
    if config.labels < 1:
        raise ConfigError(
            f"algo {config.algo!r} learns from a teacher's answers: labels must be a positive "
            f"integer, got {config.labels}"
        )
    if config.reward_delay is not None:
        raise ConfigError(
            f"reward_delay {config.reward_delay!r} is for learners of the env's own reward "
            f"(ppo, sac, rrd-ppo, rrd-sac); algo {config.algo!r} learns from a teacher, who "
            "judges segments by their true reward"
        )
    defaults = TrainConfig()
    if not learner.uses_segments and (
        config.query != defaults.query or config.segment_length != defaults.segment_length
    ):
        raise ConfigError(
            f"algo {config.algo!r} asks about whole attempts: query and segment_length do not "
            f"apply (got query={config.query!r}, segment_length={config.segment_length})"
        )
    if config.encoder is not None and "encoder" not in inspect.signature(learner).parameters:
        raise ConfigError(
            f"algo {config.algo!r} reads no sentences: encoder applies to lang-goal only "
            f"(got encoder={config.encoder!r})"
        )
    name = config.teacher or learner.default_teacher
    FEEDBACK_MODELS.get(name)  # unknown names fail here, with the valid ones
    teacher = make_feedback_model(name, rng=config.seed, **config.teacher_kwargs)
    learner.check_teacher(teacher, config.algo)
    if (
        isinstance(teacher, Budget)
        and teacher.on_exhausted == "raise"
        and teacher.max_queries < config.labels
    ):
        raise ConfigError(
            f"teacher budget max_queries={teacher.max_queries} is smaller than labels="
            f"{config.labels}; raise max_queries, lower labels, or set on_exhausted='refuse'"
        )
    return teacher


def make_learner(config: TrainConfig, teacher: Any, tensorboard: str | None = None) -> Any:
    """The learner of ``config`` on a fresh training VecEnv."""
    from feedbackgym.agents.learners import LEARNERS

    cls = LEARNERS.get(config.algo)
    env = make_env(config, config.n_envs, config.seed)
    if getattr(env, "n_agents", None) and not getattr(cls, "multiagent_ok", False):
        env.close()
        multi = [n for n in LEARNERS.names() if getattr(LEARNERS.get(n), "multiagent_ok", False)]
        raise ConfigError(
            f"algo {config.algo!r} does not train on multi-agent envs like {config.env!r}; "
            f"valid: {', '.join(multi)}"
        )
    kwargs = dict(config.learner_kwargs)
    algo_kwargs = dict(config.algo_kwargs)
    if getattr(cls.sb3_class, "__name__", "") == "PPO" and "n_steps" not in algo_kwargs:
        # SB3's 2048 steps per env and rollout would leave a short run a handful of rollouts
        # (and reward-model rounds): at most a tenth of the run per rollout, a power of two.
        per_env = config.timesteps // (10 * env.num_envs)
        algo_kwargs["n_steps"] = int(2 ** np.clip(np.floor(np.log2(max(per_env, 1))), 5, 11))
    if cls.uses_feedback:
        kwargs.update(teacher=teacher, labels=config.labels)
        if cls.uses_segments:
            kwargs["segment_length"] = config.segment_length
            if config.query is not None:
                kwargs["query"] = config.query
        if config.encoder is not None:
            kwargs["encoder"] = config.encoder
    try:
        return cls(
            env,
            algo_kwargs=algo_kwargs,
            device=config.device,
            seed=config.seed,
            tensorboard_log=tensorboard,
            **kwargs,
        )
    except TypeError as err:
        raise ConfigError(f"algo {config.algo!r}: {err}") from None


# ----- evaluation ---------------------------------------------------------------------------
class Evaluator:
    """Runs the deterministic policy for ``episodes`` episodes on the true reward.

    Each evaluation uses the same env seeds (``10**6 + 1000 * seed + i``, never used by
    training), so successive evaluations differ only by the policy. Also reports the
    correlation between the learned and the true step reward on those fresh steps, and the
    success rate when the env reports ``success`` (or ``is_success``) in ``info``.

    On a multi-agent env an episode is one team's: its return is the team return (the sum of
    ``info["team_reward"]``), and the learned reward is correlated with what the teacher
    judges (the team reward, or each agent's own under a per-agent teacher).
    """

    def __init__(self, config: TrainConfig, episodes: int) -> None:
        self.episodes = check_positive_int("eval_episodes", episodes)
        self.seed = 10**6 + 1000 * config.seed
        self.env = make_env(config, self.episodes, self.seed, delayed=False)

    def __call__(self, learner: Any) -> dict[str, float]:
        env = self.env
        env.seed(self.seed)
        obs = env.reset()
        n = env.num_envs
        agents = getattr(env, "n_agents", None) or 1
        own = getattr(learner, "scope", None) == "agent"
        reward_of = getattr(learner, "learned_reward", None)
        model = getattr(learner, "reward_model", None)
        if model is None or not model.fitted:
            reward_of = None
        returns = np.zeros(n)
        done = np.zeros(n, dtype=bool)
        success = np.full(n, np.nan)
        steps_learned, steps_rew = [], []
        while not done.all():
            actions, _ = learner.predict(obs, deterministic=True)
            live = ~done
            if reward_of is not None:
                steps_learned.append(reward_of(obs, np.asarray(actions))[live])
            obs, rewards, dones, infos = env.step(actions)
            team = np.array(
                [info.get("team_reward", r) for info, r in zip(infos, rewards, strict=True)]
            )
            steps_rew.append((rewards if own else team)[live])
            returns[live] += team[live]
            for i in np.flatnonzero(live & dones):
                flag = infos[i].get("is_success", infos[i].get("success"))
                if flag is not None:
                    success[i] = float(flag)
            done |= dones
        returns = returns[::agents]  # one return per team (agents share it)
        out = {
            "true_return_mean": float(returns.mean()),
            "true_return_std": float(returns.std()),
            "eval_episodes": int(len(returns)),
        }
        if not np.isnan(success).all():
            out["success_rate"] = float(np.nanmean(success))
        if reward_of is not None:
            learned = np.concatenate(steps_learned)
            true = np.concatenate(steps_rew)
            if learned.std() > 0 and true.std() > 0:
                out["reward_correlation"] = float(np.corrcoef(learned, true)[0, 1])
        return out

    def close(self) -> None:
        self.env.close()


def random_return(config: TrainConfig) -> float:
    """True return of uniformly random actions on ``config``'s evaluation episodes (the floor
    that benchmarks and sweeps normalise returns by); the action space is seeded with
    ``config.seed``."""
    evaluator = Evaluator(config, config.eval_episodes)
    space = evaluator.env.action_space
    space.seed(config.seed)

    class Uniform:
        def predict(self, obs: np.ndarray, deterministic: bool = True) -> tuple[np.ndarray, None]:
            return np.array([space.sample() for _ in range(len(obs))]), None

    try:
        return float(evaluator(Uniform())["true_return_mean"])
    finally:
        evaluator.close()


# ----- the run folder -----------------------------------------------------------------------
CURVE_COLUMNS = [
    "timesteps",
    "labels_used",
    "true_return_mean",
    "true_return_std",
    "reward_model_accuracy",
]


def check_out_dir(out: Path, config: TrainConfig) -> str:
    """``"new"``, ``"resume"`` or ``"done"`` for ``out``; another run's folder is refused."""
    saved = out / "config.yaml"
    if not saved.exists():
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {str(out)!r} is a file; choose a folder")
        if out.exists() and any(out.iterdir()):
            raise ConfigError(
                f"--out {str(out)!r} is not empty and holds no training run; choose another folder"
            )
        return "new"
    old = TrainConfig.from_dict(load_yaml(saved), str(saved)).defining()
    new = config.defining()
    if old != new:
        diff = [k for k in new if old.get(k) != new[k]]
        raise ConfigError(
            f"--out {str(out)!r} holds a different run (it differs in {', '.join(diff)}); "
            "choose another folder, or repeat that run's options to resume it"
        )
    return "done" if (out / "summary.json").exists() else "resume"


def prepare(config: TrainConfig, tensorboard: str | None = None) -> tuple[Any, Any]:
    """Check every option of ``config`` and build its ``(teacher, learner)``; every bad value
    (a run too short for any feedback round included) is a ConfigError, and nothing is written."""
    if config.timesteps < 1:
        raise ConfigError(f"timesteps must be a positive integer, got {config.timesteps}")
    check_positive_int("n_envs", config.n_envs)
    check_positive_int("threads", config.threads)
    if config.eval_episodes < 20:
        raise ConfigError(f"eval_episodes must be >= 20, got {config.eval_episodes}")
    teacher = make_teacher(config)
    learner = make_learner(config, teacher, tensorboard=tensorboard)
    if teacher is not None:  # e.g. a learned teacher not fitted, or fitted to another env
        try:
            check = getattr(teacher, "check_spaces", None)
            if check is not None:
                check(learner.env.observation_space, learner.env.action_space)
        except ConfigError:
            learner.env.close()
            raise
    if learner.uses_feedback:
        learner.plan(config.timesteps)  # a run too short for any feedback round fails here
    return teacher, learner


def check(config: TrainConfig) -> None:
    """Raise the ConfigError ``train(config, ...)`` would, without training or writing."""
    _, learner = prepare(config)
    learner.env.close()


def train(config: TrainConfig, out: str | Path, console: Any = None) -> dict[str, Any]:
    """Run (or resume, or read back) the training run ``config`` in the folder ``out``.

    Every bad value raises ConfigError before anything is written; a folder holding another
    run is refused; a finished run is not recomputed (its summary is returned).
    """
    import torch
    from rich.console import Console

    out = Path(out)
    state = check_out_dir(out, config)
    if state == "done":
        return json.loads((out / "summary.json").read_text())
    torch.set_num_threads(config.threads)
    teacher, learner = prepare(config, tensorboard=str(out / "tensorboard"))
    evaluator = Evaluator(config, config.eval_episodes)
    # Everything is checked: from here on the folder is written.
    out.mkdir(parents=True, exist_ok=True)
    from feedbackgym.feedback import FeedbackLog

    checkpoint = _latest_checkpoint(out) if state == "resume" else None
    run_state: dict[str, Any] = {"curve": [], "wall_seconds": 0.0, "eval_seconds": 0.0}
    if checkpoint is None:
        (out / "feedback.jsonl").unlink(missing_ok=True)  # a run killed before its first save
        shutil.rmtree(out / "tensorboard", ignore_errors=True)
    else:
        run_state = json.loads((checkpoint / "run_state.json").read_text())
        if (out / "feedback.jsonl").exists():  # true-reward runs have no feedback log
            with open(out / "feedback.jsonl", "r+b") as handle:  # drop answers after the save
                handle.truncate(run_state["log_bytes"])
    io.write_text(out / "config.yaml", _yaml({**config.to_dict(), "device": learner.device}))
    log = FeedbackLog(out / "feedback.jsonl") if teacher is not None else None
    if checkpoint is None:
        if teacher is not None:
            teacher.attach_log(log)
    else:
        if teacher is not None:
            teacher.log, teacher._log_id = log, run_state["log_model_id"]
        learner.load_state(checkpoint)
    console = console or Console(stderr=True)
    try:
        summary = _train_loop(config, out, learner, evaluator, run_state, console)
    finally:
        evaluator.close()
        if log is not None:
            log.close()
    return summary


def _yaml(data: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


def _latest_checkpoint(out: Path) -> Path | None:
    pointer = out / "checkpoints" / "latest.json"
    if not pointer.exists():
        return None
    return out / "checkpoints" / json.loads(pointer.read_text())["folder"]


def _train_loop(
    config: TrainConfig,
    out: Path,
    learner: Any,
    evaluator: Evaluator,
    run_state: dict[str, Any],
    console: Any,
) -> dict[str, Any]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from stable_baselines3.common.callbacks import BaseCallback

    total = config.timesteps
    eval_every = config.eval_every or max(1, total // 10)
    checkpoint_every = config.checkpoint_every or max(1, total // 5)
    curve: list[dict[str, Any]] = run_state["curve"]
    started = time.perf_counter() - run_state["wall_seconds"]
    eval_seconds = run_state["eval_seconds"]

    def evaluate() -> dict[str, Any]:
        nonlocal eval_seconds
        begin = time.perf_counter()
        result = evaluator(learner)
        eval_seconds += time.perf_counter() - begin
        row = {
            "timesteps": learner.num_timesteps,
            "labels_used": getattr(learner, "labels_used", 0),
            "true_return_mean": result["true_return_mean"],
            "true_return_std": result["true_return_std"],
            "reward_model_accuracy": getattr(learner, "reward_model_accuracy", float("nan")),
        }
        curve.append(row)
        _write_curve(out, curve)
        return result

    def save_checkpoint() -> None:
        folder = f"step_{learner.num_timesteps:012d}"
        target = out / "checkpoints" / folder
        learner.save(target)
        log_path = out / "feedback.jsonl"
        log_model = getattr(getattr(learner, "teacher", None), "_log_id", None)
        io.write_json(
            target / "run_state.json",
            {
                "curve": curve,
                "wall_seconds": time.perf_counter() - started,
                "eval_seconds": eval_seconds,
                "log_bytes": log_path.stat().st_size if log_path.exists() else 0,
                "log_model_id": log_model,
            },
        )
        io.write_json(out / "checkpoints" / "latest.json", {"folder": folder})
        for old in (out / "checkpoints").glob("step_*"):
            if old.name != folder:
                shutil.rmtree(old, ignore_errors=True)

    columns = [
        TextColumn(f"{config.algo} {config.env}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"),
        TextColumn("labels {task.fields[labels]}"),
        TextColumn("return {task.fields[ret]}"),
        TimeElapsedColumn(),
    ]

    class RunCallback(BaseCallback):
        """Evaluates, checkpoints, logs to TensorBoard and moves the progress bar."""

        def __init__(self, bar: Any, task: Any) -> None:
            super().__init__()
            self.bar, self.task = bar, task
            self.next_eval = (learner.num_timesteps // eval_every + 1) * eval_every
            self.next_save = (learner.num_timesteps // checkpoint_every + 1) * checkpoint_every

        def _on_step(self) -> bool:
            t = self.num_timesteps
            if t >= self.next_eval and t < total:
                self.next_eval += eval_every
                result = evaluate()
                for key, value in result.items():
                    self.logger.record(f"eval/{key}", value)
                self.bar.update(self.task, ret=f"{result['true_return_mean']:.1f}")
            self.bar.update(self.task, completed=t, labels=getattr(learner, "labels_used", 0))
            return True

        def _on_rollout_start(self) -> None:
            # Between SB3's update and its next rollout: nothing collected is left untrained.
            t = self.num_timesteps
            if t >= self.next_save and t < total:
                self.next_save = (t // checkpoint_every + 1) * checkpoint_every
                save_checkpoint()

    with Progress(*columns, console=console, disable=not config.progress) as bar:
        task = bar.add_task("train", total=total, labels=0, ret="-")
        bar.update(task, completed=learner.num_timesteps)
        learner.learn(total, callback=RunCallback(bar, task))
        final = evaluate()
        bar.update(task, completed=learner.num_timesteps, ret=f"{final['true_return_mean']:.1f}")
    wall = time.perf_counter() - started - eval_seconds
    learner.model.save(out / "model.zip")
    if getattr(learner, "reward_model", None) is not None and learner.reward_model.fitted:
        learner.reward_model.save(out / "reward_model.pt")
    teacher = getattr(learner, "teacher", None)
    summary = {
        "algo": config.algo,
        "env": config.env,
        "teacher": None if teacher is None else config.teacher or learner.default_teacher,
        "seed": config.seed,
        "device": learner.device,
        "timesteps": learner.num_timesteps,
        "labels_used": getattr(learner, "labels_used", 0),
        "wall_seconds": wall,
        "eval_seconds": eval_seconds,
        "true_return_mean": final["true_return_mean"],
        "true_return_std": final["true_return_std"],
        "eval_episodes": final["eval_episodes"],
        "reward_model_accuracy": getattr(learner, "reward_model_accuracy", float("nan")),
        "reward_correlation": final.get("reward_correlation", float("nan")),
    }
    if "success_rate" in final:
        summary["success_rate"] = final["success_rate"]
    summary.update(getattr(learner, "summary_metrics", dict)())
    _write_plot(out, curve, config, summary["teacher"])
    _write_tensorboard(out, curve)
    io.write_json(out / "summary.json", _finite(summary))
    return _finite(summary)


def _finite(data: dict[str, Any]) -> dict[str, Any]:
    """NaN is not JSON: write it as null."""
    return {
        k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in data.items()
    }


def _write_curve(out: Path, curve: list[dict[str, Any]]) -> None:
    io.write_csv(out / "curve.csv", CURVE_COLUMNS, [[r[c] for c in CURVE_COLUMNS] for r in curve])


def _write_plot(
    out: Path, curve: list[dict[str, Any]], config: TrainConfig, teacher: str | None
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.array([r["timesteps"] for r in curve])
    mean = np.array([r["true_return_mean"] for r in curve])
    std = np.array([r["true_return_std"] for r in curve])
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(steps, mean, marker="o", label=f"{config.algo} (true return)")
    ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("timesteps")
    ax.set_ylabel("true return (deterministic policy)")
    title = f"{config.env}: {config.algo}"
    if config.labels:
        title += f", {teacher} teacher, {config.labels} labels"
        twin = ax.twinx()
        twin.step(steps, [r["labels_used"] for r in curve], color="grey", where="post")
        twin.set_ylabel("labels used", color="grey")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    io.atomic_write(out / "curve.png", lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)


def _write_tensorboard(out: Path, curve: list[dict[str, Any]]) -> None:
    """The curve's figures against labels used (SB3's logger has them against timesteps)."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(out / "tensorboard" / "curve"))
    for row in curve:
        writer.add_scalar(
            "curve/true_return_vs_labels", row["true_return_mean"], row["labels_used"]
        )
        writer.add_scalar("curve/true_return", row["true_return_mean"], row["timesteps"])
    writer.close()
