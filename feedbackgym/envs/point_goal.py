"""PointGoal: a MuJoCo point mass, several candidate targets, one of them the hidden true goal."""

from __future__ import annotations

import copy
import math
import xml.etree.ElementTree as ET
from importlib import resources
from typing import Any, ClassVar

import mujoco
import numpy as np
from gymnasium import spaces, utils
from gymnasium.envs.mujoco import MujocoEnv

from feedbackgym.errors import ConfigError, check_positive_int, check_range

#: The MJCF shipped with the package; ``target`` is the template copied once per candidate.
MODEL_PATH = str(resources.files("feedbackgym.envs") / "assets" / "point_goal.xml")
#: Walls at +-ARENA; the point's centre stays within +-(ARENA - its radius) by joint limits.
ARENA = 1.0
#: The start position is uniform in [-START, START]^2 ...
START = 0.1
#: ... and the candidates uniform in [-TARGETS, TARGETS]^2, at least ``min_separation`` apart
#: from each other and from the start.
TARGETS = 0.8
#: Fraction of the candidates' square that their exclusion disks may cover. Random sequential
#: placement jams near 0.55; well below it a layout is found in a few tries.
MAX_COVERAGE = 0.35
#: Bound of the velocities in the observation space: twice the top speed (gear / damping = 1).
MAX_SPEED = 2.0
#: Gains of the scripted expert: u = KP * (goal - position) - KD * velocity, clipped to [-1, 1].
#: With force = 2u, damping 2 and mass 0.5, KD = 1 makes the unsaturated loop critically damped.
EXPERT_KP = 4.0
EXPERT_KD = 1.0


def max_targets(min_separation: float) -> int | None:
    """Most candidates that can be placed ``min_separation`` apart (None: no limit)."""
    if min_separation <= 0:
        return None
    disk = math.pi * min_separation**2 / 4  # exclusion disk of one point (start or candidate)
    room = MAX_COVERAGE * (2 * TARGETS + min_separation) ** 2
    return max(int(room / disk) - 1, 0)  # one disk belongs to the start


