"""tools/readme_html.py, run as the lint layer runs it, on a copy of the project."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from odoo.tools import html_sanitize

ROOT = Path(__file__).resolve().parents[2]
PAGE = "static/description/index.html"


@pytest.fixture
def project(tmp_path):
    project = tmp_path / "project"
    for name in ("tools/readme_html.py", PAGE):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, project / name)
    shutil.copytree(ROOT / "readme", project / "readme")
    return project


def readme_html(project, *args):
    return subprocess.run([sys.executable, str(project / "tools/readme_html.py"), *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_check_catches_a_stale_page_until_it_is_rewritten(project):
    assert readme_html(project, "--check").returncode == 0, "the committed page is current"
    usage = project / "readme/USAGE.md"
    usage.write_text(usage.read_text() + "- **Promote** copies a staging tag to production.\n")
    committed = (project / PAGE).read_text()

    result = readme_html(project, "--check")

    assert result.returncode == 1
    assert f"{PAGE} is stale" in result.stderr
    assert "+<li><strong>Promote</strong> copies a staging tag to production.</li>" in result.stderr
    assert (project / PAGE).read_text() == committed, "--check changes nothing"
    assert readme_html(project).returncode == 0
    assert readme_html(project, "--check").returncode == 0


@pytest.mark.parametrize(("markup", "message"), [
    ("Run **make demo first.\n", "readme/USAGE.md:{line}: (WARNING/2) Inline strong start-string"),
    ("```sh\nmake demo\n```\n", "readme/USAGE.md, line {line}: '```' cannot be shown"),
    ("See [the API](docs/api.md).\n", "readme/USAGE.md, line {line}: '](' cannot be shown"),
    ("A term\n  and its definition\n",
     "readme/USAGE.md, line {line}: definition_list cannot be shown"),
])
def test_markup_the_page_cannot_show_stops_the_tool(project, markup, message):
    usage = project / "readme/USAGE.md"
    text = usage.read_text()
    usage.write_text(text + "\n" + markup)
    message = message.format(line=len(text.splitlines()) + 2)  # after the blank line
    committed = (project / PAGE).read_text()

    result = readme_html(project)

    assert result.returncode == 2
    assert message in result.stderr
    assert (project / PAGE).read_text() == committed


def test_odoo_sanitizer_keeps_the_page():
    """Apps shows the page through html_sanitize: only the opening comment may go."""
    page = (ROOT / PAGE).read_text()
    assert html_sanitize(page) == page.split("\n", 1)[1]
