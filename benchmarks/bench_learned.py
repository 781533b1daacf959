"""Fitting the learned feedback model (GUIDE-style Bradley-Terry MLP) on CPU or GPU.

Fits ``LearnedPreferenceModel`` to 5,000 oracle-labelled segment pairs of length 50 (tabular
states and actions, as a gridworld log holds) and reports the fit time and how often the fitted
model agrees with the oracle on 2,000 held-out pairs. ``--device auto`` takes CUDA when torch
sees a GPU. Writes the section ``bench_learned_<device>`` of benchmarks/RESULTS.md, naming the
device, so CPU and GPU figures stand side by side.

    .venv/bin/python benchmarks/bench_learned.py [--device cpu|cuda|auto] [--epochs 200]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _parts import add_common_arguments  # noqa: E402
from _results import update_section  # noqa: E402

from feedbackgym.feedback import LearnedPreferenceModel, Segments, make_feedback_model  # noqa: E402
from feedbackgym.feedback.learned import resolve_device  # noqa: E402

N_STATES, N_ACTIONS, LENGTH = 25, 4, 50


def segments(rng: np.random.Generator, n: int, reward_table: np.ndarray) -> Segments:
    obs = rng.integers(0, N_STATES, (n, LENGTH))
    actions = rng.integers(0, N_ACTIONS, (n, LENGTH))
    return Segments(rewards=reward_table[obs, actions], obs=obs, actions=actions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, device="auto")
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=200)
    args = parser.parse_args()
    import torch

    device = resolve_device(args.device)
    name = (
        torch.cuda.get_device_name(0)
        if device.startswith("cuda")
        else f"CPU ({platform.machine()}, {torch.get_num_threads()} torch threads)"
    )
    rng = np.random.default_rng(0)
    reward_table = rng.normal(size=(N_STATES, N_ACTIONS))
    oracle = make_feedback_model("oracle", rng=0)
    train_a, train_b = (segments(rng, args.pairs, reward_table) for _ in range(2))
    test_a, test_b = (segments(rng, 2000, reward_table) for _ in range(2))
    labels = oracle.prefer(train_a, train_b)

    model = LearnedPreferenceModel(epochs=args.epochs, device=args.device, rng=0)
    start = time.perf_counter()
    model.fit((train_a, train_b, labels))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    fit_seconds = time.perf_counter() - start
    truth = oracle.prefer(test_a, test_b)
    agreement = float(np.mean((model.probabilities(test_a, test_b) > 0.5) == (truth == 1.0)))
    kind = "cuda" if device.startswith("cuda") else "cpu"
    lines = [
        f"## Learned feedback model: fit on {kind.upper()} (`bench_learned.py`)",
        "",
        f"Bradley-Terry MLP (`LearnedPreferenceModel`, hidden 64, full-batch Adam) fitted to "
        f"{args.pairs:,} oracle-labelled pairs of length {LENGTH} ({N_STATES} states x "
        f"{N_ACTIONS} actions, one-hot), {args.epochs} epochs; agreement with the oracle on "
        "2,000 held-out pairs.",
        "",
        "| device | fit seconds | agreement with oracle |",
        "|---|---:|---:|",
        f"| {name} | {fit_seconds:.2f} | {agreement:.3f} |",
    ]
    print("\n".join(lines))
    update_section(f"bench_learned_{kind}", "\n".join(lines))


if __name__ == "__main__":
    main()
