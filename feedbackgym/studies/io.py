"""Study results written atomically (:mod:`feedbackgym.io`): text, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from feedbackgym.io import atomic_write


def write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a CSV with floats in a fixed format, so equal numbers give equal bytes."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([f"{v:.10g}" if isinstance(v, (float, np.floating)) else v for v in row])
    write_text(path, buf.getvalue())


def write_npz(path: str | Path, **arrays: Any) -> None:
    atomic_write(path, lambda f: np.savez(f, **arrays))


def saved_config(out: Path, name: str, what: str) -> Any:
    """The JSON ``out/name`` that an earlier study or sweep left, or None for a new (absent or
    empty) folder; a file, a folder holding something else, or an unreadable ``name`` is a
    one-line ConfigError (``what``: "study", "sweep")."""
    from feedbackgym.errors import ConfigError

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; give a folder")
    saved = out / name
    if not saved.exists():
        if out.exists() and any(out.iterdir()):
            raise ConfigError(
                f"--out {str(out)!r} is not empty and holds no {what}; give a new or empty folder"
            )
        return None
    try:
        return json.loads(saved.read_text())
    except (OSError, json.JSONDecodeError):
        raise ConfigError(f"{saved} is unreadable; give another --out") from None
