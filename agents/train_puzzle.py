"""Train a model to solve whole puzzles (maze, Sudoku): the HRM's supervised reasoning mode.

    python -m agents.train_puzzle --config configs/maze_hrm.yaml [--set key=value ...] [--out DIR]
    python -m agents.train_puzzle --resume DIR
    hrm-train --config configs/sudoku_hrm.yaml --set model=transformer

Reads top to bottom: config -> task (:mod:`agents.puzzles`) -> held-out validation and test
sets (cached under ``data/puzzles``) -> model (``model=hrm|transformer|deepthinking``,
``block=attention|conv|hybrid``, ``scale=cpu|paper``) -> deep supervision: every batch runs
segments until the ACT head halts (or ``segments``), each segment its own loss (task + ACT Q
losses + optional auxiliary target) and its own AdamW step, learning rate with warmup and
cosine decay over ``max_batches`` -> validation every ``eval_every`` batches keeping the best
checkpoint ``DIR/model.pt`` -> held-out test of every eval set at each test-time segment count
-> table and ``DIR/metrics.json``.

A run is bounded by samples, not by the clock: ``max_batches`` batches of ``batch_size``
puzzles, and everything the run decides (learning rate, validations, checkpoints) counts
batches. So the same config and seed train the same weights on a fast or a slow machine (on
a CPU with the same ``num_threads``, the same dtype; ``metrics.json`` records both with the
CPU); only the wall time differs. ``time_budget_s`` is an opt-in safety cap on top.

``DIR/last.pt`` (plain tensors + JSON) lets ``--resume`` continue a stopped run. Ctrl-C stops
after the batch in progress and saves it, so that the resumed run ends with the weights an
uninterrupted one would have; a second Ctrl-C stops at once, and ``--resume`` then continues
from the last saved batch.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import yaml

from agents.config import ConfigError, resolve_run, to_dict
from agents.puzzles import PuzzleError, get_task
from agents.puzzles.base import PuzzleTask
from agents.puzzles.data import cached_dataset
from agents.puzzles.sudoku import SudokuTask
from agents.records import save_record

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "maze_hrm.yaml"
#: Seed offsets of the data splits (train stream, validation sets, test sets).
SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST = 0, 1, 2


@dataclass
class PuzzleTrainConfig:
    """Every setting of a puzzle training run (YAML keys; ``--set`` overrides)."""

    task: str = "maze"
    task_params: dict = field(default_factory=dict)  # the task's sampling parameters
    model: Literal["hrm", "transformer", "deepthinking"] = "hrm"
    scale: Literal["cpu", "paper"] = "cpu"  # paper: hidden 512, 4+4 layers, bf16 on CUDA
    block: Literal["attention", "conv", "hybrid"] | None = None  # shortcut for hrm.block
    hrm: dict = field(default_factory=dict)  # HRMACTv1Config keys (hidden_size, H_cycles, ...)
    segments: int = 4  # training segments (ACT halt_max_steps)
    aux_weight: float = 0.0  # weight of the task's dense auxiliary target (0: off)
    loss_type: str = "softmax_cross_entropy"
    q_loss_weight: float = 0.5
    # data
    train_pool: int = 0  # 0: fresh puzzles every batch; > 0: a cached pool of that many
    augment: bool = True
    eval_sets: list = field(default_factory=list)  # [{name, params, n, val_n, segments: [...], views_at}]
    data_seed: int = 0
    data_dir: str = "data"
    # optimisation
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.1
    betas: list = field(default_factory=lambda: [0.9, 0.95])
    warmup_steps: int = 100  # optimizer steps (one per segment)
    min_lr_ratio: float = 0.1  # cosine decays to lr * this at max_batches
    #: The run's bound: it trains this many batches of ``batch_size`` puzzles. The learning-rate
    #: schedule runs over them, so the same config trains the same model on any machine.
    max_batches: int = 3200
    #: Opt-in cap on the wall clock of training and validation, in seconds (None or 0: none). A
    #: run it stops ends before its schedule does; metrics.json says ``"stopped_by": "time_budget_s"``.
    time_budget_s: float | None = None
    grad_clip: float = 1.0
    #: > 0: an exponential moving average of the weights (TRM keeps one) is what validation
    #: scores, ``model.pt`` keeps and the test reads; the raw weights stay in ``last.pt``.
    ema_decay: float = 0.0
    eval_every: int = 400  # batches between validations (and one after the last batch)
    checkpoint_every: int = 100  # batches between resume checkpoints (last.pt)
    test_halt: Literal["q", "max"] = "max"  # halting when testing at each segment count
    #: > 1: also test on that many dihedral views of each puzzle (row "<seg>v<views>"); an eval
    #: set's own ``views`` overrides it for that set.
    test_views: int = 1
    #: How those views' answers combine: "mean" per-cell probabilities (voting, row "<seg>v<views>")
    #: or the "confident" view, whose least confident cell is the most confident (row "<seg>c<views>").
    test_combine: Literal["mean", "confident"] = "mean"
    #: "confident": also rows "<seg>p", each puzzle answered by its most confident segment of
    #: 1..seg (no extra compute), and the views row picks its segments so too ("<seg>pc<views>").
    test_pick: Literal["last", "confident"] = "last"
    seed: int = 0
    device: str = "auto"  # auto (CUDA when present, else CPU), cpu, cuda or cuda:N
    num_threads: int = 2


# ---------------------------------------------------------------------------------------
#: Integer settings that must be >= 1, with what they count.
POSITIVE_INTS = {
    "batch_size": "puzzles per batch",
    "max_batches": "the run's length in batches",
    "eval_every": "batches between validations",
    "checkpoint_every": "batches between resume checkpoints",
    "segments": "training segments",
    "num_threads": "torch CPU threads",
}


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when present, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``; a
    ``ConfigError`` naming the value and what is allowed otherwise, or when CUDA is asked for
    on a machine without it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not isinstance(name, str) or not re.fullmatch(r"cuda(:\d+)?", name):
        raise ConfigError(f"device={name!r} is not allowed; choose auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ConfigError(f"device={name!r}: CUDA is not available on this machine; use device=cpu or device=auto")
    index, count = int(name.partition(":")[2] or 0), torch.cuda.device_count()
    if index >= count:
        raise ConfigError(f"device={name!r}: this machine has {count} CUDA device(s): cuda:0..cuda:{count - 1}")
    return torch.device(name)


def check_config(config: PuzzleTrainConfig) -> torch.device:
    """The run's device, after the settings that need no task are checked: a ``ConfigError``
    naming the key, its value and what is allowed, before anything is written."""
    for key, meaning in POSITIVE_INTS.items():
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key}={value!r} is not allowed: it must be an integer >= 1 ({meaning})")
    if config.time_budget_s is not None and config.time_budget_s < 0:
        raise ConfigError(f"time_budget_s={config.time_budget_s!r} is not allowed: seconds >= 0, or null/0 for no cap")
    if not 0.0 <= config.ema_decay < 1.0:
        raise ConfigError(f"ema_decay={config.ema_decay} must be in [0, 1) (0 = no moving average)")
    if config.train_pool < 0:
        raise ConfigError(f"train_pool={config.train_pool} must be >= 0 (0 = fresh puzzles every batch)")
    return resolve_device(config.device)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else what :mod:`platform` says)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def check_eval_sets(task: PuzzleTask, config: PuzzleTrainConfig) -> list[dict[str, Any]]:
    """Eval sets with defaults: name, params (task params), n (test), val_n, segments, select.

    ``select: true`` marks the one set whose validation split (``val_n`` puzzles, another seed
    than its test split) picks the kept checkpoint; without it, the first set does.
    """
    if not config.eval_sets:
        raise ConfigError(
            "eval_sets is empty: give at least one held-out set (one of them selects the best checkpoint)"
        )
    out = []
    allowed = {"name", "params", "n", "val_n", "segments", "views", "views_at", "select"}
    for i, spec in enumerate(config.eval_sets):
        if not isinstance(spec, dict) or "name" not in spec:
            raise ConfigError(f"eval_sets[{i}] must be a mapping with a name; keys allowed: {sorted(allowed)}")
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise ConfigError(f"eval_sets[{i}] has unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        params = task.check_params({**config.task_params, **spec.get("params", {})})
        segments = spec.get("segments", [config.segments])
        if not isinstance(segments, list) or not all(isinstance(s, int) and s >= 1 for s in segments):
            raise ConfigError(f"eval_sets[{i}].segments must be a list of ints >= 1, got {segments!r}")
        views = spec.get("views", config.test_views)  # checked here, not after the training
        if isinstance(views, bool) or not isinstance(views, int) or not 1 <= views <= 8:
            where = f"eval_sets[{i}].views" if "views" in spec else "test_views"
            raise ConfigError(f"{where}={views!r} must be an int 1..8 (dihedral views of each puzzle)")
        out.append(
            {
                "name": str(spec["name"]),
                "params": params,
                "n": int(spec.get("n", 256)),
                "val_n": int(spec.get("val_n", 0)),
                "segments": segments,
                "views": views,  # > 1: a row of that many views combined (test_combine)
                "views_at": int(spec.get("views_at", max(segments))),  # segments of the views row
                "select": spec.get("select", False),
            }
        )
        if not isinstance(out[-1]["select"], bool):
            raise ConfigError(f"eval_sets[{i}].select must be true or false, got {spec['select']!r}")
    chosen = [spec["name"] for spec in out if spec["select"]]
    if len(chosen) > 1:
        raise ConfigError(f"eval_sets: only one set may have select: true, got {chosen}")
    if not chosen:
        out[0]["select"] = True
    return out


def lr_at(config: PuzzleTrainConfig, opt_steps: int, progress: float) -> float:
    """Linear warmup over ``warmup_steps`` optimizer steps, then cosine to ``min_lr_ratio`` over
    the run's ``progress`` (batches done / ``max_batches``: never the clock)."""
    warm = min(1.0, (opt_steps + 1) / max(1, config.warmup_steps))
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return config.lr * warm * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


