"""Do the map's clusters group sounds by instrument family? Three feature sets, measured.

Labelled real notes come from the FluidR3 soundfont (rendered with fluidsynth, as the default
pack's corpus is: ``scripts/fluidr3_corpus.py``), eleven families (piano, mallets, organ, guitar,
bass, strings, percussion, voice, brass, winds, synth). Training notes: three of every four
instruments of each family, at three pitches spread over each instrument's range (velocity 90).
Held-out notes, never used to build or tune anything: the same instruments at pitches between
those (velocity 75), and the fourth instrument of each family at any of its pitches.

For each feature set a 4x4 map (fixed, so tiny clusters cannot make purity trivial) is built on
the training notes; each cluster is labelled by the family most of its training notes belong to;
each held-out note goes to its best-matching node. Reported on the held-out notes: purity (the
share whose cluster's label is their family) and adjusted mutual information between families
and clusters (scikit-learn). Also on the training notes, for reference.

Ceiling, same run: how well the same features tell families apart when the labels are given. A
classifier (logistic regression; a random forest) is fitted on the training notes' families
and scored on the held-out notes. A map sees no labels, so its purity is unlikely to pass
this: when the ceiling itself is under a purity target, the features are what falls short.

Run: ``python benchmarks/bench_som_families.py [--seeds 3]`` (needs fluidsynth, scikit-learn).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import fluidr3_corpus as fr  # noqa: E402

from livelatent.corpus.feature_sets import feature_set  # noqa: E402
from livelatent.corpus.features import extract_features, fit_scaler  # noqa: E402
from livelatent.corpus.som import _best_matching, _train  # noqa: E402

GRID = (4, 4)
MELODIC = {name: spec for name, spec in fr.INSTRUMENTS.items()}


def notes() -> tuple[list[dict], list[dict]]:
    by_family: dict[str, list[str]] = {}
    for name, (_, family, _, _) in MELODIC.items():
        by_family.setdefault(family, []).append(name)
    train, held = [], []
    for family, names in sorted(by_family.items()):
        for i, name in enumerate(sorted(names)):
            program, _, low, high = MELODIC[name]
            low, high = max(low, fr.REGISTER[0]), min(high, fr.REGISTER[1])
            pitches = np.linspace(low + 2, high - 2, 7).round().astype(int)
            kept_out = i % 4 == 3                      # the fourth instrument of each family
            for k, pitch in enumerate(pitches):
                note = {"instrument": name, "family": family, "program": program, "pitch": int(pitch),
                        "channel": 0}
                if kept_out:
                    held.append({**note, "velocity": 75})
                elif k % 2 == 0 and k != 6:
                    train.append({**note, "velocity": 90})
                elif k % 2 == 1:
                    held.append({**note, "velocity": 75})
    return train, held


def render(notes_: list[dict], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    audio = fr.render_events([fr._note_events(n) for n in notes_], fr.SLOT_SECONDS)
    paths = []
    for i, (note, slot) in enumerate(zip(notes_, audio)):
        clip = fr._normalise(slot[:int(fr.NOTE_SECONDS * fr.SAMPLE_RATE)])
        path = folder / f"{i:04d}-{note['instrument']}-{note['pitch']}.wav"
        if clip is not None:
            sf.write(path, clip, fr.SAMPLE_RATE)
            paths.append(path)
        note["path"] = path
    return paths


def score(labels: list[str], clusters: np.ndarray, cluster_labels: dict) -> tuple[float, float]:
    from sklearn.metrics import adjusted_mutual_info_score
    purity = float(np.mean([cluster_labels.get(int(c)) == label for c, label in zip(clusters, labels)]))
    return purity, float(adjusted_mutual_info_score(labels, clusters))


def supervised_ceiling(train_values, train_labels, held_values, held_labels) -> tuple[float, float]:
    """Held-out accuracy of a logistic regression and of a random forest fitted on the training
    notes' families (standardised features, duration left out)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    scaler = StandardScaler().fit(train_values[:, 1:])
    fitted, held = scaler.transform(train_values[:, 1:]), scaler.transform(held_values[:, 1:])
    scores = []
    for classifier in (LogisticRegression(max_iter=5000), RandomForestClassifier(500, random_state=0)):
        classifier.fit(fitted, train_labels)
        scores.append(float(np.mean(classifier.predict(held) == np.asarray(held_labels))))
    return scores[0], scores[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    train, held = notes()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.time()
        render(train, tmp / "train")
        render(held, tmp / "held")
        print(f"{len(train)} training notes, {len(held)} held-out notes, "
              f"{len({n['family'] for n in train})} families (rendered in {time.time() - started:.0f} s)")
        print("| features | held-out purity | held-out AMI | training purity | training AMI | s/file "
              "| ceiling: logistic / forest |")
        print("|---|---|---|---|---|---|---|")
        for name in ("bag", "timbre", "model"):
            chosen = feature_set(name)
            began = time.time()
            table_train = extract_features([n["path"] for n in train if n["path"].exists()], progress=False,
                                           features=chosen)
            table_held = extract_features([n["path"] for n in held if n["path"].exists()], progress=False,
                                          features=chosen)
            per_file = (time.time() - began) / (len(table_train) + len(table_held))
            family = {n["path"]: n["family"] for n in train + held}
            train_labels = [family[p] for p in table_train.paths]
            results = []
            for seed in range(args.seeds):
                scaler = fit_scaler(table_train.values, features=chosen)
                points = scaler.transform(table_train.values)
                nodes = _train(points, GRID, seed=seed, iterations=max(3000, 30 * len(points)))
                best_train, _ = _best_matching(points, nodes)
                best_held, _ = _best_matching(scaler.transform(table_held.values), nodes)
                cluster_labels = {c: Counter(l for b, l in zip(best_train, train_labels) if b == c).most_common(1)[0][0]
                                  for c in set(best_train.tolist())}
                results.append(score([family[p] for p in table_held.paths], best_held, cluster_labels)
                               + score(train_labels, best_train, cluster_labels))
            mean = np.mean(results, axis=0)
            ceiling = supervised_ceiling(table_train.values, train_labels, table_held.values,
                                         [family[p] for p in table_held.paths])
            print(f"| {name} | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.3f} | {mean[3]:.3f} "
                  f"| {per_file * 1e3:.1f} ms | {ceiling[0]:.2f} / {ceiling[1]:.2f} |")


if __name__ == "__main__":
    main()
