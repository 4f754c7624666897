"""agents.train_puzzle end to end on tiny settings: outputs, controls, resume, paper scale."""

from __future__ import annotations

import json

import pytest
import torch

from agents import train_puzzle
from agents.puzzles.checkpoint import load_checkpoint

TINY = [
    "hrm.hidden_size=16",
    "hrm.num_heads=2",
    "hrm.expansion=1.0",
    "hrm.mlp_multiple=16",
    "hrm.H_cycles=1",
    "hrm.L_cycles=2",
    "segments=2",
    "batch_size=4",
    "eval_every_s=1000",
    "warmup_steps=2",
    "num_threads=1",
    "hrm.forward_dtype=float32",  # the maze config asks for bf16 where the CPU has bf16 units: same dtype on every CPU
]
MAZE_SETS = "eval_sets=[{name: m7, params: {sizes: [7]}, n: 6, val_n: 4, segments: [1, 3]}, {name: m9, params: {sizes: [9]}, n: 4, segments: [2]}]"


def run(tmp_path, name, *overrides, config="configs/maze_hrm.yaml"):
    out = tmp_path / name
    argv = ["--config", config, "--out", str(out), "--no-progress", "--set", f"data_dir={tmp_path / 'data'}"]
    for item in (*TINY, *overrides):
        argv += ["--set", item]
    return train_puzzle.main(argv), out


def test_maze_training_writes_metrics_checkpoint_and_test_table(tmp_path, capsys):
    code, out = run(tmp_path, "hrm", "max_batches=3", "task_params.sizes=[7]", MAZE_SETS, "test_views=2",
                    "test_combine=mean", "progressive_segments=2", "test_moves_readout=true")
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["batches"] == 3 and metrics["model"] == "hrm" and metrics["block"] == "conv"
    assert set(metrics["test"]) == {"m7", "m9"}
    # The maze config's test_pick: confident adds the "p" rows and picks segments for the views row.
    assert set(metrics["test"]["m7"]) == {"1", "3", "1m", "3m", "1p", "3p", "q2", "3pv2"}
    row = metrics["test"]["m7"]["3"]
    assert row["n"] == 6 and row["mean_segments"] == 3.0
    assert {"exact_accuracy", "valid_rate", "cell_accuracy"} <= set(row)
    assert metrics["best_validation"]["n"] == 4
    record = torch.load(out / "model.pt", weights_only=True)  # data only
    assert record["task"] == "maze" and json.loads(record["extra_json"])["test"]
    assert list((out / "tb").iterdir())
    assert "m9" in capsys.readouterr().out


def test_confident_views_have_their_own_test_row(tmp_path):
    code, out = run(tmp_path, "c2", "max_batches=1", "task_params.sizes=[7]", MAZE_SETS, "test_views=2",
                    "test_combine=confident", "test_pick=last")
    assert code == 0
    rows = json.loads((out / "metrics.json").read_text())["test"]["m7"]
    assert "3c2" in rows and "3v2" not in rows and rows["3c2"]["n"] == 6
    assert not any(name.endswith("p") for name in rows)


def test_confident_pick_adds_rows_and_picks_for_the_views_row(tmp_path):
    code, out = run(tmp_path, "p", "max_batches=1", "task_params.sizes=[7]", MAZE_SETS, "test_views=2",
                    "test_combine=confident", "test_pick=confident")
    assert code == 0
    tests = json.loads((out / "metrics.json").read_text())["test"]
    assert set(tests["m7"]) == {"1", "3", "1p", "3p", "q2", "3pc2"}
    assert set(tests["m9"]) == {"2", "2p", "q2", "2pc2"}
    assert tests["m7"]["3p"]["n"] == 6 and tests["m7"]["3p"]["mean_segments"] == 3.0


def test_an_eval_sets_own_views_override_test_views(tmp_path):
    sets = ("eval_sets=[{name: m7, params: {sizes: [7]}, n: 4, val_n: 4, segments: [1, 3]}, "
            "{name: m9, params: {sizes: [9]}, n: 4, segments: [2, 4], views: 2, views_at: 2}]")
    code, out = run(tmp_path, "v", "max_batches=1", "task_params.sizes=[7]", sets, "test_combine=confident",
                    "test_pick=last")
    assert code == 0
    tests = json.loads((out / "metrics.json").read_text())["test"]
    assert set(tests["m7"]) == {"1", "3", "q2"} and set(tests["m9"]) == {"2", "4", "q2", "2c2"}


