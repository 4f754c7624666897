"""The 8 symmetries of a square grid (the dihedral group D4), with actions remapped to match.

A rotated or mirrored Foraging/Maze state is another valid state whose optimal action is the
original one rotated or mirrored the same way, so every expert label gives eight. Transform
``k`` (0-7) is ``k % 4`` quarter turns counter-clockwise (``np.rot90``) followed, for ``k >= 4``,
by a left-right mirror. The numpy core lives in :mod:`hrm_gym.core.symmetry` (the envs'
wrappers use it too); this module adds the torch, mask and batch helpers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hrm_gym.core.symmetry import (
    ACTION_PERMUTATIONS,
    NUM_SYMMETRIES,
    transform_actions,
    transform_grids,
)

__all__ = [
    "ACTION_PERMUTATIONS",
    "NUM_SYMMETRIES",
    "random_symmetries",
    "transform_action_masks",
    "transform_actions",
    "transform_grid_tensors",
    "transform_grids",
]


def transform_grid_tensors(grids: Any, k: int) -> Any:
    """:func:`transform_grids` for torch tensors (same transform ``k``, on the last two dims)."""
    import torch  # agents.augment stays importable without torch

    if not 0 <= k < NUM_SYMMETRIES:
        raise ValueError(f"symmetry index must be in [0, {NUM_SYMMETRIES - 1}], got {k}")
    out = torch.rot90(grids, k % 4, dims=(-2, -1))
    return torch.flip(out, dims=(-1,)) if k >= 4 else out


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
