"""Drawings as input: features learned from a folder of sketches map new drawings to their
kind's sound; a drawn line reads as a curve; bad images are refused by name."""

import re
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from drawings import KINDS, draw_lines, draw_many
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
    for nothing in (None, 3):                   # (PIL's AttributeError: no attribute 'read')
        with pytest.raises(ParameterError, match="give an image's file name"):
            drawn(nothing)

    # a thin line on a large canvas rounded away at 32x32: NaN features (the voice froze), and in
    # a folder an SVD that did not converge
    from livelatent.mapping.sketches import read_drawing
    thin = Image.new("L", (3000, 3000), 255)
    ImageDraw.Draw(thin).line([(0, 0), (2999, 2999)], fill=0)
    thin.save(tmp_path / "thin.png")
    with pytest.raises(ParameterError, match="thin.png: its lines are too thin for its size"):
        read_drawing(tmp_path / "thin.png")
    # the same drawing three times: one dimension, scaled by a spread of about 0 (1e13)
    (tmp_path / "alike").mkdir()
    for name in ("a", "b", "c"):
        draw = Image.new("L", (64, 64), 255)
        ImageDraw.Draw(draw).line([(5, 5), (60, 40)], fill=0, width=3)
        draw.save(tmp_path / "alike" / f"{name}.png")
    with pytest.raises(ParameterError, match="its drawings are all alike"):
        learn_features(tmp_path / "alike", dims=2)
    with pytest.raises(ParameterError, match="give a folder of drawings"):      # (a TypeError)
        learn_features(None)
    # 16-bit levels were clipped to 255: a line at 20000 on paper at 65535 read as blank
    deep = np.full((64, 64), 65535, np.uint16)
    deep[10:50, 30] = 20000
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I;16")
    Image.fromarray((deep // 257).astype(np.uint8)).save(tmp_path / "eight.png")   # the same, 8-bit
    Image.fromarray(deep.astype(np.int32)).save(tmp_path / "wide.tif")   # (older Pillows: mode "I")
    for name in ("deep.png", "wide.tif"):
        for part, eight_part in zip(read_drawing(tmp_path / name), read_drawing(tmp_path / "eight.png")):
            np.testing.assert_allclose(part, eight_part, atol=0.02)


@pytest.mark.parametrize("options, refused", [
    (dict(lo="a"), "lo='a'"), (dict(hi=None), "hi=None"), (dict(lo=True), "lo=True"),
    (dict(lo=1e308, hi=-1e308), "two different numbers"), (dict(beats=True), "beats=True"),
    (dict(beats="4"), "beats='4'"), (dict(points="a"), "points='a'"), (dict(points=2.5), "points=2.5"),
    (dict(points=True), "points=True"), (dict(points=0), "from 2 to 4096"), (dict(points=-5), "points=-5"),
    (dict(points=10 ** 7), "from 2 to 4096")])
def test_drawn_refuses_bad_numbers_clearly_and_at_once(tmp_path, options, refused):
    image = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(image).line([(5, 40), (60, 20)], fill=0, width=3)
    image.save(tmp_path / "line.png")
    started = time.monotonic()
    with pytest.raises(ParameterError, match=re.escape(refused)):
        drawn(tmp_path / "line.png", **options)
    assert time.monotonic() - started < 1.0
    curve = drawn(tmp_path / "line.png", lo=np.float32(-1), hi=np.int64(2), beats=np.float64(2), points=4096)
    assert np.isfinite(curve_values(curve, np.linspace(0, 2, 9))).all()


def test_an_autoencoder_is_kept_when_it_measures_better_and_plays_without_torch(tmp_path):
    """features(kind="image-ae"): on lines at every angle (one shape that turns: a curved family
    of images) the autoencoder reconstructs held-out drawings better than principal components
    and is kept; its numpy encoder is torch's; a mapping reads its codes (horizontal lines to
    one sound, vertical to another, held-out lines right); a saved set's mapping encodes a new
    drawing with torch unimportable. On the mixed drawings, it measures worse and the
    principal components are kept, saying so."""
    import json
    import subprocess
    import sys
    import torch
    import torch.nn.functional as F
    from livelatent.mapping.image_ae import encode
    from livelatent.mapping.sketches import EncodedFeatures, _square
    from livelatent.session.session import Session
    angles = np.random.default_rng(3).uniform(0, 180, 40)
    draw_lines(tmp_path / "lines", angles, seed=1)
    made = learn_features(tmp_path / "lines", dims=4, kind="image-ae")
    assert isinstance(made, EncodedFeatures), made
    assert made.measured["image-ae"] < made.measured["pca"] and made.measured["held_out"] == 8
    images = np.stack([_square(p) for p in sorted((tmp_path / "lines").iterdir())[:5]])
    w = {k: torch.from_numpy(v) for k, v in made.weights.items()}
    x = torch.from_numpy(images[:, None] - made.weights["input.mean"])
    x = F.elu(F.conv2d(F.elu(F.conv2d(x, w["conv1.weight"], w["conv1.bias"], 2, 1)),
                       w["conv2.weight"], w["conv2.bias"], 2, 1))
    np.testing.assert_allclose(encode(made.weights, images),
                               F.linear(x.flatten(1), w["code.weight"], w["code.bias"]).numpy(), atol=1e-5)

    flat, upright = draw_lines(tmp_path / "flat", [5, 172, 10, 168, 2, 176], 2), \
        draw_lines(tmp_path / "upright", [88, 95, 80, 100, 85, 92], 3)
    held = {"flat": draw_lines(tmp_path / "held", [7, 175, 3, 170, 12, 178], 4),
            "upright": draw_lines(tmp_path / "held", [90, 83, 97, 86, 93, 99], 5)}
    with Engine(seed=1) as engine:
        session = Session(engine, sets_root=tmp_path / "sets", set_name="drawn")
        session.namespace["made"] = made
        session.run_cell("m = mapping(inputs=made, name='lines', kind='knn')\n"
                         + "".join(f"m.add(flute, image={str(p)!r})\n" for p in flat)
                         + "".join(f"m.add(cello, image={str(p)!r})\n" for p in upright)
                         + "m.train(wait=True)\nsave('drawn')")
        m = session.namespace["m"]
        targets = {"flat": target_point(session.namespace["flute"], engine.codec),
                   "upright": target_point(session.namespace["cello"], engine.codec)}
        right = [min(targets, key=lambda t: np.linalg.norm(np.concatenate(m.predict(made.vector(p)))
                                                           - targets[t])) == kind
                 for kind, paths in held.items() for p in paths]
        assert np.mean(right) >= 0.8, right
        expected = made.vector(held["flat"][0])
        session.close()
    code = f"""
import sys, json
sys.modules["torch"] = None                     # playing never imports torch
from livelatent import Engine
from livelatent.mapping.stored import load_mappings
from livelatent.session.records import rebuild_curve
names = {{}}
load_mappings(Engine(), {str(tmp_path / 'sets' / 'drawn')!r}, names, rebuild_curve=rebuild_curve)
print(json.dumps(names["m"].features.vector({str(held['flat'][0])!r}).tolist()))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    np.testing.assert_allclose(json.loads(out.stdout.strip().splitlines()[-1]), expected, atol=1e-9)

    draw_many(tmp_path / "mixed", 8, seed=1)
    kept = learn_features(tmp_path / "mixed", dims=8, kind="image-ae")
    assert not isinstance(kept, EncodedFeatures) and kept.measured["pca"] <= kept.measured["image-ae"]
    assert "autoencoder measured worse" in repr(kept)
    with pytest.raises(ParameterError, match="at least 10"):
        learn_features(tmp_path / "flat", dims=4, kind="image-ae")
