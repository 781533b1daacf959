"""Run a regret study's cells on a backend (in-process, worker processes, Ray) and write results."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from feedbackgym.errors import ConfigError, check_positive_int
from feedbackgym.studies import io
from feedbackgym.studies.regret import (
    STUDY_KEY,
    Cell,
    RegretStudy,
    lai_robbins_constant,
    run_cell,
    sem,
)

BACKENDS = ("local", "ray")
SUMMARY_COLUMNS = [
    "agent",
    "env",
    "horizon",
    "runs",
    "final_regret_mean",
    "final_regret_sem",
    "wall_seconds",
    "steps_per_second",
]


def run_study(
    study: RegretStudy,
    out: str | Path,
    backend: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
    tensorboard: bool = False,
    progress: bool = True,
    console: Console | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume) ``study`` into the folder ``out``; returns the summary rows.

    ``backend="local"`` runs cells in this process (``workers=1``) or in ``workers`` processes;
    ``backend="ray"`` runs them as Ray tasks on the cluster at ``ray_address`` (a local Ray with
    ``workers`` CPUs when None). Every bad value raises ConfigError before any file is touched.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    workers = check_positive_int("workers", workers)
    if backend == "ray":
        import_ray()
    study.validate()
    out = Path(out)
    _check_out_dir(out, study)
    # Join the backend before writing anything, so a cluster that is not there leaves DIR as it was.
    with ray_session(ray_address, workers) if backend == "ray" else nullcontext():
        _run_cells(study, out, backend, workers, ray_address, progress, console)
    return write_results(study, out, tensorboard=tensorboard)


def _run_cells(
    study: RegretStudy,
    out: Path,
    backend: str,
    workers: int,
    ray_address: str | None,
    progress: bool,
    console: Console | None,
) -> None:
    """Run the cells not yet saved under ``out/cells`` and save each as it finishes."""
    config = {**study.config(), "backend": backend, "workers": workers, "paths": study.paths}
    io.write_json(out / "config.json", config)

    cells = study.cells()
    cells_dir = out / "cells"
    todo = [cell for cell in cells if not (cells_dir / f"{cell.name}.npz").exists()]
    threads = max(1, (os.cpu_count() or 1) // workers)
    for cell in todo:
        cell.threads = threads if (workers > 1 or backend == "ray") else 0

    console = console or Console(stderr=True)
    columns = [
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("pulls"),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=console, disable=not progress, transient=False) as bar:
        tasks = {
            agent: bar.add_task(agent, total=study.runs * study.horizon, rate="")
            for agent in study.agents
        }
        for cell in cells:
            if cell not in todo:
                bar.advance(tasks[cell.agent], cell.runs * study.horizon)

        def advance(cell: Cell, pulls: int) -> None:
            task = tasks[cell.agent]
            bar.advance(task, pulls)
            speed = bar.tasks[task].speed
            bar.update(task, rate=f"{speed / 1e6:.2f}M/s" if speed else "")

        for cell, result, streamed in execute(run_cell, todo, backend, workers, advance):
            io.write_npz(cells_dir / f"{cell.name}.npz", **result)
            if not streamed:
                advance(cell, cell.runs * study.horizon)


def import_ray() -> Any:
    """The ``ray`` module; a one-line ConfigError naming the extra to install when missing."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--backend ray needs Ray, which is not installed: "
            "pip install 'feedbackgym[distributed]'"
        ) from None
    return ray


def _check_out_dir(out: Path, study: RegretStudy) -> None:
    old = io.saved_config(out, "config.json", "study")
    if old is None:
        return
    new = study.config()
    for key in STUDY_KEY:
        if key in old and old[key] != new[key]:
            raise ConfigError(
                f"--out {str(out)!r} holds a study with {key}={json.dumps(old[key])}, not "
                f"{json.dumps(new[key])}; resuming needs the same {key}: give another --out"
            )
    # The paths give different numbers: a folder keeps the path each agent was run on. With
    # path "auto" a resume follows the folder (a folder from before fused loops: steps).
    recorded = recorded_paths(old)
    for agent, was in recorded.items():
        now = study.paths.get(agent)
        if now is None or now == was:
            continue
        if study.path == "auto" and was == "steps":
            study.paths[agent] = was
            continue
        raise ConfigError(
            f"--out {str(out)!r} holds {agent} cells run on the {was} path, not {now}; "
            f"resuming needs the same path: give --path {was} or another --out"
        )
    # config.json keeps the path of every agent the folder ever ran, so a later resume keeps to it
    study.paths = {**recorded, **study.paths}


def recorded_paths(config: dict[str, Any] | None) -> dict[str, str]:
    """The path each agent of a saved study ran on (``config.json``'s ``paths``; every agent
    of a folder written before fused loops existed ran step by step)."""
    if not config:
        return {}
    if isinstance(config.get("paths"), dict):
        return dict(config["paths"])
    return {agent: "steps" for agent in config.get("agents", [])}


def execute(
    fn: Callable[..., Any],
    items: list[Any],
    backend: str,
    workers: int,
    advance: Callable[[Any, int], None] | None = None,
    num_gpus: float = 0.0,
) -> Iterator[tuple[Any, Any, bool]]:
    """``fn(item)`` for every item, as each finishes: ``(item, result, streamed)``.

    The one cell machinery of regret studies and sweeps. ``local``: in this process
    (``workers=1``; with ``advance``, ``fn`` gets ``callback=`` to report progress as it goes,
    and ``streamed`` is True) or in ``workers`` spawned processes; ``ray``: one Ray task per
    item with one CPU and ``num_gpus`` GPUs, on the Ray that :func:`ray_session` joined.
    """
    if backend == "ray":
        yield from _run_ray(fn, items, num_gpus)
    else:
        yield from _run_local(fn, items, workers, advance)


