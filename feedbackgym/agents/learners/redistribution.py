"""Learners from delayed rewards: a learned per-step reward that redistributes each return.

When the reward arrives only at an episode's end (or late), the steps that earned it get no
credit: with a discount, a return at step 200 is all but invisible from step 1. Return
decomposition learns a per-step reward ``r(s, a)`` whose sum over an episode is its return,
and trains the agent on it instead. RUDDER (Arjona-Medina et al. 2019, "RUDDER: Return
Decomposition for Delayed Rewards") decomposes with an LSTM's contributions; IRCR (Gangwani,
Zhou & Peng 2020, "Learning Guidance Rewards with Trajectory-space Smoothing") gives each step
the return of the episodes it was in, i.e. the uniform decomposition; Randomized Return
Decomposition (Ren, Guo, Zhou & Peng 2022, "Learning Long-Term Reward Redistribution via
Randomized Return Decomposition") fits ``r`` so that a random subsequence's mean step reward,
scaled to the episode's length, predicts the return, which is what is done here.
"""

from __future__ import annotations

import pickle
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from feedbackgym.agents.learners.checkpoints import load_checkpoint
from feedbackgym.agents.learners.preference import (
    PreferenceLearner,
    PrefPPO,
    PrefSAC,
)
from feedbackgym.agents.learners.registry import register_learner
from feedbackgym.errors import ConfigError, check_positive_int
from feedbackgym.feedback.reward_model import RewardModel, cpu_threads, one_hot_sizes
from feedbackgym.io import atomic_path


class Episode:
    """One finished episode as the learner saw it: observations (those the actions were taken
    in), actions and the (delayed) rewards the env gave."""

    __slots__ = ("obs", "actions", "rewards")

    def __init__(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray) -> None:
        self.obs, self.actions, self.rewards = obs, actions, rewards

    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def ret(self) -> float:
        """The episode's return: the sum of the rewards it delivered (delayed or not)."""
        return float(np.sum(self.rewards, dtype=np.float64))


class EpisodeRecorder(VecEnvWrapper):
    """Passes a VecEnv through, keeping the last ``max_episodes`` finished episodes.

    It records what the agent is given (observations, its actions, the env's reward), never
    ``info["true_reward"]``.
    """

    def __init__(self, venv: VecEnv, max_episodes: int) -> None:
        super().__init__(venv)
        self.episodes: deque[Episode] = deque(
            maxlen=check_positive_int("max_episodes", max_episodes)
        )
        self.finished = 0
        self._steps: list[list[tuple[Any, Any, float]]] = [[] for _ in range(venv.num_envs)]
        self._obs: np.ndarray | None = None
        self._actions: np.ndarray | None = None

    def reset(self) -> Any:
        self._obs = self.venv.reset()
        self._steps = [[] for _ in range(self.num_envs)]
        return self._obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)
        self.venv.step_async(actions)

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        assert self._obs is not None and self._actions is not None
        for i in range(self.num_envs):
            self._steps[i].append((self._obs[i], self._actions[i], float(rewards[i])))
            if dones[i]:
                steps = self._steps[i]
                self.episodes.append(
                    Episode(
                        np.stack([s[0] for s in steps]),
                        np.stack([s[1] for s in steps]),
                        np.array([s[2] for s in steps]),
                    )
                )
                self.finished += 1
                self._steps[i] = []
        self._obs = obs
        return obs, rewards, dones, infos


