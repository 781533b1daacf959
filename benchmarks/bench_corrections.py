"""Learning from corrections in words vs from preferences on PointGoal (the language targets).

    .venv/bin/python benchmarks/bench_corrections.py [--seeds 30] [--keep DIR]

Every cell is a `feedbackgym train` run (`feedbackgym.studies.corrections`): lang-goal with the
built-in and the MiniLM encoder, and the pref-goal baseline (one comparison of two attempts per
interaction, oracle teacher), on feedbackgym/PointGoal-v0. Success = share of 20 evaluation
episodes that end within 0.1 of the true goal, with the learner's most probable candidate.
Parts, each with its plot in benchmarks/:

- ``clean``: 10 candidates, the default language teacher (all LLF-Bench kinds, no noise);
  targets: >= 80% success with <= 20 corrections for each encoder, and >= 2x fewer interactions
  than pref-goal for 80% success. Also 3 candidates (PointGoal-v0's default) for reference.
- ``noisy``: wrong_direction = 0.1 and vagueness = 0.2; target >= 70% with <= 30 corrections.
- ``unseen``: the teacher speaks from templates/paraphrases.yaml, whose sentences the grounding
  was not fitted on; target: success drops by at most 10 points with MiniLM (the built-in
  encoder's drop reported too).

Writes its section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from _results import update_section  # noqa: E402

from feedbackgym.feedback.language import default_templates_path  # noqa: E402
from feedbackgym.studies.corrections import (  # noqa: E402
    Learner,
    corrections_study,
    interactions_to_reach,
)

BUDGETS = [1, 2, 3, 4, 6, 8, 12, 20]
NOISY_BUDGETS = [2, 5, 10, 20, 30]
PARAPHRASES = str(default_templates_path().with_name("paraphrases.yaml"))


def table(rows: list[dict], budgets: list[int]) -> list[str]:
    names = list(dict.fromkeys(r["learner"] for r in rows))
    lines = [
        "| learner | " + " | ".join(str(b) for b in budgets) + " |",
        "|---|" + "---:|" * len(budgets),
    ]
    for name in names:
        cells = {r["labels"]: r for r in rows if r["learner"] == name}
        lines.append(
            f"| {name} | "
            + " | ".join(
                f"{cells[b]['success_mean']:.0%} ± {cells[b]['success_se']:.0%}" for b in budgets
            )
            + " |"
        )
    return lines


def at(rows: list[dict], learner: str, budget: int) -> float:
    return next(
        r["success_mean"] for r in rows if r["learner"] == learner and r["labels"] == budget
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--keep", help="keep the run folders here")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-corr-"))
    seeds = range(args.seeds)
    lines = [
        "## Corrections in words vs preferences on PointGoal (`bench_corrections.py`)",
        "",
        f"Each cell: {args.seeds} seeds, one `feedbackgym train` run each (`lang-goal` or "
        "`pref-goal`, 1 env, `2 x budget + 6` attempts of 100 steps), success of the most "
        "probable candidate over 20 evaluation episodes; mean ± standard error. Columns: the "
        "person interactions allowed (corrections, or comparisons of two attempts); the learners "
        "stop asking once their belief reaches 0.95. Teacher: `language` (default kinds r, hp, "
        "hn, fp, fn, drawn uniformly) for lang-goal, `oracle` for pref-goal. Grounding fitted on "
        "the shipped `corrections.yaml` only.",
        "",
    ]
    begin = time.perf_counter()
    encoders = ["builtin", "minilm"]
    lang = [Learner("lang-goal", encoder=e) for e in encoders]
    pref = Learner("pref-goal")

    # ----- clean: 10 candidates, and 3 for reference ----------------------------------------
    clean = corrections_study(
        root / "clean10", [*lang, pref], BUDGETS, seeds, env_kwargs={"n_targets": 10}
    )
    shutil.copy(root / "clean10" / "success_vs_interactions.png", HERE / "corrections.png")
    three = corrections_study(
        root / "clean3", [lang[0], pref], BUDGETS[:5], seeds, env_kwargs={"n_targets": 3}
    )
    lines += ["### 10 candidates, clean teacher (plot: `benchmarks/corrections.png`)", ""]
    lines += table(clean, BUDGETS) + [""]
    pref_80 = interactions_to_reach(clean, pref.name, 0.8)
    for learner in lang:
        reach = interactions_to_reach(clean, learner.name, 0.8)
        ok20 = at(clean, learner.name, 20) >= 0.8
        ratio = (pref_80 / reach) if (reach and pref_80) else float("nan")
        lines.append(
            f"- {learner.name}: {at(clean, learner.name, 20):.0%} success with 20 corrections "
            f"(target >= 80%: {'met' if ok20 else 'NOT met'}); 80% success first at {reach} "
            f"interactions vs pref-goal's {pref_80}: {ratio:.1f}x fewer "
            f"(target >= 2x: {'met' if ratio >= 2 else 'NOT met'})."
        )
    lines += [
        "",
        "### 3 candidates (PointGoal-v0's default), for reference",
        "",
        "With 3 candidates about 1.6 bits identify the goal, so both learners need about two "
        "interactions; the gap between words and bits shows with more ambiguity (10 candidates "
        "above).",
        "",
    ]
    lines += table(three, BUDGETS[:5]) + [""]

    # ----- noisy teacher ---------------------------------------------------------------------
    noise = {"wrong_direction": 0.1, "vagueness": 0.2}
    noisy_learners = [
        Learner("lang-goal", encoder=e, teacher_kwargs=noise, label=f"lang-goal ({e}), noisy")
        for e in encoders
    ]
    noisy = corrections_study(
        root / "noisy", noisy_learners, NOISY_BUDGETS, seeds, env_kwargs={"n_targets": 10}
    )
    lines += [
        "### Noisy teacher: wrong_direction = 0.1, vagueness = 0.2 (10 candidates)",
        "",
    ]
    lines += table(noisy, NOISY_BUDGETS) + [""]
    for learner in noisy_learners:
        best = max(at(noisy, learner.name, b) for b in NOISY_BUDGETS)
        lines.append(
            f"- {learner.name}: {best:.0%} best success with <= 30 corrections "
            f"(target >= 70%: {'met' if best >= 0.7 else 'NOT met'})."
        )

    # ----- unseen phrasings ------------------------------------------------------------------
    unseen_learners = [
        Learner(
            "lang-goal",
            encoder=e,
            teacher_kwargs={"templates": PARAPHRASES},
            label=f"lang-goal ({e}), unseen phrasings",
        )
        for e in encoders
    ]
    unseen = corrections_study(
        root / "unseen", unseen_learners, BUDGETS, seeds, env_kwargs={"n_targets": 10}
    )
    lines += [
        "",
        "### Phrasings never seen (teacher speaks from `templates/paraphrases.yaml`, 10 "
        "candidates)",
        "",
    ]
    lines += table(unseen, BUDGETS) + [""]
    for seen, never in zip(lang, unseen_learners, strict=True):
        drops = [at(clean, seen.name, b) - at(unseen, never.name, b) for b in BUDGETS]
        drop20 = drops[-1]
        worst = max(drops)
        mean = sum(drops) / len(drops)
        verdict = ""
        if seen.encoder == "minilm":
            met = "met" if drop20 <= 0.10 else "NOT met"
            verdict = f" (target <= 10 points at 20 corrections: {met})"
        lines.append(
            f"- {seen.name}: drop {100 * drop20:.0f} points at 20 corrections{verdict}; "
            f"{100 * mean:.0f} on average over the budgets, {100 * worst:.0f} at worst."
        )
    lines += ["", f"Whole benchmark: {time.perf_counter() - begin:.0f} s."]
    update_section("bench_corrections", "\n".join(lines))
    print("\n".join(lines))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
