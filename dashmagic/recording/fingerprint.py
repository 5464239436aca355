"""What identifies a request in a recording, and how two requests are compared.

A fingerprint is generic: the method, the URL path (no host, no query), every ``X-DashScope-*``
request header and the JSON body. It knows no header by name: a header whose value is JSON is
compared as parsed JSON (key order and spacing do not matter), any other value as its stripped
text. Which headers only choose the *framing* of the reply (an event stream or one JSON body)
is the caller's knowledge, passed in as ``stream_headers``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from .._text import last_user_text

__all__ = [
    "HEADER_PREFIX",
    "VOLATILE_PARAMETERS",
    "Fingerprint",
    "canonical_body",
    "canonical_header",
    "canonical_request",
    "describe",
    "differences",
    "fingerprint",
    "fingerprint_key",
    "loose_key",
    "prompt_of",
    "without_headers",
]

#: Request headers taking part in matching: the service's own (never Authorization, never the
#: host, never transport headers such as Accept-Encoding).
HEADER_PREFIX = "x-dashscope-"
#: Keys under the request body's ``parameters`` that differ between otherwise identical calls
#: and so must not take part in matching. dashmagic sends none today (seed, model and messages
#: are the user's data and always match); the mechanism stays for fields such as a client-side
#: ``request_id`` that some SDK versions add.
VOLATILE_PARAMETERS: tuple[str, ...] = ("request_id",)

Fingerprint = dict[str, Any]


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def canonical_header(value: Any) -> Any:
    """A header value as compared: parsed JSON when it is JSON, else the stripped text.

    Already-parsed values (read back from a recording) are kept as they are.
    """
    if not isinstance(value, (str, bytes)):
        return value
    text = _text(value).strip()
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def _drop_volatile(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("parameters"), dict):
        value = dict(value)
        value["parameters"] = {k: v for k, v in value["parameters"].items() if k not in VOLATILE_PARAMETERS}
    return value


def canonical_body(body: bytes | str | None) -> Any:
    """The body as compared: parsed JSON minus volatile parameters, else text, else base64."""
    if not isinstance(body, (bytes, str)) or not body:
        return None  # no body, or a streamed one (dashmagic always sends bytes)
    raw = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"body_b64": base64.b64encode(raw).decode("ascii")}
    try:
        return _drop_volatile(json.loads(text))
    except (ValueError, RecursionError):
        return text


def _service_headers(headers: Mapping[Any, Any]) -> dict[str, Any]:
    picked: dict[str, Any] = {}
    for name, value in headers.items():
        lower = _text(name).strip().lower()
        if lower.startswith(HEADER_PREFIX):
            picked[lower] = canonical_header(value)
    return dict(sorted(picked.items()))


def fingerprint(method: str, url: str, headers: Mapping[Any, Any], body_bytes: bytes | str | None) -> Fingerprint:
    """What identifies a request in a recording: no host, no key, no volatile fields."""
    return {
        "method": method.upper(),
        "path": urlsplit(url).path or "/",
        "headers": _service_headers(headers),
        "body": canonical_body(body_bytes),
    }


def canonical_request(stored: Mapping[str, Any]) -> Fingerprint:
    """A fingerprint read back from a file, recomputed as :func:`fingerprint` would make it,
    so a hand-edited recording (other key order, header case, spacing) still matches."""
    return {
        "method": str(stored.get("method", "POST")).upper(),
        "path": str(stored.get("path") or "/"),
        "headers": _service_headers(stored.get("headers") or {}),
        "body": _drop_volatile(stored.get("body")),
    }


def fingerprint_key(fp: Mapping[str, Any]) -> str:
    """The canonical, comparable form of a fingerprint: sorted-key compact JSON."""
    return json.dumps(fp, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def without_headers(fp: Mapping[str, Any], names: Collection[str]) -> Fingerprint:
    """The fingerprint with the named headers left out (names compared case-insensitively)."""
    drop = {name.lower() for name in names}
    found = fp.get("headers")
    headers: dict[str, Any] = found if isinstance(found, dict) else {}
    return {**fp, "headers": {k: v for k, v in headers.items() if k not in drop}}


def loose_key(fp: Mapping[str, Any], stream_headers: Collection[str] = ()) -> str:
    """Same endpoint, service headers (framing aside), model and last user text."""
    body = fp.get("body")
    model = body.get("model") if isinstance(body, dict) else None
    return fingerprint_key({
        "method": fp.get("method"), "path": fp.get("path"),
        "headers": without_headers(fp, stream_headers)["headers"], "model": model, "prompt": prompt_of(body),
    })


def _messages(body: Mapping[str, Any]) -> Any:
    inner = body.get("input")
    if isinstance(inner, dict) and "messages" in inner:
        return inner["messages"]
    return body.get("messages")


def prompt_of(body: Any) -> str | None:
    """Text of the last user message of a chat body (``input.messages`` or ``messages``)."""
    if not isinstance(body, dict):
        return None
    messages = _messages(body)
    text = last_user_text(messages) if isinstance(messages, list) else None
    if text is not None:
        return text
    inner = body.get("input")
    prompt = inner.get("prompt") if isinstance(inner, dict) else None
    return prompt if isinstance(prompt, str) else None


def _short(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat[:limit] + ("…" if len(flat) > limit else "")


def describe(fp: Mapping[str, Any], stream_headers: Collection[str] = ()) -> str:
    """One human line about a request, e.g. for a replay miss."""
    headers = without_headers(fp, stream_headers)["headers"]
    shown = ", ".join(f"{name} {_short(fingerprint_key({'v': value})[5:-1], 80)}" for name, value in headers.items())
    found = fp.get("body")
    body: dict[str, Any] = found if isinstance(found, dict) else {}
    streaming = any(name.lower() in (fp.get("headers") or {}) for name in stream_headers)
    return (
        f"{fp.get('method')} {fp.get('path')} with {shown or 'no X-DashScope headers'}, "
        f"model {body.get('model')!r}, {'streaming' if streaming else 'not streaming'}, "
        f"prompt {_short(prompt_of(body) or '', 40)!r}"
    )


def differences(a: Any, b: Any) -> set[str]:
    """Dotted names (two levels deep) of the body fields that differ, e.g. ``parameters.seed``."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return {"body"} if a != b else set()
    out: set[str] = set()
    for key in set(a) | set(b):
        x, y = a.get(key), b.get(key)
        if x == y:
            continue
        if isinstance(x, dict) and isinstance(y, dict):
            out |= {f"{key}.{sub}" for sub in set(x) | set(y) if x.get(sub) != y.get(sub)}
        else:
            out.add(str(key))
    return out
