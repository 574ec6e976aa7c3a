"""What a map of the latent space shows, gathered: groups of frames, their colours, and the
paths the playing voices took; ``livelatent map`` and the REPL's ``show_map()``.

The drawing itself is :mod:`livelatent.paths.cartography`. A voice's path is worked out again
from its parameters, as the voice bank computed it (a pure function of parameters, clock and
window): the mean of the latent point of each window it played over the last seconds, so the
map draws where the voice really was, without the engine recording anything.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .audio import list_audio_files
from .corpus import masom
from .corpus.som import load_som
from .engine.blocks import BLOCK, block_channels
from .errors import AudioError, ParameterError, check_number
from .framing import check_hop, frame_count
from .model.codec import load_model
from .paths.cartography import draw_map
from .paths.corpus import Corpus, corpus as make_corpus
from .paths.descriptors import DESCRIPTORS, descriptor_index
from .paths.nodes import Path as LatentPath
from .sources import source

__all__ = ["input_groups", "voice_points", "recent_paths", "cli_map", "show_map", "MANY_FILES"]

MANY_FILES = 64          # a folder with more audio files than this: one group per sub-folder
COLOURS = tuple(DESCRIPTORS) + ("group",)
_PACKAGE = Path(__file__).resolve().parent   # warnings from here are ours


def _is_som(path: Path) -> bool:
    return path.is_dir() and (path / masom.CLUSTERS_FILE).is_file()


def input_groups(items, rate: int, *, skipped: list | None = None,
                 base=None) -> list[tuple[str, list]]:
    """Files, folders and SOM folders -> [(label, [sources])]; labels made unique. ``base``:
    the folder a SOM's audio paths are relative to (see :func:`load_som`).

    Audio files in a folder that cannot be used (unreadable, empty, silent) are left out and
    listed in ``skipped`` as (path, reason), as ``som`` and ``train`` do; a file named on its
    own must be usable. A folder left with no usable file is an error."""
    skipped = [] if skipped is None else skipped
    groups = []
    for item in items:
        path = Path(item)
        if _is_som(path):
            som = load_som(path, base=base)
            if not som.clusters:
                raise ParameterError(f"the SOM {path} has no non-empty clusters to map")
            groups += [(som[c.index].name, [som[c.index]]) for c in som.clusters]
        elif path.is_dir():
            files = list_audio_files(path)
            if not files:
                raise ParameterError(f"{path} holds no audio files and is not a SOM folder")
            grouped: dict[tuple, list] = {}       # many files: a group per folder they are in
            for f in files:
                rel = f.parent.relative_to(path).as_posix()
                key = (f.stem, f) if len(files) <= MANY_FILES else (
                    path.name if rel == "." else f"{path.name}/{rel}", None)
                try:
                    found = source(f, rate=rate)
                except AudioError as exc:      # its message names the file
                    skipped.append((f, str(exc) if str(f) in str(exc) else f"{f}: {exc}"))
                    continue
                grouped.setdefault(key, []).append(found)
            if not grouped:
                raise ParameterError(f"none of the {len(files)} audio files in {path} is usable "
                                     f"({skipped[-1][1]})")
            groups += [(label, sources) for (label, _), sources in grouped.items()]
        elif path.is_file():
            groups.append((path.stem, [source(path, rate=rate)]))
        else:
            raise ParameterError(f"no such file or folder: {path}")
    return _unique_labels(groups)


MAX_FRAMES = 100_000   # latent frames a map draws at most (each window is encoded: 4 KB of it)


def _framed_groups(codec, groups, hop: int, colour: str):
    """[(label, [sources])] -> ([(label, mu)], colours, colour label)."""
    every = make_corpus([s for _, sources in groups for s in sources], name="map")
    hop = check_hop(hop, codec.window, said="--hop ")   # (before the count below divides by it)
    frames = sum(frame_count(src.num_samples, codec.window, hop) for src in every.sources)
    if frames > MAX_FRAMES:           # (hop 1 took 3.5 GB for 8 seconds of sound)
        least = -(-hop * frames // MAX_FRAMES)
        raise ParameterError(f"--hop {hop} gives about {frames} latent frames of these sounds, more "
                             f"than a map draws ({MAX_FRAMES}): give --hop {least} or more")
    if frames < 2:
        raise ParameterError(f"these sounds give {frames} latent frame at hop {hop}, and a map needs "
                             f"two: give longer sounds (a window is {codec.window} samples) or a "
                             f"smaller --hop")
    for src in tqdm(every.sources, desc="encoding", unit="source", leave=False, delay=0.5):
        src.frames(codec, hop)
    mu = every.frames(codec, hop).mu
    where = {src.audio_hash: range(s, e) for src, (s, e) in zip(every.sources, every.spans(codec, hop))}
    picked = [(label, np.concatenate([np.asarray(where[s.audio_hash]) for s in sources]))
              for label, sources in groups]
    colours, colour_label = None, "group"
    if colour != "group":
        if colour not in DESCRIPTORS:
            raise ParameterError(f"colour={colour!r} must be one of {', '.join(COLOURS)}")
        values = descriptor_index(codec, every, hop, progress=True).values[colour]
        colours = np.concatenate([values[rows] for _, rows in picked])
        colour_label = f"{colour} ({DESCRIPTORS[colour]})"
    return [(label, mu[rows]) for label, rows in picked], colours, colour_label


def cli_map(args) -> int:
    """``livelatent map SOURCES_OR_SOM... -o map.png [--grid RxC] [--method M] [--colour D]``."""
    if args.base is not None and not any(_is_som(Path(item)) for item in args.inputs):
        raise ParameterError(f"--base {args.base} is where a SOM's sounds are, and none of "
                             f"{', '.join(map(str, args.inputs))} is a SOM folder")
    codec = load_model(args.model)
    skipped: list = []
    # resampled clusters and files warn once each: a plain line, not Python's with its source line
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inputs = input_groups(args.inputs, codec.sample_rate, skipped=skipped, base=args.base)
        groups, colours, colour_label = _framed_groups(codec, inputs, args.hop, args.colour)
    for warning in caught:           # ours as plain lines; a library's as Python shows them
        if Path(warning.filename).resolve().is_relative_to(_PACKAGE):
            print(f"livelatent map: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    if skipped:
        print(f"livelatent map: skipped {len(skipped)} unusable audio file(s):", file=sys.stderr)
        for _, reason in skipped:
            print(f"  {reason}", file=sys.stderr)
    info = draw_map(args.output, groups=groups, colours=colours, colour_label=colour_label,
                    grid=args.grid, codec=codec, method=args.method, seed=args.seed)
    grid = f", {info.grid_cells} decoded cells" if info.grid_cells else ""
    frames = sum(len(mu) for _, mu in groups)
    print(f"wrote {info.path}: {len(groups)} groups, {frames} latent frames at hop {args.hop}, "
          f"{info.projection.method.upper()} projection, coloured by {colour_label}{grid}")
    return 0


# -- the voices' paths --------------------------------------------------------------------------------
def voice_points(params, clock, k: np.ndarray) -> np.ndarray:
    """The mean latent point of windows ``k`` (ascending, played) of the voice ``params``:
    what the bank mixed before sampling. (windows, latent)."""
    plan = params.plan
    k = np.asarray(k, dtype=np.int64)
    points = np.zeros((k.size, plan.frames[0].mu.shape[1]), dtype=np.float32)
    for block in np.unique(k // BLOCK):
        whole = np.arange(block * BLOCK, (block + 1) * BLOCK, dtype=np.int64)
        channels, _ = block_channels(params, whole, clock)      # a whole block, as the bank does
        here = k // BLOCK == block
        rows = k[here] - block * BLOCK
        frame = k[here] % plan.length
        for j, frames in enumerate(plan.frames):
            column = plan.index_column[j]
            index = (frame % len(frames) if column < 0
                     else np.clip(channels[rows, column].astype(np.int64), 0, len(frames) - 1))
            points[here] += channels[rows, j][:, None] * frames.mu[index]
    return points


def recent_paths(engine, seconds: float) -> list[tuple[str, np.ndarray]]:
    """(voice name, (n, latent)) of every voice heard now, over its last ``seconds``."""
    heard = engine.heard().score
    position = engine.position
    found = []
    for params in sorted(heard.voices.values(), key=lambda p: p.index):
        hop = params.layout.output_hop
        last = (position - params.start) // hop
        if last < 0:
            continue
        # since its last change of curve, sources or path: before it, these parameters did not play
        changed = max(params.curve_start, params.sources_start) - params.start
        first = max(0, last - int(seconds * engine.sample_rate / hop), -(-changed // hop))
        k = np.arange(first, last + 1, dtype=np.int64)
        k = k[k < params.window_count]
        if k.size:
            found.append((params.name, voice_points(params, heard.clock, k)))
    return found


def _in_a_kernel() -> bool:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def show_map(engine, items=None, *, seconds: float = 10.0, grid=None, method: str = "auto",
             colour: str = "centroid", path="map.png"):
    """The map of ``items`` (sources, SOMs, folders, a corpus; default: the sources the voices
    play), coloured by ``colour``, with the paths the voices took over the last ``seconds``.
    In Jupyter it is shown inline; elsewhere it is written to ``path`` (a PNG)."""
    seconds = check_number(seconds, name="seconds", low=0.0, high=24 * 3600.0,
                           meaning="of seconds of the voices' paths to draw, from 0")
    inline = _in_a_kernel()
    if not inline and not isinstance(path, (str, os.PathLike)):
        raise ParameterError(f"show_map(path={path!r:.40}): give the PNG file to write, e.g. 'map.png'")
    if items is None:
        items = _playing_sources(engine)
        if not items:
            raise ParameterError("show_map(): no voice is playing; give what to map, e.g. "
                                 "show_map([flute, cello]) or show_map(som)")
    if isinstance(items, Corpus):
        groups = [(src.name, [src]) for src in items.sources]
    else:
        listed = items if isinstance(items, (list, tuple)) else [items]
        found = make_corpus(*listed, rate=engine.sample_rate)
        groups = [(src.name, [src]) for src in found.sources]
    groups = _unique_labels(groups)
    framed, colours, colour_label = _framed_groups(engine.codec, groups, engine.window // 2, colour)
    paths = recent_paths(engine, seconds)
    drawn = draw_map(None if inline else path, groups=framed, colours=colours,
                     colour_label=colour_label, voice_paths=paths, grid=grid, codec=engine.codec,
                     method=method, title=f"the voices' last {seconds:g} s" if paths else "")
    if inline:
        return drawn
    engine.events.info(f"map written to {drawn.path}: {len(framed)} sources, {len(paths)} voice paths")
    return drawn


def _playing_sources(engine) -> list:
    found = {}
    for params in engine.intended().voices.values():      # what the performer asked for
        leaves = params.path.sources() if isinstance(params.path, LatentPath) else [params.a, params.b]
        for src in leaves:
            base = getattr(src, "base", src)
            for plain in (base.sources if isinstance(base, Corpus) else [base]):
                found.setdefault(plain.audio_hash, plain)
    return list(found.values())


def _unique_labels(groups):
    unique, seen = [], {}
    for label, sources in groups:
        seen[label] = seen.get(label, 0) + 1
        unique.append((label if seen[label] == 1 else f"{label} ({seen[label]})", sources))
    return unique
