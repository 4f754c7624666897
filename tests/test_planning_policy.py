"""The planning HRM policy: full-resolution conv trunk read at any grid size, ACT segments, the
per-cell next-move target in BC, and the plan carried from one decision to the next."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import bc
from agents.checkpoint import build_policy
from agents.config import ConfigError, load_config
from agents.evaluate import CarriedPlan, run_episodes
from agents.evaluate import main as evaluate_main
from agents.hrm import HRMACTv1
from agents.policy import planned_route
from agents.puzzles.maze import next_move_classes
from agents.render import main as render_main
from hrm_gym.core.grid import AGENT, EMPTY, GOAL, NEST, WALL

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PLAN_CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "maze_plan_bc.yaml")
TINY_PLAN = {
    "patch_size": 1, "block": "conv", "pos_encodings": "none", "pool": "agent", "hidden_size": 16,
    "num_heads": 2, "expansion": 1.0, "mlp_multiple": 16, "H_cycles": 2, "L_cycles": 2, "halt_max_steps": 3,
    "q_target": "none", "forward_dtype": "float32",
}  # fmt: skip
TINY_RUN = [
    "env_kwargs={size: 9}", "episodes=16", "val_episodes=4", "batch_size=8", "max_batches=4", "eval_every=2",
    "val_states=32", "val_rollouts=2", "test_episodes=2", "checkpoint_every=2", "dagger_rounds=0",
    "model.hidden_size=16", "model.num_heads=2", "model.mlp_multiple=16", "model.H_cycles=1", "model.L_cycles=2",
    "model.halt_max_steps=2", "model.forward_dtype=float32", "num_threads=1", "coverage_per_layout=1",
]  # fmt: skip


def plan_policy(size: int = 9, **changes):
    torch.manual_seed(0)
    return build_policy(gym.make("HRMMaze-v0", size=size), "hrm", {"hrm_config": {**TINY_PLAN, **changes}})


def maze_observations(size: int, n: int, seed: int = 0) -> np.ndarray:
    env = gym.make("HRMMaze-v0", size=size)
    return np.stack([env.reset(seed=seed + i)[0] for i in range(n)])


@pytest.mark.parametrize("size", [9, 15, 21])
def test_a_trunk_built_for_9x9_mazes_decides_on_any_size_within_its_act_maximum(size):
    policy = plan_policy(9)
    policy.set_training_mode(False)
    obs = torch.as_tensor(maze_observations(size, 3))
    with torch.no_grad():
        actions, steps = policy.greedy_actions(obs, 1)
        assert actions.shape == (3,) and bool(((actions >= 0) & (actions < 4)).all())
        assert bool(((steps >= 1) & (steps <= TINY_PLAN["halt_max_steps"])).all())
        policy.max_segments = 7  # thinking longer at test time
        policy.greedy_actions(obs, 1)
        assert int(policy.last_reasoning_steps.max()) <= 7
        # the separate critic reads the training size only; decisions never run it
        assert policy.get_distribution(obs).distribution.probs.shape == (3, 4)


def test_reasoning_from_carried_states_continues_where_the_last_decision_stopped():
    torch.manual_seed(0)
    cfg = {**TINY_PLAN, "vocab_size": 6, "grid_height": 9, "grid_width": 9, "head": "action", "eval_halt": "max"}
    model = HRMACTv1(cfg)
    batch = {"inputs": torch.as_tensor(maze_observations(9, 4)).long()}
    with torch.no_grad():
        three = model.reason(batch, max_segments=3, keep_state=True)
        fresh = model.reason(batch, max_segments=3, start=model.initial_state(batch))
        one_more = model.reason(batch, max_segments=1, start=three.state, keep_state=True)
        four = model.reason(batch, max_segments=4)
    torch.testing.assert_close(fresh.outputs["logits"], three.outputs["logits"])
    torch.testing.assert_close(one_more.outputs["logits"], four.outputs["logits"])
    assert one_more.state.z_H.shape == (4, 81, 16) and not one_more.state.z_H.requires_grad
    with pytest.raises(ValueError, match="start states must be"):
        model.reason(batch, start=model.initial_state({"inputs": batch["inputs"][:2]}))


def test_the_carried_plan_is_kept_per_episode_and_dropped_when_it_ends():
    policy = plan_policy(9)
    policy.set_training_mode(False)
    carried = CarriedPlan(policy)
    obs = maze_observations(9, 2)
    carried(obs, [5, 6])
    first = carried.states[5][0].clone()
    carried(obs[:1], [5])
    assert not torch.equal(carried.states[5][0], first)  # refined from where it stopped
    carried.end_episode(5)
    assert set(carried.states) == {6}
    with pytest.raises(ValueError, match="views must be 1"):
        policy.greedy_actions(torch.as_tensor(obs), 8, start=policy.fresh_state(torch.as_tensor(obs)))
    report = run_episodes(CarriedPlan(policy), "HRMMaze-v0", {"size": 9, "max_steps": 6}, seeds=[1, 2])
    assert report["episodes"] == 2 and 1 <= report["mean_reasoning_steps"] <= TINY_PLAN["halt_max_steps"]


def test_next_move_targets_point_along_the_shortest_path():
    grid = np.full((5, 5), WALL, dtype=np.uint8)
    grid[1, 1:4] = 0
    grid[1:4, 3] = 0
    grid[1, 1], grid[3, 3] = AGENT, GOAL
    targets = bc.next_move_targets(torch.as_tensor(grid[None]).float())[0].numpy()
    assert targets[1, 1] == 2 + 3 and targets[1, 2] == 2 + 3  # right, right
    assert targets[1, 3] == 2 + 1 and targets[2, 3] == 2 + 1  # down, down
    assert targets[3, 3] == 1 and targets[0, 0] == 0
    np.testing.assert_array_equal(targets, next_move_classes(grid))
    foraging = grid.copy()  # no food on the grid: the target is the nest (the way home)
    foraging[3, 3], foraging[1, 1] = NEST, 0
    foraging[1, 3] = AGENT
    home = bc.next_move_targets(torch.as_tensor(foraging[None]))[0].numpy()
    assert home[3, 3] == 1 and home[1, 3] == 2 + 1 and home[1, 1] == 2 + 3


def test_route_mask_follows_the_expert_moves_from_the_agent_to_the_goal():
    grid = np.full((5, 5), WALL, dtype=np.uint8)
    grid[1, 1:4] = 0
    grid[1:4, 3] = 0
    grid[3, 1:3] = 0  # a dead end off the route
    grid[1, 1], grid[3, 3] = AGENT, GOAL
    targets, route = bc.next_move_targets(torch.as_tensor(grid[None]), with_route=True)
    expected = np.zeros((5, 5), dtype=bool)
    expected[1, 1:4] = True
    expected[1:4, 3] = True
    np.testing.assert_array_equal(route[0].numpy(), expected)
    assert not route[0, 3, 1] and targets[0, 3, 1] == 2 + 3  # the dead end has a move, not on the route
    cut = grid.copy()
    cut[2, 3] = WALL  # the goal cut off: the route is the agent's cell alone
    assert planned_route(cut, next_move_classes(cut)).sum() == 1


def test_route_halting_target_asks_for_the_whole_route_not_only_the_first_move():
    from agents.hrm.losses import ACTLossHead

    policy = plan_policy(9, aux_vocab_out=bc.NEXT_MOVE_CLASSES)
    obs = torch.as_tensor(maze_observations(9, 6)).float()
    aux, route = bc.next_move_targets(obs, with_route=True)
    batch = {"inputs": policy.tokens(obs), "aux": aux, "route": route}
    batch["labels"] = aux[route & (obs == AGENT)].long() - 2  # the expert's move at the agent's cell
    plain = ACTLossHead(policy.hrm, aux_label_key="aux", aux_weight=0.5)
    routed = ACTLossHead(policy.hrm, aux_label_key="aux", aux_weight=0.5, halt_mask_key="route")
    policy.hrm.eval()
    with torch.no_grad():
        _, _, _, out, _ = plain(plain.initial_carry(batch), batch)
        moves = out["aux_logits"].argmax(-1).reshape(aux.shape)
        route_right = ((moves == aux) | ~route).flatten(1).all(-1)
        for head, want in ((plain, out["row_exact"]), (routed, out["row_exact"] & route_right)):
            _, _, metrics, result, _ = head(head.initial_carry(batch), batch)
            q_says_halt = result["q_halt_logits"] >= 0
            assert torch.equal(result["row_q_halt_correct"], q_says_halt == want)
    with pytest.raises(ValueError, match="halt mask"):
        no_route = {k: v for k, v in batch.items() if k != "route"}
        routed(routed.initial_carry(no_route), no_route)


def test_carry_across_batches_runs_one_segment_a_batch_and_keeps_rows_until_they_halt():
    policy = plan_policy(9, aux_vocab_out=bc.NEXT_MOVE_CLASSES, halt_exploration_prob=0.0)
    first = torch.as_tensor(maze_observations(9, 4, seed=0)).float()
    second = torch.as_tensor(maze_observations(9, 4, seed=10)).float()
    acts = torch.zeros(4, dtype=torch.long)
    loss = bc.DeepSupervisionLoss(0.5, 0.5, "route", carry_across_batches=True)  # Q starts at "go on"
    halted_after, started = [], []
    for obs in (first, second, second, second):
        metrics = loss(policy, obs, acts)
        carry = loss._carries[id(policy)]
        halted_after.append(float(metrics.segments))
        started.append(loss.take_started())
        if len(halted_after) < 3:  # still reasoning on the first batch's states, whatever arrives
            assert torch.equal(carry.current_data["inputs"], policy.tokens(first))
    assert halted_after == [0.0, 0.0, 3.0, 0.0]  # halt_max_steps = 3: every row halts on the third batch
    assert started == [4, 0, 0, 4]  # new states enter only where rows halted
    assert torch.equal(carry.current_data["inputs"], policy.tokens(second))  # then restarts on new states
    assert torch.isfinite(metrics.loss) and metrics.loss.requires_grad


def test_q_source_agent_reads_the_q_head_at_the_agents_cell():
    policy = plan_policy(9, q_source="agent")
    obs = torch.as_tensor(maze_observations(9, 3)).float()
    batch = {"inputs": policy.tokens(obs)}
    with torch.no_grad():
        torch.nn.init.normal_(policy.hrm.q_head.weight)
        _, out = policy.hrm(policy.hrm.initial_carry(batch), batch)
        expected = policy.hrm.q_head(out["features"]).float()  # pool="agent": the agent's cell state
    torch.testing.assert_close(out["q_halt_logits"], expected[:, 0])
    with pytest.raises(ValueError, match="q_source"):
        HRMACTv1Config = type(policy.hrm.config)
        HRMACTv1Config(batch_size=1, seq_len=9, vocab_size=6, q_source="agent")


def test_a_higher_halt_threshold_thinks_at_least_as_long():
    from agents.evaluate import set_halt_threshold

    policy = plan_policy(9, halt_max_steps=6)
    policy.set_training_mode(False)
    obs = torch.as_tensor(maze_observations(9, 8)).float()
    with torch.no_grad():
        torch.nn.init.normal_(policy.hrm.q_head.weight, std=0.5)
        policy.hrm.q_head.bias.zero_()
    used = {}
    for threshold in (0.05, 0.5, 0.95):
        set_halt_threshold(policy, threshold)
        with torch.no_grad():
            _, used[threshold] = policy.greedy_actions(obs)
    assert (used[0.05] <= used[0.5]).all() and (used[0.5] <= used[0.95]).all()
    assert used[0.05].float().mean() < used[0.95].float().mean()
    for bad in (0.0, 1.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="halt_threshold"):
            set_halt_threshold(policy, bad)


def test_halt_target_is_checked(tmp_path):
    for change, match in (({"halt_target": "route", "aux_weight": 0.0}, "aux_weight > 0"),
                          ({"halt_target": "plan"}, "halt_target")):  # fmt: skip
        config = load_config(bc.BCConfig, PLAN_CONFIG)
        for key, value in change.items():
            setattr(config, key, value)
        with pytest.raises(ConfigError, match=match):
            bc.check_config(config)


def test_aux_weight_is_refused_where_no_single_goal_defines_it(tmp_path):
    base = load_config(bc.BCConfig, PLAN_CONFIG)
    for change in ({"env_id": "HRMSudoku-v0", "env_kwargs": {}}, {"aux_weight": -1.0},
                   {"mix_env_id": "HRMForagingChase-v0", "mix_episodes": 2}):  # fmt: skip
        config = load_config(bc.BCConfig, PLAN_CONFIG)
        for key, value in change.items():
            setattr(config, key, value)
        with pytest.raises(ConfigError, match="aux_weight"):
            bc.check_config(config)
    bc.check_config(base)
    assert bc.policy_kwargs_for(base)["hrm_config"]["aux_vocab_out"] == bc.NEXT_MOVE_CLASSES


@pytest.fixture(scope="module")
def plan_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("plan")
    out = root / "run"
    overrides = [*TINY_RUN, f"data_dir={root / 'data'}"]
    code = bc.main(["--no-progress", "--config", PLAN_CONFIG, "--out", str(out), *[f"--set={o}" for o in overrides]])
    assert code == 0
    return out


def test_planned_route_follows_the_predicted_moves_from_the_agent():
    grid = np.full((4, 4), EMPTY, dtype=np.uint8)
    grid[0, 0], grid[1, 1], grid[3, 3] = AGENT, WALL, GOAL
    moves = np.full((4, 4), 0)
    moves[0, 0], moves[0, 1], moves[0, 2], moves[0, 3] = 5, 5, 5, 3  # right, right, right, down
    moves[1, 3], moves[2, 3], moves[3, 3] = 3, 3, 1  # down, down, goal
    route = planned_route(grid, moves)
    assert route.sum() == 7 and route[3, 3] and route[0, 3] and not route[1, 1]
    moves[0, 1] = 3  # down into the wall: the route stops before it
    assert planned_route(grid, moves).sum() == 2
    moves[0, 1] = 4  # left, back to the agent: a cycle ends the route
    assert planned_route(grid, moves).sum() == 2


def test_render_shades_the_planned_route_with_a_carried_plan(plan_run, tmp_path, capsys):
    gif = tmp_path / "plan.gif"
    argv = ["--checkpoint", str(plan_run), "--env-kwargs", '{"size": 13, "max_steps": 4}', "--episodes", "1",
            "--carry-plan", "--max-segments", "2", "--gif", str(gif)]  # fmt: skip
    assert render_main(argv) == 0
    assert gif.read_bytes().startswith(b"GIF") and "carried plan" in capsys.readouterr().out
    assert render_main([*argv[:-2], "--loop-escape", "--gif", str(tmp_path / "x.gif")]) == 2
    assert "pick one" in capsys.readouterr().err


def test_planning_bc_trains_with_the_per_cell_target_and_evaluates_on_larger_mazes(plan_run, capsys):
    out = plan_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["batches"] == 4 and metrics["config"]["aux_weight"] == 0.5
    capsys.readouterr()
    argv = ["--checkpoint", str(out), "--env-kwargs", '{"size": 15, "max_steps": 5}', "--episodes", "2", "--json"]
    assert evaluate_main([*argv, "--max-segments", "3", "--carry-plan"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["episodes"] == 2 and 1 <= report["mean_reasoning_steps"] <= 3
    with pytest.raises(SystemExit):
        evaluate_main([*argv, "--carry-plan", "--loop-escape"])
    assert "--carry-plan decides on the observation alone" in capsys.readouterr().err


def test_maze_navigation_benchmark_reports_every_size_segment_maximum_and_rule(plan_run, capsys):
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "maze_navigation.py"
    spec = importlib.util.spec_from_file_location("maze_navigation", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    argv = ["--checkpoint", str(plan_run), "--sizes", "7", "11", "--episodes", "1", "--max-segments", "1", "2",
            "--num-threads", "1"]  # fmt: skip
    assert bench.main(argv) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    assert [(r["size"], r["max_segments"], r["rule"]) for r in rows] == [
        (size, most, rule) for size in (7, 11) for most in (1, 2) for rule in ("fresh", "carried")
    ]
    for row in rows:
        assert 1 <= row["mean_segments"] <= row["max_segments"] and row["decisions"] >= 1
    assert bench.correlation([1, 2, 3], [2, 4, 7]) > 0.9 and bench.correlation([1, 1], [2, 3]) is None
    assert bench.main([*argv[:4], "--episodes", "1", "--max-segments", "2", "--rules", "fresh", "--halt", "max"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    assert [r["mean_segments"] for r in rows] == [2.0]  # every decision runs the maximum
