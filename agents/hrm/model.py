"""HRM-ACT-v1: the Hierarchical Reasoning Model with adaptive computation time.

One call ``carry, outputs = model(carry, batch)`` runs one *segment*: ``H_cycles`` high-level
updates, each after ``L_cycles`` low-level updates, where only the last L and the last H update
carry gradient (the 1-step gradient; memory is O(1) in the number of cycles). The new carry is
detached, so segments are trained independently (deep supervision). Rows marked ``halted`` in
the incoming carry restart from the fixed initial states with the batch's new data; the Q head
decides halting (with exploration in training) and, in training, an extra no-grad forward gives
the bootstrapped ``target_q_continue`` (DESIGN 3).

Inputs are integer tokens ``(B, seq_len)`` (grids flattened row-major). A grid model also takes
``(B, rows, cols)``, which is how it answers a grid of another size when its positions allow it.
"""

from __future__ import annotations

import functools
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from agents.hrm.config import HRMACTv1Config
from agents.hrm.layers import (
    CastedLinear,
    HRMBlock,
    ReasoningModule,
    Rotary,
    TokenLayout,
    check_tensor,
    range_message,
    rotary_1d,
    rotary_2d,
    sudoku_peer_mask,
    trunc_normal_init_,
)
from agents.hrm.sparse_embedding import CastedSparseEmbedding

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


#: ``HRM_CPU_BFLOAT16=1`` / ``0``: take (or refuse) bfloat16 on a CPU whatever its flags say.
CPU_BFLOAT16_ENV = "HRM_CPU_BFLOAT16"


#: CPU flags (Linux ``/proc/cpuinfo``) of units that run bfloat16 matmuls fast.
CPU_BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flag_set() -> set[str] | None:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``), or None where they cannot be read."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def cpu_bfloat16_units() -> bool | None:
    """Whether the CPU's flags list a bfloat16 unit (``CPU_BFLOAT16_FLAGS``); None where the flags
    cannot be read (not Linux)."""
    flags = cpu_flag_set()
    return None if flags is None else bool(flags & set(CPU_BFLOAT16_FLAGS))


@functools.lru_cache(maxsize=1)
def cpu_bfloat16_is_fast() -> bool:
    """Whether bfloat16 matmuls beat float32 ones on this CPU, decided once per process.

    CPUs with AMX or AVX512-BF16 units run them 3-4x faster than float32 (a 2-core Xeon with AMX,
    ``benchmarks/puzzle_speed.py``: 1,161 vs 316 GFLOP/s); CPUs without run them hundreds of times
    slower. The CPU's flags decide where they can be read, so that the same machine always
    trains in the same dtype, however loaded it is; elsewhere a measurement does (256x256
    matmuls, a few ms: bfloat16 1.5x faster). ``HRM_CPU_BFLOAT16`` overrides both. The
    measurement's operands come from a private generator, so that it leaves torch's global random
    stream (a seeded run's initialisation and halting exploration) untouched.
    """
    forced = os.environ.get(CPU_BFLOAT16_ENV)
    if forced is not None:
        if forced not in ("0", "1"):
            raise ValueError(f"{CPU_BFLOAT16_ENV}={forced!r}: use 1 (bfloat16 on this CPU) or 0 (float32)")
        return forced == "1"
    units = cpu_bfloat16_units()
    if units is not None:
        return units

    generator = torch.Generator().manual_seed(0)

    def seconds(dtype: torch.dtype, repeats: int) -> float:
        """The fastest of ``repeats`` products, after one untimed warm-up (kernel selection)."""
        a = torch.randn(256, 256, generator=generator).to(dtype)
        b = torch.randn(256, 256, generator=generator).to(dtype)
        a @ b
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
        return best

    with torch.no_grad():
        float32 = seconds(torch.float32, 5)
        if seconds(torch.bfloat16, 1) > 20 * float32:  # no bf16 units: stop after two slow products
            return False
        return seconds(torch.bfloat16, 5) * 1.5 < float32


@dataclass
class HRMACTv1InnerCarry:
    """The recurrent state: high- and low-level token states, (B, tokens, hidden)."""

    z_H: torch.Tensor
    z_L: torch.Tensor


