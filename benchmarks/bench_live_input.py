"""Live input: from a sound coming in to the voice that plays it coming out.

A JACK client plays bursts of noise (60 ms, every 2 s) into livelatent's input over a JACK
dummy server; a voice plays the live input alone (``voice(mic, cello, curve=0)``). One JACK
recorder captures both the bursts as sent and livelatent's output, so the latency is read in
one capture: from each burst's onset to the onset of the sound it makes (envelopes over 256
samples, threshold halfway between the floor and the peak; median over the bursts). For the
default lookahead (0.2 s) and a short one (``--lookahead 0.05``), at JACK periods 256 and 1024.

Baselines, same run: the declared delay (what livelatent says it adds: the lookahead, a step, a
window, the device's input-to-output lag, a block and a margin), and that lag alone (what a bare
duplex stream costs).

Run: ``python benchmarks/bench_live_input.py [--seconds 10]``. Needs jackd.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import jackutil  # noqa: E402

from livelatent.repl.setup import make_engine  # noqa: E402
from livelatent.session.session import Session  # noqa: E402

BURST_S, EVERY_S = 0.06, 2.0


def _envelope(x: np.ndarray, size: int = 256) -> np.ndarray:
    power = np.convolve(x.astype(np.float64) ** 2, np.ones(size) / size, mode="same")
    return np.sqrt(power)


def _onsets(x: np.ndarray, rate: int) -> np.ndarray:
    env = _envelope(x)
    floor, peak = np.percentile(env, 20), env.max()
    above = env > floor + 0.5 * (peak - floor)
    starts = np.flatnonzero(above[1:] & ~above[:-1]) + 1
    kept, last = [], -10 * rate
    for s in starts:                       # one onset per burst
        if s - last > EVERY_S * rate / 2:
            kept.append(s)
            last = s
    return np.array(kept)


def measure(period: int, lookahead: float, seconds: float, folder: Path) -> tuple[float, float, float]:
    rate = 44100
    burst = np.zeros(int(EVERY_S * rate), dtype=np.float32)
    burst[int(0.5 * rate):int((0.5 + BURST_S) * rate)] = np.random.default_rng(0).normal(
        0, 0.3, int(BURST_S * rate))
    with jackutil.running_jack_server(period=period, log_dir=folder) as server:
        engine = make_engine(blocksize=period, lookahead=lookahead)
        session = Session(engine, sets_root=folder / "sets", set_name=f"p{period}-{lookahead}")
        engine.start(device="system", inputs=2)
        player = jackutil.JackPlayer(server, np.stack([burst, burst], axis=1), jackutil.SUBPROCESS_INPUTS)
        player.start()
        ports = ["livelatent-player:out_1", *_portaudio_outputs(server)[:1]]
        recorder = jackutil.JackRecorder(server, ports, channels=2, seconds=seconds + 5)
        recorder.start()
        session.run_cell("mic = live_input(channel=1)\nv = voice(mic, cello, curve=0)")
        mic = session.live_inputs[0]
        lag = engine.playback.connection.ring.input_lag
        time.sleep(seconds)
        captured = recorder.stop()
        player.close()
        engine.stop_playback()
        session.close()
    sent, heard = _onsets(captured[:, 0], rate), _onsets(captured[:, 1], rate)
    latencies = []
    for s in sent:
        after = heard[(heard > s) & (heard < s + EVERY_S * rate)]
        if after.size:
            latencies.append((after[0] - s) / rate)
    return float(np.median(latencies)) if latencies else float("nan"), mic.delay / rate, lag / rate


def _portaudio_outputs(server) -> list[str]:
    """The stream's output ports, once JACK lists them."""
    deadline = time.monotonic() + 20
    while not (found := [p for p in server.ports() if re.match(jackutil.SUBPROCESS_PORTS, p)]):
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-live-input-"))
    for period in (256, 1024):
        for lookahead in (0.2, 0.05):
            measured, declared, lag = measure(period, lookahead, args.seconds, folder)
            print(f"period {period:4d}, lookahead {lookahead * 1000:3.0f} ms: input -> sound "
                  f"{measured * 1000:6.1f} ms measured | declared delay {declared * 1000:5.1f} ms, "
                  f"the device's input-to-output lag {lag * 1000:4.1f} ms")


if __name__ == "__main__":
    main()
