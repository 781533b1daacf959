"""Regret studies: agents x independent runs on a bandit env, split into resumable cells.

A study is a grid of cells, one per (agent, chunk of runs). Each cell is a pure function of its
description (env, agent, horizon, runs, seeds), so cells run anywhere (in-process, in worker
processes, as Ray tasks) and give the same numbers. A finished cell is saved atomically under
``DIR/cells/``; re-running the study into the same DIR skips it. When all cells are there, the
results are aggregated into ``summary.csv``, ``regret.csv`` and ``regret.png``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np

import feedbackgym  # noqa: F401  (registers the envs, also in worker processes)
from feedbackgym.agents import AGENTS
from feedbackgym.agents.bandits.base import default_metric, env_horizon
from feedbackgym.agents.bandits.fused import PATHS, fused_agents, fused_run
from feedbackgym.envs import registered_ids, resolve_env_id
from feedbackgym.errors import ConfigError, check_positive_int
from feedbackgym.feedback.delayed_bandit import (
    DelayedFeedbackEnv,
    delay_spec,
    mean_delay,
    parse_delay,
)
from feedbackgym.registry import check_kwargs

#: Fields that fix the numbers of a cell; a DIR holding a study with other values is refused.
STUDY_KEY = (
    "env",
    "env_kwargs",
    "horizon",
    "seed",
    "runs_per_cell",
    "n_checkpoints",
    "metric",
    "delay",
)


@dataclass
class RegretStudy:
    """What to run: every agent in ``agents`` for ``runs`` independent runs of ``horizon`` steps.

    :param env: registered env id (``module:id`` imports ``module`` first, as in gymnasium).
    :param agents: registry names of the agents.
    :param horizon: steps per run T, one episode: it sets the env's ``horizon`` when the env
        takes one, and may not exceed the env's when it does not.
    :param runs: independent runs per agent.
    :param seed: master seed; run r of every agent sees the same env randomness stream.
    :param env_kwargs: keyword arguments for the env.
    :param agent_kwargs: per-agent keyword arguments, ``{name: {param: value}}``.
    :param runs_per_cell: runs simulated together in one cell (the unit of resume and of work
        handed to a worker).
    :param n_checkpoints: about how many log-spaced steps (always including T) the curves keep.
    :param metric: the regret notion, one of the env's ``regret_metrics`` (None: the first that
        applies, as in ``learn``: ``copeland`` on a dueling env without a Condorcet winner).
        Metric "regret" is read from ``info["regret"]``, any other "m" from ``info["regret_m"]``.
    :param delay: a delay spec (``fixed:50``, ``geometric:0.01``, ``uniform:10-200``,
        ``batched:500``): every run's feedback reaches its agent that late
        (:class:`~feedbackgym.feedback.delayed_bandit.DelayedFeedbackEnv`); None: no delay.
    :param path: how cells run: ``"fused"``, the whole horizon in one compiled loop
        (:mod:`feedbackgym.agents.bandits.fused`; a ConfigError from :meth:`validate` when an
        agent has none for this env), ``"steps"``, the step-by-step ``learn`` loop, or ``"auto"``,
        fused where the env and agent allow it. The two paths agree in distribution, not number by
        number; :meth:`validate` fills ``paths``, the path each agent takes.
    """

    env: str
    agents: list[str]
    horizon: int
    runs: int
    seed: int = 0
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    agent_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs_per_cell: int = 100
    n_checkpoints: int = 100
    metric: str | None = None
    delay: str | None = None
    path: str = "auto"

    def __post_init__(self) -> None:
        #: The path each agent takes, "fused" or "steps" (filled by :meth:`validate`; running
        #: into a folder adds the paths its earlier agents took).
        self.paths: dict[str, str] = {}

    @property
    def info_key(self) -> str:
        return info_key(self.metric or "regret")

    def config(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def checkpoints(self) -> np.ndarray:
        """Log-spaced steps from 1 to T (T included) at which cumulative regret is kept."""
        points = np.geomspace(1, self.horizon, self.n_checkpoints)
        return np.unique(np.concatenate([np.round(points).astype(np.int64), [self.horizon]]))

    def validate(self) -> None:
        """Raise ConfigError (one line) for anything that would fail later; touches no file."""
        self.horizon = check_positive_int("horizon", self.horizon)
        self.runs = check_positive_int("runs", self.runs)
        self.runs_per_cell = check_positive_int("runs_per_cell", self.runs_per_cell)
        self.n_checkpoints = check_positive_int("n_checkpoints", self.n_checkpoints)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.path not in PATHS:
            raise ConfigError(f"path must be one of {', '.join(PATHS)}, got {self.path!r}")
        delay = parse_delay(self.delay)
        self.delay = None if delay is None else delay_spec(delay)
        if delay is not None:
            late = [a for a in self.agents if a in AGENTS.names() and not AGENTS.get(a).delay_ok]
            if late:
                fitting = [n for n in AGENTS.names() if AGENTS.get(n).delay_ok]
                raise ConfigError(
                    f"agent(s) {', '.join(late)} cannot learn from delayed feedback "
                    f"(--delay {self.delay}); agents that can: {', '.join(fitting)}"
                )
        if not isinstance(self.env_kwargs, dict):
            raise ConfigError(f"env kwargs must be a JSON object, got {self.env_kwargs!r}")
        if not self.agents:
            raise ConfigError(f"no agents given; valid: {', '.join(AGENTS.names())}")
        if len(set(self.agents)) != len(self.agents):
            raise ConfigError(f"agents are listed twice: {','.join(self.agents)}")
        for name in self.agent_kwargs:
            if name not in self.agents:
                raise ConfigError(f"agent kwargs given for {name!r}, which is not in --agents")
        env = make_env(self.env, 1, self.env_kwargs, self.horizon)
        try:
            horizon = env_horizon(env)
            if horizon is not None and horizon < self.horizon:
                raise ConfigError(
                    f"horizon={self.horizon} is beyond the env's fixed horizon ({horizon}: it "
                    f"takes no horizon kwarg); give a horizon of at most {horizon}"
                )
            env.reset(seed=self.seed)
            if self.metric is None:
                self.metric = default_metric(env)
            check = getattr(env.unwrapped, "check_metric", None)
            if callable(check):
                check(self.metric)
            paths = {}
            for name in self.agents:
                agent = AGENTS.get(name).from_env(env, 0, **self.agent_kwargs.get(name, {}))
                obs, _ = env.reset(seed=self.seed)
                paths[name] = self._path(env, agent, name)
                _, _, _, _, info = env.step(agent.predict(obs))
                if self.info_key not in info:
                    raise ConfigError(
                        f"env {self.env!r} does not report info[{self.info_key!r}]; regret "
                        "studies need an env that puts its per-step regret in info"
                    )
            self.paths = paths
        finally:
            env.close()

    def _path(self, env: Any, agent: Any, name: str) -> str:
        """The path agent ``name`` takes on the (reset) probe ``env``; ConfigError when
        ``path="fused"`` and it has no fused loop here."""
        if self.path == "steps":
            return "steps"
        fusable = undelayed(self.delay) and fused_run(env, agent, self.info_key) is not None
        if fusable:
            return "fused"
        if self.path == "fused":
            why = "" if undelayed(self.delay) else f" with --delay {self.delay}"
            raise ConfigError(
                f"--path fused: agent {name!r} has no fused loop on env {self.env!r}{why} "
                f"(fused: {', '.join(fused_agents())} on built-in bandits of fixed means, "
                "no delay); give --path auto or steps"
            )
        return "steps"

    def cells(self) -> list[Cell]:
        """The grid of cells, agents outermost."""
        base = {k: v for k, v in self.config().items() if k in STUDY_KEY}
        if base.get("delay") is None:  # undelayed cells keep the names they always had
            base.pop("delay", None)
        checkpoints = self.checkpoints().tolist()
        cells = []
        for agent in self.agents:
            kwargs = self.agent_kwargs.get(agent, {})
            for chunk, start in enumerate(range(0, self.runs, self.runs_per_cell)):
                stop = min(start + self.runs_per_cell, self.runs)
                ident = json.dumps([base, agent, kwargs, start, stop], sort_keys=True)
                digest = hashlib.sha256(ident.encode()).hexdigest()[:12]
                seeds = np.random.SeedSequence([self.seed, chunk]).generate_state(2)
                cells.append(
                    Cell(
                        env=self.env,
                        env_kwargs=self.env_kwargs,
                        agent=agent,
                        agent_kwargs=kwargs,
                        horizon=self.horizon,
                        run_start=start,
                        run_stop=stop,
                        env_seed=int(seeds[0]),
                        agent_seed=int(seeds[1]),
                        checkpoints=checkpoints,
                        metric=self.info_key,
                        delay=self.delay,
                        name=f"{agent}__runs{start:06d}-{stop:06d}__{digest}",
                        path=self.paths.get(agent, self.path),
                    )
                )
        return cells


@dataclass
class Cell:
    """One unit of work: ``agent`` on runs [run_start, run_stop) of the study."""

    env: str
    env_kwargs: dict[str, Any]
    agent: str
    agent_kwargs: dict[str, Any]
    horizon: int
    run_start: int
    run_stop: int
    env_seed: int
    agent_seed: int
    checkpoints: list[int]
    metric: str  # the info key summed into regret
    name: str
    threads: int = 0  # numba threads in the process that runs it (0: leave as is)
    delay: str | None = None  # delay spec of the feedback (None: none)
    path: str = "auto"  # "fused", "steps", or "auto": fused when fused_run gives a loop

    @property
    def runs(self) -> int:
        return self.run_stop - self.run_start


def info_key(metric: str) -> str:
    """The ``info`` key that carries the per-step regret of ``metric``."""
    return "regret" if metric == "regret" else f"regret_{metric}"


def _vector_entry(env_id: str) -> Any:
    from feedbackgym.envs.multiagent import is_multiagent

    name = resolve_env_id(env_id)  # module:ID imports module, in every process that runs cells
    if is_multiagent(name):
        valid = ", ".join(registered_ids())
        raise ConfigError(
            f"env {env_id!r} is multi-agent; regret studies run bandit envs, e.g. {valid}"
        )
    spec = gym.spec(name)
    entry = spec.vector_entry_point or spec.entry_point
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(__import__(module, fromlist=[attr]), attr)
    return entry


def make_env(env_id: str, num_envs: int, env_kwargs: dict[str, Any], horizon: int) -> Any:
    """A vector env of ``num_envs`` runs; its ``horizon`` is set to the study's when it has one."""
    entry = _vector_entry(env_id)
    kwargs = dict(env_kwargs)
    check_kwargs(entry, kwargs, f"env {env_id!r}")
    if "horizon" in inspect.signature(entry).parameters:
        kwargs["horizon"] = horizon
    try:
        return gym.make_vec(resolve_env_id(env_id), num_envs=num_envs, **kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"env {env_id!r} rejected its kwargs: {exc}") from None


