"""Learners from preferences on SB3: pref-PPO, PEBBLE-style pref-SAC, and true-reward baselines."""

from __future__ import annotations

import inspect
import math
import os
import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from feedbackgym.agents.learners.checkpoints import load_checkpoint
from feedbackgym.agents.learners.queries import (
    QUERY_STRATEGIES,
    SCHEDULES,
    SegmentPool,
    TeamPool,
    label_schedule,
    select_queries,
    split_segments,
)
from feedbackgym.agents.learners.registry import register_learner
from feedbackgym.errors import ConfigError, check_positive_int, check_range
from feedbackgym.feedback.base import FeedbackModel, Segments, check_choice, check_int
from feedbackgym.feedback.reward_model import (
    Comparisons,
    RewardModel,
    one_hot_sizes,
    resolve_device,
)
from feedbackgym.io import atomic_path

#: Teacher kinds a preference learner can ask, and the verb it asks them with.
QUERY_VERBS = {"preference": "prefer", "ranking": "rank"}


class LearnedRewardVecEnv(VecEnvWrapper):
    """Replaces the reward of a VecEnv with ``reward_fn(obs, actions)`` and records each step.

    Every step's observation (the one the action was taken in), action and true reward go to
    ``pool``, where only the teacher reads the true reward; the true reward is also kept in
    ``info["true_reward"]`` for evaluation. With ``reward_fn=None`` the true reward passes
    through (the baselines). One wrapper, one job: what the reward is, is the learner's.
    """

    def __init__(self, venv: VecEnv, pool: SegmentPool, reward_fn: Any = None) -> None:
        super().__init__(venv)
        self.pool = pool
        self.reward_fn = reward_fn
        self._obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None

    def reset(self) -> Any:
        self._obs = self.venv.reset()
        return self._obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)
        self.venv.step_async(actions)

    def step_wait(self) -> Any:
        obs, true_rewards, dones, infos = self.venv.step_wait()
        self.pool.add(self._obs, self._actions, true_rewards, infos)
        for info, value in zip(infos, true_rewards, strict=True):
            info.setdefault("true_reward", float(value))  # a reward-delay wrapper set it first
        if self.reward_fn is None:
            rewards = true_rewards
        else:
            rewards = np.asarray(self.reward_fn(self._obs, self._actions, obs), dtype=np.float32)
        self._obs = obs
        return obs, rewards, dones, infos


