"""`livelatent play/render/demo` from the command line, and their one-line errors."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, env=None, timeout=180):
    return subprocess.run([sys.executable, "-m", "livelatent.cli", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_render_a_pattern_with_stems(tmp_path):
    out = tmp_path / "walk.wav"
    done = cli("render", "patterns/stepwise_walk.py", "-o", out, "--seconds", "3", "--stems", "--seed", "7")
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}" in done.stdout
    audio, rate = sf.read(out)
    assert rate == 44100 and audio.shape == (3 * 44100, 2)
    assert 0.01 < np.abs(audio).max() <= 1.0
    stem, _ = sf.read(tmp_path / "walk.walk.wav")
    assert stem.shape == audio.shape


def test_every_shipped_pattern_renders(tmp_path):
    for pattern in sorted((ROOT / "patterns").glob("*.py")):
        done = cli("render", pattern, "-o", tmp_path / f"{pattern.stem}.flac", "--seconds", "1")
        assert done.returncode == 0, f"{pattern.name}: {done.stderr}"


def test_script_errors_are_one_line_with_file_and_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("x = 1\nvoice(flute, cello, strategy='mesa')\n")
    done = cli("render", broken, "-o", tmp_path / "x.wav", "--seconds", "1")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"{broken}:2: strategy='mesa' must be one of" in done.stderr
    typo = tmp_path / "typo.py"
    typo.write_text("voice(flute, cello\n")
    done = cli("render", typo, "-o", tmp_path / "x.wav", "--seconds", "1")
    assert done.returncode == 2 and "syntax error" in done.stderr and "Traceback" not in done.stderr
    done = cli("render", tmp_path / "absent.py", "-o", tmp_path / "x.wav", "--seconds", "1")
    assert done.returncode == 2 and "no such script" in done.stderr
    done = cli("render", "/dev/null", "-o", tmp_path / "x.wav", "--seconds", "1")
    assert done.returncode == 2 and "/dev/null is not a script file" in done.stderr
    (tmp_path / "gig").mkdir()                  # a set's journal given instead of its folder:
    for name in ("journal.jsonl", "state.json"):  # it ran as Python ("NameError: false")
        (tmp_path / "gig" / name).write_text('{"v": 2, "landed": false}\n')
        done = cli("render", tmp_path / "gig" / name, "-o", tmp_path / "x.wav", "--seconds", "1")
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert f"give the set's folder, e.g. livelatent render {tmp_path / 'gig'}" in done.stderr


def test_looping_voices_need_seconds(tmp_path):
    done = cli("render", "patterns/meso_drift.py", "-o", tmp_path / "x.wav")
    assert done.returncode == 2 and "give seconds" in done.stderr


def test_play_with_a_wrong_device_lists_the_devices(jack_server):
    done = cli("play", "patterns/meso_drift.py", "--seconds", "1", "--device", "no such card")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "no output device matches 'no such card'" in done.stderr and "system" in done.stderr


def test_demo_renders_to_a_file_when_there_is_no_audio_device(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "JACK_DEFAULT_SERVER": "nobody-here",
           "JACK_NO_START_SERVER": "1", "LIVELATENT_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "demo.wav"
    done = cli("demo", "--seconds", "4", "-o", out, env=env)
    assert done.returncode == 0, done.stderr
    assert f"rendered the demo to {out}" in done.stdout
    audio, rate = sf.read(out)
    assert audio.shape == (4 * 44100, 2) and np.abs(audio).max() > 0.01


def test_demo_on_a_device_asked_for_by_name_says_what_is_wrong_instead_of_rendering(jack_server,
                                                                                      tmp_path):
    # a typo in --device on a rig with a sound card must not quietly become a file
    out = tmp_path / "demo.wav"
    done = cli("demo", "--seconds", "1", "--device", "no such card", "-o", out)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "no output device matches 'no such card'" in done.stderr and not out.exists()


def test_play_and_demo_check_seconds_before_anything_plays(tmp_path):
    # the demo used to check --seconds only when it fell back to a render: with a device,
    # nan played forever and -1 played nothing, both without a word
    out = tmp_path / "demo.wav"
    for seconds in ("nan", "-1", "inf", "0"):
        said = "must be a finite number of seconds more than 0"
        for command in (("demo", "-o", out), ("play", "patterns/meso_drift.py")):
            done = cli(*command, "--seconds", seconds, "--device", "system")
            assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
            told = done.stderr + done.stdout
            assert said in done.stderr and "playing" not in told and "instead" not in told
    assert not out.exists()


def test_seconds_shorter_than_a_sample_are_refused_not_written_as_an_empty_file(tmp_path):
    # demo --seconds 1e-9 wrote a file of no samples and said "rendered the demo (1e-09 s)"
    out = tmp_path / "demo.wav"
    for command in (("demo", "-o", out), ("play", "patterns/meso_drift.py")):
        done = cli(*command, "--seconds", "1e-9", "--device", "system")
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert "--seconds 1e-09 is less than one sample at 44100 Hz" in done.stderr
    assert not out.exists()


def test_the_demo_on_a_model_without_its_sources_says_what_it_needs(tmp_path):
    # "demo.py:2: NameError: name 'flute' is not defined", as if the demo were broken
    import shutil
    from livelatent.config import DEFAULT_MODEL_DIR
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(DEFAULT_MODEL_DIR / "model.safetensors", bare)
    done = cli("demo", "--model", bare, "--seconds", "0.5", "-o", tmp_path / "d.wav")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "the demo plays the default pack's sources" in done.stderr and "flute" in done.stderr
    (bare / "sources").mkdir()                          # a pack of its own, with its own demo
    shutil.copy(DEFAULT_MODEL_DIR / "sources" / "flute.flac", bare / "sources")
    (bare / "demo.py").write_text("voice(flute, flute, curve=0.5)\n")
    done = cli("demo", "--model", bare, "--seconds", "0.5", "-o", tmp_path / "d.wav")
    assert done.returncode == 0, done.stderr
    # its weights load as data only, its demo is code: said before it runs
    assert f"playing {bare / 'demo.py'}, the pack's own demo: it is Python code" in done.stderr + done.stdout


def test_a_script_that_calls_exit_is_said_and_a_bad_output_name_before_the_script_runs(tmp_path):
    # exit(3) ended render with rc 3, no file and no word; exit(0) with rc 0, "success"
    script = tmp_path / "ends.py"
    script.write_text("import sys\nvoice(flute, cello)\nsys.exit(0)\n")
    for command in (("render", script, "-o", tmp_path / "o.wav", "--seconds", "1"),
                    ("play", script, "--seconds", "1", "--device", "system")):
        done = cli(*command)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert "the script called exit(0): nothing is played or rendered" in done.stderr
    assert not (tmp_path / "o.wav").exists()
    slow = tmp_path / "slow.py"                        # the name is checked before the work
    slow.write_text("import time\ntime.sleep(30)\n")
    done = cli("render", slow, "-o", tmp_path / "o.mp3", "--seconds", "1")
    assert done.returncode == 2 and "cannot render to o.mp3: use a .wav or .flac" in done.stderr


def test_options_before_the_command_are_pointed_after_it(tmp_path, capsys):
    # "livelatent -o x som DIR" said "invalid choice: 'x'", and "livelatent --seconds 3 demo"
    # "unrecognized arguments": options that only went after the command
    from livelatent.cli import main
    assert main(["-o", "x y", "som", str(tmp_path)]) == 2
    assert f"options go after the command: livelatent som -o 'x y' {tmp_path}" in capsys.readouterr().err
    assert main(["-o", "map", "som", str(tmp_path)]) == 2          # "map": -o's value
    assert f"livelatent som -o map {tmp_path}" in capsys.readouterr().err
    assert main(["--seconds", "3", "demo"]) == 2
    assert "options go after the command: livelatent demo --seconds 3" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_script_nested_too_deeply_to_compile_is_one_line_not_a_traceback(tmp_path):
    # the pattern watcher caught it on its own; a script or a cell, compiled by the shared
    # run_code, was Python's RecursionError traceback
    deep = tmp_path / "deep.py"
    deep.write_text("x = " + "+".join(["1"] * 200_000) + "\n")
    done = cli("render", deep, "-o", tmp_path / "deep.wav", "--seconds", "1")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-500:]
    assert "nested too deeply for Python" in done.stderr


def test_a_script_is_read_as_python_reads_it_whatever_the_locale(tmp_path):
    # read as locale text, a script in the encoding its coding line names (or in UTF-8, with
    # none) failed or read wrong names under a locale of another encoding
    import os
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    check = "if name != 'caf\\u00e9':\n    raise ValueError('read as ' + ascii(name))\n"
    latin = tmp_path / "latin.py"
    latin.write_bytes("# -*- coding: latin-1 -*-\nname = 'café'\n".encode("latin-1") + check.encode())
    plain = tmp_path / "plain.py"
    plain.write_bytes("name = 'café'\n".encode("utf-8") + check.encode())
    for script in (latin, plain):
        done = cli("render", script, "-o", tmp_path / f"{script.stem}.wav", "--seconds", "1", env=env)
        assert done.returncode == 0, done.stderr[-500:]
    unknown = tmp_path / "unknown.py"
    unknown.write_text("# -*- coding: klingon -*-\nx = 1\n")
    done = cli("render", unknown, "-o", tmp_path / "unknown.wav", "--seconds", "1", env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-500:]
    assert "cannot read script" in done.stderr


def test_a_render_of_no_sample_is_refused_as_play_and_demo_refuse_it(tmp_path):
    # --seconds 0 wrote an empty file
    done = cli("render", "patterns/stepwise_walk.py", "-o", tmp_path / "none.wav", "--seconds", "0")
    assert done.returncode == 2 and "nothing would play" in done.stderr, done.stderr[-300:]
    assert not (tmp_path / "none.wav").exists()
