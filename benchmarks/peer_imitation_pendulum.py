"""imitation 1.0.1 preference comparisons on Pendulum-v1: the peer side of the training benchmark.

Runs INSIDE the imitation peer venv (``benchmarks/_peers.py``, ``peer_python("imitation")``),
so it imports imitation and stable-baselines3, never feedbackgym::

    "$(python -c 'import _peers; print(_peers.peer_python("imitation"))')" \\
        benchmarks/peer_imitation_pendulum.py --seed 0

It trains PPO on a reward model learned from synthetic (oracle) preferences between fragments,
then evaluates the final policy on Pendulum's true reward, and prints one JSON line last:
``seed, true_return_mean, true_return_std, eval_episodes, wall_seconds, labels_used, timesteps``.
``wall_seconds`` covers the whole training (setup, reward learning and agent training), not the
evaluation; ``timesteps`` is the number of environment steps PPO trained on (SB3 rounds each
iteration up to whole rollouts of ``n_steps * n_envs``). Everything the libraries print goes to
stderr.

Settings (``--preset config``, the default) are those of imitation's own CLI,
``python -m imitation.scripts.train_preference_comparisons with pendulum``: its ``pendulum``
named config sets only the env id, so the rest are the experiment's and its ingredients'
defaults:

- env: ``Pendulum-v1``, 8 envs (``environment.num_vec``); DummyVecEnv here (the CLI defaults to
  SubprocVecEnv; ``--subproc`` for that), which is faster for Pendulum on few cores;
- reward: ``BasicRewardNet`` with a ``RunningNorm`` input layer, wrapped in
  ``NormalizedRewardNet(RunningNorm)`` (the reward ingredient's ``normalize_output_layer``);
- PPO (the rl ingredient's defaults): ``FeedForward32Policy``, ``n_steps = 2048 // n_envs``,
  ``batch_size=64``, ``n_epochs=10``, ``learning_rate=3e-4``, ``ent_coef=0.0``; SB3's defaults
  for the rest (``gamma=0.99``, ``gae_lambda=0.95``, ``clip_range=0.2``);
- ``PreferenceComparisons``: 5 iterations, fragment length 100, ``transition_oversampling=1``,
  ``initial_comparison_frac=0.1``, ``initial_epoch_multiplier=200`` (the class default, which
  the CLI does not override), ``query_schedule="hyperbolic"``, ``exploration_frac=0.0``;
- ``RandomFragmenter(warning_threshold=0)``; ``SyntheticGatherer`` with its defaults
  (Boltzmann-rational on the fragments' true returns at temperature 1, undiscounted; on
  Pendulum's 100-step fragments the return gaps are large, so it acts as a near-noiseless
  oracle); ``PreferenceModel`` with its defaults; ``BasicRewardTrainer`` with
  ``CrossEntropyRewardLoss``, 3 epochs, batch 32, lr 1e-3.

``--preset tutorial`` swaps in the values the docs tutorial "Learning a Reward Function using
Preference Comparisons" tuned for Pendulum: PPO with ``NormalizeFeaturesExtractor(RunningNorm)``,
``learning_rate=2e-3``, ``ent_coef=0.01``, ``clip_range=0.1``, ``gamma=0.97``,
``gae_lambda=0.95``; ``exploration_frac=0.05``; ``initial_epoch_multiplier=4``; no output
normalisation on the reward net. The tutorial's other settings equal the config's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

# When started from the repository root with ``-c``, the root (and its feedbackgym.egg-info) is on
# sys.path, and gymnasium would load feedbackgym's env plugin, built for a newer gymnasium.
_REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != _REPO_ROOT]

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from imitation.algorithms import preference_comparisons as pc  # noqa: E402
from imitation.policies.base import (  # noqa: E402
    FeedForward32Policy,
    NormalizeFeaturesExtractor,
)
from imitation.rewards.reward_nets import BasicRewardNet, NormalizedRewardNet  # noqa: E402
from imitation.util import logger as imit_logger  # noqa: E402
from imitation.util.networks import RunningNorm  # noqa: E402
from imitation.util.util import make_vec_env  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.utils import set_random_seed  # noqa: E402

ENV_ID = "Pendulum-v1"
#: Evaluation episode i of training seed s resets with seed EVAL_SEED_OFFSET + 1000 s + i: the
#: episodes feedbackgym's own evaluation uses (``feedbackgym.studies.train.Evaluator``), so both
#: sides of the benchmark are scored on the same initial states.
EVAL_SEED_OFFSET = 10**6

PRESETS = {
    # imitation.scripts.train_preference_comparisons with pendulum (rl/reward ingredient defaults)
    "config": {
        "ppo": {"learning_rate": 3e-4, "batch_size": 64, "n_epochs": 10, "ent_coef": 0.0},
        "normalize_policy_features": False,
        "normalize_reward_output": True,
        "exploration_frac": 0.0,
        "initial_epoch_multiplier": 200.0,
    },
    # docs tutorial 5_train_preference_comparisons (tuned for Pendulum)
    "tutorial": {
        "ppo": {
            "learning_rate": 2e-3,
            "batch_size": 64,
            "n_epochs": 10,
            "ent_coef": 0.01,
            "clip_range": 0.1,
            "gae_lambda": 0.95,
            "gamma": 0.97,
        },
        "normalize_policy_features": True,
        "normalize_reward_output": False,
        "exploration_frac": 0.05,
        "initial_epoch_multiplier": 4.0,
    },
}
# Shared by both presets.
PPO_ROLLOUT = 2048  # environment steps per PPO update, over all envs
NUM_ITERATIONS = 5
REWARD_EPOCHS = 3
INITIAL_COMPARISON_FRAC = 0.1
TRANSITION_OVERSAMPLING = 1.0
QUERY_SCHEDULE = "hyperbolic"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timesteps", type=int, default=200_000)
    parser.add_argument("--labels", type=int, default=400, help="total synthetic comparisons")
    parser.add_argument("--fragment-length", type=int, default=100)
    parser.add_argument("--n-envs", type=int, default=8)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="config")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--subproc", action="store_true", help="SubprocVecEnv (CLI default)")
    parser.add_argument("--verbose", action="store_true", help="imitation's log tables, to stderr")
    args = parser.parse_args(argv)
    if PPO_ROLLOUT % args.n_envs:
        parser.error(f"--n-envs {args.n_envs} must divide the PPO rollout of {PPO_ROLLOUT} steps")
    return args


def train(args: argparse.Namespace, log_dir: str) -> tuple[PPO, int, float]:
    """Run preference comparisons; return the agent, the labels used and the wall time."""
    preset = PRESETS[args.preset]
    start = time.perf_counter()
    set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    logger = imit_logger.configure(log_dir, ["stdout"] if args.verbose else [])

    venv = make_vec_env(ENV_ID, rng=rng, n_envs=args.n_envs, parallel=args.subproc)
    reward_net = BasicRewardNet(
        venv.observation_space, venv.action_space, normalize_input_layer=RunningNorm
    )
    if preset["normalize_reward_output"]:
        reward_net = NormalizedRewardNet(reward_net, RunningNorm)

    policy_kwargs = {}
    if preset["normalize_policy_features"]:
        policy_kwargs = {
            "features_extractor_class": NormalizeFeaturesExtractor,
            "features_extractor_kwargs": {"normalize_class": RunningNorm},
        }
    agent = PPO(
        policy=FeedForward32Policy,
        policy_kwargs=policy_kwargs,
        env=venv,
        seed=args.seed,
        n_steps=PPO_ROLLOUT // args.n_envs,
        device="cpu",
        **preset["ppo"],
    )
    agent_trainer = pc.AgentTrainer(
        algorithm=agent,
        reward_fn=reward_net,
        venv=venv,
        exploration_frac=preset["exploration_frac"],
        rng=rng,
        custom_logger=logger,
    )
    preference_model = pc.PreferenceModel(reward_net)
    reward_trainer = pc.BasicRewardTrainer(
        preference_model=preference_model,
        loss=pc.CrossEntropyRewardLoss(),
        rng=rng,
        epochs=REWARD_EPOCHS,
        custom_logger=logger,
    )
    trainer = pc.PreferenceComparisons(
        agent_trainer,
        reward_net,
        num_iterations=NUM_ITERATIONS,
        fragmenter=pc.RandomFragmenter(warning_threshold=0, rng=rng, custom_logger=logger),
        preference_gatherer=pc.SyntheticGatherer(rng=rng, custom_logger=logger),
        reward_trainer=reward_trainer,
        fragment_length=args.fragment_length,
        transition_oversampling=TRANSITION_OVERSAMPLING,
        initial_comparison_frac=INITIAL_COMPARISON_FRAC,
        initial_epoch_multiplier=preset["initial_epoch_multiplier"],
        query_schedule=QUERY_SCHEDULE,
        allow_variable_horizon=False,
        custom_logger=logger,
    )
    trainer.train(total_timesteps=args.timesteps, total_comparisons=args.labels)
    wall = time.perf_counter() - start
    venv.close()
    return agent, len(trainer.dataset), wall


def evaluate(agent: PPO, episodes: int, seed: int) -> np.ndarray:
    """True (environment) returns of the deterministic policy, on seeds unseen in training."""
    env = gym.make(ENV_ID)
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=EVAL_SEED_OFFSET + 1000 * seed + i)
        total, done = 0.0, False
        while not done:
            action, _ = agent.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return np.asarray(returns)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"[imitation] preset={args.preset} seed={args.seed} timesteps={args.timesteps} "
        f"labels={args.labels} fragment_length={args.fragment_length} n_envs={args.n_envs} "
        f"settings={PRESETS[args.preset]} torch_threads={torch.get_num_threads()}",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory(prefix="imitation-pendulum-") as log_dir:
        with contextlib.redirect_stdout(sys.stderr):
            agent, labels_used, wall = train(args, log_dir)
            returns = evaluate(agent, args.eval_episodes, args.seed)
    result = {
        "seed": args.seed,
        "true_return_mean": float(returns.mean()),
        "true_return_std": float(returns.std()),
        "eval_episodes": int(returns.size),
        "wall_seconds": round(wall, 3),
        "labels_used": int(labels_used),
        "timesteps": int(agent.num_timesteps),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
