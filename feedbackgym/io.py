"""Atomic file writes: a crash leaves the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix, so writers that add one do not) for the
    block to write to; moved over ``path`` when the block ends, removed if it raises.

    >>> with atomic_path("runs/a/model.zip") as tmp:  # doctest: +SKIP
    ...     model.save(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    tmp = Path(name)
    # The writer creates the file itself (mkstemp's would be private to its owner, 0600, and
    # some writers warn about overwriting it): the result has the usual permissions of new files.
    tmp.unlink()
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a file handle of a temporary file beside ``path`` (flushed to disk)
    and move it into place when done."""
    with atomic_path(path) as tmp, open(tmp, "xb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
