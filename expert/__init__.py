"""Optimal experts for every hrm-gym environment, and trajectory datasets made with them.

Depends on ``hrm_gym`` and numpy only (no torch).
"""

from __future__ import annotations

import importlib

from expert.base import Expert

#: env id -> "module:factory"; the factory takes the env's kwargs and returns an Expert.
EXPERTS: dict[str, str] = {
    "HRMForaging-v0": "expert.grid:ForagingExpert",
    "HRMMaze-v0": "expert.grid:MazeExpert",
    "HRMMaze-Hard-v0": "expert.grid:MazeExpert",
    "HRMForagingChase-v0": "expert.chase:ChasePlannerExpert",
    "HRMSudoku-v0": "expert.sudoku:SudokuExpert",
}


def make_expert(env_id: str, **env_kwargs) -> Expert:
    """The expert for ``env_id`` built for an env made with ``env_kwargs``."""
    if env_id not in EXPERTS:
        raise ValueError(f"no expert for env {env_id!r}; experts exist for {sorted(EXPERTS)}")
    module_name, factory = EXPERTS[env_id].split(":")
    return getattr(importlib.import_module(module_name), factory)(**env_kwargs)


__all__ = ["EXPERTS", "Expert", "make_expert"]
