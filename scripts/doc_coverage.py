"""Docstring coverage of the public API: ``python scripts/doc_coverage.py [--list]``.

Public means: a module-level function or class, or a method of a public
class, whose name does not start with ``_``, in a module whose name does not
start with ``_`` (``__init__`` counts), under ``mapred/`` and ``models/``.
Properties count as methods; ``@overload`` stubs and nested functions do not.
"""
from __future__ import annotations

import ast
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("mapred", "models")


def public_items(path: str):
    """``(qualified name, has docstring)`` for every public function, class and method of a file."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            yield node.name, ast.get_docstring(node) is not None
            if isinstance(node, ast.ClassDef):
                for sub in node.body:
                    if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and not sub.name.startswith("_"):
                        yield f"{node.name}.{sub.name}", ast.get_docstring(sub) is not None


def coverage(root: str = ROOT) -> tuple[int, int, list[str]]:
    """(documented, total, undocumented names) over the packages."""
    done = total = 0
    missing = []
    for pkg in PACKAGES:
        for dirpath, _, files in os.walk(os.path.join(root, pkg)):
            for f in sorted(files):
                if not f.endswith(".py") or (f.startswith("_") and f != "__init__.py"):
                    continue
                path = os.path.join(dirpath, f)
                for name, ok in public_items(path):
                    total += 1
                    done += ok
                    if not ok:
                        missing.append(f"{os.path.relpath(path, root)}: {name}")
    return done, total, missing


def main() -> None:
    done, total, missing = coverage()
    if "--list" in sys.argv:
        print("\n".join(missing))
    print(f"public docstrings: {done}/{total} = {100 * done / max(1, total):.1f}%")


if __name__ == "__main__":
    main()
