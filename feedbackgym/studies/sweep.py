"""Sweeps: a grid of training runs, one run folder per cell, on worker processes or Ray, with
interval estimates over seeds (rliable).

A sweep file is YAML with three keys:

``base``
    ``feedbackgym train`` options every cell shares (any key of ``config.yaml``).
``grid``
    axis -> list of values; an axis is a train option (``teacher``, ``labels``, ``query``,
    ``algo``, ``seed``, ...). A value is the option's value, or a mapping that sets that option
    and others with it (``{teacher: skip, teacher_kwargs: {skip_threshold: -300}}``), named in
    the results by its ``label`` key when it has one, else by the option's value.
``gpus_per_cell`` (optional)
    GPUs a Ray task asks for per cell (a fraction lets several cells share a GPU); cells then run
    their torch parts on ``device`` (``auto``: the GPU Ray gave them).

Cells are the cartesian product of the axes, in file order. ``DIR/cells/<name>/`` is a
training run folder (what ``feedbackgym train`` writes), so a re-run resumes: finished cells are
read back, an interrupted one resumes from its checkpoint. ``DIR/summary.csv`` has one row per
cell; ``DIR/aggregate.csv`` one row per cell without the seed: the mean, the interquartile mean
(IQM) and its 95% stratified-bootstrap confidence interval over seeds (Agarwal et al. 2021,
"Deep Reinforcement Learning at the Edge of the Statistical Precipice", with their ``rliable``
package), raw and normalised; ``returns.png`` plots the IQM against ``labels`` (or the first
numeric axis) per remaining group, and ``profiles.png`` the normalised-score profiles.
Normalised score = (return - random policy's) / (best group's mean - random policy's), per task:
a task is what the true return measures, the env with its ``env_kwargs`` and ``reward_delay``
(:data:`TASK_KEYS`), so cells of ``env_kwargs={"g": 2.0}`` are scored against that variant's
random policy and best group, never another variant's; cells differing only in learner, teacher,
budget or compute options share one. The random policy's return is measured on the task's own
evaluation episodes (seed 0's). ``summary.csv`` and ``aggregate.csv`` name each row's ``task``;
``aggregate.csv`` also gives the two returns its normalised score is relative to
(``random_return``, ``best_return``).
"""

from __future__ import annotations

import itertools
import json
import re
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from feedbackgym.errors import ConfigError, check_positive_int
from feedbackgym.studies import io
from feedbackgym.studies.train import TrainConfig, load_yaml

SWEEP_KEYS = ("base", "grid", "gpus_per_cell")
#: summary.json fields copied into summary.csv (wall-clock ones last).
SUMMARY_FIELDS = [
    "true_return_mean",
    "true_return_std",
    "labels_used",
    "timesteps",
    "reward_model_accuracy",
    "reward_correlation",
    "success_rate",
    "device",
    "wall_seconds",
    "eval_seconds",
]
#: Columns that depend on the machine, not on the seed.
WALL_CLOCK = ("device", "wall_seconds", "eval_seconds")
BOOTSTRAP_REPS = 2000
#: The train options that define the task a cell's true return measures, and so what its
#: normalised score is relative to: the env, its constructor arguments, and how late its reward
#: arrives (a delayed reward is another learning problem on the same env). Learner, teacher,
#: budget and compute options are what a sweep compares; they are not part of the task.
TASK_KEYS = ("env", "env_kwargs", "reward_delay")


def task_of(options: dict[str, Any]) -> str:
    """The task a cell's train options define (:data:`TASK_KEYS`), as one readable name: the env
    id, then ``env_kwargs=`` (JSON, keys sorted) and ``reward_delay=`` when given, e.g.
    ``Pendulum-v1 env_kwargs={"g": 2.0}``."""
    defaults = TrainConfig()
    name = str(options.get("env", defaults.env))
    env_kwargs = options.get("env_kwargs") or {}
    if env_kwargs:
        name += " env_kwargs=" + json.dumps(env_kwargs, sort_keys=True, default=str)
    if options.get("reward_delay") is not None:
        name += f" reward_delay={options['reward_delay']}"
    return name