@pytest.mark.parametrize("bad, message", [
    ("test_views=9", "test_views=9 must be an int 1..8"),
    ("eval_sets=[{name: m7, params: {sizes: [7]}, n: 4, val_n: 4, views: 0}]", r"eval_sets\[0\].views=0 must be"),
])
def test_bad_views_are_refused_before_training(tmp_path, capsys, bad, message):
    import re

    code, out = run(tmp_path, "bad", "max_batches=1", "task_params.sizes=[7]", MAZE_SETS, bad)
    assert code == 2 and not (out / "model.pt").exists()
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.parametrize(
    "model, extra",
    [("transformer", ["block=attention"]), ("deepthinking", ["hrm.L_cycles=3", "hrm.L_layers=1"])],
)
def test_controls_train_with_the_same_command(tmp_path, model, extra):
    code, out = run(tmp_path, model, f"model={model}", "max_batches=2", "task_params.sizes=[7]", MAZE_SETS, *extra)
    assert code == 0
    loaded, task, record = load_checkpoint(out)
    assert record["model"] == model and task.name == "maze"
    if model == "transformer":
        assert (loaded.config.H_cycles, loaded.config.L_cycles, loaded.config.halt_max_steps) == (1, 1, 1)
        assert loaded.config.block == "attention"
        # A one-segment model is validated and tested at its one segment, not the set's 1/3/2.
        metrics = json.loads((out / "metrics.json").read_text())
        assert {name: set(rows) for name, rows in metrics["test"].items()} == {"m7": {"1"}, "m9": {"1"}}
        assert all(row["mean_segments"] == 1 for row in metrics["history"])


def test_resume_continues_where_the_run_stopped(tmp_path):
    code, out = run(tmp_path, "resume", "max_batches=2", "task_params.sizes=[7]", MAZE_SETS, "checkpoint_every=1")
    assert code == 0
    first = json.loads((out / "metrics.json").read_text())
    # Raise the batch budget in the saved config, then resume: training continues from batch 2.
    config = (out / "config.yaml").read_text().replace("max_batches: 2", "max_batches: 4")
    (out / "config.yaml").write_text(config)
    assert train_puzzle.main(["--resume", str(out), "--no-progress"]) == 0
    second = json.loads((out / "metrics.json").read_text())
    assert first["batches"] == 2 and second["batches"] == 4
    assert second["train_samples"] == 16
    assert [h["batch"] for h in second["history"]] == [2, 4]


def test_moving_average_is_what_model_pt_keeps_and_resume_restores(tmp_path):
    code, out = run(tmp_path, "ema", "max_batches=3", "task_params.sizes=[7]", MAZE_SETS, "checkpoint_every=1",
                    "ema_decay=0.5", "lr=0.01")
    assert code == 0
    best, _, _ = load_checkpoint(out)
    last, _, record = load_checkpoint(out, weights="last")
    assert record["path"].endswith("last.pt")
    saved = torch.load(out / "last.pt", weights_only=True)
    averaged = {k.removeprefix("module."): v for k, v in saved["ema"].items() if k.startswith("module.")}
    for name, tensor in best.state_dict().items():  # model.pt holds the average, not the raw weights
        torch.testing.assert_close(tensor, averaged[name])
    assert any(not torch.equal(a, b) for a, b in zip(best.state_dict().values(), last.state_dict().values()))
    final_average, _, record = load_checkpoint(out, weights="last-ema")  # the last validation kept it too
    assert record["path"].endswith("last.pt") and record["weights"] == "last-ema"
    for name, tensor in final_average.state_dict().items():
        torch.testing.assert_close(tensor, averaged[name])
    config = (out / "config.yaml").read_text().replace("max_batches: 3", "max_batches: 4")
    (out / "config.yaml").write_text(config)
    assert train_puzzle.main(["--resume", str(out), "--no-progress"]) == 0
    assert int(torch.load(out / "last.pt", weights_only=True)["ema"]["n_averaged"]) == 4


def test_the_selected_eval_set_validates(tmp_path, capsys):
    sets = ("eval_sets=[{name: m7, params: {sizes: [7]}, n: 4, val_n: 3, segments: [1]}, "
            "{name: m9, params: {sizes: [9]}, n: 4, val_n: 5, segments: [1], select: true}]")
    code, out = run(tmp_path, "sel", "max_batches=1", "task_params.sizes=[7]", sets)
    assert code == 0
    record = torch.load(out / "model.pt", weights_only=True)
    assert json.loads(record["extra_json"])["validation_set"] == "m9"
    assert json.loads((out / "metrics.json").read_text())["best_validation"]["n"] == 5
    two = sets.replace("segments: [1]}, ", "segments: [1], select: true}, ")
    code, _ = run(tmp_path, "sel2", "max_batches=1", "task_params.sizes=[7]", two)
    assert code == 2 and "only one set may have select: true" in capsys.readouterr().err


