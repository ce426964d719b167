"""What the Python files under a folder import, read in a fresh interpreter.

Python 3.11's ``ast.parse`` keeps its depth count in state shared by every parse: when the cycle collector runs
inside a parse and a finalizer's exception is formatted (3.11's traceback formatting parses source too), the outer
parse fails with "AST constructor recursion depth mismatch". The test process holds many objects with finalizers
(models, hooks, other libraries'), so the files are parsed in a child that holds none.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_PARSE = """
import ast, json, sys
from pathlib import Path

root, folder, nested = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "nested"
found = []
for path in sorted(folder.rglob("*.py")):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree) if nested else tree.body:
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        found += [[str(path.relative_to(root)), name] for name in names]
print(json.dumps(found))
"""


def imports_under(root: Path, folder: Path, *, nested: bool) -> list[tuple[str, str]]:
    """(file relative to ``root``, imported module) for each import statement of the files under ``folder``.

    ``nested`` counts imports inside functions too; otherwise only a module's top-level statements.
    """
    args = [sys.executable, "-c", _PARSE, str(root), str(folder), "nested" if nested else "top"]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=120)
    return [(path, name) for path, name in json.loads(out.stdout)]
