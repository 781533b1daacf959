"""Panels of annotators (majority vote or random assignment) and query budgets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from feedbackgym.errors import ConfigError, check_positive_int
from feedbackgym.feedback.base import (
    EQUAL,
    FeedbackModel,
    Segments,
    as_segments,
    check_choice,
    inner_model,
    register_feedback_model,
)
from feedbackgym.feedback.scores import Scores


@register_feedback_model("panel")
class Panel(FeedbackModel):
    """Several pairwise annotators with different parameters answering as one teacher.

    ``mode="majority"``: every member labels every pair and the panel answers the most voted
    label (votes for "a", "b" and "equal"; skipped members do not vote; a tie between the top
    labels answers "equal"; a pair nobody answers is skipped). ``disagreement_rate`` is the
    fraction of pairs, among those with at least two answers, on which the members' answers
    were not all the same. ``mode="random"``: each pair goes to one member drawn uniformly
    (crowd-sourcing style); the members' disagreement is then not observed and the rate is
    NaN. Members count their own queries; the panel counts pairs.

    Inspired by crowd-sourced preference labelling with several raters, as simulated in
    AlpacaFarm (Dubois et al. 2023), whose simulated annotators are a pool of differently
    prompted raters; deviation: our raters are B-Pref-style teachers, not language models.

    Built by name, ``members`` is a list of registry names or configs, e.g.
    ``{"members": ["oracle", {"name": "mistake", "mistake": 0.2}, "myopic"]}``.

    :param members: pairwise feedback models, their registry names or their config dicts.
    :param mode: "majority" or "random".
    :param rng: a numpy Generator or an integer seed (random assignment; members given by
        name or config draw their seeds from it).
    """

    kind = "preference"
    example = '{"members": ["oracle", {"name": "mistake", "mistake": 0.2}, "myopic"]}'

    def __init__(
        self,
        members: Sequence[FeedbackModel | dict[str, Any] | str],
        mode: str = "majority",
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(rng)
        if isinstance(members, (str, dict, FeedbackModel)) or not isinstance(
            members, (list, tuple)
        ):
            raise ConfigError(
                f"panel members must be a non-empty list, e.g. {self.example}; got {members!r}"
            )
        if not members:
            raise ConfigError(f"panel members must be a non-empty list, e.g. {self.example}")
        # Members given as names or configs draw their seeds from the panel's generator
        # (unless the config names one), so a panel built from a seed answers the same.
        built = []
        for k, member in enumerate(members):
            built_here = isinstance(member, (dict, str))
            own_seed = isinstance(member, dict) and member.get("rng") is not None
            seed = self._child_seed() if built_here and not own_seed else None
            where = f"panel member {k}"
            model = inner_model(member, where, seed)
            if not hasattr(model, "prefer"):
                name = getattr(model, "registry_name", "") or type(model).__name__
                raise ConfigError(
                    f"{where} ({name}) gives {getattr(model, 'kind', '')} feedback; members "
                    "must answer pairwise preferences"
                )
            built.append(model)
        self.members = built
        self.mode = check_choice("mode", mode, ("majority", "random"))
        self.disagreements = 0
        self.comparable = 0

    def check_spaces(self, observation_space: Any, action_space: Any) -> None:
        for member in self.members:
            check = getattr(member, "check_spaces", None)
            if check is not None:
                check(observation_space, action_space)

    @property
    def disagreement_rate(self) -> float:
        """Fraction of pairs (with two or more answers) on which the members disagreed."""
        return self.disagreements / self.comparable if self.comparable else float("nan")

    def prefer(self, a: Segments | np.ndarray, b: Segments | np.ndarray) -> np.ndarray:
        """The panel's label for each pair (1.0 a, 0.0 b, 0.5 equal, NaN skipped)."""
        a, b = as_segments(a), as_segments(b)
        n = len(a)
        if self.mode == "random":
            who = self.rng.integers(len(self.members), size=n)
            labels = np.full(n, np.nan)
            for k, member in enumerate(self.members):
                mine = np.flatnonzero(who == k)
                if mine.size:
                    labels[mine] = member.prefer(a.take(mine), b.take(mine))
        else:
            votes = np.stack([m.prefer(a, b) for m in self.members])
            for_a = (votes == 1.0).sum(axis=0)
            for_b = (votes == 0.0).sum(axis=0)
            for_equal = (votes == EQUAL).sum(axis=0)
            top = np.maximum(np.maximum(for_a, for_b), for_equal)
            labels = np.where(
                top == 0,
                np.nan,
                np.where(
                    (for_a == top) & (for_b < top) & (for_equal < top),
                    1.0,
                    np.where((for_b == top) & (for_a < top) & (for_equal < top), 0.0, EQUAL),
                ),
            )
            answered = for_a + for_b + for_equal
            distinct = (for_a > 0).astype(int) + (for_b > 0) + (for_equal > 0)
            self.comparable += int(np.count_nonzero(answered >= 2))
            self.disagreements += int(np.count_nonzero((answered >= 2) & (distinct > 1)))
        self._count(n, int(np.count_nonzero(~np.isnan(labels))))
        self._record("prefer", lambda: {"a": a.to_dict(), "b": b.to_dict()}, labels)
        return labels


class BudgetExhausted(ConfigError):
    """Raised when a query would go over a feedback budget (``on_exhausted="raise"``)."""


