"""Teachers of a team: one judgement about the whole team, or one about a single agent.

Both are the B-Pref teacher (:class:`~feedbackgym.feedback.preferences.PreferenceModel`, every
noise option: rationality ``beta``, myopic ``gamma``, ``mistake``, ``skip_threshold``,
``equal_threshold``, ``relative_thresholds``) applied to what a multi-agent learner shows
them; they differ in what that is, which their ``scope`` tells the learner:

- ``team`` (scope "team"): joint segments of every agent of one team, judged by the team's
  return (the sum of the env's team reward, ``info["team_reward"]``), as in Multi-Agent RLHF
  (Zhang et al. 2024, "Multi-Agent Reinforcement Learning from Human Feedback: Data Coverage
  and Algorithmic Techniques").
- ``per-agent`` (scope "agent"): one agent's segments, judged by that agent's own return.

Where per-agent and team rewards disagree (a commons, a dueling team) the two teachers train
different teams. Single-agent teachers have no scope and are refused on multi-agent envs.
"""

from __future__ import annotations

from typing import Any, ClassVar

from feedbackgym.feedback.base import register_feedback_model
from feedbackgym.feedback.preferences import PreferenceModel

#: What a teacher of each scope is shown.
SCOPES = {"team": "joint segments of a whole team", "agent": "one agent's segments"}


@register_feedback_model("team")
class TeamTeacher(PreferenceModel):
    """Team preferences: joint segments compared by team return, with every B-Pref option.

    See :class:`~feedbackgym.feedback.preferences.PreferenceModel` for the parameters (the
    defaults give the oracle).
    """

    scope: ClassVar[str] = "team"


@register_feedback_model("per-agent")
class PerAgentTeacher(PreferenceModel):
    """Per-agent preferences: one agent's segments compared by its own return (B-Pref options).

    See :class:`~feedbackgym.feedback.preferences.PreferenceModel` for the parameters (the
    defaults give the oracle).
    """

    scope: ClassVar[str] = "agent"


def teacher_scope(teacher: Any) -> str | None:
    """ "team", "agent", or None (a single-agent teacher); looks through budgets and replays."""
    while teacher is not None:
        scope = getattr(teacher, "scope", None)
        if scope is not None:
            return scope
        teacher = getattr(teacher, "model", None)
    return None


__all__ = ["SCOPES", "PerAgentTeacher", "TeamTeacher", "teacher_scope"]
