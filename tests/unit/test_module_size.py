"""A module over 500 lines says at its top why it is one module (issue 18: a reader finds code by module name)."""

import ast
import re
from pathlib import Path

import birdcall

LIMIT = 500


def test_every_long_module_states_why_in_its_docstring():
    root = Path(birdcall.__file__).parent
    unexplained = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") <= LIMIT:
            continue
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if not re.search(r"\b\d00 lines\b", docstring):
            unexplained.append(f"{path.relative_to(root)} ({text.count(chr(10))} lines)")
    assert not unexplained, "over 500 lines without a reason at the top: " + ", ".join(unexplained)
