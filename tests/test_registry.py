"""The name registries: lazy (data) entries, and the layering of the learner registry."""

from __future__ import annotations

import subprocess
import sys

import pytest

from feedbackgym.errors import ConfigError
from feedbackgym.registry import Registry


class Thing:
    def __init__(self, size: int = 1) -> None:
        self.size = size


def test_a_lazy_entry_is_listed_before_import_and_built_after() -> None:
    registry: Registry[Thing] = Registry("thing")
    registry.register_lazy("thing", f"{__name__}:Thing")
    assert "thing" in registry and registry.names() == ["thing"]
    assert registry.get("thing") is Thing
    assert registry.make("thing", size=3).size == 3


def test_a_lazy_name_cannot_be_taken_twice_and_unknown_names_list_lazy_ones() -> None:
    registry: Registry[Thing] = Registry("thing")
    registry.register_lazy("thing", f"{__name__}:Thing")
    with pytest.raises(ConfigError, match="already registered"):
        registry.register_lazy("thing", f"{__name__}:Thing")
    with pytest.raises(
        ConfigError, match=r"unknown thing 'thinh' \(did you mean 'thing'\?\); valid: thing"
    ):
        registry.get("thinh")


def test_the_learner_registry_names_every_learner_without_importing_torch() -> None:
    """No base module imports its subclasses: listing the learners loads none of them."""
    code = (
        "import sys; from feedbackgym.agents import LEARNERS; "
        "names = LEARNERS.names(); "
        "assert 'torch' not in sys.modules and 'stable_baselines3' not in sys.modules, 'loaded'; "
        "print(','.join(names))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert set(out.stdout.strip().split(",")) == {
        "cpl",
        "lang-goal",
        "ppo",
        "pref-goal",
        "pref-ppo",
        "pref-sac",
        "rrd-ppo",
        "rrd-sac",
        "sac",
    }


def test_each_built_in_learner_resolves_to_the_class_registered_under_its_name() -> None:
    from feedbackgym.agents.learners.registry import BUILTIN_LEARNERS, LEARNERS

    for name in BUILTIN_LEARNERS:
        assert LEARNERS.get(name).registry_name == name


def test_a_user_class_cannot_take_a_built_in_name_before_the_built_in_is_imported() -> None:
    """Registering "cpl" or "ppo" (built-ins listed as data, not imported yet) is refused as it
    was when every learner was imported up front; the built-ins still load afterwards."""
    code = (
        "from feedbackgym.agents import LEARNERS, register_learner\n"
        "from feedbackgym.errors import ConfigError\n"
        "class Mine: pass\n"
        "for name in ('cpl', 'ppo'):\n"
        "    try:\n"
        "        register_learner(name, Mine)\n"
        "    except ConfigError as e:\n"
        "        print(e)\n"
        "print(*(LEARNERS.get(n).__name__ for n in ('ppo', 'pref-sac', 'cpl')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        "algo name 'cpl' is already registered",
        "algo name 'ppo' is already registered",
        "TruePPO PrefSAC CPL",
    ]
