"""A set's ``state.json``: what is playing, saved and restored into a running engine.

A set is a folder ``sets/<name>/`` holding

- ``state.json`` (schema :data:`STATE_VERSION`): the model (path and content hash), the seed,
  the tempo, the sources, and the voices, each as the command that starts it (the journal's
  vocabulary, :mod:`.records`: curves as code);
- ``sources/<key>.npy``: the audio of every source that is not a file (arrays, SOM clusters),
  so the set is self-contained; file sources are stored as their paths and audio hash;
- ``journal.jsonl``: a copy of the session's journal (see :mod:`.journal`).

A restored voice starts afresh at the load: its sources from their first frame, its curve from
``t = 0``. It keeps the noise it was saved with (its noise key), whatever number it gets in
the engine that loads it. A curve made from a Python function is not code: the set stores its
last curve that was code (or 0.5), and a message says so when saving and loading.
Schema 1 sets (livelatent 0.1) load too.
"""

from __future__ import annotations

import json
import keyword
import os
import shutil
import tempfile
from pathlib import Path

from ..controllers import Controllers
from ..api import Performer
from ..checks import check_curve
from ..atomic import atomic_path, fsync_dir, new_folder_mode
from ..engine.clock import check_tempo
from ..engine.commands import AddVoice, Hush, SetTempo
from ..config import pack_roots
from ..errors import LiveLatentError, SetError
from ..model.checkpoint import load_checkpoint
from ..model.packs import describe_model, locate_model, pack_info
from .journal import JOURNAL_NAME, json_bytes, wall_time
from .path_records import has_fn
from .record_checks import check_source_record, whole
from .records import SOURCES_FOLDER, SourceStore, decode_command, encode_command, sources_used

__all__ = ["STATE_VERSION", "STATE_NAME", "DamagedState", "capture_state", "save_set", "read_state",
           "check_set_files", "check_model", "missing_pack", "model_record", "load_set", "copy_journal"]

STATE_VERSION = 3     # 3: latent paths, arrays and each source's tail flag (0.3)
STATE_NAME = "state.json"
_FALLBACK_CURVE = 0.5


# -- saving ------------------------------------------------------------------------------------
def capture_state(engine, store: SourceStore) -> tuple[dict, list[str]]:
    """The engine's state as a JSON-able dict (sources described in ``store``), and notes for
    the performer. The voices are those the performer asked for (:meth:`Engine.intended`)."""
    score = engine.intended()
    notes: list[str] = []
    voices = []
    for params in score.sounding():
        record = encode_command(AddVoice(params), store)
        del record["quant"], record["op"]
        if isinstance(record["curve"], dict):
            fallback = params.good_curve
            code = repr(fallback) if (fallback is not None and fallback is not params.curve
                                      and fallback.is_code) else repr(_FALLBACK_CURVE)
            record["curve"] = code
            record["curve_not_code"] = repr(params.curve)
            notes.append(f"voice {params.name}: its curve {params.curve!r} is Python, not code a "
                         f"set can store; loading restores it with {code}")
        python = has_fn({k: v for k, v in record.items() if k != "curve"})
        if python:                # in its path or its sources: no stand-in can be guessed
            record["not_code"] = python
            notes.append(f"voice {params.name}: its path uses {', '.join(python)}, Python, not code a "
                         f"set can store; loading the set leaves this voice out")
        voices.append(record)
    codec = engine.codec
    state = {
        "schema": STATE_VERSION,
        "saved": wall_time(),
        "position": int(engine.position),
        "model": model_record(codec),
        "sample_rate": int(engine.sample_rate),
        "seed": int(engine.seed),
        "tempo": float(score.clock.bpm),
        "sources": {key: store.records[key]
                    for key in sorted({k for v in voices for k in sources_used(dict(v, op="add"))})},
        "voices": voices,
        "journal": JOURNAL_NAME,
    }
    return state, notes


