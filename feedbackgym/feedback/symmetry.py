"""Known symmetries of a task's reward, to multiply a reward model's labelled data.

A person's preference between two segments does not change when both are seen rotated or
mirrored on a task whose reward ignores direction (e.g. MPE's cooperative navigation: it
scores distances only). Fitting the reward model to every image of every labelled segment
under such a group of maps builds that invariance in instead of learning it from labels; data
augmentation with the task's symmetries, as in RAD (Laskin et al. 2020) for pixels.
"""

from __future__ import annotations

import numpy as np

from feedbackgym.errors import ConfigError

# MPE's moves: 0 no-op, 1 -x, 2 +x, 3 -y, 4 +y (mpe2's discrete action; its continuous action
# has one component per move in the same order).
_MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]])


def _square_group() -> list[np.ndarray]:
    """The 8 maps of the dihedral group of the square: quarter turns, each also mirrored."""
    maps = []
    for turn in range(4):
        c, s = ((1, 0), (0, 1), (-1, 0), (0, -1))[turn]
        rotation = np.array([[c, -s], [s, c]])
        maps += [rotation, rotation @ np.array([[-1, 0], [0, 1]])]
    return maps


def _move_permutation(matrix: np.ndarray) -> np.ndarray:
    """perm[k] = the move whose direction is ``matrix`` times move k's."""
    images = _MOVES @ matrix.T
    return np.array([int(np.flatnonzero((_MOVES == image).all(axis=1))[0]) for image in images])


def planar_images(
    obs: np.ndarray, actions: np.ndarray | None
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """The 8 images of (obs, actions) under the square's rotations and mirror images.

    Every observation's values are read as consecutive (x, y) vectors (MPE's velocities,
    positions and relative positions; all of simple_spread's), each mapped alike; actions
    are MPE's moves: an integer move (0-4) is replaced by the move in the mapped direction, a
    continuous action's 5 components are permuted the same way. The identity comes first.
    """
    width = obs.shape[-1]
    if obs.dtype.kind in "iub":
        raise ConfigError("symmetry 'planar' needs observations of (x, y) vectors, not states")
    if width % 2:
        raise ConfigError(
            f"symmetry 'planar' reads observations as (x, y) vectors, got {width} values a step"
        )
    discrete = actions is not None and actions.dtype.kind in "iub"
    if actions is not None:
        if discrete and actions.size and (actions.min() < 0 or actions.max() >= len(_MOVES)):
            raise ConfigError("symmetry 'planar' expects MPE's 5 moves (actions 0-4)")
        if not discrete and actions.shape[-1] != len(_MOVES):
            raise ConfigError(
                "symmetry 'planar' expects MPE's 5 moves, got actions of "
                f"{actions.shape[-1]} values"
            )
    vectors = obs.reshape(obs.shape[:-1] + (width // 2, 2))
    out = []
    for matrix in _square_group():
        image = (vectors @ matrix.T.astype(obs.dtype)).reshape(obs.shape)
        moved = None
        if actions is not None:
            perm = _move_permutation(matrix)
            if discrete:
                moved = perm[actions].astype(actions.dtype)
            else:
                moved = np.empty_like(actions)
                moved[..., perm] = actions
        out.append((image, moved))
    return out


#: The symmetry groups a reward model can be told about: name -> the images of (obs, actions).
SYMMETRIES = {"planar": planar_images}
