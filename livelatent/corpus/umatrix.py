"""The U-matrix of a self-organizing map, and its picture with cluster sizes in the cells.

A U-matrix gives each node the mean distance between its weights and those of the nodes next to
it: light valleys are regions of similar sounds, dark ridges the borders between them. A
performer looks at it to choose clusters: the big number in a cell is how many files the cluster
holds, the small one its index (``som[index]``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import optional
from ..atomic import atomic_path

__all__ = ["umatrix", "draw_umatrix"]


def umatrix(weights: np.ndarray) -> np.ndarray:
    """(rows, cols, features) node weights -> (rows, cols) mean distance to the 4 neighbours."""
    weights = np.asarray(weights, dtype=np.float64)
    rows, cols = weights.shape[:2]
    total = np.zeros((rows, cols))
    count = np.zeros((rows, cols))
    vertical = np.linalg.norm(weights[1:] - weights[:-1], axis=2)      # (rows - 1, cols)
    horizontal = np.linalg.norm(weights[:, 1:] - weights[:, :-1], axis=2)
    total[1:] += vertical
    total[:-1] += vertical
    count[1:] += 1
    count[:-1] += 1
    total[:, 1:] += horizontal
    total[:, :-1] += horizontal
    count[:, 1:] += 1
    count[:, :-1] += 1
    return total / np.maximum(count, 1)


def draw_umatrix(path, distances: np.ndarray, sizes: np.ndarray, *, title: str = "") -> Path:
    """Write a PNG of the U-matrix with each cell's cluster size and index.

    Uses matplotlib's object API with the Agg canvas, so it changes no global backend and needs
    no display.
    """
    Figure, FigureCanvasAgg = optional.matplotlib_figure()
    path = Path(path)
    rows, cols = distances.shape
    cell = 0.55
    fig = Figure(figsize=(max(4.0, cols * cell + 1.6), max(3.5, rows * cell + 1.0)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(distances, cmap="bone_r", interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03, label="distance to neighbours")
    high = distances.min() + 0.55 * (np.ptp(distances) or 1.0)
    big = max(5.0, min(11.0, 70.0 / max(rows, cols)))
    for r in range(rows):
        for c in range(cols):
            colour = "white" if distances[r, c] > high else "black"
            if sizes[r, c]:
                ax.text(c, r + 0.08, str(int(sizes[r, c])), ha="center", va="center", color=colour,
                        fontsize=big, fontweight="bold")
            ax.text(c - 0.45, r - 0.45, str(r * cols + c), ha="left", va="top", color=colour,
                    fontsize=big * 0.5, alpha=0.8)
    ax.set_xticks(range(cols))
    ax.set_yticks(range(rows))
    ax.tick_params(labelsize=6, length=0)
    ax.set_xlabel("column")
    ax.set_ylabel("row")
    ax.set_title(title or "U-matrix", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path
