"""agents.train_puzzle end to end on tiny settings: outputs, controls, resume, reproducibility, paper scale."""

from __future__ import annotations

import json
import signal

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
    "eval_every=1000",
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
    code, out = run(
        tmp_path, "hrm", "max_batches=3", "task_params.sizes=[7]", MAZE_SETS, "test_views=2", "test_combine=mean"
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["batches"] == 3 and metrics["model"] == "hrm" and metrics["block"] == "conv"
    # The sample budget and the machine that spent it.
    assert metrics["stopped_by"] == "max_batches" and metrics["train_samples"] == 3 * 4
    assert metrics["train_seconds"] >= 0 and metrics["wall_seconds"] >= metrics["train_seconds"]
    machine = metrics["machine"]
    assert metrics["samples_per_s"] > 0 and machine["cpu"] and isinstance(machine["cpu"], str)
    assert machine["threads"] == 1 and machine["dtype"] == "float32" and machine["device"] == "cpu"
    assert set(metrics["test"]) == {"m7", "m9"}
    # The maze config's test_pick: confident adds the "p" rows and picks segments for the views row.
    assert set(metrics["test"]["m7"]) == {"1", "3", "1p", "3p", "q2", "3pv2"}
    row = metrics["test"]["m7"]["3"]
    assert row["n"] == 6 and row["mean_segments"] == 3.0
    assert {"exact_accuracy", "valid_rate", "cell_accuracy"} <= set(row)
    assert metrics["best_validation"]["n"] == 4
    record = torch.load(out / "model.pt", weights_only=True)  # data only
    assert record["task"] == "maze" and json.loads(record["extra_json"])["test"]
    assert list((out / "tb").iterdir())
    files = json.loads((out / "run.json").read_text())["files"]  # every file the run wrote, with its hash
    assert set(files) == {"config.yaml", "model.pt", "last.pt", "metrics.json", "curves.png"}
    assert "m9" in capsys.readouterr().out


def test_confident_views_have_their_own_test_row(tmp_path):
    code, out = run(
        tmp_path,
        "c2",
        "max_batches=1",
        "task_params.sizes=[7]",
        MAZE_SETS,
        "test_views=2",
        "test_combine=confident",
        "test_pick=last",
    )
    assert code == 0
    rows = json.loads((out / "metrics.json").read_text())["test"]["m7"]
    assert "3c2" in rows and "3v2" not in rows and rows["3c2"]["n"] == 6
    assert not any(name.endswith("p") for name in rows)


def test_confident_pick_adds_rows_and_picks_for_the_views_row(tmp_path):
    code, out = run(
        tmp_path,
        "p",
        "max_batches=1",
        "task_params.sizes=[7]",
        MAZE_SETS,
        "test_views=2",
        "test_combine=confident",
        "test_pick=confident",
    )
    assert code == 0
    tests = json.loads((out / "metrics.json").read_text())["test"]
    assert set(tests["m7"]) == {"1", "3", "1p", "3p", "q2", "3pc2"}
    assert set(tests["m9"]) == {"2", "2p", "q2", "2pc2"}
    assert tests["m7"]["3p"]["n"] == 6 and tests["m7"]["3p"]["mean_segments"] == 3.0


def test_an_eval_sets_own_views_override_test_views(tmp_path):
    sets = (
        "eval_sets=[{name: m7, params: {sizes: [7]}, n: 4, val_n: 4, segments: [1, 3]}, "
        "{name: m9, params: {sizes: [9]}, n: 4, segments: [2, 4], views: 2, views_at: 2}]"
    )
    code, out = run(
        tmp_path, "v", "max_batches=1", "task_params.sizes=[7]", sets, "test_combine=confident", "test_pick=last"
    )
    assert code == 0
    tests = json.loads((out / "metrics.json").read_text())["test"]
    assert set(tests["m7"]) == {"1", "3", "q2"} and set(tests["m9"]) == {"2", "4", "q2", "2c2"}


@pytest.mark.parametrize(
    "bad, message",
    [
        ("test_views=9", "test_views=9 must be an int 1..8"),
        ("eval_sets=[{name: m7, params: {sizes: [7]}, n: 4, val_n: 4, views: 0}]", r"eval_sets\[0\].views=0 must be"),
    ],
)
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


def test_resume_refuses_an_edited_config_and_a_finished_run_only_reports(tmp_path, capsys):
    code, out = run(tmp_path, "resume", "max_batches=2", "task_params.sizes=[7]", MAZE_SETS, "checkpoint_every=1")
    assert code == 0
    first = json.loads((out / "metrics.json").read_text())
    assert resume_state(out).phase == "done"
    assert train_puzzle.main(["--resume", str(out), "--no-progress"]) == 0  # nothing left to train or test
    second = json.loads((out / "metrics.json").read_text())
    assert second["batches"] == first["batches"] == 2 and second["test"] == first["test"]
    assert [h["batch"] for h in second["history"]] == [2]
    config = out / "config.yaml"
    config.write_text(config.read_text().replace("max_batches: 2", "max_batches: 4"))
    capsys.readouterr()
    assert train_puzzle.main(["--resume", str(out), "--no-progress"]) == 2  # a run keeps its settings
    assert "config.yaml changed since the run wrote it" in capsys.readouterr().err


def test_moving_average_is_what_model_pt_keeps_and_resume_restores(tmp_path, monkeypatch):
    ema = ["max_batches=3", "task_params.sizes=[7]", MAZE_SETS, "checkpoint_every=1", "ema_decay=0.5", "lr=0.01"]
    code, out = run(tmp_path, "ema", *ema)
    assert code == 0
    best, _, _ = load_checkpoint(out)
    last, _, record = load_checkpoint(out, weights="last")
    assert record["path"].endswith("last.pt")
    saved = resume_tensors(out)
    averaged = {k.removeprefix("module."): v for k, v in saved["ema"].items() if k.startswith("module.")}
    for name, tensor in best.state_dict().items():  # model.pt holds the average, not the raw weights
        torch.testing.assert_close(tensor, averaged[name])
    assert any(not torch.equal(a, b) for a, b in zip(best.state_dict().values(), last.state_dict().values()))
    final_average, _, record = load_checkpoint(out, weights="last-ema")  # the last validation kept it too
    assert record["path"].endswith("last.pt") and record["weights"] == "last-ema"
    for name, tensor in final_average.state_dict().items():
        torch.testing.assert_close(tensor, averaged[name])
    assert int(saved["ema"]["n_averaged"]) == 3
    with monkeypatch.context() as patch:  # stopped after batch 2, resumed: the average goes on, not afresh
        interrupt_in_batch(patch, 2, 1)
        code, stopped = run(tmp_path, "ema-stopped", *ema)
    assert code == 130 and resume_state(stopped).batches == 2
    assert train_puzzle.main(["--resume", str(stopped), "--no-progress"]) == 0
    assert int(resume_tensors(stopped)["ema"]["n_averaged"]) == 3
    assert_same_tensors(resume_tensors(stopped)["ema"], saved["ema"])


def test_the_selected_eval_set_validates(tmp_path, capsys):
    sets = (
        "eval_sets=[{name: m7, params: {sizes: [7]}, n: 4, val_n: 3, segments: [1]}, "
        "{name: m9, params: {sizes: [9]}, n: 4, val_n: 5, segments: [1], select: true}]"
    )
    code, out = run(tmp_path, "sel", "max_batches=1", "task_params.sizes=[7]", sets)
    assert code == 0
    record = torch.load(out / "model.pt", weights_only=True)
    assert json.loads(record["extra_json"])["validation_set"] == "m9"
    assert json.loads((out / "metrics.json").read_text())["best_validation"]["n"] == 5
    two = sets.replace("segments: [1]}, ", "segments: [1], select: true}, ")
    code, _ = run(tmp_path, "sel2", "max_batches=1", "task_params.sizes=[7]", two)
    assert code == 2 and "only one set may have select: true" in capsys.readouterr().err


def test_solve_weights_last_reads_the_resume_file(tmp_path, capsys):
    import numpy as np

    from agents import solve
    from hrm_gym.maze.generator import generate_mazes

    code, out = run(tmp_path, "plain", "max_batches=1", "task_params.sizes=[7]", MAZE_SETS)
    assert code == 0
    mazes = tmp_path / "mazes.npz"
    np.savez(mazes, layouts=generate_mazes(np.random.default_rng(0), 3, 7, 0.2))
    capsys.readouterr()
    argv = ["--checkpoint", str(out), "--layouts", str(mazes), "--json", "--num-threads", "1", "--weights"]
    assert solve.main([*argv, "last"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["weights"] == "last" and report["checkpoint"] == str(out / "last.pt") and report["n"] == 3
    last, _, _ = load_checkpoint(out, weights="last")
    assert_same_tensors(last.state_dict(), resume_tensors(out)["model"])
    assert solve.main([*argv, "last-ema"]) == 0 and json.loads(capsys.readouterr().out)["weights"] == "last-ema"
    torch.save({"model": last.state_dict(), "state_json": "{}"}, out / "last.pt")  # not a resume checkpoint
    with pytest.raises(Exception, match="is not a 'hrm-gym-resume' checkpoint of a puzzle run"):
        load_checkpoint(out, weights="last")
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


@pytest.mark.slow
def test_paper_scale_runs_a_few_steps_on_cpu(tmp_path):
    sets = "eval_sets=[{name: e1, params: {mix: [{n_empty: 1}]}, n: 2, val_n: 2, segments: [1]}]"
    code, out = run(
        tmp_path,
        "paper",
        "scale=paper",
        "max_batches=1",
        "segments=1",
        "batch_size=2",
        "train_pool=4",
        sets,
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
        ("task_params.sizes=[65]", "not allowed"),
        ("model=rnn", "model"),
        ("eval_sets=[]", "eval_sets is empty"),
        ("learning_rate=1", "unknown key"),
        ("ema_decay=1.0", "ema_decay"),
        ("progressive_segments=2", "unknown key"),  # removed levers are unknown keys now
        ("eval_every_s=60", "unknown key"),
        ("eval_every=0", "eval_every=0 is not allowed: it must be an integer >= 1 (batches between validations)"),
        ("checkpoint_every=0", "checkpoint_every=0 is not allowed: it must be an integer >= 1"),
        ("batch_size=0", "batch_size=0 is not allowed: it must be an integer >= 1 (puzzles per batch)"),
        ("max_batches=0", "max_batches=0 is not allowed: it must be an integer >= 1"),
        ("time_budget_s=-1", "time_budget_s=-1.0 is not allowed: seconds >= 0, or null/0 for no cap"),
        ("device=tpu", "device='tpu' is not allowed; choose auto, cpu, cuda or cuda:N"),
        ("device=cuda:x", "device='cuda:x' is not allowed; choose auto, cpu, cuda or cuda:N"),
    ],
)
def test_bad_settings_fail_clearly(tmp_path, capsys, override, message):
    code, out = run(tmp_path, "bad", override)
    assert code == 2 and not out.exists()  # refused before anything is written
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err  # one line


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_cuda_without_cuda_fails_clearly(tmp_path, capsys):
    code, _ = run(tmp_path, "cuda", "device=cuda")
    assert code == 2
    assert "device='cuda': this machine has no CUDA device; use auto or cpu" in capsys.readouterr().err


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


def test_the_time_budget_is_an_opt_in_cap_that_says_it_stopped_the_run(tmp_path, capsys):
    code, out = run(tmp_path, "capped", "max_batches=50", "task_params.sizes=[7]", MAZE_SETS, "time_budget_s=0.000001")
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stopped_by"] == "time_budget_s" and metrics["batches"] == 1  # the cap is checked between batches
    assert "time_budget_s=1e-06 reached after 1 of max_batches=50 batches" in capsys.readouterr().out


def test_the_learning_rate_schedule_follows_batches_not_the_clock(tmp_path, monkeypatch):
    config = train_puzzle.PuzzleTrainConfig(lr=1.0, warmup_steps=1, min_lr_ratio=0.1)
    assert train_puzzle.lr_at(config, 5, 0.0) == pytest.approx(1.0)
    assert train_puzzle.lr_at(config, 5, 0.5) == pytest.approx(0.55)
    assert train_puzzle.lr_at(config, 5, 1.0) == pytest.approx(0.1)
    seen = []

    def recording_lr_at(config, opt_steps, progress):
        seen.append(progress)
        return 1e-3

    monkeypatch.setattr(train_puzzle, "lr_at", recording_lr_at)
    code, _ = run(tmp_path, "lr", "max_batches=4", "task_params.sizes=[7]", MAZE_SETS)
    assert code == 0 and seen == [0.0, 0.25, 0.5, 0.75]  # batches done / max_batches, one value per batch


# Reproducibility: a run is bounded by batches, so the same config and seed give the same weights.
REPRO = ["max_batches=5", "eval_every=2", "checkpoint_every=3", "task_params.sizes=[7]", MAZE_SETS]


def tensors(path, key=None):
    """``model.pt``'s weights, or the tensor ``key`` of the resume checkpoint ``last.pt``."""
    record = torch.load(path, weights_only=True)
    return record["tensors"][key] if key else record["state_dict"]


def resume_tensors(out):
    return torch.load(out / "last.pt", weights_only=True)["tensors"]


def resume_state(out):
    from agents.common.run import RunDirectory

    return RunDirectory.open(out, train_puzzle.COMMAND).load_checkpoint(train_puzzle.PuzzleState)[0]


def assert_same_tensors(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_the_same_seed_trains_bit_identical_weights(tmp_path):
    outs = {}
    for name, seed in (("a", 0), ("b", 0), ("other", 1)):
        code, outs[name] = run(tmp_path, name, *REPRO, f"seed={seed}")
        assert code == 0
    first, second, other = (tensors(outs[name] / "model.pt") for name in ("a", "b", "other"))
    assert_same_tensors(first, second)
    assert_same_tensors(tensors(outs["a"] / "last.pt", "model"), tensors(outs["b"] / "last.pt", "model"))
    assert any(not torch.equal(first[name], other[name]) for name in first)  # another seed, other weights
    metrics = [json.loads((outs[name] / "metrics.json").read_text()) for name in ("a", "b")]
    assert metrics[0]["best_validation"]["batch"] == metrics[1]["best_validation"]["batch"]
    assert [h["batch"] for h in metrics[0]["history"]] == [2, 4, 5]


def interrupt_in_batch(monkeypatch, batch, times):
    """Send SIGINT ``times`` times during training batch ``batch`` (1-based), as Ctrl-C would."""
    import agents.hrm.losses as losses

    real, calls = losses.deep_supervision_pass, []

    def pass_with_ctrl_c(*args, **kwargs):
        calls.append(1)
        if len(calls) == batch:
            for _ in range(times):
                signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(losses, "deep_supervision_pass", pass_with_ctrl_c)


@pytest.mark.parametrize(
    "name, times, batch, resumes_at",
    [
        ("finish", 1, 2, 2),  # one Ctrl-C: the batch finishes, is saved, the run stops
        ("abort", 2, 5, 3),  # two: it stops at once; resume reads the last periodic save (checkpoint_every=3)
    ],
)
def test_an_interrupted_run_resumes_to_the_uninterrupted_weights(
    tmp_path, monkeypatch, capsys, name, times, batch, resumes_at
):
    code, whole = run(tmp_path, "whole", *REPRO)
    assert code == 0
    with monkeypatch.context() as patch:
        interrupt_in_batch(patch, batch, times)
        code, out = run(tmp_path, name, *REPRO)
    assert code == 130 and not (out / "metrics.json").exists()
    assert resume_state(out).batches == resumes_at
    assert f"python -m agents.train_puzzle --resume {out}" in capsys.readouterr().err
    assert train_puzzle.main(["--resume", str(out), "--no-progress"]) == 0
    assert f"resuming {out} at batch {resumes_at}" in capsys.readouterr().out
    assert_same_tensors(tensors(out / "model.pt"), tensors(whole / "model.pt"))
    assert_same_tensors(tensors(out / "last.pt", "model"), tensors(whole / "last.pt", "model"))
    # torch's generator (halting exploration) went on where it stopped, not from the seed
    assert torch.equal(tensors(out / "last.pt", "torch_rng"), tensors(whole / "last.pt", "torch_rng"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["batches"] == 5 and metrics["train_samples"] == 5 * 4
    assert [h["batch"] for h in metrics["history"]] == [2, 4, 5]


def without_times(tests):
    return {name: {r: {k: v for k, v in row.items() if k != "solve_seconds"} for r, row in rows.items()}
            for name, rows in tests.items()}  # fmt: skip


def test_interrupted_in_its_test_phase_resumes_the_test(tmp_path, monkeypatch, capsys):
    code, whole = run(tmp_path, "whole", *REPRO)
    assert code == 0
    original, calls = train_puzzle.solve_depths, []

    def interrupt_the_second_set(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # m7 is tested; Ctrl-C in m9's test
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(train_puzzle, "solve_depths", interrupt_the_second_set)
    code, out = run(tmp_path, "test-phase", *REPRO)
    assert code == 130 and not (out / "metrics.json").exists()
    err = capsys.readouterr().err
    assert f"python -m agents.train_puzzle --resume {out}" in err and "in the test (1 of 2 eval sets done)" in err
    state = resume_state(out)
    assert state.phase == "test" and list(state.tests) == ["m7"] and state.batches == 5
    calls.clear()
    monkeypatch.setattr(train_puzzle, "solve_depths", lambda *a, **k: calls.append(1) or original(*a, **k))
    assert train_puzzle.main(["--resume", str(out), "--no-progress"]) == 0
    assert len(calls) == 1  # only m9 was left to test; no batch was trained again
    metrics, reference = (json.loads((d / "metrics.json").read_text()) for d in (out, whole))
    assert list(metrics["test"]) == ["m7", "m9"] and metrics["batches"] == 5
    assert without_times(metrics["test"]) == without_times(reference["test"])  # the same rows as a whole run
    assert_same_tensors(tensors(out / "model.pt"), tensors(whole / "model.pt"))
    assert resume_state(out).phase == "done"


def test_curves_png_is_drawn_at_each_validation_and_a_resumed_run_redraws_it(tmp_path, monkeypatch):
    import agents.common.plots as plots
    from agents.common.run import RunDirectory, sha256_of

    drawn = []  # validation rows behind each drawing
    real = plots.plot_history
    monkeypatch.setattr(
        plots, "plot_history", lambda history, *a, **k: drawn.append(len(history)) or real(history, *a, **k)
    )
    code, whole = run(tmp_path, "whole", *REPRO)  # validations after batches 2, 4 and 5
    assert code == 0 and drawn == [1, 2, 3]
    png = (whole / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    assert json.loads((whole / "run.json").read_text())["files"]["curves.png"] == sha256_of(whole / "curves.png")
    drawn.clear()
    with monkeypatch.context() as patch:
        interrupt_in_batch(patch, 3, 1)  # stops after batch 3, with the validation of batch 2 drawn
        code, out = run(tmp_path, "stopped", *REPRO)
    assert code == 130 and drawn == [1] and (out / "curves.png").is_file()
    assert train_puzzle.main(["--resume", str(out), "--no-progress"]) == 0  # the recorded curves.png is accepted
    assert drawn == [1, 2, 3] and resume_state(out).phase == "done"
    RunDirectory.open(out, train_puzzle.COMMAND)  # every file, curves.png included, is the one the run recorded
    assert not list(out.glob(".curves*"))
