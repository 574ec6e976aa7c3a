"""livelatent's line magics in an IPython shell: ``%livelatent`` (the status line), and
``%reset``/``%reset_selective`` refused while livelatent is loaded (see
:mod:`livelatent.session.magics`). Taken out again, IPython's own are put back.
"""

from __future__ import annotations

from .. import optional
from ..errors import LiveLatentError
from ..session.magics import REFUSED_MAGICS

__all__ = ["install_magics"]


def install_magics(shell, status_text):
    """Register the magics in ``shell`` (``status_text()``: the status line); returns the
    function that takes them out and puts back the magics of IPython's they replaced."""
    Magics, line_magic, magics_class = optional.ipython_magics()

    @magics_class
    class LivelatentMagics(Magics):
        @line_magic
        def livelatent(self, line):
            """``%livelatent``: the status line (beat, tempo, voices, load, underruns, peak)."""
            print(status_text())

        @line_magic
        def reset(self, line):          # (IPython's would take livelatent's names too)
            raise LiveLatentError(REFUSED_MAGICS["reset"])

        @line_magic
        def reset_selective(self, line):
            raise LiveLatentError(REFUSED_MAGICS["reset_selective"])

    lines = shell.magics_manager.magics["line"]
    # (find_line_magic loads one IPython registers lazily: put back, only the name was there)
    replaced = {name: found for name in ("livelatent", *REFUSED_MAGICS)
                if (found := shell.find_line_magic(name)) is not None}
    shell.register_magics(LivelatentMagics(shell=shell))

    def remove() -> None:
        for name in ("livelatent", *REFUSED_MAGICS):
            lines.pop(name, None)
        lines.update(replaced)
    return remove
