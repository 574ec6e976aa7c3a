"""Descriptor following: how closely a voice following target curves hits them, next to two
baselines over the same corpus in the same run (see tests/followutil.py for the targets, the
corpus and the measurement, written apart from the index's own analysis).

Run: ``python benchmarks/bench_follow.py``. Targets: log-centroid correlation >= 0.9 and median
relative centroid error <= 15%, clearly better than both baselines.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from followutil import following_results  # noqa: E402


def main() -> int:
    results = following_results()
    print("voice over the pack's 32 notes   log-centroid corr   median centroid error   loudness corr")
    for name, r in results.items():
        role = "baseline: " if name in ("random", "sorted") else ""
        print(f"  {role + name:30s} {r['centroid_corr']:10.3f}   {r['centroid_rel_error']:18.3f}   "
              f"{r['loudness_corr']:13.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
