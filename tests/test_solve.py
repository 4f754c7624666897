"""agents.solve: JSON report, heatmap GIF, test-time segments and clear errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from agents import solve
from agents.puzzles import get_task
from agents.puzzles.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from agents.puzzles.models import build_model, hrm_config
from hrm_gym.maze.generator import generate_mazes

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
TINY = dict(hidden_size=16, num_heads=2, expansion=1.0, mlp_multiple=16, H_layers=1, L_layers=1, H_cycles=1, L_cycles=2)


def make_checkpoint(directory, task_name, kind="hrm", aux_vocab=0, **overrides):
    torch.manual_seed(0)
    task = get_task(task_name)
    grid = task.fixed_shape or (9, 9)
    block = "attention" if task_name == "sudoku" else "conv"
    cfg = hrm_config(
        kind,
        {**TINY, "block": block, **overrides},
        vocab_size=task.input_vocab,
        vocab_out=task.output_vocab,
        aux_vocab=aux_vocab,
        grid=grid,
        segments=2,
    )
    save_checkpoint(directory, build_model(kind, cfg), kind, task, {}, {"note": "test"})
    return directory


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("solve")
    rng = np.random.default_rng(0)
    np.savez(root / "maze9.npz", layouts=generate_mazes(rng, 5, 9, 0.2))
    np.savez(root / "maze13.npz", layouts=generate_mazes(rng, 3, 13, 0.2))
    puzzles, _ = get_task("sudoku").sample_with_solutions(rng, 3, {"mix": [{"n_empty": [1, 10]}]})
    np.savez(root / "sudoku.npz", puzzles=puzzles)
    np.savez(root / "sudoku8.npz", puzzles=np.zeros((2, 8, 8), dtype=np.uint8))
    return {
        "root": root,
        "maze": make_checkpoint(root / "maze_ckpt", "maze"),
        "sudoku": make_checkpoint(root / "sudoku_ckpt", "sudoku"),
    }


def solve_json(capsys, *argv):
    assert solve.main([*argv, "--json", "--num-threads", "1"]) == 0
    return json.loads(capsys.readouterr().out)


def error_of(capsys, *argv):
    assert solve.main([*argv, "--num-threads", "1"]) == 2
    return capsys.readouterr().err


def test_json_report_has_the_issue_keys(files, capsys):
    report = solve_json(capsys, "--checkpoint", str(files["maze"]), "--layouts", str(files["root"] / "maze9.npz"))
    assert {"n", "exact_accuracy", "valid_rate", "cell_accuracy", "mean_segments"} <= set(report)
    assert report["n"] == 5 and report["mean_segments"] == 2.0 and report["task"] == "maze"
    assert 0.0 <= report["cell_accuracy"] <= 1.0


def test_voting_over_dihedral_views(files, capsys):
    report = solve_json(
        capsys, "--checkpoint", str(files["sudoku"]), "--layouts", str(files["root"] / "sudoku.npz"), "--views", "8"
    )
    assert report["views"] == 8 and report["n"] == 3
    err = error_of(
        capsys, "--checkpoint", str(files["maze"]), "--layouts", str(files["root"] / "maze9.npz"), "--views", "9"
    )
    assert "views=9 must be 1..8" in err


def test_segments_override_and_other_maze_sizes(files, capsys):
    report = solve_json(
        capsys, "--checkpoint", str(files["maze"]), "--layouts", str(files["root"] / "maze13.npz"), "--segments", "5"
    )
    assert report["grid"] == [13, 13] and report["mean_segments"] == 5.0 and report["n"] == 3
    report = solve_json(
        capsys,
        "--checkpoint",
        str(files["sudoku"]),
        "--layouts",
        str(files["root"] / "sudoku.npz"),
        "--segments",
        "3",
        "--halt",
        "q",
    )
    assert report["task"] == "sudoku" and report["n"] == 3 and 1.0 <= report["mean_segments"] <= 3.0


@pytest.mark.parametrize("task", ["maze", "sudoku"])
def test_gif_is_written_headless(files, capsys, task):
    gif = files["root"] / f"{task}.gif"
    data = "maze9.npz" if task == "maze" else "sudoku.npz"
    report = solve_json(
        capsys,
        "--checkpoint",
        str(files[task]),
        "--layouts",
        str(files["root"] / data),
        "--gif",
        str(gif),
        "--gif-count",
        "2",
    )
    assert report["gif"] == str(gif)
    assert gif.read_bytes()[:6] in (b"GIF89a", b"GIF87a")
    import imageio.v2 as imageio

    frames = imageio.mimread(gif)
    assert len(frames) == 2  # one frame per reasoning step: 2 segments x 1 H update


def test_wrong_size_grid_fails_clearly(files, capsys):
    err = error_of(capsys, "--checkpoint", str(files["sudoku"]), "--layouts", str(files["root"] / "sudoku8.npz"))
    assert "must be 9x9" in err


def test_learned_positions_cannot_read_another_size(tmp_path, files, capsys):
    ckpt = make_checkpoint(tmp_path / "learned", "maze", block="attention", pos_encodings="learned")
    err = error_of(capsys, "--checkpoint", str(ckpt), "--layouts", str(files["root"] / "maze13.npz"))
    assert "learned positions" in err and "13x13" in err


def test_checkpoint_of_another_task_fails_clearly(files, capsys):
    err = error_of(capsys, "--checkpoint", str(files["maze"]), "--layouts", str(files["root"] / "sudoku.npz"))
    assert "no array 'layouts'" in err and "puzzles" in err
    err = error_of(
        capsys, "--checkpoint", str(files["maze"]), "--layouts", str(files["root"] / "sudoku.npz"), "--array", "puzzles"
    )
    assert "maze layout" in err
    with pytest.raises(CheckpointError, match="is a 'maze' model, not a 'sudoku' one"):
        load_checkpoint(files["maze"], task="sudoku")


def test_npz_without_the_expected_array_or_not_npz(files, capsys, tmp_path):
    np.savez(tmp_path / "other.npz", grids=np.zeros((1, 9, 9), dtype=np.uint8))
    err = error_of(capsys, "--checkpoint", str(files["maze"]), "--layouts", str(tmp_path / "other.npz"))
    assert "no array 'layouts'" in err and "grids" in err
    np.savez(tmp_path / "objects.npz", layouts=np.array([{"a": 1}], dtype=object))
    err = error_of(capsys, "--checkpoint", str(files["maze"]), "--layouts", str(tmp_path / "objects.npz"))
    assert "not a readable .npz" in err
    err = error_of(capsys, "--checkpoint", str(files["maze"]), "--layouts", str(tmp_path / "missing.npz"))
    assert "no puzzle file" in err


class _Payload:
    """Unpickling this would create a marker file (it must never happen)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_crafted_pickle_checkpoint_is_refused_and_not_executed(tmp_path, capsys, files):
    marker = tmp_path / "executed"
    bad = tmp_path / "bad"
    bad.mkdir()
    torch.save({"format": "hrm-gym-puzzle-model", "payload": _Payload(marker)}, bad / "model.pt")
    err = error_of(capsys, "--checkpoint", str(bad), "--layouts", str(files["root"] / "maze9.npz"))
    assert "not a readable puzzle checkpoint" in err and "never as code" in err
    assert not marker.exists()
    err = error_of(capsys, "--checkpoint", str(tmp_path / "nowhere"), "--layouts", str(files["root"] / "maze9.npz"))
    assert "no puzzle checkpoint" in err


