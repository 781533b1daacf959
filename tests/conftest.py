"""Shared fixtures and helpers: small bandit instances, the CLI in-process, training runs."""

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


@pytest.fixture
def restore_torch_threads():
    """train() sets torch's threads (1 by default); give the other tests theirs back."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def with_flags(args: list[str], **flags: str | None) -> list[str]:
    """``args`` with each ``--flag`` set to its value (dropped when None)."""
    out = list(args)
    for name, value in flags.items():
        flag = "--" + name.replace("_", "-")
        if flag in out:
            i = out.index(flag)
            del out[i : i + 2]
        if value is not None:
            out += [flag, value]
    return out


def interrupt_at_evaluation(monkeypatch, call: int) -> None:
    """The ``call``-th evaluation of a training run raises KeyboardInterrupt, as Ctrl-C would."""
    from feedbackgym.studies import train as train_module

    real = train_module.Evaluator.__call__
    calls = []

    def evaluate(self, learner):
        calls.append(learner.num_timesteps)
        if len(calls) == call:
            raise KeyboardInterrupt
        return real(self, learner)

    monkeypatch.setattr(train_module.Evaluator, "__call__", evaluate)