def save_set(engine, folder, *, journal=None, sources_from=None) -> Path:
    """Write the engine's state (and a copy of ``journal`` with the sources it uses, from the
    folder ``sources_from``) to the set folder ``folder``.

    Atomic: a new set is written in a temporary folder renamed into place; in an existing set
    each file is written beside its target and renamed over it, ``state.json`` last, so a
    file that was there before is never left half-written. Notes (curves that are not code)
    go to the engine's events. Returns the folder.
    """
    folder = Path(folder)
    journal = None if journal is None else Path(journal)
    try:                 # (a name too long for the file system fails here already)
        if folder.exists() and not folder.is_dir():
            raise SetError(f"cannot save the set to {folder}: it is a file, not a folder")
        if folder.is_dir() and any(folder.iterdir()) and not (
                (folder / STATE_NAME).exists() or (folder / JOURNAL_NAME).exists()):
            raise SetError(f"cannot save the set to {folder}: that folder holds other files, not "
                           f"a set; choose another name")
        if not folder.exists():
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
            staging.chmod(new_folder_mode())           # mkdtemp's folder is private (0700)
            try:
                notes = _write_set_files(engine, staging, journal, sources_from)
                os.replace(staging, folder)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
        else:
            notes = _write_set_files(engine, folder, journal, sources_from)
        fsync_dir(folder.parent)
    except OSError as exc:
        raise SetError(f"cannot save the set to {folder}: {exc}") from None
    for note in notes:
        engine.events.info(note)
    return folder


def copy_journal(folder: Path, journal: Path | None, sources_from: Path | None) -> None:
    """Copy ``journal`` (and the embedded sources beside it) into the set ``folder``."""
    if journal is None or not journal.exists() or journal.resolve() == (folder / JOURNAL_NAME).resolve():
        return
    if sources_from is not None and (sources_from / SOURCES_FOLDER).is_dir():
        for path in (sources_from / SOURCES_FOLDER).glob("*.npy"):
            target = folder / SOURCES_FOLDER / path.name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                data = path.read_bytes()
                _atomic_write(target, lambda f, data=data: f.write(data))
    data = journal.read_bytes()
    _atomic_write(folder / JOURNAL_NAME, lambda f: f.write(data))


def _write_set_files(engine, folder: Path, journal, sources_from) -> list[str]:
    store = SourceStore(folder)       # embedded audio is written into the folder as it goes
    state, notes = capture_state(engine, store)
    copy_journal(folder, journal, sources_from)
    data = json_bytes(state, indent=2)
    _atomic_write(folder / STATE_NAME, lambda f: f.write(data))
    return notes


def _atomic_write(path: Path, write) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)


# -- reading and checking ------------------------------------------------------------------------
class DamagedState(SetError):
    """A set's ``state.json`` that cannot be read or does not hold a state: its journal may
    still replay the set."""


