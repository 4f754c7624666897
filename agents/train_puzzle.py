"""Train a model to solve whole puzzles (maze, Sudoku): the HRM's supervised reasoning mode.

    python -m agents.train_puzzle --config configs/maze_hrm.yaml [--set key=value ...] [--out DIR]
    python -m agents.train_puzzle --resume DIR
    hrm-train --config configs/sudoku_hrm.yaml --set model=transformer

Reads top to bottom: config -> task (:mod:`agents.puzzles`) -> held-out validation and test
sets (cached under ``data/puzzles``) -> model (``model=hrm|transformer|deepthinking``,
``block=attention|conv|hybrid``, ``scale=cpu|paper``) -> deep supervision: every batch runs
segments until the ACT head halts (or ``segments``), each segment its own loss (task + ACT Q
losses + optional auxiliary target) and its own AdamW step, learning rate with warmup and
cosine decay -> periodic validation keeping the best checkpoint ``DIR/model.pt`` -> held-out
test of every eval set at each test-time segment count -> table and ``DIR/metrics.json``.
``DIR/last.pt`` (plain tensors + JSON) lets ``--resume`` continue an interrupted run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
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
    #: Training stages: ``[{at: 0.5, task_params: {sizes: [11, 13, 15, 17]}}]`` trains on
    #: ``task_params`` merged with a stage's from that fraction of the run (time or batches) on.
    #: Eval sets and the model's grid read ``task_params`` and every stage's largest size.
    curriculum: list = field(default_factory=list)
    model: Literal["hrm", "transformer", "deepthinking"] = "hrm"
    scale: Literal["cpu", "paper"] = "cpu"  # paper: hidden 512, 4+4 layers, bf16 on CUDA
    block: Literal["attention", "conv", "hybrid"] | None = None  # shortcut for hrm.block
    hrm: dict = field(default_factory=dict)  # HRMACTv1Config keys (hidden_size, H_cycles, ...)
    segments: int = 4  # training segments (ACT halt_max_steps)
    aux_weight: float = 0.0  # weight of the task's dense auxiliary target (0: off)
    # Progressive training (Deep Thinking's aid to thinking longer): each batch first runs a
    # random 0..N segments without loss or gradient, then the graded segments from that state.
    progressive_segments: int = 0
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
    min_lr_ratio: float = 0.1  # cosine decays to lr * this
    max_batches: int = 1_000_000
    time_budget_s: float = 840.0  # training + validation wall clock (test not counted)
    #: > 0: the whole command's wall clock. Before training, the test's cost is timed on a few
    #: puzzles of each held-out set and the training budget shrinks (below ``time_budget_s``)
    #: so that data, training, validation and the test end within it on a slower machine too.
    wall_budget_s: float = 0.0
    grad_clip: float = 1.0
    #: > 0: an exponential moving average of the weights (TRM keeps one) is what validation
    #: scores, ``model.pt`` keeps and the test reads; the raw weights stay in ``last.pt``.
    ema_decay: float = 0.0
    eval_every_s: float = 120.0
    checkpoint_every: int = 100  # batches between resume checkpoints
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
    #: Also test the answer read off the auxiliary head (maze: the walk along the predicted
    #: next moves; needs aux_weight > 0) at every test-time segment count (rows "<seg>m").
    test_moves_readout: bool = False
    seed: int = 0
    device: str = "auto"
    num_threads: int = 2


# ---------------------------------------------------------------------------------------
def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def check_eval_sets(task: PuzzleTask, config: PuzzleTrainConfig) -> list[dict[str, Any]]:
    """Eval sets with defaults: name, params (task params), n (test), val_n, segments, select.

    ``select: true`` marks the one set whose validation split (``val_n`` puzzles, another seed
    than its test split) picks the kept checkpoint; without it, the first set does.
    """
    if not config.eval_sets:
        raise ConfigError("eval_sets is empty: give at least one held-out set (one of them selects the best checkpoint)")
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
        out.append({
            "name": str(spec["name"]),
            "params": params,
            "n": int(spec.get("n", 256)),
            "val_n": int(spec.get("val_n", 0)),
            "segments": segments,
            "views": views,  # > 1: a row of that many views combined (test_combine)
            "views_at": int(spec.get("views_at", max(segments))),  # segments of the views row
            "select": spec.get("select", False),
        })
        if not isinstance(out[-1]["select"], bool):
            raise ConfigError(f"eval_sets[{i}].select must be true or false, got {spec['select']!r}")
    chosen = [spec["name"] for spec in out if spec["select"]]
    if len(chosen) > 1:
        raise ConfigError(f"eval_sets: only one set may have select: true, got {chosen}")
    if not chosen:
        out[0]["select"] = True
    return out


def check_curriculum(task: PuzzleTask, config: PuzzleTrainConfig) -> list[tuple[float, dict[str, Any]]]:
    """The curriculum's stages as ``(at, checked task params)``, ``at`` strictly increasing in (0, 1)."""
    stages, previous = [], 0.0
    for i, stage in enumerate(config.curriculum):
        if not isinstance(stage, dict) or set(stage) != {"at", "task_params"}:
            got = sorted(stage) if isinstance(stage, dict) else repr(stage)
            raise ConfigError(f"curriculum[{i}] must be a mapping with exactly the keys ['at', 'task_params'], got {got}")
        at = stage["at"]
        if not isinstance(at, (int, float)) or not previous < at < 1:
            raise ConfigError(f"curriculum[{i}].at={at!r} must be a fraction of the run in ({previous}, 1), "
                              "increasing from stage to stage")
        if not isinstance(stage["task_params"], dict):
            raise ConfigError(f"curriculum[{i}].task_params must be a mapping, got {stage['task_params']!r}")
        try:
            params = task.check_params({**config.task_params, **stage["task_params"]})
        except PuzzleError as exc:
            raise ConfigError(f"curriculum[{i}].task_params: {exc}") from exc
        stages.append((float(at), params))
        previous = float(at)
    return stages


