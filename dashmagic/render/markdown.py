"""Model Markdown → safe HTML: markdown-it-py (raw HTML off) then nh3 with an explicit allow-list.

Both libraries are imported on first use and the parser/cleaner are built once, so
``import dashmagic.render`` stays cheap. Images are never emitted: ``![alt](url)`` becomes a link to
the URL without its query string (a remote ``<img>`` would make the browser fetch attacker URLs,
and signed OSS URLs are bearer capabilities).
"""

from __future__ import annotations

import html
import threading
from typing import Any

from ._common import http_url, redact

__all__ = [
    "markdown_to_html",
    "ALLOWED_TAGS",
    "ALLOWED_ATTRIBUTES",
    "URL_SCHEMES",
    "LINK_REL",
    "MARKDOWN_LIMIT",
]

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s",
        "code", "pre", "blockquote", "ul", "ol", "li", "table", "thead", "tbody", "tr", "th",
        "td", "a",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
#: markdown-it writes column alignment as ``style="text-align:…"``; only these exact values pass.
_ALIGN = {f"text-align:{a}" for a in ("left", "center", "right")}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
#: Longer text is shown as escaped plain text. markdown-it is linear, but adversarial Markdown
#: (10,000 "![a](", runs of "[") costs it ~13 µs a character; real answers are far shorter.
MARKDOWN_LIMIT = 100_000
LINK_REL = "noopener noreferrer nofollow"

_parser: Any = None
_LOAD = threading.Lock()
_cleaner: Any = None


def _image_rule(self: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    url = http_url(token.attrGet("src") or "")
    label = html.escape(f"[image: {token.content}]" if token.content else "[image]", quote=True)
    if url is None:
        return label
    return f'<a href="{html.escape(url, quote=True)}">{label}</a>'


def _get_parser() -> Any:
    with _LOAD:  # one import at a time: a render from another thread must not see a half-made module
        return _parser or _make_parser()


def _make_parser() -> Any:
    global _parser
    if _parser is None:
        from markdown_it import MarkdownIt

        md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
        md.add_render_rule("image", _image_rule)
        _parser = md
    return _parser


def _get_cleaner() -> Any:
    with _LOAD:
        return _cleaner or _make_cleaner()


def _make_cleaner() -> Any:
    global _cleaner
    if _cleaner is None:
        import nh3

        _cleaner = nh3.Cleaner(
            tags=set(ALLOWED_TAGS),
            clean_content_tags={"script", "style"},
            attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
            tag_attribute_values={"th": {"style": _ALIGN}, "td": {"style": _ALIGN}},
            set_tag_attribute_values={"a": {"target": "_blank"}},
            url_schemes=set(URL_SCHEMES),
            url_relative="deny",
            link_rel=LINK_REL,
            strip_comments=True,
        )
    return _cleaner


def markdown_to_html(text: str) -> str:
    """Render untrusted Markdown to sanitized HTML (no images, scripts, styles or handlers)."""
    text = redact(text)
    if len(text) > MARKDOWN_LIMIT:
        return _plain(text)
    raw = _get_parser().render(text)
    return str(_get_cleaner().clean(raw)).strip()


def _plain(text: str) -> str:
    note = f"(longer than {MARKDOWN_LIMIT:,} characters: shown as plain text, not Markdown)"
    return f'<p class="dm-muted">{note}</p><pre>{html.escape(text, quote=True)}</pre>'