def read_state(folder) -> dict:
    """The parsed and checked ``state.json`` of the set ``folder`` (schema 1 is converted).

    Raises :class:`SetError` for a missing folder or file, malformed JSON, a newer schema,
    or a state missing what it must hold.
    """
    folder = Path(folder)
    if folder.is_file():
        raise SetError(f"{folder} is a file, not a set: give the set's folder")
    if not folder.is_dir():
        raise SetError(f"no set at {folder}: {_sets_beside(folder)}")
    path = folder / STATE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SetError(f"{folder} has no {STATE_NAME}: it is not a saved set "
                       f"(save one with save('name'))") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DamagedState(f"cannot read {path}: {exc}") from None
    try:
        state = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DamagedState(f"{path}:{exc.lineno}:{exc.colno}: malformed JSON ({exc.msg}); the file "
                           f"was edited or damaged") from None
    except (ValueError, RecursionError) as exc:       # (a number of 5,000 digits; nested too deep)
        raise DamagedState(f"{path}: malformed JSON ({exc}); the file was "
                           f"edited or damaged") from None
    if not isinstance(state, dict):
        raise DamagedState(f"{path}: malformed state: a JSON object was expected")
    version = state.get("schema")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise DamagedState(f"{path}: no valid schema version ({version!r}); it is not a livelatent "
                           f"set")
    if version > STATE_VERSION:
        raise SetError(f"{path}: schema version {version} is newer than this livelatent reads "
                       f"({STATE_VERSION}); upgrade livelatent to load it")
    try:
        if version == 1:
            state = _from_schema_1(state)
        str(state["model"]["hash"])
        if not isinstance(state["model"].get("path"), (str, type(None))):
            raise TypeError(f"model.path {state['model']['path']!r} is not a file name")
        whole(state["seed"], "seed"), check_tempo(state["tempo"])
        for key, record in state["sources"].items():
            check_source_record(record)
            if "array_hash" in record:           # an array a path needs (directions, a vector)
                continue
            live = isinstance(record.get("origin"), dict) and record["origin"].get("kind") == "live"
            if "paths" not in record and "file" not in record and not live:
                raise KeyError(f"sources.{key}.paths")
        for i, record in enumerate(state["voices"]):
            if not isinstance(record, dict):
                raise TypeError(f"voices[{i}] is a {type(record).__name__}, not an object")
            for field in ("voice", "name", "a", "b", "strategy", "synth", "steps", "loop", "fit",
                          "seed", "deterministic", "gain", "pan", "curve"):
                if field not in record:              # named with its place (the set has a seed)
                    raise KeyError(f"voices[{i}].{field}")
            if any(k not in state["sources"] for k in sources_used(dict(record, op="add"))):
                raise KeyError(f"source of voice {record['name']}")
    except KeyError as exc:
        raise DamagedState(f"{path}: malformed state ({exc} is missing); the file was edited or "
                           f"damaged") from None
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise DamagedState(f"{path}: malformed state ({exc}); the file was edited or "
                           f"damaged") from None
    return state


def _from_schema_1(state: dict) -> dict:
    """A livelatent 0.1 state in today's shape: voices keyed ``voice``, noise from the number."""
    state = dict(state)
    state["sources"] = {key: dict(record, key=key) for key, record in state["sources"].items()}
    voices = []
    for record in state["voices"]:
        record = dict(record)
        record["voice"] = record.pop("index")
        record["noise_key"] = record["voice"]
        if record.get("curve") is None and "curve_not_code" in record:
            record["curve"] = record.get("fallback_curve") or repr(_FALLBACK_CURVE)
        voices.append(record)
    state["voices"] = voices
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
    store = SourceStore(folder)
    for record in state["sources"].values():
        store.add_record(record)
    try:
        store.check()
    except SetError as exc:
        raise SetError(f"set {Path(folder).name}: {exc}") from None


def missing_pack(set_name: str, recorded, content_hash, pack: dict | None = None) -> str:
    """What to say when a set's model is neither where it was recorded nor installed."""
    return (f"set {set_name} needs the model {describe_model(recorded, content_hash, pack)}; it "
            f"was recorded at {recorded}, and no installed pack holds those weights "
            f"({', '.join(str(r) for r in pack_roots())}; $LIVELATENT_PACKS adds folders): install "
            f"that pack, or give --model")


def check_model(engine_hash: str, saved: dict, folder) -> None:
    """Raise :class:`SetError` unless a model with ``engine_hash`` is the set's model."""
    if engine_hash == saved.get("hash"):
        return
    path = saved.get("path")
    name = Path(folder).name
    if path:
        path = str(locate_model(path, saved.get("hash")))
    if path and not Path(path).exists():
        raise SetError(missing_pack(name, saved.get("path"), saved.get("hash"), saved.get("pack")))
    if path:
        try:
            now = load_checkpoint(path).content_hash
        except LiveLatentError:
            now = None
        if now != saved.get("hash"):
            if pack_info(path) is not None:     # a pack of that name, another version of it
                raise SetError(missing_pack(name, saved.get("path"), saved.get("hash"), saved.get("pack")))
            raise SetError(f"set {name}: its model file {path} changed since the set was saved "
                           f"(hash {str(saved.get('hash'))[:12]}, now {str(now)[:12]}); the set "
                           f"would sound different")
    raise SetError(f"set {name} was saved with the model {path} (hash {str(saved.get('hash'))[:12]}), "
                   f"but this engine runs another (hash {engine_hash[:12]}); start livelatent "
                   f"with --model {path}")


