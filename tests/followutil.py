"""Descriptor following measured on real voices, with its baselines: shared by the test that
asserts the targets (tests/test_path_sets.py) and the benchmark that reports them
(benchmarks/bench_follow.py).

Targets are curves chosen here, not tracks read from the corpus: the centroid a triangle 400 Hz
- 4 kHz in log frequency (up and down twice over 20.8 s), the loudness one sine period over
20 dB. Each voice over the default pack's 32 FluidR3 notes is rendered and measured by the
STFT of test_descriptors.follow_accuracy (written apart from the index's own analysis): a
follow voice (mean decoded, the default), the same sampled, and two baselines over the same
corpus: its frames in random order, and sorted by centroid, traversed once.
"""

import numpy as np

from livelatent import Engine, corpus, curve, follow, ramp, rand, voice
from pathutil import PACK, SR
from test_descriptors import accuracy_targets, follow_accuracy

__all__ = ["following_results", "assert_follows_far_better"]


def following_results(windows: int = 7 * 256) -> dict:
    """{player: follow_accuracy(...)} for the four players above."""
    target_c, target_l = accuracy_targets(windows)
    inner = slice(2, windows - 2)
    with Engine(seed=1) as engine:
        notes = corpus(sorted(PACK.glob("*.flac")))
        length = windows * 512 / SR * engine.intended_tempo() / 60.0       # in beats

        def targets(t):
            phase = np.clip(np.asarray(t, dtype=np.float64) / length, 0, 1)
            triangle = 1 - np.abs((2 * phase) % 1 * 2 - 1)
            return 400.0 * 10.0 ** triangle, -26.0 + 10.0 * np.sin(2 * np.pi * phase)

        centroid, loudness = curve(lambda t: targets(t)[0]), curve(lambda t: targets(t)[1])
        by_centroid = notes.sorted_by("centroid")
        players = {"follow": lambda: voice(follow(notes, centroid=centroid, loudness=loudness)),
                   "follow, sampled": lambda: voice(follow(notes, centroid=centroid, loudness=loudness),
                                                    deterministic=False),
                   "random": lambda: voice(by_centroid.scrub(rand(3, step=length / windows)),
                                           deterministic=True),
                   "sorted": lambda: voice(by_centroid.scrub(ramp(length)), deterministic=True)}
        results = {}
        for name, play in players.items():
            engine.render_array(samples=2048)
            v = play()
            audio = engine.render_array(samples=windows * 512 + 2048)
            start = v.params.start - (engine.position - audio.shape[0])
            v.stop(fade=0)
            mono = (audio[:, 0].astype(np.float64) + audio[:, 1]) / np.sqrt(2)   # undo the pan
            centers = start + np.arange(windows) * 512 + 512
            results[name] = follow_accuracy(mono, SR, centers[inner], target_c[inner], target_l[inner])
    return results


def assert_follows_far_better(results: dict) -> None:
    """``results["follow"]`` hits its targets (log-centroid correlation 0.9, median centroid
    error 15%, loudness correlation 0.9) far better than the random and sorted baselines."""
    ours = results["follow"]
    assert ours["centroid_corr"] >= 0.9 and ours["centroid_rel_error"] <= 0.15, results
    assert ours["loudness_corr"] >= 0.9, results
    for baseline in ("random", "sorted"):
        assert ours["centroid_corr"] > results[baseline]["centroid_corr"] + 0.5, results
        assert ours["centroid_rel_error"] < results[baseline]["centroid_rel_error"] / 3, results