class TrainStream:
    """Training batches: fresh puzzles every batch, or draws from a cached pool, augmented."""

    def __init__(self, task: PuzzleTask, config: PuzzleTrainConfig, params: dict[str, Any]):
        self.task, self.config, self.params = task, config, params
        self.rng = np.random.default_rng([config.data_seed, SPLIT_TRAIN, config.seed])
        self.pool = None
        if config.train_pool > 0:
            self.pool = cached_dataset(
                task, params, config.train_pool, config.data_seed * 1000 + SPLIT_TRAIN, config.data_dir, label="train"
            )

    def next(self) -> dict[str, np.ndarray]:
        n = self.config.batch_size
        if self.pool is not None:
            pick = self.rng.integers(0, len(self.pool["inputs"]), size=n)
            inputs, labels = self.pool["inputs"][pick], self.pool["labels"][pick]
        elif isinstance(self.task, SudokuTask):
            inputs, labels = self.task.sample_with_solutions(self.rng, n, self.params)
        else:
            inputs = self.task.sample(self.rng, n, self.params)
            labels = None
        if self.config.augment:
            if labels is None:
                labels = self.task.targets(inputs)
            inputs, labels = self.task.augment(self.rng, inputs, labels)
        elif labels is None:
            labels = self.task.targets(inputs)
        batch = {"inputs": inputs.astype(np.int64), "labels": labels.astype(np.int64)}
        if self.config.aux_weight > 0:
            aux = self.task.aux_targets(inputs)
            if aux is None:
                raise ConfigError(
                    f"aux_weight={self.config.aux_weight} but task {self.task.name!r} has no auxiliary target"
                )
            batch["aux"] = aux.astype(np.int64)
        return batch


