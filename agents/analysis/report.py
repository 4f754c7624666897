"""``report.md`` and its PNGs: one figure per plot, each embedded with one sentence reading it.

Figures are drawn with matplotlib's Agg canvas on figures of their own (no pyplot state) and
written under a hidden name, then renamed, as :mod:`agents.common.plots` does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.analysis import readings
from agents.analysis.readings import fmt


def new_axes(columns: int = 1, width: float = 6.4):
    """``(figure, [axes...])`` of a fresh Agg figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * columns if columns > 1 else width, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    return figure, [figure.add_subplot(1, columns, i + 1) for i in range(columns)]


def save(figure, path: Path) -> Path:
    figure.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp")
    figure.savefig(tmp, format="png")
    os.replace(tmp, path)
    return path


# ---- plots ---------------------------------------------------------------------------------
def plot_convergence(conv: dict[str, Any], label: str, path: Path) -> Path:
    """Residuals (log scale) against the low-level step, segment bounds dotted; the control beside."""
    from matplotlib.ticker import MaxNLocator

    panels = [(label, conv)] + ([(conv["control"]["label"], conv["control"])] if conv.get("control") else [])
    figure, axes = new_axes(len(panels))
    for ax, (title, block) in zip(axes, panels):
        if block["steps_per_cycle"] == 1:  # one level (z_H is z_L): one line
            ax.plot(range(1, len(block["L"]) + 1), block["L"], "o-", ms=2, lw=1, label="state (one level)")
        else:
            ax.plot(range(1, len(block["L"]) + 1), block["L"], lw=1, label="L (low level)")
            ax.plot(block["H_step"], block["H"], "o-", ms=3, label="H (high level)")
        for bound in range(block["steps_per_segment"], len(block["L"]) + 1, block["steps_per_segment"]):
            ax.axvline(bound - 0.5, color="grey", ls=":", lw=0.8)
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("low-level step (all segments; dotted: segment bounds)")
        ax.set_ylabel("forward residual ||z_t - z_t-1|| / ||z_t-1||")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save(figure, path)


def plot_participation(pr: dict[str, Any], path: Path) -> Path:
    figure, (ax,) = new_axes()
    xs = [0, 1]
    ax.bar([x - 0.2 for x in xs], [pr["H"] or 0, pr["L"] or 0], 0.4, label="trained")
    ax.bar(
        [x + 0.2 for x in xs], [pr["untrained_H"] or 0, pr["untrained_L"] or 0], 0.4, label="untrained (same config)"
    )
    ax.set_xticks(xs, ["H states", "L states"])
    ax.set_ylabel("participation ratio")
    ax.set_title(f"PR_H / PR_L: trained {fmt(pr['ratio'])}, untrained {fmt(pr['untrained_ratio'])}", fontsize=10)
    ax.legend(fontsize=8)
    return save(figure, path)


def plot_scores(rows: list[dict[str, Any]], x_key: str, x_label: str, title: str, path: Path, mark: int | None = None):
    """Every metric of ``rows`` against ``row[x_key]`` (``mark``: a dotted line at that x)."""
    from matplotlib.ticker import MaxNLocator

    figure, (ax,) = new_axes()
    metrics = [k for k in rows[0] if k not in (x_key, "score", "segment", "segments", "multiple")]
    for key in metrics:
        ax.plot([r[x_key] for r in rows], [r[key] for r in rows], "o-", ms=3, label=key.replace("_", " "))
    if mark is not None:
        ax.axvline(mark, color="grey", ls=":", lw=0.8, label="trained segments")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(x_label)
    ax.set_ylabel("score")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return save(figure, path)


def plot_histogram(halting: dict[str, Any], path: Path) -> Path:
    figure, (ax,) = new_axes()
    keys = list(halting["histogram"])
    ax.bar([int(k) for k in keys], [halting["histogram"][k] for k in keys])
    ax.set_xlabel("segments used (Q-head halting)")
    ax.set_ylabel("inputs")
    ax.set_title(f"mean {halting['mean_segments']:.2f} of at most {halting['max_segments']} segments", fontsize=10)
    return save(figure, path)


