"""Episode-end rewards on Pendulum-v1: return redistribution (RRD-PPO) vs PPO on the delayed
reward, both against PPO on the dense reward.

For seeds 0-2, on `configs/pendulum-ppo.yaml`'s settings (200k timesteps, 8 envs): PPO on the
true per-step reward (``pendulum-ppo``), PPO with the return delivered only at the episode's
last step (``pendulum-ppo-episode-end``) and RRD-PPO on that same delayed reward
(``pendulum-rrd-ppo``). Normalised return = (return - uniform-random policy's) / (dense PPO's -
random's), on the true reward of the same 20 evaluation episodes. Targets: RRD-PPO >= 80%,
plain PPO on the delayed reward < 50%. Writes the ``bench_delays_rl`` section of
benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/bench_delays_rl.py [--seeds 0,1,2] [--device cpu] [--keep DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from _parts import add_common_arguments, run_folder  # noqa: E402
from _results import update_section  # noqa: E402
from bench_train import mean_sd, random_return, run  # noqa: E402

import feedbackgym.agents.learners.redistribution  # noqa: E402, F401  (registers rrd-ppo)

#: (row name, config, target on the normalised return: (">=" or "<", value) or None)
RUNS = (
    ("ppo, dense reward", "pendulum-ppo", None),
    ("ppo, episode-end reward", "pendulum-ppo-episode-end", ("<", 0.5)),
    ("rrd-ppo, episode-end reward", "pendulum-rrd-ppo", (">=", 0.8)),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, seeds="0,1,2", device="cpu", keep=True)
    args = parser.parse_args()
    seeds = args.seeds
    begin = time.perf_counter()
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in RUNS}
    with run_folder(args.keep) as out:
        randoms = [random_return("pendulum-ppo", seed) for seed in seeds]
        for seed in seeds:  # interleaved, so machine load falls on every learner alike
            for name, config, _ in RUNS:
                rows[name].append(run(config, out, seed=seed, device=args.device))
    random = float(np.mean(randoms))
    dense = float(np.mean([s["true_return_mean"] for s in rows[RUNS[0][0]]]))
    dense_wall = float(np.mean([s["wall_seconds"] for s in rows[RUNS[0][0]]]))
    lines = [
        "## Episode-end rewards: return redistribution, Pendulum-v1 (`bench_delays_rl.py`)",
        "",
        "`configs/pendulum-ppo.yaml` (dense reward), `configs/pendulum-ppo-episode-end.yaml` and "
        "`configs/pendulum-rrd-ppo.yaml` (`reward_delay: episode-end`: reward 0 at every step, "
        "the episode's return at its last), 200k timesteps, 8 envs, seeds "
        f"{', '.join(map(str, seeds))}. Normalised return = (true return - uniform-random "
        f"policy's) / (dense PPO's - random's); random policy: {random:.1f}. Reward corr.: "
        "the learned per-step reward vs the true one on the evaluation steps; return error: "
        "mean |sum of learned rewards - return| / mean |return| on the kept training episodes. "
        "Wall time excludes evaluation. Device: " + rows[RUNS[0][0]][0]["device"] + ".",
        "",
        "| learner | true return | normalised | target | wall s | wall / dense PPO's | "
        "reward corr. | return error |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, _, target in RUNS:
        summaries = rows[name]
        ret = [s["true_return_mean"] for s in summaries]
        norm = (np.mean(ret) - random) / (dense - random)
        verdict = ""
        if target is not None:
            op, value = target
            met = norm >= value if op == ">=" else norm < value
            verdict = f"{op} {value:.0%} " + ("met" if met else "NOT met")
        corr = [s["reward_correlation"] for s in summaries if s.get("reward_correlation")]
        err = [s["return_error"] for s in summaries if s.get("return_error") is not None]
        wall = np.mean([s["wall_seconds"] for s in summaries])
        lines.append(
            f"| {name} | {mean_sd(ret)} | {norm:.0%} | {verdict} | {wall:.1f} | "
            f"{wall / dense_wall:.2f} | "
            f"{f'{np.mean(corr):.2f}' if corr else '-'} | "
            f"{f'{np.mean(err):.1%}' if err else '-'} |"
        )
    update_section("bench_delays_rl", "\n".join(lines))
    print("\n".join(lines))
    print(f"[bench_delays_rl] done in {time.perf_counter() - begin:.0f} s", flush=True)


if __name__ == "__main__":
    main()
