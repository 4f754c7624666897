"""Expert labels for the agent at *any* reachable cell of a layout, not only along the expert's path.

A trajectory dataset holds the states the expert visits; a cloned policy that makes one wrong
move leaves that distribution and can loop there for ever (the states it then sees were never
labelled). DAgger labels the states the policy visits, a few hundred episodes at a time; this
labels every kind of state at once: for each layout of a trajectory dataset, the agent is put
on cells drawn uniformly from those that can reach the current target, in each phase of the
task the dataset shows (Foraging: food still out, then food collected; Maze: one phase), and
the grid expert labels each state from the observation alone, exactly as it labels its own.

For the Chase task, :func:`chase_coverage_states` does the same with the enemy placed on a
random cell near the agent (where the planner's choice differs from the blind path), labelled
by the planner from the grid alone (:meth:`expert.chase.ChasePlannerExpert.grid_label`).

Every state made here is a state of the MDP: the layout is an episode's first observation
(the agent on the nest/start), the agent stands on a reachable cell other than the current
target that it can walk to in that phase (out: without collecting the food; back: without
entering the nest), and in the return phase the food cell is empty, as the env leaves it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from expert.chase import ChasePlannerExpert
from expert.grid import GridTargetExpert
from hrm_gym.core.grid import AGENT, EMPTY, ENEMY, FOOD, NEST, WALL, bfs_distances
from hrm_gym.foraging.chase import enemy_distances, enemy_passable


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
    layouts = _checked_layouts(layouts, per_layout)
    states, actions, masks = [], [], []
    for index, first in enumerate(layouts):
        agent = np.argwhere(first == AGENT)
        food = np.argwhere(first == FOOD)
        if len(agent) != 1 or len(food) != 1:
            raise ValueError(
                f"layout {index} must hold one agent (on the nest/start) and one food/goal cell, "
                f"found {len(agent)} agent and {len(food)} food/goal cells"
            )
        for grid, cell in _agent_cells(first, tuple(agent[0]), tuple(food[0]), return_phase, per_layout, rng):
            obs = grid.copy()
            obs.flat[cell] = AGENT
            action, mask = expert.label(obs)
            states.append(obs)
            actions.append(action)
            masks.append(mask)
    return np.stack(states), np.asarray(actions, dtype=np.int64), np.stack(masks).astype(bool)


def chase_coverage_states(
    layouts: np.ndarray,
    planner: ChasePlannerExpert,
    per_layout: int,
    rng: np.random.Generator,
    enemy_radius: int = 6,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chase states off the planner's paths: ``per_layout`` per layout and phase (out, back).

    ``layouts``: ``(N, H, W)`` first observations of Chase episodes (one agent on the nest, one
    food, one enemy). The agent stands on a random cell as in :func:`coverage_states`; the enemy
    on a random cell it may enter whose distance to the agent, in the enemy's own steps, is
    ``1..enemy_radius`` (agent cells with no such enemy cell are skipped). Labels are
    ``planner.grid_label``: what the planner does whatever the hidden pace phase.
    """
    if not isinstance(planner, ChasePlannerExpert):
        raise ValueError(f"chase coverage states need the Chase planner, got {type(planner).__name__}")
    if enemy_radius < 1:
        raise ValueError(f"enemy_radius must be >= 1, got {enemy_radius}")
    layouts = _checked_layouts(layouts, per_layout)
    states, actions, masks = [], [], []
    for index, first in enumerate(layouts):
        found = [np.argwhere(first == code) for code in (AGENT, FOOD, ENEMY)]
        if any(len(cells) != 1 for cells in found):
            raise ValueError(
                f"layout {index} must hold one agent (on the nest), one food and one enemy cell, found "
                f"{len(found[0])} agent, {len(found[1])} food and {len(found[2])} enemy cells"
            )
        agent, food, enemy = (tuple(cells[0]) for cells in found)
        layout = first.copy()
        layout[enemy] = EMPTY
        for grid, cell in _agent_cells(layout, agent, food, True, per_layout, rng):
            can_enter = enemy_passable(grid)
            from_agent = enemy_distances(can_enter, divmod(cell, grid.shape[1]))
            near = np.flatnonzero(can_enter & (from_agent >= 1) & (from_agent <= enemy_radius))
            if not near.size:
                continue
            obs = grid.copy()
            obs.flat[cell] = AGENT
            obs.flat[int(rng.choice(near))] = ENEMY
            action, mask = planner.grid_label(obs)
            states.append(obs)
            actions.append(action)
            masks.append(mask)
    if not states:
        raise ValueError("no chase coverage state could be placed (no enemy cell near any agent cell)")
    return np.stack(states), np.asarray(actions, dtype=np.int64), np.stack(masks).astype(bool)


def _checked_layouts(layouts: np.ndarray, per_layout: int) -> np.ndarray:
    if per_layout < 1:
        raise ValueError(f"per_layout must be >= 1, got {per_layout}")
    layouts = np.asarray(layouts)
    if layouts.ndim != 3:
        raise ValueError(f"layouts must be (N, H, W) grids, got shape {layouts.shape}")
    return layouts


def _agent_cells(
    first: np.ndarray,
    nest: tuple[int, int],
    goal: tuple[int, int],
    return_phase: bool,
    per_layout: int,
    rng: np.random.Generator,
) -> Iterator[tuple[np.ndarray, int]]:
    """``(grid without the agent, flat cell)``: up to ``per_layout`` agent cells per phase.

    Cells that can reach the phase's target, other than the target itself, drawn without
    replacement (one draw per phase, before the first cell is yielded).
    """
    for grid, target, allowed in _phases(first, nest, goal, return_phase):
        distances = bfs_distances(grid != WALL, target)
        cells = np.flatnonzero((distances > 0) & allowed)  # reachable, not the target itself
        for cell in rng.choice(cells, size=min(per_layout, len(cells)), replace=False):
            yield grid, int(cell)


def _phases(
    first: np.ndarray, nest: tuple[int, int], goal: tuple[int, int], return_phase: bool
) -> list[tuple[np.ndarray, tuple[int, int], np.ndarray]]:
    """``(grid without the agent, target, cells the agent may stand on)`` per task phase.

    Out for the food, the agent stands where it can walk from the nest without stepping on the
    food (which would collect it); on the way back, where it can walk from the food without
    stepping on the nest (which would end the episode).
    """
    base = first.astype(np.uint8, copy=True)
    base[nest] = NEST
    outward = base != WALL
    outward[goal] = False
    phases = [(base, goal, bfs_distances(outward, nest) >= 0)]
    if return_phase:
        returning = base.copy()
        returning[goal] = EMPTY
        homeward = returning != WALL
        homeward[nest] = False
        phases.append((returning, nest, bfs_distances(homeward, goal) >= 0))
    return phases
