"""Load test of the label server: simulated annotators answering over HTTP at once.

Starts ``feedbackgym label`` (one uvicorn process) on a label folder holding ``--queries``
published Pendulum-v1 queries (real 256-pixel GIF clips), then lets ``K`` simulated annotators
(threads of this process, one HTTP session each) do what the page does, as fast as they can:
``GET /api/next``, both clips, ``POST /api/answer``. Reports answers per second and request
latencies (median, 99th percentile) per request kind, for each ``K``, and checks that every
answer acknowledged is on disk exactly once, with its annotator. Also times the teacher's side:
rendering and publishing one pair (two 50-step clips). Each level stops after ``--seconds``.
Then times the server's look for open queries (``LabelQueue.open_queries``) after one more
query is published to the last level's folder: with the index (names listed, the new file read)
and cold (every query file read: a fresh server's first look). Writes the section
``bench_label_server`` of benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/bench_label_server.py [--queries 10000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).parent))
from _results import update_section  # noqa: E402

from feedbackgym.feedback import HumanTeacher, LabelQueue, Segments  # noqa: E402
from feedbackgym.feedback.human.teacher import query_id  # noqa: E402

LEVELS = (1, 4, 20)
#: The issue's target: the page answers within this at the 99th percentile (20 annotators).
P99_TARGET_MS = 100.0
LENGTH = 50
#: Queries published one at a time to time the server's look after each.
LOOKS = 20


def pendulum_pairs(n: int, seed: int = 0) -> tuple[Segments, Segments]:
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-np.pi, np.pi, (2, n, LENGTH))
    obs = np.stack([np.cos(theta), np.sin(theta), rng.normal(size=theta.shape)], axis=-1)
    actions = rng.uniform(-2, 2, (2, n, LENGTH, 1))
    rewards = rng.normal(size=(2, n, LENGTH))
    return Segments(rewards[0], obs[0], actions[0]), Segments(rewards[1], obs[1], actions[1])


def start_server(folder: Path, annotators: list[str]) -> tuple[subprocess.Popen, dict[str, str]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    flags = [x for name in annotators for x in ("--annotator", name)]
    process = subprocess.Popen(
        [sys.executable, "-m", "feedbackgym.cli", "label", "--out", str(folder),
         "--port", str(port), "--reissue", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    links: dict[str, str] = {}
    while len(links) < len(annotators):
        line = process.stdout.readline()
        if not line:
            raise SystemExit("feedbackgym label did not start")
        match = re.match(r"(\S+)\s+(http://\S+)\?token=(\S+)", line)
        if match:
            links[match.group(1)] = match.group(3)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            requests.get(f"{base}/healthz", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.05)
    return process, {"base": base, **links}


def annotate(base: str, name: str, token: str, stop: float, out: dict) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    times: dict[str, list[float]] = {"next": [], "clip": [], "answer": []}
    acknowledged, conflicts = [], 0
    while time.perf_counter() < stop:
        t0 = time.perf_counter()
        qid = session.get(f"{base}/api/next", timeout=30).json()["query"]
        times["next"].append(time.perf_counter() - t0)
        if qid is None:
            break
        for side in ("a", "b"):
            t0 = time.perf_counter()
            assert session.get(f"{base}/clips/{qid}/{side}", timeout=30).content[:3] == b"GIF"
            times["clip"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        reply = session.post(
            f"{base}/api/answer", json={"id": qid, "answer": "a" if len(qid) % 2 else "b"},
            timeout=30,
        )  # fmt: skip
        times["answer"].append(time.perf_counter() - t0)
        if reply.status_code == 200:
            acknowledged.append(qid)
        elif reply.status_code == 409:
            conflicts += 1
        else:
            raise SystemExit(f"{name}: answer refused with {reply.status_code}")
    out[name] = (times, acknowledged, conflicts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="labels-") as tmp:
        folder = Path(tmp)
        a, b = pendulum_pairs(4)
        teacher = HumanTeacher(dir=str(folder / "render"), env="Pendulum-v1")
        teacher.render_clip(a.obs[0], a.actions[0])  # warm the renderer up
        start = time.perf_counter()
        clips = [
            tuple(teacher.render_clip(s.obs[i], s.actions[i]) for s in (a, b)) for i in range(4)
        ]
        render_seconds = (time.perf_counter() - start) / 4
        clip_kb = np.mean([len(c) for pair in clips for c in pair]) / 1024

        rows = []
        p99: dict[int, float] = {}
        for level in LEVELS:
            queue = LabelQueue(folder / f"k{level}")
            many_a, many_b = pendulum_pairs(args.queries, seed=level)
            start = time.perf_counter()
            for i in range(args.queries):
                queue.publish(query_id(many_a, many_b, i), *clips[i % 4], {"length": LENGTH})
            publish_ms = (time.perf_counter() - start) / args.queries * 1000
            names = [f"annotator{k}" for k in range(level)]
            process, links = start_server(queue.root, names)
            try:
                results: dict = {}
                stop = time.perf_counter() + args.seconds
                base = links["base"]
                threads = [
                    threading.Thread(target=annotate, args=(base, n, links[n], stop, results))
                    for n in names
                ]
                start = time.perf_counter()
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                elapsed = time.perf_counter() - start
            finally:
                process.send_signal(signal.SIGINT)
                process.wait(timeout=30)
            acknowledged = [q for _, acks, _ in results.values() for q in acks]
            conflicts = sum(c for *_, c in results.values())
            on_disk = {
                p.stem: json.loads(p.read_text()) for p in (queue.root / "answers").glob("*.json")
            }
            assert len(set(acknowledged)) == len(acknowledged), "a query was answered twice"
            assert set(acknowledged) == set(on_disk), "acknowledged answers missing on disk"
            owner = {q: n for n, (_, acks, _) in results.items() for q in acks}
            assert all(on_disk[q]["annotator"] == owner[q] for q in acknowledged)
            lat = {k: np.concatenate([np.array(r[0][k]) for r in results.values()]) * 1000
                   for k in ("next", "clip", "answer")}  # fmt: skip
            every = np.concatenate(list(lat.values()))
            p99[level] = float(np.percentile(every, 99))
            rows.append(
                f"| {level} | {len(acknowledged) / elapsed:,.0f} | {len(acknowledged)} | "
                f"{elapsed:.0f} | {conflicts} | "
                + " | ".join(
                    f"{np.median(lat[k]):.1f} / {np.percentile(lat[k], 99):.1f}"
                    for k in ("next", "clip", "answer")
                )
                + f" | {p99[level]:.1f} | {publish_ms:.1f} |"
            )
            print(rows[-1], flush=True)

        # The look after one more query is published, on the last level's folder.
        answered = len(os.listdir(queue.root / "answers"))
        indexed = LabelQueue(queue.root)
        indexed.open_queries()
        extra_a, extra_b = pendulum_pairs(LOOKS, seed=99)
        warm = []
        for i in range(LOOKS):
            indexed.publish(query_id(extra_a, extra_b, i), *clips[0], {"length": LENGTH})
            start = time.perf_counter()
            assert query_id(extra_a, extra_b, i) in indexed.open_queries()
            warm.append(time.perf_counter() - start)
        cold = []
        for _ in range(5):
            fresh = LabelQueue(queue.root)
            start = time.perf_counter()
            fresh.open_queries()
            cold.append(time.perf_counter() - start)
        total = args.queries + LOOKS
        look_warm_ms, look_cold_ms = np.median(warm) * 1000, np.median(cold) * 1000
        print(f"look: indexed {look_warm_ms:.2f} ms, cold {look_cold_ms:.1f} ms", flush=True)

    lines = [
        f"One `feedbackgym label` process (uvicorn, one worker) on a label folder of "
        f"{args.queries} queries; K simulated annotators (threads of the client process, one "
        f"HTTP session each) fetch the next query, both clips ({clip_kb:.0f} KiB GIFs) and post "
        f"an answer, as fast as they can, for at most {args.seconds:g} s or until every query is "
        "answered (bounded in count and time). Every acknowledged answer was found on disk "
        "exactly once with its annotator (checked: none lost, none duplicated). Latencies are "
        "median / 99th percentile in ms; `all p99` over every request; `publish` is the teacher "
        "writing one query's files (fsynced).",
        "",
        "| annotators K | answers/s | answers | s | conflicts (409) | next ms | clip ms "
        "| answer ms | all p99 ms | publish ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"Target (20 annotators: no answer lost or duplicated, 99th percentile within "
        f"{P99_TARGET_MS:.0f} ms): {p99[LEVELS[-1]]:.0f} ms, "
        f"{'met' if p99[LEVELS[-1]] <= P99_TARGET_MS else 'NOT met'}.",
        f"Rendering one 50-step Pendulum-v1 clip (256 px GIF, Pillow) takes "
        f"{render_seconds / 2 * 1000:.0f} ms: a pair of segments costs the teacher about "
        f"{render_seconds * 1000:.0f} ms before a person can see it. Client and server share "
        "the machine's cores.",
        f"The server's look for open queries after one more query is published, on a folder of "
        f"{total} queries ({answered} answered), median of {LOOKS}: {look_warm_ms:.2f} ms with "
        f"the index (names listed, only the new query file read); {look_cold_ms:.0f} ms reading "
        "every query file (a fresh server's first look; before the index, every look after a "
        "publish cost this, and each of the server's threads could make it at once).",
    ]
    print("\n".join(lines))
    update_section("bench_label_server", "\n".join(lines))


if __name__ == "__main__":
    main()
