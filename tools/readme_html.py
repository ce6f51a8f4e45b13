#!/usr/bin/env python3
"""Write the module's page in Odoo's Apps, static/description/index.html, from readme/*.md.

Odoo shows static/description/index.html when a module has one and otherwise runs its
README through docutils as reStructuredText; README.md is Markdown, so that gave a
dozen docutils warnings at every install and garbled text in Apps. As with OCA's
oca-gen-addon-readme, the readme/ fragments are the source of the page::

    python3 tools/readme_html.py          # rewrite the page
    python3 tools/readme_html.py --check  # exit 1 when the committed page is stale

The fragments keep to the Markdown that reads the same as reStructuredText
(paragraphs, ``-`` and ``1.`` lists, *emphasis*, **strong**) plus `code`. docutils
parses them; a docutils warning, other markup it finds, or Markdown it would read
otherwise (headings, fenced blocks, links) stops the tool with the fragment and line
instead of garbling the page. The HTML is written here from docutils' tree, not by its
HTML writer, so that it holds only tags Odoo's html_sanitize keeps and stays the same
whatever the docutils version.
"""

import argparse
import difflib
import html
import re
import sys
from pathlib import Path

from docutils import nodes
from docutils.core import publish_doctree
from docutils.utils import SystemMessage

ROOT = Path(__file__).resolve().parent.parent
PAGE = Path("static/description/index.html")
# (fragment, its heading on the page), in the order of OCA's READMEs.
FRAGMENTS = (
    ("DESCRIPTION", None),
    ("CONFIGURE", "Configuration"),
    ("USAGE", "Usage"),
    ("CONTRIBUTORS", "Contributors"),
)
DOCUTILS_SETTINGS = {
    "halt_level": 2,  # a warning is an error: the page is never written from half-parsed text
    "warning_stream": False,  # the message travels in the exception, printed once
    "file_insertion_enabled": False,
    "raw_enabled": False,
}
MARKDOWN_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
# Markdown that reST would silently read otherwise: headings, fenced blocks, links.
MARKDOWN_ONLY = re.compile(r"^ *(#|```|~~~)|\]\(", re.MULTILINE)
UNSUPPORTED = ("cannot be shown on the Apps page; keep to paragraphs, - and 1. lists, "
               "*emphasis*, **strong** and `code`")
INLINE_TAGS = {nodes.emphasis: "em", nodes.strong: "strong", nodes.literal: "code"}


class FragmentError(Exception):
    """A fragment that uses markup this page cannot show."""


def _children(node, fragment):
    return "".join(_html(child, fragment) for child in node.children)


def _html(node, fragment):
    if isinstance(node, nodes.Text):
        return html.escape(str(node), quote=False)
    if type(node) in INLINE_TAGS:
        tag = INLINE_TAGS[type(node)]
        return f"<{tag}>{_children(node, fragment)}</{tag}>"
    if isinstance(node, nodes.paragraph):
        return f"<p>{_children(node, fragment)}</p>\n"
    if isinstance(node, nodes.bullet_list):
        return f"<ul>\n{_children(node, fragment)}</ul>\n"
    if isinstance(node, nodes.enumerated_list):
        return f"<ol>\n{_children(node, fragment)}</ol>\n"
    if isinstance(node, nodes.list_item):
        if len(node.children) == 1 and isinstance(node[0], nodes.paragraph):
            return f"<li>{_children(node[0], fragment)}</li>\n"  # a simple item: no <p>
        return f"<li>\n{_children(node, fragment)}</li>\n"
    first = node
    while first.line is None and first.children:
        first = first[0]
    raise FragmentError(f"readme/{fragment}.md, line {first.line}: {node.tagname} {UNSUPPORTED}")


def fragment_html(fragment):
    """One fragment as HTML: Markdown's `code` becomes reST's ``code``, then docutils."""
    source = (ROOT / "readme" / f"{fragment}.md").read_text(encoding="utf-8")
    if found := MARKDOWN_ONLY.search(source):
        line = source.count("\n", 0, found.start()) + 1
        raise FragmentError(
            f"readme/{fragment}.md, line {line}: {found.group().strip()!r} {UNSUPPORTED}")
    try:
        document = publish_doctree(MARKDOWN_CODE.sub(r"``\1``", source),
                                   source_path=f"readme/{fragment}.md",
                                   settings_overrides=DOCUTILS_SETTINGS)
    except SystemMessage as error:
        raise FragmentError(str(error)) from error
    return _children(document, fragment)


def page_html():
    parts = ["<!-- Written by tools/readme_html.py from readme/*.md: edit those, run it. -->\n"]
    for fragment, heading in FRAGMENTS:
        if heading:
            parts.append(f"<h2>{heading}</h2>\n")
        parts.append(fragment_html(fragment))
    return "".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 when the committed page differs")
    args = parser.parse_args()
    try:
        wanted = page_html()
    except FragmentError as error:
        print(f"readme_html FAILED: {error}", file=sys.stderr)
        return 2
    page = ROOT / PAGE
    if not args.check:
        page.write_text(wanted, encoding="utf-8")
        print(f"wrote {PAGE}")
        return 0
    current = page.read_text(encoding="utf-8") if page.exists() else ""
    if current == wanted:
        return 0
    sys.stderr.writelines(difflib.unified_diff(
        current.splitlines(keepends=True), wanted.splitlines(keepends=True),
        f"{PAGE} (committed)", f"{PAGE} (from readme/)"))
    print(f"{PAGE} is stale (it is not what readme/ gives): "
          "run python3 tools/readme_html.py and commit it", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
