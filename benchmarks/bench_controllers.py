"""Controllers: OSC-to-sound latency, decode load while a controller sweeps, journal cost.

1. Latency at blocksize 256 over a JACK dummy server: from the moment an OSC message is sent
   (python-osc, UDP on 127.0.0.1) to the first output sample it changes, located in the JACK
   capture, in JACK frame time. Baselines, same run: the same for a curve assignment typed in
   code (bench_realtime's code-to-sound latency), and a bare sounddevice stream's floor.
2. Decode load, 16 voices reading one OSC controller, blocksize 1024: 10 s while 100 messages a
   second sweep it, against 10 s without messages (baseline, same run): the decode thread's
   load per step it decodes, and the engine process's CPU seconds per second (which counts
   every re-decode); and how many batches the messages were merged into.
3. Journal: bytes and write time per 1,000 controller values (one value a step, as the merge
   sends them at most, written as livelatent does: a ``controls`` record every 0.25 s), against
   the same values written as ordinary batch records, fsynced each (baseline).

4. MIDI clock out at 120 bpm for 10 s while a voice plays, received on a JACK MIDI port: the
   deviation of each tick interval from 1/48 s (median and max) and of each tick from a
   straight line through all of them. Baseline, same run: a plain loop that sleeps until each
   tick's time and sends it.

Run: ``python benchmarks/bench_controllers.py [--runs 10] [--only latency,load,journal,clock]``.
Needs jackd.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from pythonosc.udp_client import SimpleUDPClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import jackutil  # noqa: E402
from bench_realtime import engine_latency, stream_floor_latency  # noqa: E402

from livelatent import Engine, load_model, source, voice  # noqa: E402
from livelatent.controllers import Controllers  # noqa: E402
from livelatent.engine.commands import SetControl, SetTempo  # noqa: E402
from livelatent.session.journal import Journal  # noqa: E402
from livelatent.session.namespace import namespace  # noqa: E402
from livelatent.session.recorder import CONTROLS_EVERY_S  # noqa: E402
from livelatent.session.records import SourceStore, encode_command  # noqa: E402


def _noises(codec):
    rng = np.random.default_rng(5)
    return [source(rng.normal(0, 0.2, 4 * codec.sample_rate).astype(np.float32), name=n)
            for n in ("first", "second")]


def osc_change(engine):
    """The voice follows an OSC controller (0 at first); the change is a message sent to it."""
    names = namespace(engine)
    port = names["osc_listen"](port=0)
    client = SimpleUDPClient("127.0.0.1", port)
    return names["osc"]("/x", default=0.0), lambda v: client.send_message("/x", 1.0)


def sweep_load(codec, server, seconds=10.0, rate=100):
    first, second = _noises(codec)
    loads = {}
    with Engine(codec, seed=0, blocksize=1024) as engine:
        names = namespace(engine)
        port = names["osc_listen"](port=0)
        fader = names["osc"]("/fader", default=0.5)
        for i in range(16):
            voice(first, second, curve=fader, gain=1 / 16)
        client = SimpleUDPClient("127.0.0.1", port)
        engine.start("system")
        time.sleep(1.0)
        for label, sweeping in (("still", False), ("sweeping", True)):
            samples, began, cpu = [], time.monotonic(), time.process_time()
            i = 0
            while time.monotonic() - began < seconds:
                if sweeping:
                    client.send_message("/fader", 0.5 + 0.5 * np.sin(i / 30))
                    i += 1
                time.sleep(1.0 / rate)
                samples.append(engine.status()["decode_load"])
            used = (time.process_time() - cpu) / (time.monotonic() - began)
            loads[label] = (statistics.mean(samples), max(samples), used)
        batches = Controllers.of(engine).listener.sender.sent
        underruns = engine.underruns
        engine.stop_playback()
    return loads, i, batches, underruns


def journal_cost(count=1000):
    per_record = int(CONTROLS_EVERY_S * 44100 / 512)        # values kept between records
    with tempfile.TemporaryDirectory() as folder:
        store = SourceStore(folder)
        out = {}
        for compact in (True, False):
            path = Path(folder) / f"journal-{compact}.jsonl"
            with Journal(path) as journal:
                journal.start_session(seed=0, tempo=60, sample_rate=44100, position=0,
                                      model_path=None, model_hash="x")
                size = path.stat().st_size
                began = time.perf_counter()
                kept = []
                for n in range(count):
                    data = encode_command(SetControl("osc:/fader/1", n / count), store)
                    if not compact:
                        journal.record_batch(seq=n, origin="osc", cell=None, sample=n * 512,
                                             commands=[data], sources=[])
                        continue
                    kept.append([n, n * 512, data["name"], data["value"]])
                    if len(kept) == per_record or n == count - 1:
                        journal.record_controls("osc", kept)
                        kept = []
                spent = time.perf_counter() - began
            out[compact] = (path.stat().st_size - size, spent)
    return out


def _ticks(receiver, seconds):
    """Arrival times (s, from the receiver's deltas) of the clock ticks received."""
    times, now, began = [], 0.0, time.monotonic()
    while time.monotonic() - began < seconds:
        got = receiver.get_message()
        if got is None:
            time.sleep(0.0005)
            continue
        message, delta = got
        now += delta
        if message == [0xF8]:
            times.append(now)
    return np.array(times)


def _deviations(times, interval):
    steps = np.diff(times) - interval
    fit = np.polyval(np.polyfit(np.arange(times.size), times, 1), np.arange(times.size))
    return np.abs(steps), np.abs(times - fit)


def clock_jitter(codec, seconds=10.0):
    import subprocess

    import rtmidi
    first, second = _noises(codec)
    results = {}
    for label in ("livelatent", "baseline"):
        receiver = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=f"receiver-{label}")
        receiver.open_virtual_port("in")
        receiver.ignore_types(timing=False)
        with Engine(codec, seed=0, blocksize=256) as engine:
            engine.submit(SetTempo(120.0))
            voice(first, second, curve=0.5)
            engine.start("system")
            time.sleep(0.5)
            if label == "livelatent":
                clock = namespace(engine)["midi_clock"]()
                port = "livelatent-clock:clock"
            else:
                out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="baseline")
                out.open_virtual_port("clock")
                port = "baseline:clock"
            for _ in range(50):                      # the port may take a moment to appear
                if subprocess.run(["jack_connect", port, f"receiver-{label}:in"],
                                  capture_output=True).returncode == 0:
                    break
                time.sleep(0.1)
            else:
                print(f"  {label}: could not connect {port}: {subprocess.run(['jack_lsp'], capture_output=True, text=True).stdout}")
            if label == "baseline":
                late = []

                def plain():
                    due = time.perf_counter()
                    while not done.is_set():
                        due += 1 / 48
                        time.sleep(max(0.0, due - time.perf_counter()))
                        out.send_message([0xF8])
                        late.append(time.perf_counter() - due)
                import threading
                done = threading.Event()
                threading.Thread(target=plain, daemon=True).start()
            times = _ticks(receiver, seconds)
            if label == "baseline":
                done.set()
                out.close_port()
                sent_late = np.array(late)
            else:
                sent_late = np.array(clock.late)
                clock.close()
            engine.stop_playback()
        receiver.close_port()
        receiver.delete()
        results[label] = _deviations(times, 1 / 48) + (times.size, np.abs(sent_late))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="latency measurements")
    parser.add_argument("--model", default=None)
    parser.add_argument("--only", default="latency,load,journal,clock", help="sections to run")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    codec = load_model(args.model)
    with tempfile.TemporaryDirectory() as logs:
        if "clock" in only:
            with jackutil.running_jack_server(period=256, log_dir=Path(logs)):
                jitter = clock_jitter(codec)
            print("4. MIDI clock out, 120 bpm, 10 s (ms, median / max): each tick's send time against "
                  "its ideal time; as received over JACK MIDI (its period quantises arrivals): "
                  "interval error, error from a straight line")
            for label, (steps, line, count, late) in jitter.items():
                print(f"  {label:10s} sent {1e3 * np.median(late):5.3f} / {1e3 * late.max():5.3f}   "
                      f"received {1e3 * np.median(steps):5.2f} / {1e3 * steps.max():5.2f}, "
                      f"{1e3 * np.median(line):5.2f} / {1e3 * line.max():5.2f}   ({count} ticks)")
        if not only & {"latency", "load", "journal"}:
            return 0
        with jackutil.running_jack_server(period=256, log_dir=Path(logs)) as server:
            osc = engine_latency(codec, server, args.runs, change=osc_change)
            code = engine_latency(codec, server, args.runs)
            floor = stream_floor_latency(server, args.runs, codec.sample_rate)
        print("1. latency at blocksize 256 (ms): median, max")
        for label, values in (("OSC message -> sound", osc), ("code -> sound (baseline)", code),
                              ("bare stream floor (baseline)", floor)):
            if values:
                print(f"  {label:30s} {1e3 * statistics.median(values):6.1f}  {1e3 * max(values):6.1f}"
                      f"   (n={len(values)})")
        with jackutil.running_jack_server(period=1024, log_dir=Path(logs)) as server:
            loads, messages, batches, underruns = sweep_load(codec, server)
    print("2. 16 voices on one OSC controller, blocksize 1024: decode load per step (mean, max), "
          "and CPU s per s")
    for label, (mean, peak, used) in loads.items():
        print(f"  {label:10s} {100 * mean:5.1f}%  {100 * peak:5.1f}%   CPU {used:.2f} s/s")
    print(f"  {messages} messages in 10 s merged into {batches} batches; underruns {underruns}")
    cost = journal_cost()
    print("3. journal, per 1,000 controller values")
    print(f"  as written (controls records):       {cost[True][0] / 1024:.0f} KiB, "
          f"{1e3 * cost[True][1]:.0f} ms")
    print(f"  baseline, a batch record each, fsync: {cost[False][0] / 1024:.0f} KiB, "
          f"{1e3 * cost[False][1]:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
