"""The package's modules form a one-way stack: scripts/import_graph.py finds no cycle.

Imports inside functions count: they hide a cycle from Python, not from the design.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "import_graph.py"


def graph(package):
    return subprocess.run([sys.executable, str(SCRIPT), str(package)], capture_output=True,
                          text=True, timeout=60)


def test_livelatent_has_no_import_cycle():
    result = graph(ROOT / "livelatent")
    assert result.returncode == 0, result.stdout[-3000:]
    assert result.stdout.rstrip().endswith("0 cycles")
    assert "livelatent.engine.engine -> " in result.stdout          # it printed the graph


def test_a_cycle_through_an_import_inside_a_function_is_found(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "low.py").write_text("def later():\n    from .sub import high\n    return high\n")
    (package / "sub" / "high.py").write_text("from .. import low\n")
    result = graph(package)
    assert result.returncode == 1
    assert "import cycle: pkg.low <-> pkg.sub.high" in result.stdout


def test_nothing_beside_the_audio_process_shadows_the_standard_library():
    """The audio process runs as a script from its own folder, so that folder comes first on its
    import path: a module there named like one of the standard library's breaks numpy's import."""
    import sys
    from pathlib import Path

    from livelatent.engine import audio_process

    folder = Path(audio_process.__file__).parent
    names = {path.stem for path in folder.glob("*.py")} | {path.name for path in folder.iterdir()
                                                            if path.is_dir()}
    assert not names & set(sys.stdlib_module_names)
