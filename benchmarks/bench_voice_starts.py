"""Starting voices one cell after another never underruns, at blocksize 256 too.

The real REPL plays through a JACK dummy server at period ``--blocksize`` (256) while 8 voices
start one cell after another (a cell every 0.3 s, as in the CI test at 1024). Prints the
engine's underruns (the decoder late: its fault) apart from JACK's xruns (the host's). Baseline,
same run: the xruns JACK logs while a bare sounddevice stream with a trivial callback plays for
as long at the same period, the floor this machine's JACK shows with no work at all.

Run: ``python benchmarks/bench_voice_starts.py [--blocksize 256] [--rounds 3]``. Needs jackd.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import jackutil  # noqa: E402  (the tests' JACK helpers)
from replutil import Repl  # noqa: E402

_BARE_STREAM = """
import sys, time, sounddevice as sd
def callback(outdata, frames, time_info, status):
    outdata.fill(0.0)
with sd.OutputStream(device="system", samplerate=44100, blocksize=int(sys.argv[1]), channels=2,
                     dtype="float32", latency="low", callback=callback):
    time.sleep(float(sys.argv[2]))
"""


def voice_starts(server, blocksize: int, folder: Path) -> tuple[int, int, float]:
    """(engine underruns, JACK xruns, seconds) of a REPL starting 8 voices."""
    xruns_before = server.xruns()
    began = time.monotonic()
    repl = Repl(["live", "--device", "system", "--blocksize", str(blocksize), "--set", "starts"],
                env={"LIVELATENT_SETS": str(folder)})
    try:
        repl.wait_prompt()
        for i in range(8):
            strategy = ("meso", "extension")[i % 2]
            repl.run(f"voice(flute, cello, strategy={strategy!r}, curve=sine({2 + i}), gain=0.1)")
            repl.pump(0.3)
        repl.pump(1.0)
        printed = repl.run("print('UNDERRUNS', engine.underruns)")
        underruns = int(printed.split("UNDERRUNS")[-1].split()[0])
        repl.exit()
    finally:
        repl.close()
    return underruns, server.xruns() - xruns_before, time.monotonic() - began


def bare_stream_xruns(server, blocksize: int, seconds: float) -> int:
    before = server.xruns()
    subprocess.run([sys.executable, "-c", _BARE_STREAM, str(blocksize), str(seconds)], check=True,
                   timeout=seconds + 30)
    return server.xruns() - before


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocksize", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, \
            jackutil.running_jack_server(period=args.blocksize, log_dir=Path(tmp)) as server:
        rows = []
        for round_ in range(args.rounds):
            underruns, xruns, seconds = voice_starts(server, args.blocksize, Path(tmp) / f"r{round_}")
            floor = bare_stream_xruns(server, args.blocksize, seconds)
            rows.append((underruns, xruns, floor, seconds))
    for underruns, xruns, floor, seconds in rows:
        print(f"blocksize {args.blocksize}: 8 voices started one cell after another: {underruns} "
              f"engine underruns (target 0), {xruns} JACK xruns in {seconds:.0f} s | baseline, "
              f"same run: a bare stream with a trivial callback, {floor} JACK xruns in as long")


if __name__ == "__main__":
    main()