def test_weights_last_reads_the_runs_resume_checkpoint_as_data_only(tmp_path, files, capsys):
    from dataclasses import dataclass

    from agents.common.run import RunDirectory

    @dataclass
    class State:
        batches: int = 0

    run = RunDirectory.create(tmp_path / "run", "agents.train_puzzle")
    make_checkpoint(run.path, "maze")
    trained, _, _ = load_checkpoint(run.path)
    raw = {name: tensor + 1 for name, tensor in trained.state_dict().items()}  # other weights than model.pt's
    run.save_checkpoint(State(batches=3), {"model": raw, "torch_rng": torch.get_rng_state()})
    report = solve_json(capsys, "--checkpoint", str(run.path), "--layouts", str(files["root"] / "maze9.npz"),
                        "--weights", "last")  # fmt: skip
    assert report["weights"] == "last" and report["checkpoint"] == str(run.path / "last.pt") and report["n"] == 5
    last, _, _ = load_checkpoint(run.path, weights="last")
    assert all(torch.equal(last.state_dict()[name], tensor) for name, tensor in raw.items())
    with pytest.raises(CheckpointError, match="holds no moving average"):
        load_checkpoint(run.path, weights="last-ema")
    marker = tmp_path / "executed"
    torch.save({"format": "hrm-gym-resume", "tensors": _Payload(marker)}, run.path / "last.pt")
    with pytest.raises(CheckpointError, match="is not a readable resume checkpoint"):
        load_checkpoint(run.path, weights="last")
    assert not marker.exists()
    torch.save({"model": raw}, run.path / "last.pt")  # plain tensors, but not a resume checkpoint
    err = error_of(capsys, "--checkpoint", str(run.path), "--layouts", str(files["root"] / "maze9.npz"),
                   "--weights", "last")  # fmt: skip
    assert "is not a 'hrm-gym-resume' checkpoint of a puzzle run" in err