def lr_at(config: PuzzleTrainConfig, opt_steps: int, progress: float) -> float:
    """Linear warmup over ``warmup_steps`` optimizer steps, then cosine to ``min_lr_ratio``
    over the run's progress (the larger of batches and time used)."""
    warm = min(1.0, (opt_steps + 1) / max(1, config.warmup_steps))
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return config.lr * warm * (config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine)


def held_out_plan(spec: dict[str, Any], config: PuzzleTrainConfig, trained_segments: int) -> dict[str, Any]:
    """What the held-out test runs on one eval set: the depths, the segment picks, the views row."""
    one_pass = trained_segments == 1  # no test-time depth to scan, no halting to test
    return {
        "one_pass": one_pass,
        "depths": [1] if one_pass else spec["segments"],
        "picks": ("last", "confident") if config.test_pick == "confident" and not one_pass else ("last",),
        "views_top": 1 if one_pass else spec["views_at"],
        "views_pick": "last" if one_pass else config.test_pick,
    }


def held_out_passes(spec: dict[str, Any], config: PuzzleTrainConfig, trained_segments: int) -> int:
    """Segments the test runs per puzzle of this eval set, over all its rows and views (an upper
    bound: the Q-halted row counts as running every segment)."""
    plan = held_out_plan(spec, config, trained_segments)
    depths = plan["depths"]
    passes = max(depths) if config.test_halt == "max" else len(plan["picks"]) * sum(depths)
    if config.test_moves_readout:
        passes += sum(depths)
    if config.test_halt == "max" and not plan["one_pass"]:
        passes += trained_segments
    if spec["views"] > 1:
        passes += spec["views"] * plan["views_top"]
    return passes


def seconds_per_pass(model: torch.nn.Module, inputs: np.ndarray, device: torch.device, probe: int = 256) -> float:
    """Seconds one reasoning segment takes per puzzle of these inputs, timed on the first
    ``probe`` of them in one batch: the test's batch size (a 21x21 maze-segment costs 1.6x more in
    batches of 200 than of 64 on a CPU, so a smaller probe would underestimate the test)."""
    from agents.puzzles.engine import predict

    chunk = inputs[:probe]
    predict(model, chunk, 1, "max", batch_size=probe, device=device)  # this shape's set-up out of the timing
    tick = time.perf_counter()
    predict(model, chunk, 2, "max", batch_size=probe, device=device)
    return (time.perf_counter() - tick) / (2 * len(chunk))