def plot_q_halt(halting: dict[str, Any], path: Path) -> Path:
    figure, (ax,) = new_axes()
    probs = halting["q_halt_probability"]
    ax.plot(range(1, len(probs) + 1), probs, "o-", ms=3)
    ax.set_xlabel("segment")
    ax.set_ylabel("mean sigmoid(q_halt)")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title("halting probability after each segment (every input runs all segments)", fontsize=10)
    return save(figure, path)


def plot_difficulty(halting: dict[str, Any], path: Path) -> Path:
    import numpy as np

    figure, (ax,) = new_axes()
    measure = halting["difficulty"]
    segments = np.asarray(halting["per_input"]["segments"], dtype=float)
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(segments))
    ax.scatter(halting["per_input"][measure], segments + jitter, s=8, alpha=0.5)
    ax.set_xlabel(measure.replace("_", " "))
    ax.set_ylabel("segments used (jittered)")
    ax.set_title(f"Pearson r = {fmt(halting['difficulty_correlation'])}", fontsize=10)
    ax.grid(alpha=0.3)
    return save(figure, path)


# ---- the report ----------------------------------------------------------------------------
def write_report(analysis: dict[str, Any], meta: dict[str, Any], out: Path) -> Path:
    """Draw every plot that applies into ``out`` and write ``out/report.md``."""
    lines = [f"# Analysis of {meta['label']}", "", f"Checkpoint: `{meta['checkpoint']}`.  "]
    if meta.get("note"):
        lines += ["", f"**{meta['note']}.**"]
    else:
        lines += [f"Inputs: {meta['source']}; trained segments: {meta['segments']}.", ""]
        for title, file, draw, sentence in sections(analysis, meta):
            draw(out / file)
            lines += [f"## {title}", "", f"![{title}]({file})", "", sentence, ""]
    lines += ["", "## Introspection", "", "| module | parameters |", "|---|---:|"]
    lines += [f"| {name} | {count:,} |" for name, count in analysis["params"].items()]
    lines += ["", f"FLOPs per decision: {analysis['flops_per_decision']:,.0f}" + meta.get("flops_note", "") + ".", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def sections(analysis: dict[str, Any], meta: dict[str, Any]) -> list[tuple[str, str, Callable[[Path], Any], str]]:
    """``(title, PNG file, drawer, reading sentence)`` of every plot."""
    conv, pr, halting = analysis["convergence"], analysis["participation_ratio"], analysis["halting"]
    per_segment, scaling, segments = analysis["per_segment"], analysis["inference_scaling"], meta["segments"]
    out = [
        ("Convergence", "convergence.png", lambda p: plot_convergence(conv, meta["label"], p), readings.convergence(conv)),
        ("Participation ratio", "participation_ratio.png", lambda p: plot_participation(pr, p), readings.participation(pr)),
        ("Intermediate answers", "per_segment.png",
         lambda p: plot_scores(per_segment, "segment", "segment", "the output head after each segment", p),
         readings.per_segment(per_segment)),
        ("Segments used", "halting_histogram.png", lambda p: plot_histogram(halting, p), readings.histogram(halting)),
        ("Halting probability", "q_halt.png", lambda p: plot_q_halt(halting, p), readings.q_halt(halting)),
    ]  # fmt: skip
    if halting["difficulty"] is not None:
        out.append(("Segments against difficulty", "halting_difficulty.png",
                    lambda p: plot_difficulty(halting, p), readings.difficulty(halting)))  # fmt: skip
    out.append(("Inference-time scaling", "inference_scaling.png",
                lambda p: plot_scores(scaling, "segments", "test-time segments (no halting)",
                                      "score against test-time segments", p, mark=segments),
                readings.scaling(scaling)))  # fmt: skip
    return out
