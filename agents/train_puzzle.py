"""Train a model to solve whole puzzles (maze, Sudoku, ARC-like): the HRM's supervised reasoning mode.

    python -m agents.train_puzzle --config configs/maze_hrm.yaml [--set key=value ...] [--out DIR]
    python -m agents.train_puzzle --resume DIR
    hrm-train --task sudoku --set model=transformer    (--task NAME: configs/<NAME>_hrm.yaml)
    torchrun --nproc_per_node N -m agents.train_puzzle --config ...     (data parallel, below)

Reads top to bottom, one phase function each: data (the task of :mod:`agents.puzzles`, its
held-out validation and test sets cached under ``data/puzzles``, the training stream) -> model
(``model=hrm|transformer|deepthinking|gru``, ``block=attention|conv|hybrid``, ``scale=cpu|paper``)
-> fit: deep supervision, every batch runs segments until the ACT head halts (or ``segments``),
each segment its own loss (task + ACT Q losses + optional auxiliary target) and its own AdamW
step, learning rate with warmup and cosine decay over ``max_batches`` -> validation every
``eval_every`` batches keeping the best checkpoint ``DIR/model.pt`` -> held-out test of every
eval set at each test-time segment count -> report: table and ``DIR/metrics.json``. Every
validation also redraws ``DIR/curves.png``: the validation scores against the puzzles trained on.

A run is bounded by samples, not by the clock: ``max_batches`` batches of ``batch_size``
puzzles, and everything the run decides (learning rate, validations, checkpoints) counts
batches. So the same config and seed train the same weights on a fast or a slow machine (on
a CPU with the same ``num_threads``, the same dtype; ``metrics.json`` records both with the
machine); only the wall time differs. ``time_budget_s`` is an opt-in safety cap on top.

The run directory is an :class:`agents.common.run.RunDirectory`: ``DIR/last.pt`` (tensors plus
the typed :class:`PuzzleState` as JSON) lets ``--resume`` continue a stopped run, in training
or in its test. Ctrl-C during a training batch lets the batch finish, then saves and exits 130
with the resume command, so that the resumed run ends with the weights an uninterrupted one
would have; a second Ctrl-C stops at once, dropping the half-trained batch (``--resume`` then
continues from the last saved batch). Ctrl-C during a validation or the test saves at once.

Tasks whose examples differ by identity (``arc``) give every example a puzzle identifier; with
``hrm.puzzle_emb_ndim > 0`` the model reads it as a zero-initialised puzzle embedding (prepended
tokens), whose rows the sparse SignSGD optimizer trains (``puzzle_emb_lr``, only the rows in the
batch), beside AdamW on every other weight; test rows then also score each task.

Under ``torchrun`` (``WORLD_SIZE > 1``) every process trains its shard of each global batch of
``batch_size`` puzzles (gloo on CPU, NCCL on CUDA): all ranks draw the same batch from the same
stream and keep their rows, run the same number of segments, and sum gradients (and the sparse
embedding rows) over the ranks before each step, by hand as the reference HRM does, since a
batch's segment count varies and DDP's hooks assume one forward per step. So N processes train
the weights one process would, up to float rounding and the halting exploration drawn per rank,
and the sample budget is global. Rank 0 alone writes the run directory (config, checkpoints,
log, validation, test); ``--resume`` works under torchrun with any process count.
"""

from __future__ import annotations

import argparse
import math
import os
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

from agents.common.machine import machine_facts, resolve_device, seed_everything
from agents.common.run import LAST_FILE, RunDirectory, RunError, interrupted_exit, open_run
from agents.config import ConfigError, load_config, to_dict
from agents.hrm import losses
from agents.puzzles import TASKS, PuzzleError, get_task
from agents.puzzles.base import PuzzleTask
from agents.puzzles.checkpoint import MODEL_FILE, load_checkpoint, save_checkpoint
from agents.puzzles.cli import Parser, fail
from agents.puzzles.data import cached_dataset
from agents.puzzles.engine import solve_depths, solve_set
from agents.puzzles.sudoku import SudokuTask

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
DEFAULT_TASK = "maze"
DEFAULT_CONFIG = CONFIG_DIR / f"{DEFAULT_TASK}_hrm.yaml"
COMMAND = "agents.train_puzzle"
#: Seed offsets of the data splits (train stream, validation sets, test sets), and of the fresh
#: held-out sets ``agents.solve`` draws, which no training split uses (:func:`held_out_seed`).
SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST, SPLIT_HELD_OUT = 0, 1, 2, 3
#: The seed offset of the demonstration pairs ``agents.solve`` gives unseen puzzles (test-time training).
SPLIT_DEMOS = 4
#: The validation scores a run records (TensorBoard ``val/<key>``, ``curves.png``).
VAL_METRICS = ("exact_accuracy", "valid_rate", "cell_accuracy")
CURVES_FILE = "curves.png"
CURVE_LABELS = {"exact_accuracy": "exact", "valid_rate": "valid", "cell_accuracy": "cell accuracy"}


def default_config_for(task: str) -> Path:
    """The default config of a registered task, ``configs/<task>_hrm.yaml``; a ``ConfigError``
    listing the known tasks otherwise. The one place that knows where default configs live."""
    path = CONFIG_DIR / f"{task}_hrm.yaml"
    if task not in TASKS or not path.is_file():
        known = [name for name in sorted(TASKS) if (CONFIG_DIR / f"{name}_hrm.yaml").is_file()]
        raise ConfigError(f"unknown task {task!r}; known tasks: {', '.join(known)}")
    return path


