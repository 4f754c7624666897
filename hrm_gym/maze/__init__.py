"""Maze navigation (``HRMMaze-v0``, ``HRMMaze-Hard-v0``) and the project's one maze generator."""

from hrm_gym.maze.env import HARD_MIN_PATH_LENGTH, HARD_PRESET, HARD_SIZE, MazeEnv
from hrm_gym.maze.generator import (
    ENDPOINTS,
    FAMILIES,
    MazeSpec,
    generate_maze,
    generate_mazes,
    max_path_length,
    maze_solution_mask,
    maze_spec,
    shortest_path_length,
)

__all__ = [
    "ENDPOINTS",
    "FAMILIES",
    "HARD_MIN_PATH_LENGTH",
    "HARD_PRESET",
    "HARD_SIZE",
    "MazeEnv",
    "MazeSpec",
    "generate_maze",
    "generate_mazes",
    "max_path_length",
    "maze_solution_mask",
    "maze_spec",
    "shortest_path_length",
]
