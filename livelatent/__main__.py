"""``python -m livelatent``: the ``livelatent`` command (for a venv without its script on PATH)."""

import sys

from .cli import main

if __name__ == "__main__":       # a process spawned from this one imports it too: run nothing then
    sys.exit(main())
