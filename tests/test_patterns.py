"""Pattern files: a file re-runs when it is saved; a broken edit is refused and the sound goes on."""

import time

import numpy as np
import pytest

import jackutil
from livelatent import Engine, as_curve, saw, sine, tri
from livelatent.repl.patterns import PatternWatcher
from livelatent.session.performance import read_journal
from livelatent.session.session import Session
from replutil import Repl


@pytest.fixture
def session(tmp_path):
    with Engine(seed=3) as engine:
        with Session(engine, set_name="patterns", sets_root=tmp_path / "sets") as session:
            yield session


def save(path, text):
    """Save like an editor: new content, new modification time."""
    path.write_text(text)


def wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def poll_until_run(watcher):
    """Poll as the watcher's thread does until a changed file runs (the second poll)."""
    for _ in range(3):
        if watcher.check():
            return
    raise AssertionError("a changed file was never run")


class said:
    """What the watcher told the performer (its events' texts), read afresh each time."""

    def __init__(self, session):
        self.events = session.engine.events
        self.after = self.events.cursor

    def _texts(self):
        return [e.text for e in self.events.since(self.after)[0]]

    def __iter__(self):
        return iter(self._texts())

    def __getitem__(self, index):
        return self._texts()[index]

    def __len__(self):
        return len(self._texts())

    def __repr__(self):
        return repr(self._texts())


def playing(engine):
    """Voices that sound and are not fading out, with their curves, after the pending changes."""
    engine.render_array(samples=engine.step)           # let every scheduled change land
    return {p.name: repr(p.curve) for p in engine.voices() if p.stop_at is None}


def test_a_saved_edit_is_picked_up_within_a_second_and_replaces_the_files_voices(session, tmp_path):
    lines = said(session)
    pattern = tmp_path / "drift.py"
    save(pattern, 'voice(flute, cello, curve=sine(4), name="drift")\n')
    watcher = PatternWatcher(session)
    watcher.watch(pattern)                 # runs it at once
    watcher.start()
    try:
        assert playing(session.engine) == {"drift": repr(sine(4))}
        assert lines[-1].startswith("ran ") and lines[-1].endswith("drift.py, 1 voice")

        save(pattern, 'voice(flute, cello, curve=tri(2), name="drift")\n'
                      'voice(cello, flute, strategy="extension", name="stretch")\n')
        assert wait_for(lambda: any(line.startswith("reloaded") for line in lines), 1.0), lines
        # the file describes what plays: its earlier voice made way, nothing piled up
        assert playing(session.engine) == {"drift": repr(tri(2)), "stretch": repr(as_curve(0.5))}
    finally:
        watcher.stop()
    entries = read_journal(session.journal.path)
    assert [e.origin for e in entries] == [f"pattern:{pattern}"] * 2
    assert entries[0].code.startswith('voice(flute, cello, curve=sine(4)')
    assert "tri(2)" in entries[1].code and all(e.landed for e in entries)


def test_a_broken_edit_is_refused_once_and_changes_nothing(session, tmp_path):
    lines = said(session)
    pattern = tmp_path / "drift.py"
    save(pattern, 'voice(flute, cello, curve=sine(4), name="drift")\n')
    watcher = PatternWatcher(session)
    watcher.watch(pattern)
    engine = session.engine
    before = playing(engine)

    save(pattern, 'voice(flute, cello, curve=tri(2), name="drift"\n')      # unclosed paren
    assert watcher.check() == []                    # seen changing: run when it holds still
    assert watcher.check() == [pattern.resolve()]
    assert watcher.check() == []                                          # reported once
    assert len([line for line in lines if "syntax error" in line]) == 1
    assert "the voices play on" in lines[-1]

    # runs half way, then raises: the tempo change before the error is not sent either
    save(pattern, 'tempo(150)\nvoice(flute, cello, curve=tri(2), name="drift")\nnosuch\n')
    poll_until_run(watcher)
    assert "NameError" in lines[-1] and "nothing changed" in lines[-1]
    assert playing(engine) == before and engine.tempo == 60      # the clock's tempo
    assert len(read_journal(session.journal.path)) == 2    # the syntax error never ran

    # the sound goes on: the engine still renders the voice the last good version started
    assert np.abs(engine.render_array(1.0)).max() > 0.01
    save(pattern, 'voice(flute, cello, curve=saw(1), name="drift")\n')
    poll_until_run(watcher)
    assert playing(engine) == {"drift": repr(saw(1))}


