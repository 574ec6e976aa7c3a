"""livelatent installed as a performer would: no torch to play, a wheel that works anywhere.

No environment is built inside the tests: pip reports what it would install, a wheel is built
and unpacked into a folder of its own, and torch is made unimportable in a subprocess.
"""

import json
import os
import subprocess
import sys

import numpy as np
import soundfile as sf

from livelatent import __version__
from replutil import ROOT

NO_TORCH = "import sys; sys.modules['torch'] = None\n"     # `import torch` raises ImportError


def python(code: str, *, cwd, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def cli(*args, cwd, no_torch=True) -> subprocess.CompletedProcess:
    code = (NO_TORCH if no_torch else "import sys\n") + \
        "from livelatent.cli import main\nsys.exit(main(sys.argv[1:]))"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_plain_install_brings_no_torch(tmp_path):
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "pip", "install", str(ROOT), "--dry-run", "--quiet",
                           "--no-deps", "--ignore-installed", "--no-build-isolation", "--report",
                           str(report)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (item,) = json.loads(report.read_text())["install"]
    requires = item["metadata"]["requires_dist"]
    torch = [r for r in requires if r.split(";")[0].strip().lower().startswith("torch")]
    assert torch and all("extra == \"train\"" in r or "extra == 'train'" in r for r in torch), requires
    plain = [r.split(";")[0].strip() for r in requires if "extra ==" not in r]
    assert plain and not any(r.lower().startswith("torch") for r in plain)


def test_playing_rendering_sets_and_maps_need_no_torch(tmp_path):
    demo = cli("demo", "--seconds", "2", "--device", "no such device", "-o", "demo.wav", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    audio, _ = sf.read(tmp_path / "demo.wav")
    assert np.abs(audio).max() > 0.01
    render = cli("render", ROOT / "patterns" / "meso_drift.py", "-o", "drift.wav", "--seconds", "2",
                 cwd=tmp_path)
    assert render.returncode == 0, render.stderr
    made = python(NO_TORCH + (
        "from livelatent import Engine\nfrom livelatent.session.session import Session\n"
        "with Engine(seed=0) as engine:\n"
        "    session = Session(engine, sets_root='sets', set_name='gig')\n"
        "    session.run_cell('v = voice(flute, cello, curve=sine(2))')\n"
        "    engine.render_array(1.0)\n"
        "    session.end(); session.save(); session.close()\n"), cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert made.returncode == 0, made.stderr
    replayed = cli("render", tmp_path / "sets" / "gig", "-o", "gig.wav", cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    samples = tmp_path / "samples"
    samples.mkdir()
    for i in range(4):
        t = np.arange(22050) / 44100
        sf.write(samples / f"s{i}.wav", (0.3 * np.sin(2 * np.pi * 110 * (i + 1) * t)).astype(np.float32), 44100)
    som = cli("som", samples, "-o", "map", "--grid", "2x2", cwd=tmp_path)
    assert som.returncode == 0, som.stderr
    assert (tmp_path / "map").is_dir()


def test_a_command_that_needs_torch_says_so_in_one_line(tmp_path):
    done = cli("train", tmp_path, "-o", tmp_path / "model", cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs torch" in lines[0] and "livelatent[train]" in lines[0], done.stderr


def test_a_wheel_installed_elsewhere_finds_its_pack_and_plays_the_demo(tmp_path):
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                            "--no-build-isolation", "--quiet", "-w", str(wheels)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("livelatent-*.whl")
    size_mb = wheel.stat().st_size / 1e6
    assert size_mb < 30, size_mb                     # the default pack is most of it
    site = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
                                "--target", str(site), str(wheel)], capture_output=True, text=True,
                               timeout=300)
    assert installed.returncode == 0, installed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = (f"import sys; sys.path.insert(0, {str(site)!r})\n"
            "import livelatent\n"
            f"assert livelatent.__file__.startswith({str(site)!r}), livelatent.__file__\n"
            "from livelatent.cli import main\n"
            "assert main(['info']) == 0\n"
            "sys.exit(main(['demo', '--seconds', '2', '--device', 'no such device', '-o', 'demo.wav']))")
    done = python(code, cwd=elsewhere, env=env)
    assert done.returncode == 0, done.stderr
    assert "default model pack" in done.stdout
    audio, _ = sf.read(elsewhere / "demo.wav")
    assert np.abs(audio).max() > 0.01


def test_version_and_doctor(tmp_path):
    version = cli("--version", cwd=tmp_path, no_torch=False)
    assert version.returncode == 0 and version.stdout.strip() == f"livelatent {__version__}"
    doctor = cli("doctor", cwd=tmp_path)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    report = doctor.stdout
    for word in ("PortAudio", "JACK", "BLAS", "torch", "default model pack"):
        assert word in report, report
    assert "torch: not installed" in report          # this run blocked it
