"""The figures of the analysis as plain functions of tensors and arrays (no checkpoints, no files).

- :func:`forward_residuals`: how much a recurrent state still moves at each step;
- :class:`CovarianceSum` / :func:`participation_ratio`: how many dimensions states use;
- :func:`pearson`, :func:`histogram`: halting against difficulty;
- :func:`params_per_module`, :func:`count_flops`: introspection.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn


def forward_residuals(states: torch.Tensor) -> torch.Tensor:
    """``||z_t - z_(t-1)|| / ||z_(t-1)||`` per step and row: ``states`` is ``(steps, rows, ...)``,
    the result ``(steps - 1, rows)`` (each row's state flattened; float32)."""
    z = states.detach().float().flatten(2)
    change = (z[1:] - z[:-1]).norm(dim=-1)
    return change / z[:-1].norm(dim=-1).clamp_min(1e-12)


class CovarianceSum:
    """Running sums of vectors (float64) from which their covariance and its participation ratio follow,
    so that states of many batches never sit in memory together."""

    def __init__(self) -> None:
        self.count = 0
        self.total: torch.Tensor | None = None
        self.outer: torch.Tensor | None = None

    def add(self, vectors: torch.Tensor | np.ndarray) -> CovarianceSum:
        """Add samples ``(..., dims)`` (leading axes are samples)."""
        x = torch.as_tensor(vectors).detach().to("cpu", torch.float64)
        x = x.reshape(-1, x.shape[-1])
        if self.total is None:
            self.total, self.outer = x.new_zeros(x.shape[1]), x.new_zeros(x.shape[1], x.shape[1])
        self.count += x.shape[0]
        self.total += x.sum(0)
        self.outer += x.T @ x
        return self

    def covariance(self) -> torch.Tensor:
        if self.total is None or self.count < 2:
            raise ValueError("a covariance needs at least two samples")
        mean = self.total / self.count
        return (self.outer - self.count * torch.outer(mean, mean)) / (self.count - 1)

    def participation_ratio(self) -> float:
        """``(sum of eigenvalues)^2 / sum of squared eigenvalues`` = ``tr(C)^2 / tr(C^2)``: between 1 (one
        direction carries all variance) and the dimension (isotropic). NaN for states that never vary."""
        cov = self.covariance()
        squares = float((cov * cov).sum())  # tr(C^2) for a symmetric C
        return float(torch.trace(cov)) ** 2 / squares if squares > 0 else math.nan


def participation_ratio(states: torch.Tensor | np.ndarray) -> float:
    """The participation ratio of the covariance of ``states`` ``(samples..., dims)`` over its samples."""
    return CovarianceSum().add(states).participation_ratio()


def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float | None:
    """Pearson's correlation coefficient; None when it is undefined (fewer than 2 points, or a
    constant series)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def histogram(values: np.ndarray, high: int) -> dict[str, int]:
    """Counts of the integers 1..``high`` in ``values`` (JSON keys: strings)."""
    values = np.asarray(values).astype(np.int64)
    return {str(k): int((values == k).sum()) for k in range(1, high + 1)}


def params_per_module(module: nn.Module, expand: str | None = None) -> dict[str, int]:
    """Parameters of each direct child of ``module`` and each parameter held directly by it, and
    ``total``; the child named ``expand`` (e.g. a policy's ``hrm``) is also broken down as
    ``expand.<child>``. Children without parameters are left out."""
    counts: dict[str, int] = {}
    for name, param in module.named_parameters(recurse=False):
        counts[name] = param.numel()
    for name, child in module.named_children():
        n = sum(p.numel() for p in child.parameters())
        if n:
            counts[name] = n
        if name == expand:
            counts.update({f"{name}.{k}": v for k, v in params_per_module(child).items() if k != "total"})
    counts["total"] = sum(p.numel() for p in module.parameters())
    return counts


def count_flops(run: Callable[[], Any]) -> int:
    """Floating-point operations torch counts (matmuls, convolutions, attention) while ``run()``
    runs, without gradients; a multiply-add counts as two."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        run()
    return int(counter.get_total_flops())
