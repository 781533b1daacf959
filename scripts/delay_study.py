"""Final regret against mean feedback delay, per agent, with the theory's additive delay term.

    .venv/bin/python scripts/delay_study.py --out runs/delay-study
    .venv/bin/python scripts/delay_study.py --agents thompson,delayed-ts,batched-ts \\
        --delays 0,25,50,100,200 --kind batched --runs 50 --horizon 3000

One regret study (:class:`feedbackgym.studies.RegretStudy`, through ``run_study``) per mean
delay, on a Bernoulli bandit (``--means``) or, with ``--env feedbackgym/DuelingBandit-v0``, on a
dueling one; each is a study folder under --out/delay-<mean> (re-running resumes). Writes
--out/regret_vs_delay.csv (agent, mean_delay, delay spec, final regret and its sem) and
--out/regret_vs_delay.png: final regret against E[tau] for every agent, and dotted, the additive
bound of Joulani, Gyorgy & Szepesvari (2013), regret(0) + (sum of the gaps) * E[tau], drawn
from the agent's regret at the smallest delay (the sum of gaps is known on a Bernoulli bandit;
on other envs pass --gap-sum). Delays of a given mean: geometric p = 1 / (mean + 1), fixed:mean,
or batched:PERIOD with PERIOD = 2 mean - 1 (mean wait (PERIOD + 1) / 2).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from feedbackgym.studies import RegretStudy, run_study

DEFAULT_MEANS = [0.9, 0.8, 0.7, 0.6, 0.5]


def delay_spec(mean: float, kind: str) -> str | None:
    """A delay spec of expected delay ``mean`` steps (None for 0)."""
    if mean == 0:
        return None
    if kind == "geometric":
        return f"geometric:{1.0 / (mean + 1.0):.6g}"  # mean (1 - p) / p
    if kind == "fixed":
        return f"fixed:{round(mean)}"
    if kind == "batched":
        return f"batched:{max(1, round(2 * mean - 1))}"
    raise SystemExit(f"unknown --kind {kind!r}; valid: geometric, fixed, batched")


def study(
    out: Path,
    agents: list[str],
    delays: list[float],
    runs: int,
    horizon: int,
    kind: str = "geometric",
    env: str = "feedbackgym/BernoulliBandit-v0",
    env_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Run one study per mean delay into ``out``; returns one row per (agent, delay)."""
    rows = []
    for mean in delays:
        spec = delay_spec(mean, kind)
        cfg = RegretStudy(
            env=env,
            env_kwargs=dict(env_kwargs or {}),
            agents=agents,
            horizon=horizon,
            runs=runs,
            seed=seed,
            runs_per_cell=runs,
            n_checkpoints=20,
            delay=spec,
        )
        for r in run_study(cfg, out / f"delay-{mean:g}", progress=False):
            rows.append(
                {
                    "agent": r["agent"],
                    "mean_delay": mean,
                    "delay": spec or "none",
                    "final_regret_mean": r["final_regret_mean"],
                    "final_regret_sem": r["final_regret_sem"],
                }
            )
    return rows


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot(rows: list[dict[str, Any]], gap_sum: float | None, path: Path, horizon: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for agent in dict.fromkeys(r["agent"] for r in rows):
        mine = sorted((r for r in rows if r["agent"] == agent), key=lambda r: r["mean_delay"])
        x = [r["mean_delay"] for r in mine]
        y = [r["final_regret_mean"] for r in mine]
        sem = [r["final_regret_sem"] for r in mine]
        line = ax.errorbar(x, y, yerr=sem, fmt="o-", capsize=2, label=agent)[0]
        if gap_sum is not None:
            ref = [y[0] + gap_sum * (m - x[0]) for m in x]
            ax.plot(x, ref, ":", color=line.get_color(), alpha=0.6)
    if gap_sum is not None:
        ax.plot([], [], "k:", label=f"regret(0) + {gap_sum:.2g} E[tau] (Joulani et al. 2013)")
    ax.set_xlabel("mean delay E[tau] (steps)")
    ax.set_ylabel(f"regret at T = {horizon}")
    ax.set_title("Final regret against mean feedback delay")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", default="runs/delay-study")
    parser.add_argument("--agents", default="ucb1,thompson,delayed-ucb,qpmd,delayed-ts,batched-ts")
    parser.add_argument("--delays", default="0,25,50,100,200", help="mean delays E[tau]")
    parser.add_argument("--kind", default="geometric", help="geometric, fixed or batched")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--horizon", type=int, default=3000)
    parser.add_argument("--env", default="feedbackgym/BernoulliBandit-v0")
    parser.add_argument("--means", default=None, help="Bernoulli means, comma-separated")
    parser.add_argument("--env-kwargs", default="{}", help="JSON of the env's kwargs")
    parser.add_argument("--gap-sum", type=float, default=None, help="sum of the gaps (theory)")
    args = parser.parse_args(argv)
    env_kwargs = json.loads(args.env_kwargs)
    bernoulli = args.env == "feedbackgym/BernoulliBandit-v0"
    if bernoulli:
        means = [float(m) for m in args.means.split(",")] if args.means else DEFAULT_MEANS
        env_kwargs.setdefault("means", means)
    gap_sum = args.gap_sum
    if gap_sum is None and "means" in env_kwargs:
        means = env_kwargs["means"]
        gap_sum = sum(max(means) - m for m in means)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = study(
        out,
        [a.strip() for a in args.agents.split(",") if a.strip()],
        sorted(float(d) for d in args.delays.split(",")),
        args.runs,
        args.horizon,
        kind=args.kind,
        env=args.env,
        env_kwargs=env_kwargs,
    )
    write_csv(rows, out / "regret_vs_delay.csv")
    plot(rows, gap_sum, out / "regret_vs_delay.png", args.horizon)
    for r in rows:
        print(f"{r['agent']:>14}  E[tau]={r['mean_delay']:<6g} regret {r['final_regret_mean']:.1f}")
    return rows


if __name__ == "__main__":
    main()
