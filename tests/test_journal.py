"""The journal: what was evaluated, and where it landed, survives crashes and reads back."""

import json

import pytest

from livelatent.errors import SetError
from livelatent.session.journal import Journal
from livelatent.session.performance import read_journal, read_sessions


def write_session(path, cells):
    """A journal of one session with ``cells``: (code, position, landed sample or None)."""
    with Journal(path) as journal:
        journal.start_session(seed=7, tempo=90, sample_rate=44100, position=0,
                              model_path="/models/x/model.pt", model_hash="abc")
        for code, position, sample in cells:
            n = journal.append(code, "repl", position=position)
            if sample is not None:
                journal.mark_applied(n, sample)
    return path


def test_round_trip_keeps_code_origin_and_samples(tmp_path):
    path = tmp_path / "journal.jsonl"
    with Journal(path) as journal:
        journal.start_session(seed=7, tempo=90, sample_rate=44100, position=12,
                              model_path="/m/model.pt", model_hash="abc")
        first = journal.append("v = voice(flute, cello)\nv.gain = 0.5", "repl", position=100)
        journal.mark_applied(first, 512)
        second = journal.append("v.curve = 1/0", "pattern patterns/drift.py", position=600,
                                discard_on_error=True)
        journal.mark_applied(second, 640, landed=False, error="<repl 1>:1: ZeroDivisionError")
    entries = read_journal(path)
    assert [e.id for e in entries] == [0, 1]
    assert entries[0].code == "v = voice(flute, cello)\nv.gain = 0.5"
    assert (entries[0].origin, entries[0].sample, entries[0].position) == ("repl", 512, 100)
    assert entries[0].landed and entries[0].applied and entries[0].error is None
    assert entries[1].origin == "pattern patterns/drift.py" and entries[1].discard_on_error
    assert not entries[1].landed and entries[1].error.endswith("ZeroDivisionError")
    assert entries[0].wall[:2] == "20" and "T" in entries[0].wall   # ISO wall time
    (session,) = read_sessions(path)
    assert (session.seed, session.tempo, session.sample_rate, session.position) == (7, 90.0, 44100, 12)
    assert (session.model_path, session.model_hash) == ("/m/model.pt", "abc")
    # one JSON object per line, each with the format version
    lines = path.read_text().splitlines()
    assert len(lines) == 5 and all(json.loads(line)["v"] == 3 for line in lines)


def test_reopening_appends_a_new_session_and_continues_the_ids(tmp_path):
    path = write_session(tmp_path / "journal.jsonl", [("a = 1", 0, 0), ("b = 2", 10, 10)])
    write_session(path, [("c = 3", 5, 5)])
    assert [e.id for e in read_journal(path)] == [0, 1, 2]
    assert len(read_sessions(path)) == 2
    assert [e.code for e in read_journal(path, session=-1)] == ["c = 3"]
    assert [e.code for e in read_journal(path, session=0)] == ["a = 1", "b = 2"]
    with pytest.raises(SetError, match="no such session in .*it holds"):
        read_journal(path, session=5)


def test_a_cell_that_never_finished_keeps_its_submitted_position(tmp_path):
    path = write_session(tmp_path / "journal.jsonl", [("a = 1", 100, 512), ("while True: pass", 900, None)])
    last = read_journal(path)[-1]
    assert last.code == "while True: pass"
    assert (last.sample, last.applied, last.landed) == (900, False, False)


def test_a_last_line_cut_off_by_a_crash_is_skipped_with_a_warning(tmp_path):
    path = write_session(tmp_path / "journal.jsonl", [("a = 1", 0, 0), ("b = 2", 10, None)])
    data = path.read_bytes()
    path.write_bytes(data[:-15])               # the crash hit while the last cell was written
    with pytest.warns(UserWarning, match="cut off by a crash"):
        entries = read_journal(path)
    assert [e.code for e in entries] == ["a = 1"]


def test_after_a_crash_the_next_session_appends_cleanly(tmp_path):
    path = write_session(tmp_path / "journal.jsonl", [("a = 1", 0, 0), ("b = 2", 10, None)])
    path.write_bytes(path.read_bytes()[:-15])
    write_session(path, [("c = 3", 0, 0)])     # the performer starts again in the same set
    with pytest.warns(UserWarning, match=r"journal.jsonl:4: skipped a line cut off"):
        entries = read_journal(path)
    assert [e.code for e in entries] == ["a = 1", "c = 3"]
    assert [e.session for e in entries] == [0, 1]


