"""A set's ``state.json``: what is playing, saved and restored into a running engine.

A set is a folder ``sets/<name>/`` holding

- ``state.json`` (schema version :data:`STATE_VERSION`): the model (path and content hash), the
  sources, the voices with their options and their curves as code, the tempo and the seed;
- ``sources/<hash>.npy``: the audio of every source that is not a file (arrays, SOM clusters),
  so the set is self-contained; file sources are stored as their paths and audio hash;
- ``journal.jsonl``: a copy of the session's journal (see :mod:`livelatent.session.journal`).

Noise seeds. A voice built without ``seed=`` draws its noise from (engine seed, voice number).
The state stores the engine seed and each voice's number; :func:`load_set` gives every restored
voice its saved number when the engine's seed is the set's and that number is still free (a
fresh engine: ``livelatent live`` then ``load("name")``), so it sounds sample for sample as
saved. Otherwise the voice gets a new number and a message says its noise differs (a voice
with an explicit ``seed=`` sounds the same in any engine).

A restored voice starts afresh at the load: its sources from their first frame, its curve from
``t = 0``. A curve made from a Python function (``curve(fn)``) is not code: the set stores a
marker, a message says so when saving, and the voice is restored with its last curve that was
code, or 0.5.
"""

from __future__ import annotations

import json
import keyword
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .. import api, curves
from ..atomic import atomic_path, fsync_dir, new_folder_mode
from ..context import current_engine_or_none, set_current_engine
from ..errors import LiveLatentError, SetError
from ..sources import Source, source
from ..strategies import layout, step_values
from ..voice import check_gain, check_pan
from .journal import JOURNAL_NAME, wall_time

__all__ = ["STATE_VERSION", "STATE_NAME", "capture_state", "save_set", "read_state",
           "check_set_files", "check_model", "load_set"]

STATE_VERSION = 1
STATE_NAME = "state.json"
_SOURCES = "sources"
_FALLBACK_CURVE = 0.5


# -- saving ------------------------------------------------------------------------------------
def capture_state(engine) -> tuple[dict, dict[str, np.ndarray], list[str]]:
    """The engine's state as a JSON-able dict, the arrays to embed, and notes for the performer.

    The voices are :meth:`Engine.intended_voices`: what the performer last asked for.
    """
    bpm = engine.requested_tempo
    sources: dict[str, dict] = {}
    arrays: dict[str, np.ndarray] = {}
    notes: list[str] = []
    voice_records = []
    for params in engine.intended_voices():
        ids = [_source_record(src, sources, arrays) for src in (params.a, params.b)]
        record = {"index": params.index, "name": params.name, "a": ids[0], "b": ids[1],
                  "strategy": params.strategy, "synth": params.synth,
                  "stretch": _plain(params.options.get("stretch", 4)),
                  "steps": [float(v) for v in params.steps], "loop": params.loop, "fit": params.fit,
                  "seed": params.seed, "deterministic": params.deterministic,
                  "gain": params.gain, "pan": params.pan, "curve": None}
        if params.curve is not None:
            if params.curve.is_code:
                record["curve"] = repr(params.curve)
            else:
                fallback = params.good_curve
                fallback_code = repr(fallback) if (fallback is not None and fallback is not params.curve
                                                   and fallback.is_code) else repr(_FALLBACK_CURVE)
                record["curve"] = None
                record["curve_not_code"] = repr(params.curve)
                record["fallback_curve"] = fallback_code
                notes.append(f"voice {params.name}: its curve {params.curve!r} is Python, not code a "
                             f"set can store; loading restores it with {fallback_code}")
        voice_records.append(record)
    codec = engine.codec
    state = {
        "schema": STATE_VERSION,
        "saved": wall_time(),
        "position": int(engine.position),
        "model": {"path": None if codec.path is None else str(Path(codec.path).resolve()),
                  "hash": codec.content_hash},
        "sample_rate": int(engine.sample_rate),
        "seed": int(engine.seed),
        "tempo": float(bpm),
        "sources": sources,
        "voices": voice_records,
        "journal": JOURNAL_NAME,
    }
    return state, arrays, notes


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _source_record(src: Source, sources: dict, arrays: dict) -> str:
    key = src.audio_hash[:16]
    if key in sources:
        return key
    record = {"name": src.name, "origin": _json_safe(src.origin), "audio_hash": src.audio_hash,
              "sample_rate": src.sample_rate, "samples": src.num_samples}
    if src.origin.get("kind") == "files" and src.paths:
        record["paths"] = [str(Path(p).resolve()) for p in src.paths]
    else:   # arrays and SOM clusters travel inside the set
        record["file"] = f"{_SOURCES}/{key}.npy"
        arrays[record["file"]] = src.audio
    sources[key] = record
    return key


