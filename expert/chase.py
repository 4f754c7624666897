"""Experts for ``HRMForagingChase-v0``: the enemy-blind shortest path and the exact planner.

:class:`BlindChaseExpert` is the Foraging expert (:class:`expert.grid.ForagingExpert`): BFS to
the food while it lies on the grid, then to the nest; the enemy counts as an empty cell;
tie-break: the first of up, down, left, right that gets closer. It reads the grid only.

:class:`ChasePlannerExpert` is optimal for the env's deterministic enemy. It solves the whole
game on the joint state *(agent cell, enemy cell, has-food, pace phase)* once per layout by a
backward breadth-first search (retrograde analysis) from the winning moves, vectorised with
numpy, and then answers each step with a few table lookups. Its objective, in order:

1. succeed (reach the nest with the food without being caught) within the steps left;
2. among such plans, take the fewest steps;
3. when success within the steps left is impossible, survive as long as possible (a timeout,
   reward 0, beats a capture, reward ``caught_penalty``).

Ties are broken by action order: the first of up, down, left, right. ``optimal_actions``
marks every action that reaches the optimal value. The planner reads the grid plus
``info["steps"]`` (for the enemy's pace phase, ``steps % n``, and the steps left,
``max_steps - steps``); everything else comes from the observation. The enemy model is the
env's own rule (:mod:`hrm_gym.foraging.chase`), rebuilt here as whole tables; the tests check
the two agree cell by cell.

Cost on a 16x16 grid: one solve per layout (tens of milliseconds; see the tests and
``benchmarks/chase_pace.py``), cached by (walls, nest, food), then microseconds per step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from expert.base import Expert
from expert.grid import ForagingExpert
from hrm_gym.core.grid import AGENT, ENEMY, FOOD, NEST, NUM_ACTIONS, NUM_CELL_CODES, WALL
from hrm_gym.foraging.chase import DEFAULT_ENEMY_PACE, check_enemy_pace, enemy_moves_on_step

#: Default ``max_steps`` of the env (the planner must plan against the same step limit).
DEFAULT_MAX_STEPS = 200
#: How many solved layouts one planner keeps (DAgger revisits the same layouts).
_CACHE_SIZE = 4
#: bytes.translate table: wall cells -> 1, every other code -> 0 (the static-walls cache key).
_WALLS_ONLY = bytes(1 if code == WALL else 0 for code in range(256))


class BlindChaseExpert(ForagingExpert):
    """Enemy-blind shortest path: exactly the Foraging expert, acting from the grid alone.

    BFS to the food while food is on the grid, then to the nest; the enemy cell counts as
    empty; tie-break: the first of up, down, left, right that reduces the distance. Env
    kwargs given to the factory are accepted and ignored.
    """


class ChasePlannerExpert(Expert):
    """Optimal enemy-aware planner for ``HRMForagingChase-v0`` (see the module docstring).

    Args:
        enemy_pace: the env's ``(k, n)`` (default: the env's default).
        max_steps: the env's step limit (default 200, the env's default).
        **env_kwargs: other env kwargs (size, step_penalty, ...), accepted and ignored.

    ``info`` must hold ``steps``. Raises ``ValueError`` on a malformed observation, on a
    terminal one (no enemy, or the agent home with the food) and when no step is left.
    """

    n_actions = NUM_ACTIONS

    def __init__(
        self,
        enemy_pace: tuple[int, int] = DEFAULT_ENEMY_PACE,
        max_steps: int = DEFAULT_MAX_STEPS,
        **env_kwargs: Any,
    ):
        self.enemy_pace = check_enemy_pace(enemy_pace)
        if isinstance(max_steps, bool) or not isinstance(max_steps, int | np.integer):
            raise ValueError(f"max_steps must be an integer >= 1, got {max_steps!r}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be an integer >= 1, got {max_steps!r}")
        self.max_steps = int(max_steps)
        self._solutions: dict[tuple, ChaseSolution] = {}  # (shape, walls, nest, food) -> solved
        self._carrying: dict[tuple, ChaseSolution] = {}  # (shape, walls, nest) -> solved

    def reset(self) -> None:
        """Nothing to clear per episode: solutions are cached by layout (a few kept)."""

    # ---- public API -----------------------------------------------------------------------
    def act(self, obs: np.ndarray, info: dict[str, Any]) -> int:
        """The first (up, down, left, right) of the optimal actions."""
        return int(np.flatnonzero(self.optimal_actions(obs, info))[0])

    def optimal_actions(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        """``bool (4,)``: every action reaching the optimal value (objective: module docstring)."""
        solution, state, steps_left = self._locate(obs, info)
        return solution.best_actions(state, steps_left)

    def grid_label(self, obs: np.ndarray) -> tuple[int, np.ndarray]:
        """``(action, mask)`` from the grid alone: the actions optimal in the most pace phases.

        The pace phase (``steps % n``) is not in the observation, so a policy that sees only
        the grid cannot imitate :meth:`optimal_actions` where the phases disagree (about 4% of
        the planner's own states at the default pace). This label is a function of the grid:
        ``mask`` marks the actions optimal in the largest number of phases (each phase judged
        with ``steps = phase``, i.e. the full step budget), ``action`` is the first of them.
        Acting on it at the default settings (reset seeds 0-199): 198 wins, 2 timeouts (its
        phase-blind choices can loop), no capture.
        """
        solution, (carrying, _, agent, enemy), _ = self._locate(obs, {"steps": 0})  # the grid read once
        counts = np.zeros(NUM_ACTIONS, dtype=np.int64)
        for phase in range(min(self.enemy_pace[1], self.max_steps)):
            counts += solution.best_actions((carrying, phase, agent, enemy), self.max_steps - phase)
        mask = counts == counts.max()
        return int(np.flatnonzero(mask)[0]), mask

    def steps_to_success(self, obs: np.ndarray, info: dict[str, Any]) -> int | None:
        """Fewest steps to bring the food home uncaught from here, or ``None`` if impossible.

        Ignores the step limit: compare with ``max_steps - info["steps"]``.
        """
        solution, state, _ = self._locate(obs, info)
        distance = solution.distance_of(state)
        return None if distance < 0 else distance

    def can_succeed(self, obs: np.ndarray, info: dict[str, Any]) -> bool:
        """Whether some policy succeeds from here within the steps left (the planner's ceiling)."""
        solution, state, steps_left = self._locate(obs, info)
        distance = solution.distance_of(state)
        return 0 < distance <= steps_left

    # ---- reading the observation ------------------------------------------------------------
    def _locate(self, obs: Any, info: dict[str, Any]) -> tuple[ChaseSolution, tuple, int]:
        grid = _as_grid(obs)
        steps = _steps_from(info)
        steps_left = self.max_steps - steps
        if steps_left < 1:
            raise ValueError(
                f"info['steps']={steps} leaves no step before max_steps={self.max_steps}: "
                "the episode is over (or the planner was built with another max_steps)"
            )
        data = grid.tobytes()
        width = grid.shape[1]
        agent, enemy = _one_cell(data, AGENT, "agent"), _one_cell(data, ENEMY, "enemy")
        food = _at_most_one_cell(data, FOOD, "food")
        nest = _at_most_one_cell(data, NEST, "nest")
        if nest is None:  # the nest is hidden only by the agent standing on it
            if food is None:
                raise ValueError("the agent is on the nest with the food: the episode is over")
            nest = agent
        walls = data.translate(_WALLS_ONLY)
        solution = self._solution(grid.shape, walls, divmod(nest, width), food, width)
        state = (0 if food is not None else 1, steps % self.enemy_pace[1], agent, enemy)
        return solution, state, steps_left

    def _solution(
        self, shape: tuple[int, int], walls: bytes, nest: tuple[int, int], food: int | None, width: int
    ) -> ChaseSolution:
        if food is None:  # after the pick-up the game does not depend on where the food was
            found = self._carrying.get((shape, walls, nest))
            if found is not None:
                return found
        key = (shape, walls, nest, food)
        found = self._solutions.get(key)
        if found is None:
            passable = np.frombuffer(walls, dtype=np.uint8).reshape(shape) == 0
            food_cell = None if food is None else divmod(food, width)
            found = ChaseSolution(passable, nest, food_cell, self.enemy_pace)
            if len(self._solutions) >= _CACHE_SIZE:
                del self._solutions[next(iter(self._solutions))]
            self._solutions[key] = found
            if len(self._carrying) >= _CACHE_SIZE:
                del self._carrying[next(iter(self._carrying))]
            self._carrying[(shape, walls, nest)] = found
        return found


class ChaseSolution:
    """The solved Chase game of one layout: shortest safe distances over the joint state.

    State ``(h, p, a, e)``: ``h`` 1 once the food is carried, ``p`` the pace phase
    (``steps % n`` before the step), ``a``/``e`` the agent's and the enemy's row-major cell
    indices. Flat index ``((h * n + p) << 2B) | (a << B) | e`` with ``2**B >= H * W`` (bit
    fields, so decoding is shifts and masks). ``food=None`` solves the carrying half only.

    Transitions copy the env's step order: the agent moves; it is caught if it lands on the
    enemy; with the food on the nest it wins; it picks up the food; the enemy moves (if the
    phase says so) one step along its BFS path to the agent's new cell, through cells it may
    enter (not walls, not the nest, not the food while it lies there), first of up, down,
    left, right; it catches the agent if it lands on it.
    """

    def __init__(
        self,
        passable: np.ndarray,
        nest: tuple[int, int],
        food: tuple[int, int] | None,
        enemy_pace: tuple[int, int],
    ):
        height, width = passable.shape
        cells = height * width
        bits = max(1, (cells - 1).bit_length())
        span = 1 << bits  # cell indices padded to a power of two
        self.shape, self.cells, self.bits, self.span = (height, width), cells, bits, span
        self.k, self.n = enemy_pace
        n = self.n
        layers = 2 * n
        self.itype = np.int32 if (layers << (2 * bits)) < 2**31 else np.int64
        self.moves_in_phase = np.array([enemy_moves_on_step(p + 1, enemy_pace) for p in range(n)], dtype=bool)
        self.free = np.zeros(span, dtype=bool)
        self.free[:cells] = passable.ravel()
        self.nest = nest[0] * width + nest[1]
        self.food = -1 if food is None else food[0] * width + food[1]
        self.agent_moves = _agent_move_table(passable, span)  # (span, 4)
        agent_preds = _agent_predecessors(self.agent_moves, self.free)  # (span, 4)
        self._agent_preds_shifted = (agent_preds << bits).astype(self.itype)

        # Where the enemy may go with the food lying (h = 0) and carried (h = 1); its moves.
        can_enter = np.zeros((2, span), dtype=bool)
        can_enter[1] = self.free
        can_enter[1, self.nest] = False
        can_enter[0] = can_enter[1]
        if self.food >= 0:
            can_enter[0, self.food] = False
        self.enemy_moves = np.broadcast_to(np.arange(span, dtype=np.int32), (2, span, span)).copy()
        for h in (0, 1) if self.food >= 0 else (1,):
            grid = can_enter[h, :cells].reshape(height, width)
            self.enemy_moves[h, :cells, :cells] = _enemy_move_table(grid)

        # Live states: agent on a free cell, enemy on a cell it may enter, apart; the agent is
        # never on the lying food (picked up at once) nor home with it (that is a win).
        pairs = self.free[None, :, None] & can_enter[:, None, :]
        pairs &= ~np.eye(span, dtype=bool)[None]
        pairs[1, self.nest, :] = False
        if self.food >= 0:
            pairs[0, self.food, :] = False
        else:
            pairs[0] = False
        self.valid = np.broadcast_to(pairs[:, None], (2, n, span, span)).reshape(-1).copy()

        # Per layer (h * n + p): the layer before the step, with and without the food picked up.
        layer = np.arange(layers)
        carrying, phase = layer // n, layer % n
        phase_before = (phase - 1) % n
        self._layer_moved = self.moves_in_phase[phase_before]
        self._layer_carrying = carrying
        self._before_shifted = ((carrying * n + phase_before) << (2 * bits)).astype(self.itype)
        self._before_picking_shifted = (phase_before << (2 * bits)).astype(self.itype)
        self._carrying_shifted = (carrying << (2 * bits)).astype(self.itype)

        # Inverse of the enemy's move: the pre-move cells leading to each (h, agent, cell).
        keys = (
            (np.arange(2)[:, None, None] << (2 * bits)) | (np.arange(span)[None, :, None] << bits) | self.enemy_moves
        ).reshape(-1)
        order = np.argsort(keys, kind="stable")
        self._inverse_enemy = (order & (span - 1)).astype(self.itype)
        counts = np.bincount(keys, minlength=2 * span * span)
        self._inverse_count = counts.astype(self.itype)
        self._inverse_start = (np.cumsum(counts) - counts).astype(self.itype)

        self.distance = self._solve_distances()
        self._survival: np.ndarray | None = None  # computed on first need (rare)

    # ---- the backward searches --------------------------------------------------------------
    def index(self, h: int, p: int, a: int, e: int) -> int:
        """Flat index of state ``(h, p, a, e)``."""
        return (((h * self.n + p) << self.bits) | a) << self.bits | e

    def _predecessors(self, states: np.ndarray) -> np.ndarray:
        """The source state of every (state, action) pair whose step leads into ``states``.

        One entry per pair, so a state appears once per action leading into the set (the
        survival count relies on it). Sources are *not* filtered: callers keep the live ones
        (``self.valid``). ``states`` must be live states.
        """
        bits, low = self.bits, self.span - 1
        enemy = states & low
        agent = (states >> bits) & low
        layer = states >> (2 * bits)
        moved = self._layer_moved[layer]

        # The enemy's cell before the step: itself if it rested, else each cell it came from.
        came = np.flatnonzero(moved)
        key = self._carrying_shifted[layer[came]] | (states[came] & ((1 << 2 * bits) - 1))
        count = self._inverse_count[key]
        row = np.repeat(came, count)
        offset = np.arange(row.size, dtype=self.itype) - np.repeat(np.cumsum(count) - count, count)
        from_cell = self._inverse_enemy[np.repeat(self._inverse_start[key], count) + offset]
        rested = np.flatnonzero(~moved)
        row = np.concatenate([row, rested])
        enemy_before = np.concatenate([from_cell, enemy[rested]])
        agent_after = agent[row]
        keep = enemy_before != agent_after  # the agent did not step onto the enemy
        row, enemy_before, agent_after = row[keep], enemy_before[keep], agent_after[keep]
        row_layer = layer[row]

        # The agent's cell before the step: the 4 (cell, action) pairs that enter its cell.
        base = self._before_shifted[row_layer] | enemy_before
        found = [(base[:, None] | self._agent_preds_shifted[agent_after]).reshape(-1)]
        if self.food >= 0:  # stepped onto the food from the "not yet carrying" half
            picked = np.flatnonzero((self._layer_carrying[row_layer] == 1) & (agent_after == self.food))
            base = self._before_picking_shifted[row_layer[picked]] | enemy_before[picked]
            found.append((base[:, None] | self._agent_preds_shifted[self.food]).reshape(-1))
        return np.concatenate(found)

    def _solve_distances(self) -> np.ndarray:
        """Fewest steps to a win from every state (``-1``: no win, whatever the agent does)."""
        size = self.valid.size
        distance = np.full(size, -1, dtype=np.int32)
        open_ = self.valid.copy()  # live and not reached yet
        # Distance 1: carrying, next to the nest (the enemy never stands on the nest).
        into_nest = np.unique(self._agent_preds_shifted[self.nest] >> self.bits)
        into_nest = into_nest[into_nest != self.nest]
        p, a, e = np.meshgrid(np.arange(self.n), into_nest, np.arange(self.span), indexing="ij", copy=False)
        seeds = ((((self.n + p) << self.bits) | a) << self.bits | e).reshape(-1).astype(self.itype)
        seeds = seeds[open_[seeds]]
        distance[seeds] = 1
        open_[seeds] = False
        stamp = np.empty(size, dtype=self.itype)
        frontier, d = seeds, 1
        while frontier.size:
            before = self._predecessors(frontier)
            before = before[open_[before]]
            positions = np.arange(before.size, dtype=self.itype)
            stamp[before] = positions
            before = before[stamp[before] == positions]  # each state once
            open_[before] = False
            d += 1
            distance[before] = d
            frontier = before
        return distance

    def _solve_survival(self) -> np.ndarray:
        """Most steps the agent can avoid capture from every state (``-1``: forever).

        Retrograde analysis: a state's counter holds its actions that do not lose at once;
        when a state is forced, each pair leading into it takes one off its source's counter.
        A win counts as never being caught.
        """
        bits, low = self.bits, self.span - 1
        states = np.flatnonzero(self.valid).astype(self.itype)
        enemy, agent = states & low, (states >> bits) & low
        layer = states >> (2 * bits)
        phase, carrying = layer % self.n, layer // self.n
        safe = np.zeros(states.size, dtype=np.int8)
        for action in range(NUM_ACTIONS):
            after = self.agent_moves[agent, action]
            won = (carrying == 1) & (after == self.nest)
            now_carrying = carrying | (after == self.food)
            enemy_after = np.where(self.moves_in_phase[phase], self.enemy_moves[now_carrying, after, enemy], enemy)
            caught = (after == enemy) | (enemy_after == after)
            safe += won | ~caught
        counter = np.zeros(self.valid.size, dtype=np.int8)
        counter[states] = safe
        survival = np.full(self.valid.size, -1, dtype=np.int32)
        frontier, level = states[safe == 0], 0
        survival[frontier] = 0
        while frontier.size:
            before = self._predecessors(frontier)
            before, hits = np.unique(before[self.valid[before]], return_counts=True)
            counter[before] -= hits.astype(np.int8)
            forced = before[(counter[before] == 0) & (survival[before] < 0)]
            level += 1
            survival[forced] = level
            frontier = forced
        return survival

    # ---- queries ------------------------------------------------------------------------------
    def distance_of(self, state: tuple[int, int, int, int]) -> int:
        """Shortest safe steps to a win from ``state = (h, p, a, e)``; ``-1`` when none."""
        index = self.index(*state)
        if not self.valid[index]:
            raise ValueError(f"not a live Chase state (has_food, phase, agent, enemy) = {state}")
        return int(self.distance[index])

    def outcomes(self, state: tuple[int, int, int, int]) -> list[tuple[str, int]]:
        """For each action: ``("win", -1)``, ``("caught", -1)`` or ``("state", index)``."""
        carrying, phase, agent, enemy = state
        result = []
        for action in range(NUM_ACTIONS):
            after = int(self.agent_moves[agent, action])
            if after == enemy:
                result.append(("caught", -1))
                continue
            if carrying and after == self.nest:
                result.append(("win", -1))
                continue
            now_carrying = 1 if (carrying or after == self.food) else 0
            enemy_after = enemy
            if self.moves_in_phase[phase]:
                enemy_after = int(self.enemy_moves[now_carrying, after, enemy])
            if enemy_after == after:
                result.append(("caught", -1))
                continue
            result.append(("state", self.index(now_carrying, (phase + 1) % self.n, after, enemy_after)))
        return result

    def best_actions(self, state: tuple[int, int, int, int], steps_left: int) -> np.ndarray:
        """``bool (4,)`` of the actions reaching the optimal value (module docstring)."""
        here = self.distance_of(state)
        outcomes = self.outcomes(state)
        if 0 < here <= steps_left:  # a win in time: every action on a shortest safe plan
            want = here - 1
            return np.array(
                [
                    (kind == "win" and want == 0) or (kind == "state" and self.distance[index] == want)
                    for kind, index in outcomes
                ],
                dtype=bool,
            )
        if self._survival is None:
            self._survival = self._solve_survival()
        values = []
        for kind, index in outcomes:  # steps survived, capped at the steps left
            if kind == "caught":
                values.append(0)
            elif kind == "win":
                values.append(steps_left)
            else:
                forced = int(self._survival[index])
                values.append(steps_left if forced < 0 else min(1 + forced, steps_left))
        best = max(values)
        return np.array([value == best for value in values], dtype=bool)


# ---- tables ------------------------------------------------------------------------------------
def _agent_move_table(passable: np.ndarray, span: int) -> np.ndarray:
    """``(span, 4)``: the cell each action takes the agent to (a wall or edge: it stays).

    Rows past ``H * W`` (index padding) and rows of walls are unused.
    """
    height, width = passable.shape
    flat = passable.ravel()
    cells = height * width
    cell = np.arange(cells)
    row, col = cell // width, cell % width
    table = np.repeat(np.arange(span)[:, None], NUM_ACTIONS, axis=1)
    for action, (target, inside) in enumerate(
        (
            (cell - width, row > 0),
            (cell + width, row < height - 1),
            (cell - 1, col > 0),
            (cell + 1, col < width - 1),
        )
    ):
        ok = inside.copy()
        ok[inside] = flat[target[inside]]
        table[:cells][ok, action] = target[ok]
    return table


def _agent_predecessors(moves: np.ndarray, free: np.ndarray) -> np.ndarray:
    """``(span, 4)``: for each free cell, the cells of the 4 (cell, action) pairs entering it.

    Exactly 4 per free cell: one per free neighbour plus one per blocked action (a wall or
    the edge keeps the agent in place). Rows of other cells are unused.
    """
    cells = free.nonzero()[0]
    sources = np.repeat(cells, NUM_ACTIONS)
    targets = moves[cells].reshape(-1)
    order = np.argsort(targets, kind="stable")
    table = np.zeros((moves.shape[0], NUM_ACTIONS), dtype=np.int64)
    table[cells] = sources[order].reshape(-1, NUM_ACTIONS)
    return table


def _enemy_move_table(can_enter: np.ndarray) -> np.ndarray:
    """``(C, C)``: the enemy's next cell for each (agent cell, enemy cell): the env's rule.

    One step along a BFS shortest path to the agent through ``can_enter`` cells (the agent's
    own cell is always the source), the first of up, down, left, right that gets closer; it
    stays when cut off, or when that step is the agent's own cell and the enemy may not enter
    it (the nest).

    All agent cells at once, as bitsets: ``reached[a, r]`` holds the bits of grid row ``r``
    within ``d`` steps of ``a``. A cell first reached at level ``d`` moves to its first
    neighbour reached by level ``d - 1`` (a neighbour is never closer than ``d - 1``).
    """
    height, width = can_enter.shape
    if width > 63:
        raise ValueError(f"grids wider than 63 cells are not supported, got width {width}")
    cells = height * width
    weights = np.uint64(1) << np.arange(width, dtype=np.uint64)
    full = np.uint64((1 << width) - 1)
    enter_rows = (can_enter.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)  # (H,)
    source = np.zeros((cells, height), dtype=np.uint64)
    agent = np.arange(cells)
    source[agent, agent // width] = weights[agent % width]
    allowed = enter_rows[None, :] | source
    reached = source.copy()
    steps = [np.zeros_like(source) for _ in range(4)]  # up, down, left, right
    while True:
        ok_up = np.zeros_like(reached)
        ok_up[:, 1:] = reached[:, :-1]  # the cell above is reached
        ok_down = np.zeros_like(reached)
        ok_down[:, :-1] = reached[:, 1:]
        ok_left = (reached << np.uint64(1)) & full
        ok_right = reached >> np.uint64(1)
        new = (ok_up | ok_down | ok_left | ok_right) & allowed & ~reached
        if not new.any():
            break
        taken = np.zeros_like(new)
        for direction, ok in enumerate((ok_up, ok_down, ok_left, ok_right)):
            chosen = new & ok & ~taken
            steps[direction] |= chosen
            taken |= chosen
        reached |= new
    stay = np.broadcast_to(np.arange(cells), (cells, cells))
    table = stay.copy()
    for direction, offset in enumerate((-width, width, -1, 1)):
        bits = np.unpackbits(steps[direction].view(np.uint8), axis=-1, bitorder="little")
        moves = bits.reshape(cells, height, 64)[:, :, :width].reshape(cells, cells).astype(bool)
        table[moves] = (stay + offset)[moves]
    forbidden = (table == agent[:, None]) & ~can_enter.ravel()[:, None]
    return np.where(forbidden, stay, table).astype(np.int32)


# ---- observation parsing ---------------------------------------------------------------------
def _as_grid(obs: Any) -> np.ndarray:
    """``obs`` as a C-contiguous 2-D ``uint8`` grid, or a ``ValueError`` saying what is wrong."""
    if type(obs) is np.ndarray and obs.dtype == np.uint8 and obs.ndim == 2:
        if obs.size and obs.max() >= NUM_CELL_CODES:
            raise ValueError(
                f"observation holds values outside the cell codes 0..{NUM_CELL_CODES - 1}: max {obs.max()}"
            )
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


def _steps_from(info: Any) -> int:
    if not isinstance(info, dict) or "steps" not in info:
        raise ValueError(
            "the Chase planner needs info['steps'] (the env's step counter) for the enemy's "
            "pace phase and the steps left; pass the info dict the env returned"
        )
    steps = info["steps"]
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 0:
        raise ValueError(f"info['steps'] must be an integer >= 0, got {steps!r}")
    return int(steps)


def _one_cell(data: bytes, code: int, name: str) -> int:
    found = data.count(code)
    if found != 1:
        extra = " (a capture ends the episode)" if code == ENEMY and found == 0 else ""
        raise ValueError(f"observation must hold exactly one {name} cell (code {code}), found {found}{extra}")
    return data.find(code)


def _at_most_one_cell(data: bytes, code: int, name: str) -> int | None:
    found = data.count(code)
    if found > 1:
        raise ValueError(f"observation holds {found} {name} cells (code {code}); expected at most one")
    return data.find(code) if found else None


__all__ = ["BlindChaseExpert", "ChasePlannerExpert", "ChaseSolution"]
