"""The interface every expert implements, so dataset generation and evaluation treat them alike."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np


class Expert(ABC):
    """An optimal policy that acts from what the environment returns.

    ``obs`` is the observation; ``info`` is the env's info dict, read only for facts the grid
    cannot show (each expert documents which, e.g. the Chase step counter for the enemy's pace).
    Experts are deterministic: the same ``(obs, info)`` always gives the same action.
    """

    #: Size of the action space the expert acts in.
    n_actions: int

    @abstractmethod
    def act(self, obs: np.ndarray, info: dict[str, Any]) -> int:
        """The expert's action (the documented tie-break among optimal actions)."""

    @abstractmethod
    def optimal_actions(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        """``bool`` array of shape ``(n_actions,)``: True for every optimal action."""

    def reset(self) -> None:  # noqa: B027  (optional hook)
        """Called at the start of every episode; experts with per-episode caches clear them."""
