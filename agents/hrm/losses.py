"""The ACT loss head and a deep-supervision pass for trainers.

Loss per segment (DESIGN 3): task loss + 0.5 x (BCE of q_halt against "this segment's answer is
entirely right" + BCE of q_continue against the bootstrapped target). Targets come from the
carry's ``current_data`` (they stay aligned with the examples the carry is working on).

Targets can be: class ids ``(B,)`` for the action head, per-token ids ``(B, seq_len)`` (or
``(B, rows, cols)``) for the sequence head with ``ignore_index`` for cells without a target, or
a boolean mask ``(B, n_actions)`` of acceptable actions (loss = -log P(any acceptable action);
"right" = the argmax is acceptable), for training against an optimal-action set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from agents.hrm.model import HRMACTv1Carry

IGNORE_LABEL_ID = -100


def softmax_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_LABEL_ID
) -> torch.Tensor:
    """Per-element cross-entropy in float32, 0 where ``labels == ignore_index``."""
    flat = logits.float().reshape(-1, logits.shape[-1])
    loss = F.cross_entropy(flat, labels.long().reshape(-1), ignore_index=ignore_index, reduction="none")
    return loss.view(labels.shape)


def _log_stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    # s(x) = x + 1 for x >= 0 and 1 / (1 - x) below: positive, grows only linearly.
    s_x = torch.where(x < 0, 1 / (1 - x + 1e-30), x + 1)
    return torch.log(s_x / s_x.sum(dim=dim, keepdim=True))


def stablemax_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_LABEL_ID
) -> torch.Tensor:
    """Cross-entropy with the original's "stablemax" (float64; MPS has none, so float32)."""
    dtype = torch.float32 if logits.device.type == "mps" else torch.float64
    logprobs = _log_stablemax(logits.to(dtype))
    valid = labels != ignore_index
    picked = torch.gather(logprobs, -1, torch.where(valid, labels, 0).long().unsqueeze(-1))
    return -torch.where(valid, picked.squeeze(-1), 0).float()


LOSSES = {"softmax_cross_entropy": softmax_cross_entropy, "stablemax_cross_entropy": stablemax_cross_entropy}