def training_budget(config: PuzzleTrainConfig, spent_s: float, reserve_s: float) -> float:
    """The training budget that leaves ``reserve_s`` (test, last validation) of ``wall_budget_s``
    after ``spent_s`` already gone: ``time_budget_s`` when that fits, less on a slower machine."""
    if config.wall_budget_s <= 0:
        return config.time_budget_s
    budget = min(config.time_budget_s, config.wall_budget_s - spent_s - 1.1 * reserve_s - 10.0)
    if budget < 60:
        raise ConfigError(
            f"wall_budget_s={config.wall_budget_s:g} leaves {budget:.0f} s of training: {spent_s:.0f} s went on "
            f"data and the test is estimated at {reserve_s:.0f} s on this machine; raise wall_budget_s, "
            "or shrink the eval sets (n, segments, views), or set wall_budget_s=0 (no limit)")
    return budget


class TrainStream:
    """Training batches: fresh puzzles every batch, or draws from a cached pool, augmented."""

    def __init__(self, task: PuzzleTask, config: PuzzleTrainConfig, params: dict[str, Any],
                 stages: Sequence[tuple[float, dict[str, Any]]] = ()):
        self.task, self.config, self.params = task, config, params
        self.stages = list(stages)  # (from this fraction of the run on, these task params)
        self.rng = np.random.default_rng([config.data_seed, SPLIT_TRAIN, config.seed])
        self.pool = None
        if config.train_pool > 0:
            self.pool = cached_dataset(task, params, config.train_pool, config.data_seed * 1000 + SPLIT_TRAIN,
                                       config.data_dir, label="train")

    def params_at(self, progress: float) -> dict[str, Any]:
        """The task params of the curriculum stage that holds at ``progress`` (fraction of the run)."""
        params = self.params
        for at, stage_params in self.stages:
            if progress >= at:
                params = stage_params
        return params

    def next(self, progress: float = 0.0) -> dict[str, np.ndarray]:
        n = self.config.batch_size
        params = self.params_at(progress)
        if self.pool is not None:
            pick = self.rng.integers(0, len(self.pool["inputs"]), size=n)
            inputs, labels = self.pool["inputs"][pick], self.pool["labels"][pick]
        elif isinstance(self.task, SudokuTask):
            inputs, labels = self.task.sample_with_solutions(self.rng, n, params)
        else:
            inputs = self.task.sample(self.rng, n, params)
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
                raise ConfigError(f"aux_weight={self.config.aux_weight} but task {self.task.name!r} has no auxiliary target")
            batch["aux"] = aux.astype(np.int64)
        return batch


def replaces_best(score: Sequence[float], best: Sequence[float] | None) -> bool:
    """Whether a validation ``score`` (valid, exact, cell accuracy) takes over the best checkpoint.

    Ties go to the newer one: it has trained longer at a lower learning rate, and a validation
    set that is already solved cannot tell the two apart (measured: a Sudoku run whose easy-board
    validation hit 1.000 at 611 s and again at 720 s kept the 611 s weights, 0.468 exact on the
    moderate test band; its final weights did better there).
    """
    return best is None or tuple(score) >= tuple(best)


def build(config: PuzzleTrainConfig, task: PuzzleTask, params: dict[str, Any], eval_sets: list[dict],
          stages: Sequence[tuple[float, dict[str, Any]]] = ()):
    """The model for ``config`` (imported late: only training needs torch models)."""
    from agents.puzzles.models import build_model, hrm_config

    hrm = dict(config.hrm)
    if config.block is not None:
        hrm["block"] = config.block
    if task.fixed_shape is not None:
        grid = task.fixed_shape
    else:  # the largest training size (other sizes are read through 2-D positions/convs)
        side = max(max(p.get("sizes", [11])) for p in [params, *(stage for _, stage in stages)])
        grid = (side, side)
    aux_vocab = task.aux_vocab if config.aux_weight > 0 else 0
    cfg = hrm_config(config.model, hrm, vocab_size=task.input_vocab, vocab_out=task.output_vocab,
                     aux_vocab=aux_vocab, grid=grid, segments=config.segments, scale=config.scale)
    return build_model(config.model, cfg)


