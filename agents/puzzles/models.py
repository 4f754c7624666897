"""The models of the puzzle mode, all speaking HRM-ACT-v1's carry protocol.

- ``hrm``: :class:`agents.hrm.HRMACTv1` with the sequence head (one class per cell); its blocks
  mix tokens by attention, convolution or both (``block``); 2-D RoPE lets it read other grid
  sizes.
- ``transformer``: the same network without recurrence (``H_cycles = L_cycles = 1``, one
  segment): what the blocks reach without the HRM loop.
- ``deepthinking``: the "Deep Thinking" control (Bansal et al. 2022): one weight-tied residual
  3x3 conv block iterated, re-reading the input at every iteration (recall). It subclasses
  :class:`HRMACTv1` so that segments, ACT halting, deep supervision, ``reason`` and traces are
  literally the same code; only one segment's computation differs (every iteration of a
  segment is differentiated, as in Deep Thinking; segments are detached, which with deep
  supervision plays the part of its progressive loss).
- ``gru``: one convolutional GRU cell iterated ``H_cycles x L_cycles`` times per segment (the
  HRM's low-level steps per segment, one timescale instead of two), re-reading the input at
  every step; with the maze config's width it has about the HRM's parameters. It is the plain
  recurrent baseline of the HRM's two levels, in the same protocol as ``deepthinking``; which
  steps of a segment get gradient follows ``backprop`` as for the HRM.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from agents.hrm import HRMACTv1, HRMACTv1Config
from agents.hrm.layers import rms_norm, trunc_normal_init_
from agents.hrm.model import HRMACTv1InnerCarry

MODEL_KINDS = ("hrm", "transformer", "deepthinking", "gru")
#: What ``scale=paper`` sets (hidden 512, 8 heads, 4+4 layers, bf16 on CUDA).
PAPER_SIZE_KEYS = ("hidden_size", "num_heads", "expansion", "H_layers", "L_layers", "forward_dtype")


def hrm_config(
    kind: str,
    overrides: Mapping[str, Any],
    *,
    vocab_size: int,
    vocab_out: int,
    aux_vocab: int,
    grid: tuple[int, int],
    segments: int,
    scale: str = "cpu",
) -> HRMACTv1Config:
    """The checked HRM config of a model kind (the task fixes vocabularies and grid)."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model {kind!r}; allowed: {list(MODEL_KINDS)}")
    if scale not in ("cpu", "paper"):
        raise ValueError(f"scale={scale!r}; allowed: ['cpu', 'paper']")
    base: dict[str, Any] = dict(overrides)
    if scale == "paper":  # the published size wins over the CPU sizing; loop settings stay
        base.update({key: HRMACTv1Config.PRESETS["paper"][key] for key in PAPER_SIZE_KEYS})
        base["mlp_multiple"] = 256
    base.update(
        vocab_size=vocab_size,
        vocab_out=vocab_out,
        aux_vocab_out=aux_vocab,
        grid_height=grid[0],
        grid_width=grid[1],
        head="sequence",
        halt_max_steps=segments,
    )
    if kind == "transformer":
        base.update(H_cycles=1, L_cycles=1, halt_max_steps=1)
    if kind in ("deepthinking", "gru"):
        base.update(block="conv", pos_encodings="none", num_heads=1, q_source="mean")
    return HRMACTv1Config.from_dict(base)


def build_model(kind: str, config: HRMACTv1Config | Mapping[str, Any]) -> HRMACTv1:
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model {kind!r}; allowed: {list(MODEL_KINDS)}")
    if kind == "deepthinking":
        return DeepThinkingNet(config)
    if kind == "gru":
        return ConvGRUNet(config)
    return HRMACTv1(config)


