"""Inline citation markers in the answer (``[1]``, ``[ref_3]``) linked to their web sources.

Run on the *sanitized* HTML of the answer (after Markdown and nh3), in one left-to-right pass:
each tag is stepped over whole (so nothing inside an attribute changes), text inside ``<a>``,
``<code>`` and ``<pre>`` is left alone (``x[1]`` in code is not a citation, and links do not
nest), and only markers whose index is a listed source change. A marker becomes a link to the
source URL itself, its text kept: an anchor to an ``id`` would need ids, which the renderer never
emits (GitHub and nbval strip or compare them). A source whose URL is not plain http(s) gets a
non-link ``<span>`` with its title, so a ``javascript:`` source is never clickable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ..trace import Source
from ._common import http_url
from ._html_kit import esc

__all__ = ["link_citations", "MARKER"]

#: ``[1]`` or ``[ref_1]`` (the two ``citation_format`` values the service documents).
MARKER = re.compile(r"\[(?:ref_)?(\d{1,9})\]")
# A tag of nh3's output (attribute values double-quoted; they may hold ">"), or a marker.
# Sanitized HTML has no bare "<" in text (nh3 escapes it), so every "<" opens a real tag.
_TOKEN = re.compile(r'(<[^>"]*(?:"[^"]*"[^>"]*)*>)|\[(?:ref_)?(\d{1,9})\]')
_TAG_NAME = re.compile(r"</?([A-Za-z][A-Za-z0-9]*)")
_SKIP = frozenset({"a", "code", "pre"})
_REL = "noopener noreferrer nofollow"


def _title(source: Source) -> str:
    parts = [p for p in (source.title, source.site_name) if p]
    return " — ".join(parts) or source.url


def _marker_html(marker: str, source: Source) -> str:
    target = http_url(source.url)
    title = esc(_title(source))
    if target is None:
        return f'<span class="dm-cite" title="{title}">{marker}</span>'
    return (
        f'<a class="dm-cite" href="{esc(target)}" title="{title}" rel="{_REL}" '
        f'target="_blank">{marker}</a>'
    )


def _skip_delta(tag: str) -> int:
    """+1 for an opening ``<a>``/``<code>``/``<pre>``, -1 for its closing tag, else 0."""
    name = _TAG_NAME.match(tag)
    if name is None or name.group(1).lower() not in _SKIP or tag.endswith("/>"):
        return 0
    return -1 if tag.startswith("</") else 1


def link_citations(markup: str, sources: Iterable[Source]) -> str:
    """``markup`` (sanitized answer HTML) with markers of listed sources linked to them."""
    by_index: Mapping[int, Source] = {s.index: s for s in sources if isinstance(s.index, int)}
    if not by_index or "[" not in markup:
        return markup
    out: list[str] = []
    pos, skip = 0, 0
    for m in _TOKEN.finditer(markup):
        tag, number = m.group(1), m.group(2)
        if tag is not None:
            skip = max(0, skip + _skip_delta(tag))
            continue
        source = by_index.get(int(number))
        if skip or source is None:
            continue
        out.append(markup[pos : m.start()])
        out.append(_marker_html(m.group(), source))
        pos = m.end()
    out.append(markup[pos:])
    return "".join(out)
