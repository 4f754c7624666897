"""The arc task family: transformations on hand-made grids, canvases, augmentation variants mapped
back, sparse SignSGD on the batch's rows, training and solving with puzzle embeddings, clear errors."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from agents import solve, train_puzzle
from agents.puzzles import PuzzleError, get_task
from agents.puzzles import arc as A
from agents.puzzles.checkpoint import CheckpointError, load_checkpoint
from agents.puzzles.engine import majority_vote

G = np.array  # a hand-made grid


@pytest.mark.parametrize(
    "name, grid, answer",
    [
        ("copy", G([[0, 1], [2, 0]]), G([[0, 1], [2, 0]])),
        ("rotate", G([[1, 2, 0], [3, 4, 5]]), G([[3, 1], [4, 2], [5, 0]])),  # a quarter turn clockwise
        ("mirror", G([[1, 2, 0], [0, 3, 4]]), G([[0, 2, 1], [4, 3, 0]])),
        ("recolour", G([[0, 1], [9, 5]]), G([[0, 2], [1, 6]])),
        ("gravity", G([[1, 0], [0, 2], [3, 0]]), G([[0, 0], [1, 0], [3, 2]])),
        (
            "fill_enclosed",  # the closed ring's inside is painted 4; the open one's is not
            G([[5, 5, 5, 0, 6, 6], [5, 0, 5, 0, 6, 0], [5, 5, 5, 0, 6, 6]]),
            G([[5, 5, 5, 0, 6, 6], [5, 4, 5, 0, 6, 0], [5, 5, 5, 0, 6, 6]]),
        ),
        ("tile", G([[1, 0], [0, 2]]), G([[1, 0, 1, 0], [0, 2, 0, 2], [1, 0, 1, 0], [0, 2, 0, 2]])),
        ("count", G([[0, 3, 0], [3, 0, 3]]), G([[3, 3, 3]])),
        ("largest_object", G([[1, 2, 0, 7], [1, 1, 0, 0], [0, 0, 0, 7]]), G([[1, 0], [1, 1]])),  # only the L in its box
        ("draw_line", G([[0, 3, 0, 0], [0, 0, 0, 0], [2, 0, 5, 0]]), G([[0, 3, 3, 3], [0, 0, 0, 0], [2, 2, 5, 5]])),
    ],
)
def test_every_transformation_on_a_hand_made_grid(name, grid, answer):
    _, transform = A.TRANSFORMS[name]
    np.testing.assert_array_equal(transform(grid.astype(np.uint8)), answer)


def test_generated_examples_fit_the_canvas_and_every_transformation_is_drawn():
    task = get_task("arc")
    params = task.check_params({"split": "all", "variants": 8})
    data = task.sample_examples(np.random.default_rng(0), 200, params)
    task.check_inputs(data["inputs"])  # every input is a well-formed canvas
    assert all(task.is_valid(x, y) for x, y in zip(data["inputs"], data["labels"]))
    names, counts = np.unique(task.groups(data["puzzle_identifiers"], params), return_counts=True)
    assert list(names) == sorted(A.TRANSFORMS) and set(counts) == {20}  # equal shares
    assert data["puzzle_identifiers"].min() >= 1 and data["puzzle_identifiers"].max() < task.num_identifiers(params)


def test_canvas_layout_pad_and_end_of_grid_marker():
    canvas = A.encode(G([[0, 9], [3, 1], [2, 2]]).astype(np.uint8))
    assert canvas.shape == (A.CANVAS, A.CANVAS)
    np.testing.assert_array_equal(canvas[:4, :3], [[2, 11, 1], [5, 3, 1], [4, 4, 1], [1, 1, 0]])
    assert (canvas[4:] == A.PAD).all() and (canvas[:, 3:] == A.PAD).all()
    np.testing.assert_array_equal(A.decode(canvas), [[0, 9], [3, 1], [2, 2]])
    assert A.decode(np.zeros((A.CANVAS, A.CANVAS), dtype=np.uint8)) is None
    broken = canvas.copy()
    broken[5, 5] = 7  # a colour outside the grid
    assert A.decode(broken) is None and not get_task("arc").is_valid(canvas, broken)
    with pytest.raises(PuzzleError, match=r"puzzles\[0\] is not a canvas"):
        get_task("arc").check_inputs(broken[None])


def test_variants_keep_the_background_and_answers_consistent_and_map_back_exactly():
    task = get_task("arc")
    params = task.check_params({"split": "all", "variants": 16})
    table = A.variant_table(16)
    assert table[0][0] == 0 and (table[0][1] == np.arange(10)).all()  # variant 0: the original
    assert all(colours[0] == 0 and sorted(colours) == list(range(10)) for _, colours in table)
    assert all((a[1] == b[1]).all() and a[0] == b[0] for a, b in zip(A.variant_table(4), table))  # stable prefix
    data = task.sample_examples(np.random.default_rng(1), 120, params)
    variants = task.variant_of(data["puzzle_identifiers"], params)
    assert len(set(variants.tolist())) > 8
    names = task.groups(data["puzzle_identifiers"], params)
    for x, y, name, v in zip(data["inputs"], data["labels"], names, variants):
        original = A.apply_variant(A.decode(x), int(v), 16, inverse=True)
        assert (A.decode(x) == 0).sum() == (original == 0).sum()  # the background stays the background
        answer = A.apply_variant(A.TRANSFORMS[name][1](original), int(v), 16)
        np.testing.assert_array_equal(A.encode(answer), y)  # the answer is the variant of the answer
    # into variant 0 and back: the same canvases and identifiers, inputs and answers alike
    for grids in (data["inputs"], data["labels"]):
        plain, plain_ids = task.in_variant(grids, data["puzzle_identifiers"], 0, params)
        back, back_ids = task.in_variant(plain, plain_ids, variants, params)
        np.testing.assert_array_equal(back, grids)
        np.testing.assert_array_equal(back_ids, data["puzzle_identifiers"])
    malformed, _ = task.in_variant(np.zeros((1, 11, 11), np.uint8), data["puzzle_identifiers"][:1], 3, params)
    assert (malformed == A.PAD).all()  # a malformed prediction maps back to no answer


def test_held_out_transformations_are_never_drawn_for_training():
    task = get_task("arc")
    params = task.check_params({"held_out": ["mirror", "tile"]})
    trained = set(task.groups(task.sample_examples(np.random.default_rng(2), 70, params)["puzzle_identifiers"], params))
    assert trained == set(A.TRANSFORMS) - {"mirror", "tile"}
    held = task.check_params({**params, "split": "held_out", "augmented": False})
    data = task.sample_examples(np.random.default_rng(3), 10, held)
    assert set(task.groups(data["puzzle_identifiers"], held)) == {"mirror", "tile"}
    assert (task.variant_of(data["puzzle_identifiers"], held) == 0).all()
    for bad, message in [
        ({"tasks": ["copy", "spin"]}, "unknown or repeated"),
        ({"held_out": list(A.TRANSFORMS)}, "none is left to train on"),
        ({"split": "test"}, "split='test'"),
        ({"variants": 0}, "variants=0"),
        ({"max_side": 12}, "max_side=12"),
        ({"colours": 3}, "unknown arc parameter"),
    ]:
        with pytest.raises(PuzzleError, match=message):
            task.check_params(bad)


def test_majority_vote_counts_whole_well_formed_answers():
    a, b, c = (np.full((2, 2), v) for v in (1, 2, 3))
    answers = np.stack([np.stack([a, a]), np.stack([b, c]), np.stack([b, c]), np.stack([c, a])])
    formed = np.ones((4, 2), dtype=bool)
    chosen, votes = majority_vote(answers, formed)
    np.testing.assert_array_equal(chosen[0], b)  # b twice beats a and c once
    np.testing.assert_array_equal(chosen[1], a)  # a (variants 0, 3) and c (1, 2) tie: variant 0's wins
    assert votes.tolist() == [2, 2]
    formed[1:, 0] = False
    assert majority_vote(answers, formed)[1][0] == 1  # malformed answers do not vote


def test_sparse_signsgd_updates_only_the_batch_rows_by_the_sign_of_their_summed_gradient():
    from agents.hrm.sparse_embedding import CastedSparseEmbedding, CastedSparseEmbeddingSignSGD_Distributed

    table = CastedSparseEmbedding(5, 3)
    assert (table.weight == 0).all()  # zero-initialised
    with torch.no_grad():
        table.weight.copy_(torch.arange(15.0).view(5, 3) / 10)
    before = table.weight.detach().clone()
    optimizer = CastedSparseEmbeddingSignSGD_Distributed(table.parameters(), lr=0.1, weight_decay=0.5)
    rows = table.train()(torch.tensor([1, 3, 1]), torch.float32)
    weights = torch.tensor([[1.0, -2.0, 0.5], [3.0, 1.0, -1.0], [-2.0, 1.0, -0.25]])
    (rows * weights).sum().backward()  # row 1's gradient: [1, -2, 0.5] + [-2, 1, -0.25] = [-1, -1, 0.25]
    assert table.weight.grad is None  # the table itself never holds a gradient
    optimizer.step()
    expected = before.clone()
    expected[1] = before[1] * (1 - 0.1 * 0.5) - 0.1 * torch.tensor([-1.0, -1.0, 1.0])  # sign of the sum
    expected[3] = before[3] * (1 - 0.1 * 0.5) - 0.1 * torch.tensor([1.0, 1.0, -1.0])
    torch.testing.assert_close(table.weight.detach(), expected)  # rows 0, 2, 4: no step, no decay
    optimizer.release()  # after release, forwards record nothing for it
    table(torch.tensor([0]), torch.float32)
    optimizer.step()
    torch.testing.assert_close(table.weight.detach(), expected)


# ---- training and solving -----------------------------------------------------------------
TINY = [
    "hrm.hidden_size=16", "hrm.num_heads=2", "hrm.expansion=1.0", "hrm.mlp_multiple=16", "hrm.H_cycles=1",
    "hrm.L_cycles=2", "hrm.puzzle_emb_ndim=16", "segments=2", "batch_size=8", "warmup_steps=2", "num_threads=1",
    "eval_every=1000", "task_params.variants=4", "lr=0.01",
    "eval_sets=[{name: trained, params: {split: trained, augmented: false}, n: 14, val_n: 7, segments: [1, 2]}, "
    "{name: held_out, params: {split: held_out, augmented: false}, n: 6, segments: [2]}]",
]  # fmt: skip


def run(tmp_path, name, *overrides, config="configs/arc_hrm.yaml"):
    out = tmp_path / name
    argv = ["--config", config, "--out", str(out), "--no-progress", "--set", f"data_dir={tmp_path / 'data'}"]
    for item in (*TINY, *overrides):
        argv += ["--set", item]
    return train_puzzle.main(argv), out


@pytest.fixture(scope="module")
def arc_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("arc")
    code, out = run(tmp_path, "arc", "max_batches=2")
    assert code == 0
    return out


def test_arc_trains_with_puzzle_embeddings_and_scores_every_task(arc_run):
    metrics = json.loads((arc_run / "metrics.json").read_text())
    assert metrics["task"] == "arc" and metrics["model_config"]["num_puzzle_identifiers"] == 1 + 10 * 4
    held = {"mirror", "fill_enclosed", "draw_line"}  # the config's held-out transformations
    assert set(metrics["test"]["trained"]["2"]["per_task"]) == set(A.TRANSFORMS) - held
    assert set(metrics["test"]["held_out"]["2"]["per_task"]) == held
    model, task, record = load_checkpoint(arc_run)
    table = model.puzzle_emb.weight.detach()
    params = task.check_params(record["task_params"])
    trained_rows = [task.identifier(params, n, v) for n in ("copy", "rotate") for v in range(4)]
    held_rows = [task.identifier(params, n, v) for n in held for v in range(4)]
    assert (table[held_rows] == 0).all() and (table[0] == 0).all()  # never in a batch: still zero
    assert (table[trained_rows].abs().sum(1) > 0).any()  # rows in the batches moved


def test_solve_votes_over_variants_and_tunes_held_out_embeddings_alone(arc_run, capsys):
    before = load_checkpoint(arc_run)[0].state_dict()
    base = ["--checkpoint", str(arc_run), "--json", "--num-threads", "1", "--limit", "7"]
    assert solve.main([*base, "--vote", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["vote"] == 3 and report["sets"]["held_out"]["embedding"] == "zero"
    assert set(report["sets"]["trained"]["per_task"]) and report["sets"]["trained"]["n"] == 7
    assert solve.main([*base, "--vote", "2", "--ttt-steps", "2", "--ttt-demos", "2", "--eval-set", "held_out"]) == 0
    held = json.loads(capsys.readouterr().out)["sets"]["held_out"]
    assert held["embedding"] == "test-time trained" and held["test_time_training"]["demos"] == 2 * 3 * 2
    assert len(held["test_time_training"]["loss"]) == 2
    for name, tensor in load_checkpoint(arc_run)[0].state_dict().items():
        assert torch.equal(tensor, before[name]), name  # the checkpoint is read, never changed


def test_test_time_training_moves_only_the_demos_rows_and_restores_them(arc_run):
    from agents.puzzles.engine import tuned_embeddings

    model, task, record = load_checkpoint(arc_run)
    params = task.check_params({**record["task_params"], "split": "held_out", "augmented": False})
    demos = task.sample_examples(np.random.default_rng(5), 3, params)
    before = model.puzzle_emb.weight.detach().clone()
    dense = {n: p.detach().clone() for n, p in model.named_parameters() if "puzzle_emb" not in n}
    with tuned_embeddings(model, demos, steps=2, lr=0.05) as report:
        moved = (model.puzzle_emb.weight.detach() != before).any(1).nonzero().squeeze(1)
        assert set(moved.tolist()) == set(demos["puzzle_identifiers"].tolist()) and len(report["loss"]) == 2
        assert all(torch.equal(p, dense[n]) for n, p in model.named_parameters() if "puzzle_emb" not in n)
    assert torch.equal(model.puzzle_emb.weight.detach(), before)


def test_another_family_checkpoint_and_arc_only_options_fail_clearly(arc_run, capsys):
    with pytest.raises(CheckpointError, match="is a 'arc' model, not a 'maze' one"):
        load_checkpoint(arc_run, task="maze")
    assert solve.main(["--checkpoint", str(arc_run), "--views", "2"]) == 2
    assert "vote over augmentation variants with --vote K" in capsys.readouterr().err
    assert solve.main(["--checkpoint", str(arc_run), "--vote", "99"]) == 2
    assert "votes=99: the arc task has 4 variants" in capsys.readouterr().err
    maze = argparse.Namespace(layouts=None, views=1, gif=None, vote=2, ttt_steps=0)
    with pytest.raises(PuzzleError, match="--vote and --ttt-steps are for tasks with puzzle identifiers"):
        solve.check_test_time(maze, get_task("maze"), {"task_params": {}})


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["task=chess"], "unknown puzzle task 'chess'; registered tasks: ['arc', 'maze', 'sudoku']"),
        (["task_params.split=held_out"], "task_params.split must be 'trained'"),
        (["test_views=2"], "a turned arc puzzle is not one of its kind"),
        (["eval_sets=[{name: t, params: {variants: 2}}]"], "changes what the puzzle identifiers mean"),
    ],
)
def test_bad_arc_settings_fail_before_anything_is_written(tmp_path, capsys, overrides, message):
    code, out = run(tmp_path, "bad", *overrides)
    assert code == 2 and not out.exists()
    assert message in capsys.readouterr().err


def test_puzzle_embeddings_need_a_task_with_identifiers(tmp_path, capsys):
    out = tmp_path / "maze"
    code = train_puzzle.main(["--config", "configs/maze_hrm.yaml", "--out", str(out), "--set", "hrm.puzzle_emb_ndim=8"])
    assert code == 2 and not out.exists()
    assert "maze examples carry no puzzle identifier" in capsys.readouterr().err


def test_hrm_train_task_arc_reads_its_default_config():
    from agents.config import load_config

    args = train_puzzle.parse_args(["--task", "arc"])
    path = train_puzzle.config_path_of(args)
    assert path == train_puzzle.CONFIG_DIR / "arc_hrm.yaml"
    config = load_config(train_puzzle.PuzzleTrainConfig, path)
    train_puzzle.check_config(config)
    assert config.task == "arc" and config.hrm["puzzle_emb_ndim"] > 0 and config.test_views == 1
