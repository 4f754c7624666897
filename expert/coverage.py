"""Expert labels for the agent at *any* reachable cell of a layout, not only along the expert's path.

A trajectory dataset holds the states the expert visits; a cloned policy that makes one wrong
move leaves that distribution and can loop there for ever (the states it then sees were never
labelled). DAgger labels the states the policy visits, a few hundred episodes at a time; this
labels every kind of state at once: for each layout of a trajectory dataset, the agent is put
on cells drawn uniformly from those that can reach the current target, in each phase of the
task the dataset shows (Foraging: food still out, then food collected; Maze: one phase), and
the grid expert labels each state from the observation alone, exactly as it labels its own.

Every state made here is a state of the MDP: the layout is an episode's first observation
(the agent on the nest/start), the agent stands on a reachable cell other than the current
target that it can walk to in that phase (out: without collecting the food; back: without
entering the nest), and in the return phase the food cell is empty, as the env leaves it.
"""

from __future__ import annotations

import numpy as np

from expert.grid import GridTargetExpert
from hrm_gym.core.grid import AGENT, EMPTY, FOOD, NEST, WALL, bfs_distances


def coverage_states(
    layouts: np.ndarray,
    expert: GridTargetExpert,
    per_layout: int,
    rng: np.random.Generator,
    return_phase: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(states, actions, masks)``: ``per_layout`` labelled states per layout and phase.

    ``layouts``: ``(N, H, W)`` first observations of episodes (exactly one agent cell, on the
    nest/start, and one food/goal cell). ``return_phase``: also label the phase after the food is
    collected (the target is then the nest). Cells are drawn without replacement; a layout with
    fewer reachable cells gives fewer states.
    """
    if not isinstance(expert, GridTargetExpert):
        raise ValueError(f"coverage states need a grid BFS expert (Foraging, Maze), got {type(expert).__name__}")
    if per_layout < 1:
        raise ValueError(f"per_layout must be >= 1, got {per_layout}")
    layouts = np.asarray(layouts)
    if layouts.ndim != 3:
        raise ValueError(f"layouts must be (N, H, W) grids, got shape {layouts.shape}")
    states, actions, masks = [], [], []
    for index, first in enumerate(layouts):
        agent = np.argwhere(first == AGENT)
        food = np.argwhere(first == FOOD)
        if len(agent) != 1 or len(food) != 1:
            raise ValueError(
                f"layout {index} must hold one agent (on the nest/start) and one food/goal cell, "
                f"found {len(agent)} agent and {len(food)} food/goal cells"
            )
        base = first.astype(np.uint8, copy=True)
        base[tuple(agent[0])] = NEST
        nest, goal = tuple(agent[0]), tuple(food[0])
        # Out for the food, the agent stands where it can walk from the nest without stepping
        # on the food (which would collect it); on the way back, where it can walk from the
        # food without stepping on the nest (which would end the episode).
        outward = base != WALL
        outward[goal] = False
        phases = [(base, goal, bfs_distances(outward, nest) >= 0)]
        if return_phase:
            returning = base.copy()
            returning[goal] = EMPTY
            homeward = returning != WALL
            homeward[nest] = False
            phases.append((returning, nest, bfs_distances(homeward, goal) >= 0))
        for grid, target, allowed in phases:
            distances = bfs_distances(grid != WALL, target)
            cells = np.flatnonzero((distances > 0) & allowed)  # reachable, not the target itself
            for cell in rng.choice(cells, size=min(per_layout, len(cells)), replace=False):
                obs = grid.copy()
                obs.flat[cell] = AGENT
                action, mask = expert.label(obs)
                states.append(obs)
                actions.append(action)
                masks.append(mask)
    return np.stack(states), np.asarray(actions, dtype=np.int64), np.stack(masks).astype(bool)
