"""Render instrument notes and short demo phrases from the FluidR3 General MIDI soundfont.

Used by ``scripts/build_default_pack.py``. Everything is rendered in ONE fluidsynth call per
set (one MIDI file, one time slot per note, all-sound-off between slots): that is ~30x faster
than starting fluidsynth once per note. Reverb and chorus are off; each note is mixed to mono
and peak-normalised.

The held-out set is defined so that none of its pitches or velocities appears in training:
melodic instruments are trained at pitches ``p-4, p, p+4`` around bases ``p`` whose pitch class
is C, C# or D (staggered across instruments, so training covers 9 of the 12 pitch classes),
at velocities 60, 90 and 115; they are held out on the D#/Eb just above each base (``p+3``,
``p+2`` or ``p+1``) at velocity 80. No training note has pitch class D#, G or B, and none has
velocity 80. Drums are trained on one set of GM drum-kit notes at velocities 60, 90 and 120
and held out on *other* drum-kit notes at velocity 80.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SAMPLE_RATE = 44100
NOTE_SECONDS = 1.5          # length of each rendered note (onset + release tail)
HOLD_SECONDS = 1.1          # note-on duration inside it
SLOT_SECONDS = 2.0          # time between slots; all-sound-off happens before the next slot
DRUM_CHANNEL = 9            # GM channel 10

# name: (GM program 0-based, family, lowest MIDI note, highest MIDI note)
INSTRUMENTS = {
    "piano": (0, "piano", 21, 108), "bright_piano": (1, "piano", 21, 108),
    "epiano": (4, "piano", 28, 103), "harpsichord": (6, "piano", 29, 89),
    "celesta": (8, "mallets", 60, 108), "glockenspiel": (9, "mallets", 72, 108),
    "vibraphone": (11, "mallets", 53, 89), "marimba": (12, "mallets", 45, 96),
    "xylophone": (13, "mallets", 65, 108), "tubular_bells": (14, "mallets", 60, 77),
    "drawbar_organ": (16, "organ", 36, 96), "church_organ": (19, "organ", 24, 96),
    "accordion": (21, "organ", 53, 89),
    "nylon": (24, "guitar", 40, 84), "steel_guitar": (25, "guitar", 40, 84),
    "clean_guitar": (27, "guitar", 40, 86), "overdrive_guitar": (29, "guitar", 40, 86),
    "banjo": (105, "guitar", 48, 84), "sitar": (104, "guitar", 48, 77),
    "acoustic_bass": (32, "bass", 28, 55), "finger_bass": (33, "bass", 28, 55),
    "violin": (40, "strings", 55, 96), "viola": (41, "strings", 48, 84),
    "cello": (42, "strings", 36, 76), "contrabass": (43, "strings", 28, 60),
    "pizzicato": (45, "strings", 28, 96), "harp": (46, "strings", 23, 103),
    "strings": (48, "strings", 28, 96),
    "timpani": (47, "percussion", 36, 57), "steel_drums": (114, "percussion", 52, 76),
    "woodblock": (115, "percussion", 48, 84), "tinkle_bell": (112, "percussion", 60, 96),
    "choir": (52, "voice", 48, 79), "voice": (53, "voice", 48, 79), "synth_voice": (54, "voice", 48, 79),
    "trumpet": (56, "brass", 55, 82), "trombone": (57, "brass", 40, 72),
    "tuba": (58, "brass", 28, 58), "horn": (60, "brass", 41, 77), "brass_section": (61, "brass", 36, 84),
    "soprano_sax": (64, "winds", 56, 87), "sax": (65, "winds", 49, 81),
    "oboe": (68, "winds", 58, 91), "bassoon": (70, "winds", 34, 72),
    "clarinet": (71, "winds", 50, 91), "flute": (73, "winds", 60, 96), "panflute": (75, "winds", 60, 96),
    "square_lead": (80, "synth", 36, 96), "saw_lead": (81, "synth", 36, 96),
    "pad": (88, "synth", 36, 96), "warm_pad": (89, "synth", 36, 96),
}

TRAIN_VELOCITIES = (60, 90, 115)
HELDOUT_VELOCITY = 80
TRAIN_OFFSETS = (-4, 0, 4)
HELDOUT_PITCH_CLASS = 3     # D#/Eb: never trained (nor G, B: see _bases)
MAX_BASES = 4               # octaves per instrument (spread over its range)
REGISTER = (33, 91)         # MIDI notes the corpus keeps to (the playable middle of most instruments)

# GM drum kit: trained notes and other, held-out notes (distinct drum sounds)
DRUMS_TRAIN = {35: "kick", 36: "kick", 38: "snare", 40: "snare", 37: "snare", 39: "clap",
               42: "hihat", 46: "hihat", 44: "hihat", 49: "crash", 51: "ride", 52: "crash",
               41: "toms", 45: "toms", 48: "toms", 50: "toms", 54: "percussion",
               56: "percussion", 60: "percussion", 62: "percussion", 64: "percussion",
               69: "percussion", 75: "percussion", 76: "percussion"}
DRUMS_HELDOUT = {43: "toms", 47: "toms", 57: "crash", 59: "ride", 61: "percussion",
                 63: "percussion", 70: "percussion", 77: "percussion"}
DRUM_TRAIN_VELOCITIES = (60, 90, 120)


def _bases(low: int, high: int, stagger: int) -> list[int]:
    """Bases ``p`` of pitch class ``stagger`` (0 = C, 1 = C#, 2 = D) whose p-4 .. p+4 lies inside
    the instrument's range and the corpus register. Their training pitches p-4, p, p+4 have pitch
    classes ``stagger + {8, 0, 4}``: never 3, 7 or 11."""
    low, high = max(low, REGISTER[0]), min(high, REGISTER[1])
    candidates = [p for p in range(12 + stagger, 120, 12) if p - 4 >= low and p + 4 <= high]
    if len(candidates) > MAX_BASES:    # keep the ends and the middle of the range
        picks = np.linspace(0, len(candidates) - 1, MAX_BASES).round().astype(int)
        candidates = [candidates[i] for i in sorted(set(picks))]
    return candidates


def corpus_notes() -> tuple[list[dict], list[dict]]:
    """(training notes, held-out notes), each a list of dicts with name/program/pitch/velocity."""
    train, heldout = [], []
    for index, (name, (program, family, low, high)) in enumerate(INSTRUMENTS.items()):
        stagger = index % 3
        for base in _bases(low, high, stagger):
            for offset in TRAIN_OFFSETS:
                for velocity in TRAIN_VELOCITIES:
                    train.append(dict(instrument=name, family=family, program=program, channel=0,
                                      pitch=base + offset, velocity=velocity))
            heldout.append(dict(instrument=name, family=family, program=program, channel=0,
                                pitch=base + HELDOUT_PITCH_CLASS - stagger, velocity=HELDOUT_VELOCITY))
    for pitch, kind in DRUMS_TRAIN.items():
        for velocity in DRUM_TRAIN_VELOCITIES:
            train.append(dict(instrument=f"drum_{kind}", family="drums", program=0,
                              channel=DRUM_CHANNEL, pitch=pitch, velocity=velocity))
    for pitch, kind in DRUMS_HELDOUT.items():
        heldout.append(dict(instrument=f"drum_{kind}", family="drums", program=0,
                            channel=DRUM_CHANNEL, pitch=pitch, velocity=HELDOUT_VELOCITY))
    return train, heldout


def _seconds_to_ticks(seconds: float) -> int:
    # 480 ticks per beat at 120 bpm -> 960 ticks per second
    return int(round(seconds * 960))


def render_events(events: list[list[tuple]], slot_seconds: float, soundfont: Path = SOUNDFONT) -> np.ndarray:
    """Render slots of MIDI events in one fluidsynth call.

    ``events[k]`` is a list of ``(time_s, mido.Message)`` inside slot k (times relative to the
    slot start). Returns ``(slots, slot_samples)`` float32 mono audio.
    """
    if shutil.which("fluidsynth") is None:
        raise SystemExit("fluidsynth is not installed (apt-get install fluidsynth fluid-soundfont-gm)")
    if not soundfont.exists():
        raise SystemExit(f"soundfont missing: {soundfont} (apt-get install fluid-soundfont-gm)")
    timeline = []
    for k, slot in enumerate(events):
        start = k * slot_seconds
        for time_s, message in slot:
            timeline.append((start + time_s, message))
        for channel in range(16):       # silence everything before the next slot
            timeline.append((start + slot_seconds - 0.05, mido.Message("control_change", channel=channel,
                                                                        control=120, value=0)))
            timeline.append((start + slot_seconds - 0.05, mido.Message("control_change", channel=channel,
                                                                        control=121, value=0)))
    timeline.sort(key=lambda item: item[0])
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    now = 0
    for time_s, message in timeline:
        tick = _seconds_to_ticks(time_s)
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=_seconds_to_ticks(0.5)))
    with tempfile.TemporaryDirectory() as tmp:
        midi_path, wav_path = Path(tmp) / "corpus.mid", Path(tmp) / "corpus.wav"
        midi.save(midi_path)
        subprocess.run(["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5",
                        "-r", str(SAMPLE_RATE), "-F", str(wav_path), str(soundfont), str(midi_path)],
                       check=True, capture_output=True)
        audio, rate = sf.read(wav_path, dtype="float32", always_2d=True)
    assert rate == SAMPLE_RATE, rate
    mono = audio.mean(axis=1)
    slot = int(round(slot_seconds * SAMPLE_RATE))
    needed = slot * len(events)
    if mono.size < needed:
        mono = np.pad(mono, (0, needed - mono.size))
    return mono[:needed].reshape(len(events), slot)


def _note_events(note: dict) -> list[tuple]:
    ch = note["channel"]
    events = [] if ch == DRUM_CHANNEL else [(0.0, mido.Message("program_change", channel=ch,
                                                               program=note["program"]))]
    events.append((0.01, mido.Message("note_on", channel=ch, note=note["pitch"], velocity=note["velocity"])))
    events.append((0.01 + HOLD_SECONDS, mido.Message("note_off", channel=ch, note=note["pitch"], velocity=0)))
    return events


def _normalise(audio: np.ndarray, peak: float = 0.95) -> np.ndarray | None:
    top = float(np.max(np.abs(audio)))
    if top < 1e-3:
        return None
    return (audio * (peak / top)).astype(np.float32)


def render_corpus(out_dir: Path, *, soundfont: Path = SOUNDFONT) -> dict:
    """Render the training and held-out notes into ``out_dir/train`` and ``out_dir/heldout``
    (FLAC, mono, 44.1 kHz, peak-normalised) and write a ``manifest.json`` in each. Returns a
    summary."""
    out_dir = Path(out_dir)
    train, heldout = corpus_notes()
    summary = {}
    for split, notes in (("train", train), ("heldout", heldout)):
        folder = out_dir / split
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        slots = render_events([_note_events(n) for n in notes], SLOT_SECONDS, soundfont)
        keep = int(round((0.01 + NOTE_SECONDS) * SAMPLE_RATE))
        files, skipped = {}, []
        for note, audio in zip(notes, slots):
            name = f"{note['instrument']}_p{note['pitch']:03d}_v{note['velocity']:03d}.flac"
            clip = _normalise(audio[int(0.01 * SAMPLE_RATE):keep])
            if clip is None:
                skipped.append(name)
                continue
            sf.write(folder / name, clip, SAMPLE_RATE, subtype="PCM_24")
            files[name] = {k: note[k] for k in ("instrument", "family", "program", "pitch", "velocity")}
        manifest = {
            "description": (f"FluidR3_GM.sf2 rendered with fluidsynth (reverb and chorus off, mono, "
                            f"peak-normalised, {NOTE_SECONDS} s per note); split '{split}'"),
            "heldout_rule": ("melodic: trained at p-4/p/p+4 (p of pitch class C, C# or D, staggered "
                             "across instruments) at velocities 60/90/115; held out at the D#/Eb above p "
                             "at velocity 80 (no training note has pitch class D#, G or B or velocity "
                             "80); drums: held out drum-kit notes not in training, at velocity 80"),
            "files": files,
            "skipped_silent": skipped,
        }
        (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
        summary[split] = {"notes": len(files), "skipped_silent": len(skipped)}
    return summary


if __name__ == "__main__":
    import sys
    import time

    start = time.time()
    print(render_corpus(Path(sys.argv[1] if len(sys.argv) > 1 else "build/corpus")),
          f"{time.time() - start:.1f} s")
