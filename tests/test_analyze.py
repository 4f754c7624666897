"""agents.analyze: the figures on synthetic data, the report of tiny puzzle and policy checkpoints, the GRU baseline."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

from agents import analyze, train_puzzle
from agents.analysis.measure import KEYS, trace_pass
from agents.analysis.metrics import CovarianceSum, forward_residuals, participation_ratio, pearson
from agents.checkpoint import build_policy, save_policy
from agents.hrm import HRMACTv1, losses
from agents.puzzles import get_task
from agents.puzzles.checkpoint import load_checkpoint, save_checkpoint
from agents.puzzles.data import make_dataset
from agents.puzzles.engine import solve_set
from agents.puzzles.models import build_model, hrm_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = [
    "hrm.hidden_size=16", "hrm.num_heads=2", "hrm.expansion=1.0", "hrm.mlp_multiple=16", "hrm.H_cycles=2",
    "hrm.L_cycles=2", "segments=2", "batch_size=4", "eval_every=1000", "warmup_steps=2", "num_threads=1",
    "hrm.forward_dtype=float32", "max_batches=2", "task_params.sizes=[7]",
    "eval_sets=[{name: m7, params: {sizes: [7]}, n: 4, val_n: 4, segments: [2]}]",
]  # fmt: skip
TINY_POLICY = {"hidden_size": 16, "num_heads": 2, "halt_max_steps": 2, "H_cycles": 1, "L_cycles": 2}
PNGS = {"convergence", "participation_ratio", "per_segment", "halting_histogram", "q_halt", "halting_difficulty",
        "inference_scaling"}  # fmt: skip


@pytest.fixture(scope="module")
def puzzle_run(tmp_path_factory):
    """A maze run of the puzzle trainer: tiny config, 2 batches."""
    root = tmp_path_factory.mktemp("puzzle")
    argv = ["--config", "configs/maze_hrm.yaml", "--out", str(root / "run"), "--no-progress"]
    for item in (f"data_dir={root / 'data'}", *TINY):
        argv += ["--set", item]
    assert train_puzzle.main(argv) == 0
    return root / "run"


def tiny_gru(grid=(7, 7)):
    cfg = hrm_config("gru", {"hidden_size": 8, "H_cycles": 1, "L_cycles": 3, "forward_dtype": "float32"},
                     vocab_size=6, vocab_out=2, aux_vocab=0, grid=grid, segments=2)  # fmt: skip
    return build_model("gru", cfg)


# ---- the figures -------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3, 7])
def test_participation_ratio_of_isotropic_data_in_a_k_dim_subspace_is_k(k):
    rng = np.random.default_rng(k)
    basis, _ = np.linalg.qr(rng.standard_normal((32, k)))  # k orthonormal directions in 32 dims
    states = rng.standard_normal((40_000, k)) @ basis.T + 5.0  # an offset: the covariance removes it
    assert participation_ratio(states) == pytest.approx(k, rel=0.03)
    summed = CovarianceSum()
    for part in np.array_split(states, 7):  # batch by batch, as the analysis adds states
        summed.add(torch.as_tensor(part))
    assert summed.participation_ratio() == pytest.approx(participation_ratio(states), rel=1e-9)


def test_participation_ratio_of_constant_states_is_undefined_and_pearson_of_a_constant_too():
    assert np.isnan(participation_ratio(np.ones((10, 4))))
    assert pearson([1, 1, 1], [1, 2, 3]) is None and pearson([1, 2, 3], [2, 4, 7]) > 0.9


def test_forward_residuals_of_a_toy_contracting_recurrence():
    fixed, z = torch.full((2, 5), 3.0), torch.zeros(2, 5)
    states = []
    for _ in range(6):  # z <- fixed + 0.5 (z - fixed): the distance to the fixed point halves each step
        z = fixed + 0.5 * (z - fixed)
        states.append(z.clone())
    residuals = forward_residuals(torch.stack(states))
    assert residuals.shape == (5, 2)
    expected = [(0.5**t * 3 * 0.5) / (3 - 3 * 0.5**t) for t in range(1, 6)]  # ||z_t - z_(t-1)|| / ||z_(t-1)||
    assert residuals[:, 0].tolist() == pytest.approx(expected, rel=1e-5)
    assert (residuals[1:] < residuals[:-1]).all()


def test_trace_pass_of_a_tiny_hrm_has_a_residual_per_step_across_segments():
    torch.manual_seed(0)
    model = HRMACTv1({"vocab_size": 4, "seq_len": 6, "hidden_size": 8, "num_heads": 2, "H_cycles": 2, "L_cycles": 3,
                      "H_layers": 1, "L_layers": 1, "halt_max_steps": 3, "vocab_out": 4}).eval()  # fmt: skip
    stats = trace_pass(model, torch.randint(0, 4, (5, 6)), segments=3, batch_size=2)
    assert len(stats.residual_L) == 3 * 2 * 3 - 1 and len(stats.residual_H) == 3 * 2 - 1
    assert stats.H_step == [2, 5, 8, 11, 14, 17] and stats.steps_per_segment == 6
    assert len(stats.segment_logits) == 3 and stats.segment_logits[0].shape == (5, 6, 4)
    assert (stats.residual_L > 0).all() and 1 <= stats.pr_H <= 8 and 1 <= stats.pr_L <= 8


# ---- the report --------------------------------------------------------------------------
def test_puzzle_report_with_a_gru_control_and_the_engines_own_scores(puzzle_run, tmp_path, capsys):
    task = get_task("maze")
    mazes = make_dataset(task, task.check_params({"sizes": [7]}), 6, seed=5)
    np.savez(tmp_path / "mazes.npz", layouts=mazes["inputs"])
    save_checkpoint(tmp_path / "gru", tiny_gru(), "gru", task, task.check_params({}), {"task": "maze"})
    out = tmp_path / "out"
    argv = ["--checkpoint", str(puzzle_run), "--layouts", str(tmp_path / "mazes.npz"), "--out", str(out),
            "--control", str(tmp_path / "gru"), "--scaling", "2", "--num-threads", "1"]  # fmt: skip
    assert analyze.main(argv) == 0
    result = json.loads((out / "analysis.json").read_text())
    assert tuple(result) == KEYS
    report = (out / "report.md").read_text()
    assert {p.stem for p in out.glob("*.png")} == PNGS and all(f"]({name}.png)" in report for name in PNGS)
    # The answer after the last trained segment scores as the engine scores the same mazes.
    model, _, _ = load_checkpoint(puzzle_run)
    engine = solve_set(model, task, mazes["inputs"], mazes["labels"], segments=2, halt="max").summary()
    last = result["per_segment"][-1]
    for key in ("exact_accuracy", "valid_rate", "cell_accuracy"):
        assert last[key] == pytest.approx(engine[key])
        assert result["inference_scaling"][0][key] == pytest.approx(engine[key])
    assert [row["segments"] for row in result["inference_scaling"]] == [2, 4] and len(result["per_segment"]) == 2
    conv = result["convergence"]
    assert len(conv["L"]) == 2 * 2 * 2 - 1 and len(conv["H"]) == 2 * 2 - 1
    assert conv["control"]["label"] == "maze puzzle model (gru)" and len(conv["control"]["L"]) == 2 * 3 - 1
    pr = result["participation_ratio"]
    assert pr["ratio"] == pytest.approx(pr["H"] / pr["L"]) and pr["untrained_ratio"] > 0
    halting = result["halting"]
    assert sum(halting["histogram"].values()) == 6 and halting["difficulty"] == "path_length"
    assert set(halting["correlations"]) == {"path_length", "detour"} and len(halting["q_halt_probability"]) == 2
    assert result["params"]["total"] == sum(p.numel() for p in model.parameters()) and result["flops_per_decision"] > 0
    assert "wrote" in capsys.readouterr().out


def test_policy_report_of_a_tiny_bc_checkpoint_scores_the_policys_own_greedy_actions(tmp_path):
    torch.manual_seed(0)
    env = gym.make("HRMForaging-v0")
    policy = build_policy(env, "hrm", {"hrm_config": TINY_POLICY})
    save_policy(tmp_path / "bc", policy, "HRMForaging-v0", {}, extra={"source": "bc"}, sb3_zip=False)
    result = analyze.analyze(tmp_path / "bc", n=12, scaling=2)  # default out: DIR/analysis
    out = tmp_path / "bc" / "analysis"
    assert tuple(json.loads((out / "analysis.json").read_text())) == KEYS and (out / "report.md").is_file()
    assert {p.stem for p in out.glob("*.png")} == PNGS
    assert result["halting"]["difficulty"] == "steps_left" and "hrm.H_level" in result["params"]
    from agents.analysis.subjects import expert_states

    states = expert_states("HRMForaging-v0", {}, 12, 12345)
    policy.set_training_mode(False)
    actions, _ = policy.greedy_actions(torch.as_tensor(states["grids"]), views=1)
    optimal = states["optimal"][np.arange(12), actions.numpy()].mean()
    assert result["per_segment"][-1]["optimal_action_rate"] == pytest.approx(optimal)


def test_an_mlp_policy_gets_the_message_and_the_parts_that_apply(tmp_path, capsys):
    save_policy(tmp_path, build_policy(gym.make("HRMForaging-v0"), "mlp", {"net_arch": [8]}), "HRMForaging-v0", {},
                sb3_zip=False)  # fmt: skip
    assert analyze.main(["--checkpoint", str(tmp_path), "--num-threads", "1"]) == 0
    assert "no reasoning model" in capsys.readouterr().out
    result = json.loads((tmp_path / "analysis" / "analysis.json").read_text())
    assert tuple(result) == KEYS and result["params"]["total"] > 0 and result["flops_per_decision"] > 0
    assert all(result[key] is None for key in KEYS[:5])
    assert "SB3 MlpPolicy checkpoint: it has no reasoning model" in (tmp_path / "analysis" / "report.md").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--checkpoint", "/no/such/run"], "no checkpoint at /no/such/run"),
        (["--checkpoint", "pretrained:nothing"], "unknown agent"),
        (["--checkpoint", "RUN", "--env", "HRMMaze-v0"], "--env picks the env of a policy checkpoint"),
        (["--checkpoint", "RUN", "--layouts", "/no/file.npz"], "no puzzle file"),
        (["--checkpoint", "RUN", "--n", "0"], "--n: 0 is not allowed"),
        (["--checkpoint", "RUN", "--out", "RUN/model.pt"], "is a file, not a directory"),
    ],
)
def test_bad_inputs_are_one_line_errors(puzzle_run, argv, message, capsys):
    argv = [a.replace("RUN", str(puzzle_run)) for a in argv] + ["--num-threads", "1"]
    assert analyze.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_a_shipped_agent_needs_out():
    from agents.analysis.subjects import AnalysisError

    with pytest.raises(AnalysisError, match="give --out DIR"):
        analyze.output_dir("pretrained:anything", None)


# ---- the GRU baseline --------------------------------------------------------------------
def test_gru_trains_a_few_steps_with_deep_supervision():
    torch.manual_seed(0)
    model = tiny_gru()
    task = get_task("maze")
    data = make_dataset(task, task.check_params({"sizes": [7]}), 8, seed=1)
    batch = {"inputs": torch.as_tensor(data["inputs"].astype(np.int64)), "labels": torch.as_tensor(data["labels"])}
    head = losses.ACTLossHead(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-2)
    before = [p.detach().clone() for p in model.parameters()]
    first = losses.deep_supervision_pass(head, batch, [optimizer])
    for _ in range(6):
        last = losses.deep_supervision_pass(head, batch, [optimizer])
    assert first["segments"] == 2 and last["loss"] < first["loss"]
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    trace = model.reason({"inputs": batch["inputs"]}, use_q_halt=False, trace=True).trace
    assert trace["z_H"].shape == (2 * 3, 8, 49, 8) and torch.equal(trace["z_H"], trace["z_L"])


@pytest.mark.parametrize("backprop, grads", [("one_step", 1), ("last_cycle", 3), ("full", 6)])
def test_gru_differentiates_the_steps_backprop_says(backprop, grads):
    cfg = hrm_config("gru", {"hidden_size": 4, "H_cycles": 2, "L_cycles": 3, "backprop": backprop},
                     vocab_size=6, vocab_out=2, aux_vocab=0, grid=(5, 5), segments=1)  # fmt: skip
    model = build_model("gru", cfg)
    calls = []
    model.candidate.register_forward_hook(lambda m, i, o: calls.append(o.requires_grad))
    carry = model.initial_carry({"inputs": torch.zeros(1, 5, 5, dtype=torch.long)})
    model(carry, {"inputs": torch.zeros(1, 5, 5, dtype=torch.long)})
    assert sum(calls) == grads and len(calls) == 6


def test_gru_has_about_the_parameters_of_the_hrm_maze_config():
    config = yaml.safe_load(Path("configs/maze_hrm.yaml").read_text())
    keys = {**config["hrm"], "block": config["block"], "forward_dtype": "float32"}
    sizes = {}
    for kind in ("hrm", "gru"):
        cfg = hrm_config(kind, keys, vocab_size=6, vocab_out=2, aux_vocab=7, grid=(15, 15), segments=4)
        sizes[kind] = sum(p.numel() for p in build_model(kind, cfg).parameters())
    assert sizes["gru"] == pytest.approx(sizes["hrm"], rel=0.05)


def model_choices() -> tuple:
    return typing.get_args(typing.get_type_hints(train_puzzle.PuzzleTrainConfig)["model"])


@pytest.mark.skipif("gru" not in model_choices(), reason="the trainer's model setting does not list 'gru' yet")
def test_the_puzzle_trainer_trains_the_gru(tmp_path):
    argv = ["--config", "configs/maze_hrm.yaml", "--out", str(tmp_path / "gru"), "--no-progress"]
    for item in (f"data_dir={tmp_path / 'data'}", "model=gru", *TINY):
        argv += ["--set", item]
    assert train_puzzle.main(argv) == 0
    model, _, record = load_checkpoint(tmp_path / "gru")
    assert record["model"] == "gru" and type(model).__name__ == "ConvGRUNet"