def test_demo_prints_answers_and_console_scripts_are_declared(files, capsys, tmp_path):
    from pathlib import Path

    from agents import demo

    assert (
        demo.main(
            [
                "--checkpoint",
                str(files["maze"]),
                "--n",
                "2",
                "--size",
                "7",
                "--num-threads",
                "1",
                "--gif",
                str(tmp_path / "demo.gif"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.count("puzzle ") == 2 and "S" in out and "G" in out and (tmp_path / "demo.gif").is_file()
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    for line in (
        'hrm-train = "agents.train_puzzle:main"',
        'hrm-eval = "agents.solve:main"',
        'hrm-demo = "agents.demo:main"',
    ):
        assert line in text


def test_views_map_answers_back_to_the_original_cells():
    from types import SimpleNamespace

    from agents.puzzles.engine import _view, predict

    grids = np.random.default_rng(0).integers(0, 5, size=(3, 7, 7))
    for k in range(8):
        np.testing.assert_array_equal(_view(_view(grids, k), k, inverse=True), grids)

    class CellCopier(torch.nn.Module):
        """Answers each cell with its own input code: a per-cell rule any view must agree on."""

        config = SimpleNamespace(pos_encodings="rope", grid_height=7, grid_width=7)

        def reason(self, batch, max_segments=None, use_q_halt=None):
            x = batch["inputs"]
            logits = torch.nn.functional.one_hot(x.reshape(len(x), -1), 5).float() * 5
            return SimpleNamespace(outputs={"logits": logits}, steps=torch.full((len(x),), 2))

    preds, _, steps = predict(CellCopier(), grids.astype(np.uint8), views=8)
    np.testing.assert_array_equal(preds, grids)
    assert steps.tolist() == [2.0, 2.0, 2.0]


def test_confident_combination_keeps_one_whole_view_per_puzzle(files, capsys):
    from agents.puzzles.engine import _view, predict

    model, _, _ = load_checkpoint(files["maze"])
    with np.load(files["root"] / "maze9.npz") as data:
        mazes = data["layouts"]
    per_view = []
    for k in range(8):  # each view solved alone, its answer mapped back
        answer, confidence, _ = predict(model, np.ascontiguousarray(_view(mazes, k)), segments=2)
        per_view.append((_view(answer, k, inverse=True), _view(confidence, k, inverse=True).reshape(len(mazes), -1)))
    chosen, _, _ = predict(model, mazes, segments=2, views=8, combine="confident")
    for index in range(len(mazes)):
        scores = [confidence[index].min() for _, confidence in per_view]
        np.testing.assert_array_equal(chosen[index], per_view[int(np.argmax(scores))][0][index])
    report = solve_json(
        capsys,
        "--checkpoint",
        str(files["maze"]),
        "--layouts",
        str(files["root"] / "maze9.npz"),
        "--views",
        "8",
        "--combine",
        "confident",
    )
    assert report["combine"] == "confident" and report["views"] == 8 and report["n"] == 5


def test_confident_pick_answers_with_each_puzzles_most_confident_segment(files, capsys):
    from agents.puzzles.engine import predict

    model, _, _ = load_checkpoint(files["maze"])
    with np.load(files["root"] / "maze9.npz") as data:
        mazes = data["layouts"]
    per_segment = [predict(model, mazes, segments=s)[:2] for s in range(1, 5)]  # segment s alone
    chosen, confidence, steps = predict(model, mazes, segments=4, pick="confident")
    picked = []
    for index in range(len(mazes)):
        scores = [conf[index].min() for _, conf in per_segment]
        best = int(np.argmax(scores))  # the earliest of equally confident segments
        picked.append(best)
        np.testing.assert_array_equal(chosen[index], per_segment[best][0][index])
        np.testing.assert_allclose(confidence[index], per_segment[best][1][index], rtol=1e-5)
    assert set(picked) != {3}, "this fixture should exercise an earlier segment than the last"
    assert steps.tolist() == [4.0] * len(mazes)  # compute is that of the segments run
    last, _, _ = predict(model, mazes, segments=4)
    np.testing.assert_array_equal(last, per_segment[-1][0])
    with pytest.raises(Exception, match="pick='best'.*allowed"):
        predict(model, mazes, segments=4, pick="best")
    from agents.puzzles import get_task
    from agents.puzzles.engine import solve_depths, solve_set

    task = get_task("maze")
    labels = task.targets(mazes)
    curve = solve_depths(model, task, mazes, labels, [4, 1, 3], ("last", "confident"))
    assert list(curve) == [(1, "last"), (3, "last"), (4, "last"), (1, "confident"), (3, "confident"), (4, "confident")]
    for (depth, pick), outcome in curve.items():  # one run to the deepest point = a run per depth
        alone = solve_set(model, task, mazes, labels, depth, pick=pick)
        np.testing.assert_array_equal(outcome.predictions, alone.predictions)
        assert outcome.summary()["valid_rate"] == alone.summary()["valid_rate"]
        assert outcome.summary()["mean_segments"] == depth
    report = solve_json(
        capsys,
        "--checkpoint",
        str(files["maze"]),
        "--layouts",
        str(files["root"] / "maze9.npz"),
        "--segments",
        "4",
        "--pick",
        "confident",
    )
    assert report["pick"] == "confident" and report["n"] == 5 and report["mean_segments"] == 4.0