def run_cell(cell: Cell, callback: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run one cell; returns its cumulative regret per run and checkpoint, and its wall time."""
    if cell.threads:
        import numba

        numba.set_num_threads(cell.threads)
    env = make_env(cell.env, cell.runs, cell.env_kwargs, cell.horizon)
    agent = AGENTS.get(cell.agent).from_env(env, cell.agent_seed, **cell.agent_kwargs)
    run = None
    if cell.path != "steps" and undelayed(cell.delay):  # a zero delay is no delay
        env.reset(seed=cell.env_seed)
        run = fused_run(env, agent, cell.metric)
    if run is None:
        if cell.path == "fused":
            raise ConfigError(
                f"cell {cell.name}: agent {cell.agent!r} has no fused loop on env {cell.env!r}"
            )
        if cell.delay is not None:
            # the delays' own stream: a zero delay leaves every number as without delay
            delay_seed = int(np.random.SeedSequence([cell.env_seed, 1]).generate_state(1)[0])
            env = DelayedFeedbackEnv(env, parse_delay(cell.delay), seed=delay_seed)
            agent = AGENTS.get(cell.agent).from_env(env, cell.agent_seed, **cell.agent_kwargs)
    per_pull = None if callback is None else (lambda steps: callback(steps * cell.runs))
    checkpoints = np.asarray(cell.checkpoints)
    if run is not None:
        run(1, np.array([1]), cell.env_seed)  # load (or compile) the kernel outside the timing
        loop = partial(run, cell.horizon, checkpoints, cell.env_seed)
    else:
        loop = partial(
            agent.learn,
            env,
            cell.horizon,
            checkpoints=checkpoints,
            seed=cell.env_seed,
            regret_key=cell.metric,
            callback=per_pull,
        )
    start = time.perf_counter()
    regret = loop()
    wall = time.perf_counter() - start
    if run is not None and per_pull is not None:
        per_pull(cell.horizon)  # the fused loop reports once, at its end
    env.close()
    return {"regret": regret, "wall_seconds": wall}


def undelayed(spec: str | None) -> bool:
    """Whether feedback of delay ``spec`` arrives at once (no delay, or one of zero steps)."""
    delay = parse_delay(spec)
    return delay is None or mean_delay(delay) == 0.0


def lai_robbins_constant(study: RegretStudy) -> float | None:
    """The Lai-Robbins constant of the study's env when it defines one (K-armed Bernoulli)."""
    env = make_env(study.env, 1, study.env_kwargs, study.horizon)
    try:
        env.reset(seed=study.seed)
        bound = getattr(env.unwrapped, "lai_robbins_constant", None)
        return bound() if callable(bound) else None
    finally:
        env.close()


def sem(values: np.ndarray) -> np.ndarray:
    """Standard error of the mean over axis 0 (0 for a single run)."""
    n = values.shape[0]
    return values.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.zeros(values.shape[1:])
