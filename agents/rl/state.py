"""The typed state of a PPO run, saved as JSON in its resume checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class PPOState:
    """Everything a resumed PPO run needs besides its tensors.

    ``policy_type`` and ``policy_kwargs`` rebuild the policy without the BC run it started from.
    """

    phase: Literal["train", "scratch", "compare", "done"] = "train"
    timesteps: int = 0
    n_updates: int = 0
    train_seconds: float = 0.0
    history: list = field(default_factory=list)
    best: dict | None = None
    last_eval: int = 0
    last_checkpoint: int = 0
    resumes: int = 0
    facts: dict = field(default_factory=dict)
    parameters: int = 0
    policy_type: str = "hrm"
    policy_kwargs: dict = field(default_factory=dict)
    stopped_by: str = "total_timesteps"