@dataclass
class SweepCell:
    """One grid point: its axis labels, its train options and its folder name."""

    labels: dict[str, str]
    options: dict[str, Any]

    @property
    def name(self) -> str:
        text = "__".join(f"{axis}={label}" for axis, label in self.labels.items())
        return re.sub(r"[^A-Za-z0-9._=-]+", "-", text)


@dataclass
class Sweep:
    """A parsed sweep file (see the module docstring)."""

    base: dict[str, Any]
    grid: dict[str, list[Any]]
    gpus_per_cell: float = 0.0
    cells_: list[SweepCell] = field(default_factory=list, repr=False)

    @classmethod
    def from_dict(cls, data: Any, source: str = "sweep") -> Sweep:
        """Parse and check the file's mapping; every problem is a one-line ConfigError."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source} must be a mapping with keys {', '.join(SWEEP_KEYS)}")
        for key in data:
            if key not in SWEEP_KEYS:
                raise ConfigError(
                    f"{source} has unknown key {key!r}; valid: {', '.join(SWEEP_KEYS)}"
                )
        base = data.get("base") or {}
        grid = data.get("grid") or {}
        if not isinstance(base, dict) or not isinstance(grid, dict):
            raise ConfigError(f"{source}: base and grid must be mappings")
        names = TrainConfig.__dataclass_fields__
        for key in base:
            if key not in names:
                raise ConfigError(
                    f"{source}: base has unknown train option {key!r}; valid: {', '.join(names)}"
                )
        if not grid or any(not isinstance(v, list) or not v for v in grid.values()):
            raise ConfigError(
                f"{source}: grid must map each axis (a train option) to a non-empty list of "
                f"values, got {grid!r}"
            )
        for axis in grid:
            if axis not in names:
                raise ConfigError(
                    f"{source}: grid axis {axis!r} is not a train option; valid: {', '.join(names)}"
                )
        gpus = data.get("gpus_per_cell", 0.0)
        if isinstance(gpus, bool) or not isinstance(gpus, (int, float)) or gpus < 0:
            raise ConfigError(f"{source}: gpus_per_cell must be a number >= 0, got {gpus!r}")
        sweep = cls(dict(base), {k: list(v) for k, v in grid.items()}, float(gpus))
        sweep.cells_ = sweep._expand(source)
        return sweep

    @classmethod
    def from_yaml(cls, path: str | Path) -> Sweep:
        return cls.from_dict(load_yaml(path), f"sweep {str(path)!r}")

    def _expand(self, source: str) -> list[SweepCell]:
        choices = []
        for axis, values in self.grid.items():
            row = []
            for value in values:
                if isinstance(value, dict):
                    if axis not in value:
                        raise ConfigError(
                            f"{source}: grid axis {axis!r} has a value without {axis!r}: {value!r}"
                        )
                    options = {k: v for k, v in value.items() if k != "label"}
                    label = str(value.get("label", value[axis]))
                else:
                    options, label = {axis: value}, str(value)
                row.append((label, options))
            labels = [label for label, _ in row]
            if len(set(labels)) < len(labels):
                raise ConfigError(
                    f"{source}: grid axis {axis!r} repeats a value ({', '.join(labels)}); give "
                    "each a distinct 'label'"
                )
            choices.append(row)
        cells = []
        for combo in itertools.product(*choices):
            labels, options = {}, dict(self.base)
            for axis, (label, extra) in zip(self.grid, combo, strict=True):
                labels[axis] = label
                options.update(extra)
            options["progress"] = False
            cells.append(SweepCell(labels, options))
        return cells

    def cells(self) -> list[SweepCell]:
        return list(self.cells_)

    def config(self) -> dict[str, Any]:
        """What defines the sweep (saved as ``DIR/sweep.json``; a resume must match it)."""
        return {"base": self.base, "grid": self.grid, "gpus_per_cell": self.gpus_per_cell}

    def validate(self) -> None:
        """Check every cell as ``train`` would (cells differing only by seed are checked once)."""
        from feedbackgym.studies.train import check

        seen: set[str] = set()
        for cell in self.cells_:
            key = json.dumps(
                {k: v for k, v in cell.options.items() if k != "seed"}, sort_keys=True, default=str
            )
            try:
                config = TrainConfig.from_dict(cell.options, f"cell {cell.name}")
                if key not in seen:
                    seen.add(key)
                    check(config)
            except ConfigError as exc:
                raise ConfigError(f"cell {cell.name}: {exc}") from None


def run_cell(job: tuple[dict[str, Any], str]) -> dict[str, Any]:
    """Train one cell into its folder (or read its finished summary back).

    BLAS and OpenMP run on one thread, as Ray gives its tasks (``OMP_NUM_THREADS=1``): float
    sums then add up in the same order on every backend, so a cell's numbers do not depend on
    where it ran.
    """
    from threadpoolctl import threadpool_limits

    from feedbackgym.studies.train import train

    options, folder = job
    with threadpool_limits(limits=1):
        return train(TrainConfig.from_dict(options), folder)


def run_sweep(
    sweep: Sweep,
    out: str | Path,
    backend: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
    progress: bool = True,
    console: Any = None,
) -> list[dict[str, Any]]:
    """Run (or resume) ``sweep`` into ``out``; returns the summary rows.

    Everything is checked first (each cell's options as ``train`` would, the folder, the
    backend): a bad value is a ConfigError and ``out`` is left as it was.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from feedbackgym.studies.runner import BACKENDS, execute, import_ray, ray_session

    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    workers = check_positive_int("workers", workers)
    if backend == "ray":
        import_ray()
    out = Path(out)
    _check_out_dir(out, sweep)
    sweep.validate()
    cells = sweep.cells()
    todo = [c for c in cells if not (out / "cells" / c.name / "summary.json").exists()]
    console = console or Console(stderr=True)
    columns = [
        TextColumn("sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("cells"),
        TimeElapsedColumn(),
    ]
    with ray_session(ray_address, workers) if backend == "ray" else nullcontext():
        io.write_json(out / "sweep.json", sweep.config())
        jobs = [(cell.options, str(out / "cells" / cell.name)) for cell in todo]
        with Progress(*columns, console=console, disable=not progress) as bar:
            task = bar.add_task("cells", total=len(cells), completed=len(cells) - len(todo))
            num_gpus = sweep.gpus_per_cell if backend == "ray" else 0.0
            for _ in execute(run_cell, jobs, backend, workers, num_gpus=num_gpus):
                bar.advance(task)
    return write_results(sweep, out)


def _check_out_dir(out: Path, sweep: Sweep) -> None:
    old = io.saved_config(out, "sweep.json", "sweep")
    if old is not None and old != json.loads(json.dumps(sweep.config())):
        raise ConfigError(
            f"--out {str(out)!r} holds a different sweep; give another --out, or the same "
            "sweep file to resume it"
        )


# ----- results --------------------------------------------------------------------------------
def write_results(sweep: Sweep, out: Path) -> list[dict[str, Any]]:
    """summary.csv, aggregate.csv, returns.png and profiles.png from the cells' summaries."""
    axes = list(sweep.grid)
    rows = []
    for cell in sweep.cells():
        summary = json.loads((out / "cells" / cell.name / "summary.json").read_text())
        # an ``env`` axis keeps its labels (two labelled entries of one env are two groups)
        row: dict[str, Any] = {
            "cell": cell.name,
            "env": cell.options.get("env", TrainConfig.env),
            **cell.labels,
            "task": task_of(cell.options),
        }
        # an axis named like a summary field (timesteps, device) keeps its label: cells group by
        # what was asked for, not what the run reports
        fields = [k for k in SUMMARY_FIELDS if k not in axes]
        row.update({k: summary.get(k) for k in fields})
        rows.append(row)
    columns = ["cell", *axes, *(["env"] if "env" not in axes else []), "task", *fields]
    io.write_csv(out / "summary.csv", columns, [[row.get(c) for c in columns] for row in rows])
    lows = random_returns(sweep)
    groups = aggregate(rows, [a for a in axes if a != "seed"], lows)
    header = aggregate_columns([a for a in axes if a != "seed"])
    io.write_csv(out / "aggregate.csv", header, [[g.get(c) for c in header] for g in groups])
    plot_returns(groups, axes, out / "returns.png")
    plot_profiles(rows, groups, [a for a in axes if a != "seed"], lows, out / "profiles.png")
    return rows


def aggregate_columns(keys: list[str]) -> list[str]:
    """The columns of aggregate.csv for groups keyed by ``keys``."""
    return [
        *keys,
        *(["env"] if "env" not in keys else []),
        "task",
        "seeds",
        "return_mean",
        "return_iqm",
        "return_iqm_low",
        "return_iqm_high",
        "normalised_iqm",
        "normalised_iqm_low",
        "normalised_iqm_high",
        "random_return",
        "best_return",
        "labels_used_mean",
    ]


def iqm_interval(values: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """IQM of ``values`` (one score per seed) and its 95% stratified-bootstrap interval
    (rliable, ``reps`` = 2000, a fixed random state: the same numbers give the same interval)."""
    from rliable import library, metrics

    scores = {"x": np.asarray(values, dtype=np.float64).reshape(-1, 1)}

    def iqm(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(x)])

    with warnings.catch_warnings():  # arch deprecates the random_state rliable passes it
        warnings.simplefilter("ignore", FutureWarning)
        point, interval = library.get_interval_estimates(
            scores, iqm, reps=BOOTSTRAP_REPS, random_state=np.random.RandomState(seed)
        )
    return float(point["x"][0]), float(interval["x"][0, 0]), float(interval["x"][1, 0])


def aggregate(
    rows: list[dict[str, Any]], keys: list[str], lows: dict[str, float]
) -> list[dict[str, Any]]:
    """One row per group of ``rows`` sharing ``keys`` (all but the seed) and the task, in
    first-seen order; normalised by ``lows`` (the random policy's return per task, keyed as
    :func:`task_of` names it) and the best group's mean on the same task."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((*(row[k] for k in keys), row["task"]), []).append(row)
    highs: dict[str, float] = {}  # the best group's mean return per task
    for g, members in groups.items():
        mean = float(np.mean([r["true_return_mean"] for r in members]))
        highs[g[-1]] = max(highs.get(g[-1], -np.inf), mean)
    out = []
    for g, members in groups.items():
        returns = np.array([r["true_return_mean"] for r in members], dtype=np.float64)
        task = g[-1]
        iqm, low, high = iqm_interval(returns)
        scale = highs[task] - lows[task]
        norm = (returns - lows[task]) / scale if scale > 0 else np.full_like(returns, np.nan)
        n_iqm, n_low, n_high = iqm_interval(norm) if scale > 0 else (np.nan,) * 3
        out.append(
            {
                "env": members[0]["env"],
                **dict(zip(keys, g[:-1], strict=True)),
                "task": task,
                "seeds": len(members),
                "return_mean": float(returns.mean()),
                "return_iqm": iqm,
                "return_iqm_low": low,
                "return_iqm_high": high,
                "normalised_iqm": n_iqm,
                "normalised_iqm_low": n_low,
                "normalised_iqm_high": n_high,
                "random_return": lows[task],
                "best_return": highs[task],
                "labels_used_mean": float(np.mean([r["labels_used"] or 0 for r in members])),
            }
        )
    return out


def random_returns(sweep: Sweep) -> dict[str, float]:
    """The uniform-random policy's return per task of the sweep (:func:`task_of`), each on its
    own evaluation episodes: those of the task's first cell, at seed 0."""
    from feedbackgym.studies import train

    firsts: dict[str, dict[str, Any]] = {}
    for cell in sweep.cells():
        firsts.setdefault(task_of(cell.options), cell.options)
    return {
        task: train.random_return(TrainConfig.from_dict({**options, "seed": 0}))
        for task, options in firsts.items()
    }


def _x_axis(axes: list[str], groups: list[dict[str, Any]]) -> str | None:
    """The axis plotted along x: ``labels`` when swept, else the first numeric axis."""
    candidates = ["labels"] + [a for a in axes if a != "labels"]
    for axis in candidates:
        if axis in axes and axis != "seed":
            try:
                [float(g[axis]) for g in groups]
            except (TypeError, ValueError):
                continue
            return axis
    return None


def plot_returns(groups: list[dict[str, Any]], axes: list[str], path: Path) -> None:
    """IQM return (95% CI band) against the x axis, one line per group of the other axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [a for a in axes if a != "seed"]
    x = _x_axis(keys, groups)
    figure, ax = plt.subplots(figsize=(7, 4.5))
    others = [k for k in keys if k != x]
    lines: dict[str, list[dict[str, Any]]] = {}
    for g in groups:
        name = ", ".join(f"{k}={g[k]}" for k in others) or "all"
        lines.setdefault(name, []).append(g)
    for position, (name, members) in enumerate(lines.items()):
        if x is None:
            ax.bar(position, members[0]["return_iqm"], label=name)
            ax.errorbar(
                position,
                members[0]["return_iqm"],
                yerr=[
                    [members[0]["return_iqm"] - members[0]["return_iqm_low"]],
                    [members[0]["return_iqm_high"] - members[0]["return_iqm"]],
                ],
                color="black",
            )
            continue
        members = sorted(members, key=lambda g: float(g[x]))
        xs = [float(g[x]) for g in members]
        ax.plot(xs, [g["return_iqm"] for g in members], marker="o", label=name)
        ax.fill_between(
            xs,
            [g["return_iqm_low"] for g in members],
            [g["return_iqm_high"] for g in members],
            alpha=0.2,
        )
    ax.set_xlabel(x or "group")
    ax.set_ylabel("true return (IQM, 95% CI)")
    ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_profiles(
    rows: list[dict[str, Any]],
    groups: list[dict[str, Any]],
    keys: list[str],
    lows: dict[str, float],
    path: Path,
) -> None:
    """Normalised-score profiles (rliable): the share of runs scoring above tau, per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rliable import library, plot_utils

    highs = {g["task"]: g["best_return"] for g in groups}
    tasks = list(highs)
    scores: dict[str, list[float]] = {}
    for row in rows:
        name = ", ".join(str(row[k]) for k in keys) or "all"
        if len(tasks) > 1:  # say which task's random policy and best group scored it
            name += f" [{row['task']}]"
        scale = highs[row["task"]] - lows[row["task"]]
        scores.setdefault(name, []).append(
            (row["true_return_mean"] - lows[row["task"]]) / scale if scale > 0 else 0.0
        )
    arrays = {k: np.asarray(v, dtype=np.float64).reshape(-1, 1) for k, v in scores.items()}
    taus = np.linspace(-0.1, 1.2, 66)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        profiles, cis = library.create_performance_profile(arrays, taus, reps=BOOTSTRAP_REPS)
    figure, ax = plt.subplots(figsize=(7, 4.5))
    palette = plt.get_cmap("tab10")
    colors = {name: palette(i % 10) for i, name in enumerate(arrays)}
    plot_utils.plot_performance_profiles(
        profiles,
        taus,
        performance_profile_cis=cis,
        colors=colors,
        xlabel=r"normalised score $\tau$",
        ax=ax,
    )
    handles = [matplotlib.lines.Line2D([], [], color=c) for c in colors.values()]
    ax.legend(handles, list(colors), fontsize=7)
    ax.set_title(
        "normalised per task: (return - random) / (best group - random)"
        + ("" if len(tasks) > 1 else f"\non {tasks[0]}"),
        fontsize=8,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


__all__ = [
    "TASK_KEYS",
    "Sweep",
    "SweepCell",
    "aggregate",
    "iqm_interval",
    "random_returns",
    "run_sweep",
    "task_of",
    "write_results",
]