@register_feedback_model("budget")
class Budget(FeedbackModel):
    """Counts the queries sent to ``model`` and caps them at ``max_queries``.

    A query is a pair (``prefer``), a ranking (``rank``), a trajectory row (``score``: all
    its judged steps) or a sentence (``correct``). When a batch does not fit in what is left:
    ``on_exhausted="raise"`` raises :class:`BudgetExhausted` (a one-line ConfigError) before
    asking anything; ``on_exhausted="refuse"`` asks the model only the first items that fit
    and answers the rest with the refusal value: NaN labels (like a skip), rankings of -1,
    NaN scores, and ``None`` sentences. As in Lee et al. (2021, PEBBLE/B-Pref), the budget is
    the total feedback a run may use.

    Built by name, ``model`` is a registry name or a config, e.g. ``{"model": {"name":
    "mistake", "mistake": 0.1}, "max_queries": 100}``; there is no default model, since the
    budget is only ever on the teacher you name.

    :param model: the feedback model to guard, its registry name or its config dict.
    :param max_queries: the most queries it may answer, a positive integer.
    :param on_exhausted: "raise" or "refuse".
    :param rng: seed for a model given as a name or config (else the model's own generator).
    """

    example = '{"model": {"name": "oracle"}, "max_queries": 100}'

    def __init__(
        self,
        model: FeedbackModel | dict[str, Any] | str,
        max_queries: int,
        on_exhausted: str = "raise",
        rng: np.random.Generator | int | None = None,
    ) -> None:
        model = inner_model(model, "budget's model", rng)
        if not isinstance(model, FeedbackModel):
            raise ConfigError(f"budget's model must be a FeedbackModel, got {model!r}")
        super().__init__(model.rng)
        self.model = model
        self.kind = model.kind
        self.max_queries = check_positive_int("max_queries", max_queries)
        self.on_exhausted = check_choice("on_exhausted", on_exhausted, ("raise", "refuse"))
        self.used = 0
        self.refused = 0

    def check_spaces(self, observation_space: Any, action_space: Any) -> None:
        self.model.check_spaces(observation_space, action_space)

    @property
    def remaining(self) -> int:
        """Queries still allowed."""
        return self.max_queries - self.used

    def _allow(self, n: int) -> int:
        if n <= self.remaining:
            return n
        if self.on_exhausted == "raise":
            raise BudgetExhausted(
                f"feedback budget exhausted: {self.used} of max_queries={self.max_queries} "
                f"used, this batch asks {n} more"
            )
        return self.remaining

    def _done(self, asked: int, n: int) -> None:
        self.used += asked
        self.refused += n - asked
        self._count(n, asked)

    #: A hindsight model inside is shown what followed each segment (``a_after``, ``b_after``).
    passes_consequences = True

    def prefer(
        self,
        a: Segments | np.ndarray,
        b: Segments | np.ndarray,
        a_after: Segments | np.ndarray | None = None,
        b_after: Segments | np.ndarray | None = None,
    ) -> np.ndarray:
        """Labels from the model for the pairs that fit in the budget; NaN for the rest."""
        a, b = as_segments(a), as_segments(b)
        n = len(a)
        fit = self._allow(n)
        labels = np.full(n, np.nan)
        if fit:
            first = np.arange(fit)
            after = {}
            if a_after is not None and b_after is not None:
                after = {
                    "a_after": as_segments(a_after).take(first),
                    "b_after": as_segments(b_after).take(first),
                }
            labels[:fit] = self.model.prefer(a.take(first), b.take(first), **after)
        self._done(fit, n)
        self._record("prefer", lambda: {"a": a.to_dict(), "b": b.to_dict()}, labels)
        return labels

    def rank(self, segments: Any) -> np.ndarray:
        """Rankings for the queries that fit; rows of -1 for the rest."""
        if isinstance(segments, np.ndarray) and segments.ndim == 3:
            batches = [Segments(segments[:, k]) for k in range(segments.shape[1])]
        else:
            batches = [as_segments(s) for s in segments]
        n = len(batches[0])
        fit = self._allow(n)
        ranking = np.full((n, len(batches)), -1, dtype=np.int64)
        if fit:
            ranking[:fit] = self.model.rank([s.take(np.arange(fit)) for s in batches])
        self._done(fit, n)
        self._record("rank", lambda: {"segments": [s.to_dict() for s in batches]}, ranking)
        return ranking

    def score(self, trajectories: Any, judge: int | None = None, policy: Any = None) -> Any:
        """Scores for the trajectory rows that fit; NaN values (arrival -1) for the rest."""
        trajectories = as_segments(trajectories)
        n = len(trajectories)
        width = trajectories.length if judge is None else judge
        fit = self._allow(n)
        values = np.full((n, width), np.nan)
        arrival = np.full((n, width), -1, dtype=np.int64)
        if fit:
            got = self.model.score(trajectories.take(np.arange(fit)), judge, policy)
            values[:fit], arrival[:fit] = got.value, got.arrival
        self._done(fit, n)
        scores = Scores(values, arrival)
        self._record(
            "score", lambda: {"trajectories": trajectories.to_dict(), "judge": width}, scores
        )
        return scores

    def correct(self, agent: np.ndarray, expert: np.ndarray, *args: Any) -> list[str | None]:
        """Sentences for the rows that fit; None for the rest."""
        agent = np.atleast_2d(np.asarray(agent, dtype=np.float64))
        expert = np.atleast_2d(np.asarray(expert, dtype=np.float64))
        n = agent.shape[0]
        fit = self._allow(n)
        cut = [np.asarray(x)[:fit] if x is not None else None for x in args]
        sentences: list[str | None] = []
        if fit:
            sentences.extend(self.model.correct(agent[:fit], expert[:fit], *cut))
        sentences.extend([None] * (n - fit))
        self._done(fit, n)
        self._record(
            "correct", lambda: {"agent": agent.tolist(), "expert": expert.tolist()}, sentences
        )
        return sentences