def test_a_file_run_again_replaces_its_timers_and_a_failing_run_sets_none(session, tmp_path):
    # each save added another every(): two flips per beat cancelled out, and the pan stood still
    from livelatent.timers import Timers
    pattern = tmp_path / "flip.py"
    flip = ('v = voice(flute, cello, curve=0.5, name="drift", pan=0.5)\n'
            'every(1, lambda: v.set(pan=-v.pan), start=1)\n')
    save(pattern, flip)
    watcher = PatternWatcher(session)
    watcher.watch(pattern)
    engine, timers = session.engine, Timers.of(session.engine)
    session.run_cell("every(4, lambda: None, start=4)")             # a cell's own: kept
    for _ in range(2):
        save(pattern, flip + "# saved again\n" * (_ + 1))
        poll_until_run(watcher)
    assert timers.count == 2
    save(pattern, "every(2, lambda: None)\nnosuch\n")                  # raises: changes nothing
    poll_until_run(watcher)
    assert timers.count == 2
    pans = []
    for _ in range(4):                  # seconds 0-4 at 60 bpm: the pan flips on beats 1, 2, 3
        engine.render_array(1.0)
        pans.append({p.name: p.pan for p in engine.voices() if p.stop_at is None}["drift"])
    assert pans == [0.5, -0.5, 0.5, -0.5]


def test_a_file_caught_half_saved_is_not_run_until_it_holds_still(session, tmp_path):
    # an editor that saves in place truncates the file first: read in that gap it is empty,
    # and an empty pattern would stop its voices
    pattern = tmp_path / "drift.py"
    save(pattern, 'voice(flute, cello, curve=sine(4), name="drift")\n')
    watcher = PatternWatcher(session)
    watcher.watch(pattern)
    with open(pattern, "w"):
        pass                                             # truncated, not yet written
    assert watcher.check() == []
    assert playing(session.engine) == {"drift": repr(sine(4))}
    save(pattern, 'voice(flute, cello, curve=tri(2), name="drift")\n')
    assert watcher.check() == []                         # changed again since the last poll
    assert playing(session.engine) == {"drift": repr(sine(4))}
    assert watcher.check() == [pattern.resolve()]
    assert playing(session.engine) == {"drift": repr(tri(2))}
    # emptied on purpose, it holds still, and then it describes silence
    with open(pattern, "w"):
        pass
    poll_until_run(watcher)
    assert playing(session.engine) == {}


def test_a_watched_folder_picks_up_new_files(session, tmp_path):
    folder = tmp_path / "patterns"
    folder.mkdir()
    save(folder / "a.py", 'voice(flute, cello, name="a")\n')
    watcher = PatternWatcher(session)
    watcher.watch(folder)
    assert set(playing(session.engine)) == {"a"}
    save(folder / "b.py", 'voice(cello, flute, name="b")\n')
    save(folder / ".hidden.py", 'voice(cello, flute, name="hidden")\n')
    watcher.check()
    assert set(playing(session.engine)) == {"a", "b"}
    watcher.unwatch(folder)
    save(folder / "b.py", 'voice(cello, flute, name="b2")\n')
    assert watcher.check() == [] and watcher.check() == []


