"""Running a ``livelatent`` command in-process and reading the one line it fails with."""

from livelatent.cli import main


def one_line_error(capsys, *args) -> str:
    """Run ``livelatent ARGS``; it must fail (exit 2) with one ``livelatent: error:`` line,
    which is returned."""
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("livelatent: error:") and err.count("\n") == 1, err
    return err