def test_a_malformed_line_in_the_middle_is_an_error_naming_the_line(tmp_path):
    path = write_session(tmp_path / "journal.jsonl", [("a = 1", 0, 0), ("b = 2", 10, 10)])
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:20]                    # someone edited the file
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SetError, match=r"journal.jsonl:3: malformed journal line"):
        read_journal(path)
    # json's own limits were tracebacks: a line nested too deeply (RecursionError), a number of
    # more digits than Python converts (ValueError, not a JSONDecodeError)
    for edited in ('{"v": 3, "kind": "heard", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
                   '{"v": 3, "kind": "heard", "x": 1' + "0" * 5000 + "}"):
        lines[2] = edited
        path.write_text("\n".join(lines) + "\n")
        with pytest.raises(SetError, match=r"journal.jsonl:3: malformed journal line"):
            read_journal(path)


def test_a_record_missing_its_fields_is_an_error_naming_the_line(tmp_path):
    path = write_session(tmp_path / "journal.jsonl", [("a = 1", 0, 0)])
    with open(path, "a") as f:
        f.write(json.dumps({"v": 1, "kind": "cell", "origin": "repl"}) + "\n")
        f.write(json.dumps({"v": 1, "kind": "applied", "id": 5, "sample": 0}) + "\n")
    with pytest.raises(SetError, match=r"journal.jsonl:4: malformed cell record"):
        read_journal(path)


def test_a_journal_from_a_newer_livelatent_is_refused(tmp_path):
    path = write_session(tmp_path / "journal.jsonl", [("a = 1", 0, 0)])
    with open(path, "a") as f:
        f.write(json.dumps({"v": 5, "kind": "cell", "id": 9, "code": "x"}) + "\n")
        f.write(json.dumps({"v": 3, "kind": "applied", "id": 9, "sample": 0}) + "\n")
    with pytest.raises(SetError, match="journal version 5 is newer"):
        read_journal(path)


def test_a_missing_journal_is_a_clear_error(tmp_path):
    with pytest.raises(SetError, match="no journal at"):
        read_journal(tmp_path / "nowhere" / "journal.jsonl")


def test_every_record_is_on_disk_when_append_returns(tmp_path):
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    journal.start_session(seed=0, tempo=60, sample_rate=44100, position=0)
    journal.append("x = 1", "repl", position=0)
    # read by another handle while the journal is still open: nothing sits in a buffer
    assert [e.code for e in read_journal(path)] == ["x = 1"]
    journal.close()
    with pytest.raises(SetError, match="closed"):
        journal.append("y = 2", "repl", position=0)


@pytest.mark.parametrize("version", [None, 0, True, "3"])
def test_a_line_without_a_valid_version_is_not_called_newer(tmp_path, version):
    # a missing "v" was "journal version None is newer than this livelatent reads"
    path = write_session(tmp_path / "journal.jsonl", [("a = 1", 0, 0)])
    with open(path, "a") as f:
        f.write(json.dumps({"v": version, "kind": "cell", "id": 9, "code": "x"}) + "\n")
    with pytest.raises(SetError, match=r"journal.jsonl:4: no valid journal version"):
        read_journal(path)


def test_an_error_line_that_is_not_a_number_is_an_error_naming_the_line(tmp_path):
    # it read back, and a replay of the cell then failed with a TypeError in run_until
    path = write_session(tmp_path / "journal.jsonl", [("a = 1", 0, None)])
    with open(path, "a") as f:
        f.write(json.dumps({"v": 3, "kind": "applied", "id": 0, "sample": 0, "error": "x",
                            "error_line": "two"}) + "\n")
    with pytest.raises(SetError, match=r"journal.jsonl:3: malformed applied record"):
        read_journal(path)


def test_records_before_the_first_session_record_are_an_error_not_dropped(tmp_path):
    # a journal whose session line was moved down rendered silence (every batch before it was
    # dropped without a word), and a 0-sample file with --no-code
    path = write_session(tmp_path / "journal.jsonl", [("a = 1", 0, 0), ("b = 2", 10, 10)])
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["kind"] == "session"
    path.write_text("\n".join(lines[1:] + lines[:1]) + "\n")
    with pytest.raises(SetError, match=r"journal.jsonl:1: a \w+ record before the journal's first "
                                        r"session record"):
        read_journal(path)