class DeepThinkingNet(HRMACTv1):
    """Recurrent residual conv net with recall, in the HRM carry protocol.

    Config keys used: ``hidden_size`` (width), ``L_cycles`` (iterations per segment),
    ``L_layers`` (residual blocks per iteration), ``conv_kernel``, ``vocab_size``,
    ``vocab_out``, ``aux_vocab_out``, the ACT keys. The state lives in ``z_H`` (``z_L`` holds
    the same tensor); it starts at zero.
    """

    def __init__(self, config: HRMACTv1Config | Mapping[str, Any] | None = None, **overrides: Any) -> None:
        nn.Module.__init__(self)
        cfg = HRMACTv1Config.coerce(config, **overrides)
        if not cfg.is_grid or cfg.patch_size != 1:
            raise ValueError("the Deep Thinking control needs a grid without patches")
        self.config = cfg
        self.n_prefix = 0
        self._warned_dtype = False
        width, k = cfg.hidden_size, cfg.conv_kernel

        def conv(c_in: int, c_out: int) -> nn.Conv2d:
            layer = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False)
            trunc_normal_init_(layer.weight, std=(c_in * k * k) ** -0.5)
            return layer

        self.recall = conv(width + cfg.vocab_size, width)
        self.blocks = nn.ModuleList(
            nn.ModuleList([conv(width, width), conv(width, width)]) for _ in range(cfg.L_layers)
        )
        self.head = conv(width, cfg.vocab_out)
        self.aux_head = conv(width, cfg.aux_vocab_out) if cfg.aux_vocab_out else None
        self.q_head = nn.Linear(width, 2)
        with torch.no_grad():
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5.0)

    def compute_dtype(self, device: torch.device) -> torch.dtype:
        """Always float32: the control's plain ``nn.Conv2d`` layers keep float32 weights."""
        return torch.float32

    def reset_carry(self, reset: torch.Tensor, carry: HRMACTv1InnerCarry) -> HRMACTv1InnerCarry:
        flag = reset.view(-1, 1, 1)
        z = torch.where(flag, torch.zeros_like(carry.z_H), carry.z_H)
        return HRMACTv1InnerCarry(z, z)

    def _iterate(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.recall(torch.cat((h, x), dim=1)))
        for first, second in self.blocks:
            h = F.relu(h + second(F.relu(first(h))))
        # Weightless per-cell RMS norm (as the HRM's post-norm): keeps long iterations bounded.
        return rms_norm(h.permute(0, 2, 3, 1), self.config.rms_norm_eps).permute(0, 3, 1, 2)

    def _outputs(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        n = h.shape[0]
        logits = self.head(h).permute(0, 2, 3, 1).reshape(n, -1, self.config.vocab_out)
        q = self.q_head(h.mean(dim=(2, 3))).float()
        out = {"logits": logits, "q_halt_logits": q[:, 0], "q_continue_logits": q[:, 1]}
        if self.aux_head is not None:
            out["aux_logits"] = self.aux_head(h).permute(0, 2, 3, 1).reshape(n, -1, self.config.aux_vocab_out)
        return out

    def inner_forward(
        self,
        carry: HRMACTv1InnerCarry,
        batch: Mapping[str, torch.Tensor],
        trace: bool = False,
        **_: Any,  # options of HRMACTv1.inner_forward that do not apply here
    ) -> tuple[HRMACTv1InnerCarry, dict[str, torch.Tensor]]:
        inputs = batch["inputs"]
        rows, cols = self._input_grid(inputs)
        n = inputs.shape[0]
        x = F.one_hot(inputs.reshape(n, rows, cols).long(), self.config.vocab_size)
        x = x.permute(0, 3, 1, 2).to(carry.z_H.dtype)
        h = carry.z_H.reshape(n, rows, cols, -1).permute(0, 3, 1, 2)
        steps: list[torch.Tensor] = []
        step_outputs: list[dict[str, torch.Tensor]] = []
        for _ in range(self.config.L_cycles):
            h = self._iterate(h, x)
            if trace:
                self._record_step(h, steps, step_outputs)
        return self._finish(h, steps, step_outputs, trace)

    def _record_step(self, h: torch.Tensor, steps: list, step_outputs: list) -> None:
        """Keep one recurrent step's state (as tokens) and its read-out for the reasoning trace."""
        with torch.no_grad():
            steps.append(h.detach().flatten(2).transpose(1, 2))
            step_outputs.append(self._outputs(h.detach()))

    def _finish(self, h: torch.Tensor, steps: list, step_outputs: list, trace: bool):
        """The segment's outputs (with the trace when asked) and its carry; one state serves as H and L."""
        outputs = self._outputs(h)
        z = h.flatten(2).transpose(1, 2)
        if trace:
            outputs["trace"] = {
                "z_H": torch.stack(steps),
                "z_L": torch.stack(steps),
                **{
                    key: torch.stack([o[key] for o in step_outputs])
                    for key in ("logits", "q_halt_logits", "q_continue_logits")
                },
            }
        return HRMACTv1InnerCarry(z.detach(), z.detach()), outputs


class ConvGRUNet(DeepThinkingNet):
    """A convolutional GRU in the HRM carry protocol: the plain recurrent baseline.

    Per step ``h = (1 - u) * h + u * tanh(W_n * [r * h, x])`` with gates ``u, r = sigmoid(W * [h, x])``
    (k x k convolutions; ``x`` the one-hot input, re-read at every step). A segment runs
    ``H_cycles * L_cycles`` steps, as many as the HRM's low-level updates; gradient reaches the
    last step (``backprop="one_step"``), the last ``L_cycles`` steps (``"last_cycle"``) or all of
    them (``"full"``). Config keys used: ``hidden_size``, ``H_cycles``, ``L_cycles``,
    ``conv_kernel``, ``backprop``, the vocabularies and the ACT keys. The state lives in ``z_H``
    (``z_L`` holds the same tensor) and starts at zero; heads as :class:`DeepThinkingNet`'s.
    """

    def __init__(self, config: HRMACTv1Config | Mapping[str, Any] | None = None, **overrides: Any) -> None:
        nn.Module.__init__(self)
        cfg = HRMACTv1Config.coerce(config, **overrides)
        if not cfg.is_grid or cfg.patch_size != 1:
            raise ValueError("the GRU baseline needs a grid without patches")
        self.config = cfg
        self.n_prefix = 0
        self._warned_dtype = False
        width, k = cfg.hidden_size, cfg.conv_kernel
        self.gates = nn.Conv2d(width + cfg.vocab_size, 2 * width, k, padding=k // 2)
        self.candidate = nn.Conv2d(width + cfg.vocab_size, width, k, padding=k // 2)
        for layer in (self.gates, self.candidate):
            trunc_normal_init_(layer.weight, std=((width + cfg.vocab_size) * k * k) ** -0.5)
            nn.init.zeros_(layer.bias)
        self.head = nn.Conv2d(width, cfg.vocab_out, k, padding=k // 2, bias=False)
        trunc_normal_init_(self.head.weight, std=(width * k * k) ** -0.5)
        self.aux_head = None
        if cfg.aux_vocab_out:
            self.aux_head = nn.Conv2d(width, cfg.aux_vocab_out, k, padding=k // 2, bias=False)
            trunc_normal_init_(self.aux_head.weight, std=(width * k * k) ** -0.5)
        self.q_head = nn.Linear(width, 2)
        with torch.no_grad():
            self.q_head.weight.zero_()
            self.q_head.bias.fill_(-5.0)

    def _iterate(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        update, reset = torch.sigmoid(self.gates(torch.cat((h, x), dim=1))).chunk(2, dim=1)
        candidate = torch.tanh(self.candidate(torch.cat((reset * h, x), dim=1)))
        return (1 - update) * h + update * candidate

    def _differentiated(self, step: int, n_steps: int) -> bool:
        """Whether step ``step`` (0-based) of a segment of ``n_steps`` gets gradient (``backprop``)."""
        if self.config.backprop == "full":
            return True
        if self.config.backprop == "last_cycle":
            return step >= n_steps - self.config.L_cycles
        return step == n_steps - 1

    def inner_forward(
        self,
        carry: HRMACTv1InnerCarry,
        batch: Mapping[str, torch.Tensor],
        trace: bool = False,
        **_: Any,  # options of HRMACTv1.inner_forward that do not apply here
    ) -> tuple[HRMACTv1InnerCarry, dict[str, torch.Tensor]]:
        inputs = batch["inputs"]
        rows, cols = self._input_grid(inputs)
        n = inputs.shape[0]
        x = F.one_hot(inputs.reshape(n, rows, cols).long(), self.config.vocab_size)
        x = x.permute(0, 3, 1, 2).to(carry.z_H.dtype)
        h = carry.z_H.reshape(n, rows, cols, -1).permute(0, 3, 1, 2)
        n_steps = self.config.H_cycles * self.config.L_cycles
        steps: list[torch.Tensor] = []
        step_outputs: list[dict[str, torch.Tensor]] = []
        grad_on = torch.is_grad_enabled()
        for step in range(n_steps):
            with torch.set_grad_enabled(grad_on and self._differentiated(step, n_steps)):
                h = self._iterate(h, x)
            if trace:
                self._record_step(h, steps, step_outputs)
        return self._finish(h, steps, step_outputs, trace)
