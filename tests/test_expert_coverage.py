"""Coverage states: every one is a state the env can reach, labelled as the expert labels it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import hrm_gym  # noqa: F401
from expert import make_expert
from expert.coverage import coverage_states
from hrm_gym.core.grid import AGENT, FOOD

# 8x8 Foraging layout: nest (4) top left, food (3) at the mouth of a dead end (the two cells
# right of it can only be reached through the food, so only on the way back), a cut-off pocket
# bottom right that no state may use.
LAYOUT = np.array(
    [
        [4, 0, 0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 1, 1, 1, 0],
        [0, 0, 0, 0, 3, 0, 0, 1],
        [0, 1, 1, 1, 1, 1, 1, 1],
        [0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 1, 0, 0, 0, 0],
        [0, 0, 0, 1, 0, 1, 1, 1],
        [0, 0, 0, 1, 0, 1, 0, 0],
    ],
    dtype=np.uint8,
)


def reachable_states(env_id: str, layout: np.ndarray, **env_kwargs) -> set[bytes]:
    """Every non-terminal observation the env reaches from ``layout``, by replaying action paths."""
    env = gym.make(env_id, max_steps=1000, **env_kwargs).unwrapped
    start, _ = env.reset(seed=0, options={"layout": layout})
    seen, frontier = {start.tobytes(): []}, [[]]
    while frontier:
        new_frontier = []
        for path in frontier:
            for action in range(4):
                env.reset(seed=0, options={"layout": layout})
                for step in path:
                    env.step(step)
                obs, _, terminated, _, _ = env.step(action)
                if not terminated and obs.tobytes() not in seen:
                    seen[obs.tobytes()] = path + [action]
                    new_frontier.append(path + [action])
        frontier = new_frontier
    return set(seen)


def first_observation(env_id: str, layout: np.ndarray, **env_kwargs) -> np.ndarray:
    obs, _ = gym.make(env_id, **env_kwargs).reset(seed=0, options={"layout": layout})
    return obs


def test_all_cells_give_exactly_the_env_reachable_states_with_expert_labels():
    first = first_observation("HRMForaging-v0", LAYOUT, size=8)
    expert = make_expert("HRMForaging-v0")
    states, actions, masks = coverage_states(first[None], expert, 10_000, np.random.default_rng(0), return_phase=True)
    assert {s.tobytes() for s in states} == reachable_states("HRMForaging-v0", LAYOUT, size=8)
    assert len({s.tobytes() for s in states}) == len(states)  # no duplicates
    for state, action, mask in zip(states, actions, masks):
        assert action == expert.act(state, {})
        assert np.array_equal(mask, expert.optimal_actions(state, {}))
    # both phases are there: food still out, and food collected
    has_food = (states == FOOD).reshape(len(states), -1).any(1)
    assert 0 < has_food.sum() < len(states)


def test_maze_has_one_phase_and_per_layout_caps_each_phase():
    env = gym.make("HRMMaze-v0", size=9)
    layouts = np.stack([env.reset(seed=s)[0] for s in range(5)])
    expert = make_expert("HRMMaze-v0")
    states, _, _ = coverage_states(layouts, expert, 6, np.random.default_rng(1), return_phase=False)
    assert len(states) == 30
    assert ((states == FOOD).reshape(30, -1).sum(1) == 1).all()  # the goal never disappears
    assert ((states == AGENT).reshape(30, -1).sum(1) == 1).all()
    again, _, _ = coverage_states(layouts, expert, 6, np.random.default_rng(1), return_phase=False)
    assert np.array_equal(states, again)  # seeded


def test_bad_inputs_are_refused():
    first = first_observation("HRMForaging-v0", LAYOUT, size=8)
    expert = make_expert("HRMForaging-v0")
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="per_layout must be >= 1"):
        coverage_states(first[None], expert, 0, rng, return_phase=True)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        coverage_states(first, expert, 1, rng, return_phase=True)
    no_food = first.copy()
    no_food[no_food == FOOD] = 0
    with pytest.raises(ValueError, match="layout 0 must hold one agent"):
        coverage_states(no_food[None], expert, 1, rng, return_phase=True)
    with pytest.raises(ValueError, match="grid BFS expert"):
        coverage_states(first[None], make_expert("HRMSudoku-v0"), 1, rng, return_phase=True)


def test_chase_coverage_puts_the_enemy_near_the_agent_and_labels_from_the_grid():
    from expert.coverage import chase_coverage_states
    from hrm_gym.core.grid import ENEMY, NEST, WALL
    from hrm_gym.foraging.chase import enemy_distances, enemy_passable

    env = gym.make("HRMForagingChase-v0").unwrapped
    layouts = np.stack([env.reset(seed=seed)[0] for seed in range(3)])
    planner = make_expert("HRMForagingChase-v0")
    states, actions, masks = chase_coverage_states(layouts, planner, 4, np.random.default_rng(0), enemy_radius=3)
    assert 0 < len(states) <= 3 * 2 * 4
    walls = {layout[layout == WALL].size for layout in layouts}
    for obs, action, mask in zip(states, actions, masks):
        assert (obs == AGENT).sum() == 1 and (obs == ENEMY).sum() == 1
        assert (obs == WALL).sum() in walls
        agent, enemy = (tuple(np.argwhere(obs == code)[0]) for code in (AGENT, ENEMY))
        static = obs.copy()
        static[enemy] = 0
        static[agent] = 0 if (obs == NEST).any() else NEST  # no nest in sight: the agent stands on it
        distance = enemy_distances(enemy_passable(static), agent)[enemy]
        assert 1 <= distance <= 3
        assert mask[action] and action == int(np.flatnonzero(mask)[0])
        assert (action, mask.tolist()) == (planner.grid_label(obs)[0], planner.grid_label(obs)[1].tolist())
        # optimal for at least one pace phase: what the planner does in some hidden phase
        assert any(planner.optimal_actions(obs, {"steps": phase})[action] for phase in range(4))
    again, _, _ = chase_coverage_states(layouts, planner, 4, np.random.default_rng(0), enemy_radius=3)
    assert np.array_equal(states, again)
    with pytest.raises(ValueError, match="Chase planner"):
        chase_coverage_states(layouts, make_expert("HRMForaging-v0"), 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="enemy_radius must be >= 1"):
        chase_coverage_states(layouts, planner, 1, np.random.default_rng(0), enemy_radius=0)
    with pytest.raises(ValueError, match="one enemy cell"):
        chase_coverage_states(layouts[:, :, :] * (layouts != ENEMY), planner, 1, np.random.default_rng(0))