def progressive_pass(head, batch, optimizer, warmup: int, segments: int, grad_clip: float | None) -> dict[str, Any]:
    """``warmup`` segments without loss or gradient, then ``segments`` graded ones (each its own
    loss and AdamW step, as in deep supervision); rows may halt (ACT) only in the graded part."""
    model = head.model
    carry = head.initial_carry(batch)
    limit = warmup + segments
    with torch.no_grad():
        for _ in range(warmup):
            carry, _ = model(carry, batch, halt_max_steps=limit + 1, use_q_halt=False)
    params = [p for p in model.parameters() if p.requires_grad]
    current = carry.current_data
    losses, exact, accuracy, steps = [], [], [], []
    while True:
        carry, loss, metrics, _, all_halted = head(carry, current, return_keys=(), halt_max_steps=limit)
        optimizer.zero_grad()
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
        losses.append(float(loss.detach()))
        exact.append(float(metrics["exact_accuracy"]))
        accuracy.append(float(metrics["accuracy"]))
        steps.append(float(metrics["steps"]))
        if bool(all_halted):
            break
        keep = ~carry.halted
        carry = carry.select(keep)
        current = carry.current_data
    return {"loss": sum(losses) / len(losses), "segments": len(losses), "exact_accuracy": exact[-1],
            "accuracy": accuracy[-1], "steps": steps[-1]}


