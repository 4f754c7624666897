"""Building blocks of HRM-ACT-v1: weightless RMSNorm, SwiGLU, non-causal attention with 1-D or
2-D rotary positions, local convolution mixing, and the post-norm blocks built from them.

Written from the behaviour of the original implementation (DESIGN 3): no biases in the blocks,
truncated-normal LeCun init, norms computed in float32, weights cast to the activations' dtype
(so a bfloat16 forward needs no autocast and keeps float32 master weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def trunc_normal_init_(tensor: torch.Tensor, std: float = 1.0) -> torch.Tensor:
    """Fill with a normal truncated at +-2 sigma whose *actual* std is ``std``.

    Truncation shrinks the spread (to ~0.88 sigma at +-2), so the sampling std is scaled up to
    compensate; the LeCun init then really has variance 1/fan_in.
    """
    with torch.no_grad():
        if std == 0:
            return tensor.zero_()
        lower, upper = -2.0, 2.0
        norm_pdf = lambda x: math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)  # noqa: E731
        mass = 0.5 * (math.erf(upper / math.sqrt(2)) - math.erf(lower / math.sqrt(2)))
        variance = (
            1
            - (upper * norm_pdf(upper) - lower * norm_pdf(lower)) / mass
            - ((norm_pdf(upper) - norm_pdf(lower)) / mass) ** 2
        )
        sample_std = std / math.sqrt(variance)
        return nn.init.trunc_normal_(tensor, 0.0, sample_std, lower * sample_std, upper * sample_std)


def check_tensor(ok: torch.Tensor, message) -> None:
    """Raise ValueError(message()) unless ``ok``; on an accelerator assert asynchronously, so
    input checks never force a host sync per segment (the error then surfaces later)."""
    if ok.device.type == "cpu":
        if not bool(ok):
            raise ValueError(message())
    else:
        torch._assert_async(ok, "HRM input check failed: " + message(sync=False))


def range_message(name: str, values: torch.Tensor, upper: int, what: str):
    """Message factory for ids outside [0, upper): shows the offending range on the CPU."""

    def message(sync: bool = True) -> str:
        seen = f", got values in [{int(values.min())}, {int(values.max())}]" if sync else ""
        return f"{name} must lie in [0, {what}={upper}){seen}"

    return message


class _RMSNorm(torch.autograd.Function):
    """Weightless RMS norm with a hand-written backward: saves (y, 1/rms) instead of every
    intermediate of the decomposed op, and runs 5 elementwise passes instead of ~10."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, eps: float) -> torch.Tensor:
        x32 = x.to(torch.promote_types(x.dtype, torch.float32))
        inv_rms = torch.rsqrt(x32.square().mean(-1, keepdim=True).add_(eps))
        y = x32 * inv_rms
        ctx.save_for_backward(y, inv_rms)
        ctx.dtype = x.dtype
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        y, inv_rms = ctx.saved_tensors
        grad = grad.to(y.dtype)
        dot = (grad * y).mean(-1, keepdim=True)
        return ((grad - y * dot) * inv_rms).to(ctx.dtype), None


def rms_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """Weightless RMS norm over the last dim, computed in float32, returned in x's dtype."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _RMSNorm.apply(x, eps)
    return F.rms_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype)


class CastedLinear(nn.Module):
    """Linear layer with LeCun truncated-normal init whose weights follow the input dtype."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(trunc_normal_init_(torch.empty(out_features, in_features), std=in_features**-0.5))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        return F.linear(x, self.weight.to(x.dtype), bias)


