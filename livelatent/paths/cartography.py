"""A map of the latent space: the frames of some sounds projected to the plane, and drawn.

Each source (or SOM cluster) is a group of points labelled at its median, coloured by a descriptor
of their decoded windows; the paths voices played are lines over it (a ring at the start, an arrow
at the end). With ``grid=(rows, cols)`` each cell also shows the spectrogram of the window decoded
there (PCA: the cell's centre projected back; UMAP, which has no inverse: the nearest frame), so
the picture is the sound itself. ``draw_map(None, ...)`` returns the matplotlib Figure (Jupyter),
its :class:`MapInfo` as ``figure.map_info``. What a map shows (sources, SOM clusters, the voices'
recent paths) is gathered by :mod:`livelatent.maps`.

>>> info = draw_map("map.png", groups=[("flute", flute_mu), ("cello", cello_mu)],
...                 voice_paths=[("v1", played)], grid=(6, 6), codec=codec)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import optional
from ..atomic import atomic_path
from ..errors import MissingDependency, ParameterError, is_integral

__all__ = ["METHODS", "Projection", "MapInfo", "fit_projection", "draw_map", "parse_map_grid"]

METHODS = ("auto", "pca", "umap")
MAX_GRID = 32            # rows or columns of decoded windows at most
_MAX_PCA_FIT = 100_000   # points an SVD is fitted on (an even stride over more)
_MAX_DRAWN = 60_000      # points drawn (an even stride over more)
_MIN_UMAP = 20           # "auto" uses PCA below this many points
_PATH_COLOURS = ("red", "black", "magenta", "cyan", "yellow", "lime")


# -- projection ------------------------------------------------------------------------------------
class Projection:
    """A fitted map from latent space to the plane: ``method`` ("pca", "umap"), ``transform``,
    ``embedding`` (where the points it was fitted on went) and, for PCA, ``inverse``, ``mean``
    (L,), ``components`` (2, L) and ``explained`` (share of the variance along each axis)."""

    def __init__(self, method: str, latent_dim: int, embedding: np.ndarray, *, mean=None,
                 components=None, explained=None, model=None):
        self.method, self.latent_dim, self.embedding = method, int(latent_dim), embedding
        self.mean, self.components, self.explained, self._model = mean, components, explained, model

    def __repr__(self) -> str:
        return f"<Projection {self.method}: {self.latent_dim} -> 2>"

    def transform(self, points) -> np.ndarray:
        """``(n, L)`` latent points -> ``(n, 2)`` map coordinates (float64)."""
        x = _points(points, "points", width=self.latent_dim)
        if self.method == "pca":
            return (x - self.mean) @ self.components.T
        return np.asarray(self._model.transform(x), dtype=np.float64)

    def inverse(self, xy) -> np.ndarray:
        """``(n, 2)`` map coordinates -> ``(n, L)`` float32 latent points on the map's plane."""
        if self.method != "pca":
            raise ParameterError("a UMAP map has no inverse: fit it with method='pca' to go from "
                                 "the map back to the latent space")
        xy = _points(xy, "xy", width=2)
        return (self.mean + xy @ self.components).astype(np.float32)


def _points(points, name: str, *, width: int | None = None, least: int = 1) -> np.ndarray:
    try:
        x = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be an array of numbers, got {type(points).__name__}") from None
    if x.ndim == 1 and width is not None and x.shape[0] == width:
        x = x[None, :]
    if x.ndim != 2 or (width is not None and x.shape[1] != width):
        want = f"(n, {width})" if width is not None else "(n, latent)"
        raise ParameterError(f"{name} must have shape {want}, got {x.shape}")
    if x.shape[0] < least:
        raise ParameterError(f"{name} needs at least {least} point(s), got {x.shape[0]}")
    if not np.all(np.isfinite(x)):
        raise ParameterError(f"{name} holds NaN or infinite values")
    return x


def _umap_module(required: bool):
    """umap-learn (optional, heavy: numba), or None for "auto" when it cannot be imported."""
    try:
        return optional.umap()
    except MissingDependency:
        if required:
            raise
    except Exception:     # noqa: BLE001 - a broken install (numba): "auto" falls back to PCA
        if required:
            raise
    return None