# ---------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help=f"YAML config (default {DEFAULT_CONFIG.name})")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (repeatable), e.g. --set block=conv --set hrm.hidden_size=96")
    parser.add_argument("--out", default=None, help="run directory (default runs/puzzle-<task>-<model>-<time>)")
    parser.add_argument("--resume", default=None, metavar="DIR", help="continue the run in DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config, out, resuming = resolve_run(
            PuzzleTrainConfig, config_path=args.config, overrides=args.overrides, out=args.out, resume=args.resume,
            default_config=DEFAULT_CONFIG, default_out=lambda c: f"runs/puzzle-{c.task}-{c.model}",
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
    torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    task = get_task(config.task)
    try:
        params = task.check_params(config.task_params)
    except PuzzleError as exc:
        raise ConfigError(f"task_params: {exc}") from exc
    eval_sets = check_eval_sets(task, config)
    stages = check_curriculum(task, config)
    if config.test_moves_readout and config.aux_weight <= 0:
        raise ConfigError("test_moves_readout reads the auxiliary head: it needs aux_weight > 0")
    if config.test_moves_readout and not task.has_aux_readout:
        raise ConfigError(f"test_moves_readout: task {config.task!r} has no readout from its auxiliary head")
    if stages and config.train_pool > 0:
        raise ConfigError("curriculum needs fresh puzzles every batch: set train_pool=0 (a cached pool holds one set of task params)")
    if config.segments < 1:
        raise ConfigError(f"segments={config.segments} must be >= 1")
    if not 0.0 <= config.ema_decay < 1.0:
        raise ConfigError(f"ema_decay={config.ema_decay} must be in [0, 1) (0 = no moving average)")
    out.mkdir(parents=True, exist_ok=True)
    if not resume:
        (out / "config.yaml").write_text(yaml.safe_dump(to_dict(config), sort_keys=False))

    # 1. Data: held-out sets (cached), the training stream.
    t0 = time.time()
    val_spec = next(spec for spec in eval_sets if spec["select"])
    val_n = val_spec["val_n"] or min(256, val_spec["n"])
    val = cached_dataset(task, val_spec["params"], val_n, config.data_seed * 1000 + SPLIT_VAL, config.data_dir, "val")
    stream = TrainStream(task, config, params, stages)
    data_seconds = time.time() - t0

    # 2. Model, loss head, optimizer.
    model = build(config, task, params, eval_sets, stages).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    head = ACTLossHead(model, config.loss_type, q_loss_weight=config.q_loss_weight,
                       aux_label_key="aux" if config.aux_weight > 0 else None, aux_weight=config.aux_weight)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                  betas=tuple(config.betas))
    ema = None
    if config.ema_decay > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
    scored = model if ema is None else ema.module  # the weights validation scores and model.pt keeps
    writer = SummaryWriter(str(out / "tb"))
    record_config = to_dict(config)

    state: dict[str, Any] = {"batches": 0, "opt_steps": 0, "seconds": 0.0, "samples": 0, "best": None, "history": []}
    if resume and (out / "last.pt").exists():
        saved = torch.load(out / "last.pt", map_location=device, weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if ema is not None:
            if "ema" not in saved:
                raise ConfigError(f"{out / 'last.pt'} holds no moving average: resume with ema_decay=0 as it was trained")
            ema.load_state_dict(saved["ema"])
        state = json.loads(saved["state_json"])
        stream.rng.bit_generator.state = json.loads(saved["rng_json"])
        print(f"resuming {out} at batch {state['batches']} ({state['seconds']:.0f}s trained)")

    def save_last() -> None:
        record = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            **({} if ema is None else {"ema": ema.state_dict()}),
            "state_json": json.dumps(state),
            "rng_json": json.dumps(stream.rng.bit_generator.state),
        }
        save_record(record, out / "last.pt")

    # The model's own depth: the control without recurrence runs one segment whatever
    # ``segments`` says; running it more often would only feed its output back as a carry.
    trained_segments = model.config.halt_max_steps
    test_data = [
        cached_dataset(task, spec["params"], spec["n"], config.data_seed * 1000 + SPLIT_TEST * 100 + index,
                       config.data_dir, "test")
        for index, spec in enumerate(eval_sets)
    ]
    if config.wall_budget_s > 0 and "train_budget_s" not in state:  # a resumed run keeps its first budget
        per_pass: dict[tuple[int, ...], float] = {}  # one probe per grid shape (val and test sets share them)

        def cost(inputs: np.ndarray) -> float:
            shape = tuple(inputs.shape[1:])
            if shape not in per_pass:
                per_pass[shape] = seconds_per_pass(model, inputs, device)
            return per_pass[shape]

        reserve = val_n * trained_segments * cost(val["inputs"]) + sum(
            spec["n"] * held_out_passes(spec, config, trained_segments) * cost(data["inputs"])
            for spec, data in zip(eval_sets, test_data))
        state["train_budget_s"] = training_budget(config, time.time() - started, reserve)
        state["test_estimate_s"] = round(reserve, 3)
        print(f"wall budget {config.wall_budget_s:.0f} s: training {state['train_budget_s']:.0f} s "
              f"(time_budget_s {config.time_budget_s:.0f}), test and last validation estimated at {reserve:.0f} s")
    budget = min(config.time_budget_s, state["train_budget_s"]) if config.wall_budget_s > 0 else config.time_budget_s

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
            save_checkpoint(out, scored, config.model, task, params, record_config,
                            extra={"validation": row, "validation_set": val_spec["name"]})
        print(f"\n[batch {row['batch']} {row['seconds']:.0f}s] val {val_spec['name']}: valid {row['valid_rate']:.3f} "
              f"exact {row['exact_accuracy']:.3f} cell {row['cell_accuracy']:.4f}", flush=True)
        return row

    # 3. Train: deep supervision, one optimizer step per segment.
    model.train()
    # The bar counts training seconds (a float): show whole ones, not 26.71634316444397/720.
    bar = tqdm(total=int(budget), initial=int(state["seconds"]), unit="s", disable=not progress,
               desc=f"{config.task}/{config.model}",
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total_fmt} s [{elapsed}<{remaining}{postfix}]")
    last_eval = state["seconds"]
    try:
        while state["batches"] < config.max_batches and state["seconds"] < budget:
            tick = time.time()
            progress_frac = max(state["batches"] / config.max_batches, state["seconds"] / budget)
            batch_np = stream.next(progress_frac)
            batch = {k: torch.as_tensor(v, device=device) for k, v in batch_np.items()}
            for group in optimizer.param_groups:
                group["lr"] = lr_at(config, state["opt_steps"], progress_frac)
            warmup = int(stream.rng.integers(0, config.progressive_segments + 1)) if config.progressive_segments else 0
            if warmup:
                stats = progressive_pass(head, batch, optimizer, warmup, config.segments, config.grad_clip)
            else:
                stats = deep_supervision_pass(head, batch, [optimizer], grad_clip=config.grad_clip)
            if ema is not None:
                ema.update_parameters(model)
            state["opt_steps"] += stats["segments"]
            state["batches"] += 1
            state["samples"] += config.batch_size
            spent = time.time() - tick
            state["seconds"] += spent
            bar.update(spent)
            if state["batches"] % 10 == 0:
                writer.add_scalar("train/loss", stats["loss"], state["batches"])
                writer.add_scalar("train/exact_accuracy", stats["exact_accuracy"], state["batches"])
                writer.add_scalar("train/accuracy", stats["accuracy"], state["batches"])
                writer.add_scalar("train/segments", stats["steps"], state["batches"])
                writer.add_scalar("train/lr", optimizer.param_groups[0]["lr"], state["batches"])
                bar.set_postfix(loss=f"{stats['loss']:.4f}", acc=f"{stats['accuracy']:.3f}",
                                exact=f"{stats['exact_accuracy']:.2f}", seg=f"{stats['steps']:.1f}")
            if state["batches"] % config.checkpoint_every == 0:
                save_last()
            if state["seconds"] - last_eval >= config.eval_every_s:
                tick = time.time()
                validate()
                state["seconds"] += time.time() - tick
                last_eval = state["seconds"]
    except KeyboardInterrupt:
        save_last()
        print(f"\ninterrupted at batch {state['batches']}: continue with python -m agents.train_puzzle --resume {out}")
        return 130
    finally:
        bar.close()
    if not state["history"] or state["history"][-1]["batch"] != state["batches"]:
        validate()
    save_last()
    train_seconds = state["seconds"]

    # 4. Held-out test of the best checkpoint at every test-time segment count.
    best, _, _ = load_checkpoint(out, config.task, device)
    test_started = time.time()
    tests: dict[str, dict[str, Any]] = {}
    for spec, data in zip(eval_sets, test_data):
        rows = {}
        plan = held_out_plan(spec, config, trained_segments)
        one_pass, depths, picks = plan["one_pass"], plan["depths"], plan["picks"]
        suffix = {"last": "", "confident": "p"}  # row "<seg>p": the most confident segment of 1..seg
        if config.test_halt == "max":  # the whole depth curve from one run to its deepest point
            for (segments, pick), outcome in solve_depths(best, task, data["inputs"], data["labels"], depths, picks,
                                                          device=device).items():
                rows[f"{segments}{suffix[pick]}"] = outcome.summary()
        else:
            for pick in picks:
                for segments in depths:
                    rows[f"{segments}{suffix[pick]}"] = solve_set(best, task, data["inputs"], data["labels"], segments,
                                                                  config.test_halt, device=device, pick=pick).summary()
        if config.test_moves_readout:
            for segments in depths:
                rows[f"{segments}m"] = solve_set(best, task, data["inputs"], data["labels"], segments,
                                                 config.test_halt, device=device, readout="moves").summary()
        if config.test_halt == "max" and not one_pass:  # ACT: the Q head decides
            rows[f"q{trained_segments}"] = solve_set(best, task, data["inputs"], data["labels"], trained_segments, "q",
                                                    device=device).summary()
        if spec["views"] > 1:
            top, pick = plan["views_top"], plan["views_pick"]
            mark = ("p" if pick == "confident" else "") + ("v" if config.test_combine == "mean" else "c")
            rows[f"{top}{mark}{spec['views']}"] = solve_set(
                best, task, data["inputs"], data["labels"], top, "max", device=device, views=spec["views"],
                combine=config.test_combine, pick=pick).summary()
        tests[spec["name"]] = rows
    metrics = {
        "task": config.task,
        "model": config.model,
        "block": best.config.block,
        "parameters": n_params,
        "batches": state["batches"],
        "train_samples": state["samples"],
        "train_seconds": round(train_seconds, 1),
        "samples_per_second": round(state["samples"] / max(train_seconds, 1e-9), 1),
        "data_seconds": round(data_seconds, 1),
        "train_budget_s": round(budget, 1),
        "test_seconds": round(time.time() - test_started, 3),
        "test_estimate_s": state.get("test_estimate_s"),  # with the last validation; None: no wall budget
        "wall_seconds": round(time.time() - started, 1),
        "best_validation": state["best"]["row"],
        "validation_set": val_spec["name"],
        "test": tests,
        "history": state["history"],
        "config": record_config,
        "model_config": best.config.to_dict(),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    save_checkpoint(out, best, config.model, task, params, record_config,
                    extra={"validation": state["best"]["row"], "validation_set": val_spec["name"], "test": tests})
    writer.close()
    print()
    print(format_results(tests))
    print(f"\nrun: {out}  ({metrics['train_seconds']:.0f}s training, {n_params:,} parameters, "
          f"{metrics['train_samples']:,} puzzles, {metrics['samples_per_second']} puzzles/s)")
    return 0


def format_results(tests: dict[str, dict[str, dict[str, Any]]]) -> str:
    """One line per (set, segments): exact, valid, cell accuracy, mean segments."""
    lines = [f"{'set':16s} {'segments':>8s} {'n':>6s} {'exact':>8s} {'valid':>8s} {'cell':>8s} {'mean seg':>8s}"]
    for name, rows in tests.items():
        for segments, row in rows.items():
            lines.append(f"{name:16s} {segments:>8s} {row['n']:6d} {row['exact_accuracy']:8.4f} "
                         f"{row['valid_rate']:8.4f} {row['cell_accuracy']:8.4f} {row['mean_segments']:8.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    sys.exit(main())