def held_out_seed(data_seed: int, index: int) -> int:
    """The seed of fresh held-out set ``index``: training draws its pool, validation and test sets
    at ``data_seed * 1000`` + 0, 1 and 200 + i (its fresh stream from ``[data_seed, 0, seed]``),
    never at + 300 + i."""
    if not 0 <= index < 100:
        raise ConfigError(f"held-out set index {index} is out of range 0..99")
    return data_seed * 1000 + SPLIT_HELD_OUT * 100 + index


def demos_seed(data_seed: int, index: int) -> int:
    """The seed of the demonstration pairs of held-out set ``index`` (+ 400 + i, used by no split)."""
    return held_out_seed(data_seed, index) + (SPLIT_DEMOS - SPLIT_HELD_OUT) * 100


@dataclass
class PuzzleTrainConfig:
    """Every setting of a puzzle training run (YAML keys; ``--set`` overrides)."""

    task: str = "maze"
    task_params: dict = field(default_factory=dict)  # the task's sampling parameters
    model: Literal["hrm", "transformer", "deepthinking", "gru"] = "hrm"
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
    #: Sparse SignSGD on the puzzle embeddings (models with hrm.puzzle_emb_ndim > 0): its peak
    #: learning rate (same warmup and cosine as lr) and weight decay, on the batch's rows only.
    puzzle_emb_lr: float = 1e-2
    puzzle_emb_weight_decay: float = 0.1
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


def check_config(config: PuzzleTrainConfig, info: Dist | None = None) -> None:
    """Every setting, the task's and the eval sets' included (and, under torchrun, the global batch
    against the process count ``info``): a ``ConfigError`` naming the key, its value and what is
    allowed, before anything is written."""
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
    resolve_device(config.device)
    if info is not None and info.world > config.batch_size:
        raise ConfigError(f"batch_size={config.batch_size} is the global batch: it needs at least one puzzle "
                          f"for each of the {info.world} processes")  # fmt: skip
    task, params, _ = task_setup(config)
    ndim = config.hrm.get("puzzle_emb_ndim", 0)
    if ndim and not task.num_identifiers(params):
        raise ConfigError(f"hrm.puzzle_emb_ndim={ndim}: {task.name} examples carry no puzzle identifier to embed; "
                          "puzzle embeddings are for tasks told apart by identity (arc), use 0")  # fmt: skip


def task_setup(config: PuzzleTrainConfig) -> tuple[PuzzleTask, dict[str, Any], list[dict[str, Any]]]:
    """``(task, its checked training params, the checked eval sets)`` of ``config``."""
    task = get_task(config.task)
    try:
        params = task.check_params(config.task_params)
        task.check_training_params(params)
    except PuzzleError as exc:
        raise ConfigError(f"task_params: {exc}") from exc
    eval_sets = check_eval_sets(task, config)
    for spec in eval_sets:  # one model, one meaning of every puzzle identifier
        if task.identifier_layout(spec["params"]) != task.identifier_layout(params):
            raise ConfigError(f"eval set {spec['name']!r} changes what the puzzle identifiers mean "
                              f"({task.identifier_layout(spec['params'])} vs the training's "
                              f"{task.identifier_layout(params)}): keep those params as trained")  # fmt: skip
    return task, params, eval_sets


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
        where = f"eval_sets[{i}].views" if "views" in spec else "test_views"
        if isinstance(views, bool) or not isinstance(views, int) or not 1 <= views <= 8:
            raise ConfigError(f"{where}={views!r} must be an int 1..8 (dihedral views of each puzzle)")
        if views > 1 and not task.dihedral_views:
            raise ConfigError(f"{where}={views}: a turned {task.name} puzzle is not one of its kind; "
                              "vote over its augmentation variants instead (agents.solve --vote K)")  # fmt: skip
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
        """The next global batch (every rank of a torchrun job draws the same one)."""
        n = self.config.batch_size
        if self.pool is not None:
            pick = self.rng.integers(0, len(self.pool["inputs"]), size=n)
            drawn = {key: values[pick] for key, values in self.pool.items()}
        elif isinstance(self.task, SudokuTask):
            inputs, labels = self.task.sample_with_solutions(self.rng, n, self.params)
            drawn = {"inputs": inputs, "labels": labels}
        else:
            drawn = self.task.sample_examples(self.rng, n, self.params)
        inputs, labels = drawn["inputs"], drawn["labels"]
        if self.config.augment:
            inputs, labels = self.task.augment(self.rng, inputs, labels)
        batch = {"inputs": inputs.astype(np.int64), "labels": labels.astype(np.int64)}
        if "puzzle_identifiers" in drawn:
            batch["puzzle_identifiers"] = drawn["puzzle_identifiers"].astype(np.int64)
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
    if hrm.get("puzzle_emb_ndim", 0):  # one embedding row per identifier the task can give
        hrm["num_puzzle_identifiers"] = task.num_identifiers(params)
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
def finish_batch_on_ctrl_c() -> Iterator[None]:
    """Around one training batch: a first Ctrl-C (SIGINT) lets the batch finish and raises
    ``KeyboardInterrupt`` after it, so the state saved then is a whole number of batches; a
    second one raises at once. Outside the main thread (no signal handlers there) Ctrl-C keeps
    its default."""
    requested: list[bool] = []

    def handler(signum: int, frame: Any) -> None:
        if requested:
            raise KeyboardInterrupt
        requested.append(True)
        print("\nCtrl-C: stopping after this batch (press again to stop at once)", file=sys.stderr, flush=True)

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if requested:
        raise KeyboardInterrupt


