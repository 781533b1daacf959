"""The ``feedbackgym`` command: list envs and agents, run regret studies, run the demo."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from feedbackgym.errors import ConfigError

DEMO_ENV = "feedbackgym/BernoulliBandit-v0"
DEMO_AGENTS = "ucb1,kl-ucb,thompson,epsilon-greedy,exp3"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _json_object(text: str, flag: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{flag} is not valid JSON ({exc.msg} at column {exc.colno}): {text}"
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(f"{flag} must be a JSON object like '{{\"key\": 1}}', got {text}")
    return value


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="feedbackgym",
        description="Reinforcement learning from simulated human feedback.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    envs = sub.add_parser(
        "envs",
        help="list registered environments",
        description="List every registered env id with a one-line description, or describe "
        "the ENV ids given: module:ID imports module first (as every command does), and "
        "module: lists the envs that importing module registers.",
    )
    envs.add_argument(
        "ids", nargs="*", metavar="ENV", help="env ids to describe (module:ID, or module:)"
    )
    sub.add_parser("agents", help="list registered agents")

    regret = sub.add_parser(
        "regret",
        help="run (or resume) a bandit regret study",
        description="Run agents for many independent runs on a bandit env and write summary.csv, "
        "regret.csv and regret.png into --out. Re-running into the same --out resumes.",
    )
    regret.add_argument(
        "--env",
        required=True,
        help="env id, e.g. feedbackgym/BernoulliBandit-v0; module:ID imports module first",
    )
    regret.add_argument("--env-kwargs", default="{}", help="JSON object of env arguments")
    regret.add_argument("--agents", required=True, help="comma-separated agent names")
    regret.add_argument("--agent-kwargs", default="{}", help='JSON: {"agent": {"param": value}}')
    regret.add_argument("--horizon", type=int, required=True, help="steps per run T")
    regret.add_argument("--runs", type=int, default=100, help="independent runs per agent")
    regret.add_argument("--seed", type=int, default=0, help="master seed")
    regret.add_argument(
        "--metric",
        default=None,
        help="regret notion (default: the env's first that applies, e.g. regret)",
    )
    regret.add_argument(
        "--delay",
        default=None,
        help="delay the feedback: fixed:D, geometric:P, uniform:LOW-HIGH or batched:PERIOD",
    )
    regret.add_argument("--out", required=True, help="results folder")
    regret.add_argument("--backend", default="local", help="local or ray")
    regret.add_argument("--ray-address", default=None, help="Ray cluster address (default: local)")
    regret.add_argument("--workers", type=int, default=1, help="parallel worker processes/CPUs")
    regret.add_argument("--runs-per-cell", type=int, default=100, help="runs per unit of work")
    regret.add_argument(
        "--path",
        choices=("auto", "fused", "steps"),
        default="auto",
        help="auto: fused compiled loop when env and agent allow it; fused: only that (error "
        "otherwise); steps: the step-by-step loop",
    )
    regret.add_argument("--tensorboard", action="store_true", help="also write TensorBoard logs")
    regret.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    train = sub.add_parser(
        "train",
        help="train an agent from a simulated teacher's preferences (or the true reward)",
        description="Train an SB3 agent on a reward learned from a simulated teacher "
        "(pref-ppo, pref-sac) or on the true reward (ppo, sac), and write config.yaml, "
        "summary.json, curve.csv/png, tensorboard/, model.zip, reward_model.pt and "
        "feedback.jsonl into --out. Re-running the same command resumes; a YAML --config may "
        "give any option (flags override it).",
    )
    train.add_argument("--env", help="Gymnasium id, e.g. Pendulum-v1 or my_module:MyEnv-v0")
    train.add_argument("--env-kwargs", help="JSON object of env arguments")
    train.add_argument(
        "--algo",
        help="pref-ppo, pref-sac, ppo, sac, cpl (no reward model, no RL), rrd-ppo, rrd-sac "
        "(delayed rewards), lang-goal or pref-goal (PointGoal)",
    )
    train.add_argument(
        "--teacher", help="feedback model name (default: oracle; language for lang-goal)"
    )
    train.add_argument("--teacher-kwargs", help="JSON object of teacher arguments")
    train.add_argument(
        "--labels", type=int, help="most answers to ask for over the run (corrections too)"
    )
    train.add_argument("--query", help="uniform, disagreement or entropy")
    train.add_argument("--segment-length", type=int, help="steps per segment shown")
    train.add_argument("--encoder", help="sentence encoder of lang-goal: builtin or minilm")
    train.add_argument(
        "--reward-delay",
        help="the env's reward arrives late: episode-end, or lag:DELAY[:ARGS] (lag:fixed:10, "
        "lag:geometric:0.1, lag:uniform:0:20, lag:batched:25)",
    )
    train.add_argument("--timesteps", type=int, help="environment steps in all")
    train.add_argument("--n-envs", type=int, help="parallel envs")
    train.add_argument("--seed", type=int, help="seed of everything in the run")
    train.add_argument("--device", help="auto, cpu or cuda")
    train.add_argument("--config", help="YAML file of train options")
    train.add_argument("--out", required=True, help="run folder")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    sweep = sub.add_parser(
        "sweep",
        help="run (or resume) a grid of training runs",
        description="Run a grid of `feedbackgym train` runs (a sweep file: base options, grid "
        "axes, seeds), one run folder per cell under OUT/cells, on worker processes or Ray, and "
        "write OUT/summary.csv, OUT/aggregate.csv (IQM and 95%% stratified-bootstrap intervals "
        "over seeds), returns.png and profiles.png. Re-running resumes.",
    )
    sweep.add_argument("--config", required=True, help="sweep YAML file (base, grid)")
    sweep.add_argument("--out", required=True, help="sweep folder")
    sweep.add_argument("--backend", default="local", help="local or ray")
    sweep.add_argument("--ray-address", help="Ray cluster to join (default: a local Ray)")
    sweep.add_argument("--workers", type=int, default=1, help="cells run at once")
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    label = sub.add_parser(
        "label",
        help="serve the human teacher's queries to people in a browser",
        description="Serve the preference queries of a human teacher (--teacher human "
        '--teacher-kwargs \'{"dir": DIR, "env": ...}\') from the label folder DIR: each '
        "annotator opens a personal link, watches two clips and picks the better one; every "
        "answer is on disk before the next query shows. Runs until Ctrl-C; restart at will.",
    )
    label.add_argument("--out", required=True, help="label folder (shared with the teacher)")
    label.add_argument(
        "--annotator",
        action="append",
        default=None,
        help="annotator name; repeat for several (default: one named 'annotator'). A new name "
        "gets a new token, printed once in its link",
    )
    label.add_argument("--reissue", action="store_true", help="new tokens for the named annotators")
    label.add_argument("--host", default="127.0.0.1", help="address to listen on")
    label.add_argument("--port", type=int, default=8000, help="port to listen on")
    label.add_argument(
        "--lease",
        type=float,
        default=60.0,
        help="seconds a query shown to one annotator is kept from the others",
    )

    calibrate = sub.add_parser(
        "calibrate",
        help="fit the simulated teachers (and a learned one) to a feedback log",
        description="Fit each simulated teacher's parameter to the preferences of a feedback "
        "log by maximum likelihood (stochastic beta, mistake rate, myopic gamma, regret beta "
        "where the env has optimal values; the oracle as is), print each one's "
        "log-likelihood and agreement, and save a learned teacher fitted to the log.",
    )
    calibrate.add_argument("--log", required=True, help="feedback log, e.g. DIR/feedback.jsonl")
    calibrate.add_argument("--model", type=int, help="only this model id of the log")
    calibrate.add_argument(
        "--env", help="env id with optimal values, for the regret teacher (or module:ID)"
    )
    calibrate.add_argument(
        "--save", help="file of the learned teacher (default: learned_teacher.pt by the log)"
    )
    calibrate.add_argument("--epochs", type=int, default=200, help="learned teacher's epochs")
    calibrate.add_argument(
        "--holdout", type=float, default=0.2, help="share of labels the learned one is scored on"
    )
    calibrate.add_argument("--seed", type=int, default=0, help="seed of the learned teacher")

    demo = sub.add_parser("demo", help="a regret study and a pref-PPO run on built-in defaults")
    demo.add_argument("--out", default="results/demo", help="results folder")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _envs(args: argparse.Namespace) -> None:
    from feedbackgym.envs import describe, import_env_module, registered_ids, resolve_env_id
    from feedbackgym.envs.multiagent import MULTIAGENT_ENVS, describe_multiagent

    ids: list[str] = []
    for given in args.ids:  # every id is checked before anything is printed
        module, colon, name = given.rpartition(":")
        if colon and not name and module:
            found = import_env_module(module)
            if not found:
                raise ConfigError(f"importing module {module!r} registered no env")
            ids += found
        else:
            ids.append(resolve_env_id(given))
    if not args.ids:
        ids = registered_ids() + sorted(MULTIAGENT_ENVS)
    for env_id in dict.fromkeys(ids):
        if env_id in MULTIAGENT_ENVS:
            print(f"{env_id:<40} (multi-agent) {describe_multiagent(env_id)}")
        else:
            print(f"{env_id:<40} {describe(env_id)}")


def _print_summary(rows: list[dict[str, Any]], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"regret study -> {out}")
    for column in ("agent", "runs", "horizon", "final regret", "pulls/s"):
        table.add_column(column, justify="left" if column == "agent" else "right")
    for row in rows:
        table.add_row(
            row["agent"],
            str(row["runs"]),
            str(row["horizon"]),
            f"{row['final_regret_mean']:.1f} ± {row['final_regret_sem']:.1f}",
            f"{row['steps_per_second']:,.0f}",
        )
    Console().print(table)
    for name in ("summary.csv", "regret.csv", "regret.png"):
        print(f"{name:<12} {out / name}")  # plain print: paths must not be wrapped


def _regret(args: argparse.Namespace) -> None:
    from feedbackgym.studies.regret import RegretStudy
    from feedbackgym.studies.runner import run_study

    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    study = RegretStudy(
        env=args.env,
        env_kwargs=_json_object(args.env_kwargs, "--env-kwargs"),
        agents=agents,
        agent_kwargs=_json_object(args.agent_kwargs, "--agent-kwargs"),
        horizon=args.horizon,
        runs=args.runs,
        seed=args.seed,
        runs_per_cell=args.runs_per_cell,
        metric=args.metric,
        delay=args.delay,
        path=args.path,
    )
    if not all(isinstance(v, dict) for v in study.agent_kwargs.values()):
        raise ConfigError('--agent-kwargs must map agent names to objects: {"ucb1": {"alpha": 1}}')
    out = Path(args.out)
    rows = run_study(
        study,
        out,
        backend=args.backend,
        workers=args.workers,
        ray_address=args.ray_address,
        tensorboard=args.tensorboard,
        progress=not args.no_progress,
    )
    _print_summary(rows, out)


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


def _train(args: argparse.Namespace) -> None:
    from feedbackgym.studies.train import TrainConfig, load_yaml, train

    options: dict[str, Any] = load_yaml(args.config) if args.config else {}
    if args.config:
        TrainConfig.from_dict(options, f"config {args.config!r}")  # unknown keys, types
    for name in TRAIN_FLAGS:
        value = getattr(args, name)
        if value is None:
            continue
        if name.endswith("kwargs"):
            value = _json_object(value, "--" + name.replace("_", "-"))
        options[name] = value
    if args.no_progress:
        options["progress"] = False
    if "timesteps" not in options:
        raise ConfigError("--timesteps is required (or give timesteps in --config)")
    config = TrainConfig.from_dict(options, "train options")
    out = Path(args.out)
    summary = train(config, out)
    _print_train_summary(summary, out)


def _sweep(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from feedbackgym.studies.sweep import Sweep, run_sweep

    sweep = Sweep.from_yaml(args.config)
    out = Path(args.out)
    run_sweep(
        sweep,
        out,
        backend=args.backend,
        workers=args.workers,
        ray_address=args.ray_address,
        progress=not args.no_progress,
    )
    import csv

    with open(out / "aggregate.csv") as handle:
        groups = list(csv.DictReader(handle))
    keys = [k for k in sweep.grid if k != "seed"]
    table = Table(title=f"sweep -> {out}")
    for column in (*keys, "seeds", "IQM return [95% CI]", "normalised IQM"):
        table.add_column(column, justify="right" if column in ("seeds",) else "left")
    for g in groups:
        table.add_row(
            *(g[k] for k in keys),
            g["seeds"],
            f"{float(g['return_iqm']):.1f} [{float(g['return_iqm_low']):.1f}, "
            f"{float(g['return_iqm_high']):.1f}]",
            f"{float(g['normalised_iqm']):.2f}" if g["normalised_iqm"] else "-",
        )
    Console().print(table)
    # what each normalised figure is relative to, per task
    references = {g["task"]: (float(g["random_return"]), float(g["best_return"])) for g in groups}
    for task, (low, high) in references.items():
        print(f"normalised on {task}: random policy {low:.1f}, best group {high:.1f}")
    for name in ("summary.csv", "aggregate.csv", "returns.png", "profiles.png"):
        print(f"{name:<14} {out / name}")


def _label(args: argparse.Namespace) -> None:
    from feedbackgym.feedback.human import LabelQueue
    from feedbackgym.feedback.human.server import check_host, make_app, serve

    check_host(args.host)  # before the folder or its tokens are written
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be in 1..65535, got {args.port}")
    if not args.lease > 0:
        raise ConfigError(f"--lease must be > 0 seconds, got {args.lease}")
    queue = LabelQueue(args.out)
    names = args.annotator or ([] if queue.annotators() else ["annotator"])
    new = queue.add_annotators(names, reissue=args.reissue)
    make_app(args.out)  # the 'human' extra is installed: fail before printing links
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"label folder {args.out}: {len(queue.open_queries())} queries waiting")
    for name in queue.annotators():
        if name in new:
            print(f"{name:<16} http://{host}:{args.port}/?token={new[name]}")
        else:
            print(f"{name:<16} (token issued before; --annotator {name} --reissue for a new one)")
    print("Ctrl-C stops the server; answers are on disk, re-run to go on.")
    serve(args.out, host=args.host, port=args.port, lease_seconds=args.lease)


def _calibrate(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from feedbackgym.feedback.human.calibration import calibrate, save_learned

    log = Path(args.log)
    fits, learned = calibrate(
        log,
        model=args.model,
        env=args.env,
        learned_kwargs={"epochs": args.epochs},
        holdout=args.holdout,
        seed=args.seed,
    )
    table = Table(title=f"teachers fitted to {log}")
    for column in ("teacher", "fitted", "log-lik", "per label", "agreement", "labels"):
        table.add_column(column, justify="left" if column in ("teacher", "fitted") else "right")
    for fit in fits:
        ll = fit.log_likelihood
        table.add_row(
            fit.teacher,
            ", ".join(f"{k}={v:.3g}" for k, v in fit.params.items()) or "-",
            "n/a" if ll is None else f"{ll:.1f}",
            "n/a" if fit.per_label is None else f"{fit.per_label:.3f}",
            "n/a" if fit.agreement is None else f"{fit.agreement:.1%}",
            str(fit.labels) if fit.labels else "-",
        )
    Console().print(table)
    for fit in fits:
        if fit.note:
            print(f"{fit.teacher}: {fit.note}")
    save = Path(args.save) if args.save else log.with_name("learned_teacher.pt")
    save_learned(learned, save)
    print(f"learned teacher {save}")  # plain print: paths must not be wrapped


def _print_train_summary(summary: dict[str, Any], out: Path) -> None:
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


def _demo_train(out: Path, progress: bool) -> None:
    from feedbackgym.studies.train import TrainConfig, train

    summary = train(TrainConfig.from_dict({**DEMO_TRAIN, "progress": progress}), out)
    _print_train_summary(summary, out)
    print(f"tensorboard --logdir {out / 'tensorboard'}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``feedbackgym`` console script; returns the exit code."""
    try:
        args = _build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a flag argparse rejected (already reported)
        return int(exc.code or 0)
    try:
        if args.command == "envs":
            _envs(args)
        elif args.command == "agents":
            import inspect

            from feedbackgym.agents import AGENTS

            for name in AGENTS.names():
                doc = inspect.getdoc(AGENTS.get(name)) or ""
                print(f"{name:<20} {doc.splitlines()[0] if doc else ''}")
        elif args.command == "regret":
            _regret(args)
        elif args.command == "train":
            _train(args)
        elif args.command == "sweep":
            _sweep(args)
        elif args.command == "label":
            _label(args)
        elif args.command == "calibrate":
            _calibrate(args)
        elif args.command == "demo":
            means = [round(float(m), 4) for m in np.linspace(0.9, 0.1, 10)]
            _regret(
                _build_parser().parse_args(
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
            _demo_train(Path(args.out) / "pref-ppo-pendulum", progress=not args.no_progress)
    except ConfigError as exc:
        print(f"feedbackgym {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        saved = "checkpoints are" if args.command in ("train", "demo") else "finished cells are"
        print(f"feedbackgym: interrupted; {saved} saved, re-run to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
