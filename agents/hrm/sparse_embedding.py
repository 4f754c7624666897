"""Per-puzzle embeddings trained sparsely with SignSGD, as in the original HRM.

Only the rows of the puzzles in a batch change at each step, so a dense optimizer (AdamW over the
whole table, with weight decay on every row) would be wrong and wasteful. The table is a
parameter without autograd (``requires_grad=False``): it shows up in ``model.puzzle_emb
.parameters()`` (what the usage guide hands to the optimizer) and in the state dict, but never
gets a dense or a sparse ``.grad`` (so ``clip_grad_norm_(model.parameters())`` keeps working).
In training each forward gathers the batch's rows into a fresh leaf tensor; the optimizer sums
their gradients per puzzle id and applies ``w <- w * (1 - lr * wd) - lr * sign(g)`` to the
touched rows only.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import nn

from agents.hrm.layers import check_tensor, range_message, trunc_normal_init_

_MARK = "_hrm_sparse_table"


def _pending(weight: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(ids, leaf rows) of the forwards since the optimizer's last step, kept on the table."""
    return weight.__dict__.setdefault("_hrm_sparse_pending", [])


class CastedSparseEmbedding(nn.Module):
    """Embedding table (zero init by default) whose rows are trained by the sparse optimizer."""

    def __init__(self, num_embeddings: int, embedding_dim: int, init_std: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(
            trunc_normal_init_(torch.empty(num_embeddings, embedding_dim), std=init_std),
            requires_grad=False,
        )
        setattr(self.weight, _MARK, True)

    def forward(self, ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        ids = ids.long()
        n_rows = self.weight.shape[0]
        if ids.numel():
            check_tensor(
                ((ids >= 0) & (ids < n_rows)).all(),
                range_message("puzzle_identifiers", ids, n_rows, "num_puzzle_identifiers"),
            )
        rows = self.weight[ids]
        # Rows are recorded only while a sparse optimizer is attached (it clears them at each
        # step), so an embedding nobody trains cannot accumulate memory.
        if self.training and torch.is_grad_enabled() and getattr(self.weight, "_hrm_sparse_opt", 0):
            rows = rows.detach().requires_grad_(True)
            _pending(self.weight).append((ids, rows))
        return rows.to(dtype)


class CastedSparseEmbeddingSignSGD_Distributed(torch.optim.Optimizer):  # noqa: N801
    """SignSGD with decoupled weight decay for :class:`CastedSparseEmbedding` tables.

    Give it ``model.puzzle_emb.parameters()``. With ``world_size > 1`` and an initialised
    process group, the per-row gradients are summed across ranks first, so every rank applies
    the same update (the name keeps the original's).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        world_size: int = 1,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
    ) -> None:
        if not lr >= 0.0:
            raise ValueError(f"invalid learning rate {lr!r}: must be >= 0")
        if not weight_decay >= 0.0:
            raise ValueError(f"invalid weight_decay {weight_decay!r}: must be >= 0")
        if not (isinstance(world_size, int) and world_size >= 1):
            raise ValueError(f"invalid world_size {world_size!r}: must be an integer >= 1")
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, world_size=world_size))
        for group in self.param_groups:
            for param in group["params"]:
                if not getattr(param, _MARK, False):
                    raise ValueError(
                        "CastedSparseEmbeddingSignSGD_Distributed trains CastedSparseEmbedding "
                        "tables only: pass model.puzzle_emb.parameters()"
                    )
                param._hrm_sparse_opt = getattr(param, "_hrm_sparse_opt", 0) + 1

    def release(self) -> None:
        """Let go of the tables: their forwards stop recording rows for this optimizer (after
        test-time training, say), and nothing is left pending."""
        for group in self.param_groups:
            for param in group["params"]:
                _pending(param).clear()
                param._hrm_sparse_opt = max(0, getattr(param, "_hrm_sparse_opt", 0) - 1)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for param in group["params"]:
                _pending(param).clear()

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for param in group["params"]:
                records = _pending(param)
                grads = [(ids, rows.grad) for ids, rows in records if rows.grad is not None]
                records.clear()
                _signsgd_rows(param, grads, group["lr"], group["weight_decay"], group["world_size"])
        return loss


def _signsgd_rows(
    weight: torch.Tensor,
    pending: list[tuple[torch.Tensor, torch.Tensor]],
    lr: float,
    weight_decay: float,
    world_size: int,
) -> None:
    """Sum the gradients per row id, then update only the touched rows."""
    distributed = world_size > 1 and dist.is_available() and dist.is_initialized()
    if not pending and not distributed:
        return
    grad = torch.zeros_like(weight)
    touched = torch.zeros(weight.shape[0], dtype=weight.dtype, device=weight.device)
    for ids, rows_grad in pending:
        grad.index_add_(0, ids, rows_grad.to(weight.dtype))
        touched.index_add_(0, ids, torch.ones_like(ids, dtype=weight.dtype))
    if distributed:
        dist.all_reduce(grad)
        dist.all_reduce(touched)
    rows = touched.nonzero().squeeze(-1)
    if rows.numel() == 0:
        return
    updated = weight[rows] * (1.0 - lr * weight_decay) - lr * torch.sign(grad[rows])
    weight[rows] = updated
