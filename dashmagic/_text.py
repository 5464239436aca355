"""Text helpers for server-supplied strings (pure, linear in the input, no third-party imports).

Server text is untrusted. A gateway that fails in front of DashScope answers with an HTML page, not JSON; the error the
user sees should be that page's title or first words, never the page. Error bodies can be up to
1 MB of hostile text, so every step here is a single pass: no pattern that pairs a lazy body
with a closing tag (``<title>(.*?)</title>`` rescans to the end from every unclosed ``<title>``:
20,000 of them took 17 s).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["error_page_summary", "last_user_text"]

_TITLE_OPEN = re.compile(r"<title", re.I)
_TITLE_CLOSE = re.compile(r"</title\s*>", re.I)
# The content of these elements is code, not words.
_HIDDEN_OPEN = re.compile(r"<(script|style)\b", re.I)
_HIDDEN_CLOSE = {"script": re.compile(r"</script\s*>", re.I), "style": re.compile(r"</style\s*>", re.I)}
# A tag (a letter, "/", "!" or "?" after "<") ends at ">"; a "<" that is not closed before
# the next "<" is text, so no start rescans past the next tag.
_TAG = re.compile(r"<[A-Za-z/!?][^<>]*>")
_WORD = re.compile(r"\S+")
# C0/C1 controls (terminal escapes such as OSC 52 or ESC[2J) and bidi/invisible characters.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def error_page_summary(text: str, limit: int = 200) -> str:
    """The page's ``<title>``, else its first words: one line of at most ``limit`` characters.

    Tags, scripts and styles are dropped, entities decoded, whitespace collapsed; control and
    invisible characters are shown as ``\\x1b`` / ``⟨U+202E⟩``. Empty when the page has no words.
    """
    title = _title(text)
    words = _first_words(_strip_tags(title if title is not None else _drop_hidden(text)), limit)
    line = _first_words(html.unescape(words), limit + 1)
    line = _UNSAFE.sub(_escape, line)
    return line if len(line) <= limit else line[: max(limit - 1, 0)].rstrip() + "…"


def _title(text: str) -> str | None:
    opening = _TITLE_OPEN.search(text)
    if opening is None:
        return None
    start = text.find(">", opening.end())
    if start < 0:
        return None
    closing = _TITLE_CLOSE.search(text, start + 1)
    if closing is None:
        return None
    title = text[start + 1 : closing.start()]
    return title if title.strip() else None


def _drop_hidden(text: str) -> str:
    pieces, pos = [], 0
    while True:
        opening = _HIDDEN_OPEN.search(text, pos)
        if opening is None:
            break
        pieces.append(text[pos : opening.start()])
        closing = _HIDDEN_CLOSE[opening.group(1).lower()].search(text, opening.end())
        if closing is None:
            return " ".join(pieces)  # an unclosed script runs to the end of the page
        pieces.append(" ")
        pos = closing.end()
    pieces.append(text[pos:])
    return "".join(pieces)


def _strip_tags(text: str) -> str:
    return _TAG.sub(" ", text)


def _first_words(text: str, limit: int) -> str:
    """Whitespace-collapsed words, stopping as soon as ``limit`` characters are reached."""
    words: list[str] = []
    size = -1
    for match in _WORD.finditer(text):
        words.append(match.group())
        size += len(words[-1]) + 1
        if size > limit:
            break
    return " ".join(words)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0xA0 else f"⟨U+{code:04X}⟩"


def last_user_text(messages: Any) -> str | None:
    """The text of the last user message of a chat ``messages`` list: its string content, or the
    ``text`` parts of list-form content joined; None when there is no readable user message."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Iterable):
        return None
    for message in reversed(list(messages)):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, (list, tuple)):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping)).strip()
            return None
    return None
