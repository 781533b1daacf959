"""Write one benchmark's section of benchmarks/RESULTS.md, leaving the other sections alone."""

from __future__ import annotations

import datetime
import platform
import re
import subprocess
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = (
    "# Benchmark results\n\n"
    "Written by the scripts in `benchmarks/` (one section each); do not edit by hand.\n"
)


def machine() -> str:
    """One line naming the machine the figures were measured on."""
    import os

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )


def commit() -> str:
    """The commit the figures were measured at, e.g. ``38698df``; ``+ changes`` is appended when
    the package, configs or benchmarks differ from it (figures of uncommitted code)."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, check=True
            )
        except (OSError, subprocess.CalledProcessError):
            return ""
        return out.stdout.strip()

    head = git("rev-parse", "--short=10", "HEAD")
    if not head:
        return "unknown commit (not a git checkout)"
    dirty = git("status", "--porcelain", "--", "feedbackgym", "configs", "benchmarks/*.py")
    return f"{head} + changes" if dirty else head


def update_section(name: str, markdown: str) -> None:
    """Replace (or append) the section ``name`` of RESULTS.md with ``markdown``, stamped with
    the date, the machine and the commit measured (so a figure can be traced to its code)."""
    stamp = datetime.date.today().isoformat()
    body = (
        f"<!-- {name}:start -->\n{markdown.rstrip()}\n\n"
        f"_Measured {stamp} at commit `{commit()}` on {machine()}._\n<!-- {name}:end -->"
    )
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    pattern = re.compile(
        rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->", re.S
    )
    text = (
        pattern.sub(lambda _: body, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + body + "\n"
    )
    RESULTS.write_text(text)
