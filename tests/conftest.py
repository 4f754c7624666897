"""Test setup: headless pygame, and every environment registered."""

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import pytest  # noqa: E402

import hrm_gym  # noqa: E402,F401  (registers the environments)


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test: tiny models gain nothing from a second thread, and on a busy
    machine the sync between threads costs more than the work; the setting is restored after."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
