"""URL text helpers that every layer may use (pure: no I/O, no third-party imports)."""

from __future__ import annotations

import re

__all__ = ["display_url"]

_AUTHORITY_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*:)?//(?P<authority>[^/\\]*)(?P<rest>.*)", re.S)


def display_url(url: str) -> str:
    """``url`` without query string, fragment or user info: safe to show and to save.

    The query of a signed OSS URL is a bearer capability (``OSSAccessKeyId=…&Signature=…``), and
    user info is a password. Never raises; text that is not a URL comes back minus ``?…``/``#…``.
    """
    text = url if isinstance(url, str) else str(url)
    base = re.split(r"[?#]", text, maxsplit=1)[0]
    match = _AUTHORITY_URL.fullmatch(base)
    if match is None:
        return base
    authority = match["authority"].rpartition("@")[2]
    return f"{match['scheme'] or ''}//{authority}{match['rest']}"
