"""The grid-world core every navigation environment (Foraging, Chase, Maze) is built on.

:class:`GridWorldEnv` owns what the tasks share: spaces, action checking, movement against
walls and edges, step counting, truncation, the "episode over" guard, layouts given through
``reset(options={"layout": ...})`` and rendering. A task supplies its layout generator,
its layout checks and its rules (what happens after the agent moves) through a few hooks.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from hrm_gym.core.grid import ACTION_DELTAS, ACTION_NAMES, AGENT, NUM_ACTIONS, NUM_CELL_CODES, WALL, Position
from hrm_gym.core.render import GridRenderer, grid_to_ansi


def check_action(action: Any, n: int, meaning: str) -> int:
    """``action`` as a Python int in ``[0, n)``, or a ``ValueError`` naming it and what is allowed."""
    if type(action) is int:
        value = action
    elif isinstance(action, np.integer):
        value = int(action)
    elif isinstance(action, np.ndarray) and action.size == 1 and action.dtype.kind in "iu":
        value = int(action.reshape(()))
    else:
        raise ValueError(
            f"invalid action {action!r} of type {type(action).__name__}: expected an integer in [0, {n - 1}] ({meaning})"
        )
    if not 0 <= value < n:
        raise ValueError(f"invalid action {value}: expected an integer in [0, {n - 1}] ({meaning})")
    return value


def check_max_steps(max_steps: Any) -> int:
    """``max_steps`` as a Python int >= 1, or a ``ValueError`` naming it: a Python or numpy
    integer is accepted; a bool, a float (even a whole one) or anything else is not, so that a
    value like ``1.7`` is never silently rounded."""
    if isinstance(max_steps, bool) or not isinstance(max_steps, int | np.integer) or max_steps < 1:
        raise ValueError(f"max_steps must be an integer >= 1, got {max_steps!r}")
    return int(max_steps)


def check_finite(value: Any, name: str) -> float:
    """``value`` as a finite float, or a ``ValueError`` naming it: a NaN or infinite reward term
    would spread into every return and loss computed from it."""
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a finite number, got {value!r}") from exc
    if not np.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


class GridWorldEnv(gym.Env):
    """Base class of the grid tasks: an agent moves up/down/left/right on a walled grid.

    Observation: the whole grid, ``Box(0, 5, (H, W), uint8)`` with the cell codes of
    :mod:`hrm_gym.core.grid`. Subclasses implement the ``_`` hooks below.
    """

    metadata = {"render_modes": ["human", "rgb_array", "ansi"], "render_fps": 8}
    _ACTION_MEANING = ", ".join(f"{i} {name}" for i, name in enumerate(ACTION_NAMES))
    #: Keys that ``reset(options=...)`` understands.
    option_keys: frozenset[str] = frozenset({"layout"})

    def __init__(
        self,
        height: int,
        width: int,
        *,
        max_steps: int,
        step_penalty: float = 0.0,
        render_mode: str | None = None,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode={render_mode!r} is not supported; use one of {self.metadata['render_modes']} or None"
            )
        self.height, self.width = int(height), int(width)
        self.max_steps = check_max_steps(max_steps)
        self.step_penalty = check_finite(step_penalty, "step_penalty")
        self.render_mode = render_mode
        self.observation_space = spaces.Box(0, NUM_CELL_CODES - 1, (self.height, self.width), np.uint8)
        self.action_space = spaces.Discrete(NUM_ACTIONS)
        self._layout: np.ndarray | None = None  # static cells: walls, targets (no agent)
        self._passable: np.ndarray | None = None
        self.agent_pos: Position = (0, 0)
        self.steps = 0
        self._episode_over = True
        self._started = False
        self._renderer: GridRenderer | None = None

    # ---- hooks for the task -------------------------------------------------------------
    def _generate_layout(self) -> np.ndarray:
        """A random layout drawn with ``self.np_random`` (cell codes, no agent)."""
        raise NotImplementedError

    def _check_layout(self, layout: Any) -> np.ndarray:
        """Validate a user layout; return it as ``uint8`` or raise ``ValueError``."""
        raise NotImplementedError

    def _start_episode(self, layout: np.ndarray) -> None:
        """Set the task's state from a valid layout (``self._layout`` is already set)."""
        raise NotImplementedError

    def _after_move(self, previous: Position, action: int) -> tuple[float, bool]:
        """Apply the task's rules once the agent has moved: return ``(reward, terminated)``."""
        raise NotImplementedError

    def _info(self) -> dict[str, Any]:
        return {"agent_pos": self.agent_pos, "steps": self.steps}

    def _status(self) -> str:
        return f"step {self.steps}/{self.max_steps}"

    def _carrying(self) -> bool:
        return False

    def _observation(self) -> np.ndarray:
        obs = self._layout.copy()
        obs[self.agent_pos] = AGENT
        return obs

    # ---- Gymnasium API ------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - self.option_keys
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; allowed: {sorted(self.option_keys)}")
        if options.get("layout") is not None:
            layout = self._check_layout(options["layout"])
        else:
            layout = self._generate_layout()
        self._layout = layout.copy()
        self._passable = layout != WALL
        self.steps = 0
        self._start_episode(self._layout)
        self._episode_over = False
        self._started = True
        if self.render_mode == "human":
            self.render()
        return self._observation(), self._info()

    def step(self, action: Any):
        if self._episode_over:
            if not self._started:
                raise RuntimeError("step() called before reset(): call reset() first")
            raise RuntimeError("step() called after the episode ended (terminated or truncated): call reset() first")
        action = check_action(action, NUM_ACTIONS, self._ACTION_MEANING)
        previous = self.agent_pos
        dr, dc = ACTION_DELTAS[action]
        r, c = previous[0] + dr, previous[1] + dc
        if 0 <= r < self.height and 0 <= c < self.width and self._passable[r, c]:
            self.agent_pos = (r, c)
        self.steps += 1
        reward, terminated = self._after_move(previous, action)
        reward -= self.step_penalty
        truncated = not terminated and self.steps >= self.max_steps
        self._episode_over = terminated or truncated
        if self.render_mode == "human":
            self.render()
        return self._observation(), float(reward), terminated, truncated, self._info()

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode= to gym.make")
            return None
        if not self._started:
            raise RuntimeError("render() called before reset(): call reset() first")
        grid = self._observation()
        if self.render_mode == "ansi":
            return grid_to_ansi(grid, self._status())
        if self._renderer is None:
            self._renderer = GridRenderer(self.height, self.width, title=type(self).__name__)
        surface = self._renderer.draw(grid, self._status(), carrying=self._carrying())
        if self.render_mode == "rgb_array":
            return self._renderer.to_rgb(surface)
        self._renderer.show(surface, self.metadata["render_fps"])
        return None

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
