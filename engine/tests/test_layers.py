"""DESIGN.md's layering: views, wizards and controllers are thin and reach the engine
only through models; the engine never imports Odoo."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
THIN_LAYERS = ("controllers", "wizards", "views")


def imported_modules(path):
    """Every module a Python file imports, relative imports with their leading dots."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
    return names


@pytest.mark.parametrize("layer", THIN_LAYERS)
def test_thin_layers_do_not_import_the_engine(layer):
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / layer).rglob("*.py"))
        for name in imported_modules(path)
        if name.lstrip(".").split(".")[0] == "engine" or ".engine" in name
    ]
    assert not offenders, offenders


def test_the_engine_does_not_import_odoo():
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "engine").rglob("*.py"))
        for name in imported_modules(path)
        if name.split(".")[0] == "odoo"
    ]
    assert not offenders, offenders
