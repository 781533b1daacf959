"""Reference implementations (peers) for side-by-side benchmarks, each in its own venv.

A peer lives outside the repository, in ``$FEEDBACKGYM_PEERS`` (default
``~/.cache/feedbackgym-peers/<name>``), created on first use with the pinned versions its
maintainers' code still runs on. ``run_peer`` runs a snippet of Python in that venv and returns
what the snippet printed as JSON on its last line.

A peer's entry in ``PEERS`` is either a list of requirements, installed by one ``pip install``,
or a list of such lists, installed by one ``pip install`` each, in order: a requirement that an
earlier step satisfied is kept by the later ones (``imitation`` gets the CPU ``torch`` wheel this
way, instead of pip resolving a CUDA build for it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

PEERS = {
    "smpybandits": [
        "numpy==1.26.4",
        "pandas==2.2.3",
        "matplotlib==3.8.4",
        "scipy==1.13.1",
        "smpybandits==0.9.7",
    ],
    "duelpy": ["numpy==1.23.5", "scipy==1.10.1", "duelpy==1.0.0"],
    # imitation 1.0.1 wants gymnasium~=0.29 and stable-baselines3~=2.2.1; gymnasium 0.29 still
    # calls np.bool8, gone in numpy 2, and pyarrow (imitation.data.serialize -> datasets) wants
    # numpy 2 from 22 on; sacred (imitation.scripts) imports pkg_resources, gone in setuptools 81.
    # Torch first: the CPU wheel on this machine's disk, kept by the later step.
    "imitation": [
        ["torch==2.13.0", "setuptools==80.9.0"],
        [
            "numpy==1.26.4",
            "gymnasium==0.29.1",
            "stable-baselines3==2.2.1",
            "seals==0.2.1",
            "pyarrow==21.0.0",
            "imitation==1.0.1",
        ],
    ],
}


def install_steps(name: str) -> list[list[str]]:
    """The ``pip install`` calls, in order, that build peer ``name``'s venv."""
    spec = PEERS[name]
    if all(isinstance(req, str) for req in spec):
        return [list(spec)]
    return [list(step) for step in spec]


def peer_python(name: str) -> Path:
    """The python of peer ``name``'s venv, creating and installing the venv when missing."""
    root = Path(os.environ.get("FEEDBACKGYM_PEERS", Path.home() / ".cache" / "feedbackgym-peers"))
    venv = root / name
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if not stamp.exists():
        steps = install_steps(name)
        described = " ; ".join(" ".join(step) for step in steps)
        print(f"[peers] creating {venv} ({described})", file=sys.stderr)
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        for step in steps:
            subprocess.run([str(python), "-m", "pip", "install", "-q", *step], check=True)
        stamp.write_text("\n\n".join("\n".join(step) for step in steps) + "\n")
    return python


def run_peer(name: str, code: str, timeout: float = 3600) -> object:
    """Run ``code`` in peer ``name``'s venv; it must print one JSON value on its last line."""
    result = subprocess.run(
        [str(peer_python(name)), "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"peer {name} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