class ReturnDecomposition(RewardModel):
    """A :class:`~feedbackgym.feedback.reward_model.RewardModel` (the same ``EnsembleMLP``
    members, features and persistence) fitted by randomized return decomposition.

    Each gradient step draws ``batch_episodes`` episodes (each member its own), and from each
    a random subset ``I`` of ``subset_size`` of its ``T`` steps (without replacement; all of
    them when ``T`` is shorter); the loss is ``(mean_{t in I} r(s_t, a_t) - R / T)^2``,
    RRD's ``(R - T/|I| sum_{t in I} r)^2`` divided by ``T^2`` (the same minimiser for
    episodes of one length; per-step units keep the learning rate independent of the
    horizon). :meth:`reward` is then the redistributed reward of a step, and
    :meth:`redistribute` shifts an episode's rewards so they sum to its return exactly.
    """

    def fit_episodes(
        self,
        episodes: list[Episode],
        steps: int,
        subset_size: int = 64,
        batch_episodes: int = 32,
    ) -> dict[str, float]:
        """``steps`` gradient steps on ``episodes``; returns the last loss and ``return_error``
        (mean ``|sum_t r(s_t, a_t) - R|`` over the episodes, relative to mean ``|R|``)."""
        import torch

        steps = check_positive_int("steps", steps)
        if not episodes:
            raise ConfigError("no finished episode to fit the return decomposition to")
        lengths = np.array([len(e) for e in episodes])
        feats = [self.features(e.obs, e.actions) for e in episodes]
        flat = np.concatenate(feats)
        self.set_feature_scale(flat, self.one_hot_columns(episodes[0].obs, episodes[0].actions))
        if self.network is None:
            self.build(flat.shape[1])
        self.network.train()
        self._numpy_weights = None
        n, tmax, width = len(episodes), int(lengths.max()), flat.shape[1]
        padded = np.zeros((n, tmax, width), dtype=np.float32)
        for i, f in enumerate(feats):
            padded[i, : len(f)] = f
        returns = np.array([e.ret for e in episodes])
        k = min(int(subset_size), tmax)
        m, b = self.members, int(batch_episodes)
        with cpu_threads(self.device, m * b * k, self.threads):
            x = self.scaled(padded)
            target = torch.as_tensor(returns / lengths, dtype=torch.float32, device=self.device)
            length = torch.as_tensor(lengths, device=self.device)
            rng = self._order_rng
            for _ in range(steps):
                idx = rng.integers(n, size=(m, b))
                keys = rng.random((m, b, tmax))
                keys[np.arange(tmax) >= lengths[idx][..., None]] = 2.0  # padding comes last
                pos = np.argpartition(keys, k - 1, axis=-1)[..., :k] if k < tmax else None
                if pos is None:
                    pos = np.broadcast_to(np.arange(tmax), (m, b, tmax))
                idx_t = torch.as_tensor(idx, device=self.device)
                pos_t = torch.as_tensor(np.ascontiguousarray(pos), device=self.device)
                rows = x[idx_t[..., None], pos_t]  # (m, b, k, f)
                valid = (pos_t < length[idx_t][..., None]).float()
                r = self.network(rows.reshape(m, -1, width)).reshape(valid.shape)
                mean = (r * valid).sum(-1) / valid.sum(-1)
                loss = ((mean - target[idx_t]) ** 2).mean(dim=1).sum()
                self.optimiser.zero_grad()
                loss.backward()
                self.optimiser.step()
            self.losses.append(float(loss.item()) / m)
            self.network.eval()
            with torch.no_grad():
                sums = self.network(x.reshape(1, -1, width).expand(m, -1, -1)).mean(dim=0)
                mask = torch.arange(tmax, device=self.device)[None] < length[:, None]
                sums = (sums.reshape(n, tmax) * mask).sum(dim=1).cpu().numpy()
        error = float(np.mean(np.abs(sums - returns)) / (np.mean(np.abs(returns)) + 1e-8))
        return {"loss": self.losses[-1], "return_error": error}

    def redistribute(self, episode: Episode) -> np.ndarray:
        """The episode's per-step rewards, ``r(s_t, a_t)`` shifted by one constant so that they
        sum to its return exactly (float64)."""
        r = self.reward(episode.obs, episode.actions, normalise=False).astype(np.float64)
        return r + (episode.ret - r.sum()) / len(r)