class ACTLossHead(nn.Module):
    """Wrap a model: ``carry, loss, metrics, outputs, all_halted = head(carry, batch)``.

    ``metrics`` are detached 0-d tensors averaged over the counted rows: ``loss``,
    ``task_loss``, ``q_halt_loss``, ``q_continue_loss`` (and ``aux_loss``), ``accuracy`` (mean
    per-row fraction of right targets), ``exact_accuracy`` (whole answer right),
    ``q_halt_accuracy`` ((q_halt >= 0) agrees with exact correctness), ``halted`` (fraction
    that halted this segment), ``steps`` (mean segments used by the rows that halted), ``count``.
    ``outputs`` are the model outputs (detached) plus per-row ``row_accuracy``, ``row_exact``
    and ``row_q_halt_correct``. ``halt_mask_key``: a batch key of per-cell bool masks; the Q
    head's halting target then also asks the aux head to be right on every masked cell (e.g.
    a policy's whole route, not only its first move).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_type: str = "softmax_cross_entropy",
        *,
        label_key: str = "labels",
        ignore_index: int = IGNORE_LABEL_ID,
        q_loss_weight: float = 0.5,
        aux_label_key: str | None = None,
        aux_weight: float = 1.0,
        halt_mask_key: str | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if loss_type not in LOSSES:
            raise ValueError(f"unknown loss_type {loss_type!r}; allowed: {sorted(LOSSES)}")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction={reduction!r} must be 'mean' or 'sum'")
        self.model = model
        self.loss_fn = LOSSES[loss_type]
        self.label_key = label_key
        self.ignore_index = ignore_index
        self.q_loss_weight = q_loss_weight
        self.aux_label_key = aux_label_key
        self.aux_weight = aux_weight
        self.halt_mask_key = halt_mask_key
        self.reduction = reduction

    def initial_carry(self, batch: Mapping[str, torch.Tensor]) -> HRMACTv1Carry:
        return self.model.initial_carry(batch)

    def _task_terms(
        self, logits: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-row (loss, accuracy, exact, has_targets) for any supported target layout."""
        n_rows = logits.shape[0]
        if labels.dtype == torch.bool:
            if labels.shape != logits.shape:
                raise ValueError(
                    f"a boolean target mask must have the logits' shape {tuple(logits.shape)}, "
                    f"got {tuple(labels.shape)}"
                )
            logits32 = logits.float()
            has = labels.reshape(n_rows, -1, labels.shape[-1]).any(-1)  # (B, positions)
            # Positions without any acceptable class keep all logits: loss 0, finite gradients.
            blocked = ~labels & labels.any(-1, keepdim=True)
            masked = logits32.masked_fill(blocked, float("-inf"))
            per = (torch.logsumexp(logits32, -1) - torch.logsumexp(masked, -1)).reshape(n_rows, -1)
            right = labels.gather(-1, logits.argmax(-1, keepdim=True)).squeeze(-1)
            right = right.reshape(n_rows, -1) & has
        else:
            if labels.dtype.is_floating_point:
                raise ValueError(f"targets must be integer class ids or a bool mask, got {labels.dtype}")
            if logits.ndim == 2:  # action head: one class per row
                labels = labels.reshape(n_rows, 1)
                logits = logits.unsqueeze(1)
            else:
                labels = labels.reshape(n_rows, -1)
            if labels.shape[1] != logits.shape[1]:
                raise ValueError(f"targets give {labels.shape[1]} positions per row, logits {logits.shape[1]}")
            has = labels != self.ignore_index
            bad = has & ((labels < 0) | (labels >= logits.shape[-1]))
            if bool(bad.any()):
                raise ValueError(
                    f"target ids must lie in [0, {logits.shape[-1]}) or equal ignore_index="
                    f"{self.ignore_index}; got {labels[bad][:5].tolist()}"
                )
            per = self.loss_fn(logits, labels, ignore_index=self.ignore_index)
            right = has & (logits.argmax(-1) == labels)
        counts = has.sum(-1)
        divisor = counts.clamp_min(1)
        row_loss = (per / divisor.unsqueeze(-1)).sum(-1)
        row_acc = right.sum(-1) / divisor
        row_exact = right.sum(-1) == counts
        return row_loss, row_acc, row_exact, counts > 0

    def _aux_right_on_mask(
        self, outputs: Mapping[str, torch.Tensor], data: Mapping[str, torch.Tensor], n_rows: int
    ) -> torch.Tensor:
        """(B,) True where the aux head's argmax is right on every cell of the row's halt mask."""
        if self.aux_label_key is None or "aux_logits" not in outputs:
            raise ValueError("halt_mask_key needs aux_label_key and a model with an aux head")
        if self.halt_mask_key not in data:
            raise ValueError(f"batch has no halt mask under {self.halt_mask_key!r}; keys: {sorted(data)}")
        mask = data[self.halt_mask_key].reshape(n_rows, -1).bool()
        aux_labels = data[self.aux_label_key].reshape(n_rows, -1)
        wrong = (outputs["aux_logits"].argmax(-1) != aux_labels) & mask
        return ~wrong.any(-1)

    def forward(
        self,
        carry: HRMACTv1Carry,
        batch: Mapping[str, torch.Tensor],
        *,
        row_mask: torch.Tensor | None = None,
        return_keys: Sequence[str] | None = None,
        **model_kwargs: Any,
    ) -> tuple[HRMACTv1Carry, torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
        new_carry, outputs = self.model(carry, batch, **model_kwargs)
        if self.label_key not in new_carry.current_data:
            raise ValueError(f"batch has no targets under {self.label_key!r}; keys: {sorted(batch)}")
        labels = new_carry.current_data[self.label_key]
        row_loss, row_acc, row_exact, counted = self._task_terms(outputs["logits"], labels)

        q_halt = outputs["q_halt_logits"]
        halt_right = row_exact
        if self.halt_mask_key is not None:
            halt_right = row_exact & self._aux_right_on_mask(outputs, new_carry.current_data, labels.shape[0])
        q_halt_loss = F.binary_cross_entropy_with_logits(q_halt, halt_right.to(q_halt.dtype), reduction="none")
        q_continue_loss = torch.zeros_like(q_halt_loss)
        if "target_q_continue" in outputs:
            q_continue_loss = F.binary_cross_entropy_with_logits(
                outputs["q_continue_logits"], outputs["target_q_continue"], reduction="none"
            )
        aux_loss = torch.zeros_like(row_loss)
        if self.aux_label_key is not None:
            if "aux_logits" not in outputs:
                raise ValueError("aux_label_key is set but the model has no aux head (set aux_vocab_out > 0)")
            aux_labels = new_carry.current_data[self.aux_label_key].reshape(labels.shape[0], -1)
            aux_per = softmax_cross_entropy(outputs["aux_logits"], aux_labels, self.ignore_index)
            aux_counts = (aux_labels != self.ignore_index).sum(-1).clamp_min(1)
            aux_loss = aux_per.sum(-1) / aux_counts

        weight = counted.float()
        if row_mask is not None:
            weight = weight * row_mask.to(weight.dtype).reshape(-1)
        total_rows = row_loss + self.q_loss_weight * (q_halt_loss + q_continue_loss) + self.aux_weight * aux_loss
        norm = weight.sum().clamp_min(1) if self.reduction == "mean" else 1.0
        loss = (weight * total_rows).sum() / norm

        with torch.no_grad():
            q_right = (q_halt >= 0) == halt_right
            halted = new_carry.halted & (weight > 0)
            count = weight.sum().clamp_min(1)

            def mean(values: torch.Tensor) -> torch.Tensor:
                return (weight * values.float()).sum() / count

            metrics = {
                "loss": loss.detach(),
                "task_loss": mean(row_loss),
                "q_halt_loss": mean(q_halt_loss),
                "q_continue_loss": mean(q_continue_loss),
                "accuracy": mean(row_acc),
                "exact_accuracy": mean(row_exact),
                "q_halt_accuracy": mean(q_right),
                "halted": mean(new_carry.halted),
                "steps": (new_carry.steps * halted).sum() / halted.sum().clamp_min(1),
                "count": weight.sum(),
            }
            if self.aux_label_key is not None:
                metrics["aux_loss"] = mean(aux_loss)
        keys = outputs.keys() if return_keys is None else return_keys
        detached = {k: outputs[k].detach() for k in keys if k in outputs and k != "trace"}
        if "trace" in outputs and (return_keys is None or "trace" in return_keys):
            detached["trace"] = outputs["trace"]
        detached["row_accuracy"] = row_acc.detach()
        detached["row_exact"] = row_exact.detach()
        detached["row_q_halt_correct"] = q_right
        return new_carry, loss, metrics, detached, new_carry.halted.all()


def _clip_params(optimizers: Iterable[torch.optim.Optimizer]) -> list[torch.Tensor]:
    return [p for opt in optimizers for group in opt.param_groups for p in group["params"] if p.requires_grad]


def deep_supervision_pass(
    loss_head: ACTLossHead,
    batch: Mapping[str, torch.Tensor],
    optimizers: Sequence[torch.optim.Optimizer] = (),
    *,
    max_segments: int | None = None,
    grad_clip: float | None = 1.0,
    step_every_segment: bool = True,
) -> dict[str, Any]:
    """Run segments on one batch until every row halts, each segment its own loss.

    With optimizers and grad mode on, each segment's loss is backpropagated and (by default)
    every optimizer steps after each segment, as in HRM's deep supervision; the carry between
    segments is detached by the model. Rows that halt leave the batch, so later segments cost
    less. Without optimizers (or under ``torch.no_grad()``) it only measures. Returns floats:
    ``loss`` (mean over segments), ``segments``, ``segment_losses`` and, per row at the segment
    where it halted, ``accuracy``, ``exact_accuracy``, ``q_halt_accuracy`` and ``steps``.
    """
    train = bool(optimizers) and torch.is_grad_enabled()
    params = _clip_params(optimizers) if train else []
    if train:
        for opt in optimizers:
            opt.zero_grad()
    carry = loss_head.initial_carry(batch)
    current = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
    n_rows = batch["inputs"].shape[0]
    device = batch["inputs"].device
    row_acc = torch.zeros(n_rows, device=device)
    row_exact = torch.zeros(n_rows, dtype=torch.bool, device=device)
    row_q = torch.zeros(n_rows, dtype=torch.bool, device=device)
    row_steps = torch.zeros(n_rows, dtype=torch.int32, device=device)
    active = torch.arange(n_rows, device=device)
    segment_losses: list[float] = []
    kwargs = {} if max_segments is None else {"halt_max_steps": max_segments}

    def step() -> None:
        if grad_clip is not None and params:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        for opt in optimizers:
            opt.step()
        for opt in optimizers:
            opt.zero_grad()

    while active.numel():
        carry, loss, _, outputs, _ = loss_head(carry, current, return_keys=(), **kwargs)
        if train and loss.requires_grad:
            loss.backward()
            if step_every_segment:
                step()
        segment_losses.append(float(loss.detach()))
        halted = carry.halted
        rows = active[halted]
        row_acc[rows] = outputs["row_accuracy"][halted].float()
        row_exact[rows] = outputs["row_exact"][halted]
        row_q[rows] = outputs["row_q_halt_correct"][halted]
        row_steps[rows] = carry.steps[halted]
        keep = ~halted
        active = active[keep]
        if active.numel():
            carry = carry.select(keep)
            current = carry.current_data
    if train and not step_every_segment:
        step()
    return {
        "loss": sum(segment_losses) / len(segment_losses),
        "segments": len(segment_losses),
        "segment_losses": segment_losses,
        "accuracy": float(row_acc.mean()),
        "exact_accuracy": float(row_exact.float().mean()),
        "q_halt_accuracy": float(row_q.float().mean()),
        "steps": float(row_steps.float().mean()),
    }