def _json_safe(value):
    return json.loads(json.dumps(value, default=str))


def save_set(engine, folder, *, journal=None) -> Path:
    """Write the engine's state (and a copy of ``journal``) to the set folder ``folder``.

    Atomic: a new set is written in a temporary folder renamed into place; in an existing set
    each file is written beside its target and renamed over it, ``state.json`` last, so a
    file that was there before is never left half-written. Notes (curves that are not code)
    go to ``engine.messages``. Returns the folder.
    """
    folder = Path(folder)
    state, arrays, notes = capture_state(engine)
    journal = None if journal is None else Path(journal)
    if folder.exists() and not folder.is_dir():
        raise SetError(f"cannot save the set to {folder}: it is a file, not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (
            (folder / STATE_NAME).exists() or (folder / JOURNAL_NAME).exists()):
        raise SetError(f"cannot save the set to {folder}: that folder holds other files, not a "
                       f"set; choose another name")
    try:
        if not folder.exists():
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
            staging.chmod(new_folder_mode())           # mkdtemp's folder is private (0700)
            try:
                _write_set_files(staging, state, arrays, journal)
                os.replace(staging, folder)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        else:
            _write_set_files(folder, state, arrays, journal)
            _prune_sources(folder, state)
        fsync_dir(folder.parent)
    except OSError as exc:
        raise SetError(f"cannot save the set to {folder}: {exc}") from None
    for note in notes:
        engine.messages.append(note)
    return folder


def _write_set_files(folder: Path, state: dict, arrays: dict, journal: Path | None) -> None:
    for relative, audio in arrays.items():
        target = folder / relative
        if not target.exists():
            _atomic_write(target, lambda f, audio=audio: np.save(f, audio, allow_pickle=False))
    if journal is not None and journal.exists() and journal.resolve() != (folder / JOURNAL_NAME).resolve():
        data = journal.read_bytes()
        _atomic_write(folder / JOURNAL_NAME, lambda f: f.write(data))
    text = json.dumps(state, indent=2, ensure_ascii=False) + "\n"
    _atomic_write(folder / STATE_NAME, lambda f: f.write(text.encode("utf-8")))


def _atomic_write(path: Path, write) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)


def _prune_sources(folder: Path, state: dict) -> None:
    """Remove embedded audio that the new state.json no longer uses (after it is in place)."""
    used = {record["file"] for record in state["sources"].values() if "file" in record}
    for path in (folder / _SOURCES).glob("*.npy") if (folder / _SOURCES).is_dir() else ():
        if f"{_SOURCES}/{path.name}" not in used:
            path.unlink(missing_ok=True)


