"""Shared fixtures: small bandit instances and a helper to run the CLI in-process."""

from __future__ import annotations

import numba
import pytest

import feedbackgym  # noqa: F401  (registers the envs)
from feedbackgym.cli import main

# pytest-xdist already runs one worker per core; numba's parallel kernels on top would
# oversubscribe the cores, and a parallel region waits for threads the OS has paused.
numba.set_num_threads(1)

EASY_MEANS = [0.9, 0.6, 0.4, 0.2]


@pytest.fixture
def cli(capsys):
    """Run ``feedbackgym ARGS`` in-process; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
