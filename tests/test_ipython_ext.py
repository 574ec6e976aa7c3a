"""``%load_ext livelatent`` in a plain Jupyter kernel (ipykernel), the way an editor would send code.

The kernel runs in its own process and plays through the test's dummy JACK server; a JACK
client records what it played.
"""

import os
import queue

import numpy as np
import pytest

import jackutil
from livelatent import tri
from livelatent.session.performance import read_journal
from livelatent.session.sets import render_set
from replutil import ROOT

jupyter_client = pytest.importorskip("jupyter_client", reason="pip install jupyter_client ipykernel")
pytest.importorskip("ipykernel", reason="pip install ipykernel")


class Kernel:
    """A kernel and a client; :meth:`run` executes a cell and collects what it printed."""

    def __init__(self, env):
        from jupyter_client.manager import start_new_kernel
        self.manager, self.client = start_new_kernel(kernel_name="python3", cwd=str(ROOT),
                                                     env=env, startup_timeout=120)

    def run(self, code: str, timeout: float = 60.0) -> dict:
        msg_id = self.client.execute(code)
        out = {"stdout": "", "stderr": "", "result": None, "error": None}
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"no answer to {code!r} in {timeout} s: {out}") from None
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out[content["name"]] += content["text"]
            elif kind == "execute_result":
                out["result"] = content["data"].get("text/plain")
            elif kind == "error":
                out["error"] = content
            elif kind == "status" and content["execution_state"] == "idle":
                return out

    def close(self):
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=False)


@pytest.fixture
def kernel_env(tmp_path):
    env = dict(os.environ)       # JACK_DEFAULT_SERVER names the test's server (jack_server)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["LIVELATENT_SET"] = str(tmp_path / "sets" / "notebook")
    return env


def test_load_ext_a_voice_and_a_swap_in_a_plain_kernel(jack_server, kernel_env):
    kernel_env["LIVELATENT_DEVICE"] = "system"
    kernel_env["LIVELATENT_BLOCKSIZE"] = "1024"      # the JACK period (see test_repl_e2e.py)
    kernel = Kernel(kernel_env)
    try:
        loaded = kernel.run("%load_ext livelatent")
        assert "livelatent: live on system" in loaded["stdout"], loaded
        with jackutil.JackRecorder(jack_server, jackutil.SUBPROCESS_PORTS, seconds=20) as recorder:
            started = kernel.run('v = voice(flute, cello, curve=sine(4), name="drift")')
            assert started["error"] is None and started["stderr"] == "", started
            recorder.wait_frames(44100)
            swapped = kernel.run("v.curve = tri(2)")
            assert swapped["error"] is None, swapped
            assert kernel.run("v.curve")["result"] == repr(tri(2))      # shown like in IPython
            assert kernel.run("v.curve.range(0.2, 0.8)")["result"] == repr(tri(2).range(0.2, 0.8))
            assert kernel.run("v.curve;")["result"] is None                # ; hides it
            recorder.wait_frames(44100)
            broken = kernel.run("voice(flute, nosuch)")
            assert len(broken["stderr"].strip().splitlines()) == 1, broken      # one line
            assert "NameError: name 'nosuch' is not defined" in broken["stderr"]
            status = kernel.run("%livelatent")["stdout"]
            assert "drift meso" in status and "underruns" in status and "peak [" in status, status
            recorder.wait_frames(22050)
            captured = recorder.stop()
        unloaded = kernel.run("%unload_ext livelatent")
        assert "livelatent: stopped" in unloaded["stdout"], unloaded
    finally:
        kernel.close()
    sounding = captured[np.flatnonzero(np.abs(captured).max(axis=1) > 0)[0]:]
    assert len(sounding) > 2 * 44100                  # the voice played from the cell on...
    blocks = np.abs(sounding[:len(sounding) // 1024 * 1024]).reshape(-1, 1024, 2).max(axis=(1, 2))
    assert blocks.min() > 1e-3                        # ...through the swap, without a silent period
    entries = read_journal(os.path.join(kernel_env["LIVELATENT_SET"], "journal.jsonl"))
    assert [e.code.strip() for e in entries] == [
        'v = voice(flute, cello, curve=sine(4), name="drift")', "v.curve = tri(2)", "v.curve",
        "v.curve.range(0.2, 0.8)", "v.curve;", "voice(flute, nosuch)"]
    assert {e.origin for e in entries} == {"ipython"}
    assert [e.landed for e in entries] == [True, True, False, False, False, False]


def test_load_ext_without_an_audio_device_runs_offline(kernel_env, tmp_path):
    kernel_env["LIVELATENT_DEVICE"] = "no-such-device"
    kernel = Kernel(kernel_env)
    try:
        loaded = kernel.run("%load_ext livelatent")
        assert "livelatent: offline" in loaded["stdout"] and "render() still works" in loaded["stdout"]
        again = kernel.run("%load_ext livelatent")               # a second engine? no
        assert "already loaded" in again["stdout"] and "livelatent:" not in again["stdout"], again
        kernel.run('v = voice(flute, cello, curve=sine(4), name="drift")')
        timed = kernel.run("%time v.gain = 0.5")           # IPython runs the statement itself
        assert timed["error"] is None and "Wall time" in timed["stdout"], timed
        kernel.run("v.curve?")
        # IPython's %reset took livelatent's names with the performer's: every later cell
        # failed with a NameError. It is refused in one line; a cell that used it stops there,
        # live and in its replay
        for cell in ("%reset -f", "%reset_selective -f v", "w = 1\n%reset -f\nw = 2"):
            refused = kernel.run(cell)
            said = refused["stdout"] + refused["stderr"]
            assert "is not available in livelatent" in said and "Traceback" not in said, refused
        assert kernel.run("print(w, v.name)")["stdout"].strip() == "1 drift"
        out = tmp_path / "layer.wav"
        rendered = kernel.run(f"job = render({str(out)!r}, seconds=2); job.wait(); print(job)")
        assert "done in" in rendered["stdout"], rendered
        kernel.run("%unload_ext livelatent")           # IPython's %reset is back (it was refused
        reset = kernel.run("%reset -f")                 # until the kernel restarted)
        assert reset["error"] is None and "not available" not in reset["stdout"] + reset["stderr"]
        assert kernel.run("print('w' in dir())")["stdout"].strip() == "False"
    finally:
        kernel.close()
    import soundfile as sf
    audio, rate = sf.read(out)
    assert audio.shape == (2 * rate, 2) and np.abs(audio).max() > 0.01
    # the %time cell is journaled once, as IPython ran it, and replays; `v.curve?` is not kept
    journal = os.path.join(kernel_env["LIVELATENT_SET"], "journal.jsonl")
    codes = [e.code.strip() for e in read_journal(journal)]
    assert codes[1] == "get_ipython().run_line_magic('time', 'v.gain = 0.5')" and len(codes) == 5
    assert "w = 1" in codes[2] and "print(w, v.name)" == codes[3]      # (the lone %resets: not kept)
    report = render_set(kernel_env["LIVELATENT_SET"], tmp_path / "replayed.wav", seconds=1,
                        progress=False)
    assert report.cells == 5 and report.notes == []
