"""Every example in README.md runs as written.

The ``python`` blocks run in order in one namespace bound to an offline engine with 8 outputs
(the REPL's names: the pack's sources, ``voice``, ``load_som``...); the ``sh`` blocks run line by line in a
shell, in the same folder, against a dummy JACK server (``--device jack`` finds it). The folder
holds what the examples name: ``patterns/`` (a copy of the repository's), ``samples/`` (a small
synthetic corpus), two takes at other rates, and the sets ``sets/mygig`` and ``sets/theirs``
made by a short session. ``console`` blocks are shown, not run: installation steps (the CI runs
``./run test`` itself) and the interactive REPL (tests/test_repl_*.py drive it).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from livelatent import Engine
from livelatent.session.session import Session
from replutil import ROOT

README = ROOT / "README.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)


def blocks() -> list[tuple[str, str]]:
    """(language, code) of each fenced block, in order."""
    return [(m.group(1), m.group(2)) for m in _BLOCK.finditer(README.read_text())]


def test_the_readme_marks_every_block_as_run_or_shown():
    languages = {language for language, _ in blocks()}
    assert languages <= {"python", "sh", "console"}, languages
    assert any(language == "sh" for language, _ in blocks())


def _corpus(folder: Path) -> None:
    """Twelve short sounds unlike each other: tones, chords, noise bursts, at two rates."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        rate = 44100 if i % 3 else 22050
        t = np.arange(int(rate * (0.6 + 0.1 * i))) / rate
        if i % 4 == 0:
            audio = rng.normal(0, 0.3, t.size) * np.exp(-t * (2 + i))
        else:
            audio = sum(0.3 / k * np.sin(2 * np.pi * 110 * (1 + i % 5) * k * t) for k in range(1, 1 + i % 4))
            audio = audio * np.minimum(1, t * 20)
        sf.write(folder / f"sound{i:02d}.wav", audio.astype(np.float32), rate)


def _sets(folder: Path) -> None:
    """``sets/mygig`` and ``sets/theirs``: a few seconds of a session each."""
    for name in ("mygig", "theirs"):
        with Engine(seed=1) as engine:
            session = Session(engine, sets_root=folder / "sets", set_name=name)
            session.run_cell("v = voice(flute, cello, curve=sine(2), name='drift')")
            engine.render_array(2.0)
            session.run_cell("v.curve = tri(1)")
            engine.render_array(1.0)
            session.end()
            session.save()
            session.close()


@pytest.fixture
def stage(tmp_path):
    """The folder the examples run in."""
    shutil.copytree(ROOT / "patterns", tmp_path / "patterns")
    _corpus(tmp_path / "samples")
    rng = np.random.default_rng(1)
    sf.write(tmp_path / "take1.wav", rng.normal(0, 0.2, (48000, 2)).astype(np.float32), 48000)
    sf.write(tmp_path / "take2.wav", 0.3 * np.sin(np.arange(22050) / 10).astype(np.float32), 22050)
    _sets(tmp_path)
    return tmp_path


def test_every_example_in_the_readme_runs(stage, jack_server, monkeypatch):
    monkeypatch.chdir(stage)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    ran = {"python": 0, "sh": 0, "console": 0}
    with Engine(seed=0, channels=8) as engine:       # as `livelatent live --channels 8`
        session = Session(engine, sets_root=stage / "session-sets")
        for language, code in blocks():
            if language == "python":
                session.run_cell(code)
            elif language == "sh":
                for line in code.splitlines():
                    command = line.split("  #")[0].strip()
                    if not command or command.startswith("./run"):
                        continue          # ./run test is what runs this; ./run demo execs `livelatent demo`
                    done = subprocess.run(["bash", "-c", command], cwd=stage, env=env,
                                          capture_output=True, text=True, timeout=600)
                    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            ran[language] += 1
        heard = engine.render_array(2.0)
        session.close()
    assert ran["python"] >= 2 and ran["sh"] >= 3, ran
    assert np.abs(heard).max() > 0.01
    for made in ("stretch.wav", "mygig.wav", "t.wav", "m.wav", "models/mine/card.md", "maps/mine"):
        assert (stage / made).exists(), made
    assert sf.info(str(stage / "m.wav")).samplerate == 48000