@dataclass
class HRMACTv1Carry:
    """Everything a segment hands to the next: states, per-row step counts, halting, data."""

    inner_carry: HRMACTv1InnerCarry
    steps: torch.Tensor  # (B,) int32: segments run on the current example
    halted: torch.Tensor  # (B,) bool: True -> the next call restarts this row with new data
    current_data: dict[str, torch.Tensor] = field(default_factory=dict)

    def select(self, rows: torch.Tensor) -> HRMACTv1Carry:
        """The carry of a subset of rows (bool mask or indices), e.g. the rows still running."""
        return HRMACTv1Carry(
            HRMACTv1InnerCarry(self.inner_carry.z_H[rows], self.inner_carry.z_L[rows]),
            self.steps[rows],
            self.halted[rows],
            {key: value[rows] for key, value in self.current_data.items()},
        )


@dataclass
class ReasoningResult:
    """What :meth:`HRMACTv1.reason` returns.

    ``outputs``: each row's outputs from the segment at which it halted. ``steps``: (B,) the
    segments each row used. ``segments``: segments run for the batch. ``trace``: with
    ``trace=True``, the per-step states and logits of every segment stacked along dim 0 (rows
    keep reasoning after they halt; ``steps`` says where each one stopped). ``state``: with
    ``keep_state=True``, each row's detached ``z_H``/``z_L`` after its halting segment, to start
    its next reasoning from (``reason(..., start=state)``: a plan carried to the next decision).
    """

    outputs: dict[str, torch.Tensor]
    steps: torch.Tensor
    segments: int
    trace: dict[str, torch.Tensor] | None = None
    state: HRMACTv1InnerCarry | None = None


