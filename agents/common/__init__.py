"""The run layer every trainer shares: run directories, resume checkpoints, machine facts."""

from agents.common.machine import machine_facts, resolve_device, resolve_dtype, seed_everything
from agents.common.run import RunDirectory, RunError, check_env_id, interrupted_exit

__all__ = [
    "RunDirectory",
    "RunError",
    "check_env_id",
    "interrupted_exit",
    "machine_facts",
    "resolve_device",
    "resolve_dtype",
    "seed_everything",
]