class ReturnDecompositionLearner(PreferenceLearner):
    """An SB3 agent trained on a per-step reward redistributed from delayed returns (RRD).

    Every finished training episode (observations, actions, and the rewards the env gave:
    the return at the end, or late rewards that sum to it) is kept (the last
    ``max_episodes``). Every ``update_every`` timesteps (by default every PPO rollout; every
    1000 steps for SAC) :class:`ReturnDecomposition` takes ``fit_steps`` gradient steps
    (``initial_fit_steps`` the first time) on those episodes, and the agent goes on with its
    reward ``r(s, a)`` in place of the env's. The learner reads observations, actions and the
    delayed reward, never ``info["true_reward"]``. It is a :class:`PreferenceLearner` without
    a teacher: the same reward-replacing VecEnv, rounds and checkpoints, with the feedback
    round replaced by the decomposition's fit.

    Deviations from RRD (Ren et al. 2022): the per-step loss above (divided by ``T^2``);
    rewards are not relabelled within a PPO rollout (as in pref-PPO, a rollout is scored by
    the reward of the round before it; SAC's buffer is relabelled after each round, as
    PEBBLE's); the first rollout, before any episode ends, has reward 0; no variance
    correction term. See RUDDER (Arjona-Medina et al. 2019) and IRCR (Gangwani et al. 2020)
    for the other decompositions in the module's docstring.

    :param env: an SB3 VecEnv whose reward is delayed (e.g. ``reward_delay: episode-end``).
    :param subset_size: steps per random subsequence (RRD's ``K``, 64 in the paper).
    :param batch_episodes: episodes per gradient step.
    :param fit_steps: gradient steps per round.
    :param initial_fit_steps: gradient steps of the first round.
    :param max_episodes: finished episodes kept to fit on (the most recent).
    :param reward_model: keyword arguments of :class:`ReturnDecomposition` (a ``RewardModel``:
        members, hidden, layers, lr, ...; by default one member, lr 1e-3).
    :param update_every: timesteps between rounds (None: the algorithm's default).
    The other parameters are :class:`PreferenceLearner`'s (``algo_kwargs``, ``device``,
    ``seed``, ``tensorboard_log``, ``verbose``).
    """

    uses_feedback = False
    uses_segments = False
    multiagent_ok = False

    def __init__(
        self,
        env: VecEnv,
        subset_size: int = 64,
        batch_episodes: int = 32,
        fit_steps: int = 200,
        initial_fit_steps: int = 1000,
        max_episodes: int = 400,
        reward_model: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.subset_size = check_positive_int("subset_size", subset_size)
        self.batch_episodes = check_positive_int("batch_episodes", batch_episodes)
        self.fit_steps = check_positive_int("fit_steps", fit_steps)
        self.initial_fit_steps = check_positive_int("initial_fit_steps", initial_fit_steps)
        self.recorder = EpisodeRecorder(env, max_episodes)
        super().__init__(self.recorder, **kwargs)
        sizes = one_hot_sizes(env.observation_space, env.action_space)  # discrete: one-hot widths
        options = {"members": 1, "lr": 1e-3, "seed": self.seed, **sizes, **(reward_model or {})}
        try:
            self.reward_model = ReturnDecomposition(**options, device=self.device)
        except TypeError as err:
            raise ConfigError(f"reward_model: {err}") from None
        self.env.reward_fn = self._reward  # the base class passes the env's reward through
        self.next_fit = 0
        self.fitted_upto = 0  # episodes finished when the last round ran
        self.rounds_metrics: dict[str, float] = {}

    # ----- the rounds ---------------------------------------------------------------------
    def round_due(self, timesteps: int) -> bool:
        return self.recorder.finished > self.fitted_upto and timesteps >= self.next_fit

    def feedback_round(self) -> dict[str, float]:
        """Fit the decomposition to the kept episodes; returns its metrics."""
        steps = self.fit_steps if self.reward_model.fitted else self.initial_fit_steps
        metrics = self.reward_model.fit_episodes(
            list(self.recorder.episodes), steps, self.subset_size, self.batch_episodes
        )
        self.round += 1
        self.fitted_upto = self.recorder.finished
        self.next_fit = self.num_timesteps + self.update_every
        self._after_round()
        metrics["episodes"] = float(self.recorder.finished)
        self.rounds_metrics = metrics
        return metrics

    def summary_metrics(self) -> dict[str, Any]:
        """Extra figures for the run's summary.json."""
        return {
            "decomposition_rounds": self.round,
            "decomposition_loss": self.rounds_metrics.get("loss", float("nan")),
            "return_error": self.rounds_metrics.get("return_error", float("nan")),
            "episodes_seen": self.recorder.finished,
        }

    # ----- checkpoints --------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """:meth:`PreferenceLearner.save`, plus ``redistribution.pkl`` (the kept episodes and
        the round counters)."""
        super().save(path)
        state = {
            "episodes": [(e.obs, e.actions, e.rewards) for e in self.recorder.episodes],
            "finished": self.recorder.finished,
            "next_fit": self.next_fit,
            "fitted_upto": self.fitted_upto,
            "rounds_metrics": self.rounds_metrics,
        }
        with atomic_path(Path(path) / "redistribution.pkl") as t:
            t.write_bytes(pickle.dumps(state))

    def load_state(self, path: str | Path) -> ReturnDecompositionLearner:
        """Continue from a folder written by :meth:`save` (same constructor arguments)."""
        super().load_state(path)
        path = Path(path)
        self.reward_model = ReturnDecomposition.load(path / "reward_model.pt", device=self.device)
        state = load_checkpoint(path / "redistribution.pkl")
        self.recorder.episodes.clear()
        self.recorder.episodes.extend(Episode(*e) for e in state["episodes"])
        self.recorder.finished = state["finished"]
        self.next_fit, self.fitted_upto = state["next_fit"], state["fitted_upto"]
        self.rounds_metrics = dict(state["rounds_metrics"])
        return self


@register_learner("rrd-ppo")
class RRDPPO(ReturnDecompositionLearner, PrefPPO):
    """PPO on a reward redistributed from delayed returns (Randomized Return Decomposition).

    See :class:`ReturnDecompositionLearner`; a round after every rollout; ``algo_kwargs``
    are PPO's.
    """


@register_learner("rrd-sac")
class RRDSAC(ReturnDecompositionLearner, PrefSAC):
    """SAC on a reward redistributed from delayed returns (RRD with SAC, as in Ren et al.).

    See :class:`ReturnDecompositionLearner`; a round every ``update_every`` (1000) steps,
    after which the replay buffer is relabelled; ``algo_kwargs`` are SAC's.
    """