class PointGoalEnv(MujocoEnv, utils.EzPickle):
    """A point mass on a plane must reach the true goal, one of several identical-looking targets.

    A sphere slides on a 2 x 2 walled plane (MuJoCo; two slide joints with damping; the point
    stays inside the walls by joint limits, there are no contacts). The two actions in [-1, 1]
    are forces along x and y (top speed 1 unit/s, reached in about 0.25 s). At every reset the
    point starts uniformly in [-0.1, 0.1]^2 at rest and ``n_targets`` candidate targets are drawn
    uniformly in [-0.8, 0.8]^2, at least ``min_separation`` apart from each other and from the
    start. One candidate is the true goal; which one is hidden: every candidate is drawn alike
    (unless ``reveal_goal``) and the observation does not say.

    Observation (float32): point position (x, y), point velocity (vx, vy), then the candidates'
    positions (x0, y0, x1, y1, ...): ``4 + 2 * n_targets`` numbers, positions within [-1, 1] and
    velocities within [-2, 2]. The reward of a step is minus
    the Euclidean distance from the point to the true goal after the step. There is no
    termination (not even on success), so every episode lasts the registered
    ``max_episode_steps`` (100 for ``feedbackgym/PointGoal-v0``, 5 s of simulated time) and
    segments of a given length are comparable. An episode counts as a success when ``success``
    holds at its last step. In the top camera ``"top"`` of ``rgb_array`` renders, image right is
    +x and image up is +y, matching :attr:`axis_names`.

    The hidden truth in ``info`` (after reset and every step): ``goal`` (xy of the true goal),
    ``goal_index`` (its index among the candidates), ``distance`` (point to goal), ``success``
    (``distance < success_radius``) and, after a step, ``true_reward`` (equal to the reward) and
    ``is_success`` (= ``success``, the key SB3 reads for its success rate). :meth:`expert_action`
    is a scripted controller towards the true goal (an expert for language corrections).

    :param n_targets: number of candidate targets, >= 1.
    :param goal_index: index of the candidate that is the true goal, the same in every episode of
        this env (so a learner can learn from feedback which candidate is meant); None draws it
        uniformly at random at every reset, from the env's seeded ``np_random``.
    :param success_radius: the point is at the goal within this distance; in (0, min_separation
        / 2] so that the candidates' success disks (drawn as the target markers) never overlap.
    :param min_separation: least distance between two candidates and between a candidate and
        the start, >= 0; it bounds ``n_targets`` (see :func:`max_targets`; 10 for 0.4).
    :param frame_skip: MuJoCo steps of 0.01 s per env step.
    :param reveal_goal: draw the true goal in green instead of like the others (for debugging
        renders; the observation is unchanged).
    :param render_mode: None, ``"rgb_array"``, ``"depth_array"``, ``"rgbd_tuple"`` or
        ``"human"`` (needs a display). Headless rendering: set ``MUJOCO_GL=egl`` or ``osmesa``.
    :param width: width of rendered images in pixels.
    :param height: height of rendered images in pixels.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["human", "rgb_array", "depth_array", "rgbd_tuple"],
    }
    #: Words for the negative and positive direction of x and y, for language feedback.
    axis_names: ClassVar[tuple[tuple[str, str], ...]] = (("left", "right"), ("down", "up"))

    #: Marker colours (RGBA) of the candidates and, with ``reveal_goal``, of the true goal.
    TARGET_RGBA: ClassVar[tuple[float, ...]] = (0.95, 0.55, 0.1, 0.8)
    GOAL_RGBA: ClassVar[tuple[float, ...]] = (0.1, 0.75, 0.2, 0.9)

    def __init__(
        self,
        n_targets: int = 3,
        goal_index: int | None = 0,
        success_radius: float = 0.1,
        min_separation: float = 0.4,
        frame_skip: int = 5,
        reveal_goal: bool = False,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
    ) -> None:
        n_targets = check_positive_int("n_targets", n_targets)
        if goal_index is not None:
            if (
                isinstance(goal_index, bool)
                or not isinstance(goal_index, (int, np.integer))
                or not 0 <= goal_index < n_targets
            ):
                raise ConfigError(
                    f"goal_index must be None (random per episode) or an integer in "
                    f"[0, {n_targets - 1}] (n_targets={n_targets}), got {goal_index!r}"
                )
            goal_index = int(goal_index)
        min_separation = check_range("min_separation", min_separation, 0.0)
        limit = max_targets(min_separation)
        if limit is not None and n_targets > limit:
            raise ConfigError(
                f"n_targets={n_targets} candidates do not fit min_separation={min_separation:g} "
                f"apart in [-{TARGETS:g}, {TARGETS:g}]^2; use n_targets <= {limit} or a smaller "
                "min_separation"
            )
        if min_separation > 0:
            success_radius = check_range(
                "success_radius", success_radius, 0.0, min_separation / 2, low_open=True
            )
        else:
            success_radius = check_range("success_radius", success_radius, 0.0, low_open=True)
        frame_skip = check_positive_int("frame_skip", frame_skip)
        if not isinstance(reveal_goal, (bool, np.bool_)):
            raise ConfigError(f"reveal_goal must be True or False, got {reveal_goal!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            valid = ", ".join(repr(m) for m in self.metadata["render_modes"])
            raise ConfigError(f"render_mode must be None or one of {valid}, got {render_mode!r}")
        width = check_positive_int("width", width)
        height = check_positive_int("height", height)
        utils.EzPickle.__init__(
            self,
            n_targets=n_targets,
            goal_index=goal_index,
            success_radius=success_radius,
            min_separation=min_separation,
            frame_skip=frame_skip,
            reveal_goal=reveal_goal,
            render_mode=render_mode,
            width=width,
            height=height,
        )
        self.n_targets = n_targets
        self.goal_index = goal_index
        self.success_radius = success_radius
        self.min_separation = min_separation
        self.reveal_goal = bool(reveal_goal)

        n_obs = 4 + 2 * n_targets
        high = np.full(n_obs, ARENA, dtype=np.float32)
        high[2:4] = MAX_SPEED
        observation_space = spaces.Box(-high, high, dtype=np.float32)
        MujocoEnv.__init__(
            self,
            MODEL_PATH,
            frame_skip,
            observation_space=observation_space,
            render_mode=render_mode,
            width=width,
            height=height,
            camera_name="top",
        )
        self.metadata = {**self.metadata, "render_fps": int(np.round(1.0 / self.dt))}

        self._target_geoms = np.array([self.model.geom(f"target_{i}").id for i in range(n_targets)])
        self._target_mocap = np.array(
            [self.model.body_mocapid[self.model.body(f"target_{i}").id] for i in range(n_targets)]
        )
        self.model.geom_size[self._target_geoms, 0] = success_radius
        self._obs = np.zeros(n_obs, dtype=np.float32)
        #: Candidate positions, shape ``(n_targets, 2)``; the true goal's index and position.
        self.candidates = np.zeros((n_targets, 2))
        self.true_goal_index = 0 if goal_index is None else goal_index
        self.goal = self.candidates[self.true_goal_index].copy()

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        """Compile the shipped MJCF with its target template copied ``n_targets`` times."""
        root = ET.parse(self.fullpath).getroot()
        worldbody = root.find("worldbody")
        template = worldbody.find("body[@name='target']") if worldbody is not None else None
        if worldbody is None or template is None:
            raise RuntimeError(f"{self.fullpath} lacks a worldbody with a body named 'target'")
        worldbody.remove(template)
        for i in range(self.n_targets):
            body = copy.deepcopy(template)
            body.set("name", f"target_{i}")
            for geom in body.iter("geom"):
                geom.set("name", f"target_{i}")
            worldbody.append(body)
        model = mujoco.MjModel.from_xml_string(ET.tostring(root, encoding="unicode"))
        model.vis.global_.offwidth = self.width
        model.vis.global_.offheight = self.height
        return model, mujoco.MjData(model)

    def _draw_layout(self) -> tuple[np.ndarray, np.ndarray]:
        """Start position ``(2,)`` and candidate positions ``(n_targets, 2)`` from ``np_random``."""
        rng = self.np_random
        min_d2 = self.min_separation**2
        # max_targets keeps the coverage low enough that this almost never restarts.
        for _ in range(1000):
            placed = [rng.uniform(-START, START, size=2)]
            for _ in range(self.n_targets):
                proposals = rng.uniform(-TARGETS, TARGETS, size=(32, 2))
                gaps = proposals[:, None, :] - np.asarray(placed)[None, :, :]
                free = np.flatnonzero((gaps**2).sum(axis=2).min(axis=1) >= min_d2)
                if free.size == 0:
                    break
                placed.append(proposals[free[0]])
            else:
                return placed[0], np.asarray(placed[1:])
        raise RuntimeError(  # pragma: no cover - ruled out by max_targets
            f"could not place {self.n_targets} candidates {self.min_separation:g} apart"
        )

    def reset_model(self) -> np.ndarray:
        start, self.candidates = self._draw_layout()
        if self.goal_index is None:
            self.true_goal_index = int(self.np_random.integers(self.n_targets))
        self.goal = self.candidates[self.true_goal_index].copy()
        self.data.mocap_pos[self._target_mocap, :2] = self.candidates
        if self.reveal_goal:
            self.model.geom_rgba[self._target_geoms] = self.TARGET_RGBA
            self.model.geom_rgba[self._target_geoms[self.true_goal_index]] = self.GOAL_RGBA
        self._obs[4:] = self.candidates.ravel()
        self.set_state(start, np.zeros(2))
        return self._get_obs()

    def _get_obs(self) -> np.ndarray:
        self._obs[0:2] = self.data.qpos
        self._obs[2:4] = self.data.qvel
        return self._obs.copy()

    def _distance(self) -> float:
        position = self.data.qpos
        return math.hypot(position[0] - self.goal[0], position[1] - self.goal[1])

    def _truth(self, distance: float) -> dict[str, Any]:
        return {
            "goal": self.goal.copy(),
            "goal_index": self.true_goal_index,
            "distance": distance,
            "success": distance < self.success_radius,
        }

    def _get_reset_info(self) -> dict[str, Any]:
        return self._truth(self._distance())

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        ctrl = np.asarray(action, dtype=np.float64)
        if ctrl.shape != (2,):
            raise ConfigError(f"action must be 2 forces (x, y) in [-1, 1], got shape {ctrl.shape}")
        # MuJoCo clamps the controls to ctrlrange [-1, 1].
        self.data.ctrl[:] = ctrl
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        distance = self._distance()
        reward = -distance
        info = self._truth(distance)
        info["true_reward"] = reward
        info["is_success"] = info["success"]
        if self.render_mode == "human":
            self.render()
        # Truncation at the time limit comes from the TimeLimit wrapper that gymnasium.make adds.
        return self._get_obs(), reward, False, False, info

    def expert_action(self, obs: np.ndarray | None = None) -> np.ndarray:
        """A scripted controller's action towards the true goal (it reads the hidden goal).

        Position and velocity come from ``obs`` when given (the signature of an ``expert(obs)``
        callable), else from the simulator. It reaches the goal in about 2 s from anywhere.
        """
        if obs is None:
            position, velocity = self.data.qpos, self.data.qvel
        else:
            obs = np.asarray(obs, dtype=np.float64)
            position, velocity = obs[0:2], obs[2:4]
        action = EXPERT_KP * (self.goal - position) - EXPERT_KD * velocity
        return np.clip(action, -1.0, 1.0).astype(np.float32)
