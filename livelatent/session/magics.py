"""IPython magics in a set's journal: which cells the REPL journals, which magics it refuses,
and how a replay, which runs the journal as plain Python, repeats a cell that used one.

The journal holds a cell as IPython ran it, so ``%time v = voice(...)`` is
``get_ipython().run_line_magic('time', 'v = voice(...)')``: a replay's ``get_ipython()`` is a
:class:`ReplayShell`.
"""

from __future__ import annotations

from ..errors import LiveLatentError
from .code import run_code

__all__ = ["SHOWING_MAGICS", "REFUSED_MAGICS", "ReplayShell"]

#: IPython magics that only show things or load extensions: the REPL does not journal a cell
#: made of them, and a replay skips them. %time and %%capture run their code in a replay too.
SHOWING_MAGICS = frozenset({"pinfo", "pinfo2", "psearch", "pdoc", "pdef", "psource", "pfile",
                            "who", "whos", "who_ls", "history", "hist", "lsmagic", "magic",
                            "quickref", "load_ext", "unload_ext", "reload_ext", "livelatent"})
_CODE_MAGICS = frozenset({"time", "capture"})
_KEEP = ("livelatent's own names (voice, the sources, the function every cell runs through) "
         "would go with yours, and no later cell could run; del NAME removes one of yours")
#: Magics the REPL refuses, with why: each raises this, live and in a replay alike (a cell
#: that stopped there live stops there in its replay). A cell made of them is not journaled.
REFUSED_MAGICS = {
    "reset": f"%reset is not available in livelatent: {_KEEP}",
    "reset_selective": f"%reset_selective is not available in livelatent: {_KEEP}",
}


class ReplayShell:
    """``get_ipython()`` in a replay: runs the code of %time and %%capture, skips the magics
    that only show things, and refuses the rest as the REPL did or as a replay must."""

    def __init__(self, names: dict):
        self._names = names

    def run_line_magic(self, name, line, _stack_depth=1):
        return self._magic(name, line)

    def run_cell_magic(self, name, line, cell):
        return self._magic(name, cell)

    def _magic(self, name: str, code: str):
        if name in _CODE_MAGICS:
            return run_code(code, self._names, filename=f"<%{name}>")
        if name in SHOWING_MAGICS:
            return None
        if name in REFUSED_MAGICS:
            raise LiveLatentError(REFUSED_MAGICS[name])
        raise LiveLatentError(f"%{name}: a replay runs the journal as plain Python and cannot "
                              f"repeat this IPython magic")
