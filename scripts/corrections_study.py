"""How many corrections does a learner need? Success rate against person interactions on PointGoal.

    .venv/bin/python scripts/corrections_study.py --out runs/corrections-study

Runs lang-goal (with each encoder you list) and the pref-goal baseline (one comparison of two
attempts per interaction) on feedbackgym/PointGoal-v0 with --n-targets candidates, for every
budget and seed; each cell is an ordinary training run folder under --out (re-running resumes).
Writes --out/study.csv and --out/success_vs_interactions.png (every learner on the same axes).
Teacher noise: --teacher-kwargs '{"wrong_direction": 0.1, "vagueness": 0.2}'; phrasings the
grounding never saw:
--teacher-kwargs '{"templates": "feedbackgym/feedback/templates/paraphrases.yaml"}'.
"""

import argparse
import json

from feedbackgym.studies.corrections import Learner, corrections_study, interactions_to_reach

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", default="runs/corrections-study")
parser.add_argument("--encoders", default="builtin", help="comma-separated: builtin,minilm")
parser.add_argument("--budgets", default="1,2,3,4,6,10,20")
parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 per cell")
parser.add_argument("--n-targets", type=int, default=10, help="candidate targets (ambiguity)")
parser.add_argument("--teacher-kwargs", default="{}", help="JSON of the language teacher")
args = parser.parse_args()

teacher_kwargs = json.loads(args.teacher_kwargs)
learners = [
    Learner("lang-goal", encoder=e, teacher_kwargs=teacher_kwargs) for e in args.encoders.split(",")
]
learners.append(Learner("pref-goal"))
rows = corrections_study(
    args.out,
    learners,
    budgets=[int(b) for b in args.budgets.split(",")],
    seeds=range(args.seeds),
    env_kwargs={"n_targets": args.n_targets},
    progress=lambda learner, budget, seed: print(f"{learner.name} labels={budget} seed={seed}"),
)
for row in rows:
    print(
        f"{row['learner']:>22} {row['labels']:>4} interactions: success {row['success_mean']:.2f}"
    )
for learner in learners:
    reach = interactions_to_reach(rows, learner.name, 0.8)
    print(f"{learner.name}: 80% success at {reach} interactions")
print(f"plot: {args.out}/success_vs_interactions.png")
