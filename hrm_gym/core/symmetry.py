"""The 8 symmetries of a square grid (the dihedral group D4), with the grid moves remapped to match.

A rotated or mirrored Foraging/Maze state is another valid state whose optimal move is the
original one rotated or mirrored the same way. Transform ``k`` (0-7) is ``k % 4`` quarter turns
counter-clockwise (``np.rot90``) followed, for ``k >= 4``, by a left-right mirror. The env-side
copy (numpy only) that ``agents.augment`` and ``hrm_gym.wrappers.RandomDihedralView`` share.
"""

from __future__ import annotations

import numpy as np

from hrm_gym.core.grid import ACTION_DELTAS, NUM_ACTIONS

NUM_SYMMETRIES = 8


def transform_grids(grids: np.ndarray, k: int) -> np.ndarray:
    """Apply symmetry ``k`` to the last two axes of ``grids`` (``(..., H, W)``, H == W)."""
    if not 0 <= k < NUM_SYMMETRIES:
        raise ValueError(f"symmetry index must be in [0, {NUM_SYMMETRIES - 1}], got {k}")
    if grids.shape[-1] != grids.shape[-2]:
        raise ValueError(f"symmetries need square grids, got shape {grids.shape[-2:]}")
    out = np.rot90(grids, k % 4, axes=(-2, -1))
    if k >= 4:
        out = np.flip(out, axis=-1)
    return np.ascontiguousarray(out)


def _action_permutation(k: int) -> np.ndarray:
    """``perm[a]`` = the action that, in the transformed grid, moves where ``a`` moved before."""
    perm = np.empty(NUM_ACTIONS, dtype=np.int64)
    for action, (dr, dc) in enumerate(ACTION_DELTAS):
        marker = np.zeros((3, 3), dtype=np.int8)
        marker[1 + dr, 1 + dc] = 1
        r, c = np.argwhere(transform_grids(marker, k))[0]
        perm[action] = ACTION_DELTAS.index((int(r) - 1, int(c) - 1))
    return perm


#: ``ACTION_PERMUTATIONS[k][a]``: action ``a`` after symmetry ``k``.
ACTION_PERMUTATIONS = np.stack([_action_permutation(k) for k in range(NUM_SYMMETRIES)])
#: ``INVERSE_ACTION_PERMUTATIONS[k][b]``: the original action that symmetry ``k`` turns into ``b``.
INVERSE_ACTION_PERMUTATIONS = np.argsort(ACTION_PERMUTATIONS, axis=1)


def transform_actions(actions: np.ndarray, k: int) -> np.ndarray:
    """Remap integer actions under symmetry ``k``."""
    return ACTION_PERMUTATIONS[k][actions]
