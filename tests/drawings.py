"""Drawings for the sketch tests: lines, circles, spirals and scribbles, drawn with Pillow at a
random position, scale and stroke width (and seeded, so each test run sees the same ones)."""

import numpy as np
from PIL import Image, ImageDraw

KINDS = ("line", "circle", "spiral", "scribble")
CANVAS = 128


def draw(kind: str, rng: np.random.Generator, path) -> None:
    image = Image.new("L", (CANVAS, CANVAS), 255)
    pen = ImageDraw.Draw(image)
    size = rng.uniform(0.35, 0.8) * CANVAS
    cx, cy = rng.uniform(size / 2 + 4, CANVAS - size / 2 - 4, 2)
    width = int(rng.integers(1, 5))
    if kind == "line":
        angle = rng.uniform(0, np.pi)
        dx, dy = np.cos(angle) * size / 2, np.sin(angle) * size / 2
        pen.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=0, width=width)
    elif kind == "circle":
        r = size / 2
        pen.ellipse([cx - r, cy - r, cx + r, cy + r], outline=0, width=width)
    elif kind == "spiral":
        t = np.linspace(0, 3 * 2 * np.pi, 200)
        r = size / 2 * t / t[-1]
        turn = rng.uniform(0, 2 * np.pi)
        pen.line(list(zip(cx + r * np.cos(t + turn), cy + r * np.sin(t + turn))), fill=0, width=width)
    else:
        points = np.cumsum(rng.normal(0, size / 5, (14, 2)), axis=0)
        points = points - points.mean(axis=0)
        points *= size / 2 / max(1e-6, np.abs(points).max())
        pen.line([(cx + x, cy + y) for x, y in points], fill=0, width=width)
    image.save(path)


def draw_many(folder, count: int, seed: int) -> dict:
    """``count`` drawings of each kind in ``folder``: {kind: [paths]}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    made = {kind: [] for kind in KINDS}
    for i in range(count):
        for kind in KINDS:
            path = folder / f"{kind}-{seed}-{i}.png"
            draw(kind, rng, path)
            made[kind].append(path)
    return made


def draw_lines(folder, angles, seed) -> list:
    """Straight lines at ``angles`` (degrees), anywhere, any length and stroke width."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, angle in enumerate(angles):
        image = Image.new("L", (CANVAS, CANVAS), 255)
        half = rng.uniform(20, 55)
        cx, cy = rng.uniform(half + 4, CANVAS - 4 - half, 2)
        dx, dy = np.cos(np.radians(angle)) * half, np.sin(np.radians(angle)) * half
        ImageDraw.Draw(image).line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=0,
                                   width=int(rng.integers(1, 5)))
        paths.append(folder / f"line-{seed}-{i}.png")
        image.save(paths[-1])
    return paths
