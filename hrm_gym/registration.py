"""Registration of every hrm-gym environment with Gymnasium.

Kept free of heavy imports: Gymnasium calls :func:`register_envs` through the
``gymnasium.envs`` entry point while it is still importing itself, so the entry
points below are strings, resolved only when an environment is made.
"""

from __future__ import annotations

#: Every environment id this package registers, with its entry point and default kwargs.
ENV_SPECS: dict[str, dict] = {
    "HRMForaging-v0": {"entry_point": "hrm_gym.foraging.env:ForagingEnv", "kwargs": {}},
    "HRMForagingChase-v0": {"entry_point": "hrm_gym.foraging.chase:ForagingChaseEnv", "kwargs": {}},
    "HRMMaze-v0": {"entry_point": "hrm_gym.maze.env:MazeEnv", "kwargs": {}},
    # Maze-Hard as the HRM paper defines it: 30x30 random-obstacle grids, shortest path >= 111 moves
    # (hrm_gym.maze.env.HARD_PRESET states the rule and its source).
    "HRMMaze-Hard-v0": {"entry_point": "hrm_gym.maze.env:MazeEnv", "kwargs": {"hard": True}},
    "HRMSudoku-v0": {"entry_point": "hrm_gym.sudoku.env:SudokuEnv", "kwargs": {}},
}


def register_envs() -> None:
    """Register every hrm-gym environment; calling it twice is harmless."""
    # Imported here, not at the top: Gymnasium calls this function while importing itself.
    from gymnasium.envs.registration import register, registry

    for env_id, spec in ENV_SPECS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=spec["entry_point"], kwargs=dict(spec["kwargs"]))
