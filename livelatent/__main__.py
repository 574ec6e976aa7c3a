"""``python -m livelatent``: the ``livelatent`` command (for a venv without its script on PATH)."""

import sys

from .cli import main

sys.exit(main())
