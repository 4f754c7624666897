"""Training curves as PNG files: validation figures against the samples a run has trained on.

Drawn with matplotlib's Agg canvas on a figure of its own (no pyplot state), so trainers can
call it from their loops on a machine without a display. Written under a hidden name, then
renamed, so a cut write never leaves half a PNG in a run directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def plot_history(
    history: Sequence[Mapping[str, Any]],
    x_key: str,
    y_keys: Mapping[str, str],
    path: str | Path,
    title: str,
    x_scale: float = 1.0,
    x_label: str = "training samples",
) -> Path:
    """One line per ``y_keys`` entry (key -> label; rows lacking the key are skipped) against
    ``row[x_key] * x_scale``, written to ``path`` as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

    figure = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for key, label in y_keys.items():
        points = [(row[x_key] * x_scale, row[key]) for row in history if row.get(key) is not None]
        if points:
            axes.plot(*zip(*points), marker="o", markersize=3, label=label)
    axes.set_xlabel(x_label)
    axes.set_ylabel("validation score")
    axes.set_ylim(-0.02, 1.02)
    axes.xaxis.set_major_formatter(EngFormatter(sep=""))
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=8)
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    figure.savefig(tmp, format="png")
    os.replace(tmp, path)
    return path
