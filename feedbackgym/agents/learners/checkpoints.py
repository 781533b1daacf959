"""Reading a run's pickled learner state (``learner.pkl`` and the like) written by this or an
earlier version of feedbackgym: modules and classes that moved are followed to their new home, so a
run started before a layout change resumes after it."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

#: Modules that moved (old dotted path -> new), issue 24's layout step.
MOVED_MODULES = {
    "feedbackgym.agents.preference": "feedbackgym.agents.learners.preference",
    "feedbackgym.agents.corrections": "feedbackgym.agents.learners.corrections",
    "feedbackgym.agents.cpl": "feedbackgym.agents.learners.cpl",
    "feedbackgym.agents.redistribution": "feedbackgym.agents.learners.redistribution",
    "feedbackgym.agents.queries": "feedbackgym.agents.learners.queries",
    "feedbackgym.agents.grounding": "feedbackgym.feedback.grounding",
    "feedbackgym.feedback._networks": "feedbackgym.feedback.networks",
    "feedbackgym.feedback.human": "feedbackgym.feedback.human.teacher",
    "feedbackgym.feedback.label_queue": "feedbackgym.feedback.human.queue",
    "feedbackgym.feedback.label_server": "feedbackgym.feedback.human.server",
    "feedbackgym.feedback.calibration": "feedbackgym.feedback.human.calibration",
}
#: B-Pref's teachers were one class each; they are presets of BPrefTeacher now.
BPREF_CLASSES = {
    "OracleTeacher": "oracle",
    "StochasticTeacher": "stochastic",
    "MistakeTeacher": "mistake",
    "SkipTeacher": "skip",
    "EqualTeacher": "equal",
    "MyopicTeacher": "myopic",
}


class CheckpointUnpickler(pickle.Unpickler):
    """A pickle reader that maps :data:`MOVED_MODULES` and :data:`BPREF_CLASSES`."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "feedbackgym.feedback.preferences" and name in BPREF_CLASSES:
            from feedbackgym.feedback.preferences import legacy_preset_class

            return legacy_preset_class(BPREF_CLASSES[name])
        return super().find_class(MOVED_MODULES.get(module, module), name)


def load_checkpoint(path: str | Path) -> Any:
    """The object pickled at ``path`` (our own checkpoint files only: pickle runs code)."""
    with open(path, "rb") as handle:
        return CheckpointUnpickler(handle).load()  # noqa: S301 (our own checkpoint)
