"""A long typed session in the real REPL: every view agrees with what was typed, for minutes.

Runs the CI test's session (``tests/test_repl_truth.py``: a cell every half second or so across
up to 16 voices, hushes, a save and a load, a watched file rewritten every 10 s, broken cells;
after each cell the status line, the published state and ``save()`` are checked against the
voices the typed cells should leave sounding) for ``--minutes`` (10) over a JACK dummy server at
blocksize 1024, then renders the set and compares it with what JACK captured. Prints the cells
typed, engine underruns, JACK xruns, the largest render-capture difference (target 1e-4) and the
REPL process's resident memory (read every 30 s: a minute in, at the end, and the most); the
baseline is the same session's first minute, measured in the same run.

Run: ``python benchmarks/bench_session.py [--minutes 10]``. Needs jackd (Debian jackd2).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import jackutil  # noqa: E402  (the tests' JACK helpers)
from test_repl_truth import typed_session  # noqa: E402


def run(minutes: float, folder: Path, seed: int) -> str:
    with jackutil.running_jack_server(period=1024, log_dir=folder) as server:
        began = time.monotonic()
        done = typed_session(server, folder, minutes * 60, seed=seed)
        xruns = server.xruns()
    return (f"{minutes:g} min: {done['cells']} cells ({done['most']} voices at most), "
            f"{done['underruns']} engine underruns, {xruns} JACK xruns, render vs capture "
            f"{done['difference']:.1e} (target <= 1e-4; the {done['late']} periods the recorder read "
            f"late left out), {time.monotonic() - began:.0f} s, the "
            f"REPL's resident memory {_memory(done['memory'])}"
            + (f"; underruns at {', '.join(done['underran'])}" if done["underran"] else ""))


def _memory(samples) -> str:
    """The resident memory a minute in and at the end, and the most in between."""
    if not samples:
        return "not read"
    minute = min(samples, key=lambda sample: abs(sample[0] - 60))
    return (f"{minute[1]:.0f} MB at {minute[0]:.0f} s, {samples[-1][1]:.0f} MB at "
            f"{samples[-1][0]:.0f} s (most {max(mb for _, mb in samples):.0f} MB)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("baseline", "long"):
            (Path(tmp) / name).mkdir()
        baseline = run(1.0, Path(tmp) / "baseline", seed=3)
        long = run(args.minutes, Path(tmp) / "long", seed=11)
    print(f"{long} | baseline, same run: {baseline}")


if __name__ == "__main__":
    main()
