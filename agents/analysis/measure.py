"""Running a subject's reasoning model and turning what it does into the figures of ``analysis.json``.

Three passes over the inputs, in batches: a traced pass at the trained number of segments, every
row running all of them (states of every step -> forward residuals and participation ratio;
each segment's answer -> per-segment scores and halting probabilities); an ACT pass (the Q head
halts rows: segments used); and a pass of ``scaling`` times the trained segments whose answers
are read at each multiple (inference-time scaling: without halting, a row's answer after ``d``
segments does not depend on how many follow).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from agents.analysis.metrics import (
    CovarianceSum,
    count_flops,
    forward_residuals,
    histogram,
    params_per_module,
    pearson,
)
from agents.analysis.subjects import Subject

KEYS = (
    "convergence",
    "participation_ratio",
    "per_segment",
    "halting",
    "inference_scaling",
    "params",
    "flops_per_decision",
)


@dataclass
class TraceStats:
    """What one traced pass gives (sums over rows, divided at the end)."""

    residual_H: np.ndarray  # (H updates - 1,) mean forward residual of the high-level state
    residual_L: np.ndarray  # (L updates - 1,)
    H_step: list[int]  # the low-level step (0-based) at which each H update happens
    steps_per_segment: int  # low-level steps per segment
    pr_H: float
    pr_L: float
    segment_logits: list[torch.Tensor] = field(default_factory=list)  # per segment, (N, ...)
    q_halt: np.ndarray | None = None  # (segments,) mean halting probability after each segment


def batches(inputs: torch.Tensor, size: int):
    for start in range(0, len(inputs), size):
        yield inputs[start : start + size]


@torch.no_grad()
def trace_pass(model, inputs: torch.Tensor, segments: int, batch_size: int = 64) -> TraceStats:
    """The traced pass (module docstring). PR: covariance of the final H and L token states (data
    tokens, every input and cell a sample) after the last segment."""
    sums: dict[str, Any] = {"H": 0.0, "L": 0.0, "q": 0.0}
    cov_H, cov_L, logits = CovarianceSum(), CovarianceSum(), []
    prefix = getattr(model, "n_prefix", 0)
    for chunk in batches(inputs, batch_size):
        trace = model.reason({"inputs": chunk}, max_segments=segments, use_q_halt=False, trace=True).trace
        z_H, z_L = trace["z_H"], trace["z_L"]
        per_segment = z_H.shape[0] // segments
        ends = [(s + 1) * per_segment - 1 for s in range(segments)]
        sums["H"] = sums["H"] + forward_residuals(z_H).sum(1).cpu().numpy()
        sums["L"] = sums["L"] + forward_residuals(z_L).sum(1).cpu().numpy()
        sums["q"] = sums["q"] + torch.sigmoid(trace["q_halt_logits"][ends].float()).sum(1).cpu().numpy()
        cov_H.add(z_H[-1][:, prefix:])
        cov_L.add(z_L[-1][:, prefix:])
        logits.append(trace["logits"][ends].float().cpu())
    n = len(inputs)
    L_per_H = z_L.shape[0] // z_H.shape[0]
    return TraceStats(
        residual_H=np.atleast_1d(sums["H"] / n),
        residual_L=np.atleast_1d(sums["L"] / n),
        H_step=[(i + 1) * L_per_H - 1 for i in range(z_H.shape[0])],
        steps_per_segment=z_L.shape[0] // segments,
        pr_H=cov_H.participation_ratio(),
        pr_L=cov_L.participation_ratio(),
        segment_logits=list(torch.cat(logits, dim=1)),
        q_halt=sums["q"] / n,
    )


@torch.no_grad()
def halting_pass(model, inputs: torch.Tensor, segments: int, batch_size: int = 64) -> tuple[np.ndarray, torch.Tensor]:
    """``(segments each row used, its answer where it halted)`` with the Q head halting (eval mode)."""
    steps, logits = [], []
    for chunk in batches(inputs, batch_size):
        result = model.reason({"inputs": chunk}, max_segments=segments, use_q_halt=True)
        steps.append(result.steps.cpu().numpy())
        logits.append(result.outputs["logits"].float().cpu())
    return np.concatenate(steps), torch.cat(logits)


class DepthRecorder:
    """``on_segment`` callback: the answers (logits) of every row after each segment count of ``depths``."""

    def __init__(self, depths: set[int]) -> None:
        self.depths, self.segment = depths, 0
        self.answers: dict[int, torch.Tensor] = {}

    def __call__(self, rows: torch.Tensor, outputs: dict[str, torch.Tensor]) -> None:
        self.segment += 1
        if self.segment in self.depths:
            self.answers[self.segment] = outputs["logits"].float().cpu()


@torch.no_grad()
def depth_pass(model, inputs: torch.Tensor, depths: list[int], batch_size: int = 64) -> dict[int, torch.Tensor]:
    """Each row's answer after every depth of ``depths`` (segments), from one run of the deepest
    (no halting, so every row runs every segment)."""
    parts: dict[int, list[torch.Tensor]] = {d: [] for d in depths}
    for chunk in batches(inputs, batch_size):
        recorder = DepthRecorder(set(depths))
        model.reason({"inputs": chunk}, max_segments=max(depths), use_q_halt=False, on_segment=recorder)
        for depth, answer in recorder.answers.items():
            parts[depth].append(answer)
    return {d: torch.cat(chunks) for d, chunks in parts.items()}


def untrained_copy(model, seed: int = 0):
    """A model of the same class and config, freshly initialised from ``seed`` (global RNG untouched)."""
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = type(model)(model.config)
    return fresh.to(device).eval()


def scored(scores: dict[str, float], **extra: Any) -> dict[str, Any]:
    """A score row: ``extra`` keys, ``score`` (the first, main metric), then every metric."""
    return {**extra, "score": next(iter(scores.values())), **scores}


def analyze_subject(
    subject: Subject, control: Subject | None = None, *, batch_size: int = 64, scaling: int = 8, seed: int = 0
) -> dict[str, Any]:
    """The figures of ``analysis.json`` (keys :data:`KEYS`; None where a part does not apply)."""
    analysis: dict[str, Any] = dict.fromkeys(KEYS)
    analysis["params"] = params_per_module(subject.module, expand="hrm" if subject.kind == "policy" else None)
    if subject.model is None:
        analysis["flops_per_decision"] = count_flops(subject.one_decision)
        return jsonable(analysis)
    model, segments = subject.model, subject.segments
    stats = trace_pass(model, subject.inputs, segments, batch_size)
    fresh = trace_pass(untrained_copy(model, seed), subject.inputs, segments, batch_size)
    control_stats = None
    if control is not None and control.model is not None:
        control_stats = trace_pass(control.model, control.inputs, control.segments, batch_size)
    analysis["convergence"] = convergence_block(stats, control_stats, control.label if control else None)
    analysis["participation_ratio"] = {
        "H": stats.pr_H,
        "L": stats.pr_L,
        "ratio": stats.pr_H / stats.pr_L,
        "untrained_ratio": fresh.pr_H / fresh.pr_L,
        "untrained_H": fresh.pr_H,
        "untrained_L": fresh.pr_L,
    }
    analysis["per_segment"] = [scored(subject.scorer(lg), segment=s + 1) for s, lg in enumerate(stats.segment_logits)]
    analysis["halting"] = halting_block(subject, stats, batch_size)
    depths = [k * segments for k in range(1, scaling + 1)]
    answers = depth_pass(model, subject.inputs, depths, batch_size)
    analysis["inference_scaling"] = [
        scored(subject.scorer(answers[d]), segments=d, multiple=d // segments) for d in depths
    ]
    per_segment = count_flops(lambda: model.reason({"inputs": subject.inputs[:1]}, max_segments=1))
    analysis["flops_per_decision"] = per_segment * analysis["halting"]["mean_segments"]
    return jsonable(analysis)


def convergence_block(stats: TraceStats, control: TraceStats | None, control_label: str | None) -> dict[str, Any]:
    """Forward residuals of H and L at every low-level step (residual ``i`` of L: the change into step
    ``i + 1``; ``H_step``: the step each H residual changes into), and the control's beside them."""

    def block(s: TraceStats) -> dict[str, Any]:
        return {"H": s.residual_H.tolist(), "L": s.residual_L.tolist(), "H_step": s.H_step[1:],
                "steps_per_cycle": s.H_step[0] + 1, "steps_per_segment": s.steps_per_segment}  # fmt: skip

    out = block(stats)
    out["control"] = None if control is None else {"label": control_label, **block(control)}
    return out


def halting_block(subject: Subject, stats: TraceStats, batch_size: int) -> dict[str, Any]:
    """Segments used with Q halting (histogram, mean, per input), the mean halting probability
    after each segment, and the correlation of segments used with each difficulty measure."""
    steps, logits = halting_pass(subject.model, subject.inputs, subject.segments, batch_size)
    correlations = {name: pearson(steps, values) for name, values in subject.difficulty.items()}
    main = next(iter(subject.difficulty), None)
    return {
        "histogram": histogram(steps, subject.segments),
        "difficulty_correlation": correlations.get(main),
        "difficulty": main,
        "correlations": correlations,
        "mean_segments": float(steps.mean()),
        "max_segments": subject.segments,
        "q_halt_probability": stats.q_halt.tolist(),
        "score": scored(subject.scorer(logits)),
        "per_input": {"segments": steps.tolist(), **{k: v.tolist() for k, v in subject.difficulty.items()}},
    }


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and arrays as Python ones and NaN/inf as None (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
