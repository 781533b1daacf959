"""Language corrections from the gap between the learner's and an expert's behaviour."""

from __future__ import annotations

import string
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from feedbackgym.errors import ConfigError, check_range
from feedbackgym.feedback.base import (
    FeedbackModel,
    check_choice,
    read_yaml,
    register_feedback_model,
)

#: Feedback kinds of LLF-Bench (Cheng et al. 2023): reward, hindsight positive/negative,
#: future positive/negative.
KINDS = ("r", "hp", "hn", "fp", "fn")
#: Every meaning a template file may give paraphrases for.
MEANINGS = (
    "r_good",
    "r_bad",
    "hp",
    "hp_axis",
    "hn",
    "fp",
    "fp_keep",
    "fn",
    "hp_axis_vague",
    "hn_vague",
    "fp_vague",
    "fn_vague",
)
AMOUNTS = ("amount_small", "amount_large")
PLACEHOLDERS = {"direction", "opposite", "amount", "axis"}
_VAGUE = {"hp_axis": "hp_axis_vague", "hn": "hn_vague", "fp": "fp_vague", "fn": "fn_vague"}
_DIRECTIONAL = ("hp_axis", "hn", "fp", "fn")


def default_templates_path() -> Path:
    """Path of the template file shipped with feedbackgym."""
    return Path(str(resources.files("feedbackgym.feedback") / "templates" / "corrections.yaml"))


def load_templates(source: str | Path | dict[str, Any] | None = None) -> dict[str, list[str]]:
    """Paraphrases per meaning: the shipped file, overridden by ``source`` (a path or a dict).

    A file that cannot be read or parsed, an unknown meaning or placeholder, or an empty list
    raises a one-line ConfigError.
    """
    base = _read_yaml(default_templates_path())
    if source is None:
        return base
    user = source if isinstance(source, dict) else _read_yaml(Path(source))
    valid = MEANINGS + AMOUNTS
    for meaning, sentences in user.items():
        if meaning not in valid:
            raise ConfigError(f"templates: unknown meaning {meaning!r}; valid: {', '.join(valid)}")
        if (
            not isinstance(sentences, list)
            or not sentences
            or not all(isinstance(s, str) and s.strip() for s in sentences)
        ):
            raise ConfigError(f"templates: {meaning} must be a non-empty list of sentences")
        for sentence in sentences:
            try:
                names = {f for _, f, _, _ in string.Formatter().parse(sentence) if f is not None}
            except ValueError:
                raise ConfigError(f"templates: {meaning} has a bad sentence {sentence!r}") from None
            if names - PLACEHOLDERS:
                raise ConfigError(
                    f"templates: {meaning} uses unknown placeholder(s) "
                    f"{', '.join(sorted(names - PLACEHOLDERS))}; valid: "
                    f"{', '.join(sorted(PLACEHOLDERS))}"
                )
        base[meaning] = list(sentences)
    return base


def _read_yaml(path: Path) -> dict[str, Any]:
    data = read_yaml(path, "templates file")
    if not isinstance(data, dict):
        raise ConfigError(f"templates file {str(path)!r} must map meanings to lists of sentences")
    return data


