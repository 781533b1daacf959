"""Goal learners for PointGoal: a belief over which candidate is the goal, from words or bits.

PointGoal (``feedbackgym/PointGoal-v0``) shows several identical candidate targets; which one is
the goal is hidden, and the same candidate index is the goal in every episode. Nothing in the
observation says which: only the person can. The learners here keep a Bayesian belief over the
goal's index, try to reach one candidate per attempt (episode) with a goal-reaching controller,
and update the belief from what the person says about the attempt:

- ``lang-goal`` (:class:`LanguageGoalLearner`): one correction in words per attempt ("you went too
  far left", "next time move a lot more up", "that was good"), grounded by
  :class:`~feedbackgym.feedback.grounding.Grounding`;
- ``pref-goal`` (:class:`PreferenceGoalLearner`): the baseline from preferences with the same
  number of person interactions: one comparison of two attempts per interaction.

Both share everything but the likelihood of an answer, so their difference measures the value of
words over bits.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from stable_baselines3.common.logger import Logger, configure
from stable_baselines3.common.vec_env import VecEnv

from feedbackgym.agents.learners.checkpoints import load_checkpoint
from feedbackgym.agents.learners.preference import QUERY_VERBS
from feedbackgym.agents.learners.registry import register_learner
from feedbackgym.envs.point_goal import EXPERT_KD, EXPERT_KP
from feedbackgym.errors import ConfigError, check_positive_int, check_range
from feedbackgym.feedback.base import Segments, check_choice
from feedbackgym.io import atomic_path

#: When a learner asks the person about an attempt.
ASK = ("always", "uncertain")


class _BeliefModel:
    """What SB3 callbacks and the training run expect of ``learner.model``: the step counter,
    a logger, the env and ``save`` (a zip holding the belief as JSON)."""

    def __init__(self, learner: GoalLearner, env: VecEnv, tensorboard_log: str | None) -> None:
        self.learner = learner
        self.env = env
        self.num_timesteps = 0
        self.tensorboard_log = tensorboard_log
        self._logger: Logger | None = None

    @property
    def logger(self) -> Logger:
        """SB3's logger, made on first use (it creates its folder), i.e. once training starts."""
        if self._logger is None:
            if self.tensorboard_log:
                self._logger = configure(self.tensorboard_log, ["tensorboard"])
            else:
                self._logger = Logger(None, [])
        return self._logger

    def get_env(self) -> VecEnv:
        return self.env

    def save(self, path: str | Path) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("belief.json", json.dumps(self.learner.describe(), indent=2))
        Path(path).write_bytes(buffer.getvalue())


