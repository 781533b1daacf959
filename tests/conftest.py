"""Shared fixtures: small bandit instances and a helper to run the CLI in-process."""

from __future__ import annotations

import pytest

import feedbackgym  # noqa: F401  (registers the envs)
from feedbackgym.cli import main

EASY_MEANS = [0.9, 0.6, 0.4, 0.2]


@pytest.fixture
def cli(capsys):
    """Run ``feedbackgym ARGS`` in-process; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