@dataclass
class Rotary:
    """Precomputed rotary tables for one token layout.

    ``cos``/``sin``: (T, head_dim) float32. ``sections``: 1 for 1-D RoPE (rotate_half over the
    whole head), 2 for 2-D RoPE (rotate_half within each half: rows in the first, columns in the
    second). Tokens without a position (prefix tokens of a grid) have cos=1, sin=0.
    """

    cos: torch.Tensor
    sin: torch.Tensor
    sections: int

    def rotate(self, x: torch.Tensor) -> torch.Tensor:
        """``x * cos + rotate_half(x) * sin`` on the last dim; x is (..., T, heads, head_dim)."""
        dtype = x.dtype
        xf = x.float()
        halves = xf.unflatten(-1, (self.sections, 2, -1))
        rotated = torch.stack((-halves[..., 1, :], halves[..., 0, :]), dim=-2).flatten(-3)
        cos = self.cos.unsqueeze(-2)
        sin = self.sin.unsqueeze(-2)
        return (xf * cos + rotated * sin).to(dtype)


def rotary_1d(n_tokens: int, head_dim: int, theta: float, device: torch.device) -> Rotary:
    """The original RoPE: token i at position i (prefix tokens included)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim))
    freqs = torch.outer(torch.arange(n_tokens, device=device).float(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return Rotary(emb.cos(), emb.sin(), sections=1)


def rotary_2d(n_prefix: int, rows: int, cols: int, head_dim: int, theta: float, device: torch.device) -> Rotary:
    """2-D RoPE for a row-major token grid: relative positions that also fit other grid sizes."""
    half = head_dim // 2
    inv_freq = 1.0 / (theta ** (torch.arange(0, half, 2, device=device).float() / half))
    row = torch.arange(rows, device=device).float().repeat_interleave(cols)
    col = torch.arange(cols, device=device).float().repeat(rows)
    f_row = torch.outer(row, inv_freq)
    f_col = torch.outer(col, inv_freq)
    emb = torch.cat((f_row, f_row, f_col, f_col), dim=-1)
    prefix = torch.zeros(n_prefix, head_dim, device=device)
    emb = torch.cat((prefix, emb), dim=0)
    return Rotary(emb.cos(), emb.sin(), sections=2)


@dataclass
class TokenLayout:
    """What every block needs to know about the token sequence it mixes."""

    n_prefix: int
    grid: tuple[int, int] | None  # (rows, cols) of the data tokens, None for sequences
    rotary: Rotary | None
    attention_mask: torch.Tensor | None = None  # (T, T) bool, True = may attend; None = all


def sudoku_peer_mask(n_prefix: int, grid: tuple[int, int], device) -> torch.Tensor:
    """(T, T) attention mask of the Sudoku constraint graph: a cell sees its row, column and box.

    Prefix tokens see and are seen by every token (they carry global state).
    """
    if grid != (9, 9):
        raise ValueError(f"attention_scope='sudoku' reads 9x9 boards, got a {grid[0]}x{grid[1]} grid")
    cell = torch.arange(81, device=device)
    row, col = cell // 9, cell % 9
    box = (row // 3) * 3 + col // 3
    peers = (row[:, None] == row) | (col[:, None] == col) | (box[:, None] == box)
    mask = torch.ones(n_prefix + 81, n_prefix + 81, dtype=torch.bool, device=device)
    mask[n_prefix:, n_prefix:] = peers
    return mask


class Attention(nn.Module):
    """Multi-head non-causal self-attention with a fused QKV projection and no biases."""

    def __init__(self, hidden_size: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.qkv_proj = CastedLinear(hidden_size, 3 * hidden_size)
        self.o_proj = CastedLinear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
        batch, n_tokens, hidden = x.shape
        qkv = self.qkv_proj(x).view(batch, n_tokens, 3, self.num_heads, self.head_dim)
        if layout.rotary is not None:
            qk = layout.rotary.rotate(qkv[:, :, :2].transpose(1, 2))  # (B, 2, T, H, d)
            query, key = qk.unbind(1)
        else:
            query, key = qkv[:, :, 0], qkv[:, :, 1]
        value = qkv[:, :, 2]
        out = F.scaled_dot_product_attention(
            query.transpose(1, 2),
            key.transpose(1, 2),
            value.transpose(1, 2),
            attn_mask=layout.attention_mask,
        )
        return self.o_proj(out.transpose(1, 2).reshape(batch, n_tokens, hidden))


class SwiGLU(nn.Module):
    """Gated MLP: ``down(silu(gate(x)) * up(x))`` with fused gate/up projection."""

    def __init__(self, hidden_size: int, inner_size: int) -> None:
        super().__init__()
        self.gate_up_proj = CastedLinear(hidden_size, 2 * inner_size)
        self.down_proj = CastedLinear(inner_size, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class ConvMixer(nn.Module):
    """Local token mixing: a k x k convolution over the token grid (no bias, zero padding).

    Prefix tokens (CLS, puzzle embedding) have no place on the grid. With ``prefix_path`` they
    exchange a global summary instead: each prefix token receives a projection of the mean
    grid token, each grid token a projection of the mean prefix token; without it (hybrid
    blocks, where attention connects them) their mixing output is zero.
    """

    def __init__(self, hidden_size: int, kernel: int, depthwise: bool, prefix_path: bool) -> None:
        super().__init__()
        self.kernel = kernel
        self.groups = hidden_size if depthwise else 1
        fan_in = kernel * kernel * (1 if depthwise else hidden_size)
        shape = (hidden_size, hidden_size // self.groups, kernel, kernel)
        self.weight = nn.Parameter(trunc_normal_init_(torch.empty(shape), std=fan_in**-0.5))
        self.prefix_path = prefix_path
        if prefix_path:
            self.grid_to_prefix = CastedLinear(hidden_size, hidden_size)
            self.prefix_to_grid = CastedLinear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
        assert layout.grid is not None, "conv mixing needs a token grid"
        batch, _, hidden = x.shape
        rows, cols = layout.grid
        n_prefix = layout.n_prefix
        grid = x[:, n_prefix:] if n_prefix else x
        # (B, rows*cols, D) viewed as NCHW with channels-last strides: no copy when contiguous.
        image = grid.reshape(batch, rows, cols, hidden).permute(0, 3, 1, 2)
        mixed = F.conv2d(image, self.weight.to(x.dtype), padding=self.kernel // 2, groups=self.groups)
        mixed = mixed.permute(0, 2, 3, 1).reshape(batch, rows * cols, hidden)
        if not n_prefix:
            return mixed
        if self.prefix_path:
            prefix = x[:, :n_prefix]
            mixed = mixed + self.prefix_to_grid(prefix.mean(1, keepdim=True))
            to_prefix = self.grid_to_prefix(grid.mean(1, keepdim=True)).expand(-1, n_prefix, -1)
        else:
            to_prefix = x.new_zeros(batch, n_prefix, hidden)
        return torch.cat((to_prefix, mixed), dim=1)


class HRMBlock(nn.Module):
    """Post-norm block: ``x = norm(x + mix(x)); x = norm(x + swiglu(x))``.

    ``mix`` is attention, a convolution, or their sum (hybrid: both see the same input).
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        mlp_hidden: int,
        block: str,
        conv_kernel: int,
        conv_depthwise: bool,
        has_prefix: bool,
        eps: float,
    ) -> None:
        super().__init__()
        self.eps = eps
        self.self_attn = Attention(hidden_size, num_heads) if block != "conv" else None
        self.conv = (
            ConvMixer(hidden_size, conv_kernel, conv_depthwise, has_prefix and block == "conv")
            if block != "attention"
            else None
        )
        self.mlp = SwiGLU(hidden_size, mlp_hidden)

    def forward(self, x: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
        if self.self_attn is not None and self.conv is not None:
            mixed = self.self_attn(x, layout) + self.conv(x, layout)
        elif self.self_attn is not None:
            mixed = self.self_attn(x, layout)
        else:
            mixed = self.conv(x, layout)
        x = rms_norm(x + mixed, self.eps)
        return rms_norm(x + self.mlp(x), self.eps)


class ReasoningModule(nn.Module):
    """One HRM level (H or L): add the injection, then run its blocks."""

    def __init__(self, layers: list[HRMBlock]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, hidden: torch.Tensor, injection: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
        hidden = hidden + injection
        for layer in self.layers:
            hidden = layer(hidden, layout)
        return hidden
