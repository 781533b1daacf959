"""Reference implementations (peers) for side-by-side benchmarks, each in its own venv.

A peer lives outside the repository, in ``$FEEDBACKGYM_PEERS`` (default
``~/.cache/feedbackgym-peers/<name>``), created on first use with the pinned versions its
maintainers' code still runs on. ``run_peer`` runs a snippet of Python in that venv and returns
what the snippet printed as JSON on its last line.
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
}


def peer_python(name: str) -> Path:
    """The python of peer ``name``'s venv, creating and installing the venv when missing."""
    root = Path(os.environ.get("FEEDBACKGYM_PEERS", Path.home() / ".cache" / "feedbackgym-peers"))
    venv = root / name
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if not stamp.exists():
        print(f"[peers] creating {venv} ({' '.join(PEERS[name])})", file=sys.stderr)
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEERS[name]], check=True)
        stamp.write_text("\n".join(PEERS[name]) + "\n")
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