class HRMACTv1(nn.Module):
    """The HRM-ACT-v1 model. Build with a config, a dict of config keys, or a preset.

    ``HRMACTv1(cfg)``, ``HRMACTv1({"vocab_size": 6, ...})`` or ``HRMACTv1(cfg, hidden_size=128)``.
    Outputs per call: ``logits`` ((B, seq_len, vocab_out) for the sequence head, (B, n_actions)
    for the action head), ``q_halt_logits``/``q_continue_logits`` ((B,) float32), in training
    ``target_q_continue``; the action head adds ``features`` (the pooled (B, hidden) state a
    policy's value head can share) and ``value`` when ``value_head`` is on; ``aux_logits`` when
    ``aux_vocab_out > 0``; ``trace`` when asked.
    """

    def __init__(self, config: HRMACTv1Config | Mapping[str, Any] | None = None, **overrides: Any) -> None:
        super().__init__()
        cfg = HRMACTv1Config.coerce(config, **overrides)
        self.config = cfg
        hidden = cfg.hidden_size
        patch_cells = cfg.patch_size**2
        self.embed_scale = math.sqrt(hidden)
        self.n_prefix = cfg.n_prefix_tokens

        # Token embedding: with patches, one row per (cell offset in patch, token), the token
        # vocabulary extended by a pad id for grids the patch does not divide; a patch token is
        # the sum of its cells' rows (= a linear map of the patch's one-hot cells).
        self.embed_vocab = cfg.vocab_size + (1 if cfg.patch_size > 1 else 0)
        self.embed_tokens = nn.Parameter(
            trunc_normal_init_(
                torch.empty(self.embed_vocab * patch_cells, hidden),
                std=1.0 / (self.embed_scale * cfg.patch_size),
            )
        )
        if cfg.puzzle_emb_ndim > 0:
            self.puzzle_emb = CastedSparseEmbedding(cfg.num_puzzle_identifiers, cfg.puzzle_emb_ndim, init_std=0.0)
        if cfg.n_cls_tokens:
            self.cls_token = nn.Parameter(
                trunc_normal_init_(torch.empty(cfg.n_cls_tokens, hidden), std=1 / self.embed_scale)
            )
        if cfg.pos_encodings == "learned":
            self.embed_pos = nn.Parameter(
                trunc_normal_init_(
                    torch.empty(self.n_prefix + cfg.n_data_tokens, hidden),
                    std=1 / self.embed_scale,
                )
            )

        def level(n_layers: int) -> ReasoningModule:
            return ReasoningModule(
                [
                    HRMBlock(
                        hidden,
                        cfg.num_heads,
                        cfg.mlp_hidden,
                        cfg.block,
                        cfg.conv_kernel,
                        cfg.conv_depthwise,
                        has_prefix=self.n_prefix > 0,
                        eps=cfg.rms_norm_eps,
                    )
                    for _ in range(n_layers)
                ]
            )

        self.H_level = level(cfg.H_layers)
        self.L_level = level(cfg.L_layers)
        # Fixed (not learned) initial states; halted rows restart from them.
        self.register_buffer("H_init", trunc_normal_init_(torch.empty(hidden), std=1.0))
        self.register_buffer("L_init", trunc_normal_init_(torch.empty(hidden), std=1.0))

        # Heads. Q starts near "never halt, never continue" (weight 0, bias -5) for bootstrapping.
        self.q_head = CastedLinear(hidden, 2, bias=True)
        with torch.no_grad():
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5.0)
        if cfg.head in ("sequence", "cell_action"):
            self.lm_head = CastedLinear(hidden, cfg.vocab_out * patch_cells)
        else:
            self.action_head = CastedLinear(hidden, cfg.n_actions)
        if cfg.value_head:
            self.value_head = CastedLinear(hidden, 1, bias=True)
        if cfg.aux_vocab_out:
            self.aux_head = CastedLinear(hidden, cfg.aux_vocab_out * patch_cells)

        self._rotary_cache: dict[tuple, Rotary] = {}
        self._mask_cache: dict[tuple, torch.Tensor] = {}
        self._warned_dtype = False

    # ------------------------------------------------------------------ small helpers
    def compute_dtype(self, device: torch.device) -> torch.dtype:
        """The forward dtype on ``device``.

        "auto": bfloat16 on CUDA, float32 on a CPU. "bfloat16" on a CPU runs in bfloat16 where
        :func:`cpu_bfloat16_is_fast` (AMX or AVX512-BF16 units), else in float32 with a warning;
        "float16" on a CPU always falls back to float32.
        """
        name = self.config.forward_dtype
        if name == "auto":
            return torch.bfloat16 if device.type == "cuda" else torch.float32
        dtype = _DTYPES[name]
        if device.type == "cpu" and dtype != torch.float32:
            if dtype == torch.bfloat16 and cpu_bfloat16_is_fast():
                return dtype
            if not self._warned_dtype:
                warnings.warn(
                    f"forward_dtype={name!r} on a CPU runs in float32 instead (reduced-precision "
                    "matmuls are orders of magnitude slower on CPUs without bf16 units)",
                    stacklevel=3,
                )
                self._warned_dtype = True
            return torch.float32
        return dtype

    def _input_grid(self, inputs: torch.Tensor, check_values: bool = True) -> tuple[int, int] | None:
        """Check the inputs; return the cell grid (rows, cols) they describe (None: sequence)."""
        cfg = self.config
        if not isinstance(inputs, torch.Tensor):
            raise ValueError(f"batch['inputs'] must be a tensor, got {type(inputs).__name__}")
        if inputs.dtype.is_floating_point or inputs.dtype == torch.bool or inputs.is_complex():
            raise ValueError(
                f"batch['inputs'] must hold integer token ids, got dtype {inputs.dtype} "
                "(cast observations with .long())"
            )
        if check_values and inputs.numel():
            check_tensor(
                ((inputs >= 0) & (inputs < cfg.vocab_size)).all(),
                range_message("token ids", inputs, cfg.vocab_size, "vocab_size"),
            )
        if not cfg.is_grid:
            if inputs.ndim != 2:
                raise ValueError(f"batch['inputs'] must be (batch, seq_len), got shape {tuple(inputs.shape)}")
            if cfg.pos_encodings == "learned" and inputs.shape[1] != cfg.seq_len:
                raise ValueError(f"learned positions fix seq_len={cfg.seq_len}; got {inputs.shape[1]} tokens")
            return None
        if inputs.ndim == 2:
            if inputs.shape[1] != cfg.seq_len:
                raise ValueError(
                    f"batch['inputs'] has {inputs.shape[1]} tokens per row; this model reads "
                    f"{cfg.grid_height}x{cfg.grid_width}={cfg.seq_len} (pass (batch, rows, cols) "
                    "for another grid size)"
                )
            return (cfg.grid_height, cfg.grid_width)
        if inputs.ndim != 3:
            raise ValueError(
                f"batch['inputs'] must be (batch, seq_len) or (batch, rows, cols), got shape {tuple(inputs.shape)}"
            )
        rows, cols = int(inputs.shape[1]), int(inputs.shape[2])
        if (rows, cols) != (cfg.grid_height, cfg.grid_width) and cfg.pos_encodings == "learned":
            raise ValueError(
                f"this model has learned positions for {cfg.grid_height}x{cfg.grid_width} "
                f"grids and cannot read a {rows}x{cols} grid (use pos_encodings='rope')"
            )
        return (rows, cols)

    def _layout(self, cell_grid: tuple[int, int] | None, n_data: int, device) -> TokenLayout:
        cfg = self.config
        token_grid = None
        if cell_grid is not None:
            token_grid = self._token_grid(cell_grid)
        rotary = None
        if cfg.pos_encodings == "rope" and cfg.block != "conv":
            key = (token_grid, n_data, str(device))
            rotary = self._rotary_cache.get(key)
            if rotary is None:
                if token_grid is None:
                    rotary = rotary_1d(self.n_prefix + n_data, cfg.head_dim, cfg.rope_theta, device)
                else:
                    rotary = rotary_2d(self.n_prefix, *token_grid, cfg.head_dim, cfg.rope_theta, device)
                self._rotary_cache[key] = rotary
        mask = None
        if cfg.attention_scope == "sudoku":
            key = (token_grid, str(device))
            mask = self._mask_cache.get(key)
            if mask is None:
                mask = self._mask_cache[key] = sudoku_peer_mask(self.n_prefix, token_grid, device)
        return TokenLayout(self.n_prefix, token_grid, rotary, mask)

    def _n_tokens(self, inputs: torch.Tensor) -> int:
        cell_grid = self._input_grid(inputs)
        if cell_grid is None:
            return self.n_prefix + inputs.shape[1]
        rows, cols = self._token_grid(cell_grid)
        return self.n_prefix + rows * cols

    def _token_grid(self, cell_grid: tuple[int, int]) -> tuple[int, int]:
        patch = self.config.patch_size
        return (-(cell_grid[0] // -patch), -(cell_grid[1] // -patch))

    def _embed(self, inputs: torch.Tensor, batch: Mapping[str, torch.Tensor], cell_grid, dtype) -> torch.Tensor:
        cfg = self.config
        n_rows = inputs.shape[0]
        patch = cfg.patch_size
        tokens = inputs.long()
        if cell_grid is not None and patch > 1:
            rows, cols = cell_grid
            t_rows, t_cols = self._token_grid(cell_grid)
            cells = tokens.view(n_rows, rows, cols)
            if (t_rows * patch, t_cols * patch) != (rows, cols):
                pad = (0, t_cols * patch - cols, 0, t_rows * patch - rows)
                cells = F.pad(cells, pad, value=cfg.vocab_size)  # the pad token id
            cells = cells.view(n_rows, t_rows, patch, t_cols, patch)
            cells = cells.permute(0, 1, 3, 2, 4).reshape(-1, patch * patch)
            offsets = torch.arange(patch * patch, device=tokens.device) * self.embed_vocab
            emb = F.embedding_bag(cells + offsets, self.embed_tokens, mode="sum")
            emb = emb.view(n_rows, -1, cfg.hidden_size)
        else:
            emb = F.embedding(tokens.reshape(n_rows, -1), self.embed_tokens)
        emb = emb.to(dtype)
        prefix = []
        if cfg.puzzle_emb_ndim > 0:
            if "puzzle_identifiers" not in batch:
                raise ValueError("this model has puzzle embeddings: batch needs 'puzzle_identifiers'")
            puzzle = self.puzzle_emb(batch["puzzle_identifiers"].reshape(n_rows), dtype)
            pad = cfg.n_puzzle_tokens * cfg.hidden_size - puzzle.shape[-1]
            if pad:
                puzzle = F.pad(puzzle, (0, pad))
            prefix.append(puzzle.view(n_rows, cfg.n_puzzle_tokens, cfg.hidden_size))
        if cfg.n_cls_tokens:
            prefix.append(self.cls_token.to(dtype).expand(n_rows, -1, -1))
        if prefix:
            emb = torch.cat((*prefix, emb), dim=1)
        if cfg.pos_encodings == "learned":
            emb = 0.707106781 * (emb + self.embed_pos.to(dtype))  # keeps the variance
        return self.embed_scale * emb

    def _per_token(self, head: CastedLinear, z_data: torch.Tensor, cell_grid) -> torch.Tensor:
        """Per-cell logits: apply ``head`` to data tokens and undo the patching."""
        logits = head(z_data)
        patch = self.config.patch_size
        if cell_grid is None or patch == 1:
            return logits
        n_rows = logits.shape[0]
        rows, cols = cell_grid
        t_rows, t_cols = self._token_grid(cell_grid)
        per_cell = logits.shape[-1] // (patch * patch)
        logits = logits.view(n_rows, t_rows, t_cols, patch, patch, per_cell)
        logits = logits.permute(0, 1, 3, 2, 4, 5).reshape(n_rows, t_rows * patch, t_cols * patch, per_cell)
        if (t_rows * patch, t_cols * patch) != (rows, cols):
            logits = logits[:, :rows, :cols]  # drop the padding cells
        return logits.reshape(n_rows, rows * cols, per_cell)

    def _heads(self, z_H: torch.Tensor, inputs: torch.Tensor, cell_grid) -> dict[str, torch.Tensor]:
        cfg = self.config
        n_prefix = self.n_prefix
        z_data = z_H[:, n_prefix:]
        outputs: dict[str, torch.Tensor] = {}
        if cfg.q_source == "agent":
            q_in = z_data[torch.arange(z_H.shape[0], device=z_H.device), self._agent_token_index(inputs, cell_grid)]
        else:
            q_in = z_H[:, 0] if cfg.q_source == "first" else z_data.mean(1)
        q_logits = self.q_head(q_in).float()
        outputs["q_halt_logits"] = q_logits[..., 0]
        outputs["q_continue_logits"] = q_logits[..., 1]
        if cfg.head == "sequence":
            outputs["logits"] = self._per_token(self.lm_head, z_data, cell_grid)
        elif cfg.head == "cell_action":
            outputs["logits"] = self._per_token(self.lm_head, z_data, cell_grid).flatten(1)
            outputs["features"] = pooled = z_data.mean(1)
            if cfg.value_head:
                outputs["value"] = self.value_head(pooled).float().squeeze(-1)
        else:
            if cfg.pool == "cls":
                pooled = z_H[:, cfg.n_puzzle_tokens]
            elif cfg.pool == "mean":
                pooled = z_data.mean(1)
            elif cfg.pool == "first":
                pooled = z_H[:, 0]
            else:
                pooled = z_data[
                    torch.arange(z_H.shape[0], device=z_H.device), self._agent_token_index(inputs, cell_grid)
                ]
            outputs["features"] = pooled
            outputs["logits"] = self.action_head(pooled)
            if cfg.value_head:
                outputs["value"] = self.value_head(pooled).float().squeeze(-1)
        if cfg.aux_vocab_out:
            outputs["aux_logits"] = self._per_token(self.aux_head, z_data, cell_grid)
        return outputs

    def _agent_token_index(self, inputs: torch.Tensor, cell_grid) -> torch.Tensor:
        cfg = self.config
        flat = inputs.reshape(inputs.shape[0], -1) == cfg.agent_token
        check_tensor(
            (flat.sum(1) == 1).all(),
            lambda sync=True: (
                f"pool='agent' and q_source='agent' need exactly one agent cell (code {cfg.agent_token}) per row; "
                "some rows hold none or several"
            ),
        )
        cell = flat.int().argmax(1)
        if cell_grid is None or cfg.patch_size == 1:
            return cell
        cols = cell_grid[1]
        row, col = cell // cols, cell % cols
        t_cols = self._token_grid(cell_grid)[1]
        return (row // cfg.patch_size) * t_cols + col // cfg.patch_size

    # ------------------------------------------------------------------ carry
    def initial_carry(self, batch: Mapping[str, torch.Tensor]) -> HRMACTv1Carry:
        """A carry with every row halted, so the first call starts all rows on ``batch``."""
        inputs = batch["inputs"]
        n_rows = inputs.shape[0]
        device = inputs.device
        shape = (n_rows, self._n_tokens(inputs), self.config.hidden_size)
        dtype = self.compute_dtype(device)
        return HRMACTv1Carry(
            HRMACTv1InnerCarry(
                torch.zeros(shape, dtype=dtype, device=device),
                torch.zeros(shape, dtype=dtype, device=device),
            ),
            steps=torch.zeros(n_rows, dtype=torch.int32, device=device),
            halted=torch.ones(n_rows, dtype=torch.bool, device=device),
            current_data={
                key: torch.zeros_like(value) for key, value in batch.items() if isinstance(value, torch.Tensor)
            },
        )

    def reset_carry(self, reset: torch.Tensor, carry: HRMACTv1InnerCarry) -> HRMACTv1InnerCarry:
        """Rows flagged in ``reset`` go back to the fixed initial states; others keep theirs."""
        flag = reset.view(-1, 1, 1)
        return HRMACTv1InnerCarry(
            torch.where(flag, self.H_init.to(carry.z_H.dtype), carry.z_H),
            torch.where(flag, self.L_init.to(carry.z_L.dtype), carry.z_L),
        )

    # ------------------------------------------------------------------ one segment
    def inner_forward(
        self,
        carry: HRMACTv1InnerCarry,
        batch: Mapping[str, torch.Tensor],
        trace: bool = False,
        *,
        check_inputs: bool = True,
    ) -> tuple[HRMACTv1InnerCarry, dict[str, torch.Tensor]]:
        """One segment without ACT bookkeeping: H_cycles x L_cycles updates; gradient through the
        final L and H update only (``backprop="one_step"``, the default)."""
        cfg = self.config
        inputs = batch["inputs"]
        cell_grid = self._input_grid(inputs, check_values=check_inputs)
        dtype = carry.z_H.dtype
        x = self._embed(inputs, batch, cell_grid, dtype)
        if x.shape != carry.z_H.shape:
            raise ValueError(
                f"carry holds states of shape {tuple(carry.z_H.shape)} but the inputs give "
                f"{tuple(x.shape)}: make a new initial_carry for inputs of another shape"
            )
        layout = self._layout(cell_grid, x.shape[1] - self.n_prefix, x.device)
        z_H, z_L = carry.z_H, carry.z_L
        steps_L: list[torch.Tensor] = []
        steps_H: list[torch.Tensor] = []
        last_H, last_L = cfg.H_cycles - 1, cfg.L_cycles - 1
        grad_on = torch.is_grad_enabled()
        backprop = cfg.backprop

        def differentiate(h_step: int, l_step: int | None) -> bool:
            # one_step: the final L and H update only (HRM); last_cycle: every update of the
            # last H cycle (TRM's full backprop through the last recursion); full: BPTT.
            if backprop == "full":
                return True
            if backprop == "last_cycle":
                return h_step == last_H
            return h_step == last_H and (l_step is None or l_step == last_L)

        for h_step in range(cfg.H_cycles):
            for l_step in range(cfg.L_cycles):
                with torch.set_grad_enabled(grad_on and differentiate(h_step, l_step)):
                    z_L = self.L_level(z_L, z_H + x, layout)
                if trace:
                    steps_L.append(z_L.detach().clone())
            with torch.set_grad_enabled(grad_on and differentiate(h_step, None)):
                z_H = self.H_level(z_H, z_L, layout)
            if trace:
                steps_H.append(z_H.detach().clone())
        outputs = self._heads(z_H, inputs, cell_grid)
        if trace:
            with torch.no_grad():
                step_logits = [self._heads(z, inputs, cell_grid) for z in steps_H[:-1]]
            step_logits.append({k: v.detach() for k, v in outputs.items()})
            outputs["trace"] = {
                "z_H": torch.stack(steps_H),
                "z_L": torch.stack(steps_L),
                "logits": torch.stack([o["logits"] for o in step_logits]),
                "q_halt_logits": torch.stack([o["q_halt_logits"] for o in step_logits]),
                "q_continue_logits": torch.stack([o["q_continue_logits"] for o in step_logits]),
            }
        return HRMACTv1InnerCarry(z_H.detach(), z_L.detach()), outputs

    def _halt_now(self, q_halt: torch.Tensor, q_continue: torch.Tensor) -> torch.Tensor:
        if self.config.q_target == "none":
            # sigmoid(q_halt) > threshold: 0.5 in training (the Q loss's own boundary), the
            # config's halt_threshold in eval
            threshold = 0.5 if self.training else self.config.halt_threshold
            return q_halt > math.log(threshold / (1.0 - threshold))
        return q_halt > q_continue

    def forward(
        self,
        carry: HRMACTv1Carry,
        batch: Mapping[str, torch.Tensor],
        trace: bool = False,
        *,
        halt_max_steps: int | None = None,
        use_q_halt: bool | None = None,
    ) -> tuple[HRMACTv1Carry, dict[str, torch.Tensor]]:
        """One ACT segment. ``halt_max_steps`` overrides the config's cap for this call
        (test-time scaling); ``use_q_halt`` turns Q-based halting on/off (default: on in
        training, ``eval_halt == "q"`` in eval)."""
        cfg = self.config
        max_steps = cfg.halt_max_steps if halt_max_steps is None else int(halt_max_steps)
        if max_steps < 1:
            raise ValueError(f"halt_max_steps={halt_max_steps!r} must be >= 1")
        missing = sorted(set(carry.current_data) - set(batch))
        if missing:
            raise ValueError(
                f"batch lacks key(s) {missing} that the carry holds (make the carry with "
                "initial_carry on a batch with the same keys)"
            )
        inner = self.reset_carry(carry.halted, carry.inner_carry)
        steps = torch.where(carry.halted, 0, carry.steps)
        data = {
            key: torch.where(carry.halted.view((-1,) + (1,) * (batch[key].ndim - 1)), batch[key], old)
            for key, old in carry.current_data.items()
        }
        inner, outputs = self.inner_forward(inner, data, trace=trace)

        with torch.no_grad():
            steps = steps + 1
            is_last = steps >= max_steps
            halted = is_last
            q_halt, q_continue = outputs["q_halt_logits"], outputs["q_continue_logits"]
            if self.training and max_steps > 1:
                if use_q_halt is None or use_q_halt:
                    halted = halted | self._halt_now(q_halt, q_continue)
                # Exploration: some rows get a random minimum of 2..max_steps segments.
                explore = torch.rand_like(q_halt) < cfg.halt_exploration_prob
                min_steps = explore * torch.randint_like(steps, low=2, high=max_steps + 1)
                halted = halted & (steps >= min_steps)
                if cfg.q_target == "bootstrap":
                    # Target from the next segment's Q (no replay buffer: PQN-style).
                    _, next_out = self.inner_forward(inner, data, check_inputs=False)
                    next_halt = next_out["q_halt_logits"]
                    next_continue = next_out["q_continue_logits"]
                    outputs["target_q_continue"] = torch.sigmoid(
                        torch.where(is_last, next_halt, torch.maximum(next_halt, next_continue))
                    )
            elif not self.training and max_steps > 1:
                q_halting = cfg.eval_halt == "q" if use_q_halt is None else use_q_halt
                if q_halting:
                    halted = halted | self._halt_now(q_halt, q_continue)
        return HRMACTv1Carry(inner, steps.to(torch.int32), halted, data), outputs

    # ------------------------------------------------------------------ whole passes
    def reason(
        self,
        batch: Mapping[str, torch.Tensor],
        max_segments: int | None = None,
        *,
        use_q_halt: bool | None = None,
        trace: bool = False,
        segments: torch.Tensor | None = None,
        on_segment: Callable[[torch.Tensor, dict[str, torch.Tensor]], None] | None = None,
        start: HRMACTv1InnerCarry | None = None,
        keep_state: bool = False,
    ) -> ReasoningResult:
        """Run segments until every row halts (inference; eval-mode halting, no exploration).

        ``max_segments`` caps the segments (default ``halt_max_steps``; larger values are
        test-time scaling). ``use_q_halt=False`` runs every row exactly ``max_segments``.
        ``segments`` (``(B,)`` ints >= 1) replays a depth per row instead of halting: each row
        stops after exactly its count (PPO re-evaluating actions at the depth they were taken).
        Gradients flow into each row's final segment when grad mode is on (1-step gradient;
        earlier segments are detached), so a policy can differentiate through its decision.
        Halted rows leave the batch (less work per segment) unless ``trace`` is on.
        ``on_segment(rows, outputs)`` sees every segment's outputs of the rows still reasoning
        (``rows``: their indices in the batch), e.g. to keep each row's most confident answer.
        ``start``: each row's ``z_H``/``z_L`` to begin from instead of the initial states (a plan
        carried over from the previous decision; :meth:`initial_state` for a fresh row);
        ``keep_state``: return each row's states where it halted (``ReasoningResult.state``).
        """
        max_steps, use_q_halt, segments = self._reason_depths(batch, max_segments, use_q_halt, segments)
        if start is not None:
            expected = (batch["inputs"].shape[0], self._n_tokens(batch["inputs"]), self.config.hidden_size)
            if tuple(start.z_H.shape) != expected or tuple(start.z_L.shape) != expected:
                raise ValueError(
                    f"start states must be {expected} (rows, tokens, hidden) for this batch, got "
                    f"z_H {tuple(start.z_H.shape)} and z_L {tuple(start.z_L.shape)}"
                )
        was_training = self.training
        self.eval()
        try:
            return self._reason_loop(batch, max_steps, use_q_halt, trace, segments, on_segment, start, keep_state)
        finally:
            self.train(was_training)

    def initial_state(self, batch: Mapping[str, torch.Tensor]) -> HRMACTv1InnerCarry:
        """The states a fresh row starts from (``H_init``/``L_init`` at every token), as ``start`` takes them."""
        carry = self.initial_carry(batch)
        return self.reset_carry(carry.halted, carry.inner_carry)

    def _reason_depths(
        self,
        batch: Mapping[str, torch.Tensor],
        max_segments: int | None,
        use_q_halt: bool | None,
        segments: torch.Tensor | None,
    ) -> tuple[int, bool | None, torch.Tensor | None]:
        """``(max_steps, use_q_halt, segments)`` of :meth:`reason`, checked: per-row depths replace halting."""
        max_steps = self.config.halt_max_steps if max_segments is None else int(max_segments)
        if batch["inputs"].shape[0] == 0:
            raise ValueError("reason() needs at least one row in batch['inputs']")
        if segments is not None:
            segments = segments.to(batch["inputs"].device).long().view(-1)
            if segments.shape[0] != batch["inputs"].shape[0] or bool((segments < 1).any()):
                raise ValueError(
                    f"segments must hold one count >= 1 per row ({batch['inputs'].shape[0]} rows), "
                    f"got shape {tuple(segments.shape)} with min {int(segments.min()) if segments.numel() else None}"
                )
            max_steps, use_q_halt = int(segments.max()), False
        if max_steps < 1:
            raise ValueError(f"max_segments={max_segments!r} must be >= 1")
        return max_steps, use_q_halt, segments

    def _reason_loop(
        self,
        batch: Mapping[str, torch.Tensor],
        max_steps: int,
        use_q_halt: bool | None,
        trace: bool,
        segments: torch.Tensor | None,
        on_segment: Callable[[torch.Tensor, dict[str, torch.Tensor]], None] | None,
        start: HRMACTv1InnerCarry | None = None,
        keep_state: bool = False,
    ) -> ReasoningResult:
        """The segments of :meth:`reason` (model in eval mode): each row's outputs where it halted."""
        carry = self.initial_carry(batch)
        current = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
        if start is not None:  # running rows on their own data from the given states: no reset
            dtype = carry.inner_carry.z_H.dtype
            carry.inner_carry = HRMACTv1InnerCarry(start.z_H.to(dtype), start.z_L.to(dtype))
            carry.halted = torch.zeros_like(carry.halted)
            carry.current_data = current
        n_rows = batch["inputs"].shape[0]
        device = batch["inputs"].device
        active = torch.arange(n_rows, device=device)  # rows in the running carry
        finished = torch.zeros(n_rows, dtype=torch.bool, device=device)
        steps = torch.zeros(n_rows, dtype=torch.int32, device=device)
        done_rows: list[torch.Tensor] = []
        done_outputs: list[dict[str, torch.Tensor]] = []
        done_states: list[tuple[torch.Tensor, torch.Tensor]] = []
        traces: list[dict[str, torch.Tensor]] = []
        segments_run = 0
        while True:
            carry, outputs = self(carry, current, trace=trace, halt_max_steps=max_steps, use_q_halt=use_q_halt)
            segments_run += 1
            if trace:
                traces.append(outputs.pop("trace"))
            if on_segment is not None:
                on_segment(active, outputs)
            if segments is not None:
                carry.halted = carry.halted | (segments[active] <= segments_run)
            new = carry.halted & ~finished[active]
            if bool(new.any()):
                rows = active[new]
                done_rows.append(rows)
                done_outputs.append({key: value[new] for key, value in outputs.items()})
                if keep_state:
                    inner = carry.inner_carry
                    done_states.append((inner.z_H[new].detach(), inner.z_L[new].detach()))
                finished[rows] = True
                steps[rows] = segments_run
            if bool(finished.all()):
                break
            if trace:
                # Keep every row reasoning on its own data (no reset) so the trace covers
                # the whole batch until the last row halts.
                carry.halted = torch.zeros_like(carry.halted)
            else:
                keep = ~carry.halted
                carry = carry.select(keep)
                active = active[keep]
            current = carry.current_data
        order = torch.argsort(torch.cat(done_rows))
        final = {key: torch.cat([o[key] for o in done_outputs])[order] for key in done_outputs[0]}
        trace_out = None
        if trace:
            trace_out = {key: torch.cat([t[key] for t in traces]) for key in traces[0]}
        state = None
        if keep_state:
            state = HRMACTv1InnerCarry(*(torch.cat([s[i] for s in done_states])[order] for i in (0, 1)))
        return ReasoningResult(final, steps, segments_run, trace_out, state)
