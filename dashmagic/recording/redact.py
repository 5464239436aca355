"""Keep secrets out of recordings: the key, any bearer token, and long pieces of them.

A streamed answer that echoes the key shows a growing prefix of it event after event, so in
response bodies any piece of ``MIN_FRAGMENT`` or more characters of a secret goes too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

__all__ = ["REDACTED", "MIN_SECRET", "MIN_FRAGMENT", "redact_chunks", "scrub"]

REDACTED = "<redacted>"
MIN_SECRET = 4  # shorter "keys" would redact ordinary text; real keys are ~35 characters
MIN_FRAGMENT = 10  # a piece of the key this long is redacted too (see _secret_spans)


def _secret_forms(secrets: Sequence[str]) -> list[str]:
    """Every spelling of each secret that can appear in a JSON line, longest first."""
    forms: set[str] = set()
    for secret in secrets:
        if not secret or len(secret) < MIN_SECRET:
            continue
        for text in (secret, json.dumps(secret, ensure_ascii=False)[1:-1], json.dumps(secret)[1:-1]):
            forms.add(f"Bearer {text}")
            forms.add(text)
    return sorted(forms, key=len, reverse=True)


def scrub(text: str, secrets: Sequence[str]) -> str:
    for form in _secret_forms(secrets):
        text = text.replace(form, REDACTED)
    return text


def _secret_spans(body: bytes, secret: bytes) -> list[tuple[int, int]]:
    """Where ``secret`` or a long enough piece of it (``MIN_FRAGMENT`` bytes) occurs in ``body``.

    Pieces matter because a streamed answer that echoes the key grows a few characters per event
    (snapshot mode): every event but the last holds a longer and longer prefix of it.
    """
    size = min(len(secret), MIN_FRAGMENT)
    spans: list[tuple[int, int]] = []
    for i in range(len(secret) - size + 1):
        seed = secret[i : i + size]
        start = body.find(seed)
        while start >= 0:
            lo, hi, s_lo, s_hi = start, start + size, i, i + size
            while lo > 0 and s_lo > 0 and body[lo - 1] == secret[s_lo - 1]:
                lo, s_lo = lo - 1, s_lo - 1
            while hi < len(body) and s_hi < len(secret) and body[hi] == secret[s_hi]:
                hi, s_hi = hi + 1, s_hi + 1
            if body[max(0, lo - 7) : lo] == b"Bearer ":
                lo -= 7
            spans.append((lo, hi))
            start = body.find(seed, start + 1)
    return spans


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def redact_chunks(chunks: list[bytes], secrets: Sequence[str]) -> list[bytes]:
    """Redact secrets (and long pieces of them) in a chunked body, even across chunk boundaries.

    A boundary falling inside an occurrence is moved to its end, so the whole occurrence is in
    one chunk and is replaced there; no other boundary moves.
    """
    body = b"".join(chunks)
    spans = _merge([
        span
        for secret in secrets
        if secret and len(secret) >= MIN_SECRET
        for span in _secret_spans(body, secret.encode("utf-8"))
    ])
    if not spans:
        return chunks
    bounds, offset = [], 0
    for chunk in chunks[:-1]:
        offset += len(chunk)
        bounds.append(next((hi for lo, hi in spans if lo < offset < hi), offset))
    pieces, previous = [], 0
    for bound in [*bounds, len(body)]:
        bound = max(bound, previous)
        piece, cursor = bytearray(), previous
        for lo, hi in spans:
            if previous <= lo < bound:
                piece += body[cursor:lo] + REDACTED.encode()
                cursor = hi
        piece += body[cursor:bound]
        previous = bound
        if piece:
            pieces.append(bytes(piece))
    return pieces
