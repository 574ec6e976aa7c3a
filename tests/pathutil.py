"""What the latent-path tests share (their fixtures, four pack notes and a small SOM, are in
conftest.py)."""

from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "livelatent" / "packs" / "default" / "sources"
SR = 44100
