"""``feedbackgym train``: one training run from a simulated teacher (or the true reward)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from feedbackgym.cli.common import json_object, print_train_summary
from feedbackgym.errors import ConfigError

NAME = "train"
SAVED_ON_INTERRUPT = "checkpoints are"

#: The flags that are also train options (a YAML --config may give them; a flag overrides it).
TRAIN_FLAGS = (
    "env",
    "env_kwargs",
    "algo",
    "teacher",
    "teacher_kwargs",
    "labels",
    "query",
    "segment_length",
    "encoder",
    "reward_delay",
    "timesteps",
    "n_envs",
    "seed",
    "device",
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="train an agent from a simulated teacher's preferences (or the true reward)",
        description="Train an SB3 agent on a reward learned from a simulated teacher "
        "(pref-ppo, pref-sac) or on the true reward (ppo, sac), and write config.yaml, "
        "summary.json, curve.csv/png, tensorboard/, model.zip, reward_model.pt and "
        "feedback.jsonl into --out. Re-running the same command resumes; a YAML --config may "
        "give any option (flags override it).",
    )
    parser.add_argument("--env", help="Gymnasium id, e.g. Pendulum-v1 or my_module:MyEnv-v0")
    parser.add_argument("--env-kwargs", help="JSON object of env arguments")
    parser.add_argument(
        "--algo",
        help="pref-ppo, pref-sac, ppo, sac, cpl (no reward model, no RL), rrd-ppo, rrd-sac "
        "(delayed rewards), lang-goal or pref-goal (PointGoal)",
    )
    parser.add_argument(
        "--teacher", help="feedback model name (default: oracle; language for lang-goal)"
    )
    parser.add_argument("--teacher-kwargs", help="JSON object of teacher arguments")
    parser.add_argument(
        "--labels", type=int, help="most answers to ask for over the run (corrections too)"
    )
    parser.add_argument("--query", help="uniform, disagreement or entropy")
    parser.add_argument("--segment-length", type=int, help="steps per segment shown")
    parser.add_argument("--encoder", help="sentence encoder of lang-goal: builtin or minilm")
    parser.add_argument(
        "--reward-delay",
        help="the env's reward arrives late: episode-end, or lag:DELAY[:ARGS] (lag:fixed:10, "
        "lag:geometric:0.1, lag:uniform:0:20, lag:batched:25)",
    )
    parser.add_argument("--timesteps", type=int, help="environment steps in all")
    parser.add_argument("--n-envs", type=int, help="parallel envs")
    parser.add_argument("--seed", type=int, help="seed of everything in the run")
    parser.add_argument("--device", help="auto, cpu or cuda")
    parser.add_argument("--config", help="YAML file of train options")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> None:
    from feedbackgym.studies.train import TrainConfig, load_yaml, train

    options: dict[str, Any] = load_yaml(args.config) if args.config else {}
    if args.config:
        TrainConfig.from_dict(options, f"config {args.config!r}")  # unknown keys, types
    for name in TRAIN_FLAGS:
        value = getattr(args, name)
        if value is None:
            continue
        if name.endswith("kwargs"):
            value = json_object(value, "--" + name.replace("_", "-"))
        options[name] = value
    if args.no_progress:
        options["progress"] = False
    if "timesteps" not in options:
        raise ConfigError("--timesteps is required (or give timesteps in --config)")
    config = TrainConfig.from_dict(options, "train options")
    out = Path(args.out)
    summary = train(config, out)
    print_train_summary(summary, out)
