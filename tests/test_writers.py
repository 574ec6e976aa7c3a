"""Many hands on one timeline, live: the REPL, a thread, a pattern file and a timer at once.

The real ``livelatent`` REPL plays through a dummy JACK server for 20 s while a test types a
cell every 0.5 s, a thread started from a cell changes a curve every 100 ms, a watched pattern
file is rewritten every 2 s and a timer changes the pan every beat. Afterwards the journal
names every change with its origin, and ``livelatent render`` of the set equals what JACK
captured.
"""

import time


from livelatent.session.performance import read_performance
from replutil import heard_is_rendered, last_underruns, recorded_repl

SECONDS = 20
SWEEP = """\
import threading, time
sweeping = threading.Event()
def sweep():
    i = 0
    while not sweeping.is_set():
        v.curve = sine(1 + (i % 7) / 4)
        i += 1
        time.sleep(0.1)
threading.Thread(target=sweep, name="sweep", daemon=True).start()
"""
PATTERN = 'voice(cello, flute, strategy="extension", curve=tri({period}), gain=0.4, name="layer")\n'
CELLS = ["w.gain = 0.5", "w.pan = -0.3", "w.curve = saw(2)", "tempo(90)", "w.gain = 0.8",
         "w.curve = tri(3).range(0.2, 0.7)", "tempo(60)", "w.pan = 0.2"]


def test_many_writers_at_once_are_journaled_and_render_as_heard(jack_server, tmp_path):
    sets = tmp_path / "sets"
    pattern = tmp_path / "layer.py"
    pattern.write_text(PATTERN.format(period=2))
    with recorded_repl(jack_server, ["--blocksize", "1024", "--set", "many"], sets) as (repl, recorder):
        repl.run('v = voice(flute, cello, curve=0.2, name="v")\n'
                 'w = voice(piano, strings, strategy="stepwise", gain=0.6, name="w")')
        repl.run(f"exec({SWEEP!r})")
        repl.run("every(1, lambda: w.set(pan=-w.pan))")
        repl.run(f"watch({str(pattern)!r})")
        began = time.monotonic()
        typed = 0
        while time.monotonic() - began < SECONDS:
            repl.run(CELLS[typed % len(CELLS)])
            typed += 1
            if typed % 4 == 0:
                pattern.write_text(PATTERN.format(period=2 + typed % 5))
            repl.pump(0.5)
        repl.run("sweeping.set()")
        assert repl.exit() == 0, repl.text[-2000:]
        captured = recorder.stop()
    assert "error:" not in repl.text, repl.text[-3000:]

    performance = read_performance(sets / "many" / "journal.jsonl")
    origins = [b.origin for b in performance.batches]
    assert origins.count("thread:sweep") >= 10 * SECONDS * 0.8          # every 100 ms
    assert origins.count("timer") >= SECONDS * 0.8                       # every beat (60-90 bpm)
    assert sum(o.startswith("pattern:") for o in origins) >= SECONDS / 2 * 0.8
    assert origins.count("repl") >= SECONDS * 2 * 0.8 and "exit" in origins
    assert performance.end is not None
    assert all(b.sample % 512 == 0 for b in performance.batches)          # each on a step

    assert last_underruns(repl.text) == 0         # (an underrun pauses: the rest comes later)
    reference, _ = heard_is_rendered(captured, sets / "many", tmp_path / "many.wav",
                                     seconds=SECONDS - 2, late=recorder.late_spans)                 # all of it compared
    assert len(reference) == performance.end