def test_solve_weights_last_needs_the_resume_file(tmp_path):
    code, out = run(tmp_path, "plain", "max_batches=1", "task_params.sizes=[7]", MAZE_SETS)
    assert code == 0
    (out / "last.pt").unlink()
    with pytest.raises(Exception, match="no last.pt beside"):
        load_checkpoint(out, weights="last")
    with pytest.raises(Exception, match=r"weights must be one of \['best', 'last', 'last-ema'\], got 'final'"):
        load_checkpoint(out, weights="final")
    code, out = run(tmp_path, "no-average", "max_batches=1", "task_params.sizes=[7]", MAZE_SETS, "ema_decay=0")
    assert code == 0
    with pytest.raises(Exception, match="holds no moving average.*use weights='last'"):
        load_checkpoint(out, weights="last-ema")


def test_sudoku_trains_from_a_cached_pool(tmp_path):
    sets = "eval_sets=[{name: e1, params: {mix: [{n_empty: 1}]}, n: 4, val_n: 3, segments: [2]}]"
    code, out = run(tmp_path, "sudoku", "max_batches=2", "train_pool=16", sets, config="configs/sudoku_hrm.yaml")
    assert code == 0
    assert len(list((tmp_path / "data" / "puzzles").glob("sudoku-train-*.npz"))) == 1
    assert json.loads((out / "metrics.json").read_text())["test"]["e1"]["2"]["n"] == 4