def fit_projection(points, method: str = "auto", seed: int = 0) -> Projection:
    """Fit a projection of ``points`` (N, L) to the plane: "pca" (numpy SVD, each axis signed so
    its largest loading is positive: the same points, the same picture), "umap" (umap-learn), or
    "auto" (UMAP when umap-learn can be imported and there are 20 points or more, else PCA)."""
    if method not in METHODS:
        raise ParameterError(f"method={method!r} must be one of {', '.join(METHODS)}")
    x = _points(points, "points", least=2)
    module = None
    if method == "umap" or (method == "auto" and x.shape[0] >= _MIN_UMAP):
        module = _umap_module(required=method == "umap")
    if module is not None:
        if x.shape[0] < 4:
            raise ParameterError(f"method='umap' needs at least 4 points, got {x.shape[0]}")
        model = module.UMAP(n_components=2, n_neighbors=min(15, x.shape[0] - 1),
                            random_state=int(seed))
        with warnings.catch_warnings():     # "n_jobs overridden by setting random_state"
            warnings.filterwarnings("ignore", message=".*n_jobs.*", category=UserWarning)
            embedding = np.asarray(model.fit_transform(x), dtype=np.float64)
        return Projection("umap", x.shape[1], embedding, model=model)
    fit = x[::-(-x.shape[0] // _MAX_PCA_FIT)]
    mean = fit.mean(axis=0)
    _, s, vt = np.linalg.svd(fit - mean, full_matrices=False)
    components = np.zeros((2, x.shape[1]))
    components[:min(2, vt.shape[0])] = vt[:2]
    for row in components:
        if row[np.argmax(np.abs(row))] < 0:
            row *= -1.0
    explained = np.zeros(2)
    explained[:min(2, s.size)] = s[:2] ** 2 / max(float(np.sum(s ** 2)), 1e-300)
    return Projection("pca", x.shape[1], (x - mean) @ components.T, mean=mean,
                      components=components, explained=explained)


def parse_map_grid(grid) -> tuple[int, int]:
    """``"8x8"`` or ``(8, 8)`` -> ``(rows, cols)``, each 1 to 32."""
    parts = grid.lower().replace("*", "x").split("x") if isinstance(grid, str) else grid
    try:
        rows, cols = (int(p) if isinstance(p, str) or is_integral(p) else int("not whole")
                      for p in parts)
    except (TypeError, ValueError):
        raise ParameterError(f"grid={grid!r} must be ROWSxCOLS, e.g. '8x8' or (8, 8)") from None
    if not (1 <= rows <= MAX_GRID and 1 <= cols <= MAX_GRID):
        raise ParameterError(f"grid={grid!r}: rows and columns must be 1 to {MAX_GRID}, e.g. '8x8'")
    return rows, cols


# -- drawing -----------------------------------------------------------------------------------------
@dataclass
class MapInfo:
    """What :func:`draw_map` drew: ``labels`` and ``paths`` in map coordinates."""

    path: Path | None
    projection: Projection
    labels: dict = field(default_factory=dict)      # group label -> (x, y) of its label
    points: dict = field(default_factory=dict)      # group label -> (n, 2) its points
    paths: dict = field(default_factory=dict)       # voice name -> (n, 2) its path
    grid_cells: int = 0


def _named_arrays(items, what: str, width: int | None) -> list[tuple[str, np.ndarray]]:
    try:
        pairs = list(items.items() if isinstance(items, Mapping) else items)
    except TypeError:
        raise ParameterError(f"{what} must be a list of (name, points) pairs") from None
    found, seen = [], set()
    for pair in pairs:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and isinstance(pair[0], str)
                and pair[0]):
            raise ParameterError(f"{what} must be a list of (name, points) pairs with a non-empty "
                                 f"name, got {pair!r:.60}")
        name, array = pair
        if name in seen:
            raise ParameterError(f"{what}: the name {name!r} is given twice; names must be unique")
        seen.add(name)
        array = _points(array, f"{what} {name!r}", width=width)
        width = array.shape[1]
        found.append((name, array))
    return found


def draw_map(out_path, *, groups, colours=None, colour_label: str = "centroid (Hz)",
             voice_paths=(), grid=None, codec=None, method: str = "auto", title: str = "",
             projection: Projection | None = None, seed: int = 0):
    """Draw the map of ``groups`` (a list of (label, mu (n, L)), or a dict) as a PNG.

    ``colours``: (N,) values of all points, groups concatenated in order (NaN: no value, grey),
    on a log scale when ``colour_label`` says Hz; None colours by group. ``voice_paths``: (voice
    name, (n, L) latent points in time order). ``grid=(rows, cols)`` (needs ``codec``): the
    spectrogram of the window decoded in each cell. ``projection``: reuse a fitted one (the axes
    of another map) instead of fitting one with ``method``. Returns a :class:`MapInfo`; with
    ``out_path=None``, the matplotlib Figure, its MapInfo as ``figure.map_info``."""
    groups = _named_arrays(groups, "groups", projection.latent_dim if projection else None)
    if not groups:
        raise ParameterError("draw_map needs at least one group of points: groups=[(label, mu), ...]")
    points = np.concatenate([a for _, a in groups])
    ends = np.cumsum([len(a) for _, a in groups])
    spans = np.stack([np.r_[0, ends[:-1]], ends], axis=1)
    if colours is not None:
        colours = np.asarray(colours, dtype=np.float64).reshape(-1)
        if colours.shape[0] != points.shape[0]:
            raise ParameterError(f"colours has {colours.shape[0]} values for {points.shape[0]} points")
    paths = _named_arrays(voice_paths, "voice_paths", points.shape[1])
    shape = parse_map_grid(grid) if grid is not None else None
    if shape and codec is None:
        raise ParameterError("draw_map: grid= needs codec= (the model that decodes each cell's window)")
    if codec is not None and codec.latent_dim != points.shape[1]:
        raise ParameterError(f"the points have {points.shape[1]} dimensions, the model's latent "
                             f"space {codec.latent_dim}")
    if out_path is not None and Path(out_path).suffix.lower() != ".png":
        raise ParameterError(f"the map is a PNG: give a path ending in .png, not {str(out_path)!r}")
    fitted_here = projection is None
    projection = projection or fit_projection(points, method, seed=seed)
    xy = projection.embedding if fitted_here else projection.transform(points)
    path_xy = {name: projection.transform(z) for name, z in paths}

    Figure, FigureCanvasAgg = optional.matplotlib_figure()
    fig = Figure(figsize=(10.0, 8.0), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    extent = _extent(xy, *path_xy.values())
    cells = _draw_grid(ax, shape, extent, projection, points, xy, codec) if shape else 0
    _draw_points(fig, ax, xy, spans, colours, colour_label)
    labels = _draw_labels(ax, [name for name, _ in groups], xy, spans, extent)
    _draw_paths(ax, path_xy)
    ax.set(xlim=extent[:2], ylim=extent[2:])
    ax.set(**({f"{a}label": f"PC{i + 1} ({100 * e:.0f}% of the variance)" for i, (a, e) in
               enumerate(zip("xy", projection.explained))} if projection.method == "pca"
              else {"xlabel": "UMAP 1", "ylabel": "UMAP 2"}))
    ax.set_title(title or f"{len(groups)} groups, {len(points)} latent frames "
                          f"({projection.method.upper()})", fontsize=10)
    fig.tight_layout()
    info = MapInfo(Path(out_path) if out_path is not None else None, projection, labels,
                   {name: xy[s:e] for (name, _), (s, e) in zip(groups, spans)}, path_xy, cells)
    if out_path is None:
        fig.map_info = info
        return fig
    try:
        with atomic_path(info.path) as tmp:
            fig.savefig(tmp, format="png")
    except OSError as exc:
        raise ParameterError(f"cannot write the map to {out_path}: {exc.strerror or exc}") from None
    return info


def _extent(*arrays: np.ndarray) -> tuple[float, float, float, float]:
    """1st to 99th percentiles, and a margin: a few far (loud) frames do not shrink the rest."""
    spans = np.array([np.percentile(a, [1, 99], axis=0) for a in arrays if len(a)])
    low, high = spans[:, 0].min(axis=0), spans[:, 1].max(axis=0)
    pad = np.where(high > low, 0.08 * (high - low), 1.0)
    return low[0] - pad[0], high[0] + pad[0], low[1] - pad[1], high[1] + pad[1]


def _spectrograms(windows: np.ndarray, sample_rate: int, *, bands=48) -> np.ndarray:
    """(n, samples) windows -> (n, bands, frames) dB on a log-frequency axis."""
    frame = min(512, windows.shape[1] // 2)
    hop = max(1, frame // 8)
    starts = np.arange(0, windows.shape[1] - frame + 1, hop)
    cut = windows[:, starts[:, None] + np.arange(frame)] * np.hanning(frame)
    magnitude = np.abs(np.fft.rfft(cut, axis=-1))                     # (n, frames, bins)
    freqs = np.fft.rfftfreq(frame, 1.0 / sample_rate)
    wanted = np.geomspace(freqs[1], sample_rate / 2.0, bands)
    rows = magnitude.reshape(-1, magnitude.shape[-1])
    banded = np.stack([np.interp(wanted, freqs, r) for r in rows]).reshape(*magnitude.shape[:2], bands)
    return 20.0 * np.log10(np.maximum(banded, 1e-6)).transpose(0, 2, 1)


def _draw_grid(ax, shape, extent, projection, points, xy, codec) -> int:
    rows, cols = shape
    x0, x1, y0, y1 = extent
    w, h = (x1 - x0) / cols, (y1 - y0) / rows
    xs = x0 + (np.arange(cols) + 0.5) * w
    ys = y1 - (np.arange(rows) + 0.5) * h                             # row 0 at the top
    centres = np.array([(x, y) for y in ys for x in xs])
    if projection.method == "pca":
        z = projection.inverse(centres)
    else:
        z = points[[np.argmin(((xy - c) ** 2).sum(axis=1)) for c in centres]].astype(np.float32)
    specs = _spectrograms(np.asarray(codec.decode(z), dtype=np.float64), codec.sample_rate)
    top = float(specs.max())
    for (x, y), spec in zip(centres, specs):
        inset = ax.inset_axes([x - 0.45 * w, y - 0.45 * h, 0.9 * w, 0.9 * h], transform=ax.transData,
                              zorder=0.5)
        inset.imshow(spec, origin="lower", aspect="auto", cmap="magma", vmin=top - 70.0, vmax=top,
                     interpolation="bilinear", alpha=0.6)
        inset.set(xticks=[], yticks=[])
        for spine in inset.spines.values():
            spine.set(edgecolor="0.75", linewidth=0.5)
    return len(centres)


def _draw_points(fig, ax, xy, spans, colours, colour_label) -> None:
    drawn = np.arange(0, len(xy), -(-len(xy) // _MAX_DRAWN))
    size = float(np.clip(20000.0 / len(drawn), 1.0, 16.0))
    style = dict(s=size, linewidths=0, alpha=0.7, zorder=1)
    if colours is None:
        group = np.searchsorted(spans[:, 1], drawn, side="right") % 20
        ax.scatter(xy[drawn, 0], xy[drawn, 1], c=group, cmap="tab20", vmin=-0.5, vmax=19.5, **style)
        return
    values = colours[drawn]
    log = "hz" in colour_label.lower()
    ok = np.isfinite(values) & ((values > 0) if log else True)
    if not ok.all():
        ax.scatter(xy[drawn[~ok], 0], xy[drawn[~ok], 1], color="0.7", **style)
    if ok.any():
        low, high = float(values[ok].min()), float(values[ok].max())
        if high <= low:
            low, high = (low / 1.1, high * 1.1) if log else (low - 1.0, high + 1.0)
        dots = ax.scatter(xy[drawn[ok], 0], xy[drawn[ok], 1], c=values[ok], cmap="viridis",
                          norm="log" if log else "linear", vmin=low, vmax=high, **style)
        fig.colorbar(dots, ax=ax, label=colour_label, fraction=0.046, pad=0.02)


def _draw_labels(ax, names, xy, spans, extent) -> dict:
    """Each label at its group's median; labels whose medians crowd together are fanned out on a
    ring around their crowd, with a thin line to their medians."""
    medians = np.array([np.median(xy[s:e], axis=0) for s, e in spans])
    unit = (medians - [extent[0], extent[2]]) / [extent[1] - extent[0], extent[3] - extent[2]]
    near = np.linalg.norm(unit[:, None] - unit[None], axis=2) < 0.05   # axes fractions
    crowd = np.arange(len(names))                 # each label's crowd: its chain of near labels
    while not np.array_equal(crowd, merged := np.where(near, crowd, len(names)).min(axis=1)):
        crowd = merged
    places = unit.copy()
    for k in np.unique(crowd):
        ids = np.flatnonzero(crowd == k)
        if ids.size > 1:
            radius = float(np.clip(0.012 * ids.size, 0.07, 0.4))
            angles = np.linspace(0.0, 2 * np.pi, ids.size, endpoint=False) + np.pi / 2
            ring = unit[ids].mean(axis=0) + radius * np.stack([np.cos(angles), np.sin(angles)], 1)
            places[ids] = np.clip(ring, 0.03, 0.97)
    size = float(np.clip(160.0 / len(names), 6.0, 9.0))
    box = dict(boxstyle="round,pad=0.2", facecolor="white", edgecolor="0.6", alpha=0.8)
    for i, name in enumerate(names):
        ax.annotate(name, xy=tuple(medians[i]), xytext=tuple(places[i]), textcoords="axes fraction",
                    ha="center", va="center", fontsize=size, zorder=6, bbox=box,
                    arrowprops=dict(arrowstyle="-", color="0.35", lw=0.6)
                    if np.any(places[i] != unit[i]) else None)
    return {name: (float(x), float(y)) for name, (x, y) in zip(names, medians)}


def _draw_paths(ax, path_xy: dict) -> None:
    for i, (name, p) in enumerate(path_xy.items()):
        colour = _PATH_COLOURS[i % len(_PATH_COLOURS)]
        ax.plot(p[:, 0], p[:, 1], "-", color=colour, lw=1.5, zorder=4, label=name,
                marker="." if len(p) <= 200 else None, markersize=3)
        ax.plot(p[0, 0], p[0, 1], "o", markerfacecolor="white", markeredgecolor=colour,
                markersize=7, zorder=5)
        moved = np.flatnonzero(np.any(p[:-1] != p[-1], axis=1))
        if moved.size:
            ax.annotate("", xy=tuple(p[-1]), xytext=tuple(p[moved[-1]]), zorder=5,
                        arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.5, mutation_scale=16))
    if path_xy:
        ax.legend(loc="best", fontsize=8, title="voices", title_fontsize=8)


# -- command line --------------------------------------------------------------------------------------
