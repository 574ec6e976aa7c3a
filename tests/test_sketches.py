"""Drawings as input: features learned from a folder of sketches map new drawings to their
kind's sound; a drawn line reads as a curve; bad images are refused by name."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from drawings import KINDS, draw_many
from livelatent import Engine, ParameterError, sine, source
from livelatent.voice import curve_values
from livelatent.mapping.mapping import Mapping, target_point
from livelatent.mapping.sketches import drawn, learn_features
from pathutil import PACK


def held_out_accuracy(tmp_path, kind="mlp", dims=32):
    train = draw_many(tmp_path / "drawings", 8, seed=1)
    held = draw_many(tmp_path / "held", 12, seed=2)
    sketches = learn_features(tmp_path / "drawings", dims=dims)
    engine = Engine()
    sounds = {k: source(PACK / f"{n}.flac") for k, n in zip(KINDS, ("flute", "cello", "choir", "harp"))}
    m = Mapping(engine, sketches, name="sketches", kind=kind)
    for k in KINDS:
        for path in train[k][:6]:
            m.add(sounds[k], image=path)
    m.train(wait=True)
    targets = {k: target_point(sounds[k], engine.codec) for k in KINDS}
    right = {}
    for k in KINDS:
        nearest = [min(KINDS, key=lambda q: np.linalg.norm(np.concatenate(m.predict(sketches.vector(p)))
                                                          - targets[q])) for p in held[k]]
        right[k] = float(np.mean([n == k for n in nearest]))
    return right


def test_held_out_drawings_map_to_their_kinds_sound(tmp_path):
    right = held_out_accuracy(tmp_path)
    assert np.mean(list(right.values())) >= 0.8, right


def test_a_drawn_line_is_a_ramp_and_a_drawn_sine_is_close_to_sine(tmp_path):
    image = Image.new("RGB", (400, 200), "white")
    pen = ImageDraw.Draw(image)
    pen.line([(20, 180), (380, 20)], fill="black", width=5)
    image.save(tmp_path / "line.png")
    ramp_like = drawn(tmp_path / "line.png", lo=0, hi=1, beats=4)
    t = np.linspace(0, 4, 41)
    assert np.abs(curve_values(ramp_like, t) - t / 4 * (160 / 199) - 20 / 199).max() < 0.03
    image = Image.new("L", (600, 300), 0)                    # light ink on dark paper too
    pen = ImageDraw.Draw(image)
    x = np.linspace(0, 1, 300)
    pen.line(list(zip(20 + 560 * x, 280 - 260 * (0.5 - 0.5 * np.cos(2 * np.pi * x)))), fill=255, width=4)
    image.save(tmp_path / "sine.png")
    drawn_sine = drawn(tmp_path / "sine.png", beats=1, points=64)
    t = np.linspace(0, 1, 101)
    assert np.abs(curve_values(drawn_sine, t) - curve_values(sine(1), t)).max() < 0.08
    assert "env(" in repr(drawn_sine)                        # code: journaled with its points


def test_bad_drawings_are_refused_by_name(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ParameterError, match="at least two"):
        learn_features(tmp_path / "empty")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ParameterError, match="broken.png: not an image"):
        drawn(tmp_path / "broken.png")
    Image.new("L", (50, 50), 255).save(tmp_path / "blank.png")
    with pytest.raises(ParameterError, match="blank.png: nothing is drawn"):
        drawn(tmp_path / "blank.png")
