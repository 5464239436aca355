"""``search``: the web sources a search used, as a compact numbered list.

Each source is its index (the number the answer's citation markers use), its title linked
through the safe-link rules (http(s) only, query string dropped, ``rel=noopener``) and its site.
The ``icon`` URL is never fetched or embedded: a remote image would tell a stranger's server
that the notebook was opened. ``extra_tool_info`` entries are shown as sent.
"""

from __future__ import annotations

from ...trace import SearchResults, Source, Trace
from .. import _html_kit as h
from .. import _text_kit as t
from .._common import http_url, strip_query, url_label
from . import StepView
from ._shared import count, json_text

__all__ = ["VIEW"]


def _html_source(source: Source) -> str:
    index = f'<span class="dm-src-index">[{h.esc(source.index)}]</span>'
    target = http_url(source.url)
    title = source.title or (url_label(source.url) if source.url else "(untitled)")
    if target is not None:
        main = h.link(target, title)
    else:  # not a web link: title and address as text, never clickable
        address = f' <span class="dm-mono">{h.esc(strip_query(source.url))}</span>' if source.url else ""
        main = f"{h.esc(title)}{address}"
    site = source.site_name or (url_label(target) if target and not source.title else "")
    tail = f' <span class="dm-src-site">{h.esc(site)}</span>' if site else ""
    return f"<li>{index} {main}{tail}</li>"


def _extra_text(step: SearchResults) -> str:
    text = json_text(step.extra)
    # No repr() fallback: it recurses too, and the entries are untrusted and may nest deep.
    return text if text is not None else "(extra tool info nests too deep to show as JSON)"


def _html_extra(step: SearchResults) -> str:
    if not step.extra:
        return ""
    return f'<div class="dm-section">Extra tool info</div>{h.pre(_extra_text(step))}'


def _html(step: SearchResults, trace: Trace, images: h.Images | None) -> str:
    n = len(step.sources)
    summary = (
        '<summary><span class="dm-plugin">web search</span> '
        f'{h.badge("info", count(n, "source"))}</summary>'
    )
    if step.sources:
        items = "".join(_html_source(s) for s in step.sources)
        listing = f'<ul class="dm-sources">{items}</ul>'
    else:
        listing = '<div class="dm-muted">the search listed no sources</div>'
    body = f'<div class="dm-body">{listing}{_html_extra(step)}</div>'
    return f'<details class="dm-step dm-search" open>{summary}{body}</details>'


def _text_source(source: Source) -> str:
    words = [t.safe(w) for w in (source.title, source.site_name) if w]
    label = " — ".join(words) or "(untitled)"
    url = f" · {strip_query(source.url)}" if source.url else ""
    return f"{t.INDENT}[{t.safe(source.index)}] {label}{url}"


def _text(step: SearchResults, trace: Trace, images: t.Images | None) -> list[str]:
    lines = [f"[search] {count(len(step.sources), 'source')}"]
    lines += [_text_source(s) for s in step.sources]
    if step.extra:
        lines += [f"{t.INDENT}extra tool info:", *t.indent(t.safe(_extra_text(step)), t.INDENT * 2)]
    return lines


VIEW: StepView[SearchResults] = StepView("search", SearchResults, _html, _text)
