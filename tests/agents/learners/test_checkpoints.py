"""Checkpoints written before a layout change still load (modules and classes that moved)."""

from __future__ import annotations

import io
import pickle
import pickletools

import numpy as np

from feedbackgym.agents.learners.checkpoints import CheckpointUnpickler
from feedbackgym.feedback import make_feedback_model
from feedbackgym.feedback.human.queue import LabelQueue
from feedbackgym.feedback.preferences import BPrefTeacher


def renamed(data: bytes, old: dict[tuple[str, str], tuple[str, str]]) -> bytes:
    """``data`` as pickled by an earlier version, where each (module, name) in ``old``'s values
    was called by its key (written with protocol 0's text opcodes, then rewritten)."""
    text = pickletools.optimize(data)
    text = pickle.dumps(pickle.loads(text), protocol=0)
    for (old_module, old_name), (module, name) in old.items():
        text = text.replace(
            f"c{module}\n{name}\n".encode(), f"c{old_module}\n{old_name}\n".encode()
        )
    return text


def test_a_b_pref_teacher_pickled_as_its_old_class_loads_as_its_preset() -> None:
    teacher = make_feedback_model("mistake", rng=np.random.default_rng(3))
    teacher.__dict__.pop("registry_name", None)  # old instances carried it on their class
    data = renamed(
        pickle.dumps(teacher, protocol=0),
        {
            ("feedbackgym.feedback.preferences", "MistakeTeacher"): (
                "feedbackgym.feedback.preferences",
                "BPrefTeacher",
            )
        },
    )
    assert b"MistakeTeacher" in data
    loaded = CheckpointUnpickler(io.BytesIO(data)).load()
    assert type(loaded) is BPrefTeacher and loaded.registry_name == "mistake"
    assert loaded.config() == {**make_feedback_model("mistake").config(), "name": "mistake"}
    assert pickle.loads(pickle.dumps(loaded)).registry_name == "mistake"  # and saves again


def test_a_label_folder_pickled_from_its_old_module_loads(tmp_path) -> None:
    queue = LabelQueue(tmp_path / "labels")
    data = renamed(
        pickle.dumps(queue, protocol=0),
        {
            ("feedbackgym.feedback.label_queue", "LabelQueue"): (
                "feedbackgym.feedback.human.queue",
                "LabelQueue",
            )
        },
    )
    assert b"feedbackgym.feedback.label_queue" in data
    loaded = CheckpointUnpickler(io.BytesIO(data)).load()
    assert isinstance(loaded, LabelQueue) and loaded.root == queue.root