def model_record(codec) -> dict:
    """How a set names its model: the file, its weights' hash, and its pack's name and version."""
    path = None if codec.path is None else Path(codec.path).resolve()
    record = {"path": None if path is None else str(path), "hash": codec.content_hash}
    info = None if path is None else pack_info(path)
    if info is not None and info.weights_hash == codec.content_hash:
        record["pack"] = info.record()
    return record


# -- loading -----------------------------------------------------------------------------------
def load_set(engine, folder, *, names: dict | None = None) -> list:
    """Restore the set ``folder`` into ``engine``: its voices replace the ones playing.

    Everything is checked first (model, source files and their content, curves): a set that
    cannot load changes nothing. The changes land on one engine sample. With ``names`` (a
    namespace), each restored voice is also bound there under its name when that name is a
    free identifier. Returns the restored :class:`~livelatent.handle.Voice` handles.
    """
    folder = Path(folder)
    try:
        state = read_state(folder)
    except DamagedState as exc:
        if not (folder / JOURNAL_NAME).exists():
            raise
        raise DamagedState(f"{exc} (its {JOURNAL_NAME} still renders the set: livelatent render "
                           f"{folder})") from None
    check_model(engine.codec.content_hash, state["model"], folder)
    check_set_files(folder, state)
    store = SourceStore(folder)
    for record in state["sources"].values():
        store.add_record(record)
    try:
        commands = []
        for record in state["voices"]:     # every check voice() makes, before anything is sent
            if record.get("not_code"):
                engine.events.warning(f"voice {record['name']}: its path used "
                                      f"{', '.join(record['not_code'])} (Python, not code); "
                                      f"not restored")
                continue
            if "curve_not_code" in record:
                engine.events.info(f"voice {record['name']}: its curve {record['curve_not_code']} "
                                   f"was Python, not code; restored with {record['curve']}")
            where = f"set {folder.name}, voice {record['name']}"
            command = decode_command(dict(record, op="add"), engine=engine, store=store, where=where)
            if command.params.curve is not None:
                check_curve(command.params.curve, output_hop=command.params.layout.output_hop,
                            engine=engine)
            commands.append(command)
        handles = []
        performer = Performer(engine)
        with engine.batch(discard_on_error=True):
            if float(state["tempo"]) != engine.intended_tempo():
                engine.submit(SetTempo(float(state["tempo"])))
            engine.submit(Hush(int(0.05 * engine.sample_rate)))
            for command in commands:
                saved = command.params
                params = saved.changed(index=engine.new_voice_number(), noise_key=saved.noise_key)
                engine.submit(AddVoice(params))
                handles.append(performer.handle(params))
    except LiveLatentError as exc:
        if isinstance(exc, SetError):
            raise
        raise SetError(f"set {folder.name} cannot be restored: {exc}") from None
    if not engine.sealed:                 # the controllers its voices read: listened to again
        Controllers.of(engine).listen_for([h.params for h in handles])
    if int(state["seed"]) != engine.seed:
        engine.events.info(f"loaded {folder.name}: this engine's seed is {engine.seed}, the set's "
                           f"{state['seed']}: its voices sound alike, not sample for sample as saved")
    if names is not None:
        for handle in handles:
            if handle.name.isidentifier() and not keyword.iskeyword(handle.name) and (
                    handle.name not in names or isinstance(names[handle.name], type(handle))):
                names[handle.name] = handle
    return handles