def replaces_best(score: Sequence[float], best: Sequence[float] | None) -> bool:
    """Whether a validation ``score`` (valid, exact, cell accuracy) takes over the best checkpoint.

    Ties go to the newer one: it has trained longer at a lower learning rate, and a validation
    set that is already solved cannot tell the two apart.
    """
    return best is None or tuple(score) >= tuple(best)


def build(config: PuzzleTrainConfig, task: PuzzleTask, params: dict[str, Any], eval_sets: list[dict]):
    """The model for ``config`` (imported late: only training needs torch models)."""
    from agents.puzzles.models import build_model, hrm_config

    hrm = dict(config.hrm)
    if config.block is not None:
        hrm["block"] = config.block
    if task.fixed_shape is not None:
        grid = task.fixed_shape
    else:  # the largest training size (other sizes are read through 2-D positions/convs)
        side = max(params.get("sizes", [11]))
        grid = (side, side)
    aux_vocab = task.aux_vocab if config.aux_weight > 0 else 0
    cfg = hrm_config(
        config.model,
        hrm,
        vocab_size=task.input_vocab,
        vocab_out=task.output_vocab,
        aux_vocab=aux_vocab,
        grid=grid,
        segments=config.segments,
        scale=config.scale,
    )
    return build_model(config.model, cfg)