def _run_local(
    fn: Callable[..., Any],
    items: list[Any],
    workers: int,
    advance: Callable[[Any, int], None] | None,
) -> Iterator[tuple[Any, Any, bool]]:
    if workers == 1:
        for item in items:
            if advance is None:
                yield item, fn(item), False
            else:
                yield item, fn(item, callback=lambda n, i=item: advance(i, n)), True
        return
    context = multiprocessing.get_context("spawn")  # no fork: numba and BLAS threads are live
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending = {pool.submit(fn, item): item for item in items}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield pending.pop(future), future.result(), False
        finally:
            for future in pending:
                future.cancel()


@contextmanager
def ray_session(address: str | None, workers: int) -> Iterator[Any]:
    """Ray, initialised here (local with ``workers`` CPUs, or joining ``address``) unless it
    already is; shut down on exit when started here."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if address is None:
        kwargs["num_cpus"] = workers
    else:
        _check_reachable(address)
    try:
        ray.init(address=address, logging_level="ERROR", **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"could not start or join Ray at {address or 'local'}: {first}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A one-line ConfigError when nothing listens at a ``host:port`` Ray address (Ray itself
    keeps retrying for minutes); ``auto`` and addresses without a port are left to Ray."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"could not reach Ray at {address}: {reason}") from None


def _run_ray(
    fn: Callable[..., Any], items: list[Any], num_gpus: float
) -> Iterator[tuple[Any, Any, bool]]:
    import ray

    remote = ray.remote(num_cpus=1, num_gpus=num_gpus)(fn)
    pending = {remote.remote(item): item for item in items}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            yield pending.pop(ref), ray.get(ref), False


def write_results(study: RegretStudy, out: Path, tensorboard: bool = False) -> list[dict[str, Any]]:
    """Aggregate the saved cells into summary.csv, regret.csv, regret.png (and TensorBoard)."""
    checkpoints = study.checkpoints()
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    summary = []
    by_agent: dict[str, list[Cell]] = {}
    for cell in study.cells():
        by_agent.setdefault(cell.agent, []).append(cell)
    for agent, cells in by_agent.items():
        regrets, wall = [], 0.0
        for cell in cells:
            with np.load(out / "cells" / f"{cell.name}.npz") as data:
                regrets.append(data["regret"])
                wall += float(data["wall_seconds"])
        regret = np.concatenate(regrets)
        mean, err = regret.mean(axis=0), sem(regret)
        curves[agent] = (mean, err)
        summary.append(
            {
                "agent": agent,
                "env": study.env,
                "horizon": study.horizon,
                "runs": study.runs,
                "final_regret_mean": float(mean[-1]),
                "final_regret_sem": float(err[-1]),
                "wall_seconds": wall,
                "steps_per_second": study.runs * study.horizon / wall if wall > 0 else float("inf"),
            }
        )
    io.write_csv(
        out / "summary.csv", SUMMARY_COLUMNS, ([r[c] for c in SUMMARY_COLUMNS] for r in summary)
    )
    io.write_csv(
        out / "regret.csv",
        ["agent", "t", "regret_mean", "regret_sem"],
        (
            (agent, int(t), float(m), float(e))
            for agent, (mean, err) in curves.items()
            for t, m, e in zip(checkpoints, mean, err, strict=True)
        ),
    )
    plot_regret(study, checkpoints, curves, out / "regret.png")
    if tensorboard:
        write_tensorboard(out / "tensorboard", checkpoints, curves)
    return summary


def plot_regret(
    study: RegretStudy,
    checkpoints: np.ndarray,
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    path: Path,
) -> None:
    """Mean cumulative regret with a standard-error band per agent (+ Lai-Robbins when defined)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    for agent, (mean, err) in curves.items():
        (line,) = ax.plot(checkpoints, mean, label=agent, lw=1.8)
        ax.fill_between(checkpoints, mean - err, mean + err, color=line.get_color(), alpha=0.2)
    constant = lai_robbins_constant(study) if study.info_key == "regret" else None
    if constant:
        ax.plot(
            checkpoints,
            constant * np.log(checkpoints),
            "k--",
            lw=1.2,
            label="Lai-Robbins lower bound",
        )
    ax.set_xscale("log")
    ax.set_xlabel("step t (log scale)")
    metric = "regret" if study.info_key == "regret" else f"{study.metric} regret"
    ax.set_ylabel(f"cumulative {metric}")
    ax.set_title(f"{study.env}: mean ± s.e. over {study.runs} runs", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    io.atomic_write(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)


def write_tensorboard(
    folder: Path, checkpoints: np.ndarray, curves: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    """One TensorBoard run per agent with ``regret/mean`` and ``regret/sem`` against t.

    The logs are derived from the saved cells, so they are rewritten whole each time.
    """
    from torch.utils.tensorboard import SummaryWriter

    for agent, (mean, err) in curves.items():
        run_dir = folder / agent
        shutil.rmtree(run_dir, ignore_errors=True)
        with SummaryWriter(log_dir=str(run_dir)) as writer:
            for t, m, e in zip(checkpoints, mean, err, strict=True):
                writer.add_scalar("regret/mean", float(m), int(t))
                writer.add_scalar("regret/sem", float(e), int(t))
