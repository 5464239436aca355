"""Bounded, linear summaries of untrusted server text (pure)."""

from __future__ import annotations

import re

__all__ = ["error_page_summary"]

_TITLE = re.compile(r"<title[^>]*>", re.I)


def error_page_summary(text: str, limit: int = 200) -> str:
    """A gateway page's title, else its first words; whitespace collapsed, at most ``limit``."""
    head = text[: 64 * 1024]
    match = _TITLE.search(head)
    if match:
        end = head.lower().find("</title>", match.end())
        words = head[match.end() : end if end >= 0 else match.end() + limit]
    else:
        words = re.sub(r"<[^>]{0,2000}>", " ", head[: limit * 20])
    return " ".join(words.split())[:limit]
