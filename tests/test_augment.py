import gymnasium as gym
import numpy as np
import pytest

from agents.augment import (
    ACTION_PERMUTATIONS,
    NUM_SYMMETRIES,
    random_symmetries,
    transform_action_masks,
    transform_actions,
    transform_grids,
)
from hrm_gym.core.grid import AGENT, find_cells


def test_permutations_are_bijections_and_identity_first():
    assert ACTION_PERMUTATIONS[0].tolist() == [0, 1, 2, 3]
    for perm in ACTION_PERMUTATIONS:
        assert sorted(perm.tolist()) == [0, 1, 2, 3]
    assert len({tuple(p) for p in ACTION_PERMUTATIONS}) == NUM_SYMMETRIES


@pytest.mark.parametrize("k", range(NUM_SYMMETRIES))
def test_transformed_step_matches_transformed_state(k):
    """Stepping the transformed layout with the remapped action lands where the original step,
    transformed, lands: the remap is right for every symmetry and action."""
    env = gym.make("HRMForaging-v0").unwrapped
    obs, info = env.reset(seed=3)
    layout = obs.copy()
    layout[info["nest_pos"]] = 4
    for action in range(4):
        env.reset(options={"layout": layout})
        after, *_ = env.step(action)
        env.reset(options={"layout": transform_grids(layout, k)})
        after_t, *_ = env.step(int(transform_actions(np.array([action]), k)[0]))
        assert find_cells(after_t, AGENT) == find_cells(transform_grids(after, k), AGENT)


def test_masks_follow_actions():
    masks = np.eye(4, dtype=bool)
    for k in range(NUM_SYMMETRIES):
        out = transform_action_masks(masks, k)
        assert np.array_equal(np.argmax(out, axis=1), transform_actions(np.arange(4), k))


def test_random_symmetries_keep_samples_consistent():
    rng = np.random.default_rng(0)
    states = rng.integers(0, 5, size=(64, 6, 6)).astype(np.uint8)
    actions = rng.integers(0, 4, size=64)
    masks = np.eye(4, dtype=bool)[actions]
    s, a, m = random_symmetries(np.random.default_rng(1), states, actions, masks)
    assert np.array_equal(np.argmax(m, axis=1), a)
    assert sorted(s.reshape(64, -1).sum(1).tolist()) == sorted(states.reshape(64, -1).sum(1).tolist())


def test_bad_symmetry_and_shape_raise():
    with pytest.raises(ValueError, match="symmetry index"):
        transform_grids(np.zeros((3, 3)), 8)
    with pytest.raises(ValueError, match="square"):
        transform_grids(np.zeros((3, 4)), 1)
