"""The reasoning heatmap GIF: per-cell confidence at every reasoning step, beside the puzzle and
the truth (matplotlib, headless Agg backend; imageio writes the GIF)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

# Maze cell colours (env codes): empty, wall, agent, goal, start, enemy.
MAZE_COLOURS = np.array(
    [[1.0, 1.0, 1.0], [0.15, 0.15, 0.2], [0.2, 0.4, 1.0], [0.1, 0.75, 0.2], [0.95, 0.5, 0.1], [0.8, 0.1, 0.1]]
)


def _maze_image(grid: np.ndarray, path: np.ndarray | None = None) -> np.ndarray:
    image = MAZE_COLOURS[np.clip(grid, 0, 5)].copy()
    if path is not None:
        on = (path > 0) & (grid == 0)
        image[on] = [0.55, 0.75, 1.0]
    return image


def write_reasoning_gif(
    path: str | Path,
    task_name: str,
    inputs: np.ndarray,
    labels: np.ndarray,
    probs: np.ndarray,
    steps_per_segment: int,
    fps: float = 4.0,
) -> Path:
    """Write ``path``: one frame per reasoning step for the puzzles in ``inputs``.

    ``probs``: ``(steps, N, rows, cols, classes)`` from :func:`agents.puzzles.engine.reasoning_trace`.
    Maze: the heat is P(cell on the path). Sudoku: the heat is the confidence of the digit the
    model would write, and the digit is printed (red where it is wrong).
    """
    import matplotlib

    matplotlib.use("Agg")
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = [_frame(task_name, inputs, labels, probs, step, steps_per_segment) for step in range(probs.shape[0])]
    durations = [1000.0 / fps] * len(frames)  # milliseconds
    durations[-1] = 2000.0  # hold the final answer
    imageio.mimsave(path, frames, duration=durations, loop=0)
    return path


def _frame(
    task_name: str, inputs: np.ndarray, labels: np.ndarray, probs: np.ndarray, step: int, steps_per_segment: int
) -> np.ndarray:
    """The RGB image of reasoning step ``step``: one row (puzzle, heat, truth) per puzzle."""
    import matplotlib.pyplot as plt

    n_steps, n = probs.shape[:2]
    fig, axes = plt.subplots(n, 3, figsize=(7.5, 2.5 * n), squeeze=False)
    for i in range(n):
        ax_in, ax_heat, ax_truth = axes[i]
        draw = _draw_maze if task_name == "maze" else _draw_sudoku
        draw(axes[i], inputs[i], labels[i], probs[step, i])
        if i == 0:
            ax_in.set_title("puzzle", fontsize=9)
            ax_heat.set_title(
                f"confidence, step {step + 1}/{n_steps}\n(segment {step // steps_per_segment + 1})", fontsize=9
            )
            ax_truth.set_title("truth", fontsize=9)
        for ax in (ax_in, ax_heat, ax_truth):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return image


def _draw_maze(axes: Any, grid: np.ndarray, label: np.ndarray, probs: np.ndarray) -> None:
    """The maze, P(cell on the path) with the walls shaded, and the true path."""
    ax_in, ax_heat, ax_truth = axes
    heat = probs[..., 1]
    ax_in.imshow(_maze_image(grid), interpolation="nearest")
    ax_heat.imshow(heat, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    walls = np.ma.masked_where(grid != 1, np.ones_like(heat))
    ax_heat.imshow(walls, cmap="Greys", vmin=0, vmax=1.5, alpha=0.35, interpolation="nearest")
    ax_truth.imshow(_maze_image(grid, label), interpolation="nearest")


def _draw_sudoku(axes: Any, board: np.ndarray, label: np.ndarray, probs: np.ndarray) -> None:
    """The givens, the digit the model would write over its confidence (red where wrong), the solution."""
    ax_in, ax_heat, ax_truth = axes
    pred = probs.argmax(-1)
    ax_in.imshow(np.zeros((9, 9)), cmap="Greys", vmin=0, vmax=1)
    ax_heat.imshow(probs.max(-1), cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    ax_truth.imshow(np.zeros((9, 9)), cmap="Greys", vmin=0, vmax=1)
    for r in range(9):
        for c in range(9):
            if board[r, c]:
                ax_in.text(c, r, str(board[r, c]), ha="center", va="center", fontsize=7)
            ax_truth.text(
                c, r, str(label[r, c]), ha="center", va="center", fontsize=7,
                color="black" if board[r, c] else "tab:blue",
            )  # fmt: skip
            right = pred[r, c] == label[r, c]
            ax_heat.text(
                c, r, str(pred[r, c]), ha="center", va="center", fontsize=7, color="white" if right else "red"
            )  # fmt: skip
