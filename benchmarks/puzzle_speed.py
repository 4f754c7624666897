"""Training throughput of a puzzle-mode config: puzzles/s of the trainer's own pass, from a fresh model.

    python benchmarks/puzzle_speed.py --config configs/maze_hrm.yaml --set 'task_params.sizes=[11]'
    python benchmarks/puzzle_speed.py --config configs/maze_hrm.yaml --set hrm.forward_dtype=bfloat16
    python benchmarks/puzzle_speed.py --config configs/sudoku_hrm.yaml --seconds 20

Builds the model, loss head, optimizer and training stream exactly as ``agents.train_puzzle``
does for ``--config`` (with ``--set`` overrides) and times its deep-supervision passes (every
segment with its loss and AdamW step) for ``--seconds`` after one untimed warm-up pass. A fresh
model halts no row early, so this is the cost of a pass at full depth (a trained model's ACT
halting makes later passes cheaper). Also reports the share of the time spent making the batches,
and the machine's plain 1024^3 matmul speed in float32 and bfloat16 (best of 10; a CPU without
bf16 units runs the latter hundreds of times slower). Prints two lines, then one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def matmul_gflops(dtype, repeats: int = 10) -> float:
    """GFLOP/s of the fastest of ``repeats`` 1024^3 matmuls in ``dtype`` (after one warm-up)."""
    import torch

    a, b = torch.randn(1024, 1024).to(dtype), torch.randn(1024, 1024).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * 1024**3 / best / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="a puzzle-mode YAML config")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seconds", type=float, default=25.0, help="timing budget")
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error(f"--seconds must be > 0, got {args.seconds}")

    import torch

    from agents.config import load_config
    from agents.hrm.losses import ACTLossHead, deep_supervision_pass
    from agents.puzzles import get_task
    from agents.train_puzzle import PuzzleTrainConfig, TrainStream, build

    config = load_config(PuzzleTrainConfig, args.config, args.overrides)
    torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    task = get_task(config.task)
    params = task.check_params(config.task_params)
    stream = TrainStream(task, config, params)
    model = build(config, task, params, [])
    head = ACTLossHead(model, config.loss_type, q_loss_weight=config.q_loss_weight,
                       aux_label_key="aux" if config.aux_weight > 0 else None, aux_weight=config.aux_weight)  # fmt: skip
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    dtype = str(model.compute_dtype(torch.device("cpu"))).removeprefix("torch.")

    def one_pass() -> tuple[float, dict]:
        tick = time.perf_counter()
        batch = {k: torch.as_tensor(v) for k, v in stream.next().items()}
        made = time.perf_counter() - tick
        return made, deep_supervision_pass(head, batch, [optimizer], grad_clip=config.grad_clip)

    one_pass()  # warm-up: kernel selection, caches
    passes, data_seconds, segments = 0, 0.0, 0
    started = time.perf_counter()
    while time.perf_counter() - started < args.seconds:
        made, stats = one_pass()
        passes, data_seconds, segments = passes + 1, data_seconds + made, segments + stats["segments"]
    elapsed = time.perf_counter() - started
    matmul = {name: round(matmul_gflops(getattr(torch, name)), 1) for name in ("float32", "bfloat16")}
    result = {
        "config": args.config, "overrides": args.overrides, "forward_dtype": dtype, "threads": config.num_threads,
        "batch_size": config.batch_size, "passes": passes, "seconds": round(elapsed, 2),
        "puzzles_per_s": round(passes * config.batch_size / elapsed, 1),
        "mean_segments": round(segments / passes, 2), "data_share": round(data_seconds / elapsed, 3),
        "matmul_gflops": matmul,
    }  # fmt: skip
    print(f"{args.config} {' '.join(args.overrides)}: {result['puzzles_per_s']} puzzles/s ({dtype}, "
          f"batch {config.batch_size}, {result['mean_segments']} segments, {result['data_share']:.0%} making data)")  # fmt: skip
    print(f"1024^3 matmul, {config.num_threads} threads: {matmul['float32']} GFLOP/s float32, "
          f"{matmul['bfloat16']} bfloat16")  # fmt: skip
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
