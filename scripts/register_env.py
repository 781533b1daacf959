"""Register your own bandit env and run a regret study on it through the feedbackgym CLI.

The example is a recommender whose items' click rates drift (a slow random walk), so the best
item changes over time. Write the vector version only (N runs in one numpy step); the single-run
``gymnasium.make`` view comes with it. Then any feedbackgym command can use its id.

    python scripts/register_env.py --out results/drifting-clicks --horizon 5000 --runs 200

Extra flags are passed to ``feedbackgym regret`` (e.g. ``--agents ucb1,exp3``). Worker
processes and Ray workers import envs by module: there, name the env as ``module:id`` (for this
file, ``register_env:myrecs/DriftingClicks-v0`` with ``scripts/`` on PYTHONPATH).
"""

from __future__ import annotations

import sys

import numpy as np

from feedbackgym.envs import BanditVectorEnv, register_bandit
from feedbackgym.errors import check_range

ENV_ID = "myrecs/DriftingClicks-v0"


class DriftingClicksVec(BanditVectorEnv):
    """Recommender with K items whose click rates follow independent clipped random walks.

    :param n_items: number of items (arms).
    :param drift: standard deviation of each rate's step per round.
    :param horizon: rounds per episode.
    """

    reward_family = "bernoulli"

    def __init__(
        self, num_envs: int = 1, n_items: int = 8, drift: float = 0.01, horizon: int = 1000
    ) -> None:
        super().__init__(num_envs, n_arms=n_items, horizon=horizon)
        self.drift = check_range("drift", drift, 0.0, 0.5)
        self.rates = np.zeros((self.num_envs, self.n_arms))

    def _reset_runs(self, runs: np.ndarray) -> None:
        self.rates[runs] = self.np_random.uniform(0.05, 0.5, (runs.size, self.n_arms))

    def _advance(self, runs: np.ndarray) -> None:
        steps = self.drift * self.np_random.standard_normal((runs.size, self.n_arms))
        self.rates = self.rates.copy()  # the array handed out in info stays as it was
        self.rates[runs] = np.clip(self.rates[runs] + steps, 0.01, 0.99)

    def _mean_rewards(self) -> np.ndarray:
        return self.rates

    def _draw_rewards(self, means: np.ndarray, actions: np.ndarray) -> np.ndarray:
        clicked = self.np_random.random(self.num_envs) < means[self._rows, actions]
        return clicked.astype(np.float64)


register_bandit(ENV_ID, DriftingClicksVec)


def main(argv: list[str]) -> int:
    from feedbackgym.cli import main as cli

    defaults = {
        "--agents": "ucb1,thompson,exp3,epsilon-greedy",
        "--horizon": "5000",
        "--runs": "100",
        "--out": "results/drifting-clicks",
    }
    for flag, value in defaults.items():
        if flag not in argv:
            argv = [*argv, flag, value]
    return cli(["regret", "--env", ENV_ID, *argv])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
