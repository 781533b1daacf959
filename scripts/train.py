"""Train pref-PPO on Pendulum-v1 from 200 simulated oracle answers, from Python.

    .venv/bin/python scripts/train.py --out runs/pendulum-from-python

The same run as ``feedbackgym train --config configs/pendulum-pref-ppo.yaml``: it writes
config.yaml, summary.json, curve.csv/png, tensorboard/, model.zip, reward_model.pt and
feedback.jsonl into --out, and re-running resumes. The learner itself is
``feedbackgym.agents.PrefPPO`` (SB3's verbs: learn, predict, save) if you want the loop without a
run folder; see the README.
"""

import argparse

from feedbackgym.studies.train import TrainConfig, train

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", default="runs/pendulum-from-python")
parser.add_argument("--teacher", default="oracle", help="e.g. stochastic, mistake, skip")
args = parser.parse_args()

config = TrainConfig(
    env="Pendulum-v1",
    algo="pref-ppo",
    teacher=args.teacher,
    labels=200,
    timesteps=200_000,
    n_envs=8,
    algo_kwargs={  # RL Zoo's PPO settings for Pendulum, with larger minibatches
        "n_steps": 1024,
        "batch_size": 256,
        "gae_lambda": 0.95,
        "gamma": 0.9,
        "learning_rate": 1e-3,
        "use_sde": True,
        "sde_sample_freq": 4,
    },
)
summary = train(config, args.out)
print(f"true return {summary['true_return_mean']:.1f} from {summary['labels_used']} labels")
print(f"curve: {args.out}/curve.png")
