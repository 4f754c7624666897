"""Test setup: headless pygame, and every environment registered."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import hrm_gym  # noqa: E402,F401  (registers the environments)