@contextmanager
def stop_after_batch() -> Iterator[dict[str, bool]]:
    """While training: the first Ctrl-C (SIGINT) only sets ``["requested"]``, so that the loop
    finishes the batch in progress, saves it and stops (a resumed run then continues exactly);
    a second one raises ``KeyboardInterrupt`` at once. Outside the main thread (where Python
    cannot install signal handlers) Ctrl-C keeps its default."""
    flag = {"requested": False}

    def handler(signum: int, frame: Any) -> None:
        if flag["requested"]:
            raise KeyboardInterrupt
        flag["requested"] = True
        print("\nCtrl-C: stopping after this batch (press again to stop at once)", file=sys.stderr, flush=True)

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


# ---------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help=f"YAML config (default {DEFAULT_CONFIG.name})")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable), e.g. --set block=conv --set hrm.hidden_size=96",
    )
    parser.add_argument("--out", default=None, help="run directory (default runs/puzzle-<task>-<model>-<time>)")
    parser.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config, out, resuming = resolve_run(
            PuzzleTrainConfig,
            config_path=args.config,
            overrides=args.overrides,
            out=args.out,
            resume=args.resume,
            default_config=DEFAULT_CONFIG,
            default_out=lambda c: f"runs/puzzle-{c.task}-{c.model}",
        )
        return train(config, out, resume=resuming, progress=not args.no_progress)
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def train(config: PuzzleTrainConfig, out: Path, resume: bool = False, progress: bool = True) -> int:
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    from agents.hrm.losses import ACTLossHead, deep_supervision_pass
    from agents.puzzles.checkpoint import load_checkpoint, save_checkpoint
    from agents.puzzles.engine import solve_depths, solve_set

    started = time.time()
    device = check_config(config)
    torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    task = get_task(config.task)
    try:
        params = task.check_params(config.task_params)
    except PuzzleError as exc:
        raise ConfigError(f"task_params: {exc}") from exc
    eval_sets = check_eval_sets(task, config)
    out.mkdir(parents=True, exist_ok=True)
    if not resume:
        (out / "config.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))

    # 1. Data: held-out sets (cached), the training stream.
    t0 = time.time()
    val_spec = next(spec for spec in eval_sets if spec["select"])
    val_n = val_spec["val_n"] or min(256, val_spec["n"])
    val = cached_dataset(task, val_spec["params"], val_n, config.data_seed * 1000 + SPLIT_VAL, config.data_dir, "val")
    test_data = [
        cached_dataset(
            task, spec["params"], spec["n"], config.data_seed * 1000 + SPLIT_TEST * 100 + index, config.data_dir, "test"
        )
        for index, spec in enumerate(eval_sets)
    ]
    stream = TrainStream(task, config, params)
    data_seconds = time.time() - t0

    # 2. Model, loss head, optimizer.
    model = build(config, task, params, eval_sets).to(device)
    dtype = model.compute_dtype(device)  # what the forward runs in (bf16 asked on a CPU without bf16 units: float32)
    n_params = sum(p.numel() for p in model.parameters())
    head = ACTLossHead(
        model,
        config.loss_type,
        q_loss_weight=config.q_loss_weight,
        aux_label_key="aux" if config.aux_weight > 0 else None,
        aux_weight=config.aux_weight,
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay, betas=tuple(config.betas)
    )
    ema = None
    if config.ema_decay > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
    scored = model if ema is None else ema.module  # the weights validation scores and model.pt keeps
    writer = SummaryWriter(str(out / "tb"))
    record_config = to_dict(config)

    # "seconds": training and validation (what time_budget_s caps); "train_seconds": training passes.
    state: dict[str, Any] = {
        "batches": 0,
        "opt_steps": 0,
        "seconds": 0.0,
        "train_seconds": 0.0,
        "samples": 0,
        "best": None,
        "history": [],
    }
    if resume and (out / "last.pt").exists():
        saved = torch.load(out / "last.pt", map_location=device, weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if ema is not None:
            if "ema" not in saved:
                raise ConfigError(
                    f"{out / 'last.pt'} holds no moving average: resume with ema_decay=0 as it was trained"
                )
            ema.load_state_dict(saved["ema"])
        state.update(json.loads(saved["state_json"]))
        stream.rng.bit_generator.state = json.loads(saved["rng_json"])
        if "torch_rng" in saved:  # halting exploration draws from torch's generator
            torch.set_rng_state(saved["torch_rng"].cpu())
        if device.type == "cuda" and "cuda_rng" in saved:
            torch.cuda.set_rng_state(saved["cuda_rng"].cpu(), device)
        print(f"resuming {out} at batch {state['batches']} ({state['seconds']:.0f}s trained)")

    def save_last() -> None:
        record = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            **({} if ema is None else {"ema": ema.state_dict()}),
            "state_json": json.dumps(state),
            "rng_json": json.dumps(stream.rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(),
            **({"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}),
        }
        save_record(record, out / "last.pt")

    # The model's own depth: the control without recurrence runs one segment whatever
    # ``segments`` says; running it more often would only feed its output back as a carry.
    trained_segments = model.config.halt_max_steps

    def validate() -> dict[str, Any]:
        result = solve_set(scored, task, val["inputs"], val["labels"], trained_segments, "max", device=device)
        model.train()
        row = {"batch": state["batches"], "seconds": round(state["seconds"], 1), **result.summary()}
        state["history"].append(row)
        for key in ("exact_accuracy", "valid_rate", "cell_accuracy"):
            writer.add_scalar(f"val/{key}", row[key], state["batches"])
        score = (row["valid_rate"], row["exact_accuracy"], row["cell_accuracy"])
        if replaces_best(score, state["best"] and state["best"]["score"]):
            state["best"] = {"score": list(score), "row": row}
            save_checkpoint(
                out,
                scored,
                config.model,
                task,
                params,
                record_config,
                extra={"validation": row, "validation_set": val_spec["name"]},
            )
        print(
            f"\n[batch {row['batch']} {row['seconds']:.0f}s] val {val_spec['name']}: valid {row['valid_rate']:.3f} "
            f"exact {row['exact_accuracy']:.3f} cell {row['cell_accuracy']:.4f}",
            flush=True,
        )
        return row

    # 3. Train: deep supervision, one optimizer step per segment, max_batches batches.
    model.train()
    cap = config.time_budget_s or 0.0
    stopped_by = "max_batches"
    bar = tqdm(
        total=config.max_batches,
        initial=state["batches"],
        unit="batch",
        disable=not progress,
        desc=f"{config.task}/{config.model}",
    )
    try:
        with stop_after_batch() as interrupt:
            while state["batches"] < config.max_batches:
                if cap and state["seconds"] >= cap:
                    stopped_by = "time_budget_s"
                    break
                tick = time.time()
                batch = {k: torch.as_tensor(v, device=device) for k, v in stream.next().items()}
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(config, state["opt_steps"], state["batches"] / config.max_batches)
                stats = deep_supervision_pass(head, batch, [optimizer], grad_clip=config.grad_clip)
                if ema is not None:
                    ema.update_parameters(model)
                state["opt_steps"] += stats["segments"]
                state["batches"] += 1
                state["samples"] += config.batch_size
                spent = time.time() - tick
                state["seconds"] += spent
                state["train_seconds"] += spent
                bar.update(1)
                if state["batches"] % 10 == 0:
                    step = state["batches"]
                    writer.add_scalar("train/loss", stats["loss"], step)
                    writer.add_scalar("train/exact_accuracy", stats["exact_accuracy"], step)
                    writer.add_scalar("train/accuracy", stats["accuracy"], step)
                    writer.add_scalar("train/segments", stats["steps"], step)
                    writer.add_scalar("train/lr", optimizer.param_groups[0]["lr"], step)
                    bar.set_postfix(
                        loss=f"{stats['loss']:.4f}",
                        acc=f"{stats['accuracy']:.3f}",
                        exact=f"{stats['exact_accuracy']:.2f}",
                        seg=f"{stats['steps']:.1f}",
                    )
                if state["batches"] % config.checkpoint_every == 0:
                    save_last()
                if state["batches"] % config.eval_every == 0:
                    tick = time.time()
                    validate()
                    state["seconds"] += time.time() - tick
                if interrupt["requested"]:
                    save_last()
                    print(
                        f"\nstopped after batch {state['batches']}: continue with "
                        f"python -m agents.train_puzzle --resume {out}"
                    )
                    return 130
    except KeyboardInterrupt:
        print(
            f"\ninterrupted during batch {state['batches'] + 1}: python -m agents.train_puzzle --resume {out} "
            f"continues from the last saved batch (every {config.checkpoint_every})"
        )
        return 130
    finally:
        bar.close()
    if stopped_by == "time_budget_s":
        print(
            f"\ntime_budget_s={cap:g} reached after {state['batches']} of max_batches={config.max_batches} "
            f"batches ({state['seconds']:.0f} s of training and validation): stopping before the schedule ends"
        )
    if not state["history"] or state["history"][-1]["batch"] != state["batches"]:
        validate()
    save_last()

    # 4. Held-out test of the best checkpoint at every test-time segment count.
    best, _, _ = load_checkpoint(out, config.task, device)
    test_started = time.time()
    one_pass = trained_segments == 1  # no test-time depth to scan, no halting to test
    picks = ("last", "confident") if config.test_pick == "confident" and not one_pass else ("last",)
    suffix = {"last": "", "confident": "p"}  # row "<seg>p": the most confident segment of 1..seg
    tests: dict[str, dict[str, Any]] = {}
    for spec, data in zip(eval_sets, test_data):
        rows = {}
        inputs, labels = data["inputs"], data["labels"]
        depths = [1] if one_pass else spec["segments"]
        if config.test_halt == "max":  # the whole depth curve from one run to its deepest point
            curve = solve_depths(best, task, inputs, labels, depths, picks, device=device)
            for (segments, pick), outcome in curve.items():
                rows[f"{segments}{suffix[pick]}"] = outcome.summary()
        else:
            for pick in picks:
                for segments in depths:
                    outcome = solve_set(
                        best, task, inputs, labels, segments, config.test_halt, device=device, pick=pick
                    )
                    rows[f"{segments}{suffix[pick]}"] = outcome.summary()
        if config.test_halt == "max" and not one_pass:  # ACT: the Q head decides
            rows[f"q{trained_segments}"] = solve_set(
                best, task, inputs, labels, trained_segments, "q", device=device
            ).summary()
        if spec["views"] > 1:
            top, pick = (1, "last") if one_pass else (spec["views_at"], config.test_pick)
            mark = ("p" if pick == "confident" else "") + ("v" if config.test_combine == "mean" else "c")
            rows[f"{top}{mark}{spec['views']}"] = solve_set(
                best,
                task,
                inputs,
                labels,
                top,
                "max",
                device=device,
                views=spec["views"],
                combine=config.test_combine,
                pick=pick,
            ).summary()
        tests[spec["name"]] = rows
    train_seconds = state["train_seconds"]
    metrics = {
        "task": config.task,
        "model": config.model,
        "block": best.config.block,
        "parameters": n_params,
        "stopped_by": stopped_by,  # "max_batches" (the run's bound) or "time_budget_s" (the opt-in cap)
        "batches": state["batches"],
        "max_batches": config.max_batches,
        "train_samples": state["samples"],
        "train_seconds": round(train_seconds, 1),  # training passes, over every start of the run
        "validation_seconds": round(state["seconds"] - train_seconds, 1),
        "samples_per_s": round(state["samples"] / max(train_seconds, 1e-9), 1),
        "data_seconds": round(data_seconds, 1),
        "test_seconds": round(time.time() - test_started, 1),
        "wall_seconds": round(time.time() - started, 1),  # this command, from start to metrics
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "dtype": str(dtype).removeprefix("torch."),
        "device": str(device),
        "best_validation": state["best"]["row"],
        "validation_set": val_spec["name"],
        "test": tests,
        "history": state["history"],
        "config": record_config,
        "model_config": best.config.to_dict(),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    save_checkpoint(
        out,
        best,
        config.model,
        task,
        params,
        record_config,
        extra={"validation": state["best"]["row"], "validation_set": val_spec["name"], "test": tests},
    )
    writer.close()
    print()
    print(format_results(tests))
    print(
        f"\nrun: {out}  ({state['batches']:,} batches, {state['samples']:,} puzzles, stopped by {stopped_by}; "
        f"{train_seconds:.0f}s training, {metrics['samples_per_s']} puzzles/s, {n_params:,} parameters, "
        f"{metrics['dtype']} on {metrics['device']})"
    )
    return 0


def format_results(tests: dict[str, dict[str, dict[str, Any]]]) -> str:
    """One line per (set, segments): exact, valid, cell accuracy, mean segments."""
    lines = [f"{'set':16s} {'segments':>8s} {'n':>6s} {'exact':>8s} {'valid':>8s} {'cell':>8s} {'mean seg':>8s}"]
    for name, rows in tests.items():
        for segments, row in rows.items():
            lines.append(
                f"{name:16s} {segments:>8s} {row['n']:6d} {row['exact_accuracy']:8.4f} "
                f"{row['valid_rate']:8.4f} {row['cell_accuracy']:8.4f} {row['mean_segments']:8.2f}"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    sys.exit(main())
