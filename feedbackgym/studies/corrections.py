"""Corrections-to-success studies: success rate against the number of person interactions.

Each cell (learner, encoder, budget, seed) is one ordinary training run
(:func:`feedbackgym.studies.train.train`) in its own run folder under ``out``, so a study that is
stopped resumes cell by cell and every cell can be opened like any other run. The study then
reads the cells' ``summary.json`` back and writes ``study.csv`` (one row per learner and budget:
mean success, its standard error, answers used, unusable answers, and how many runs ended on a
wrong goal, confidently so, or with every answer of the budget used) and
``success_vs_interactions.png`` (success against interactions, every learner on the same axes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from feedbackgym.errors import ConfigError, check_positive_int
from feedbackgym.studies import io

STUDY_COLUMNS = (
    "learner",
    "labels",
    "runs",
    "success_mean",
    "success_se",
    "labels_used_mean",
    "unusable_mean",
    "all_labels_used_runs",
    "wrong_runs",
    "confident_wrong_runs",
)
#: A run "ends confidently wrong" when its final belief puts at least this on a wrong goal
#: (the goal learners' default ``confidence``, at which they stop asking).
CONFIDENT = 0.95


@dataclass(frozen=True)
class Learner:
    """One curve of a study: an algo (``lang-goal``, ``pref-goal``) and its options."""

    algo: str
    encoder: str | None = None
    teacher: str | None = None
    teacher_kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        return self.algo + (f" ({self.encoder})" if self.encoder else "")


def corrections_study(
    out: str | Path,
    learners: Sequence[Learner],
    budgets: Sequence[int],
    seeds: Sequence[int],
    env: str = "feedbackgym/PointGoal-v0",
    env_kwargs: dict[str, Any] | None = None,
    extra_attempts: int = 6,
    eval_episodes: int = 20,
    title: str = "",
    progress: Any = None,
) -> list[dict[str, Any]]:
    """Run every cell not yet done and return the study's rows (also in ``out/study.csv``).

    A learner with budget ``b`` runs ``2 b + extra_attempts`` attempts (a comparison needs two),
    one env, and is evaluated once at the end on ``eval_episodes`` episodes.
    """
    from feedbackgym.studies.train import TrainConfig, train

    out = Path(out)
    if not learners:
        raise ConfigError("a corrections study needs at least one learner")
    budgets = [check_positive_int("budget", b) for b in budgets]
    seeds = [int(s) for s in seeds]
    if not budgets or not seeds:
        raise ConfigError("a corrections study needs at least one budget and one seed")
    configs = []
    for learner in learners:
        for budget in budgets:
            for seed in seeds:
                config = TrainConfig.from_dict(
                    {
                        "env": env,
                        "algo": learner.algo,
                        "labels": budget,
                        "teacher": learner.teacher,
                        "teacher_kwargs": dict(learner.teacher_kwargs),
                        "encoder": learner.encoder,
                        "env_kwargs": dict(env_kwargs or {}),
                        "timesteps": 100 * (2 * budget + extra_attempts),
                        "n_envs": 1,
                        "seed": seed,
                        "eval_episodes": eval_episodes,
                        "eval_every": 100 * (2 * budget + extra_attempts),  # once, at the end
                        "checkpoint_every": 100 * (2 * budget + extra_attempts),
                        "progress": False,
                    }
                )
                folder = out / _slug(learner.name) / f"labels-{budget}" / f"seed-{seed}"
                configs.append((learner, budget, config, folder))
    for config_learner, budget, config, folder in configs:
        train(config, folder)
        if progress is not None:
            progress(config_learner, budget, config.seed)
    rows = summarise(out, learners, budgets, seeds)
    plot(out, rows, title or f"{env} {json.dumps(env_kwargs or {})}")
    return rows


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name).strip("-")


def summarise(
    out: Path, learners: Sequence[Learner], budgets: Sequence[int], seeds: Sequence[int]
) -> list[dict[str, Any]]:
    """Success per learner and budget from the cells' summaries; writes study.csv. A run is
    wrong when it succeeds in under half its evaluation episodes (the goal learners go for one
    candidate, so a run succeeds in all or none), confidently wrong when besides its final
    ``belief_max`` is at least :data:`CONFIDENT`."""
    rows = []
    for learner in learners:
        for budget in budgets:
            summaries = [
                json.loads(
                    (
                        out
                        / _slug(learner.name)
                        / f"labels-{budget}"
                        / f"seed-{s}"
                        / "summary.json"
                    ).read_text()
                )
                for s in seeds
            ]
            success = np.array([s["success_rate"] for s in summaries], dtype=float)
            wrong = success < 0.5
            belief = np.array([s.get("belief_max", np.nan) for s in summaries], dtype=float)
            rows.append(
                {
                    "learner": learner.name,
                    "labels": budget,
                    "runs": len(summaries),
                    "success_mean": float(success.mean()),
                    "success_se": float(success.std(ddof=1) / np.sqrt(len(success)))
                    if len(success) > 1
                    else 0.0,
                    "labels_used_mean": float(np.mean([s["labels_used"] for s in summaries])),
                    "unusable_mean": float(
                        np.mean([s.get("unusable_answers", 0) or 0 for s in summaries])
                    ),
                    "all_labels_used_runs": int(sum(s["labels_used"] >= budget for s in summaries)),
                    "wrong_runs": int(wrong.sum()),
                    "confident_wrong_runs": int((wrong & (belief >= CONFIDENT)).sum()),
                }
            )
    io.write_csv(out / "study.csv", STUDY_COLUMNS, [[r[c] for c in STUDY_COLUMNS] for r in rows])
    return rows


def interactions_to_reach(rows: list[dict[str, Any]], learner: str, success: float) -> int | None:
    """The smallest budget at which ``learner``'s mean success reaches ``success`` (None: never)."""
    hits = [r["labels"] for r in rows if r["learner"] == learner and r["success_mean"] >= success]
    return min(hits) if hits else None


def plot(out: Path, rows: list[dict[str, Any]], title: str) -> Path:
    """``success_vs_interactions.png``: one curve per learner, standard errors shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name in dict.fromkeys(r["learner"] for r in rows):
        mine = [r for r in rows if r["learner"] == name]
        x = np.array([r["labels"] for r in mine])
        y = np.array([r["success_mean"] for r in mine])
        se = np.array([r["success_se"] for r in mine])
        ax.plot(x, y, marker="o", label=name)
        ax.fill_between(x, y - se, y + se, alpha=0.15)
    ax.set_xscale("log")
    ax.set_xlabel("person interactions allowed (corrections, or comparisons of two attempts)")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "success_vs_interactions.png"
    io.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    return path
