"""Registry presets: one class under several names that differ only in their defaults."""

from __future__ import annotations

import pickle

import pytest

from feedbackgym.errors import ConfigError
from feedbackgym.registry import Registry


class Annotator:
    """A stand-in for a teacher: a few keyword arguments with defaults."""

    registry_name = ""

    def __init__(self, noise: float = 0.0, skip: bool = False, seed: int | None = None) -> None:
        self.noise, self.skip, self.seed = noise, skip, seed


def registry() -> Registry[Annotator]:
    names: Registry[Annotator] = Registry("annotator")
    names.register("annotator", Annotator)
    names.register("noisy", Annotator, defaults={"noise": 0.1})
    names.register("lazy", Annotator, defaults={"noise": 0.2, "skip": True})
    return names


def test_a_preset_builds_its_class_with_its_defaults_under_what_it_is_given() -> None:
    names = registry()
    assert names.names() == ["annotator", "lazy", "noisy"]
    assert names.get("noisy") is Annotator and names.get("lazy") is Annotator
    noisy = names.make("noisy", seed=3)
    assert (noisy.noise, noisy.skip, noisy.seed) == (0.1, False, 3)
    lazy = names.make("lazy", noise=0.5)
    assert (lazy.noise, lazy.skip) == (0.5, True)
    # a positional argument replaces the default of the parameter it fills
    assert names.make("lazy", 0.7).noise == 0.7
    assert names.defaults("lazy") == {"noise": 0.2, "skip": True}
    assert names.defaults("annotator") == {}


def test_what_a_preset_builds_carries_the_preset_name_and_the_class_keeps_its_own() -> None:
    names = registry()
    noisy = names.make("noisy")
    assert noisy.registry_name == "noisy"
    assert Annotator.registry_name == "annotator"
    assert names.make("annotator").registry_name == "annotator"
    assert pickle.loads(pickle.dumps(noisy)).registry_name == "noisy"


def test_a_preset_defaults_stay_its_own_when_the_caller_changes_what_it_got() -> None:
    defaults = {"noise": 0.1}
    names: Registry[Annotator] = Registry("annotator")
    names.register("noisy", Annotator, defaults=defaults)
    defaults["noise"] = 0.9
    names.defaults("noisy")["noise"] = 0.9
    assert names.make("noisy").noise == 0.1


def test_bad_defaults_and_unknown_keywords_are_one_line_errors_naming_the_parameters() -> None:
    names = registry()
    with pytest.raises(ConfigError) as err:
        names.register("loud", Annotator, defaults={"volume": 11})
    assert str(err.value) == "annotator 'loud' has no parameter 'volume'; valid: noise, skip, seed"
    assert "loud" not in names
    with pytest.raises(ConfigError) as err:
        names.make("noisy", temperature=2.0)
    assert str(err.value) == (
        "annotator 'noisy' has no parameter 'temperature'; valid: noise, skip, seed"
    )
    with pytest.raises(ConfigError, match="unknown annotator 'nosy'"):
        names.defaults("nosy")


def test_a_name_is_taken_once_unless_registered_again_the_same_way_or_overwritten() -> None:
    names = registry()
    names.register("noisy", Annotator, defaults={"noise": 0.1})  # the same preset again: fine
    for defaults in ({"noise": 0.3}, None):
        with pytest.raises(ConfigError, match="'noisy' is already registered"):
            names.register("noisy", Annotator, defaults=defaults)
    names.register("noisy", Annotator, defaults={"noise": 0.3}, overwrite=True)
    assert names.make("noisy").noise == 0.3
    # a preset used as a decorator registers the class it decorates
    decorated = names.register("quiet", defaults={"noise": 0.0, "skip": True})(Annotator)
    assert decorated is Annotator and names.make("quiet").skip is True