class PreferenceLearner:
    """An SB3 agent trained on a reward model fitted to a teacher's answers (or on the reward).

    The loop of Christiano et al. (2017), "Deep Reinforcement Learning from Human
    Preferences": the agent acts; its recent steps go to a pool; every ``update_every``
    timesteps the learner draws queries of ``segment_length`` steps from the pool (uniformly,
    or the ones the reward ensemble disagrees on most), asks the teacher, fits the ensemble
    (:class:`~feedbackgym.feedback.reward_model.RewardModel`) to every answer so far, and the
    agent goes on with the new reward, standardised on the pool's steps. The learner reads
    observations, actions and the teacher's answers; the true reward reaches only the teacher.

    Labels follow ``schedule`` over the rounds: ``initial_fraction`` of them in the first
    round, the rest front-loaded ("hyperbolic", as imitation's default) or even ("constant").
    Pairwise teachers are asked ``prefer``; ranking teachers (e.g. ``plackett-luce``) rank
    ``ranking_size`` segments per query, fitted with the Plackett-Luce likelihood; either way
    a query is one label.

    Multi-agent envs (a :class:`~feedbackgym.envs.multiagent.vector.TeamVecEnv`: one slot per
    agent and team copy) train one policy shared by every agent (parameter sharing), as in
    Multi-Agent RLHF (Zhang et al. 2024). The teacher then has a scope: a ``team`` teacher
    compares joint segments of a whole team by the team return, a ``per-agent`` teacher one
    agent's segments by its own return. The reward model scores each agent's observation and
    action with one shared network and sums over the team (``agent_axis``); each agent is
    trained on the team's learned reward (its mean over agents) under a team teacher, on its
    own part under a per-agent teacher. MARLHF's temporal regulariser is the reward model's
    ``temporal_reg``. Deviation from MARLHF: online queries on the policy's own experience (as
    Christiano et al.), not an offline data set, and no imitation term.

    :param env: an SB3 VecEnv (e.g. from ``stable_baselines3.common.env_util.make_vec_env``).
    :param teacher: a pairwise or ranking feedback model (None for the true-reward baselines).
    :param labels: the number of queries to ask over the whole of :meth:`learn`.
    :param query: "uniform", "disagreement" or "entropy".
    :param segment_length: steps per segment shown to the teacher.
    :param ranking_size: segments per query for ranking teachers (>= 2).
    :param schedule: "hyperbolic" or "constant".
    :param initial_fraction: share of the labels asked in the first round, in [0, 1].
    :param update_every: timesteps between reward-model rounds (None: the algorithm's default).
    :param reward_epochs: passes over all labels per round (the members keep training
        from round to round, so a few suffice).
    :param initial_epochs: passes over the first round's labels, which start the members
        (imitation's ``initial_epoch_multiplier`` in absolute terms).
    :param reward_model: keyword arguments of ``RewardModel`` (members, hidden, lr, ...).
    :param pool_steps: recent steps per env that queries are drawn from (None: default).
    :param label_delay_rounds: rounds the teacher's answers take to arrive (late labels): the
        answers to round ``k``'s queries join the labelled comparisons at round ``k + d``;
        the teacher is asked (and counted in ``labels_used``) at round ``k``, and learning goes
        on meanwhile with the answers that have arrived. Answers still on their way when the
        run ends are never fitted; ``labels_pending`` counts them.
    :param consequence_steps: steps that followed each segment, shown to a hindsight teacher
        (one whose ``prefer`` takes ``a_after``/``b_after``, e.g. ``HindsightTeacher``) with
        it; the reward model still learns from the segments alone. None: ``segment_length``
        for such teachers, 0 (none) for the others.
    :param agent_reward: on a multi-agent env, what each agent is trained on: "team" (its
        team's mean learned reward), "own" (its own part of the team's learned reward) or
        "auto" ("team" under a team teacher, "own" under a per-agent teacher).
    :param algo_kwargs: keyword arguments of the SB3 algorithm (its hyperparameters).
    :param device: "auto", "cpu" or "cuda": the SB3 policy and the reward ensemble.
    :param seed: seed of the policy, the reward model and the query draws.
    :param tensorboard_log: folder for SB3's TensorBoard logs (None: none).
    :param verbose: SB3 verbosity.
    """

    sb3_class: ClassVar[type[BaseAlgorithm]] = PPO
    #: False for the true-reward baselines (no teacher, no reward model).
    uses_feedback: ClassVar[bool] = True
    #: The learner asks about segments (``query``, ``segment_length`` apply).
    uses_segments: ClassVar[bool] = True
    #: The teacher a run uses when none is named.
    default_teacher: ClassVar[str] = "oracle"
    #: Rounds run at the end of SB3's rollouts (for SAC with ``train_freq=1``: after every
    #: step), once SB3 has stored the rollout's steps; else right after a step, before SB3
    #: stores it.
    round_at_rollout_end: ClassVar[bool] = True
    #: The learner trains a shared policy on multi-agent envs (TeamVecEnv).
    multiagent_ok: ClassVar[bool] = False
    registry_name: ClassVar[str] = ""

    def __init__(
        self,
        env: VecEnv,
        teacher: FeedbackModel | None = None,
        labels: int = 0,
        query: str = "disagreement",
        segment_length: int = 50,
        ranking_size: int = 4,
        schedule: str = "hyperbolic",
        initial_fraction: float = 0.25,
        update_every: int | None = None,
        reward_epochs: int = 5,
        initial_epochs: int = 50,
        reward_model: dict[str, Any] | None = None,
        pool_steps: int | None = None,
        algo_kwargs: dict[str, Any] | None = None,
        device: str = "auto",
        seed: int = 0,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        label_delay_rounds: int = 0,
        consequence_steps: int | None = None,
        agent_reward: str = "auto",
    ) -> None:
        name = self.registry_name or type(self).__name__
        self.device = resolve_device(device)
        self.seed = int(seed)
        self.algo_kwargs = dict(algo_kwargs or {})
        self.query = check_choice("query", query, QUERY_STRATEGIES)
        self.schedule = check_choice("schedule", schedule, SCHEDULES)
        self.segment_length = check_positive_int("segment_length", segment_length)
        self.ranking_size = check_positive_int("ranking_size", ranking_size)
        if self.ranking_size < 2:
            raise ConfigError(f"ranking_size must be >= 2, got {ranking_size}")
        self.initial_fraction = check_range("initial_fraction", initial_fraction, 0.0, 1.0)
        self.reward_epochs = check_positive_int("reward_epochs", reward_epochs)
        self.initial_epochs = check_positive_int("initial_epochs", initial_epochs)
        if self.uses_feedback:
            self.labels = check_positive_int("labels", labels)
            self.verb = teacher_verb(teacher, name)
        else:
            if teacher is not None or labels:
                raise ConfigError(
                    f"algo {name!r} learns from the true reward: it takes no teacher or labels "
                    f"(use pref-{name} to learn from a teacher)"
                )
            self.labels, self.verb = 0, None
        self.label_delay_rounds = check_int("label_delay_rounds", label_delay_rounds, 0)
        hindsight = self.uses_feedback and takes_consequences(teacher)
        if consequence_steps is None:
            consequence_steps = self.segment_length if hindsight else 0
        self.consequence_steps = check_int("consequence_steps", consequence_steps, 0)
        if self.consequence_steps and not hindsight:
            raise ConfigError(
                f"consequence_steps={consequence_steps} needs a hindsight teacher (one whose "
                "prefer() takes a_after and b_after, e.g. 'hindsight'); this one judges "
                "segments alone"
            )
        if (self.label_delay_rounds or self.consequence_steps) and not self.uses_segments:
            raise ConfigError(
                f"algo {name!r}: label_delay_rounds and consequence_steps apply to learners "
                "from segment preferences only"
            )
        self.check_env(env)
        self.n_agents, self.scope = check_team(env, teacher if self.uses_feedback else None, name)
        if self.n_agents and not self.multiagent_ok:
            raise ConfigError(
                f"algo {name!r} does not train on multi-agent envs; use pref-ppo (or ppo)"
            )
        check_choice("agent_reward", agent_reward, ("auto", "team", "own"))
        if agent_reward == "auto":
            agent_reward = "own" if self.scope == "agent" else "team"
        self.agent_reward = agent_reward
        self.teacher = teacher
        self.rng = np.random.default_rng(self.seed)
        # Rounds run while the envs and the policy wait: the fit may take every core.
        defaults = {"seed": self.seed, "threads": os.cpu_count() or 1}
        if self.n_agents:
            defaults["agent_axis"] = True
        obs_space, act_space = env.observation_space, env.action_space
        options = {**defaults, **(reward_model or {})}
        # Discrete states and actions are one-hot codes as wide as their spaces (never read
        # from the first labels, which may not hold the highest state).
        for option, size in one_hot_sizes(obs_space, act_space).items():
            if size is not None and options.get(option) not in (None, size):
                raise ConfigError(
                    f"reward_model {option}={options[option]} does not match the env's "
                    f"{obs_space if option == 'n_obs' else act_space}: leave it out (it is "
                    "read from the space)"
                )
            if size is not None:
                options[option] = size
        self.reward_model = RewardModel(**options, device=device)
        self.reward_model.check_steps(  # one step of zeros: refused now, not at the first fit
            np.zeros((1,) + obs_space.shape, obs_space.dtype),
            np.zeros((1,) + act_space.shape, act_space.dtype),
            agent_indicator=bool(getattr(env, "agent_indicator", False)),
        )
        self.update_every = check_positive_int(
            "update_every", update_every or self.default_update_every(env)
        )
        capacity = pool_steps or self.default_pool_steps(env)
        if self.consequence_steps:  # room for a segment and what followed it
            capacity = max(capacity, self.segment_length + self.consequence_steps)
        if self.n_agents:
            self.pool: SegmentPool = TeamPool(
                env.num_envs, capacity, self.n_agents, self.scope or "team"
            )
        else:
            self.pool = SegmentPool(env.num_envs, capacity)
        self.comparisons = Comparisons()
        #: Answers asked but not yet arrived: (round asked, segments shown, answers).
        self.pending: list[tuple[int, list[Segments], np.ndarray]] = []
        self.labels_used = 0
        self.answered = 0
        self.round = 0
        self.round_times: np.ndarray | None = None
        self.round_labels: np.ndarray | None = None
        self.accuracy_hits: list[float] = []  # prequential: 1/0 per strict label, before fitting
        self.env = LearnedRewardVecEnv(env, self.pool, self._reward if self.uses_feedback else None)
        self.model = self.sb3_class(
            "MlpPolicy",
            self.env,
            seed=self.seed,
            device=self.device,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            **self.algo_kwargs,
        )

    # ----- hooks for subclasses -----------------------------------------------------------
    @classmethod
    def check_teacher(cls, teacher: Any, algo: str) -> None:
        """A one-line ConfigError when ``teacher`` cannot answer this learner's queries."""
        teacher_verb(teacher, algo)

    @classmethod
    def check_env(cls, env: VecEnv) -> None:
        """Raise ConfigError when the algorithm cannot act in ``env``."""

    def default_update_every(self, env: VecEnv) -> int:
        return 1000

    def default_pool_steps(self, env: VecEnv) -> int:
        return max(self.segment_length, 1000)

    def _reward(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        """The reward the agent is trained on: the ensemble's, standardised (0 before fitting)."""
        return self.learned_reward(obs, actions)

    def learned_reward(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The learned reward of one vector step, one value per env slot (0 before fitting).

        On a multi-agent env each slot is one agent: its team's mean learned reward, or its own
        part of it (``agent_reward``).
        """
        if not self.reward_model.fitted:
            return np.zeros(len(obs), dtype=np.float32)
        if not self.n_agents:
            return self.reward_model.reward(obs, actions)
        obs, actions = np.asarray(obs), np.asarray(actions)
        a = self.n_agents
        per_agent = self.reward_model.reward(
            obs.reshape((-1, a) + obs.shape[1:]), actions.reshape((-1, a) + actions.shape[1:])
        )
        if self.agent_reward == "team":
            per_agent = np.repeat(per_agent.mean(axis=1, keepdims=True), a, axis=1)
        return per_agent.reshape(-1)

    def _after_round(self) -> None:
        """Called after each reward-model update (pref-SAC relabels its buffer here)."""

    def on_step(self, timesteps: int) -> None:
        """Called after every vector step (pref-SAC's pre-training relabels here)."""

    # ----- the feedback loop --------------------------------------------------------------
    def plan(self, total_timesteps: int) -> None:
        """Fix the rounds' timesteps and label counts for a run of ``total_timesteps``; a run
        that ends before its first round (it would ask no labels) is a ConfigError."""
        first = max(self.update_every, self.first_round_at())
        if first > total_timesteps:
            raise ConfigError(
                f"timesteps={total_timesteps} ends before the first feedback round at timestep "
                f"{first} (update_every={self.update_every}, or segment_length="
                f"{self.segment_length} steps in each of {self.env.num_envs} envs); raise "
                "timesteps or lower those"
            )
        rounds = max(1, math.ceil((total_timesteps - first) / self.update_every))
        self.round_times = first + self.update_every * np.arange(rounds)
        self.round_labels = label_schedule(
            self.labels, rounds, self.schedule, self.initial_fraction
        )

    def first_round_at(self) -> int:
        """Timestep of the first round (at least one segment, and what a hindsight teacher
        is shown after it, of experience per env)."""
        return (self.segment_length + self.consequence_steps) * self.env.num_envs

    def round_due(self, timesteps: int) -> bool:
        return (
            self.uses_feedback
            and self.round_times is not None
            and self.round < len(self.round_times)
            and timesteps >= self.round_times[self.round]
        )

    def feedback_round(self) -> dict[str, float]:
        """Ask this round's queries, fit the reward model, rescale the reward; returns metrics."""
        assert self.round_labels is not None
        n = int(self.round_labels[self.round])
        self.round += 1
        metrics: dict[str, float] = {}
        if n > 0:
            m = 2 if self.verb == "prefer" else self.ranking_size
            groups = select_queries(
                self.pool,
                n,
                m,
                self.segment_length,
                self.query,
                self.reward_model,
                self.rng,
                after=self.consequence_steps,
            )
            self._ask(groups)
        self._deliver()
        if len(self.comparisons):
            epochs = self.reward_epochs if self.reward_model.fitted else self.initial_epochs
            metrics.update(self.reward_model.fit(self.comparisons, epochs=epochs))
            self.reward_model.calibrate(*self.pool.steps())
            self._after_round()
        metrics["labels_used"] = self.labels_used
        if self.label_delay_rounds:
            metrics["labels_pending"] = self.labels_pending
        metrics["reward_model_accuracy"] = self.reward_model_accuracy
        return metrics

    def _ask(self, groups: list[Segments]) -> None:
        """Ask the teacher about ``groups`` now; the answers wait in ``pending`` until they
        arrive (:meth:`_deliver`, ``label_delay_rounds`` rounds later)."""
        assert self.teacher is not None
        before = self.teacher.queries
        if self.consequence_steps:
            parts = [split_segments(g, self.segment_length) for g in groups]
            groups, after = [seen for seen, _ in parts], [then for _, then in parts]
        if self.verb == "prefer":
            if self.consequence_steps:
                answers = self.teacher.prefer(groups[0], groups[1], after[0], after[1])
            else:
                answers = self.teacher.prefer(groups[0], groups[1])
            answers = np.asarray(answers, dtype=np.float64)
        else:
            answers = np.asarray(self.teacher.rank(groups), dtype=np.int64)
        self.pending.append((self.round, groups, answers))
        # A query is one label; a wrapped teacher (panel, budget) counts its own queries too.
        self.labels_used += max(self.teacher.queries - before, len(groups[0]))

    def _deliver(self) -> None:
        """Keep the answers that have arrived by this round (each scored first, prequentially,
        by the model that has not yet been fitted to it); each arrives exactly once."""
        due = [entry for entry in self.pending if entry[0] + self.label_delay_rounds <= self.round]
        self.pending = [e for e in self.pending if e[0] + self.label_delay_rounds > self.round]
        for _, groups, answers in due:
            if self.verb == "prefer":
                if self.reward_model.fitted:
                    p = self.reward_model.probabilities(groups[0], groups[1]).mean(axis=0)
                    strict = (answers == 1.0) | (answers == 0.0)
                    self.accuracy_hits.extend(((p > 0.5) == (answers == 1.0))[strict].tolist())
                self.answered += self.comparisons.add_pairs(groups[0], groups[1], answers)
            else:
                if self.reward_model.fitted:
                    returns = self.reward_model.segment_returns(groups).mean(axis=0)
                    for row, order in zip(returns, answers, strict=True):
                        if (order < 0).any():
                            continue
                        ranked = row[order]  # best first: correct pairs have decreasing returns
                        i, j = np.triu_indices(len(order), k=1)
                        self.accuracy_hits.extend((ranked[i] > ranked[j]).tolist())
                self.answered += self.comparisons.add_rankings(groups, answers)

    @property
    def labels_pending(self) -> int:
        """Queries asked whose answers have not arrived (late labels)."""
        return sum(len(groups[0]) for _, groups, _ in self.pending)

    def summary_metrics(self) -> dict[str, Any]:
        """Extra figures for a run's summary: the late answers that never arrived; on a
        multi-agent env, the team size and the teacher's scope."""
        out: dict[str, Any] = {}
        if self.label_delay_rounds:
            out["labels_pending"] = self.labels_pending
        if self.n_agents:
            out["agents_per_team"] = self.n_agents
        if self.scope:
            out["teacher_scope"] = self.scope
        return out

    @property
    def reward_model_accuracy(self) -> float:
        """Held-out accuracy: the last 100 strict labels, each scored before it was fitted."""
        recent = self.accuracy_hits[-100:]
        return float(np.mean(recent)) if recent else float("nan")

    # ----- SB3's verbs --------------------------------------------------------------------
    def learn(
        self, total_timesteps: int, callback: Any = None, progress_bar: bool = False
    ) -> PreferenceLearner:
        """Train until the agent has taken ``total_timesteps`` steps in all (a resumed learner
        counts the steps it took before); ``callback`` is any SB3 callback."""
        total_timesteps = check_positive_int("total_timesteps", total_timesteps)
        if self.uses_feedback and self.round_times is None:
            self.plan(total_timesteps)
        callbacks = [FeedbackCallback(self)]
        if callback is not None:
            callbacks.append(callback)
        remaining = total_timesteps - self.model.num_timesteps
        if remaining > 0:
            self.model.learn(
                remaining,
                callback=CallbackList(callbacks),
                reset_num_timesteps=self.model.num_timesteps == 0,
                progress_bar=progress_bar,
            )
        return self

    def predict(
        self, observation: np.ndarray, deterministic: bool = True
    ) -> tuple[np.ndarray, Any]:
        """The policy's action (SB3's ``predict``); deterministic by default."""
        return self.model.predict(observation, deterministic=deterministic)

    @property
    def num_timesteps(self) -> int:
        return int(self.model.num_timesteps)

    def save(self, path: str | Path) -> None:
        """Write the learner into the folder ``path``: ``model.zip`` (SB3), ``reward_model.pt``,
        ``learner.pkl`` (labels, pool, teacher state, schedule) and, for off-policy algorithms,
        ``replay_buffer.pkl``. Each file is replaced atomically."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with atomic_path(path / "model.zip") as tmp:
            self.model.save(tmp)
        self.reward_model.save(path / "reward_model.pt")
        teacher_log = None
        if self.teacher is not None:
            teacher_log, self.teacher.log = self.teacher.log, None  # an open file stays here
        try:
            state = {
                "class": type(self).__name__,
                "teacher": self.teacher,
                "comparisons": self.comparisons.arrays(),
                "pool": self.pool.state(),
                "rng": self.rng.bit_generator.state,
                "pending": self.pending,
                **{
                    k: getattr(self, k)
                    for k in (
                        "labels_used",
                        "answered",
                        "round",
                        "round_times",
                        "round_labels",
                        "accuracy_hits",
                    )
                },
            }
            with atomic_path(path / "learner.pkl") as tmp:
                tmp.write_bytes(pickle.dumps(state))
        finally:
            if self.teacher is not None:
                self.teacher.log = teacher_log
        if hasattr(self.model, "save_replay_buffer"):
            with atomic_path(path / "replay_buffer.pkl") as tmp:
                self.model.save_replay_buffer(tmp)

    def load_state(self, path: str | Path) -> PreferenceLearner:
        """Continue from a folder written by :meth:`save` (same constructor arguments)."""
        path = Path(path)
        state = load_checkpoint(path / "learner.pkl")
        if state["class"] != type(self).__name__:
            raise ConfigError(f"{path} holds a {state['class']}, not a {type(self).__name__}")
        if state["teacher"] is not None and self.teacher is not None:
            log, log_id = self.teacher.log, self.teacher._log_id
            self.teacher = state["teacher"]
            self.teacher.log, self.teacher._log_id = log, log_id
        self.comparisons = Comparisons.from_arrays(state["comparisons"])
        self.pool.load_state(state["pool"])
        self.rng.bit_generator.state = state["rng"]
        for key in ("labels_used", "answered", "round", "round_times", "round_labels"):
            setattr(self, key, state[key])
        self.accuracy_hits = list(state["accuracy_hits"])
        self.pending = list(state.get("pending", []))  # answers asked, still on their way
        self.reward_model = RewardModel.load(path / "reward_model.pt", device=self.device)
        self.model.set_parameters(str(path / "model.zip"), exact_match=True, device=self.device)
        # set_parameters restores the weights; the step counter comes from the saved zip too.
        saved = self.sb3_class.load(path / "model.zip", device=self.device)
        self.model.num_timesteps = saved.num_timesteps
        self.model._n_updates = saved._n_updates
        if (path / "replay_buffer.pkl").exists() and hasattr(self.model, "load_replay_buffer"):
            self.model.load_replay_buffer(path / "replay_buffer.pkl")
        return self


def check_team(env: VecEnv, teacher: Any, algo: str) -> tuple[int | None, str | None]:
    """``(agents per team, teacher scope)`` of a run: ``(None, None)`` on a single-agent env;
    a teacher whose scope does not fit the env is a one-line ConfigError."""
    from feedbackgym.feedback.multiagent import SCOPES, teacher_scope

    n_agents = getattr(env, "n_agents", None)
    scope = teacher_scope(teacher)
    if n_agents is None:
        if scope is not None:
            raise ConfigError(
                f"a {scope}-scoped teacher judges multi-agent teams, but the env is single-agent; "
                "use a single-agent teacher (oracle, stochastic, mistake, ...)"
            )
        return None, None
    if teacher is not None and scope is None:
        raise ConfigError(
            f"algo {algo!r} on a multi-agent env needs a team teacher, one of: team ("
            f"{SCOPES['team']}), per-agent ({SCOPES['agent']}); got a single-agent teacher"
        )
    return int(n_agents), scope


def takes_consequences(teacher: Any) -> bool:
    """Whether ``teacher`` can be shown what followed each segment (a hindsight teacher, or a
    budget around one)."""
    inner = getattr(teacher, "model", None)
    if inner is not None and getattr(teacher, "passes_consequences", False):
        return takes_consequences(inner)
    prefer = getattr(teacher, "prefer", None)
    if prefer is None:
        return False
    try:
        parameters = inspect.signature(prefer).parameters
    except (TypeError, ValueError):
        return False
    return "a_after" in parameters and "b_after" in parameters


def teacher_verb(teacher: Any, algo: str) -> str:
    """``"prefer"`` or ``"rank"``: how ``algo`` asks ``teacher``; else a one-line ConfigError."""
    kind = getattr(teacher, "kind", None)
    if teacher is None or kind not in QUERY_VERBS:
        from feedbackgym.feedback import FEEDBACK_MODELS

        fitting = [
            n
            for n in FEEDBACK_MODELS.names()
            if FEEDBACK_MODELS.get(n).kind in QUERY_VERBS
            and getattr(FEEDBACK_MODELS.get(n), "scope", None) is None
        ]
        fitting += ["team and per-agent (on multi-agent envs)"]
        fitting += ["budget (around one of these)", "replay (of a log of one of these)"]
        what = "no teacher" if teacher is None else f"a {kind} teacher"
        raise ConfigError(
            f"algo {algo!r} learns from preferences or rankings but was given {what}; "
            f"valid teachers: {', '.join(fitting)}"
        )
    return QUERY_VERBS[kind]


class FeedbackCallback(BaseCallback):
    """Runs the learner's feedback rounds at the right timesteps and logs their metrics."""

    def __init__(self, learner: PreferenceLearner) -> None:
        super().__init__()
        self.learner = learner

    def _round(self) -> None:
        metrics = self.learner.feedback_round()
        for key, value in metrics.items():
            self.logger.record(f"feedback/{key}", value)

    def _on_step(self) -> bool:
        # ``while``: when update_every is shorter than a rollout, every round due is run.
        while not self.learner.round_at_rollout_end and self.learner.round_due(self.num_timesteps):
            self._round()
        self.learner.on_step(self.num_timesteps)
        return True

    def _on_rollout_end(self) -> None:
        while self.learner.round_at_rollout_end and self.learner.round_due(self.num_timesteps):
            self._round()


@register_learner("pref-ppo")
class PrefPPO(PreferenceLearner):
    """PPO (Schulman et al. 2017, SB3) on a reward learned from preferences.

    Christiano et al. (2017) with PPO in place of their A2C/TRPO (as in imitation): the
    reward model is updated between rollouts (a round every ``update_every`` timesteps,
    by default every rollout), never within one, so each rollout is scored by one reward.
    See :class:`PreferenceLearner` for the loop and every parameter; ``algo_kwargs`` are
    PPO's.
    """

    sb3_class = PPO
    round_at_rollout_end = True
    multiagent_ok = True

    def default_update_every(self, env: VecEnv) -> int:
        return int(self.algo_kwargs.get("n_steps", 2048)) * env.num_envs

    def default_pool_steps(self, env: VecEnv) -> int:
        return max(self.segment_length, int(self.algo_kwargs.get("n_steps", 2048)))


@register_learner("ppo")
class TruePPO(PrefPPO):
    """PPO on the true reward: the baseline that pref-PPO's return and wall time are compared to.

    Same loop and outputs as pref-PPO, without a teacher.
    """

    uses_feedback = False


@register_learner("pref-sac")
class PrefSAC(PreferenceLearner):
    """PEBBLE (Lee, Smith & Abbeel 2021, "PEBBLE: Feedback-Efficient Interactive Reinforcement
    Learning via Relabeling Experience and Unsupervised Pre-training") on SB3's SAC.

    After each reward-model round the whole replay buffer is relabelled with the new reward,
    so off-policy learning never mixes rewards of different models. For the first
    ``unsupervised_steps`` timesteps the agent explores with PEBBLE's state-entropy reward,
    the distance from each reached state to its ``knn``-th nearest neighbour among the states
    seen (recomputed over the whole buffer every ``update_every`` steps, on the GPU when
    there is one); the first labels are then asked about that varied experience.
    Deviations: PEBBLE recomputes the entropy reward on every sampled batch and normalises it
    by a running estimate; here it is relabelled in batches and standardised. PEBBLE's
    critic is not reset after pre-training (nor here).

    :param unsupervised_steps: timesteps of state-entropy pre-training (0: none).
    :param knn: the k of the k-nearest-neighbour entropy estimate.
    See :class:`PreferenceLearner` for the other parameters; ``algo_kwargs`` are SAC's.
    """

    sb3_class = SAC
    # SB3 stores a step after the callbacks' on_step: a round there would leave that step with
    # the previous reward. At the rollout's end (every step by default) it is stored.
    round_at_rollout_end = True

    def __init__(
        self, *args: Any, unsupervised_steps: int = 0, knn: int = 5, **kwargs: Any
    ) -> None:
        self.unsupervised_steps = int(unsupervised_steps)
        if self.unsupervised_steps < 0:
            raise ConfigError(f"unsupervised_steps must be >= 0, got {unsupervised_steps}")
        self.knn = check_positive_int("knn", knn)
        self._entropy_scale = (0.0, 1.0)  # of the last relabel; new steps use it too
        super().__init__(*args, **kwargs)

    @classmethod
    def check_env(cls, env: VecEnv) -> None:
        if not isinstance(env.action_space, spaces.Box):
            raise ConfigError(
                f"algo {cls.registry_name!r} needs a continuous (Box) action space, got "
                f"{env.action_space}; use pref-ppo (or ppo) for discrete actions"
            )

    def default_update_every(self, env: VecEnv) -> int:
        return 1000

    def default_pool_steps(self, env: VecEnv) -> int:
        return max(self.segment_length, 5000 // env.num_envs)

    def first_round_at(self) -> int:
        return max(super().first_round_at(), self.unsupervised_steps)

    def _reward(self, obs: np.ndarray, actions: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        if not self.reward_model.fitted and self.unsupervised_steps:
            mean, std = self._entropy_scale
            return (self._state_entropy(next_obs, self._buffer_states()) - mean) / std
        return super()._reward(obs, actions, next_obs)

    def on_step(self, timesteps: int) -> None:
        if (
            not self.reward_model.fitted
            and self.unsupervised_steps
            and timesteps % self.update_every < self.env.num_envs
        ):
            states = self._buffer_states()
            if len(states) > self.knn:
                self._relabel(lambda obs, act, nxt: self._state_entropy(nxt, states))

    def _after_round(self) -> None:
        self._relabel(lambda obs, act, nxt: self.reward_model.reward(obs, act))

    def _buffer_states(self, limit: int = 4096) -> np.ndarray:
        buffer = self.model.replay_buffer
        upto = buffer.buffer_size if buffer.full else buffer.pos
        if upto == 0:
            return np.zeros((0,) + buffer.obs_shape, dtype=np.float32)
        states = buffer.next_observations[:upto].reshape((upto * buffer.n_envs, -1))
        if len(states) > limit:
            states = states[self.rng.choice(len(states), limit, replace=False)]
        return states

    def _state_entropy(self, states: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """PEBBLE's particle estimate: distance to the k-th nearest reference state."""
        import torch

        states = np.asarray(states, dtype=np.float32).reshape(len(states), -1)
        if len(reference) <= self.knn:
            return np.zeros(len(states), dtype=np.float32)
        with torch.no_grad():
            x = torch.as_tensor(states, device=self.device)
            ref = torch.as_tensor(reference, dtype=torch.float32, device=self.device)
            out = np.empty(len(states), dtype=np.float32)
            for start in range(0, len(states), 4096):
                dist = torch.cdist(x[start : start + 4096], ref)
                kth = dist.kthvalue(self.knn + 1, dim=1).values  # +1: a state is its own 0-NN
                out[start : start + 4096] = kth.cpu().numpy()
        return out

    def _relabel(self, reward_fn: Any) -> None:
        """Replace every reward in the replay buffer by ``reward_fn(obs, actions, next_obs)``."""
        buffer = self.model.replay_buffer
        upto = buffer.buffer_size if buffer.full else buffer.pos
        if upto == 0:
            return
        flat = upto * buffer.n_envs
        obs = buffer.observations[:upto].reshape((flat,) + buffer.obs_shape)
        nxt = buffer.next_observations[:upto].reshape((flat,) + buffer.obs_shape)
        # The buffer holds actions scaled to [-1, 1]; the reward model saw the env's actions.
        actions = self.model.policy.unscale_action(
            buffer.actions[:upto].reshape(flat, buffer.action_dim)
        )
        rewards = np.asarray(reward_fn(obs, actions, nxt), dtype=np.float32)
        if not self.reward_model.fitted:  # entropy reward: standardise over the buffer
            self._entropy_scale = (float(rewards.mean()), float(rewards.std()) + 1e-8)
            rewards = (rewards - self._entropy_scale[0]) / self._entropy_scale[1]
        buffer.rewards[:upto] = rewards.reshape(upto, buffer.n_envs)


@register_learner("sac")
class TrueSAC(PrefSAC):
    """SAC on the true reward: the baseline that pref-SAC is compared to.

    Same loop and outputs as pref-SAC, without a teacher or pre-training.
    """

    uses_feedback = False