def test_paper_scale_runs_a_few_steps_on_cpu(tmp_path):
    sets = "eval_sets=[{name: e1, params: {mix: [{n_empty: 1}]}, n: 2, val_n: 2, segments: [1]}]"
    code, out = run(
        tmp_path, "paper", "scale=paper", "max_batches=1", "segments=1", "batch_size=2", "train_pool=4", sets,
        config="configs/sudoku_hrm.yaml",
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model_config"]["hidden_size"] == 512 and metrics["model_config"]["H_layers"] == 4
    assert metrics["parameters"] > 10_000_000


@pytest.mark.parametrize(
    "override, message",
    [
        ("block=mlp", "block"),
        ("task_params.sizes=[8]", "not allowed"),
        ("model=rnn", "model"),
        ("eval_sets=[]", "eval_sets is empty"),
        ("learning_rate=1", "unknown key"),
        ("ema_decay=1.0", "ema_decay"),
        ("curriculum=[{at: 0.5, sizes: [9]}]", "exactly the keys"),
        ("curriculum=[{at: 1.5, task_params: {sizes: [9]}}]", "curriculum[0].at=1.5"),
        ("curriculum=[{at: 0.5, task_params: {sizes: [9]}}, {at: 0.3, task_params: {sizes: [7]}}]", "curriculum[1].at=0.3"),
        ("curriculum=[{at: 0.5, task_params: {sizes: [8]}}]", "curriculum[0].task_params"),
    ],
)
def test_bad_settings_fail_clearly(tmp_path, capsys, override, message):
    code, _ = run(tmp_path, "bad", override)
    assert code == 2
    assert message in capsys.readouterr().err


def test_the_moves_readout_needs_an_auxiliary_target(tmp_path, capsys):
    code, _ = run(tmp_path, "noaux", "test_moves_readout=true", "aux_weight=0")
    assert code == 2 and "test_moves_readout reads the auxiliary head" in capsys.readouterr().err
    code, _ = run(tmp_path, "sudoku", "test_moves_readout=true", "aux_weight=0.5", config="configs/sudoku_hrm.yaml")
    assert code == 2 and "task 'sudoku' has no readout from its auxiliary head" in capsys.readouterr().err


def test_an_existing_run_is_not_overwritten(tmp_path, capsys):
    code, out = run(tmp_path, "twice", "max_batches=1", "task_params.sizes=[7]", MAZE_SETS)
    assert code == 0
    code, _ = run(tmp_path, "twice", "max_batches=1", "task_params.sizes=[7]", MAZE_SETS)
    assert code == 2 and "--resume" in capsys.readouterr().err


def test_a_validation_tie_goes_to_the_newer_checkpoint():
    from agents.train_puzzle import replaces_best

    assert replaces_best((0.5, 0.4, 0.9), None)
    assert replaces_best((1.0, 1.0, 1.0), (1.0, 1.0, 1.0))  # a tie: the newer weights win
    assert replaces_best((1.0, 0.9, 0.95), (1.0, 0.9, 0.94))
    assert not replaces_best((0.99, 1.0, 1.0), (1.0, 0.0, 0.0))  # valid rate first


def test_curriculum_switches_the_training_params_at_its_fractions():
    from agents.puzzles import get_task
    from agents.train_puzzle import PuzzleTrainConfig, TrainStream, build, check_curriculum

    task = get_task("maze")
    config = PuzzleTrainConfig(task_params={"sizes": [7]}, batch_size=3, hrm={"hidden_size": 16, "num_heads": 2},
                               curriculum=[{"at": 0.25, "task_params": {"sizes": [9]}},
                                           {"at": 0.5, "task_params": {"sizes": [13], "perfect_share": 1.0}}])
    params = task.check_params(config.task_params)
    stages = check_curriculum(task, config)
    stream = TrainStream(task, config, params, stages)
    sides = {p: stream.next(p)["inputs"].shape[-1] for p in (0.0, 0.2, 0.25, 0.49, 0.5, 0.99)}
    assert sides == {0.0: 7, 0.2: 7, 0.25: 9, 0.49: 9, 0.5: 13, 0.99: 13}
    assert stream.params_at(0.6)["perfect_share"] == 1.0 and stream.params_at(0.3)["perfect_share"] != 1.0
    model_config = build(config, task, params, [], stages).config
    assert (model_config.grid_height, model_config.grid_width) == (13, 13)  # the largest stage's side


def test_a_curriculum_run_trains_and_refuses_a_cached_pool(tmp_path, capsys):
    code, out = run(tmp_path, "stages", "max_batches=4", "task_params.sizes=[7]", MAZE_SETS,
                    "curriculum=[{at: 0.5, task_params: {sizes: [9]}}]")
    assert code == 0 and json.loads((out / "metrics.json").read_text())["batches"] == 4
    code, _ = run(tmp_path, "pooled", "max_batches=2", "task_params.sizes=[7]", MAZE_SETS, "train_pool=8",
                  "curriculum=[{at: 0.5, task_params: {sizes: [9]}}]")
    assert code == 2 and "train_pool=0" in capsys.readouterr().err


def test_the_held_out_plan_counts_every_rows_segments():
    from agents.config import resolve_run
    from agents.puzzles import get_task

    config, _, _ = resolve_run(train_puzzle.PuzzleTrainConfig, config_path="configs/maze_hrm.yaml", overrides=[],
                               out="unused", resume=None, default_config=train_puzzle.DEFAULT_CONFIG,
                               default_out=lambda c: "unused")
    maze11, maze21 = train_puzzle.check_eval_sets(get_task("maze"), config)
    # One run to the deepest depth (picks read from it), the Q-halted row, the views row.
    assert train_puzzle.held_out_passes(maze11, config, 4) == 16 + 4
    assert train_puzzle.held_out_passes(maze21, config, 4) == 32 + 4 + 8 * 16
    assert train_puzzle.held_out_passes(maze21, config, 1) == 1 + 8  # the one-pass control


@pytest.mark.parametrize("wall, spent, reserve, expected", [
    (0, 500, 500, 720), (900, 30, 100, 720), (900, 60, 200, 900 - 60 - 220 - 10),
])
def test_the_wall_budget_shrinks_training_only_where_it_must(wall, spent, reserve, expected):
    config = train_puzzle.PuzzleTrainConfig(time_budget_s=720, wall_budget_s=wall)
    assert train_puzzle.training_budget(config, spent, reserve) == pytest.approx(expected)


def test_a_wall_budget_too_small_for_the_test_fails_before_training(tmp_path, capsys):
    with pytest.raises(train_puzzle.ConfigError, match=r"wall_budget_s=100 leaves -?\d+ s of training"):
        train_puzzle.training_budget(train_puzzle.PuzzleTrainConfig(wall_budget_s=100), 20, 50)
    code, out = run(tmp_path, "tight", "max_batches=2", "task_params.sizes=[7]", MAZE_SETS, "wall_budget_s=1")
    assert code == 2 and not (out / "model.pt").exists()
    assert "wall_budget_s=1 leaves" in capsys.readouterr().err


def test_a_wall_budget_run_records_its_budget_and_test_estimate(tmp_path):
    code, out = run(tmp_path, "wall", "max_batches=2", "task_params.sizes=[7]", MAZE_SETS, "wall_budget_s=3600",
                    "time_budget_s=600")
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_budget_s"] == 600 and metrics["test_estimate_s"] > 0 and metrics["test_seconds"] > 0
