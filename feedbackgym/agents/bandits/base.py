"""The agent interface shared by bandit and dueling-bandit agents, their registry and run loop."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from feedbackgym.errors import ConfigError, check_positive_int
from feedbackgym.registry import Registry, check_kwargs

AGENTS: Registry[BanditAgent] = Registry("agent")


def register_agent(name: str, cls: type[BanditAgent] | None = None, **kwargs: Any) -> Any:
    """Add an agent class to the registry under ``name`` (also usable as a decorator)."""
    return AGENTS.register(name, cls, **kwargs)


class BanditAgent:
    """Base class: a policy that acts for ``n_runs`` independent runs at once.

    The verbs are ``predict(obs) -> actions`` (one action per run), ``update(actions, rewards,
    obs)`` (what each run observed) and ``learn(env, total_steps)`` (the interaction loop on a
    vector env). State lives in arrays with a leading ``n_runs`` axis, the clock included:
    ``t[n]`` counts the updates run ``n`` has learned from (under delayed feedback, the items
    that reached it), so a run's numbers never depend on the runs simulated beside it. All
    randomness comes from ``seed``, so equal seeds give equal actions.

    :param n_arms: number of arms K.
    :param n_runs: number of independent runs acted for together.
    :param seed: seed of the agent's random generator.
    :param dim: feature dimension d (contextual agents only).
    """

    #: What the agent learns from; it acts only in envs whose ``feedback_type`` is the same.
    feedback_type: ClassVar[str] = "reward"
    #: The agent needs a (K, d) feature matrix as observation.
    contextual: ClassVar[bool] = False
    #: The agent's guarantees need rewards in [0, 1] (Bernoulli reward family).
    needs_unit_rewards: ClassVar[bool] = False
    #: The agent learns correctly from feedback that arrives late (``--delay``); agents whose
    #: state assumes this step's outcome belongs to this step's choice say False.
    delay_ok: ClassVar[bool] = True
    #: The per-run arrays ``predict`` changes (None: not declared, any of them). Wrappers that
    #: ask an agent again for some runs only (``qpmd``) keep these of the other runs.
    predict_state: ClassVar[tuple[str, ...] | None] = None
    registry_name: ClassVar[str] = ""

    def __init__(
        self, n_arms: int, n_runs: int = 1, seed: int | None = None, dim: int | None = None
    ) -> None:
        self.n_arms = check_positive_int("n_arms", n_arms)
        self.n_runs = check_positive_int("n_runs", n_runs)
        self.dim = dim
        self.seed = seed
        self._rows = np.arange(self.n_runs)
        self.reset()

    def reset(self) -> None:
        """Forget everything learned; re-seed the random generator."""
        self.rng = np.random.default_rng(self.seed)
        self.t = np.zeros(self.n_runs, dtype=np.int64)  # each run's own clock

    def predict(self, obs: Any = None) -> np.ndarray:
        """The arm each run pulls next, shape ``(n_runs,)``."""
        raise NotImplementedError

    def update(self, actions: np.ndarray, rewards: np.ndarray, obs: Any = None) -> None:
        """Learn from the rewards the runs received; ``obs`` is what ``predict`` was given.

        An agent whose feedback is richer than the reward adds parameters that ``learn`` then
        fills (see :func:`update_extras`): ``next_obs``, the observation the step returned
        (e.g. the full ranking of a multi-dueling env), and ``feedback``, the env's
        ``info["feedback"]`` (e.g. the language bandit's sentences; None when the env gives
        none).

        An agent that implements :meth:`update_masked` natively (its per-run state kept some
        other way) need not write this: a full update is its masked update for every run.
        """
        if type(self).update_masked is not BanditAgent.update_masked:
            self.update_masked(actions, rewards, obs, np.ones(self.n_runs, dtype=bool))
            return
        raise NotImplementedError

    def learn(
        self,
        env: Any,
        total_steps: int,
        checkpoints: np.ndarray | None = None,
        seed: int | None = None,
        regret_key: str = "regret",
        callback: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Interact with the vector ``env`` (one sub-env per run) for ``total_steps`` steps.

        One episode per run: ``total_steps`` may not exceed the env's ``horizon`` (a
        ConfigError says so), since past it the runs would restart on a fresh instance while
        the agent kept what it learned on the old one. Returns the cumulative regret
        (``info[regret_key]``, which the agent never sees) of each run at each checkpoint step,
        shape ``(n_runs, len(checkpoints))``: checkpoints are steps in [1, total_steps], in any
        order (columns follow it), and default to every step. ``seed`` seeds the env's reset.
        ``callback(steps)`` is called now and then with the number of steps done since its last
        call.
        """
        total_steps = check_positive_int("total_steps", total_steps)
        if env.num_envs != self.n_runs:
            raise ConfigError(f"env has {env.num_envs} runs but the agent acts for {self.n_runs}")
        total_steps, steps, column = check_steps(env, total_steps, checkpoints)
        at_steps = np.empty((self.n_runs, steps.size))
        cumulative = np.zeros(self.n_runs)
        obs, _ = env.reset(seed=seed)
        next_cp = 0
        report_every = max(1, total_steps // 200)
        extras = update_extras(self.update)
        for t in range(1, total_steps + 1):
            actions = self.predict(obs)
            next_obs, rewards, _, _, info = env.step(actions)
            arrived = info.get("arrived")
            if arrived is None:
                self.update(actions, rewards, obs, **extras(next_obs, info))
            else:  # a delayed env: learn from what arrived this step
                self.update_arrived(arrived, extras)
            obs = next_obs
            cumulative += info[regret_key]
            if next_cp < steps.size and steps[next_cp] == t:
                at_steps[:, next_cp] = cumulative
                next_cp += 1
            if callback is not None and (t % report_every == 0 or t == total_steps):
                callback(report_every if t % report_every == 0 else t % report_every)
        return at_steps[:, column]

    def update_arrived(
        self, arrived: dict[str, Any], extras: Callable[[Any, dict[str, Any]], dict[str, Any]]
    ) -> None:
        """Learn from the feedback that arrived this step in a delayed env (any agent).

        ``arrived`` is a :class:`~feedbackgym.feedback.delayed_bandit.DelayedFeedbackEnv`'s
        ``info["arrived"]``: arrays ``(n_runs, m)`` of ``actions``, ``rewards``, ``obs``,
        ``next_obs`` and ``mask``. Slot ``j`` of every run is learned in one
        :meth:`update_masked` call, runs without an item in that slot left as they are; so an
        agent updates when (and as often as) its feedback arrives. Delay-aware agents override.
        """
        mask = arrived["mask"]
        obs, next_obs = arrived.get("obs"), arrived.get("next_obs")
        for j in range(mask.shape[1]):
            rows = mask[:, j]
            if not rows.any():
                continue
            self.update_masked(
                arrived["actions"][:, j],
                arrived["rewards"][:, j],
                None if obs is None else obs[:, j],
                rows,
                **extras(None if next_obs is None else next_obs[:, j], {}),
            )

    def update_masked(
        self, actions: np.ndarray, rewards: np.ndarray, obs: Any, mask: np.ndarray, **extras: Any
    ) -> None:
        """:meth:`update` for the runs where ``mask`` is True only; the others keep their state.

        Generic: the per-run state (every ndarray attribute with a leading ``n_runs`` axis) of
        the runs left out is saved and put back after a full :meth:`update`, whose values in
        those rows are placeholders. The clock ``t`` is such state: it advances in the masked
        runs only. An agent with per-run state held otherwise overrides this.
        """
        if mask.all():
            self.update(actions, rewards, obs, **extras)
            return
        out = np.flatnonzero(~mask)
        saved = {
            name: value[out].copy()
            for name, value in vars(self).items()
            if isinstance(value, np.ndarray)
            and value.ndim
            and value.shape[0] == self.n_runs
            and name != "_rows"
        }
        self.update(actions, rewards, obs, **extras)
        for name, value in saved.items():
            getattr(self, name)[out] = value

    @classmethod
    def check_env(cls, env: Any) -> None:
        """Raise ConfigError when this agent cannot act in ``env`` (say why and what would do)."""
        base = getattr(env, "unwrapped", env)
        contextual = bool(getattr(base, "contextual", False))
        name = cls.registry_name or cls.__name__
        kind = getattr(base, "feedback_type", "reward")
        space = getattr(env, "single_action_space", None)
        if gives(kind, "reward") and not isinstance(space, spaces.Discrete):
            raise ConfigError(f"agent {name!r} needs a Discrete action space (arms), got {space}")
        if not gives(kind, cls.feedback_type):
            fitting = [n for n in AGENTS.names() if gives(kind, AGENTS.get(n).feedback_type)]
            raise ConfigError(
                f"agent {name!r} learns from {cls.feedback_type} feedback but the env gives "
                f"{kind} feedback; agents for it: {', '.join(fitting) or 'none registered'}"
            )
        if cls.contextual and not contextual:
            raise ConfigError(
                f"agent {name!r} needs a contextual env (observation = arm features); "
                f"use it with e.g. feedbackgym/ContextualLinearBandit-v0"
            )
        if not cls.contextual and contextual:
            raise ConfigError(
                f"agent {name!r} ignores contexts; on a contextual env use linucb or lin-ts"
            )
        family = getattr(base, "reward_family", None)
        if cls.needs_unit_rewards and family != "bernoulli":
            said = f"are {family}" if family else "do not declare reward_family = 'bernoulli'"
            raise ConfigError(
                f"agent {name!r} needs rewards in [0, 1] but the env's rewards {said}"
            )

    @classmethod
    def from_env(cls, env: Any, seed: int | None = None, **params: Any) -> BanditAgent:
        """Build the agent for a vector ``env``: K, runs and (if contextual) d are read off it."""
        cls.check_env(env)
        check_kwargs(cls, params, f"agent {cls.registry_name or cls.__name__!r}")
        kwargs: dict[str, Any] = {"n_runs": env.num_envs, "seed": seed, **params}
        if cls.contextual:
            kwargs["dim"] = int(env.single_observation_space.shape[-1])
        if "reward_family" in init_params(cls):
            kwargs.setdefault("reward_family", getattr(env.unwrapped, "reward_family", None))
        return cls(int(env.single_action_space.n), **kwargs)


#: ``math.log(k)`` for k = 1, 2, ... (entry 0 unused), grown as larger clocks are seen.
_LOGS = np.zeros(1)


def log_clock(t: np.ndarray) -> np.ndarray:
    """``math.log`` of every run's clock ``t`` (entries >= 1), bit for bit (``np.log`` may
    differ from it in the last bit): read off a table of ``math.log`` values."""
    global _LOGS
    first = int(t[0])
    if (t == first).all():  # always so without delays: every run has learned as often
        return np.full(t.shape, math.log(first))
    top = int(t.max())
    if top >= _LOGS.size:
        size = max(2 * _LOGS.size, top + 1, 1024)
        _LOGS = np.array([0.0] + [math.log(k) for k in range(1, size)])
    return _LOGS[t]


def by_clock(t: np.ndarray, step: Callable[..., Any], *per_run: np.ndarray) -> None:
    """``step(value, *rows)`` for each group of runs whose clock ``t`` is ``value``.

    For compiled steps that take one clock for all the runs they are given and treat each run
    on its own (index computations of UCB-style agents): when every run's clock agrees (always
    without delays) this is one call on the full ``per_run`` arrays; otherwise each group gets
    a call on copies of its rows of them, written back after.
    """
    first = int(t[0])
    if (t == first).all():
        step(first, *per_run)
        return
    for value in np.unique(t).tolist():
        on_rows(np.flatnonzero(t == value), partial(step, value), *per_run)


def on_rows(rows: np.ndarray, step: Callable[..., Any], *per_run: np.ndarray) -> None:
    """``step(*parts)`` on the rows ``rows`` of the ``per_run`` arrays (copies, written back)."""
    parts = [np.ascontiguousarray(array[rows]) for array in per_run]
    step(*parts)
    for array, part in zip(per_run, parts, strict=True):
        array[rows] = part


#: Feedback an env gives besides its own ``feedback_type``: an env that corrects each pull in
#: words still samples a reward for it, so agents that learn from rewards act there too (and
#: ignore the words). Agents are matched on :func:`gives`.
ALSO_GIVES: dict[str, tuple[str, ...]] = {"correction": ("reward",)}


def gives(env_feedback: str, agent_feedback: str) -> bool:
    """Whether an env whose ``feedback_type`` is ``env_feedback`` serves an agent learning from
    ``agent_feedback``: the same kind, or one the env gives besides (:data:`ALSO_GIVES`)."""
    return agent_feedback == env_feedback or agent_feedback in ALSO_GIVES.get(env_feedback, ())


def update_extras(update: Callable[..., Any]) -> Callable[[Any, dict[str, Any]], dict[str, Any]]:
    """What an interaction loop passes to ``update`` beyond ``(actions, rewards, obs)``.

    Returns ``extras(next_obs, info) -> kwargs``: ``next_obs`` when ``update`` takes a
    ``next_obs`` parameter, ``feedback=info.get("feedback")`` when it takes ``feedback``. Only
    the env's feedback leaves ``info``: the rest of it is hidden truth (regret, means).
    """
    params = inspect.signature(update).parameters
    wants_next_obs, wants_feedback = "next_obs" in params, "feedback" in params

    def extras(next_obs: Any, info: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if wants_next_obs:
            out["next_obs"] = next_obs
        if wants_feedback:
            out["feedback"] = info.get("feedback")
        return out

    return extras


def env_horizon(env: Any) -> int | None:
    """Steps per episode of a vector ``env`` (its ``horizon``), or None when it declares none."""
    horizon = getattr(getattr(env, "unwrapped", env), "horizon", None)
    is_int = isinstance(horizon, (int, np.integer)) and not isinstance(horizon, bool)
    return int(horizon) if is_int else None


def default_metric(env: Any) -> str:
    """The regret metric reported when none is asked for: the env's first that applies.

    On a dueling env without a Condorcet winner that is ``copeland``, not ``average``. Studies
    and ``learn`` both use this rule.
    """
    base = getattr(env, "unwrapped", env)
    metrics = getattr(base, "regret_metrics", ("regret",))
    check = getattr(base, "check_metric", None)
    for metric in metrics:
        try:
            if callable(check):
                check(metric)
        except ConfigError:
            continue
        return metric
    return metrics[0]


def check_steps(env: Any, total_steps: Any, checkpoints: Any) -> tuple[int, np.ndarray, np.ndarray]:
    """``learn``'s checks of its arguments, shared by the fused loops: ``total_steps`` a
    positive integer within the env's horizon (one episode per run), and the checkpoints
    (default: every step) as :func:`_check_checkpoints` gives them."""
    total_steps = check_positive_int("total_steps", total_steps)
    horizon = env_horizon(env)
    if horizon is not None and total_steps > horizon:
        raise ConfigError(
            f"total_steps={total_steps} is beyond the env's horizon {horizon} (one episode "
            f"per run); make the env with horizon={total_steps} or learn for at most {horizon}"
        )
    if checkpoints is None:
        checkpoints = np.arange(1, total_steps + 1)
    steps, column = _check_checkpoints(checkpoints, total_steps)
    return total_steps, steps, column


def _check_checkpoints(checkpoints: Any, total_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct checkpoint steps, sorted, and for each given checkpoint its index in them."""
    given = np.asarray(checkpoints)
    valid = f"checkpoints must be whole steps between 1 and total_steps ({total_steps})"
    if given.ndim != 1 or given.dtype.kind not in "iuf":
        raise ConfigError(f"{valid}, given as a flat list; got {checkpoints!r}")
    whole = given.dtype.kind in "iu" or bool(np.all(given == np.round(given)))
    outside = (given < 1) | (given > total_steps)
    if not whole or outside.any():
        bad = given[outside][0] if outside.any() else given[given != np.round(given)][0]
        raise ConfigError(f"{valid}; got {bad:g}")
    steps, column = np.unique(given.astype(np.int64), return_inverse=True)
    return steps, column


def init_params(cls: type) -> set[str]:
    return set(inspect.signature(cls).parameters)


def make_agent(name: str, env: Any, seed: int | None = None, **params: Any) -> BanditAgent:
    """Build the agent registered as ``name`` for the vector ``env``."""
    return AGENTS.get(name).from_env(env, seed=seed, **params)


def snapshot_rows(
    agent: BanditAgent, rows: np.ndarray, names: tuple[str, ...] | None = None
) -> dict[str, np.ndarray]:
    """The per-run state (ndarrays with a leading n_runs axis) of ``agent`` in ``rows``: the
    arrays ``names``, or all of them (None)."""
    if names is not None:
        return {name: getattr(agent, name)[rows].copy() for name in names}
    return {
        name: value[rows].copy()
        for name, value in vars(agent).items()
        if isinstance(value, np.ndarray)
        and value.ndim
        and value.shape[0] == agent.n_runs
        and name != "_rows"
    }


def restore_rows(agent: BanditAgent, rows: np.ndarray, saved: dict[str, np.ndarray]) -> None:
    """Put back the per-run arrays :func:`snapshot_rows` saved from ``agent`` in ``rows``."""
    for name, value in saved.items():
        getattr(agent, name)[rows] = value
