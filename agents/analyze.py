"""Look inside the reasoning of a checkpoint of any trainer: convergence, dimensionality, intermediate
answers, halting, inference-time scaling, parameters and FLOPs.

    python -m agents.analyze --checkpoint DIR [--env ID | --layouts FILE.npz] [--n N] [--out DIR]
                             [--control DIR]

``DIR`` is a run of the puzzle trainer (``model.pt``), of BC or PPO (``policy.pt``), a ``.pt`` file or
``pretrained:NAME``. Writes ``analysis.json`` (keys ``convergence``, ``participation_ratio``,
``per_segment``, ``halting``, ``inference_scaling``, ``params``, ``flops_per_decision``), one PNG per
plot and ``report.md`` into ``--out`` (default ``DIR/analysis/``; a shipped agent needs ``--out``).
Puzzle models are analysed on ``--layouts`` or ``--n`` fresh puzzles of their first eval set (the
held-out seed of ``agents.solve``); policies on ``--n`` states of expert episodes of their env
(``--env``: another env with the same spaces; ``--layouts``: fixed layouts). ``--control`` adds a
second checkpoint's forward residuals on the same inputs (e.g. ``--set model=gru``). An SB3
MlpPolicy has no reasoning to look into: it gets a message, its parameters and its FLOPs. See
docs/analysis.md for every figure and how to read it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from agents.analysis.subjects import AnalysisError, checkpoint_kind
from agents.puzzles.cli import Parser, fail, positive_int

ANALYSIS_FILE = "analysis.json"


def output_dir(checkpoint: str | Path, out: str | Path | None) -> Path:
    """Where the analysis goes (made, and checked writable): ``out``, else ``DIR/analysis``."""
    from agents.pretrained import is_pretrained

    if out is None:
        if is_pretrained(checkpoint):
            raise AnalysisError(f"{checkpoint} is shipped inside the package: give --out DIR for its analysis")
        path = Path(checkpoint)
        path = (path if path.is_dir() else path.parent) / "analysis"
    else:
        path = Path(out)
    if path.exists() and not path.is_dir():
        raise AnalysisError(f"{path} is a file, not a directory: give --out DIR")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise AnalysisError(f"cannot write {path} ({exc.strerror or exc}): give --out DIR") from None
    return path


def analyze(
    checkpoint: str | Path,
    *,
    env: str | None = None,
    layouts: str | Path | None = None,
    n: int = 256,
    out: str | Path | None = None,
    control: str | Path | None = None,
    scaling: int = 8,
    batch_size: int = 64,
    device: str = "cpu",
    seed: int = 12345,
) -> dict[str, Any]:
    """Analyse ``checkpoint`` and write ``analysis.json``, the PNGs and ``report.md`` (module
    docstring); return the analysis. ``AnalysisError`` (a ``ValueError``) for inputs it cannot use."""
    from agents.analysis.measure import analyze_subject
    from agents.analysis.report import write_report
    from agents.analysis.subjects import load_subject
    from agents.common.machine import resolve_device

    kind = checkpoint_kind(checkpoint)  # a bad checkpoint fails before anything is written
    if control is not None and checkpoint_kind(control) != kind:
        raise AnalysisError(
            f"--control must be a {kind} checkpoint as the analysed one is, got a {checkpoint_kind(control)} one"
        )
    target = resolve_device(device, "--device")
    folder = output_dir(checkpoint, out)
    subject = load_subject(checkpoint, env=env, layouts=layouts, n=n, seed=seed, device=target)
    other = None
    if control is not None:
        if subject.model is None:
            raise AnalysisError("--control compares reasoning, and the analysed checkpoint has no reasoning model")
        other = load_subject(control, env=env, n=n, seed=seed, device=target, data=subject.data)
        if other.model is None:
            raise AnalysisError(f"--control {control} has no reasoning model whose residuals could be drawn")
        if other.domain != subject.domain:
            raise AnalysisError(f"--control is a model of {other.domain}, the checkpoint one of {subject.domain}")
    analysis = analyze_subject(subject, other, batch_size=batch_size, scaling=scaling)
    (folder / ANALYSIS_FILE).write_text(json.dumps(analysis, indent=1))
    meta = report_meta(subject, analysis)
    if str(checkpoint).startswith("pretrained:"):  # name the shipped agent, not where it is installed
        meta["checkpoint"] = str(checkpoint)
        meta["source"] = meta["source"].replace(subject.checkpoint, str(checkpoint))
    write_report(analysis, meta, folder)
    return analysis


def report_meta(subject, analysis: dict[str, Any]) -> dict[str, Any]:
    """What ``report.md`` says about the subject beside the figures."""
    meta = {"label": subject.label, "checkpoint": subject.checkpoint, "source": subject.source,
            "segments": subject.segments, "note": subject.note}  # fmt: skip
    if analysis["halting"] is not None:
        mean = analysis["halting"]["mean_segments"]
        per_segment = analysis["flops_per_decision"] / mean
        meta["flops_note"] = (
            f" ({mean:.2f} segments on average with Q halting, {per_segment:,.0f} per segment; one input, one view)"
        )
    else:
        meta["flops_note"] = " (one greedy decision on one observation)"
    return meta


def parse_args(argv: list[str] | None):
    from agents.evaluate import env_id_arg

    parser = Parser("agents.analyze", __doc__)
    parser.add_argument("--checkpoint", required=True, help="run directory, .pt file or pretrained:NAME")
    parser.add_argument("--env", type=env_id_arg, default=None, help="policies: the env to draw states from")
    parser.add_argument("--layouts", default=None, metavar="FILE.npz",
                        help="puzzles: the task's array (layouts / puzzles); policies: fixed env layouts")  # fmt: skip
    parser.add_argument("--n", type=positive_int, default=256, help="inputs analysed (puzzles or states)")
    parser.add_argument("--out", default=None, help="output directory (default DIR/analysis)")
    parser.add_argument("--control", default=None, help="a second checkpoint whose residuals are drawn beside")
    parser.add_argument("--scaling", type=positive_int, default=8, help="test-time segments up to this multiple")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--seed", type=int, default=12345, help="policies: evaluation episodes and state draw")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--num-threads", type=positive_int, default=2)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        import torch

        torch.set_num_threads(args.num_threads)
        analysis = analyze(args.checkpoint, env=args.env, layouts=args.layouts, n=args.n, out=args.out,
                           control=args.control, scaling=args.scaling, batch_size=args.batch_size,
                           device=args.device, seed=args.seed)  # fmt: skip
    except (ValueError, OSError) as exc:
        return fail(exc)
    folder = output_dir(args.checkpoint, args.out)
    if analysis["convergence"] is None:
        print(f"note: {args.checkpoint} has no reasoning model (SB3 MlpPolicy): only params and FLOPs apply")
    else:
        from agents.analysis.readings import fmt

        pr, scaling = analysis["participation_ratio"], analysis["inference_scaling"]
        print(f"PR_H/PR_L {fmt(pr['ratio'])} (untrained {fmt(pr['untrained_ratio'])}); score after each segment "
              f"{[round(r['score'], 3) for r in analysis['per_segment']]}; after {scaling[-1]['segments']} segments "
              f"{scaling[-1]['score']:.3f}")  # fmt: skip
    print(f"wrote {folder / ANALYSIS_FILE} and {folder / 'report.md'}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
