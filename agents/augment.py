"""The 8 symmetries of a square grid (the dihedral group D4), with actions remapped to match.

A rotated or mirrored Foraging/Maze state is another valid state whose optimal action is the
original one rotated or mirrored the same way, so every expert label gives eight. Transform
``k`` (0-7) is ``k % 4`` quarter turns counter-clockwise (``np.rot90``) followed, for ``k >= 4``,
by a left-right mirror.
"""

from __future__ import annotations

from typing import Any

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


def transform_grid_tensors(grids: Any, k: int) -> Any:
    """:func:`transform_grids` for torch tensors (same transform ``k``, on the last two dims)."""
    import torch  # agents.augment stays importable without torch

    if not 0 <= k < NUM_SYMMETRIES:
        raise ValueError(f"symmetry index must be in [0, {NUM_SYMMETRIES - 1}], got {k}")
    out = torch.rot90(grids, k % 4, dims=(-2, -1))
    return torch.flip(out, dims=(-1,)) if k >= 4 else out


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


def transform_actions(actions: np.ndarray, k: int) -> np.ndarray:
    """Remap integer actions under symmetry ``k``."""
    return ACTION_PERMUTATIONS[k][actions]


def transform_action_masks(masks: np.ndarray, k: int) -> np.ndarray:
    """Remap ``(..., 4)`` boolean optimal-action masks under symmetry ``k``."""
    out = np.zeros_like(masks)
    out[..., ACTION_PERMUTATIONS[k]] = masks
    return out


def random_symmetries(
    rng: np.random.Generator, states: np.ndarray, actions: np.ndarray, masks: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Each sample of a batch under its own random symmetry (grids, actions and masks alike)."""
    ks = rng.integers(NUM_SYMMETRIES, size=len(states))
    states_out = np.empty_like(states)
    actions_out = np.empty_like(actions)
    masks_out = None if masks is None else np.empty_like(masks)
    for k in range(NUM_SYMMETRIES):
        idx = np.flatnonzero(ks == k)
        if idx.size == 0:
            continue
        states_out[idx] = transform_grids(states[idx], k)
        actions_out[idx] = transform_actions(actions[idx], k)
        if masks is not None:
            masks_out[idx] = transform_action_masks(masks[idx], k)
    return states_out, actions_out, masks_out
