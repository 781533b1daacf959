"""``feedbackgym demo``: a regret study and a pref-PPO run on built-in defaults."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from feedbackgym.cli import regret
from feedbackgym.cli.common import Parser, print_train_summary

NAME = "demo"
SAVED_ON_INTERRUPT = "checkpoints are"

DEMO_ENV = "feedbackgym/BernoulliBandit-v0"
DEMO_AGENTS = "ucb1,kl-ucb,thompson,epsilon-greedy,exp3"

#: The demo's training run: pref-PPO on Pendulum-v1 from 200 oracle answers (about a minute
#: on 2 CPU cores). PPO's settings are RL Zoo's for Pendulum, with larger minibatches.
DEMO_TRAIN: dict[str, Any] = {
    "env": "Pendulum-v1",
    "algo": "pref-ppo",
    "teacher": "oracle",
    "labels": 200,
    "timesteps": 200_000,
    "n_envs": 8,
    "seed": 0,
    "algo_kwargs": {
        "n_steps": 1024,
        "batch_size": 256,
        "gae_lambda": 0.95,
        "gamma": 0.9,
        "n_epochs": 10,
        "learning_rate": 0.001,
        "use_sde": True,
        "sde_sample_freq": 4,
    },
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME, help="a regret study and a pref-PPO run on built-in defaults"
    )
    parser.add_argument("--out", default="results/demo", help="results folder")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> None:
    means = [round(float(m), 4) for m in np.linspace(0.9, 0.1, 10)]
    # the study goes through regret's own parser, so it gets exactly the flags' defaults
    parser = Parser(prog="feedbackgym")
    regret.add_parser(parser.add_subparsers(dest="command", required=True, parser_class=Parser))
    regret.run(
        parser.parse_args(
            [
                "regret",
                "--env",
                DEMO_ENV,
                "--env-kwargs",
                json.dumps({"means": means}),
                "--agents",
                DEMO_AGENTS,
                "--horizon",
                "10000",
                "--runs",
                "200",
                "--seed",
                "0",
                "--out",
                args.out,
            ]
            + (["--no-progress"] if args.no_progress else [])
        )
    )
    demo_train(Path(args.out) / "pref-ppo-pendulum", progress=not args.no_progress)


def demo_train(out: Path, progress: bool) -> None:
    """The demo's training run (DEMO_TRAIN) into ``out``, then its summary."""
    from feedbackgym.studies.train import TrainConfig, train

    summary = train(TrainConfig.from_dict({**DEMO_TRAIN, "progress": progress}), out)
    print_train_summary(summary, out)
    print(f"tensorboard --logdir {out / 'tensorboard'}")
