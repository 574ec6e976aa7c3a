"""Running a performer's code: one-line errors that say where, and the value of the last line.

Cells, pattern files and scripts all run through :func:`run_code`. An error becomes one
:class:`LiveLatentError` line, ``<cell 4>:2: ZeroDivisionError: division by zero``, which also
carries, as ``top_line``, the line of the top-level statement that was running: a replay of a
cell that raised runs the statements before that one, and no further.
"""

from __future__ import annotations

import ast
import contextlib
import traceback

from ..errors import LiveLatentError, described

__all__ = ["run_code", "run_until", "top_line", "check_text"]


def _compile(code: str, filename: str):
    check_text(code, filename)
    with _compiling(filename):
        return compile(code, filename, "exec", ast.PyCF_ONLY_AST)


@contextlib.contextmanager
def _compiling(filename: str):
    """Python's compile errors as one line: a syntax error, or code nested too deeply for it
    (``x = 1+1+...+1`` 200,000 terms long: a RecursionError traceback, before)."""
    try:
        yield
    except SyntaxError as exc:
        error = LiveLatentError(f"{filename}:{exc.lineno}: syntax error: {exc.msg}")
    except (RecursionError, MemoryError):
        error = LiveLatentError(f"{filename}: cannot compile it: nested too deeply for Python "
                                f"(a very long expression?)")
    else:
        return
    error.top_line = None
    raise error from None


def check_text(code: str, filename: str) -> None:
    """A LiveLatentError when ``code`` holds what is not text (a lone surrogate, ``"\\ud800"``,
    pasted in): Python compiles it as UTF-8, and a journal writes it so."""
    try:
        code.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = code.count("\n", 0, exc.start) + 1
        error = LiveLatentError(f"{filename}:{line}: {exc.object[exc.start:exc.end]!r} is not text "
                                f"(a lone surrogate); nothing ran")
        error.top_line = None
        raise error from None


def run_code(code: str, names: dict, *, filename: str = "<cell>"):
    """Compile and run ``code`` in ``names``; errors become one-line LiveLatentErrors.

    Returns the value of the last statement when it is an expression (``v``, ``voice(...)``,
    ``1 + 1``), evaluated once as part of the run, like Python's interactive prompt; else None.
    """
    tree = _compile(code, filename)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    with _compiling(filename):
        compiled = compile(tree, filename, "exec")
        result = compile(ast.Expression(last.value), filename, "eval") if last else None
    with _running(filename):
        exec(compiled, names)
        return eval(result, names) if result is not None else None


@contextlib.contextmanager
def _running(filename: str):
    """What the performer's code raises as one located line; Ctrl-C, a deadline's interrupt and
    exit() go to the callers (in a group of exceptions too: asyncio's TaskGroup)."""
    try:
        yield
    except LiveLatentError as exc:
        raise _located(type(exc), str(exc), exc, filename) from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:   # noqa: BLE001 - it may raise anything (GeneratorExit, a class
        if isinstance(exc, BaseExceptionGroup):                                    # of theirs)
            for kind in (KeyboardInterrupt, SystemExit):
                if exc.subgroup(kind) is not None:
                    raise kind() from exc
        raise _located(LiveLatentError, described(exc), exc, filename) from None


def _located(kind, message: str, exc: BaseException, filename: str) -> LiveLatentError:
    lines = _lines(exc, filename)
    error = kind(f"{filename}:{lines[-1] if lines else '?'}: {message}")
    error.top_line = lines[0] if lines else None
    return error


def _lines(exc: BaseException, filename: str) -> list[int]:
    return [frame.lineno for frame in traceback.extract_tb(exc.__traceback__)
            if frame.filename == filename]


def top_line(exc: BaseException, filename: str) -> int | None:
    """The line of the top-level statement of ``filename``'s code that was running when ``exc``
    went through it (an interrupted cell: a replay runs the statements before it, and not a
    loop that never ended), or None."""
    lines = _lines(exc, filename)
    return lines[0] if lines else None


def run_until(code: str, names: dict, *, filename: str, stop_line: int | None) -> None:
    """Run the top-level statements of ``code`` that come before the one at ``stop_line``
    (all of them when it is None). Errors are one-line LiveLatentErrors, as in run_code."""
    tree = _compile(code, filename)
    if stop_line is not None:
        tree.body = [node for node in tree.body if node.end_lineno < stop_line]
    with _compiling(filename):
        compiled = compile(tree, filename, "exec")
    with _running(filename):
        exec(compiled, names)
