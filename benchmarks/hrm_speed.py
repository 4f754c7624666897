"""HRM-ACT-v1 speed on this machine: training and inference samples/s, and FLOP/s efficiency.

    python benchmarks/hrm_speed.py                      # the cpu_grid16 preset, 2 threads
    python benchmarks/hrm_speed.py --seconds 3 --set block=attention --set hidden_size=128

A training step is one ACT segment on a batch: forward with the 1-step gradient, the extra
no-grad forward for the bootstrapped Q target, the ACT loss, backward and an AdamW step (what a
deep-supervision trainer does per segment). Inference is one eval-mode segment under
``torch.no_grad()``; a "decision" is a full :meth:`HRMACTv1.reason` pass. FLOPs of a step are
counted with ``torch.utils.flop_counter`` (matmuls, convolutions, attention) and divided by the
step time; the reference is a plain fp32 1024^3 matmul measured in the same run (best of
several repeats). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.hrm import ACTLossHead, HRMACTv1, HRMACTv1Config  # noqa: E402


def parse_value(raw: str):
    """Read an override's value: int, float, bool, None or string."""
    lowered = raw.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def matmul_flops_per_s(seconds: float, size: int = 1024) -> float:
    """Best-of-repeats fp32 matmul throughput (FLOP/s): the machine's practical peak."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    for _ in range(3):
        torch.mm(a, b, out=out)
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(5):
            torch.mm(a, b, out=out)
        best = max(best, 5 * 2 * size**3 / (time.perf_counter() - start))
    return best


def make_batch(cfg: HRMACTv1Config, batch_size: int, generator: torch.Generator) -> dict:
    rows, cols = (cfg.grid_height, cfg.grid_width) if cfg.is_grid else (1, cfg.seq_len)
    inputs = torch.randint(0, cfg.vocab_size, (batch_size, rows * cols), generator=generator)
    if cfg.head == "action" and cfg.pool == "agent":  # exactly one agent cell per row
        inputs[inputs == cfg.agent_token] = 0
        inputs[:, 0] = cfg.agent_token
    if cfg.head == "action":
        labels = torch.randint(0, cfg.n_actions, (batch_size,), generator=generator)
    else:
        labels = torch.randint(0, cfg.vocab_out, (batch_size, rows * cols), generator=generator)
    batch = {"inputs": inputs, "labels": labels}
    if cfg.puzzle_emb_ndim:
        batch["puzzle_identifiers"] = torch.zeros(batch_size, dtype=torch.long)
    return batch


def timed(fn, seconds: float, warmup: int = 2) -> tuple[float, int]:
    """Median seconds per call over repeats that fill ``seconds`` (at least 3 calls)."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 3:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(times)


def run(cfg: HRMACTv1Config, batch_size: int, seconds: float, compile_model: bool) -> dict:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = HRMACTv1(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    runner = torch.compile(model) if compile_model else model
    head = ACTLossHead(runner)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1)
    batch = make_batch(cfg, batch_size, generator)

    state = {"carry": head.initial_carry(batch)}

    def train_step() -> None:
        model.train()
        carry, loss, _, _, _ = head(state["carry"], batch, return_keys=())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        state["carry"] = carry

    def infer_segment() -> None:
        model.eval()
        with torch.no_grad():
            runner(model.initial_carry(batch), batch)

    def decide() -> int:
        with torch.no_grad():
            return model.reason(batch).segments

    counter = FlopCounterMode(display=False)
    with counter:
        train_step()
    train_flops = counter.get_total_flops()
    counter = FlopCounterMode(display=False)
    with counter:
        infer_segment()
    infer_flops = counter.get_total_flops()

    matmul = matmul_flops_per_s(min(2.0, max(0.5, seconds / 3)))
    train_s, train_n = timed(train_step, seconds)
    infer_s, infer_n = timed(infer_segment, seconds / 2)
    decide_s, _ = timed(decide, seconds / 2, warmup=1)
    segments = decide()
    matmul_after = matmul_flops_per_s(min(2.0, max(0.5, seconds / 3)))
    matmul = max(matmul, matmul_after)
    return {
        "config": cfg.to_dict(),
        "parameters": n_params,
        "tokens": cfg.n_prefix_tokens + cfg.n_data_tokens,
        "batch_size": batch_size,
        "threads": torch.get_num_threads(),
        "compiled": compile_model,
        "load_average_1min": os.getloadavg()[0],
        "train_samples_per_s": batch_size / train_s,
        "train_steps_timed": train_n,
        "inference_samples_per_s": batch_size / infer_s,
        "inference_segments_timed": infer_n,
        "decision_samples_per_s": batch_size / decide_s,
        "decision_segments": segments,
        "train_flops_per_step": train_flops,
        "inference_flops_per_segment": infer_flops,
        "train_flop_per_s": train_flops / train_s,
        "inference_flop_per_s": infer_flops / infer_s,
        "matmul_flop_per_s": matmul,
        "train_flop_fraction": train_flops / train_s / matmul,
        "inference_flop_fraction": infer_flops / infer_s / matmul,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu_grid16", help="HRMACTv1Config preset")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0, help="timing budget per phase")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="wrap the model in torch.compile")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = {}
    for item in args.set:
        if "=" not in item:
            parser.error(f"--set {item!r} is not KEY=VALUE")
        key, raw = item.split("=", 1)
        overrides[key.strip()] = parse_value(raw)
    try:
        cfg = HRMACTv1Config.preset(args.preset, **overrides)
    except ValueError as exc:
        parser.error(str(exc))
    result = run(cfg, args.batch_size, args.seconds, args.compile)
    shown = {
        k: cfg.to_dict()[k]
        for k in ("block", "hidden_size", "H_layers", "L_layers", "H_cycles", "L_cycles", "patch_size", "head")
    }
    print(f"HRM-ACT-v1 speed, preset {args.preset} {shown}")
    print(
        f"  parameters {result['parameters']:,}, tokens {result['tokens']}, batch "
        f"{args.batch_size}, threads {result['threads']}"
    )
    print(f"  {'phase':<22}{'samples/s':>12}{'GFLOP/s':>10}{'of matmul':>11}")
    print(
        f"  {'train (per segment)':<22}{result['train_samples_per_s']:>12.0f}"
        f"{result['train_flop_per_s'] / 1e9:>10.1f}{result['train_flop_fraction']:>11.1%}"
    )
    print(
        f"  {'inference (segment)':<22}{result['inference_samples_per_s']:>12.0f}"
        f"{result['inference_flop_per_s'] / 1e9:>10.1f}"
        f"{result['inference_flop_fraction']:>11.1%}"
    )
    print(
        f"  {'decision (reason)':<22}{result['decision_samples_per_s']:>12.0f}"
        f"{'':>10}{'':>11}  ({result['decision_segments']} segments)"
    )
    print(
        f"  fp32 matmul reference {result['matmul_flop_per_s'] / 1e9:.1f} GFLOP/s; load average "
        f"{result['load_average_1min']:.1f} (other processes slow every figure down)"
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
