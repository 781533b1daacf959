"""Atomic file writes for study results: a crash leaves the old file or the new one, never half."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a temporary file beside ``path`` and move it into place when done."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