def test_a_file_that_never_ends_or_calls_exit_is_stopped_and_the_watcher_goes_on(session, tmp_path):
    """A file runs in the watcher's thread while the REPL waits for it: a loop that does not end
    froze the REPL (no Ctrl-C reaches that thread), and exit() ended the watcher, so no later
    save ran. The loop is interrupted after the watcher's run limit, exit() is an error, and
    neither changes anything."""
    import threading
    lines = said(session)
    pattern = tmp_path / "drift.py"
    save(pattern, 'voice(flute, cello, curve=sine(4), name="drift")\n')
    repl_lock = threading.RLock()
    watcher = PatternWatcher(session, lock=repl_lock, interval=0.05)
    watcher.run_limit = 0.5
    watcher.watch(pattern)
    watcher.start()
    try:
        save(pattern, 'tempo(150)\nimport time\nend = time.monotonic() + 8\n'
                      'while time.monotonic() < end:\n    pass\n')
        assert wait_for(lambda: not repl_lock.acquire(blocking=False) or repl_lock.release(), 2.0)
        began = time.monotonic()
        with repl_lock:                                  # the REPL's next cell
            waited = time.monotonic() - began
        assert waited < 2.0, f"the REPL waited {waited:.1f} s for a pattern file"
        assert wait_for(lambda: "still running after 0.5 s: interrupted" in lines[-1], 1.0), lines
        assert session.engine.tempo == 60 and playing(session.engine) == {"drift": repr(sine(4))}

        save(pattern, 'tempo(150)\nimport sys\nsys.exit(2)\n')
        assert wait_for(lambda: "SystemExit: 2 (nothing changed)" in lines[-1], 2.0), lines
        assert watcher.running and session.engine.tempo == 60
        save(pattern, 'voice(flute, cello, curve=tri(2), name="drift")\n')
        assert wait_for(lambda: lines[-1].startswith("reloaded"), 2.0), lines
        assert playing(session.engine) == {"drift": repr(tri(2))}
    finally:
        watcher.stop()


def test_a_file_with_a_nul_byte_is_a_syntax_error_without_a_line_none(session, tmp_path):
    lines = said(session)
    pattern = tmp_path / "drift.py"
    pattern.write_bytes(b'voice(flute, cello, name="drift")\x00\n')
    PatternWatcher(session).watch(pattern)
    assert "syntax error" in lines[-1] and "line None" not in lines[-1], lines
    assert playing(session.engine) == {}


def test_a_file_python_reads_is_read_and_one_it_cannot_compile_is_refused(session, tmp_path):
    lines = said(session)
    # a coding line is Python's: the file was "cannot read it: 'utf-8' codec can't decode"
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"# -*- coding: latin-1 -*-\nvoice(flute, cello, name='caf\xe9')\n")
    watcher = PatternWatcher(session)
    watcher.watch(latin)
    assert set(playing(session.engine)) == {"caf\xe9"}, list(lines)
    # compile() raised RecursionError: a traceback that ended livelatent --watch at start
    chain = tmp_path / "chain.py"
    chain.write_text("x = " + "1+" * 200000 + "1\n")
    watcher.watch(chain)
    assert "chain.py: cannot compile it: nested too deeply" in lines[-1], list(lines)
    # a file that goes was polled on without a word
    latin.unlink()
    watcher.check()                                    # (an editor saving by renaming, maybe)
    assert not any("has gone" in line for line in lines)
    watcher.check()
    assert "latin.py has gone (deleted or renamed); its voices play on" in lines[-1], list(lines)
    watcher.check()
    assert sum("has gone" in line for line in lines) == 1
    assert set(playing(session.engine)) == {"caf\xe9"}


def test_watching_something_that_is_not_a_pattern_file_says_so(session, tmp_path):
    watcher = PatternWatcher(session)
    with pytest.raises(Exception, match="no such file"):
        watcher.watch(tmp_path / "missing.py")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(Exception, match=r"Python code \(\.py\)"):
        watcher.watch(tmp_path / "notes.txt")


