"""Ableton Link: how closely livelatent's heard beats follow a session, and what it costs.

livelatent plays two voices over a JACK dummy server (blocksize 1024) and joins a Link session
with a small aalink peer (tests/link_peer.py), both in a private network namespace with only
loopback (tests/private_net.sh; this script re-runs itself there). For ``--seconds`` it samples
the beat the listener hears (``link().heard_beat()``, the device's own stamps of when each block
reaches the output) every 5 ms and compares it with the peer's beat at the same instant, on the
clock Link keeps; the peer changes the tempo halfway. Printed: the phase difference (median and
max, in ms), the corrections sent (each one re-decodes the lookahead) and the time the peer's
tempo change took to be heard.

Baseline, same run: a second plain aalink peer in this process, sampled the same way (what
Link itself achieves between two peers on this machine).

Run: ``python benchmarks/bench_link.py [--seconds 20]``. Needs root (unshare), jackd, aalink.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import jackutil  # noqa: E402

from livelatent import Engine, sine, source, voice  # noqa: E402
from livelatent.controllers.link import now_ns  # noqa: E402
from livelatent.session.namespace import namespace  # noqa: E402

PACK = ROOT / "livelatent" / "packs" / "default" / "sources"
INSIDE = "LIVELATENT_BENCH_PRIVATE_NET"


def apart_ms(samples: np.ndarray, peer: np.ndarray) -> np.ndarray:
    """Phase differences (ms, quantum 4) of ``samples`` (ns, beat) from the peer's log."""
    beat = np.interp(samples[:, 0], peer[:, 0], peer[:, 1])
    bpm = np.interp(samples[:, 0], peer[:, 0], peer[:, 2])
    return ((samples[:, 1] - beat + 2.0) % 4.0 - 2.0) * 60.0 / bpm * 1000.0


def plain_peer(samples: list, stop: threading.Event) -> None:
    """The baseline: an aalink peer sampling its own beat every 5 ms."""
    import aalink

    async def main():
        link = aalink.Link(120.0)
        link.quantum = 4
        link.enabled = True
        while not stop.is_set():
            samples.append((link.time.total_seconds() * 1e9, link.beat))
            await asyncio.sleep(0.005)
        link.enabled = False

    asyncio.run(main())


def run(seconds: float) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-link-"))
    commands, log = folder / "peer.commands", folder / "peer.log"
    commands.write_text("")
    peer = subprocess.Popen([sys.executable, str(ROOT / "tests" / "link_peer.py"), str(commands), str(log)])
    baseline, stop = [], threading.Event()
    with jackutil.running_jack_server(log_dir=folder) as server:
        os.environ["JACK_DEFAULT_SERVER"] = server.name
        with Engine(tempo=100) as engine:
            engine.start(device="system", blocksize=1024)
            names = namespace(engine)
            flute, cello = source(PACK / "flute.flac"), source(PACK / "cello.flac")
            with engine.batch():
                voice(flute, cello, curve=sine(2))
                voice(cello, flute, curve=sine(3), gain=0.5)
            link = names["link"]()
            while link.peers < 1:
                time.sleep(0.05)
            threading.Thread(target=plain_peer, args=(baseline, stop), daemon=True).start()
            time.sleep(2.0)
            ours, began, changed, heard_at = [], time.monotonic(), None, None
            while time.monotonic() - began < seconds:
                if changed is None and time.monotonic() - began > seconds / 2:
                    commands.write_text("tempo 90\n")
                    changed = now_ns()
                if changed is not None and heard_at is None and abs(engine.tempo - 90.0) < 1e-3:
                    heard_at = now_ns()
                sample = link.heard_beat()
                if sample is not None:
                    ours.append(sample)
                time.sleep(0.005)
            corrections = link.corrections
            stop.set()
            link.leave()
            engine.stop_playback()
    commands.write_text("tempo 90\nend\n")
    peer.wait(timeout=10)
    log_rows = np.loadtxt(log)
    settled = [row for row in ours if changed is None or not changed <= row[0] <= changed + 1e9]
    ours_ms = np.abs(apart_ms(np.array(settled, dtype=np.float64), log_rows))
    base_ms = np.abs(apart_ms(np.array(baseline[10:], dtype=np.float64), log_rows))
    print(f"Link phase, livelatent (heard) vs peer, {seconds:g} s at blocksize 1024: "
          f"median {np.median(ours_ms):.3f} ms, max {ours_ms.max():.3f} ms "
          f"({len(ours_ms)} samples; the second after the tempo change left out)")
    print(f"  baseline, a plain aalink peer vs the same peer: median {np.median(base_ms):.3f} ms, "
          f"max {base_ms.max():.3f} ms")
    print(f"  corrections sent (each re-decodes the lookahead): {corrections} "
          f"({corrections / seconds * 60:.1f} a minute, the join and the tempo change included)")
    if heard_at is not None:
        print(f"  the peer's tempo change was heard {(heard_at - changed) / 1e6:.1f} ms after it was made")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    if not os.environ.get(INSIDE):
        wrapper = ["unshare", "-n", "bash", str(ROOT / "tests" / "private_net.sh")]
        done = subprocess.run([*wrapper, "env", f"{INSIDE}=1", sys.executable, __file__,
                               "--seconds", str(args.seconds)])
        sys.exit(done.returncode)
    run(args.seconds)


if __name__ == "__main__":
    main()
