"""Odoo 19 runs on Python 3.10: no file of the addon may need a newer Python to load.

``datetime.UTC`` (3.11) in a controller made the whole addon fail to import on
3.10. This suite also runs on a 3.10 interpreter, but it imports only the
engine, so the rest of the addon is read here instead of imported.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_DIRS = {".venv", ".git", "__pycache__", "node_modules"}


def addon_python_files():
    for path in sorted(ROOT.rglob("*.py")):
        if not SKIPPED_DIRS & set(path.relative_to(ROOT).parts):
            yield path


def uses_of_datetime_utc(tree):
    """Lines that import ``UTC`` from datetime or read ``datetime.UTC``."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "datetime" and any(
                alias.name == "UTC" for alias in node.names):
            lines.append(node.lineno)
        elif (isinstance(node, ast.Attribute) and node.attr == "UTC"
              and isinstance(node.value, ast.Name) and node.value.id == "datetime"):
            lines.append(node.lineno)
    return lines


def test_no_file_uses_datetime_utc():
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in addon_python_files()
        for line in uses_of_datetime_utc(ast.parse(path.read_text(), str(path)))
    ]
    assert not offenders, f"datetime.UTC is Python 3.11+; use timezone.utc: {offenders}"


def test_the_check_finds_both_spellings():
    tree = ast.parse("from datetime import UTC, datetime\nimport datetime\nx = datetime.UTC\n")
    assert uses_of_datetime_utc(tree) == [1, 3]
