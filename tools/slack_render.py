"""Draw a Slack Block Kit message as Slack's desktop client shows it, in plain HTML.

Used by tools/notification_screenshots.py to photograph the message a local
Slack receiver got (no Slack workspace is involved): the JSON is rendered as
received; mrkdwn (``*bold*``, ``_italic_``, `` `code` ``, ``<url|label>``
links, ``> quote`` lines, ``<!date^...|fallback>`` tokens shown by their fallback,
the three escaped characters) and the section, fields, context, actions and
divider blocks are drawn with Slack's layout and colours. The emoji that
engine/notify/slack.py uses are drawn as small coloured tiles with a glyph
(:data:`EMOJI`), as a machine without a colour emoji font cannot draw Slack's.
"""

import html
import re

# Shortcode: (tile colour, glyph, round).
EMOJI = {
    "rocket": ("#1d9bd1", "↑", False), "hourglass_flowing_sand": ("#e8a33d", "…", False),
    "white_check_mark": ("#2eb67d", "✓", False), "x": ("#e01e5a", "✕", False),
    "rewind": ("#1d9bd1", "«", False), "leftwards_arrow_with_hook": ("#1d9bd1", "↩", False),
    "rotating_light": ("#e01e5a", "!", True), "warning": ("#e8a33d", "!", False),
    "red_circle": ("#e01e5a", "", True),
}


def _emoji(match):
    if match.group(1) not in EMOJI:
        return match.group(0)
    colour, glyph, round_ = EMOJI[match.group(1)]
    radius = "50%" if round_ else "4px"
    return (f'<span class="emoji" style="background:{colour};border-radius:{radius}" '
            f'title=":{match.group(1)}:">{glyph}</span>')
_TOKEN = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")
STYLE = """
body { margin: 0; background: #fff; font: 15px/1.46668 'Lato', 'Helvetica Neue', Arial,
       sans-serif; color: #1d1c1d; }
.header { border-bottom: 1px solid #ddd; padding: 12px 20px; font-weight: 900; font-size: 18px; }
.header span { color: #616061; font-weight: 400; font-size: 13px; margin-left: 6px; }
.msg { display: flex; padding: 12px 20px; gap: 8px; }
.avatar { width: 36px; height: 36px; border-radius: 6px; background: #0069ff; color: #fff;
          font-weight: 900; display: flex; align-items: center; justify-content: center; }
.body { flex: 1; min-width: 0; }
.name { font-weight: 900; } .app { background: #ddd; color: #616061; font-size: 10px;
        font-weight: 700; padding: 1px 3px; border-radius: 2px; margin: 0 4px; }
.time { color: #616061; font-size: 12px; }
.section { margin: 4px 0; white-space: pre-wrap; word-wrap: break-word; }
.fields { display: grid; grid-template-columns: 1fr 1fr; gap: 8px 16px; margin: 8px 0;
          max-width: 600px; white-space: pre-wrap; }
.context { color: #616061; font-size: 12px; margin: 4px 0; display: flex; gap: 12px; }
.actions { margin: 8px 0; } .button { display: inline-block; border: 1px solid #bbb;
          border-radius: 4px; padding: 3px 12px; font-weight: 700; font-size: 13px; }
hr { border: 0; border-top: 1px solid #ddd; margin: 12px 0; }
code { color: #e01e5a; background: #f6f6f6; border: 1px solid #ddd; border-radius: 3px;
       padding: 0 3px; font-size: 12px; font-family: Monaco, Menlo, Consolas, monospace; }
a { color: #1264a3; text-decoration: none; }
.emoji { display: inline-block; width: 20px; height: 20px; line-height: 20px; color: #fff;
         text-align: center; font-weight: 900; font-size: 13px; vertical-align: -3px;
         font-family: 'DejaVu Sans', sans-serif; }
blockquote { margin: 2px 0; padding-left: 12px; border-left: 4px solid #ddd; }
"""


def mrkdwn(text):
    """Slack mrkdwn as HTML: the text arrives with &, < and > escaped by the sender."""
    links = []

    def token(match):
        target, label = match.group(1), match.group(2)
        if target.startswith("!date^"):
            shown = html.escape(html.unescape(label or ""))
        elif target.startswith(("http://", "https://")):
            shown = (f'<a href="{html.escape(html.unescape(target))}">'
                     f"{html.escape(html.unescape(label or target))}</a>")
        else:
            shown = html.escape(html.unescape(label or target))
        links.append(shown)
        return f"\x00{len(links) - 1}\x00"

    text = _TOKEN.sub(token, text)
    text = html.escape(html.unescape(text), quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"<b>\1</b>", text)
    text = re.sub(r"(?<![\w_])_([^_\n]+)_(?![\w_])", r"<i>\1</i>", text)
    text = re.sub(r":([a-z_]+):", _emoji, text)
    lines = [f"<blockquote>{line[5:]}</blockquote>" if line.startswith("&gt; ") else line
             for line in text.split("\n")]
    text = "\n".join(lines).replace("</blockquote>\n", "</blockquote>")
    return re.sub("\x00(\\d+)\x00", lambda m: links[int(m.group(1))], text)


def block_html(block):
    kind = block["type"]
    if kind == "section":
        parts = []
        if "text" in block:
            parts.append(f'<div class="section">{mrkdwn(block["text"]["text"])}</div>')
        if "fields" in block:
            cells = "".join(f"<div>{mrkdwn(f['text'])}</div>" for f in block["fields"])
            parts.append(f'<div class="fields">{cells}</div>')
        return "".join(parts)
    if kind == "context":
        return '<div class="context">' + "".join(
            f"<span>{mrkdwn(e['text'])}</span>" for e in block["elements"]) + "</div>"
    if kind == "actions":
        return '<div class="actions">' + "".join(
            f'<span class="button">{html.escape(e["text"]["text"])}</span>'
            for e in block["elements"]) + "</div>"
    if kind == "divider":
        return "<hr>"
    return ""


def page(message, *, channel, app_name="do_deploy", time_text=""):
    """A whole HTML page showing ``message`` posted in ``channel``."""
    blocks = "".join(block_html(block) for block in message["blocks"])
    return (f"<!doctype html><html><head><meta charset='utf-8'><style>{STYLE}</style></head>"
            f"<body><div class='header'># {html.escape(channel)}"
            f"<span>incoming webhook, as the local receiver got it</span></div>"
            f"<div class='msg'><div class='avatar'>do</div><div class='body'>"
            f"<div><span class='name'>{html.escape(app_name)}</span><span class='app'>APP</span>"
            f"<span class='time'>{html.escape(time_text)}</span></div>{blocks}</div></div>"
            f"</body></html>")
