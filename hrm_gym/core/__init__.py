"""Shared grid core: cell codes, movement, BFS distances, the base environment, rendering."""

from hrm_gym.core.grid import *  # noqa: F403
