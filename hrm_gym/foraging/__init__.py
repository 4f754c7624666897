"""Foraging and Foraging-with-a-chasing-enemy."""

from hrm_gym.foraging.env import ForagingEnv
from hrm_gym.foraging.generator import generate_foraging_layout

__all__ = ["ForagingEnv", "generate_foraging_layout"]
