"""Foraging with a chasing enemy (``HRMForagingChase-v0``).

Foraging (DESIGN 1.A) plus one enemy (cell code 5) that hunts the agent. The rules, in the
order they are applied within one ``step()``:

1. The agent moves (a wall or the edge leaves it in place, as in Foraging).
2. If the agent is now on the enemy's cell it is **caught**. This also covers a *swap*
   (agent and enemy trading cells): the agent moves first, so it lands on the enemy.
3. Otherwise the Foraging rules apply: stepping onto the food collects it (+1, the cell
   becomes empty); reaching the nest with the food ends the episode successfully (+10).
4. If the episode goes on and the pace says so (below), the enemy takes one step along a
   BFS shortest path towards the agent's *new* cell, with the tie-break of
   :func:`hrm_gym.core.grid.greedy_action` (the first of up, down, left, right that gets
   closer). If it lands on the agent, the agent is **caught**.

Being caught ends the episode (``terminated``) with ``caught_penalty`` added to the step's
reward (default -10; a food picked up on the same step still pays its +1) and
``info["caught"] = True``.

**Where the enemy may go.** Never onto the nest, and never onto the food while the food
lies there (after the pick-up that cell is plain floor). So the enemy never hides the food
or the nest in the observation, and the nest is a safe haven: an enemy next to an agent on
the nest waits. Its shortest paths go around those cells. An enemy that cannot reach the
agent at all stays where it is.

**Pace.** ``enemy_pace=(k, n)``: the enemy moves on ``k`` of every ``n`` steps, spread
evenly: it moves on step ``t`` (``t`` = ``info["steps"]`` after the step, counting from 1)
exactly when ``(t * k) // n > ((t - 1) * k) // n`` (see :func:`enemy_moves_on_step`). E.g.
``(1, 2)`` moves on steps 2, 4, 6, ...; ``(2, 3)`` on 2, 3, 5, 6, ...; ``(3, 4)`` on 2, 3, 4, 6,
7, 8, ...; ``(1, 1)`` on every step. The phase (``steps % n``) is not visible in the grid: a
policy that needs it reads ``info["steps"]``.

**Start.** A random layout is a Foraging layout plus an enemy on an empty cell at least
``min_enemy_distance`` (default 6) BFS steps (through everything but walls) from the nest.
A layout given through ``reset(options={"layout": grid})`` must hold exactly one enemy
(code 5) as well; it must be at least ``min_enemy_distance`` steps from the nest, or cut off
from the nest entirely (allowed: such an enemy can never reach the agent, which makes the
layout plain Foraging; useful as a curriculum step or a control).

**Observation.** The grid with the enemy drawn as 5 and the agent as 2. The two share a
cell only at a capture (the last observation of that episode): the agent is drawn on top, so
every observation holds exactly one agent cell.

**Default pace: (3, 4)**, chosen with ``benchmarks/chase_pace.py`` (200 seeded episodes per
pace, 16x16, max_steps 200): the enemy-blind shortest path is caught in 46% of the episodes,
while the enemy-aware planner (:mod:`expert.chase`) succeeds in 100%. Other paces, blind
caught / planner success: 1/1 62% / 95.5% (4.5% of layouts cannot be won), 4/5 49.5% / 100%,
2/3 44.5% / 100%, 1/2 30.5% / 100%. Among the paces in the target band (blind caught 25-60%,
planner >= 95%), 4/5, 3/4 and 2/3 are close; 3/4 keeps the enemy fast with a shorter hidden
phase cycle than 4/5. A planner that ignores the phase (it plans as if the enemy moved every
step, so it acts on the grid alone) was never caught and succeeded in about 95% of 150
episodes at each of these paces.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from hrm_gym.core.grid import (
    ACTION_DELTAS,
    AGENT,
    EMPTY,
    ENEMY,
    FOOD,
    NEST,
    UNREACHABLE,
    WALL,
    Position,
    bfs_distances,
    find_cells,
    require_reachable,
    validate_layout,
)
from hrm_gym.foraging.env import ForagingEnv
from hrm_gym.foraging.generator import generate_foraging_layout

#: ``(k, n)``: the enemy moves on k of every n steps. Calibrated by benchmarks/chase_pace.py.
DEFAULT_ENEMY_PACE: tuple[int, int] = (3, 4)
DEFAULT_CAUGHT_PENALTY = -10.0
DEFAULT_MIN_ENEMY_DISTANCE = 6
#: Random layouts drawn before giving up on placing the enemy (only absurd settings get there).
MAX_LAYOUT_ATTEMPTS = 1000


def check_enemy_pace(enemy_pace: Any) -> tuple[int, int]:
    """``enemy_pace`` as ``(k, n)`` with ``0 <= k <= n`` and ``n >= 1``, or a ``ValueError``."""
    try:
        k, n = enemy_pace
    except (TypeError, ValueError):
        raise ValueError(f"enemy_pace must be a pair (k, n), got {enemy_pace!r}") from None
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in (k, n)):
        raise ValueError(f"enemy_pace must hold two integers (k, n), got {enemy_pace!r}")
    k, n = int(k), int(n)
    if not (n >= 1 and 0 <= k <= n):
        raise ValueError(
            f"enemy_pace=(k, n) must satisfy 0 <= k <= n and n >= 1 (the enemy moves on k of "
            f"every n steps), got {enemy_pace!r}"
        )
    return k, n


def enemy_moves_on_step(step: int, enemy_pace: tuple[int, int]) -> bool:
    """Whether the enemy moves during step number ``step`` (1, 2, ...) at ``enemy_pace``.

    Spread evenly: ``k`` moves in every window of ``n`` steps, periodic with period ``n``. A
    policy about to take a step sees ``info["steps"] = step - 1``.
    """
    k, n = enemy_pace
    return (step * k) // n > ((step - 1) * k) // n


def enemy_passable(layout: np.ndarray) -> np.ndarray:
    """Cells the enemy may enter: not a wall, not the nest and not a food cell still lying there.

    ``layout`` holds the static cells (walls, food while present, nest), no agent or enemy.
    """
    return (layout != WALL) & (layout != NEST) & (layout != FOOD)


def enemy_distances(can_enter: np.ndarray, agent: Position) -> np.ndarray:
    """BFS distances from ``agent`` through cells the enemy may enter (plus the agent's own).

    The enemy's rule in full-map form (for planners and tests); the env itself runs the
    equivalent early-stopping search of :func:`enemy_step`.
    """
    passable = np.array(can_enter, dtype=bool)
    passable[agent] = True
    return bfs_distances(passable, agent)


def move_enemy_distances(observation: np.ndarray) -> np.ndarray:
    """For each move (up, down, left, right): the enemy's steps to the cell the agent lands on.

    Read off one observation (agent code 2, enemy code 5), so a learner can be taught where the
    danger lies from what it sees. A move into a wall or off the grid leaves the agent in place;
    landing on the nest, or where the enemy cannot reach, gives ``math.inf``; on the enemy, 0.
    The metric is the enemy's own (:func:`enemy_step`): paths through cells it may enter. The
    agent's own cell is the nest when no nest is in sight, else floor. Returns ``(4,)`` floats;
    all ``inf`` when the observation holds no enemy (plain Foraging) or no agent (a capture).
    """
    grid = np.asarray(observation)
    out = np.full(4, math.inf)
    agents, enemies = np.argwhere(grid == AGENT), np.argwhere(grid == ENEMY)
    if len(agents) != 1 or len(enemies) != 1:
        return out
    agent = (int(agents[0][0]), int(agents[0][1]))
    enemy = (int(enemies[0][0]), int(enemies[0][1]))
    layout = grid.copy()
    layout[enemy] = EMPTY
    layout[agent] = EMPTY if (grid == NEST).any() else NEST  # no nest in sight: the agent is on it
    can_enter = enemy_passable(layout)
    from_enemy = bfs_distances(can_enter, enemy)
    height, width = grid.shape
    for action, (dr, dc) in enumerate(ACTION_DELTAS):
        row, col = agent[0] + dr, agent[1] + dc
        if not (0 <= row < height and 0 <= col < width) or grid[row, col] == WALL:
            row, col = agent
        if (row, col) == enemy:
            out[action] = 0.0
            continue
        if layout[row, col] == NEST:
            continue
        for nr, nc in ((row + a, col + b) for a, b in ACTION_DELTAS):
            if 0 <= nr < height and 0 <= nc < width and from_enemy[nr, nc] != UNREACHABLE:
                out[action] = min(out[action], float(from_enemy[nr, nc]) + 1.0)
    return out


def enemy_step(can_enter: np.ndarray, agent: Position, enemy: Position) -> Position:
    """The enemy's next cell: one step along a BFS shortest path to ``agent``.

    Paths run through ``can_enter`` cells only (see :func:`enemy_passable`); among the
    shortest, the first step is the first of up, down, left, right that gets closer (the
    tie-break of :func:`hrm_gym.core.grid.greedy_action`), i.e. the neighbour ``c`` of the
    enemy with ``enemy_distances(can_enter, agent)[c] == distance - 1`` that comes first.
    The enemy stays put when it cannot reach the agent, or when the only closer cell is the
    agent's own cell on the nest (a cell it may not enter).
    """
    height, width = can_enter.shape
    flat = can_enter.ravel().tolist()
    nxt = _enemy_step_flat(flat, height, width, agent[0] * width + agent[1], enemy[0] * width + enemy[1])
    return divmod(nxt, width)


def _enemy_step_flat(can_enter: list[bool], height: int, width: int, agent: int, enemy: int) -> int:
    """:func:`enemy_step` on row-major cell indices; stops the BFS once it finds the enemy.

    When the enemy's cell is discovered at distance ``d``, every cell at distance ``d - 1``
    has already been discovered (BFS order), so the neighbours' distances read below are final.
    """
    if agent == enemy:
        return enemy
    dist = [-1] * (height * width)
    dist[agent] = 0
    queue = deque([agent])
    pop, push = queue.popleft, queue.append
    last_row = (height - 1) * width
    while queue and dist[enemy] < 0:
        i = pop()
        d = dist[i] + 1
        c = i % width
        if i >= width and can_enter[i - width] and dist[i - width] < 0:
            dist[i - width] = d
            push(i - width)
        if i < last_row and can_enter[i + width] and dist[i + width] < 0:
            dist[i + width] = d
            push(i + width)
        if c > 0 and can_enter[i - 1] and dist[i - 1] < 0:
            dist[i - 1] = d
            push(i - 1)
        if c < width - 1 and can_enter[i + 1] and dist[i + 1] < 0:
            dist[i + 1] = d
            push(i + 1)
    target = dist[enemy] - 1
    if target < 0:  # cut off from the agent: stay
        return enemy
    c = enemy % width
    for neighbour, inside in (
        (enemy - width, enemy >= width),  # up
        (enemy + width, enemy < last_row),  # down
        (enemy - 1, c > 0),  # left
        (enemy + 1, c < width - 1),  # right
    ):
        if inside and dist[neighbour] == target:
            # The first step of the chosen shortest path. It is forbidden only when it is the
            # agent's own cell on the nest; then the enemy waits next to it.
            return neighbour if (can_enter[neighbour] or neighbour != agent) else enemy
    raise AssertionError("BFS distance without a predecessor")  # pragma: no cover


class ForagingChaseEnv(ForagingEnv):
    """``HRMForagingChase-v0``: Foraging with an enemy that chases the agent (module docstring).

    Args:
        size: grid side length (8 to 32).
        max_steps: steps before the episode is truncated.
        step_penalty: subtracted from the reward at every step (default 0).
        wall_segments: inclusive range of the number of wall segments of a random layout.
        enemy_pace: ``(k, n)``, the enemy moves on ``k`` of every ``n`` steps.
        caught_penalty: added to the reward when the agent is caught (``<= 0``, default -10).
        min_enemy_distance: least BFS distance from the nest to the enemy's start (>= 1).
        render_mode: ``"human"``, ``"rgb_array"``, ``"ansi"`` or ``None``.

    ``info``: ``agent_pos``, ``food_pos``, ``nest_pos``, ``has_food``, ``steps`` (as in
    Foraging) plus ``enemy_pos`` and ``caught``.
    """

    option_keys = frozenset({"layout"})

    def __init__(
        self,
        size: int = 16,
        max_steps: int = 200,
        step_penalty: float = 0.0,
        wall_segments: tuple[int, int] = (5, 10),
        enemy_pace: tuple[int, int] = DEFAULT_ENEMY_PACE,
        caught_penalty: float = DEFAULT_CAUGHT_PENALTY,
        min_enemy_distance: int = DEFAULT_MIN_ENEMY_DISTANCE,
        render_mode: str | None = None,
    ):
        super().__init__(
            size=size,
            max_steps=max_steps,
            step_penalty=step_penalty,
            wall_segments=wall_segments,
            render_mode=render_mode,
        )
        self.enemy_pace = check_enemy_pace(enemy_pace)
        penalty = float(caught_penalty)
        if not math.isfinite(penalty) or penalty > 0:
            raise ValueError(
                f"caught_penalty is added to the reward when caught and must be a finite number "
                f"<= 0, got {caught_penalty!r}"
            )
        self.caught_penalty = penalty
        if (
            not isinstance(min_enemy_distance, int | np.integer)
            or isinstance(min_enemy_distance, bool)
            or min_enemy_distance < 1
        ):
            raise ValueError(f"min_enemy_distance must be an integer >= 1, got {min_enemy_distance!r}")
        self.min_enemy_distance = int(min_enemy_distance)
        self.enemy_pos: Position = (0, 0)
        self.caught = False
        #: Row-major flags of the cells the enemy may enter (see :func:`enemy_passable`).
        self._enemy_can_enter: list[bool] = []

    # Layout ------------------------------------------------------------------------------
    _required_cells = {NEST: 1, FOOD: 1, ENEMY: 1}
    _allowed_cells = (EMPTY, WALL, FOOD, NEST, ENEMY)

    def _enemy_start_cells(self, grid: np.ndarray, nest: Position) -> np.ndarray:
        """Row-major flat indices of the empty cells far enough from the nest."""
        distances = bfs_distances(grid != WALL, nest)
        return np.flatnonzero((grid == EMPTY) & (distances >= self.min_enemy_distance))

    def _generate_layout(self) -> np.ndarray:
        for _ in range(MAX_LAYOUT_ATTEMPTS):
            grid = generate_foraging_layout(self.np_random, self.size, self.wall_segments)
            candidates = self._enemy_start_cells(grid, find_cells(grid, NEST)[0])
            if candidates.size:
                grid[divmod(int(self.np_random.choice(candidates)), self.size)] = ENEMY
                return grid
        raise RuntimeError(
            f"no Chase layout with an enemy cell >= {self.min_enemy_distance} steps from the "
            f"nest found in {MAX_LAYOUT_ATTEMPTS} draws (size={self.size})"
        )

    def _check_layout(self, layout: Any) -> np.ndarray:
        grid = validate_layout(
            layout,
            shape=(self.size, self.size),
            required=self._required_cells,
            allowed=self._allowed_cells,
        )
        nest, food, enemy = (find_cells(grid, code)[0] for code in (NEST, FOOD, ENEMY))
        distances = require_reachable(grid != WALL, nest, {"food": food})
        if distances[enemy] != UNREACHABLE and distances[enemy] < self.min_enemy_distance:
            raise ValueError(
                f"the enemy at {enemy} is {distances[enemy]} steps from the nest at {nest}; it "
                f"must start at least min_enemy_distance={self.min_enemy_distance} steps away "
                f"(or be cut off from the nest)"
            )
        return grid

    # Rules -------------------------------------------------------------------------------
    def _start_episode(self, layout: np.ndarray) -> None:
        self.enemy_pos = find_cells(layout, ENEMY)[0]
        layout[self.enemy_pos] = EMPTY  # the enemy moves: it is drawn by _observation
        super()._start_episode(layout)
        self.caught = False
        self._enemy_can_enter = enemy_passable(layout).ravel().tolist()

    def _after_move(self, previous: Position, action: int) -> tuple[float, bool]:
        if self.agent_pos == self.enemy_pos:  # stepped onto the enemy (or swapped with it)
            self.caught = True
            return self.caught_penalty, True
        had_food = self.has_food
        reward, terminated = super()._after_move(previous, action)
        if terminated:
            return reward, True
        width = self.width
        if self.has_food and not had_food:  # the food cell is floor now, for the enemy too
            self._enemy_can_enter[self.food_pos[0] * width + self.food_pos[1]] = True
        if enemy_moves_on_step(self.steps, self.enemy_pace):
            enemy = _enemy_step_flat(
                self._enemy_can_enter,
                self.height,
                width,
                self.agent_pos[0] * width + self.agent_pos[1],
                self.enemy_pos[0] * width + self.enemy_pos[1],
            )
            self.enemy_pos = divmod(enemy, width)
            if self.enemy_pos == self.agent_pos:
                self.caught = True
                return reward + self.caught_penalty, True
        return reward, False

    # Queries -----------------------------------------------------------------------------
    def enemy_distance(self) -> float:
        """Steps the enemy needs to reach the agent now (``math.inf`` when it cannot).

        The enemy's own metric (:func:`enemy_step`): BFS through cells it may enter. The agent
        on the nest is out of reach (the enemy may not enter it), so the distance is ``inf``.
        """
        if not self._started:
            raise RuntimeError("enemy_distance() called before reset(): call reset() first")
        if self.agent_pos == self.nest_pos:
            return math.inf
        width = self.width
        can_enter = np.array(self._enemy_can_enter, dtype=bool).reshape(self.height, width)
        distance = enemy_distances(can_enter, self.agent_pos)[self.enemy_pos]
        return math.inf if distance == UNREACHABLE else float(distance)

    def _observation(self) -> np.ndarray:
        obs = self._layout.copy()
        obs[self.enemy_pos] = ENEMY
        obs[self.agent_pos] = AGENT
        return obs

    def _info(self) -> dict[str, Any]:
        info = super()._info()
        info["enemy_pos"] = self.enemy_pos
        info["caught"] = self.caught
        return info

    def _status(self) -> str:
        if self.caught:
            return f"step {self.steps}/{self.max_steps}  caught!"
        return super()._status()
