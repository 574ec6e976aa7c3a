"""Drive the real ``livelatent`` REPL in a pseudo-terminal, as a performer's terminal would.

:class:`Repl` spawns ``python -m livelatent.cli ...`` under pexpect, answers prompt_toolkit's
cursor-position requests like a real terminal does (without an answer prompt_toolkit never
draws the bottom toolbar), types cells and waits for the next ``In [n]:`` prompt.
Everything the REPL printed is kept, with the terminal's escape sequences removed, in
:attr:`Repl.text`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pexpect

__all__ = ["Repl", "ROOT", "strip_ansi", "recorded_repl", "rendered_set", "heard_is_rendered",
           "last_underruns", "free_udp_port"]

ROOT = Path(__file__).resolve().parent.parent
_ANSI = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-Za-z]")
_PROMPT = r"In \[(?:\x1b\[[0-9;]*m)*(\d+)(?:\x1b\[[0-9;]*m)*\]: "
_CPR_REQUEST = "\x1b[6n"


def strip_ansi(text: str) -> str:
    """Terminal output without its escape sequences."""
    return _ANSI.sub("", text)


class Repl:
    """A ``livelatent`` REPL in a pty.

    Parameters
    ----------
    args : list of str
        Arguments after ``livelatent`` (e.g. ``["live", "--device", "system"]``).
    env : dict, optional
        Extra environment variables.
    rows, columns : int
        The terminal's size.
    wrapper : list of str
        A command that runs the REPL's (e.g. ``["unshare", "-n", ...]``).
    """

    def __init__(self, args, *, env: dict | None = None, cwd=ROOT, rows: int = 40,
                 columns: int = 160, timeout: float = 60.0, cpr_delay: float = 0.0,
                 wrapper: list[str] = ()):
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT)] + ([full_env["PYTHONPATH"]] if full_env.get("PYTHONPATH") else []))
        full_env.setdefault("TERM", "xterm-256color")
        full_env.update(env or {})
        self.started = time.monotonic()
        program = [*wrapper, sys.executable, "-m", "livelatent.cli", *args]
        self.child = pexpect.spawn(program[0], program[1:], cwd=str(cwd),
                                   env=full_env, encoding="utf-8", codec_errors="replace",
                                   timeout=timeout, dimensions=(rows, columns))
        self._raw: list[str] = []
        self.prompt_number = 0
        self.cpr_delay = cpr_delay      # answer cursor-position queries this late after start
        self._cpr_due: list[float] = []

    @property
    def text(self) -> str:
        """All output so far, escape sequences removed."""
        return strip_ansi("".join(self._raw))

    @property
    def raw(self) -> str:
        return "".join(self._raw)

    def _expect(self, patterns, timeout: float):
        """Expect one of ``patterns``, answering cursor-position requests meanwhile."""
        deadline = time.monotonic() + timeout
        compiled = [re.escape(_CPR_REQUEST), *patterns]
        while True:
            now = time.monotonic()
            while self._cpr_due and self._cpr_due[0] <= now:
                self._cpr_due.pop(0)
                self.child.send("\x1b[1;1R")
            left = deadline - now
            if left <= 0:
                raise TimeoutError(f"the REPL printed none of {patterns} in {timeout} s; "
                                   f"its output ends with:\n{self.text[-3000:]}")
            try:
                wait = min(left, max(0.01, self._cpr_due[0] - now)) if self._cpr_due else left
                index = self.child.expect(compiled, timeout=wait)
            except pexpect.EOF:
                self._raw.append(self.child.before or "")
                raise EOFError(f"the REPL exited; its output:\n{self.text[-3000:]}") from None
            except pexpect.TIMEOUT:
                continue
            after = self.child.after
            self._raw.append((self.child.before or "") + (after if isinstance(after, str) else ""))
            if index == 0:              # "the cursor is at row 1, column 1" (now, or late)
                due = self.started + self.cpr_delay
                if due <= time.monotonic():
                    self.child.send("\x1b[1;1R")
                else:
                    self._cpr_due.append(due)
                continue
            return index - 1, self.child.match

    def wait_prompt(self, timeout: float = 60.0) -> int:
        """Wait for a new ``In [n]:`` prompt (n above the last one seen); returns n.

        prompt_toolkit redraws the current prompt now and then (the toolbar refreshes), so a
        prompt only counts when its number is new.
        """
        deadline = time.monotonic() + timeout
        while True:
            _, match = self._expect([_PROMPT], max(0.01, deadline - time.monotonic()))
            number = int(match.group(1))
            if number > self.prompt_number:
                self.prompt_number = number
                return number

    def run(self, cell: str, timeout: float = 30.0) -> str:
        """Type ``cell`` (one line) and Enter; returns what it printed before the next prompt."""
        before = len(self._raw)
        self.child.sendline(cell)
        self.wait_prompt(timeout)
        return strip_ansi("".join(self._raw[before:]))

    def wait_for(self, text: str, since: int = 0, timeout: float = 30.0) -> None:
        """Read the output until ``text`` appears after position ``since`` of :attr:`text`
        (something printed by another thread, perhaps already read with an earlier cell)."""
        if text not in self.text[since:]:
            self._expect([re.escape(text)], timeout)

    def pump(self, seconds: float) -> None:
        """Let ``seconds`` pass while reading the output (the toolbar keeps redrawing)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self._expect([pexpect.TIMEOUT], max(0.01, min(0.1, deadline - time.monotonic())))
            except TimeoutError:
                pass
            except EOFError:
                return


    def exit_with_ctrl_d(self, timeout: float = 30.0) -> int:
        """Ctrl-D, and Ctrl-D again when voices sound and livelatent asks whether to leave;
        returns the exit status."""
        self.child.sendcontrol("d")
        index, _ = self._expect([r"again within", pexpect.EOF], timeout)
        if index == 0:
            # as a performer would, after the prompt is back: a Ctrl-D typed between two prompts
            # reaches a terminal in cooked mode, where it is an end of file nobody reads
            self._expect([_PROMPT], timeout)
            self.child.sendcontrol("d")
        return self._wait_for_end(timeout)

    def exit(self, timeout: float = 30.0) -> int:
        """Type ``exit`` (and ``exit`` again when voices sound and livelatent asks whether to
        leave); wait for the process to end; returns its exit status."""
        self.child.sendline("exit")
        index, _ = self._expect([r"again within", pexpect.EOF], timeout)
        if index == 0:
            self.child.sendline("exit")
        return self._wait_for_end(timeout)

    def _wait_for_end(self, timeout: float) -> int:
        try:
            self._expect([pexpect.EOF], timeout)
        except EOFError:
            pass
        self.child.close()
        return self.child.exitstatus

    def kill(self) -> None:
        """SIGKILL, like a crash or a power cut."""
        self.child.kill(signal.SIGKILL)
        self.child.close(force=True)

    def close(self) -> None:
        if self.child.isalive():
            self.kill()


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 nobody listens on now."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rendered_set(set_dir: Path, out: Path):
    """``livelatent render`` of the set ``set_dir`` into ``out``, read back: (samples, rate)."""
    import soundfile as sf
    done = subprocess.run([sys.executable, "-m", "livelatent.cli", "render", str(set_dir), "-o", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return sf.read(out, dtype="float32")


def last_underruns(text: str) -> int | None:
    """The underrun count the status line showed last (None: it never showed one)."""
    found = re.findall(r"underruns (\d+)", text)
    return int(found[-1]) if found else None


@contextlib.contextmanager
def recorded_repl(jack_server, args, sets, *, record_seconds: float = 60, channels: int = 2,
                  env: dict | None = None, wrapper: list[str] = ()):
    """A REPL playing through JACK (``livelatent live --device system ARGS``, its sets in
    ``sets``) and a recorder of its ports in a process of its own (see
    :class:`jackutil.RecorderProcess`), both closed whatever happens. Yields (repl, recorder):
    after ``recorder.stop()``, pass ``recorder.late_spans`` to :func:`heard_is_rendered`."""
    import jackutil
    repl = Repl(["live", "--device", "system", *args], env={"LIVELATENT_SETS": str(sets), **(env or {})},
                wrapper=wrapper)
    recorder = None
    try:
        recorder = jackutil.RecorderProcess(jack_server, jackutil.SUBPROCESS_PORTS, channels=channels,
                                            seconds=record_seconds, folder=tempfile.gettempdir(),
                                            timeout_s=60)
        repl.wait_prompt()
        yield repl, recorder
    finally:
        if recorder is not None:
            recorder.close()
        repl.close()


def heard_is_rendered(captured, set_dir: Path, out: Path, *, seconds: float, tolerance: float = 1e-4,
                      late=()):
    """What JACK captured (up to where the stream stopped) equals ``livelatent render`` of the
    set, within ``tolerance``, over at least ``seconds``. Returns the render and its rate.

    ``late``: the capture's spans its recorder read a period late (``recorder.late_spans``):
    what was played there is not known, so they are left out (at most two of them).
    """
    import numpy as np

    import jackutil
    captured = jackutil.until_stream_stopped(captured)
    reference, rate = rendered_set(set_dir, out)
    offset = jackutil.align(captured, reference)
    assert len(captured) - offset >= seconds * rate
    assert len(late) <= 2, f"the recorder read {len(late)} periods late: too few frames are known"
    first, gap = jackutil.aligned_gaps(captured, reference, offset, late)
    difference = float(gap.max())
    if difference > tolerance:            # where and how: a race shows as one step, a drift as all
        wrong = first + np.flatnonzero(gap > tolerance)
        raise AssertionError(f"the capture differs from the render by {difference:.3g} (tolerance "
                             f"{tolerance:g}) on {wrong.size} of {gap.size} frames, from frame "
                             f"{wrong[0]} (step {wrong[0] // 512}) to {wrong[-1]} (step {wrong[-1] // 512})"
                             + ("; the capture is silent there (an underrun)"
                                if not np.any(captured[wrong + offset]) else ""))
    return reference, rate