class GoalLearner:
    """Bayesian goal identification over PointGoal's candidates (the shared loop).

    Each of the ``n_envs`` sub-envs runs attempts (whole episodes). At the start of an attempt
    the learner picks a candidate by Thompson sampling from its belief (Russo et al. 2018, "A
    Tutorial on Thompson Sampling") and drives the point there with the PD controller
    ``u = clip(KP (target - position) - KD velocity)`` (the env's own expert gains, applied to a
    candidate instead of the hidden goal). After the attempt it may ask the person
    (:meth:`_ask`); the answer multiplies the belief by its likelihood under each hypothesis
    "candidate h is the goal". With ``ask="uncertain"`` the person is asked only while the
    belief's largest probability is below ``confidence`` (asking when uncertain, as in
    RE-MOVE, Chakraborty et al. 2024); at most ``labels`` answers are asked for in all.
    :meth:`predict` (deterministic) goes for the most probable candidate.

    The learner reads observations only (point position and velocity, candidate positions);
    the hidden goal in ``info`` goes to the teacher, never into the belief.

    :param env: a VecEnv of PointGoal-like envs (observation: x, y, vx, vy, then 2 numbers per
        candidate).
    :param teacher: the simulated person.
    :param labels: most answers to ask for (corrections, or comparisons).
    :param ask: ``always`` (every attempt while labels remain) or ``uncertain``.
    :param confidence: with ``ask="uncertain"``, stop asking once the belief reaches it.
    :param seed: seed of the learner's random generator (Thompson sampling).
    """

    registry_name: ClassVar[str] = ""
    uses_feedback: ClassVar[bool] = True
    uses_segments: ClassVar[bool] = False
    default_teacher: ClassVar[str] = "oracle"
    sb3_class: ClassVar[Any] = None

    def __init__(
        self,
        env: VecEnv,
        teacher: Any,
        labels: int,
        ask: str = "uncertain",
        confidence: float = 0.95,
        seed: int | None = 0,
        device: str = "auto",
        tensorboard_log: str | None = None,
        algo_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if algo_kwargs:
            raise ConfigError(
                f"algo {self.registry_name!r} has no RL algorithm; algo_kwargs do not apply "
                f"(got {sorted(algo_kwargs)}); give its options as learner_kwargs"
            )
        self.check_env(env)
        self.env = env
        self.teacher = teacher
        self.check_teacher(teacher, self.registry_name)
        self.labels = check_positive_int("labels", labels)
        self.ask = check_choice("ask", ask, ASK)
        self.confidence = check_range("confidence", confidence, 0.0, 1.0)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.device = "cpu"  # the belief is a handful of numbers
        self.n_envs = env.num_envs
        self.n_targets = (env.observation_space.shape[0] - 4) // 2
        self.log_belief = np.full(self.n_targets, -np.log(self.n_targets))
        self.labels_used = 0
        self.attempts = 0
        self.unusable = 0
        self.model = _BeliefModel(self, env, tensorboard_log)
        self._obs: np.ndarray | None = None
        self._targets = np.zeros(self.n_envs, dtype=np.int64)
        # Ties of the belief (at the start, all candidates) go to a seeded random order, not to
        # the lowest index (which would favour whichever candidate the env made the goal).
        self._tiebreak = self.rng.permutation(self.n_targets) * 1e-9

    # ----- checks ---------------------------------------------------------------------------
    @classmethod
    def check_env(cls, env: VecEnv) -> None:
        shape = env.observation_space.shape
        base = env.unwrapped if hasattr(env, "unwrapped") else env
        name = getattr(getattr(base, "envs", [None])[0], "spec", None)
        if (
            shape is None
            or len(shape) != 1
            or shape[0] < 6
            or (shape[0] - 4) % 2
            or getattr(env.action_space, "shape", None) != (2,)
        ):
            raise ConfigError(
                f"algo {cls.registry_name!r} needs a PointGoal-like env (observation x, y, vx, "
                f"vy and 2 numbers per candidate; 2 force actions), e.g. "
                f"feedbackgym/PointGoal-v0; got observation shape {shape}"
                + (f" from {name.id}" if name is not None else "")
            )

    @classmethod
    def check_teacher(cls, teacher: Any, algo: str) -> None:
        raise NotImplementedError

    def plan(self, total_timesteps: int) -> None:
        """Refuse a run too short for one attempt per sub-env."""
        length = self._episode_length()
        if total_timesteps < length * self.n_envs:
            raise ConfigError(
                f"timesteps={total_timesteps} is shorter than one attempt per env "
                f"({length} steps x {self.n_envs} envs); use at least {length * self.n_envs}"
            )

    def _episode_length(self) -> int:
        spec = getattr(self.env.envs[0], "spec", None) if hasattr(self.env, "envs") else None
        return int(getattr(spec, "max_episode_steps", None) or 100)

    # ----- acting ---------------------------------------------------------------------------
    @property
    def belief(self) -> np.ndarray:
        """Probability of each candidate being the goal."""
        p = np.exp(self.log_belief - self.log_belief.max())
        return p / p.sum()

    @property
    def estimate(self) -> int:
        """The most probable candidate (ties broken by a seeded random order)."""
        return int((self.belief + self._tiebreak).argmax())

    def _control(self, obs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        obs = np.atleast_2d(obs)
        rows = np.arange(obs.shape[0])
        goal = obs[:, 4:].reshape(obs.shape[0], -1, 2)[rows, targets]
        return np.clip(EXPERT_KP * (goal - obs[:, :2]) - EXPERT_KD * obs[:, 2:4], -1.0, 1.0)

    def _sample_targets(self, n: int) -> np.ndarray:
        return self.rng.choice(self.n_targets, size=n, p=self.belief)

    def predict(
        self, observation: np.ndarray, deterministic: bool = True, **_: Any
    ) -> tuple[np.ndarray, None]:
        """Actions towards the most probable candidate (or a sampled one)."""
        obs = np.asarray(observation, dtype=np.float64)
        n = np.atleast_2d(obs).shape[0]
        if deterministic:
            targets = np.full(n, self.estimate)
        else:
            targets = self._sample_targets(n)
        actions = self._control(obs, targets).astype(np.float32)
        return (actions if obs.ndim > 1 else actions[0]), None

    @property
    def num_timesteps(self) -> int:
        return int(self.model.num_timesteps)

    @property
    def reward_model_accuracy(self) -> float:
        """Whether the belief's most probable candidate is the goal is the evaluation's
        business (success rate); there is no label-prediction accuracy to report."""
        return float("nan")

    def wants_answer(self) -> bool:
        if self.labels_used >= self.labels:
            return False
        return self.ask == "always" or self.belief.max() < self.confidence

    def learn(
        self, total_timesteps: int, callback: Any = None, progress_bar: bool = False
    ) -> GoalLearner:
        """Run attempts until ``total_timesteps`` steps in all; ``callback`` is an SB3 callback
        (its step and rollout hooks run every env step)."""
        total_timesteps = check_positive_int("total_timesteps", total_timesteps)
        if callback is not None:
            callback.init_callback(self.model)
            callback.on_training_start(locals(), globals())
        env = self.env
        if self._obs is None:
            env.seed(self.seed)
            self._obs = env.reset()
            self._start_attempts(np.arange(self.n_envs))
        trajectory: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        while self.model.num_timesteps < total_timesteps:
            if callback is not None:
                callback.on_rollout_start()
            actions = self._control(self._obs, self._targets).astype(np.float32)
            obs, rewards, dones, infos = env.step(actions)
            # The teacher (never the belief) may see the true rewards of the step.
            trajectory.append((self._obs.copy(), actions, rewards.copy()))
            self.model.num_timesteps += self.n_envs
            self._obs = obs
            done = np.flatnonzero(dones)
            if 0 < done.size < self.n_envs:
                raise ConfigError(
                    f"algo {self.registry_name!r} needs episodes of one fixed length in every "
                    "env (PointGoal's are); this env's episodes ended at different steps"
                )
            if done.size:
                self._finish_attempts(done, trajectory, infos)
                trajectory = []
                self._start_attempts(done)
            if callback is not None:
                callback.update_locals(locals())
                if not callback.on_step():
                    break
                callback.on_rollout_end()
        if callback is not None:
            callback.on_training_end()
        return self

    def _start_attempts(self, envs: np.ndarray) -> None:
        self._targets[envs] = self._sample_targets(envs.size)

    def _finish_attempts(
        self,
        envs: np.ndarray,
        trajectory: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
        infos: list[dict[str, Any]],
    ) -> None:
        """Attempts of ``envs`` ended at this step (their episodes are aligned: fixed length)."""
        obs = np.stack([step[0][envs] for step in trajectory], axis=1)  # (m, L, d)
        actions = np.stack([step[1][envs] for step in trajectory], axis=1)
        rewards = np.stack([step[2][envs] for step in trajectory], axis=1)
        final = np.stack([infos[i]["terminal_observation"] for i in envs])
        goals = np.stack([np.asarray(infos[i]["goal"], dtype=np.float64) for i in envs])
        self.attempts += envs.size
        self._finished = envs
        self._ask(final, obs, actions, rewards, goals)
        self.model.logger.record("feedback/labels_used", self.labels_used)
        self.model.logger.record("feedback/belief_max", float(self.belief.max()))

    def _ask(
        self,
        final: np.ndarray,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        goals: np.ndarray,
    ) -> None:
        raise NotImplementedError

    def _update(self, likelihood: np.ndarray) -> None:
        """Multiply the belief by each row of ``likelihood`` (n, H)."""
        self.log_belief += np.log(np.maximum(likelihood, 1e-300)).sum(axis=0)
        self.log_belief -= self.log_belief.max()

    # ----- outputs and checkpoints -----------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {
            "algo": self.registry_name,
            "belief": self.belief.tolist(),
            "goal_estimate": self.estimate,
            "labels_used": self.labels_used,
            "attempts": self.attempts,
            "unusable": self.unusable,
            "num_timesteps": self.num_timesteps,
        }

    def summary_metrics(self) -> dict[str, Any]:
        """Extra figures for the run's summary.json: the belief's largest probability at the
        end (``belief_max``) tells a confident answer from a guess."""
        return {
            "attempts": self.attempts,
            "unusable_answers": self.unusable,
            "belief_max": float(self.belief.max()),
        }

    _STATE: ClassVar[tuple[str, ...]] = (
        "log_belief",
        "labels_used",
        "attempts",
        "unusable",
        "_tiebreak",
    )

    def save(self, path: str | Path) -> None:
        """Write ``model.zip`` (the belief as JSON) and ``learner.pkl`` (belief, counters,
        random states, teacher) into the folder ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with atomic_path(path / "model.zip") as tmp:
            self.model.save(tmp)
        log, self.teacher.log = self.teacher.log, None
        try:
            state = {
                "class": type(self).__name__,
                "teacher": self.teacher,
                "rng": self.rng.bit_generator.state,
                "num_timesteps": self.num_timesteps,
                **{k: getattr(self, k) for k in self._STATE},
            }
            with atomic_path(path / "learner.pkl") as tmp:
                tmp.write_bytes(pickle.dumps(state))
        finally:
            self.teacher.log = log

    def load_state(self, path: str | Path) -> GoalLearner:
        """Continue from a folder written by :meth:`save`; attempts restart from a reset."""
        state = load_checkpoint(Path(path) / "learner.pkl")
        if state["class"] != type(self).__name__:
            raise ConfigError(f"{path} holds a {state['class']}, not a {type(self).__name__}")
        log, log_id = self.teacher.log, self.teacher._log_id
        self.teacher = state["teacher"]
        self.teacher.log, self.teacher._log_id = log, log_id
        self.rng.bit_generator.state = state["rng"]
        for key in self._STATE:
            setattr(self, key, state[key])
        self.model.num_timesteps = state["num_timesteps"]
        self.env.seed(None if self.seed is None else self.seed + self.num_timesteps)
        self._obs = self.env.reset()
        self._start_attempts(np.arange(self.n_envs))
        return self


#: How the lang-goal learner treats the grounding's misreadings.
MISREADS = ("phrasing", "answer")


@register_learner("lang-goal")
class LanguageGoalLearner(GoalLearner):
    """Goal identification from corrections in words (one sentence per attempt).

    After an attempt the ``language`` teacher compares where the point ended with the goal and
    says one sentence (CORGI-style gap, LLF-Bench kinds; Kim et al. 2023, Cheng et al. 2023).
    The sentence is encoded (``encoder``: ``builtin`` or ``minilm``) and read by the
    :class:`~feedbackgym.feedback.grounding.Grounding`, which gives the *calibrated* probability
    ``q(f)`` that the sentence said each frame ``f`` (go toward / away from the direction it
    names, by an amount; good; wrong; an axis was right): the grounding's own error rate on
    phrasings it was not fitted on, estimated by cross-validation, is in ``q``, and ``q`` is
    never zero.

    **Likelihood: a noisy channel with one unknown per phrasing.** The belief over the goal is
    Bayesian goal inference (Baker, Saxe & Tenenbaum 2009, "Action understanding as inverse
    planning") through a noisy channel (Shannon 1948): what the person meant is hidden; the
    learner hears the grounding's reading of it, whose error rates are a confusion model in
    the manner of Dawid & Skene (1979). A misreading is not a fresh coin at every answer: the
    teacher repeats phrasings, and a phrasing the grounding misreads is misread every time.
    With ``misreads="phrasing"`` (default) the meaning ``f_k`` of each phrasing ``k`` (its
    frame text: the sentence without its direction words) is one latent variable with prior
    ``q_k`` and the likelihood of goal ``h`` is

        ``P(answers | h) = prod_k sum_f q_k(f) prod_{i uses k} (floor + c(class_i(f), h, x_i))``

    where ``c`` is :meth:`Grounding.consistency` (the learner's model of the teacher: the gap
    from the attempt's end ``x_i`` to candidate ``h``), ``class_i(f)`` the class frame ``f``
    makes with answer ``i``'s direction word, and ``floor`` what the teacher model leaves out.
    So one phrasing, however often repeated, moves the belief by at most about
    ``max_f q_k(f) / min_f q_k(f)`` when its readings disagree, and a reading that no goal
    explains across the attempts it was said after (a flipped direction heard from both
    sides of the goal) loses to one that does. ``misreads="answer"`` treats every answer as
    independent evidence (``prod_i (floor + sum_c q_i(c) c(c, h, x_i))``,
    :meth:`Grounding.likelihood`), right only when misreadings are random.

    Unusable sentences (empty, off-topic) are counted in ``unusable`` and change nothing.
    With ``ask="uncertain"`` the learner asks until the posterior reaches ``confidence``.

    Deviations: CORGI and LLF-Bench learners condition a policy on the text; here the text
    updates an explicit belief over a known, finite set of hypotheses (the visible candidates),
    and ``c`` is a consistency score (every meaning the learner's teacher model allows counts
    the same), not the teacher's exact generative model (which the learner does not know).

    :param encoder: ``builtin`` (no download) or ``minilm`` (the ``language`` extra).
    :param tolerance: the gap the learner assumes the person calls "right".
    :param large: the gap beyond which the learner assumes the person says "a lot".
    :param wrong_direction: the assumed chance that a direction is reversed.
    :param floor: likelihood floor of a meaning inconsistent with a goal, > 0.
    :param misreads: ``phrasing`` (a phrasing's meaning is one unknown across its answers) or
        ``answer`` (each answer read independently).
    """

    default_teacher = "language"

    def __init__(
        self,
        env: VecEnv,
        teacher: Any,
        labels: int,
        encoder: str = "builtin",
        tolerance: float = 0.1,
        large: float = 1.0,
        wrong_direction: float = 0.05,
        floor: float = 0.05,
        misreads: str = "phrasing",
        **kwargs: Any,
    ) -> None:
        super().__init__(env, teacher, labels, **kwargs)
        self.tolerance = check_range("tolerance", tolerance, 0.0)
        self.large = check_range("large", large, self.tolerance)
        self.wrong_direction = check_range("wrong_direction", wrong_direction, 0.0, 0.5)
        self.floor = check_range("floor", floor, 0.0, low_open=True)
        self.misreads = check_choice("misreads", misreads, MISREADS)
        self.encoder = encoder
        from feedbackgym.feedback.grounding import FRAMES, shared_grounding

        self.grounding = shared_grounding(encoder, _axis_names(env))
        self.log_prior = self.log_belief.copy()
        #: Phrasings heard (frame text -> row), the log of each one's calibrated reading
        #: ``log q_k(f)`` and the summed log-likelihood of its answers under each frame and goal.
        self._phrasing_rows: dict[str, int] = {}
        self._phrasing_prior = np.zeros((0, len(FRAMES)))
        self._phrasing_evidence = np.zeros((0, len(FRAMES), self.n_targets))

    @classmethod
    def check_teacher(cls, teacher: Any, algo: str) -> None:
        if getattr(teacher, "kind", None) != "correction":
            from feedbackgym.feedback import FEEDBACK_MODELS

            fitting = [
                n for n in FEEDBACK_MODELS.names() if FEEDBACK_MODELS.get(n).kind == "correction"
            ]
            what = f"a {getattr(teacher, 'kind', None)} teacher"
            raise ConfigError(
                f"algo {algo!r} learns from corrections in words but was given {what}; valid "
                f"teachers: {', '.join(fitting)} (or budget around one)"
            )

    def _ask(self, final, obs, actions, rewards, goals) -> None:  # noqa: ANN001
        for i in range(final.shape[0]):
            if not self.wants_answer():
                break
            sentence = self.teacher.correct(final[i : i + 1, :2], goals[i : i + 1])[0]
            self.labels_used += 1
            self.hear(sentence, final[i, :2], final[i, 4:].reshape(-1, 2))

    def hear(self, sentence: Any, end: np.ndarray, candidates: np.ndarray) -> bool:
        """Update the belief with one answer about an attempt that ended at ``end`` (2,), the
        candidates at ``candidates`` (H, 2); False (and nothing changes) when unusable."""
        usable, frames, classes, keys = self.grounding.read([sentence])
        if not usable[0]:
            self.unusable += 1
            return False
        gaps = (np.asarray(end, dtype=np.float64) - candidates)[None]
        consistent = self.grounding.consistency(
            gaps, self.tolerance, self.large, self.wrong_direction
        )[0]  # (H, C)
        if self.misreads == "answer":
            probs = np.zeros(len(self.grounding.classes))
            np.add.at(probs, classes[0], frames[0])
            self._update((self.floor + consistent @ probs)[None])
            return True
        row = self._phrasing_rows.get(keys[0])
        if row is None:
            row = self._phrasing_rows[keys[0]] = len(self._phrasing_rows)
            with np.errstate(divide="ignore"):
                prior = np.log(frames[0])
            self._phrasing_prior = np.vstack([self._phrasing_prior, prior[None]])
            self._phrasing_evidence = np.concatenate(
                [self._phrasing_evidence, np.zeros((1, *self._phrasing_evidence.shape[1:]))]
            )
        # Under frame f the answer means class classes[0, f]: its consistency with each goal.
        self._phrasing_evidence[row] += np.log(self.floor + consistent[:, classes[0]].T)
        joint = self._phrasing_prior[:, :, None] + self._phrasing_evidence  # (K, F, H)
        top = joint.max(axis=1, keepdims=True)
        per_phrasing = top[:, 0] + np.log(np.exp(joint - top).sum(axis=1))  # (K, H)
        self.log_belief = self.log_prior + per_phrasing.sum(axis=0)
        self.log_belief -= self.log_belief.max()
        return True

    _STATE = (
        *GoalLearner._STATE,
        "_phrasing_rows",
        "_phrasing_prior",
        "_phrasing_evidence",
    )

    def summary_metrics(self) -> dict[str, Any]:
        return {
            **super().summary_metrics(),
            "corrections_used": self.labels_used,
            "phrasings_heard": len(self._phrasing_rows),
        }


@register_learner("pref-goal")
class PreferenceGoalLearner(GoalLearner):
    """Goal identification from preferences: one comparison of two attempts per interaction.

    The baseline for :class:`LanguageGoalLearner` with the same belief, controller and asking
    rule. Two finished attempts (whole episodes) are shown to a pairwise teacher (``oracle`` by
    default); under hypothesis ``h`` an attempt's return would be ``-sum_t ||p_t - c_h||`` over
    its positions, and the answer's likelihood is Bradley–Terry on the two returns at
    temperature ``beta`` (Christiano et al. 2017), mixed with ``mistake`` (a chance answer).
    An attempt waits for a partner when an odd number of attempts ended.

    :param beta: inverse temperature the learner assumes for the person.
    :param mistake: the assumed chance of a random answer.
    """

    uses_segments = False

    def __init__(
        self,
        env: VecEnv,
        teacher: Any,
        labels: int,
        beta: float = 1.0,
        mistake: float = 0.05,
        **kwargs: Any,
    ) -> None:
        super().__init__(env, teacher, labels, **kwargs)
        self.beta = check_range("beta", beta, 0.0, low_open=True)
        self.mistake = check_range("mistake", mistake, 0.0, 0.5)
        self._waiting: tuple[np.ndarray, ...] | None = None

    @classmethod
    def check_teacher(cls, teacher: Any, algo: str) -> None:
        from feedbackgym.agents.learners.preference import teacher_verb

        if teacher_verb(teacher, algo) != QUERY_VERBS["preference"]:
            raise ConfigError(
                f"algo {algo!r} compares two attempts; give it a pairwise teacher, not a "
                f"{teacher.kind} one"
            )

    def _start_attempts(self, envs: np.ndarray) -> None:
        """Attempts that will be compared go for different candidates (double Thompson
        sampling, as in Wu & Liu 2016): each partner is drawn from the belief without the
        other's candidate."""
        pending = self._waiting[3] if self._waiting is not None else None
        for env in envs:
            p = self.belief.copy()
            if pending is not None and self.n_targets > 1:
                p[pending] = 0.0
                p = p / p.sum() if p.sum() > 0 else np.full(self.n_targets, 1 / self.n_targets)
            self._targets[env] = self.rng.choice(self.n_targets, p=p)
            pending = None if pending is not None else self._targets[env]

    def _returns(self, obs: np.ndarray) -> np.ndarray:
        """Return of each attempt under each hypothesis, (m, H), from its positions."""
        positions = obs[:, :, None, :2]  # (m, L, 1, 2)
        candidates = obs[:, :1, 4:].reshape(obs.shape[0], 1, -1, 2)
        return -np.linalg.norm(positions - candidates, axis=-1).sum(axis=1)

    def _ask(self, final, obs, actions, rewards, goals) -> None:  # noqa: ANN001
        attempts = [
            (obs[i], actions[i], rewards[i], self._targets[env])
            for i, env in enumerate(self._finished)
        ]
        if self._waiting is not None:
            attempts.insert(0, self._waiting)
            self._waiting = None
        while len(attempts) >= 2 and self.wants_answer():
            a, b = attempts.pop(0), attempts.pop(0)
            seg_a = Segments(rewards=a[2][None], obs=a[0][None], actions=a[1][None])
            seg_b = Segments(rewards=b[2][None], obs=b[0][None], actions=b[1][None])
            label = float(self.teacher.prefer(seg_a, seg_b)[0])
            self.labels_used += 1
            if not np.isfinite(label):
                self.unusable += 1
                continue
            diff = self._returns(a[0][None])[0] - self._returns(b[0][None])[0]
            p_a = 1.0 / (1.0 + np.exp(-np.clip(self.beta * diff, -50, 50)))
            agree = label * p_a + (1.0 - label) * (1.0 - p_a)
            self._update(((1.0 - self.mistake) * agree + self.mistake * 0.5)[None])
        if attempts and self.wants_answer():
            self._waiting = attempts[-1]

    _STATE = (*GoalLearner._STATE, "_waiting")


def _axis_names(env: VecEnv) -> tuple[tuple[str, str], ...]:
    base = env.envs[0].unwrapped if hasattr(env, "envs") else None
    return tuple(getattr(base, "axis_names", (("left", "right"), ("down", "up"))))
