"""docs/error-codes.md stays true: one row per catalogue code, matching the catalogue, naming
engine functions and engine tests that exist and really deal with that code."""

import ast
import importlib
import importlib.util
import re
from pathlib import Path

import pytest

from engine.error_catalogue import ERROR_CODES

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "error-codes.md"
SOP = ROOT.parent / "shared" / "SOP-DEPLOY-001.md"
TESTS = Path(__file__).resolve().parent
COLUMNS = ("code", "step", "severity", "resolution", "source", "produced_by", "engine_test",
           "odoo_test")
ODOO_ONLY = "Odoo only"
ENGINE_TEST_RE = re.compile(r"engine/tests/(test_\w+\.py)::(test_\w+)")
ENGINE_MODULES = ("appspec|checks|client|deployment|doctl|urls|github|gates|freeze|dry_run|"
                  "notify")
ENGINE_NAME_RE = re.compile(rf"`((?:{ENGINE_MODULES})\.[\w.]+)`")


def doc_rows():
    """The table rows of the doc, as dicts keyed by COLUMNS, in document order."""
    rows = []
    for line in DOC.read_text().splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == len(COLUMNS), line
        row = dict(zip(COLUMNS, cells, strict=True))
        row["code"] = row["code"].strip("`")
        rows.append(row)
    return rows


ROWS = doc_rows()
BY_CODE = {row["code"]: row for row in ROWS}


def test_every_catalogue_code_has_exactly_one_row_in_catalogue_order():
    assert [row["code"] for row in ROWS] == list(ERROR_CODES)


@pytest.mark.parametrize("code", list(ERROR_CODES))
def test_row_matches_the_catalogue(code):
    row, entry = BY_CODE[code], ERROR_CODES[code]
    assert row["step"] == str(entry.step)
    assert row["severity"] == entry.severity
    resolution = "varies" if entry.resolution_minutes is None else str(entry.resolution_minutes)
    assert row["resolution"] == resolution
    assert row["source"] in ("SOP", "rule")


def test_the_ten_sop_codes_are_listed_and_marked():
    sop_rows = [row["code"] for row in ROWS if row["source"] == "SOP"]
    assert len(sop_rows) == 10
    section = DOC.read_text().split("## How severities and times were chosen", 1)[1]
    listed = [name for name in re.findall(r"`(\w+)`", section.split("The other 21", 1)[0])
              if name in ERROR_CODES]
    assert listed == sop_rows


@pytest.mark.skipif(not SOP.exists(), reason="the shared SOP is not next to this clone")
def test_sop_codes_keep_the_sop_severity_and_time():
    sop = {}
    for line in SOP.read_text().split("## Error Code Reference", 1)[1].splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in ERROR_CODES:
            minutes = re.match(r"(\d+) min", cells[3])
            sop[cells[0]] = (cells[1].lower(), int(minutes.group(1)) if minutes else None)
    assert set(sop) == {row["code"] for row in ROWS if row["source"] == "SOP"}
    for code, (severity, minutes) in sop.items():
        assert (ERROR_CODES[code].severity, ERROR_CODES[code].resolution_minutes) == (
            severity, minutes), code


def _test_source(file_name, test_name):
    """Source of a module-level test function, decorators (parametrize values) included."""
    text = (TESTS / file_name).read_text()
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name == test_name:
            start = min([node.lineno] + [item.lineno for item in node.decorator_list])
            return "\n".join(text.splitlines()[start - 1:node.end_lineno])
    return None


def _engine_source():
    """The engine's code (its notifications included), without the catalogue and tests."""
    paths = [*(ROOT / "engine").glob("*.py"), *(ROOT / "engine" / "notify").glob("*.py")]
    return "\n".join(path.read_text() for path in paths if path.name != "error_catalogue.py")


@pytest.mark.parametrize("code", list(ERROR_CODES))
def test_named_engine_tests_exist_and_produce_the_code(code):
    row = BY_CODE[code]
    if row["engine_test"] == ODOO_ONLY:
        assert row["produced_by"].startswith(ODOO_ONLY)
        assert not re.search(rf"\b{code}\b", _engine_source()), (
            f"the engine produces {code} now: name its engine test in the doc")
        return
    named = ENGINE_TEST_RE.findall(row["engine_test"])
    assert named, f"{code}: no engine test named"
    assert re.search(rf"\b{code}\b", _engine_source()), f"the engine never produces {code}"
    for file_name, test_name in named:
        source = _test_source(file_name, test_name)
        assert source is not None, f"{file_name}::{test_name} does not exist"
        assert re.search(rf"\b{code}\b", source), f"{file_name}::{test_name} never names {code}"


def _is_module(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent is a module, not a package
        return False


@pytest.mark.parametrize("code", list(ERROR_CODES))
def test_named_engine_functions_exist(code):
    for name in ENGINE_NAME_RE.findall(BY_CODE[code]["produced_by"]):
        parts = name.split(".")
        # The longest importable prefix is the module (``notify.delivery.deliver``).
        cut = next(cut for cut in range(len(parts), 0, -1)
                   if _is_module(f"engine.{'.'.join(parts[:cut])}"))
        target = importlib.import_module(f"engine.{'.'.join(parts[:cut])}")
        for attribute in parts[cut:]:
            assert hasattr(target, attribute), f"{name} does not exist"
            target = getattr(target, attribute)
