#!/usr/bin/env python3
"""Print livelatent's import graph (module -> modules it imports) and any import cycle.

Every import statement counts, those inside functions too: an import moved into a function
hides a cycle from Python's import machinery, not from the design. Exit status 1 when there is
a cycle, so a test can run this script.

Run: ``python scripts/import_graph.py [PACKAGE_DIR] [--quiet]``
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def modules(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under ``package``."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _target(name: str, known: dict) -> str | None:
    """The package module ``name`` refers to (the longest known prefix), if any."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(module: str, path: Path, known: dict) -> set[str]:
    """The package modules ``module`` imports, anywhere in its file."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[:len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            # "from . import x" imports the module x; "from .m import f" imports m
            for alias in node.names:
                whole = f"{base}.{alias.name}" if base else alias.name
                names.append(whole if whole in known else base)
        for name in names:
            target = _target(name, known)
            if target and target != module:
                found.add(target)
                # importing a.b.c runs package a.b's __init__ first: from outside a.b, that is
                # an import of a.b too
                parent = target.rpartition(".")[0]
                while parent in known and not module.startswith(parent + ".") and parent != module:
                    found.add(parent)
                    parent = parent.rpartition(".")[0]
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 100))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main(argv: list[str]) -> int:
    quiet = "--quiet" in argv
    args = [a for a in argv if a != "--quiet"]
    package = Path(args[0] if args else Path(__file__).resolve().parent.parent / "livelatent").resolve()
    known = modules(package)
    graph = {name: imports(name, path, known) for name, path in known.items()}
    if not quiet:
        for name in sorted(graph):
            print(f"{name} -> {', '.join(sorted(graph[name])) or '(nothing of the package)'}")
    found = cycles(graph)
    for component in found:
        print(f"import cycle: {' <-> '.join(component)}")
    print(f"{len(known)} modules, {sum(len(v) for v in graph.values())} imports, "
          f"{len(found)} cycle{'s' * (len(found) != 1)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
