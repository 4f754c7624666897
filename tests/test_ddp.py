"""agents.train_puzzle under torchrun: 2 CPU processes (gloo) train the weights and puzzle embeddings
one process trains on the same global batch, rank 0 alone writes the run, resume works, errors are clear."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from agents import train_puzzle
from agents.common.run import RunDirectory, RunError

#: Each test starts torchrun processes (seconds each): the slow suite, which CI runs too.
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
SMALL = [
    "hrm.hidden_size=16", "hrm.num_heads=2", "hrm.expansion=1.0", "hrm.mlp_multiple=16", "hrm.H_cycles=1",
    "hrm.L_cycles=2", "segments=2", "batch_size=6", "warmup_steps=2", "num_threads=1", "eval_every=1000",
    "hrm.forward_dtype=float32",
    "hrm.halt_exploration_prob=0",  # exploration draws per rank; without it halting is the same rows' own
]  # fmt: skip
ARC = [
    "hrm.puzzle_emb_ndim=16", "task_params.variants=2", "lr=0.01", "max_batches=3",
    "eval_sets=[{name: trained, params: {split: trained, augmented: false}, n: 7, val_n: 7, segments: [2]}]",
]  # fmt: skip
MAZE = [
    "task_params.sizes=[7]", "max_batches=4", "checkpoint_every=1",
    "eval_sets=[{name: m7, params: {sizes: [7]}, n: 4, val_n: 4, segments: [2]}]",
]  # fmt: skip


def argv(config: str, out: Path, data: Path, *overrides: str) -> list[str]:
    args = ["--config", config, "--out", str(out), "--no-progress", "--set", f"data_dir={data}"]
    for item in (*SMALL, *overrides):
        args += ["--set", item]
    return args


def torchrun(*args: str, nproc: int = 2) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node N -m agents.train_puzzle ARGS`` in a subprocess."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "agents.train_puzzle", *args]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SDL_VIDEODRIVER": "dummy"}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def last_model(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "last.pt", weights_only=True)["tensors"]["model"]


def assert_close_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5, msg=name)


def test_ddp_two_processes_train_the_weights_and_puzzle_embeddings_of_one(tmp_path):
    single, double = tmp_path / "single", tmp_path / "ddp"
    assert train_puzzle.main(argv("configs/arc_hrm.yaml", single, tmp_path / "data", *ARC)) == 0
    done = torchrun(*argv("configs/arc_hrm.yaml", double, tmp_path / "data", *ARC))
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = last_model(single), last_model(double)
    assert_close_tensors(one, two)
    table = two["puzzle_emb.weight"]
    assert (table.abs().sum(1) > 0).sum() > 3 and (table.abs().sum(1) == 0).any()  # batch rows moved, others not
    assert torch.equal(torch.sign(one["puzzle_emb.weight"]), torch.sign(table))
    # rank 0 alone wrote the run: its files, each recorded once; the sample budget counts both processes
    files = json.loads((double / "run.json").read_text())["files"]
    assert set(files) == {"config.yaml", "model.pt", "last.pt", "metrics.json", "curves.png"}
    assert sorted(p.name for p in double.iterdir()) == sorted([*files, "run.json", "tb"])
    RunDirectory.open(double, train_puzzle.COMMAND)  # every file is the one recorded, none added
    metrics = json.loads((double / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["train_samples"] == 3 * 6 and metrics["batches"] == 3
    assert done.stdout.count("val trained") == 1  # one log: rank 0 validates and prints


def test_ddp_resumes_a_run_stopped_in_one_process_to_the_uninterrupted_weights(tmp_path, monkeypatch):
    import agents.hrm.losses as losses

    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    assert train_puzzle.main(argv("configs/maze_hrm.yaml", whole, tmp_path / "data", *MAZE)) == 0
    real, calls = losses.deep_supervision_pass, []

    def ctrl_c_in_batch_2(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(losses, "deep_supervision_pass", ctrl_c_in_batch_2)
    assert train_puzzle.main(argv("configs/maze_hrm.yaml", stopped, tmp_path / "data", *MAZE)) == 130
    done = torchrun("--resume", str(stopped), "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resuming {stopped} at batch 2" in done.stdout and done.stdout.count("resuming") == 1
    assert_close_tensors(last_model(stopped), last_model(whole))
    metrics = json.loads((stopped / "metrics.json").read_text())
    assert metrics["batches"] == 4 and metrics["train_samples"] == 4 * 6 and metrics["processes"] == 2


def test_ddp_a_bad_config_is_one_error_from_rank_0_before_anything_is_written(tmp_path):
    out = tmp_path / "bad"
    done = torchrun(*argv("configs/maze_hrm.yaml", out, tmp_path / "data", *MAZE[:1], "batch_size=1"))
    assert done.returncode != 0 and not out.exists()
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: batch_size=1 is the global batch: it needs at least one puzzle for each of the 2 processes"
    ]


def test_ddp_shards_split_the_global_batch_and_other_ranks_cannot_write(tmp_path, monkeypatch):
    import numpy as np

    batch = {"inputs": np.arange(7), "labels": np.arange(7) * 10}
    shards = [train_puzzle.Dist(rank, 3).shard(batch) for rank in range(3)]
    assert [s["inputs"].tolist() for s in shards] == [[0, 1], [2, 3], [4, 5, 6]]
    assert [s["labels"].tolist() for s in shards] == [[0, 10], [20, 30], [40, 50, 60]]
    run = RunDirectory.create(tmp_path / "run", train_puzzle.COMMAND)
    other = train_puzzle.ReadOnlyRun.open(run.path, train_puzzle.COMMAND)
    for write in (
        lambda: other.write_text("x", "y"),
        lambda: other.save_checkpoint(None, {}),
        lambda: other.recorded("x"),
    ):
        with pytest.raises(RunError, match="only rank 0 writes the run directory"):
            write()
    assert sorted(p.name for p in run.path.iterdir()) == ["run.json"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(Exception, match="RANK=2 WORLD_SIZE=2 is not a process of a job"):
        train_puzzle.Dist.from_env()


def test_ddp_speed_benchmark_compares_one_and_two_processes_on_the_same_budget(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("ddp_speed", ROOT / "benchmarks" / "ddp_speed.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    overrides = [item for item in SMALL if not item.startswith(("num_threads", "eval_every"))]
    args = ["--max-batches", "2", "--eval-n", "4", "--out", str(tmp_path), "--set", f"data_dir={tmp_path / 'data'}",
            "--set", "task_params.sizes=[7]", *[part for item in overrides for part in ("--set", item)]]  # fmt: skip
    assert bench.main(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    runs = result["runs"]
    assert [runs[p]["processes"] for p in ("1", "2")] == [1, 2]
    assert [runs[p]["threads_per_process"] for p in ("1", "2")] == [2, 1]
    for row in runs.values():
        assert row["samples_per_s"] > 0 and 0.0 <= row["exact_accuracy"] <= 1.0
    with pytest.raises(SystemExit):
        bench.main(["--processes", "3"])  # 3 does not divide the 2 threads
