"""Shortest-path experts for the navigation grids (Foraging, Maze), acting from the grid alone.

The rule, the same for both tasks: the target is the food/goal cell (code 3) while one is on
the grid, else the nest/start cell (code 4). The expert takes the action that brings the agent
one BFS step closer to the target, with the fixed tie-break of
:func:`hrm_gym.core.grid.greedy_action`: the *first* of up, down, left, right that reduces the
distance. It reads nothing but the observation (``info`` is ignored), so it can label any state,
including the ones an imperfect learner visits (DAgger).

Walls (code 1) are the only obstacles; the enemy (code 5) of the Chase task is treated as an
empty cell, which makes :class:`ForagingExpert` the enemy-blind Chase expert too.

Cost: one BFS distance map per (static walls, target), cached, so a whole Foraging episode
costs two BFS (food, then nest) and every step is a few dictionary and list lookups.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from expert.base import Expert
from hrm_gym.core.grid import (
    AGENT,
    FOOD,
    NEST,
    NUM_ACTIONS,
    NUM_CELL_CODES,
    WALL,
    bfs_distances,
)

#: bytes.translate table: wall cells -> 1, every other code -> 0 (the static-walls cache key).
_WALLS_ONLY = bytes(1 if code == WALL else 0 for code in range(256))
#: Bit ``a`` set -> action ``a`` optimal; row ``m`` of this table is mask ``m`` as 4 bools.
_MASK_ROWS = np.array([[(m >> a) & 1 for a in range(NUM_ACTIONS)] for m in range(16)], dtype=bool)
#: How many distance maps one expert keeps (oldest evicted first): enough for DAgger labelling
#: states of many parallel envs (two maps per layout) without recomputing.
_CACHE_SIZE = 64


class GridTargetExpert(Expert):
    """BFS-to-target expert shared by Foraging and Maze (see the module docstring).

    Observations must be 2-D grids of cell codes (any integer dtype; ``uint8`` is fastest)
    with exactly one agent cell (code 2). Env kwargs given to the factory are accepted and
    ignored: the grid says everything this expert needs.
    """

    n_actions = NUM_ACTIONS

    def __init__(self, **env_kwargs: Any):
        # (shape, walls bytes, target index) -> flat distance list; insertion-ordered for eviction.
        self._distance_cache: dict[tuple[tuple[int, int], bytes, int], list[int]] = {}

    def reset(self) -> None:
        """Drop the cached distance maps (optional: the cache is keyed by walls and target)."""
        self._distance_cache.clear()

    # ---- public API -----------------------------------------------------------------------
    def act(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> int:
        """The first of up, down, left, right that brings the agent closer to the target."""
        mask = self.label_bits(obs)
        return (mask & -mask).bit_length() - 1  # index of the lowest set bit

    def optimal_actions(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> np.ndarray:
        """``bool (4,)``: every action that reduces the BFS distance to the target."""
        return _MASK_ROWS[self.label_bits(obs)].copy()

    def label(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> tuple[int, np.ndarray]:
        """``(act(obs), optimal_actions(obs))`` for the price of one lookup (dataset fast path)."""
        mask = self.label_bits(obs)
        return (mask & -mask).bit_length() - 1, _MASK_ROWS[mask].copy()

    def target(self, obs: np.ndarray) -> tuple[int, int]:
        """The cell the expert heads for: the food/goal if on the grid, else the nest/start."""
        grid = _as_grid(obs)
        return divmod(self._target_index(grid.tobytes()), grid.shape[1])

    def distances(self, obs: np.ndarray) -> np.ndarray:
        """BFS step counts from every cell to the current target (``-1``: wall or cut off)."""
        grid = _as_grid(obs)
        data = grid.tobytes()
        flat = self._distance_map(grid, data, self._target_index(data))
        return np.asarray(flat, dtype=np.int32).reshape(grid.shape)

    # ---- the hot path -------------------------------------------------------------------
    def label_bits(self, obs: np.ndarray) -> int:
        """The optimal actions as a 4-bit int (bit ``a`` set: action ``a`` is optimal).

        Raises ``ValueError`` when the observation is malformed, the agent already stands on
        the target, or the target cannot be reached.
        """
        grid = _as_grid(obs)
        data = grid.tobytes()
        agent = data.find(AGENT)
        if agent < 0 or data.count(AGENT) != 1:
            raise ValueError(f"observation must hold exactly one agent cell (code {AGENT}), found {data.count(AGENT)}")
        target = self._target_index(data)
        dist = self._distance_map(grid, data, target)
        here = dist[agent]
        if here <= 0:
            where = divmod(agent, grid.shape[1])
            if here == 0:
                raise ValueError(f"the agent at {where} already stands on the target")
            raise ValueError(f"the agent at {where} cannot reach the target {divmod(target, grid.shape[1])}")
        height, width = grid.shape
        row, col = divmod(agent, width)
        want = here - 1
        mask = 0
        if row > 0 and dist[agent - width] == want:
            mask |= 1  # up
        if row < height - 1 and dist[agent + width] == want:
            mask |= 2  # down
        if col > 0 and dist[agent - 1] == want:
            mask |= 4  # left
        if col < width - 1 and dist[agent + 1] == want:
            mask |= 8  # right
        return mask

    def _target_index(self, data: bytes) -> int:
        index = data.find(FOOD)
        if index >= 0:
            if data.count(FOOD) != 1:
                raise ValueError(
                    f"observation holds {data.count(FOOD)} food/goal cells (code {FOOD}); expected at most one"
                )
            return index
        index = data.find(NEST)
        if index < 0:
            raise ValueError(
                f"observation holds neither food/goal (code {FOOD}) nor nest/start (code {NEST}): "
                "no target (the episode is over)"
            )
        if data.count(NEST) != 1:
            raise ValueError(
                f"observation holds {data.count(NEST)} nest/start cells (code {NEST}); expected at most one"
            )
        return index

    def _distance_map(self, grid: np.ndarray, data: bytes, target: int) -> list[int]:
        key = (grid.shape, data.translate(_WALLS_ONLY), target)
        dist = self._distance_cache.get(key)
        if dist is None:
            dist = bfs_distances(grid != WALL, divmod(target, grid.shape[1])).ravel().tolist()
            if len(self._distance_cache) >= _CACHE_SIZE:
                del self._distance_cache[next(iter(self._distance_cache))]
            self._distance_cache[key] = dist
        return dist


def _as_grid(obs: Any) -> np.ndarray:
    """``obs`` as a C-contiguous 2-D ``uint8`` grid, or a ``ValueError`` saying what is wrong."""
    if type(obs) is np.ndarray and obs.dtype == np.uint8 and obs.ndim == 2:
        return obs if obs.flags.c_contiguous else np.ascontiguousarray(obs)
    grid = np.asarray(obs)
    if grid.ndim != 2:
        raise ValueError(f"observation must be a 2-D grid of cell codes, got shape {grid.shape}")
    if grid.dtype.kind == "f":
        if not np.all(grid == np.round(grid)):
            raise ValueError("observation holds non-integer values; expected cell codes")
    elif grid.dtype.kind not in "iub":
        raise ValueError(f"observation must hold integer cell codes, got dtype {grid.dtype}")
    if grid.size and (grid.min() < 0 or grid.max() >= NUM_CELL_CODES):
        raise ValueError(
            f"observation holds values outside the cell codes 0..{NUM_CELL_CODES - 1}: "
            f"min {grid.min()}, max {grid.max()}"
        )
    return np.ascontiguousarray(grid, dtype=np.uint8)


class ForagingExpert(GridTargetExpert):
    """``HRMForaging-v0`` expert: to the food by a shortest path, then back to the nest.

    Also the enemy-blind expert of ``HRMForagingChase-v0`` (the enemy counts as empty).
    """


class MazeExpert(GridTargetExpert):
    """``HRMMaze-v0`` / ``HRMMaze-Hard-v0`` expert: a shortest path from the start to the goal."""


__all__ = ["ForagingExpert", "GridTargetExpert", "MazeExpert"]