# -- reading and checking ------------------------------------------------------------------------
def read_state(folder) -> dict:
    """The parsed and checked ``state.json`` of the set ``folder``.

    Raises :class:`SetError` for a missing folder or file, malformed JSON, a newer schema,
    or a state missing what it must hold.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SetError(f"no set at {folder}: {_sets_beside(folder)}")
    path = folder / STATE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SetError(f"{folder} has no {STATE_NAME}: it is not a saved set "
                       f"(save one with save('name'))") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SetError(f"cannot read {path}: {exc}") from None
    try:
        state = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SetError(f"{path}:{exc.lineno}:{exc.colno}: malformed JSON ({exc.msg}); the file was "
                       f"edited or damaged") from None
    if not isinstance(state, dict):
        raise SetError(f"{path}: malformed state: a JSON object was expected")
    version = state.get("schema")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SetError(f"{path}: no valid schema version ({version!r}); it is not a livelatent set")
    if version > STATE_VERSION:
        raise SetError(f"{path}: schema version {version} is newer than this livelatent reads "
                       f"({STATE_VERSION}); upgrade livelatent to load it")
    try:
        model = state["model"]
        str(model["hash"])
        int(state["seed"]), float(state["tempo"])
        for key, record in state["sources"].items():
            str(record["audio_hash"]), int(record["sample_rate"]), str(record["name"])
            if "paths" not in record and "file" not in record:
                raise KeyError(f"sources.{key}.paths")
        for record in state["voices"]:
            for field in ("index", "name", "a", "b", "strategy", "synth", "steps", "loop", "fit",
                          "seed", "deterministic", "gain", "pan", "curve"):
                record[field]
            if record["a"] not in state["sources"] or record["b"] not in state["sources"]:
                raise KeyError(f"source of voice {record['name']}")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SetError(f"{path}: malformed state ({type(exc).__name__}: {exc} is missing or "
                       f"wrong); the file was edited or damaged") from None
    return state


def _sets_beside(folder: Path) -> str:
    parent = folder.parent
    names = sorted(p.name for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if parent.is_dir() else []
    if not names:
        return f"the folder does not exist (and {parent} holds no sets)"
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return f"the folder does not exist; sets in {parent}: {shown}"


def check_set_files(folder, state: dict) -> None:
    """Raise :class:`SetError` if a source file of the set is missing."""
    folder = Path(folder)
    for record in state["sources"].values():
        for name in record.get("paths", []):
            if not Path(name).is_file():
                raise SetError(f"set {folder.name}: source file {name} is missing (source "
                               f"{record['name']!r}); put it back or edit {folder / STATE_NAME}")
        if "file" in record and not (folder / record["file"]).is_file():
            raise SetError(f"set {folder.name}: its copy of source {record['name']!r} "
                           f"({record['file']}) is missing; the set folder is incomplete")


def check_model(engine_hash: str, saved: dict, folder) -> None:
    """Raise :class:`SetError` unless a model with ``engine_hash`` is the set's model."""
    if engine_hash == saved.get("hash"):
        return
    path = saved.get("path")
    name = Path(folder).name
    if path and not Path(path).exists():
        raise SetError(f"set {name}: its model file {path} is missing; restore it, or start "
                       f"livelatent with the same model (hash {str(saved.get('hash'))[:12]})")
    if path:
        from ..model.checkpoint import load_checkpoint
        try:
            now = load_checkpoint(path).content_hash
        except LiveLatentError:
            now = None
        if now != saved.get("hash"):
            raise SetError(f"set {name}: its model file {path} changed since the set was saved "
                           f"(hash {str(saved.get('hash'))[:12]}, now {str(now)[:12]}); the set "
                           f"would sound different")
    raise SetError(f"set {name} was saved with the model {path} (hash {str(saved.get('hash'))[:12]}), "
                   f"but this engine runs another (hash {engine_hash[:12]}); start livelatent "
                   f"with --model {path}")