def test_an_edit_is_heard_live_and_a_broken_edit_never_stops_the_sound(jack_server, tmp_path):
    pattern = tmp_path / "drift.py"
    save(pattern, 'voice(flute, cello, curve=sine(4), name="drift")\n')
    with Engine(seed=1, blocksize=1024) as engine:
        engine.start("system")
        with Session(engine, set_name="live", sets_root=tmp_path / "sets") as session, \
                jackutil.JackRecorder(jack_server, "PortAudio", seconds=10) as recorder:
            lines = said(session)
            watcher = PatternWatcher(session).start()
            watcher.watch(pattern)
            assert wait_for(lambda: lines, 1.0)
            time.sleep(0.7)
            save(pattern, 'voice(flute, cello, curve=tri(2), name="drift"\n')    # broken
            time.sleep(0.7)
            save(pattern, 'voice(flute, cello, curve=tri(2), name="drift")\n')
            assert wait_for(lambda: lines[-1].startswith("reloaded"), 1.0), lines
            time.sleep(0.7)
            watcher.stop()
            captured = recorder.stop()
        engine.stop_playback()
        assert engine.underruns == 0
    assert sum("syntax error" in line for line in lines) == 1
    loud = np.flatnonzero(np.abs(captured).max(axis=1) > 0)
    sounding = captured[loud[0]:]
    blocks = np.abs(sounding[:len(sounding) // 1024 * 1024]).reshape(-1, 1024, 2).max(axis=(1, 2))
    silent = np.flatnonzero(blocks <= 1e-3)
    assert silent.size == 0, (    # from the first sound to the end: never a silent block
        f"silent 1024-sample blocks {silent.tolist()} of {blocks.size}; JACK xruns "
        f"{jack_server.xruns()}; watcher said {lines}")


def test_the_repl_watches_a_folder_given_on_the_command_line(tmp_path):
    folder = tmp_path / "patterns"
    folder.mkdir()
    save(folder / "drift.py", 'drift = voice(flute, cello, curve=sine(4), name="drift")\n')
    repl = Repl(["live", "--offline", "--watch", str(folder), "--set", "w"],
                env={"LIVELATENT_SETS": str(tmp_path / "sets")})
    try:
        repl.wait_prompt()
        assert "ran " in repl.text and "drift.py, 1 voice" in repl.text
        assert repr(sine(4)) in repl.run("drift.curve")         # its names are in the REPL's namespace
        save(folder / "drift.py", 'drift = voice(flute, cello, curve=tri(2), name="drift")\n')
        repl.pump(1.0)
        assert "reloaded " in repl.text
        assert repr(tri(2)) in repl.run("drift.curve")
        assert repl.exit() == 0
    finally:
        repl.close()


def test_a_set_with_a_file_interrupted_for_running_too_long_still_renders(tmp_path):
    # the journal keeps where the file was stopped: a replay runs the statements before that
    # one to rebuild its names. Before, it ran the cell whole, and the loop never ended there
    import threading
    from livelatent.session.sets import render_set
    pattern = tmp_path / "p.py"
    with Engine(seed=3) as engine:
        with Session(engine, set_name="s", sets_root=tmp_path / "sets") as session:
            session.run_cell('voice(flute, cello, curve=sine(4), name="drift")')
            watcher = PatternWatcher(session, run_limit=0.5)
            save(pattern, "x = 1\nwhile True:\n    pass\n")
            watcher.watch(pattern)
            engine.render_array(1.0)
            session.save()
            folder = session.set_dir
    done = []
    render = threading.Thread(target=lambda: done.append(
        render_set(folder, tmp_path / "out.wav", seconds=2.0, progress=False)), daemon=True)
    render.start()
    render.join(60)
    assert done, "the render of the set did not end"
    assert any("rebuilt from the statements before line 2" in note for note in done[0].notes)


def test_a_performer_naming_something_performer_does_not_break_reloads(session, tmp_path):
    pattern = tmp_path / "drift.py"
    save(pattern, 'voice(flute, cello, curve=sine(4), name="drift")\n')
    watcher = PatternWatcher(session)
    watcher.watch(pattern)
    session.run_cell("performer = 'my band'")
    save(pattern, 'voice(flute, cello, curve=tri(2), name="drift")\n# edited\n')
    poll_until_run(watcher)
    assert playing(session.engine) == {"drift": repr(tri(2))}


def test_a_file_of_a_watched_folder_that_goes_and_comes_back_replaces_its_voices(session, tmp_path):
    # its entry, with the voices its last run started, was dropped at the first poll that
    # missed it: back (moved away and back, a checkout, an editor's save by renaming), its
    # old voices played on for ever beside the new ones
    folder = tmp_path / "patterns"
    folder.mkdir()
    pattern = folder / "drift.py"
    save(pattern, "voice(flute, cello, curve=sine(8))\n")
    watcher = PatternWatcher(session)
    watcher.watch(folder)
    first = set(playing(session.engine))
    assert len(first) == 1
    pattern.unlink()
    watcher.check()
    watcher.check()
    assert set(playing(session.engine)) == first               # gone: its voices play on
    save(pattern, "voice(flute, cello, curve=sine(4))\n")
    for _ in range(3):
        watcher.check()
    now = set(playing(session.engine))
    assert len(now) == 1 and now != first, now
