"""What the commands share: the one-line-error parser, JSON flags, the training-run table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, NoReturn

from feedbackgym.errors import ConfigError


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def json_object(text: str, flag: str) -> dict[str, Any]:
    """The JSON object given to ``flag``; a ConfigError naming the flag if it is not one."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{flag} is not valid JSON ({exc.msg} at column {exc.colno}): {text}"
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(f"{flag} must be a JSON object like '{{\"key\": 1}}', got {text}")
    return value


def print_train_summary(summary: dict[str, Any], out: Path) -> None:
    """One training run's summary as a table, then where its results are."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"training run -> {out}")
    for column in ("algo", "teacher", "labels", "timesteps", "true return", "wall s"):
        table.add_column(column, justify="left" if column in ("algo", "teacher") else "right")
    table.add_row(
        summary["algo"],
        str(summary["teacher"] or "-"),
        str(summary["labels_used"]),
        f"{summary['timesteps']:,}",
        f"{summary['true_return_mean']:.1f} ± {summary['true_return_std']:.1f}",
        f"{summary['wall_seconds']:.0f}",
    )
    Console().print(table)
    for name in ("summary.json", "curve.png", "tensorboard"):
        print(f"{name:<12} {out / name}")  # plain print: paths must not be wrapped