# ---------------------------------------------------------------------------------------
#: Seconds a rank waits in a collective: rank 0 validates while the others wait at the next batch.
DDP_TIMEOUT_S = 3600
#: Seconds a rank waits at a barrier: for rank 0's data at the start and its test at the end (a
#: process leaving a gloo job while another still runs can abort at exit, so they all leave together).
DDP_FINAL_WAIT_S = 7 * 24 * 3600


@dataclass(frozen=True)
class Dist:
    """This process's place in a torchrun job (``world == 1``: a plain single-process run)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    #: A gloo group for waits and small messages, on CPU whatever the device (long timeout).
    group: Any = field(default=None, compare=False, repr=False)

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes the run directory, validates and tests."""
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Dist:
        """What torchrun's environment says (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``)."""
        try:
            rank, world, local = (int(os.environ.get(key, default)) for key, default in
                                  (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0")))  # fmt: skip
        except ValueError as exc:
            raise ConfigError(f"torchrun environment: RANK/WORLD_SIZE/LOCAL_RANK must be integers ({exc})") from None
        if world < 1 or not 0 <= rank < world:
            raise ConfigError(f"torchrun environment: RANK={rank} WORLD_SIZE={world} is not a process of a job")
        return cls(rank, world, local)

    def sum(self, values: Sequence[float]) -> list[float]:
        """``values`` summed over the ranks (float64, on the CPU: gloo carries it on any machine)."""
        tensor = torch.tensor(list(values), dtype=torch.float64)
        if self.world > 1:
            torch.distributed.all_reduce(tensor)
        return tensor.tolist()

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (decisions that read rank 0's clock)."""
        if self.world == 1:
            return flag
        tensor = torch.tensor([int(flag)])
        torch.distributed.broadcast(tensor, 0)
        return bool(tensor.item())

    def shard(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """This rank's contiguous rows of a global batch (shares differ by at most one row)."""
        if self.world == 1:
            return batch
        n = len(batch["inputs"])
        rows = slice(self.rank * n // self.world, (self.rank + 1) * n // self.world)
        return {key: value[rows] for key, value in batch.items()}

    def barrier(self) -> None:
        """Wait for every rank (over gloo, up to :data:`DDP_FINAL_WAIT_S`)."""
        if self.world > 1:
            torch.distributed.barrier(group=self.group)


def init_distributed(info: Dist) -> Dist:
    """Join the torchrun job: gloo for CPU tensors, NCCL for CUDA ones when there is a GPU (used
    only if training runs there). Returns ``info`` with its gloo group for waits and messages."""
    import dataclasses
    import datetime

    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(info.local_rank % torch.cuda.device_count())
        backend = "cpu:gloo,cuda:nccl"
    torch.distributed.init_process_group(backend, timeout=datetime.timedelta(seconds=DDP_TIMEOUT_S))
    group = torch.distributed.new_group(backend="gloo", timeout=datetime.timedelta(seconds=DDP_FINAL_WAIT_S))
    return dataclasses.replace(info, group=group)


def run_device(config: PuzzleTrainConfig, info: Dist) -> torch.device:
    """The config's device; under torchrun a CUDA run takes the GPU of its local rank."""
    device = resolve_device(config.device)
    if device.type != "cuda" or info.world == 1:
        return device
    if info.local_rank >= torch.cuda.device_count():
        raise ConfigError(f"local rank {info.local_rank} has no GPU: {torch.cuda.device_count()} here, "
                          "start at most that many processes per node")  # fmt: skip
    return torch.device("cuda", info.local_rank)


class ReadOnlyRun(RunDirectory):
    """The run directory as a rank other than 0 holds it: it reads the config and the resume
    checkpoint; any write raises (rank 0 alone writes the run)."""

    def _refuse(self, name: str) -> Path:
        raise RunError(f"{self.path / name}: only rank 0 writes the run directory")

    def recorded(self, name: str) -> Path:
        return self._refuse(name)

    def write_text(self, name: str, text: str) -> Path:
        return self._refuse(name)

    def save_arrays(self, name: str, **arrays: np.ndarray) -> Path:
        return self._refuse(name)

    def save_checkpoint(self, state: Any, tensors: dict[str, Any], rng: dict[str, Any] | None = None) -> Path:
        return self._refuse(LAST_FILE)


class NullWriter:
    """TensorBoard's writer for the ranks that log nothing."""

    def add_scalar(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def reduce_gradients(params: list[torch.Tensor], info: Dist) -> None:
    """Sum every gradient over the ranks in one all-reduce: a rank without one (no rows left, or
    the parameter unused) adds zeros; one no rank has stays None, as in a single process."""
    grads = [p.grad.reshape(-1).float() if p.grad is not None else p.new_zeros(p.numel()) for p in params]
    present = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=params[0].device)
    buffer = torch.cat([*grads, present])
    torch.distributed.all_reduce(buffer)
    flags, offset = buffer[-len(params) :].tolist(), 0
    for param, flag in zip(params, flags):
        if flag > 0:
            param.grad = buffer[offset : offset + param.numel()].view_as(param).to(param.dtype)
        offset += param.numel()


def ddp_supervision_pass(ctx: PuzzleRun, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    """:func:`agents.hrm.losses.deep_supervision_pass` on this rank's shard of a global batch.

    Every rank runs as many segments as the slowest row of any rank needs (a rank whose rows have
    all halted takes part with none); a segment's loss is the mean over the reasoning rows of all
    ranks (local sum / global count); gradients are summed over the ranks, the sparse optimizer
    sums its rows itself, then every rank clips and steps alike: one process's update on the
    whole batch. Returns its statistics over the whole batch.
    """
    head, info, optimizers = ctx.head, ctx.dist, ctx.optimizers
    params = [p for opt in optimizers for group in opt.param_groups for p in group["params"] if p.requires_grad]
    for opt in optimizers:
        opt.zero_grad()
    carry, current = head.initial_carry(batch), dict(batch)
    n_rows = batch["inputs"].shape[0]
    active = torch.arange(n_rows, device=ctx.device)
    per_row = torch.zeros(3, n_rows, dtype=torch.float64)  # accuracy, exact, segments where each row halted
    losses_part: list[float] = []
    while info.sum([active.numel()])[0] > 0:
        loss, count = None, 0.0
        if active.numel():
            carry, loss, metrics, outputs, _ = head(carry, current, return_keys=())
            count = float(metrics["count"])
        total = info.sum([count])[0]
        part = 0.0
        if loss is not None:
            if total > 0:
                scaled = loss * (count / total)
                scaled.backward()
                part = float(scaled.detach())
            halted = carry.halted
            done = active[halted].cpu()
            per_row[0, done] = outputs["row_accuracy"][halted].double().cpu()
            per_row[1, done] = outputs["row_exact"][halted].double().cpu()
            per_row[2, done] = carry.steps[halted].double().cpu()
            active = active[~halted]
            if active.numel():
                carry = carry.select(~halted)
                current = carry.current_data
        reduce_gradients(params, info)
        if ctx.config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, ctx.config.grad_clip)
        for opt in optimizers:
            opt.step()
        for opt in optimizers:
            opt.zero_grad()
        losses_part.append(part)
    sums = info.sum([*per_row.sum(1).tolist(), n_rows, *losses_part])
    rows, segment_losses = sums[3], sums[4:]
    return {"loss": sum(segment_losses) / len(segment_losses), "segments": len(segment_losses),
            "segment_losses": segment_losses, "accuracy": sums[0] / rows, "exact_accuracy": sums[1] / rows,
            "steps": sums[2] / rows}  # fmt: skip


# ---------------------------------------------------------------------------------------
@dataclass
class PuzzleState:
    """Everything a resumed puzzle run needs besides its tensors (saved in ``last.pt`` as JSON)."""

    phase: Literal["train", "test", "done"] = "train"
    batches: int = 0
    opt_steps: int = 0  # optimizer steps (one per segment): the warmup counts them
    samples: int = 0
    seconds: float = 0.0  # training and validation: what time_budget_s caps
    train_seconds: float = 0.0  # training passes alone
    test_seconds: float = 0.0
    best: dict | None = None  # {"score": [valid, exact, cell], "row": validation row}
    history: list = field(default_factory=list)
    stopped_by: str = "max_batches"
    tests: dict = field(default_factory=dict)  # eval set name -> its test rows, as each set finishes


@dataclass
class PuzzleData:
    """The task, its held-out validation and test sets, and the training stream."""

    task: PuzzleTask
    params: dict[str, Any]
    eval_sets: list[dict[str, Any]]
    val_spec: dict[str, Any]
    val: dict[str, np.ndarray]
    tests: list[dict[str, np.ndarray]]
    stream: TrainStream
    seconds: float


@dataclass
class PuzzleRun:
    """What the phases share: the config, the run directory, the data, the model and its state."""

    config: PuzzleTrainConfig
    run: RunDirectory
    data: PuzzleData
    model: Any
    head: Any
    optimizer: torch.optim.Optimizer
    ema: Any
    writer: Any
    device: torch.device
    sparse: Any = None  # the puzzle embeddings' SignSGD (models with puzzle embeddings)
    dist: Dist = field(default_factory=Dist)
    state: PuzzleState = field(default_factory=PuzzleState)
    in_batch: bool = False  # a batch is half trained: its weights are not saved
    saved_at: int = 0  # the batch last.pt holds

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        """AdamW, then the sparse embedding optimizer if any: each steps after every segment."""
        return [self.optimizer] if self.sparse is None else [self.optimizer, self.sparse]

    @property
    def scored(self) -> torch.nn.Module:
        """The weights validation scores and ``model.pt`` keeps: the moving average, if any."""
        return self.model if self.ema is None else self.ema.module

    @property
    def trained_segments(self) -> int:
        """The model's own depth: a control without recurrence runs one segment whatever
        ``segments`` says (running it more often would only feed its output back as a carry)."""
        return self.model.config.halt_max_steps


def load_data(config: PuzzleTrainConfig) -> PuzzleData:
    """Phase 1: the task, the held-out validation and test sets (cached), the training stream."""
    started = time.time()
    task, params, eval_sets = task_setup(config)
    val_spec = next(spec for spec in eval_sets if spec["select"])
    val_n = val_spec["val_n"] or min(256, val_spec["n"])
    seed = config.data_seed * 1000
    val = cached_dataset(task, val_spec["params"], val_n, seed + SPLIT_VAL, config.data_dir, "val")
    tests = [
        cached_dataset(task, spec["params"], spec["n"], seed + SPLIT_TEST * 100 + index, config.data_dir, "test")
        for index, spec in enumerate(eval_sets)
    ]
    stream = TrainStream(task, config, params)
    return PuzzleData(task, params, eval_sets, val_spec, val, tests, stream, time.time() - started)


def load_data_in_turn(config: PuzzleTrainConfig, info: Dist) -> PuzzleData:
    """:func:`load_data`; under torchrun rank 0 makes and caches the sets first and the others
    then read them, so no two processes write one cache file."""
    if not info.main:
        info.barrier()
    data = load_data(config)
    if info.main:
        info.barrier()
    return data


def build_run(
    config: PuzzleTrainConfig, run: RunDirectory, data: PuzzleData, device: torch.device, info: Dist | None = None
) -> PuzzleRun:
    """Phase 2: the model, its ACT loss head, AdamW, the sparse SignSGD of its puzzle embeddings
    (if any) and the optional moving average of the weights (rank 0: the others never score)."""
    from torch.utils.tensorboard import SummaryWriter

    from agents.hrm.sparse_embedding import CastedSparseEmbeddingSignSGD_Distributed

    info = info or Dist()
    model = build(config, data.task, data.params, data.eval_sets).to(device)
    head = losses.ACTLossHead(
        model,
        config.loss_type,
        q_loss_weight=config.q_loss_weight,
        aux_label_key="aux" if config.aux_weight > 0 else None,
        aux_weight=config.aux_weight,
    )
    if info.world > 1:  # every rank starts from rank 0's weights (built alike from one seed anyway)
        for tensor in model.state_dict().values():
            torch.distributed.broadcast(tensor, 0)
    dense = [param for name, param in model.named_parameters() if not name.startswith("puzzle_emb.")]
    optimizer = torch.optim.AdamW(dense, lr=config.lr, weight_decay=config.weight_decay, betas=tuple(config.betas))
    sparse = None
    if getattr(model, "puzzle_emb", None) is not None:
        sparse = CastedSparseEmbeddingSignSGD_Distributed(
            model.puzzle_emb.parameters(), world_size=info.world, lr=config.puzzle_emb_lr,
            weight_decay=config.puzzle_emb_weight_decay,
        )  # fmt: skip
    ema = None
    if config.ema_decay > 0 and info.main:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
    writer = SummaryWriter(str(run.file("tb"))) if info.main else NullWriter()
    return PuzzleRun(config, run, data, model, head, optimizer, ema, writer, device, sparse, info)


def seed_rank(ctx: PuzzleRun) -> None:
    """Ranks other than 0 draw their halting exploration from a generator of their own (rank 0
    keeps the run's, which last.pt saves), seeded by the seed, rank and batch."""
    if ctx.dist.rank > 0:
        torch.manual_seed(ctx.config.seed * 1_000_003 + ctx.dist.rank * 7_919 + ctx.state.batches)


def save_last(ctx: PuzzleRun) -> None:
    """The resume checkpoint (rank 0): weights, optimizer, moving average, typed state, every generator."""
    if not ctx.dist.main:
        return
    tensors = {"model": ctx.model.state_dict(), "optimizer": ctx.optimizer.state_dict()}
    if ctx.ema is not None:
        tensors["ema"] = ctx.ema.state_dict()
    tensors["torch_rng"] = torch.get_rng_state()  # halting exploration draws from torch's generator
    if ctx.device.type == "cuda":
        tensors["cuda_rng"] = torch.cuda.get_rng_state(ctx.device)
    ctx.run.save_checkpoint(ctx.state, tensors, {"stream": ctx.data.stream.rng.bit_generator.state})
    ctx.saved_at = ctx.state.batches


def save_on_interrupt(ctx: PuzzleRun) -> None:
    """What Ctrl-C saves: the state after the last whole batch (a half-trained one is dropped)."""
    if not ctx.in_batch:
        save_last(ctx)


def restore(ctx: PuzzleRun) -> None:
    """Continue from ``last.pt``: weights, optimizer, moving average, state and generators."""
    state, tensors, rng = ctx.run.load_checkpoint(PuzzleState, map_location=ctx.device)
    ctx.model.load_state_dict(tensors["model"])
    ctx.optimizer.load_state_dict(tensors["optimizer"])
    if ctx.ema is not None:
        ctx.ema.load_state_dict(tensors["ema"])
    ctx.data.stream.rng.bit_generator.state = rng["stream"]
    torch.set_rng_state(tensors["torch_rng"].cpu())
    if ctx.device.type == "cuda" and "cuda_rng" in tensors:
        torch.cuda.set_rng_state(tensors["cuda_rng"].cpu(), ctx.device)
    ctx.state, ctx.saved_at = state, state.batches
    seed_rank(ctx)
    if ctx.dist.main:
        print(f"resuming {ctx.run.path} at batch {state.batches} ({state.phase} phase, {state.seconds:.0f}s trained)")


# ---------------------------------------------------------------------------------------
def train_batch(ctx: PuzzleRun) -> dict[str, float]:
    """One batch of deep supervision (one optimizer step per segment), counted once it is whole."""
    config, state = ctx.config, ctx.state
    tick = time.time()
    ctx.in_batch = True
    with finish_batch_on_ctrl_c():
        shard = ctx.dist.shard(ctx.data.stream.next())
        batch = {k: torch.as_tensor(v, device=ctx.device) for k, v in shard.items()}
        lr = lr_at(config, state.opt_steps, state.batches / config.max_batches)
        for group in ctx.optimizer.param_groups:
            group["lr"] = lr
        for group in ctx.sparse.param_groups if ctx.sparse is not None else []:
            group["lr"] = lr * config.puzzle_emb_lr / config.lr if config.lr > 0 else 0.0
        if ctx.dist.world > 1:
            stats = ddp_supervision_pass(ctx, batch)
        else:
            stats = losses.deep_supervision_pass(ctx.head, batch, ctx.optimizers, grad_clip=config.grad_clip)
        if ctx.ema is not None:
            ctx.ema.update_parameters(ctx.model)
        spent = time.time() - tick
        state.opt_steps += stats["segments"]
        state.batches += 1
        state.samples += config.batch_size
        state.seconds += spent
        state.train_seconds += spent
        ctx.in_batch = False
    return stats


def log_batch(ctx: PuzzleRun, stats: dict[str, float], bar: Any) -> None:
    """TensorBoard scalars and the progress bar's numbers, every 10 batches."""
    step = ctx.state.batches
    bar.update(1)
    if step % 10:
        return
    for key, name in (("loss", "loss"), ("exact_accuracy", "exact_accuracy"), ("accuracy", "accuracy"),
                      ("steps", "segments")):  # fmt: skip
        ctx.writer.add_scalar(f"train/{name}", stats[key], step)
    ctx.writer.add_scalar("train/lr", ctx.optimizer.param_groups[0]["lr"], step)
    bar.set_postfix(loss=f"{stats['loss']:.4f}", acc=f"{stats['accuracy']:.3f}",
                    exact=f"{stats['exact_accuracy']:.2f}", seg=f"{stats['steps']:.1f}")  # fmt: skip


def identified(task: PuzzleTask, params: dict[str, Any], data: dict[str, np.ndarray]) -> dict[str, Any]:
    """The solving keywords of a set whose examples carry puzzle identifiers: the identifiers and
    the task each names (per-task scores); none for a set without."""
    if "puzzle_identifiers" not in data:
        return {}
    identifiers = data["puzzle_identifiers"]
    return {"identifiers": identifiers, "groups": task.groups(identifiers, params)}


def validate(ctx: PuzzleRun) -> dict[str, Any]:
    """One validation row on the selected set; its weights become ``model.pt`` when they score best."""
    state, data = ctx.state, ctx.data
    tick = time.time()
    result = solve_set(ctx.scored, data.task, data.val["inputs"], data.val["labels"], ctx.trained_segments, "max",
                       device=ctx.device, **identified(data.task, data.val_spec["params"], data.val))  # fmt: skip
    ctx.model.train()
    row = {"batch": state.batches, "seconds": round(state.seconds, 1), **result.summary()}
    state.history.append(row)
    for key in VAL_METRICS:
        ctx.writer.add_scalar(f"val/{key}", row[key], state.batches)
    score = (row["valid_rate"], row["exact_accuracy"], row["cell_accuracy"])
    if replaces_best(score, state.best and state.best["score"]):
        state.best = {"score": list(score), "row": row}
        keep_model(ctx, ctx.scored, {"validation": row})
    write_curves(ctx)
    name = data.val_spec["name"]
    print(f"\n[batch {row['batch']} {row['seconds']:.0f}s] val {name}: valid {row['valid_rate']:.3f} "
          f"exact {row['exact_accuracy']:.3f} cell {row['cell_accuracy']:.4f}", flush=True)  # fmt: skip
    state.seconds += time.time() - tick
    return row


def write_curves(ctx: PuzzleRun) -> None:
    """Redraw ``curves.png`` from the validation history (written aside, renamed, then recorded);
    without matplotlib the run goes on without it."""
    from agents.common.plots import plot_history

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(f"matplotlib is not installed: no {CURVES_FILE}", file=sys.stderr)
        return
    config, spec = ctx.config, ctx.data.val_spec
    title = f"{config.task}/{config.model}: validation on {spec['name']} ({ctx.state.history[-1]['n']} puzzles)"
    labels = {key: CURVE_LABELS.get(key, key) for key in VAL_METRICS}
    plot_history(ctx.state.history, "batch", labels, ctx.run.file(CURVES_FILE), title, x_scale=config.batch_size,
                 x_label="training puzzles seen")  # fmt: skip
    ctx.run.recorded(CURVES_FILE)


def keep_model(ctx: PuzzleRun, model: torch.nn.Module, extra: dict[str, Any]) -> None:
    """Write ``model.pt`` (the data-only puzzle checkpoint) and record it in the run."""
    extra = {**extra, "validation_set": ctx.data.val_spec["name"]}
    config, data = ctx.config, ctx.data
    save_checkpoint(ctx.run.path, model, config.model, data.task, data.params, to_dict(config), extra=extra)
    ctx.run.recorded(MODEL_FILE)


def validated(state: PuzzleState) -> bool:
    return bool(state.history) and state.history[-1]["batch"] == state.batches


def over_time_cap(ctx: PuzzleRun) -> bool:
    cap = ctx.config.time_budget_s or 0.0
    return bool(cap) and ctx.state.seconds >= cap


def fit(ctx: PuzzleRun, progress: bool) -> None:
    """Phase 3: ``max_batches`` batches (or until ``time_budget_s``), checkpoints and validations between."""
    from tqdm import tqdm

    config, state = ctx.config, ctx.state
    ctx.model.train()
    bar = tqdm(total=config.max_batches, initial=state.batches, unit="batch", disable=not progress,
               desc=f"{config.task}/{config.model}")  # fmt: skip
    main = ctx.dist.main  # under torchrun rank 0 validates while the others wait at the next batch
    try:
        while True:
            if main and state.batches and state.batches % config.eval_every == 0 and not validated(state):
                validate(ctx)
            if state.batches >= config.max_batches:
                break
            if ctx.dist.agree(over_time_cap(ctx)):
                state.stopped_by = "time_budget_s"
                print(f"\ntime_budget_s={config.time_budget_s:g} reached after {state.batches} of "
                      f"max_batches={config.max_batches} batches ({state.seconds:.0f} s of training and "
                      "validation): stopping before the schedule ends")  # fmt: skip
                break
            log_batch(ctx, train_batch(ctx), bar)
            if state.batches % config.checkpoint_every == 0:
                save_last(ctx)
    finally:
        bar.close()
    if main and not validated(state):
        validate(ctx)
    state.phase = "test"
    save_last(ctx)


# ---------------------------------------------------------------------------------------
def test_best(ctx: PuzzleRun) -> torch.nn.Module:
    """Phase 4: the kept ``model.pt`` on every eval set's test split, set by set (a resumed test
    goes on at the first set it had not finished); the model it tested."""
    config, state, data = ctx.config, ctx.state, ctx.data
    best, _, _ = load_checkpoint(ctx.run.verified(MODEL_FILE), config.task, ctx.device)
    for spec, test_set in zip(data.eval_sets, data.tests):
        if spec["name"] in state.tests:
            continue
        tick = time.time()
        rows = test_rows(ctx, best, spec, test_set)
        state.test_seconds += time.time() - tick
        state.tests[spec["name"]] = rows
    return best


def test_rows(
    ctx: PuzzleRun, best: torch.nn.Module, spec: dict[str, Any], test_set: dict[str, np.ndarray]
) -> dict[str, dict[str, Any]]:
    """One eval set's rows: each test-time segment count (``<seg>``; ``<seg>p`` picking each
    puzzle's most confident segment), the ACT-halted ``q<seg>``, and the combined views row
    (tasks with identifiers: each row also scores every task, ``per_task``)."""
    config, task = ctx.config, ctx.data.task
    inputs, labels = test_set["inputs"], test_set["labels"]
    keys = {"device": ctx.device, **identified(task, spec["params"], test_set)}
    trained = ctx.trained_segments
    one_pass = trained == 1  # no test-time depth to scan, no halting to test
    picks = ("last", "confident") if config.test_pick == "confident" and not one_pass else ("last",)
    suffix = {"last": "", "confident": "p"}
    depths = [1] if one_pass else spec["segments"]
    rows = {}
    if config.test_halt == "max":  # the whole depth curve from one run to its deepest point
        for (segments, pick), outcome in solve_depths(best, task, inputs, labels, depths, picks, **keys).items():
            rows[f"{segments}{suffix[pick]}"] = outcome.summary()
    else:
        for pick in picks:
            for segments in depths:
                outcome = solve_set(best, task, inputs, labels, segments, config.test_halt, pick=pick, **keys)
                rows[f"{segments}{suffix[pick]}"] = outcome.summary()
    if config.test_halt == "max" and not one_pass:  # ACT: the Q head decides
        rows[f"q{trained}"] = solve_set(best, task, inputs, labels, trained, "q", **keys).summary()
    if spec["views"] > 1:
        top, pick = (1, "last") if one_pass else (spec["views_at"], config.test_pick)
        mark = ("p" if pick == "confident" else "") + ("v" if config.test_combine == "mean" else "c")
        rows[f"{top}{mark}{spec['views']}"] = solve_set(
            best, task, inputs, labels, top, "max", views=spec["views"], combine=config.test_combine, pick=pick,
            **keys,
        ).summary()  # fmt: skip
    return rows


def report(ctx: PuzzleRun, best: torch.nn.Module, started: float) -> None:
    """Phase 5: ``metrics.json`` (with the machine it ran on), ``model.pt`` with its test, the table."""
    config, state = ctx.config, ctx.state
    n_params = sum(p.numel() for p in ctx.model.parameters())
    dtype = ctx.model.compute_dtype(ctx.device)  # bf16 asked on a CPU without bf16 units: float32
    metrics = {
        "task": config.task, "model": config.model, "block": best.config.block, "parameters": n_params,
        "stopped_by": state.stopped_by,  # "max_batches" (the run's bound) or "time_budget_s" (the opt-in cap)
        "batches": state.batches, "max_batches": config.max_batches, "train_samples": state.samples,
        "processes": ctx.dist.world,  # torchrun processes that trained it (samples count all of them)
        "train_seconds": round(state.train_seconds, 1),  # training passes, over every start of the run
        "validation_seconds": round(state.seconds - state.train_seconds, 1),
        "samples_per_s": round(state.samples / max(state.train_seconds, 1e-9), 1),
        "data_seconds": round(ctx.data.seconds, 1), "test_seconds": round(state.test_seconds, 1),
        "wall_seconds": round(time.time() - started, 1),  # this start of the command, to its metrics
        "machine": machine_facts(ctx.device, dtype), "best_validation": state.best["row"],
        "validation_set": ctx.data.val_spec["name"], "test": state.tests, "history": state.history,
        "config": to_dict(config), "model_config": best.config.to_dict(),
    }  # fmt: skip
    ctx.run.write_json("metrics.json", metrics)
    keep_model(ctx, best, {"validation": state.best["row"], "test": state.tests})
    print()
    print(format_results(state.tests))
    machine = metrics["machine"]
    print(f"\nrun: {ctx.run.path}  ({state.batches:,} batches, {state.samples:,} puzzles, stopped by "
          f"{state.stopped_by}; {state.train_seconds:.0f}s training, {metrics['samples_per_s']} puzzles/s, "
          f"{n_params:,} parameters, {machine['dtype']} on {machine['device']})")  # fmt: skip


def train(
    config: PuzzleTrainConfig,
    run: RunDirectory,
    resume: bool = False,
    progress: bool = True,
    info: Dist | None = None,
) -> int:
    """A puzzle run, phase by phase: data, model, fit (validating and keeping the best), test,
    report; under torchrun (``info``) every rank trains, rank 0 alone goes on to test and report."""
    started = time.time()
    info = info or Dist()
    check_config(config, info)
    device = run_device(config, info)
    seed_everything(config.seed, config.num_threads)
    data = load_data_in_turn(config, info)
    ctx = build_run(config, run, data, device, info)
    seed_rank(ctx)
    if resume and run.has(LAST_FILE):
        restore(ctx)
    try:
        if ctx.state.phase == "train":
            fit(ctx, progress and info.main)
        if not info.main:
            return 0
        best = test_best(ctx)
        report(ctx, best, started)
    except KeyboardInterrupt:
        if not info.main:
            return 130
        return interrupted_exit(lambda: save_on_interrupt(ctx), COMMAND, run.path, interrupted_where(ctx))
    finally:
        ctx.writer.close()
    ctx.state.phase = "done"
    save_last(ctx)
    return 0


def interrupted_where(ctx: PuzzleRun) -> str:
    """Where Ctrl-C stopped the run, for the resume message."""
    state = ctx.state
    if ctx.in_batch:
        return f"during batch {state.batches + 1} (that batch is dropped: the run goes on after batch {ctx.saved_at})"
    if state.phase == "test":
        return f"in the test ({len(state.tests)} of {len(ctx.data.eval_sets)} eval sets done)"
    return f"after batch {state.batches}"


# ---------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(COMMAND, __doc__)
    parser.add_argument("--config", default=None, help=f"YAML config (default {DEFAULT_CONFIG.name})")
    parser.add_argument(
        "--task",
        default=None,
        help=f"train a task with its default config, configs/<task>_hrm.yaml ({', '.join(sorted(TASKS))}); "
        "not with --config",
    )
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


def config_path_of(args: argparse.Namespace) -> Path | str | None:
    """The config a new run reads: ``--config``, or ``--task``'s default (maze's without either)."""
    if args.task is not None and args.config is not None:
        raise ConfigError(f"--task {args.task} and --config {args.config} both given: --task is a shortcut for "
                          "its default config; give one of them")  # fmt: skip
    if args.resume:
        if args.task is not None:
            raise ConfigError(f"--resume continues a run with its own config: drop --task {args.task}")
        return args.config  # open_run refuses it
    return args.config or default_config_for(args.task or DEFAULT_TASK)


def open_puzzle_run(args: argparse.Namespace, info: Dist) -> tuple[PuzzleTrainConfig, RunDirectory, bool]:
    """``(config, run directory, resuming)`` of the command line: a new run made, or one reopened."""
    return open_run(
        PuzzleTrainConfig, COMMAND, config_path=config_path_of(args), overrides=args.overrides, out=args.out,
        resume=args.resume, default_config=DEFAULT_CONFIG, default_out=lambda c: f"runs/puzzle-{c.task}-{c.model}",
        check=lambda config: check_config(config, info),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    try:
        info = Dist.from_env()
        args = parse_args(argv)
        if info.world > 1:
            return main_distributed(args, info)
        config, run, resuming = open_puzzle_run(args, info)
        return train(config, run, resume=resuming, progress=not args.no_progress)
    except (ConfigError, ValueError, OSError) as exc:
        return fail(exc)


def main_distributed(args: argparse.Namespace, info: Dist) -> int:
    """One process of a torchrun job: rank 0 makes (or reopens) the run directory and tells the
    others where it is; they read its config and checkpoint and never write in it. A rank that
    fails raises (torchrun then stops the others); the ranks that end leave together."""
    info = init_distributed(info)
    code = run_rank(args, info)
    info.barrier()
    torch.distributed.destroy_process_group()
    return code


def run_rank(args: argparse.Namespace, info: Dist) -> int:
    """:func:`main_distributed` from the joined job to this rank's exit status."""
    opened: list[Any] = [None]
    if info.main:
        try:
            config, run, resuming = open_puzzle_run(args, info)
            opened = [{"path": str(run.path), "resuming": resuming}]
        except (ConfigError, ValueError, OSError) as exc:
            opened = [{"error": str(exc)}]
    torch.distributed.broadcast_object_list(opened, 0, group=info.group)
    if "error" in opened[0]:
        return fail(ConfigError(opened[0]["error"])) if info.main else 2
    if not info.main:
        run = ReadOnlyRun.open(opened[0]["path"], COMMAND)
        config, resuming = load_config(PuzzleTrainConfig, run.verified("config.yaml")), opened[0]["resuming"]
    return train(config, run, resume=resuming, progress=not args.no_progress, info=info)


def format_results(tests: dict[str, dict[str, dict[str, Any]]]) -> str:
    """One line per (set, segments): exact, valid, cell accuracy, mean segments (and, for tasks with
    identifiers, a line of each task's exact accuracy)."""
    lines = [f"{'set':16s} {'segments':>8s} {'n':>6s} {'exact':>8s} {'valid':>8s} {'cell':>8s} {'mean seg':>8s}"]
    for name, rows in tests.items():
        for segments, row in rows.items():
            lines.append(
                f"{name:16s} {segments:>8s} {row['n']:6d} {row['exact_accuracy']:8.4f} "
                f"{row['valid_rate']:8.4f} {row['cell_accuracy']:8.4f} {row['mean_segments']:8.2f}"
            )
            if row.get("per_task"):
                lines.append(f"{'':16s} {'':>8s} exact per task: "
                             + ", ".join(f"{task} {score:.3f}" for task, score in row["per_task"].items()))  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    sys.exit(main())
