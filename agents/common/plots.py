"""Training curves as PNG files: validation figures against the samples a run has trained on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def plot_history(history: Sequence[dict], x_key: str, y_keys: Sequence[str], path: Path, title: str,
                 x_scale: float = 1.0, x_label: str = "training samples") -> Path:  # fmt: skip
    """One line per ``y_keys`` entry (rows lacking it are skipped) against ``row[x_key] * x_scale``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for key in y_keys:
        points = [(row[x_key] * x_scale, row[key]) for row in history if row.get(key) is not None]
        if points:
            ax.plot(*zip(*points), marker="o", markersize=3, label=key)
    ax.set_xlabel(x_label)
    ax.set_title(title)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