# -- loading -----------------------------------------------------------------------------------
def load_set(engine, folder, *, names: dict | None = None) -> list:
    """Restore the set ``folder`` into ``engine``: its voices replace the ones playing.

    Everything is checked first (model, source files and their content, curves): a set that
    cannot load changes nothing. The changes land on one engine sample. With ``names`` (a
    namespace), each restored voice is also bound there under its name when that name is a
    free identifier. Returns the restored :class:`~livelatent.api.Voice` handles.
    """
    folder = Path(folder)
    state = read_state(folder)
    check_model(engine.codec.content_hash, state["model"], folder)
    check_set_files(folder, state)
    previous = current_engine_or_none()
    set_current_engine(engine)
    try:
        built = {key: _rebuild_source(folder, key, record) for key, record in state["sources"].items()}
        curve_of = {r["index"]: _rebuild_curve(folder, r, engine) for r in state["voices"]}
        for record in state["voices"]:   # every check that voice() makes, before it sends anything
            lay = layout(record["strategy"], record["synth"], window=engine.window,
                         stretch=record.get("stretch", 4))
            step_values(list(record["steps"]))
            check_gain(record["gain"]), check_pan(record["pan"])
            if curve_of[record["index"]] is not None:
                api.check_curve(curve_of[record["index"]], output_hop=lay.output_hop, engine=engine)
            for key in (record["a"], record["b"]):
                built[key].frames(engine.codec, lay.input_hop)
        same_noise = int(state["seed"]) == engine.seed
        handles = []
        with engine.batch(discard_on_error=True):
            if float(state["tempo"]) != engine.requested_tempo:
                api.tempo(float(state["tempo"]))
            api.hush(0.05)
            renumbered = []
            for record in state["voices"]:
                if not (same_noise and engine.reserve_voice_index(int(record["index"]))) \
                        and record["seed"] is None and not record["deterministic"]:
                    renumbered.append(record["name"])
                handles.append(api.voice(
                    built[record["a"]], built[record["b"]], strategy=record["strategy"],
                    synth=record["synth"], stretch=record.get("stretch", 4),
                    steps=list(record["steps"]), loop=record["loop"], fit=record["fit"],
                    seed=record["seed"], deterministic=record["deterministic"],
                    gain=record["gain"], pan=record["pan"], name=record["name"],
                    curve=curve_of[record["index"]]))
    except LiveLatentError as exc:
        if isinstance(exc, SetError):
            raise
        raise SetError(f"set {folder.name} cannot be restored: {exc}") from None
    finally:
        if previous is not engine:
            set_current_engine(previous)
    if renumbered:
        why = (f"this engine's seed is {engine.seed}, the set's {state['seed']}" if not same_noise
               else "their numbers are taken in this engine")
        engine.messages.append(f"loaded {folder.name}: {', '.join(renumbered)} draw new noise ({why}); "
                               f"they sound alike, not sample for sample as saved")
    if names is not None:
        for handle in handles:
            if handle.name.isidentifier() and not keyword.iskeyword(handle.name) and (
                    handle.name not in names or isinstance(names[handle.name], api.Voice)):
                names[handle.name] = handle
    return handles


def _rebuild_source(folder: Path, key: str, record: dict) -> Source:
    if "paths" in record:
        paths = record["paths"]
        try:
            src = source(paths[0] if len(paths) == 1 else paths, name=record["name"])
        except LiveLatentError as exc:
            raise SetError(f"set {folder.name}: source {record['name']!r} cannot be read: {exc}") from None
        if src.audio_hash != record["audio_hash"]:
            raise SetError(f"set {folder.name}: source file {', '.join(paths)} changed since the "
                           f"set was saved (its audio differs); put the saved version back")
        return src
    path = folder / record["file"]
    try:
        audio = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SetError(f"set {folder.name}: cannot read {path}: {exc}") from None
    src = Source(audio, sample_rate=int(record["sample_rate"]), name=record["name"],
                 origin=record.get("origin"))
    if src.audio_hash != record["audio_hash"]:
        raise SetError(f"set {folder.name}: {path} is damaged (its audio hash differs)")
    return src


def _rebuild_curve(folder: Path, record: dict, engine):
    code = record.get("curve")
    if code is None and "curve_not_code" in record:
        code = record.get("fallback_curve") or repr(_FALLBACK_CURVE)
        engine.messages.append(f"voice {record['name']}: its curve {record['curve_not_code']} was "
                               f"Python, not code; restored with {code}")
    if code is None:
        return None
    names = {name: getattr(curves, name) for name in curves.__all__}
    try:
        value = eval(compile(code, f"<{folder.name} curve>", "eval"), {"__builtins__": {}}, names)
        return curves.as_curve(value)
    except Exception as exc:   # the text came from a file: anything may be wrong with it
        raise SetError(f"set {folder.name}: voice {record['name']}'s curve {code!r} cannot be "
                       f"rebuilt ({type(exc).__name__}: {exc})") from None