@register_feedback_model("language")
class LanguageTeacher(FeedbackModel):
    """Corrections in words from the gap between the learner's and an expert's behaviour.

    Follows CORGI (Kim et al. 2023, "Generating Language Corrections for Teaching Physical
    Control Tasks"): the correction names the largest difference between the student's and
    the expert's trajectory; and LLF-Bench (Cheng et al. 2023) for the kinds of feedback:
    ``r`` ("that was worse"), ``hn`` ("you went too far left"), ``hp`` ("you got the up-down
    part right"), ``fp`` ("next time move more right"), ``fn`` ("next time don't go so far
    left"). Each query draws one of ``kinds`` uniformly, then one paraphrase uniformly.

    ``agent`` and ``expert`` describe behaviour as vectors of ``d`` numbers (an end position, a
    mean action, an action's direction); axis ``k`` is named by ``axis_names[k] = (negative,
    positive)``. The gap ``agent - expert`` decides: its largest component is the direction
    the learner went too far in; within ``tolerance`` the behaviour is right; beyond ``large``
    the amount words say "much". Kinds without anything to say fall back: ``hn``/``fn`` on a
    right behaviour become ``hp``/``fp_keep``; ``hp`` with no axis right becomes ``hn``.
    Noise: with probability ``wrong_direction`` the direction is reversed, with probability
    ``vagueness`` a directional sentence loses its direction ("something went wrong there").

    Deviations: CORGI generates sentences with a language model trained on human corrections;
    this teacher fills templates (``templates``: a YAML path or dict, see the shipped
    ``templates/corrections.yaml``), so it needs no model and runs fast.

    The last answer's meaning (hidden truth, for evaluation) is in ``last_meaning``.

    :param kinds: the feedback kinds to draw from, a subset of r, hp, hn, fp, fn.
    :param templates: a template YAML path or a dict of meaning -> sentences (None: shipped).
    :param axis_names: ``(negative, positive)`` words of each axis of the behaviour vectors.
    :param tolerance: a gap up to this is "right", >= 0.
    :param large: a gap above this is "much" off, >= tolerance.
    :param wrong_direction: probability of naming the opposite direction, in [0, 1].
    :param vagueness: probability of leaving the direction out, in [0, 1].
    :param rng: a numpy Generator or an integer seed.
    """

    kind = "correction"

    def __init__(
        self,
        kinds: Sequence[str] = KINDS,
        templates: str | Path | dict[str, Any] | None = None,
        axis_names: Sequence[Sequence[str]] = (("left", "right"), ("down", "up")),
        tolerance: float = 0.1,
        large: float = 1.0,
        wrong_direction: float = 0.0,
        vagueness: float = 0.0,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(rng)
        if isinstance(kinds, str):
            kinds = [kinds]
        if not kinds:
            raise ConfigError(f"kinds must be a non-empty subset of {', '.join(KINDS)}")
        self.kinds = tuple(check_choice("kinds", k, KINDS) for k in kinds)
        self.templates = str(templates) if isinstance(templates, Path) else templates
        self.axis_names = tuple(tuple(str(w) for w in pair) for pair in axis_names)
        if not self.axis_names or any(len(pair) != 2 for pair in self.axis_names):
            raise ConfigError("axis_names must be a list of (negative, positive) word pairs")
        self.tolerance = check_range("tolerance", tolerance, 0.0)
        self.large = check_range("large", large, self.tolerance)
        self.wrong_direction = check_range("wrong_direction", wrong_direction, 0.0, 1.0)
        self.vagueness = check_range("vagueness", vagueness, 0.0, 1.0)
        self._sentences = load_templates(templates)
        self._build_table()
        self.last_meaning: dict[str, np.ndarray] = {}

    def _build_table(self) -> None:
        """Every sentence for every (meaning, axis, sign, amount), flattened for indexing."""
        d = len(self.axis_names)
        shape = (len(MEANINGS), d, 2, 2)
        self._offset = np.zeros(shape, dtype=np.int64)
        self._count_of = np.zeros(shape, dtype=np.int64)
        flat: list[str] = []
        rows: list[tuple[int, int, int, int, bool]] = []
        for m, meaning in enumerate(MEANINGS):
            for k, (negative, positive) in enumerate(self.axis_names):
                for sign in (0, 1):
                    direction, opposite = (positive, negative) if sign else (negative, positive)
                    for size, amount_key in enumerate(AMOUNTS):
                        start = len(flat)
                        for t, template in enumerate(self._sentences[meaning]):
                            for amount in self._sentences[amount_key]:
                                flat.append(
                                    template.format(
                                        direction=direction,
                                        opposite=opposite,
                                        amount=amount,
                                        axis=f"{negative}-{positive}",
                                    )
                                )
                                rows.append((m, k, sign, size, "{amount}" in template, t))
                                if "{amount}" not in template:
                                    break
                        self._offset[m, k, sign, size] = start
                        self._count_of[m, k, sign, size] = len(flat) - start
        self._flat = np.array(flat, dtype=object)
        meta = np.array(rows, dtype=np.int64).reshape(-1, 6)
        #: Every sentence this teacher can say, with what it means: ``sentence``, ``meaning``
        #: (a name of MEANINGS), ``axis`` (index into ``axis_names``), ``sign`` (1: the gap
        #: ``agent - expert`` on that axis is positive, i.e. the learner went too far the
        #: positive way; for ``hp_axis`` the axis is the one that was right), ``amount``
        #: (0: small, 1: large), ``says_amount`` (the sentence has amount words) and
        #: ``template`` (index of the template in its meaning's list). Learners fit their
        #: grounding on this table (``feedbackgym.feedback.grounding``).
        self.table = {
            "sentence": self._flat,
            "meaning": np.asarray(MEANINGS)[meta[:, 0]],
            "axis": meta[:, 1],
            "sign": meta[:, 2],
            "amount": meta[:, 3],
            "says_amount": meta[:, 4].astype(bool),
            "template": meta[:, 5],
        }

    def correct(
        self,
        agent: np.ndarray,
        expert: np.ndarray,
        agent_return: np.ndarray | None = None,
        expert_return: np.ndarray | None = None,
    ) -> list[str]:
        """One sentence per row of ``agent`` vs ``expert`` (shape ``(n, d)``).

        The ``r`` kind says "good" when the gap is within ``tolerance``, or, when both returns
        are given, when ``agent_return >= expert_return``.
        """
        agent = np.atleast_2d(np.asarray(agent, dtype=np.float64))
        expert = np.atleast_2d(np.asarray(expert, dtype=np.float64))
        d = len(self.axis_names)
        if agent.shape != expert.shape or agent.shape[1] != d:
            raise ConfigError(
                f"agent and expert must both have shape (n, {d}) (one column per axis name), "
                f"got {agent.shape} and {expert.shape}"
            )
        n = agent.shape[0]
        u_kind, u_flip, u_vague, u_pick = self.rng.random((4, n))
        gap = agent - expert
        size = np.abs(gap)
        axis = size.argmax(axis=1)
        rows = np.arange(n)
        magnitude = size[rows, axis]
        sign = (gap[rows, axis] > 0) ^ (u_flip < self.wrong_direction)
        right = magnitude <= self.tolerance
        if agent_return is not None and expert_return is not None:
            r_good = np.asarray(agent_return, float) >= np.asarray(expert_return, float)
        else:
            r_good = right
        kind = np.asarray(self.kinds)[(u_kind * len(self.kinds)).astype(np.int64)]
        best_axis = size.argmin(axis=1)
        axis_right = (d > 1) & (size[rows, best_axis] <= self.tolerance)
        idx = {name: i for i, name in enumerate(MEANINGS)}
        meaning = np.select(
            [
                kind == "r",
                (kind == "hp") & right,
                (kind == "hp") & axis_right,
                right & ((kind == "hn") | (kind == "fn")),
                kind == "hp",
                kind == "hn",
                kind == "fp",
                kind == "fn",
            ],
            [
                np.where(r_good, idx["r_good"], idx["r_bad"]),
                idx["hp"],
                idx["hp_axis"],
                np.where(kind == "hn", idx["hp"], idx["fp_keep"]),
                idx["hn"],
                idx["hn"],
                np.where(right, idx["fp_keep"], idx["fp"]),
                idx["fn"],
            ],
        )
        axis = np.where(meaning == idx["hp_axis"], best_axis, axis)
        vague = u_vague < self.vagueness
        for sharp, blurred in _VAGUE.items():
            meaning = np.where(vague & (meaning == idx[sharp]), idx[blurred], meaning)
        amount = (magnitude > self.large).astype(np.int64)
        sign = sign.astype(np.int64)
        count = self._count_of[meaning, axis, sign, amount]
        pick = self._offset[meaning, axis, sign, amount] + (u_pick * count).astype(np.int64)
        sentences: list[str] = self._flat[pick].tolist()
        names = np.asarray(MEANINGS)[meaning]
        directional = np.isin(names, _DIRECTIONAL) & (names != "hp_axis")
        words = np.asarray(self.axis_names)[axis, sign]
        self.last_meaning = {
            "kind": kind,
            "meaning": names,
            "direction": np.where(directional, words, ""),
            "right": right,
        }
        self._count(n, n)
        self._record(
            "correct", lambda: {"agent": agent.tolist(), "expert": expert.tolist()}, sentences
        )
        return sentences

    def correct_actions(
        self,
        actions: np.ndarray,
        expert_actions: np.ndarray,
        action_vectors: np.ndarray,
    ) -> list[str]:
        """Corrections for discrete actions, compared through their direction vectors.

        ``action_vectors[a]`` is the direction of action ``a`` (e.g. ``GridWorld.action_vectors``).
        """
        vectors = np.asarray(action_vectors, dtype=np.float64)
        actions = np.asarray(actions, dtype=np.int64).reshape(-1)
        expert_actions = np.asarray(expert_actions, dtype=np.int64).reshape(-1)
        return self.correct(vectors[actions], vectors[expert_actions])
