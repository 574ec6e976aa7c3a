"""Seams at window boundaries, for each strategy in both synthesis modes (a quality figure).

The jump in the signal across window boundaries (|x[n] - x[n-1]| at every boundary n), over
the median jump at all other samples. Near 1: no seam. The paper's concatenation leaves a step
at each boundary; overlap-add with Hann windows should not. Baseline, same run: the same ratio
measured on the source audio itself at the same positions (what "no seam" looks like there).

Run: ``python benchmarks/bench_seams.py [--seconds 10]`` (default model pack and its sources).
"""

from __future__ import annotations

import argparse

import numpy as np

from livelatent import Engine, sine, voice
from livelatent.session.namespace import pack_sources
from livelatent.strategies import layout


def boundary_jump_ratio(x: np.ndarray, hop: int) -> float:
    jumps = np.abs(np.diff(x.astype(np.float64)))
    boundaries = np.arange(hop, x.size, hop) - 1          # jump from sample n-1 to n
    others = np.ones(jumps.size, dtype=bool)
    others[boundaries] = False
    return float(np.median(jumps[boundaries]) / np.median(jumps[others]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--a", default="flute")
    parser.add_argument("--b", default="cello")
    args = parser.parse_args(argv)
    with Engine(seed=0) as probe:
        sources = pack_sources(probe)
    a, b = sources[args.a], sources[args.b]
    print(f"sources {a.name} -> {b.name}, curve sine(4), {args.seconds:g} s each; "
          f"ratio = median jump at window boundaries / median jump elsewhere (1 = no seam)")
    print(f"baseline: the source {a.name} itself at 1024-sample positions: "
          f"{boundary_jump_ratio(a.audio, 1024):.2f}")
    for strategy in ("meso", "stepwise", "extension"):
        row = []
        for synth in ("concat", "ola"):
            with Engine(seed=0) as engine:
                voice(a, b, strategy=strategy, synth=synth, curve=None if strategy == "stepwise" else sine(4))
                audio = engine.render_array(args.seconds)
            hop = layout(strategy, synth, window=engine.window).output_hop
            row.append(f"{synth} {boundary_jump_ratio(audio[:, 0], hop):6.2f}")
        print(f"{strategy:<10} " + "   ".join(row))


if __name__ == "__main__":
    main()
