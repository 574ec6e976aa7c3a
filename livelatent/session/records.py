"""Commands and sources as data: how the journal and ``state.json`` write what was played.

A command becomes a small JSON object: which voice, which parameter, and each value as code
(a curve as its ``repr``, which rebuilds it) or as a reference to a source. A source is written
once, as a record with its audio hash: a file source by its paths, anything else (an array, a
SOM cluster) as a ``.npy`` file inside the set folder. So a set renders from data alone, and a
changed source file is noticed rather than played.

A value that is not code (a curve made from a Python function) is written as ``{"fn": repr}``:
a replay takes it from the cell that made it, and refuses to guess when there is none.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import numpy as np

from ..live_source import LiveSource
from ..engine.clock import check_tempo
from ..engine.commands import (AddVoice, Hush, SetControl, SetTempo, SetVoice, StopVoice, SyncTempo,
                               check_quant)
from ..errors import LiveLatentError, SetError
from ..model.packs import locate
from ..npy_files import read_npy
from ..paths.directions import Directions
from ..paths.plan import with_plan
from ..sources import Source, source
from ..strategies import layout, legacy_stretch, step_values
from ..voice import VoiceParams, check_gain, check_out, check_pan
from .curve_code import rebuild_curve
from .set_files import SetFiles
from .record_checks import CHANGES, checked_fit, finite, flag, whole
from .path_records import (curve_data, has_fn, keys_used, path_data, rebuild_path, rebuild_source,
                           source_data)

__all__ = ["SourceStore", "encode_command", "decode_command", "not_code", "NotCode",
           "rebuild_curve", "sources_used", "SOURCES_FOLDER"]

SOURCES_FOLDER = "sources"
_VOICE_FIELDS = ("strategy", "synth", "steps", "loop", "fit", "seed", "deterministic", "gain", "pan")


class NotCode(LiveLatentError):
    """A value that cannot be written as code (a curve made from a Python function)."""


def source_key(src: Source) -> str:
    return src.audio_hash[:16]


class SourceStore:
    """The sources a set or a journal refers to: records by key, audio beside them.

    Parameters
    ----------
    folder : path
        The set folder; embedded audio goes to ``folder/sources/<key>.npy``.
    """

    def __init__(self, folder, *, keep_failed: bool = False):
        self.folder = Path(folder)
        self.records: dict[str, dict] = {}
        self._built: dict[str, Source] = {}
        self._lock = threading.Lock()
        self.files = SetFiles(keep_failed=keep_failed)

    def describe(self, src: Source) -> str:
        """The key of ``src``; its record is kept here, its audio written into the set first
        when it has no file of its own."""
        key = source_key(src)
        with self._lock:
            if key in self.records:
                return key
            origin = json.loads(json.dumps(src.origin, default=str))       # JSON-safe
            record = {"key": key, "name": src.name, "origin": origin, "audio_hash": src.audio_hash,
                      "sample_rate": src.sample_rate, "samples": src.num_samples}
            if src.origin.get("kind") == "files" and src.paths:
                record["paths"] = [str(Path(p).resolve()) for p in src.paths]
            elif src.origin.get("kind") != "live":   # arrays, SOM clusters: inside the set
                record["file"] = f"{SOURCES_FOLDER}/{key}.npy"
                self.files.write(self.folder / record["file"], src.audio)
            self.records[key] = record
            self._built[key] = src
            return key

    def describe_array(self, array, *, name: str, kind: str = "vector", extra: dict | None = None) -> str:
        """The key of a float32 array a path needs (a direction set, an offset vector), written
        into the set once, like embedded audio."""
        array = np.ascontiguousarray(array, dtype=np.float32)
        digest = hashlib.sha256(array.tobytes() + str(array.shape).encode()).hexdigest()
        key = f"{kind[0]}{digest[:15]}"
        with self._lock:
            if key in self.records:
                return key
            record = {"key": key, "array_kind": kind, "name": name, "array_hash": digest,
                      "shape": list(array.shape), "file": f"{SOURCES_FOLDER}/{key}.npy", **(extra or {})}
            self.files.write(self.folder / record["file"], array)
            self.records[key] = record
            self._built[key] = array
            return key

    def describe_directions(self, directions: Directions) -> str:
        return self.describe_array(directions.vectors, name=directions.name, kind="directions",
                                   extra={"std": directions.std.tolist(),
                                          "explained": directions.explained.tolist()})

    def get_array(self, key: str) -> np.ndarray:
        with self._lock:
            built = self._built.get(key)
        if built is not None:
            return built
        record = self.records.get(key)
        if record is None or "array_hash" not in record:
            raise SetError(f"array {key} is used but not described; the journal is damaged")
        path = self.folder / record["file"]
        try:
            array = read_npy(path).astype(np.float32)
        except (OSError, ValueError, EOFError) as exc:     # (EOFError: an empty file)
            raise SetError(f"cannot read {path}: {exc}") from None
        digest = hashlib.sha256(np.ascontiguousarray(array).tobytes() + str(array.shape).encode()).hexdigest()
        if digest != record["array_hash"]:
            raise SetError(f"{path} is damaged (its hash differs)")
        with self._lock:
            self._built[key] = array
        return array

    def get_directions(self, key: str) -> Directions:
        vectors = self.get_array(key)
        record = self.records[key]
        with self._lock:
            built = self._built.get(("directions", key))
            if built is None:
                built = self._built[("directions", key)] = Directions(
                    vectors, record["std"], record["explained"], name=record["name"])
        return built

    def add_record(self, record: dict) -> None:
        """A record read back from a journal or a state file."""
        self.records[str(record["key"])] = dict(record)

    def check(self) -> None:
        """Raise SetError if a source file is missing (before anything is rebuilt)."""
        for record in self.records.values():
            for name in record.get("paths", []):
                if not locate(name).is_file():
                    raise SetError(f"source file {name} is missing (source {record['name']!r}); "
                                   f"put it back")
            if "file" in record and not (self.folder / record["file"]).is_file():
                raise SetError(f"the set's copy of source {record['name']!r} ({record['file']}) is "
                               f"missing; the set folder is incomplete")

    def get(self, key: str, *, rate: int) -> Source:
        """The source ``key``, rebuilt once and checked against its hash."""
        with self._lock:
            built = self._built.get(key)
        if built is not None:
            return built
        record = self.records.get(key)
        if record is None:
            raise SetError(f"source {key} is used but not described; the journal is damaged")
        src = _rebuild(self.folder, record, rate)
        with self._lock:
            self._built[key] = src
        return src


def _rebuild(folder: Path, record: dict, rate: int) -> Source:
    if record.get("origin", {}).get("kind") == "live":
        return LiveSource.recorded(folder, record["origin"], name=record["name"], rate=rate)
    if "paths" in record:
        paths = [str(locate(p)) for p in record["paths"]]       # a pack may have moved
        try:
            src = source(paths[0] if len(paths) == 1 else paths, name=record["name"], rate=rate)
        except LiveLatentError as exc:
            raise SetError(f"source {record['name']!r} cannot be read: {exc}") from None
        if src.audio_hash != record["audio_hash"]:
            raise SetError(f"source file {', '.join(paths)} changed since it was recorded (its "
                           f"audio differs); put the recorded version back")
        return src
    path = folder / record["file"]
    try:
        audio = read_npy(path)
    except (OSError, ValueError, EOFError) as exc:         # (EOFError: an empty file)
        raise SetError(f"cannot read {path}: {exc}") from None
    src = Source(audio, sample_rate=int(record["sample_rate"]), name=record["name"],
                 origin=record.get("origin"))
    if src.audio_hash != record["audio_hash"]:
        raise SetError(f"{path} is damaged (its audio hash differs)")
    return src


# -- commands ------------------------------------------------------------------------------------
def encode_command(command, store: SourceStore) -> dict:
    """``command`` as data; the sources it uses are described in ``store``."""
    ref = lambda src: source_data(src, store)

    if isinstance(command, AddVoice):
        p = command.params
        data = {"op": "add", "voice": p.index, "name": p.name, "a": ref(p.a), "b": ref(p.b),
                "tail_a": bool(p.frames_a.tail), "tail_b": bool(p.frames_b.tail),
                "stretch": _plain(p.options.get("stretch", p.layout.stretch)),
                "noise_key": p.index if p.noise_key is None else p.noise_key,
                "curve": curve_data(p.curve), "quant": command.quant}
        for field in _VOICE_FIELDS:
            value = getattr(p, field)
            data[field] = [float(v) for v in value] if field == "steps" else _plain(value)
        if p.path is not None:
            data["path"] = path_data(p.path, store)
        if p.out is not None:
            data["out"] = list(p.out)
        if p.cue:
            data["cue"] = True
        if command.timing is not None:
            data["timing"] = [int(v) for v in command.timing]
        return data
    if isinstance(command, SetVoice):
        changes = {}
        for name, value in command.changes.items():
            if name in ("a", "b"):
                changes[name] = ref(value)
                changes[f"hop_{name}"] = int(command.changes[f"frames_{name}"].hop)
                changes[f"tail_{name}"] = bool(command.changes[f"frames_{name}"].tail)
            elif name == "path":
                changes[name] = path_data(value, store)
            elif name == "curve":
                changes[name] = curve_data(value)
            elif name in ("gain", "pan"):
                changes[name] = float(value)
            elif name == "out":
                changes[name] = None if value is None else list(value)
            elif name == "cue":
                changes[name] = bool(value)
        return {"op": "set", "voice": command.voice, "changes": changes, "quant": command.quant}
    if isinstance(command, StopVoice):
        return {"op": "stop", "voice": command.voice, "fade": command.fade, "quant": command.quant}
    if isinstance(command, Hush):
        return {"op": "hush", "fade": command.fade, "quant": command.quant}
    if isinstance(command, SetTempo):
        return {"op": "tempo", "bpm": command.bpm, "quant": command.quant}
    if isinstance(command, SyncTempo):
        return {"op": "sync", "bpm": command.bpm, "beat": command.beat, "sample": command.sample}
    if isinstance(command, SetControl):
        return {"op": "control", "name": command.name, "value": command.value}
    raise TypeError(f"not a command: {command!r}")


def sources_used(data: dict) -> list[str]:
    """The keys of the records (sources, arrays) an encoded command refers to."""
    return keys_used(data) if data["op"] in ("add", "set") else []


def not_code(data: dict) -> list[str]:
    """What in an encoded command is not code (empty: it rebuilds from data alone)."""
    return has_fn(data)


def decode_command(data: dict, *, engine, store: SourceStore, where: str, captured=None):
    """The command ``data`` describes, for ``engine``. A value that is not code is taken from
    ``captured`` (the same command sent by the replayed code), or raises :class:`NotCode`."""
    op = data.get("op")
    quant = data.get("quant", "now")
    try:
        check_quant(quant)          # (a replay sends its batches past the engine's own checks)
        if op == "add":
            timing = tuple(int(v) for v in data["timing"]) if data.get("timing") is not None else None
            if timing is not None and len(timing) != 4:
                raise ValueError(f"timing={timing!r} is not 4 samples")
            return AddVoice(_voice_params(data, engine, store, where, captured), quant, timing)
        if op == "set":
            changes = {}
            for name, value in dict(data["changes"]).items():
                if name not in CHANGES:
                    raise ValueError(f"a voice has no {name!r} to change")
                if name in ("a", "b"):
                    src = _source(value, store, engine, where, captured, name)
                    changes[name] = src
                    tail = flag(data["changes"].get(f"tail_{name}", False), f"tail_{name}")
                    changes[f"frames_{name}"] = src.frames(engine.codec, int(data["changes"][f"hop_{name}"]),
                                                           tail=tail)
                elif name == "path":
                    changes[name] = _path(value, store, engine, where, captured)
                elif name.startswith(("hop_", "tail_")):
                    continue
                elif name == "curve":
                    changes[name] = _decoded_curve(value, where, captured, "curve")
                elif name == "out":
                    changes[name] = check_out(value, engine.channels)
                elif name == "cue":
                    changes[name] = flag(value, "cue")
                else:
                    changes[name] = check_gain(value) if name == "gain" else check_pan(value)
            _compile_here(changes, int(data["voice"]), engine)
            return SetVoice(int(data["voice"]), changes, quant)
        if op == "stop":
            return StopVoice(int(data["voice"]), whole(data["fade"], "fade"), quant)
        if op == "hush":
            return Hush(whole(data["fade"], "fade"), quant)
        if op == "tempo":
            return SetTempo(check_tempo(data["bpm"]), quant)
        if op == "sync":
            return SyncTempo(check_tempo(data["bpm"]), finite(data["beat"], "beat"),
                             whole(data["sample"], "sample"))
        if op == "control":
            return SetControl(str(data["name"]), finite(data["value"], "value"))
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise SetError(f"{where}: malformed command {data!r} ({type(exc).__name__}: {exc})") from None
    raise SetError(f"{where}: unknown command {op!r}; the journal is from a newer livelatent?")


def _compile_here(changes: dict, number: int, engine) -> None:
    """A change of sources or path compiled in the replay's thread (not in the timeline's, where
    ``apply`` would otherwise do it): frames encoded, indexes built, before it lands."""
    if {"a", "b", "path", "curve"} & set(changes):
        params = engine.intended().voices.get(number)
        if params is not None:
            changes["plan"] = with_plan(params.changed(**changes), engine.codec).plan


def _decoded_curve(value, where, captured, field):
    if value is None:
        return None
    if isinstance(value, dict):
        taken = _captured_value(captured, field)
        if taken is None:
            raise NotCode(f"{where}: its curve {value.get('fn')} was a Python function, not code")
        return taken
    return rebuild_curve(value, where)


def _captured_value(captured, field):
    if captured is None:
        return None
    if isinstance(captured, AddVoice):
        return getattr(captured.params, field)
    if isinstance(captured, SetVoice):
        return captured.changes.get(field)
    return None


def _source(value, store, engine, where, captured, role):
    if has_fn(value):
        taken = _captured_value(captured, role)
        if taken is None:
            raise NotCode(f"{where}: source {role} has a curve that was a Python function, not code")
        return taken
    return rebuild_source(value, store=store, rate=engine.sample_rate, where=where,
                          rebuild_curve=rebuild_curve)


def _path(value, store, engine, where, captured):
    if has_fn(value):
        taken = _captured_value(captured, "path")
        if taken is None:
            raise NotCode(f"{where}: its path has a curve that was a Python function, not code")
        return taken
    return rebuild_path(value, store=store, rate=engine.sample_rate, where=where,
                        rebuild_curve=rebuild_curve)


def _voice_params(data: dict, engine, store: SourceStore, where: str, captured) -> VoiceParams:
    a = _source(data["a"], store, engine, where, captured, "a")
    b = _source(data["b"], store, engine, where, captured, "b")
    lay = layout(data["strategy"], data["synth"], window=engine.window,
                 stretch=legacy_stretch(data.get("stretch", 4)))
    curve = _decoded_curve(data.get("curve"), where, captured, "curve")
    # sets made before 0.3 dropped the last partial window: they read their frames that way
    tail_a, tail_b = (flag(data.get(key, False), key) for key in ("tail_a", "tail_b"))
    loop, deterministic = flag(data["loop"], "loop"), flag(data["deterministic"], "deterministic")
    path = _path(data["path"], store, engine, where, captured) if data.get("path") is not None else None
    return with_plan(VoiceParams(
        index=whole(data["voice"], "voice"), name=str(data["name"]), a=a, b=b,
        frames_a=a.frames(engine.codec, lay.input_hop, tail=tail_a),
        frames_b=b.frames(engine.codec, lay.input_hop, tail=tail_b),
        strategy=data["strategy"], synth=data["synth"], layout=lay, curve=curve,
        steps=step_values(list(data["steps"])), loop=loop, fit=checked_fit(data["fit"]),
        seed=None if data["seed"] is None else whole(data["seed"], "seed"),
        deterministic=deterministic, gain=check_gain(data["gain"]),
        pan=check_pan(data["pan"]), good_curve=curve,
        options={"strategy": data["strategy"], "synth": data["synth"],
                 "stretch": data.get("stretch", 4), "steps": list(data["steps"]),
                 "loop": loop, "seed": data["seed"],
                 "deterministic": deterministic, "fit": data["fit"]},
        noise_key=whole(data.get("noise_key", data["voice"]), "noise_key"), path=path,
        out=check_out(data.get("out"), engine.channels), cue=flag(data.get("cue", False), "cue")), engine.codec)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
