"""Every config shipped in configs/ is accepted as the README pastes it: a training config by
`train`'s pre-run check, a sweep by the sweep's check of each of its cells."""

from pathlib import Path

import pytest

from feedbackgym.studies.sweep import Sweep
from feedbackgym.studies.train import TrainConfig, check, load_yaml

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_configs_are_shipped():
    assert len(CONFIGS) >= 10


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_config_passes_the_pre_run_check(path):
    if path.stem.startswith("sweep-"):
        Sweep.from_yaml(path).validate()
    else:
        check(TrainConfig.from_dict(load_yaml(path), str(path)))
