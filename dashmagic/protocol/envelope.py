"""What every generation's replies share: JSON payloads, error bodies, SSE event names, usage.

Pure. A payload is ``{"output": …, "usage": …, "request_id": …}`` in a JSON body or in an SSE
``data`` field; an error is ``{"code", "message", "request_id"}`` in a body, an ``event:error``
frame, or a gateway's HTML page.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ApiError, ProtocolError, api_error_for
from ..trace import Usage, freeze

if TYPE_CHECKING:
    from ..sse import ServerSentEvent

__all__ = [
    "decode_payload",
    "error_from_payload",
    "error_from_body",
    "payload_of_event",
    "finish_reason",
    "read_usage",
    "to_int",
    "to_str",
    "preview",
    "one_line",
    "MAX_MESSAGE_CHARS",
]

#: How much of a server's error message is shown (a 1 MB message is not "one line").
MAX_MESSAGE_CHARS = 300
# Terminal controls (ESC[2J, OSC 0/52 title and clipboard sequences, BEL, CR) and bidi
# overrides: none may reach a terminal from a server string.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]+")

#: SSE event names that carry a result payload (DashScope sends ``result``; proxies ``message``).
_RESULT_EVENTS = frozenset({"result", "message"})


def decode_payload(text: str | bytes) -> Mapping[str, Any]:
    """Parse one JSON payload; anything but a JSON object is a :class:`ProtocolError`."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(
            f"DashScope sent a reply that is not valid JSON ({exc.__class__.__name__}: {str(exc)[:120]}). "
            f"It began: {preview(text)}"
        ) from None
    if not isinstance(value, dict):
        raise ProtocolError(f"DashScope sent JSON that is not an object. It began: {preview(text)}")
    return value


def preview(text: str | bytes, limit: int = 200) -> str:
    if isinstance(text, bytes):
        text = text[:limit].decode("utf-8", "replace")
    text = text[:limit]
    return repr(text) + ("…" if len(text) >= limit else "")


def to_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return "(unreadable value)"


def to_int(value: Any) -> int | None:
    """An int from JSON, or None: ``1e999`` (inf), NaN, bools and text are not counts."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 20:
        return int(value)
    return None


def one_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Server text made safe to print: controls and bidi overrides blanked, whitespace collapsed,
    at most ``limit`` characters (an ellipsis marks the cut). Linear; reads at most 4×limit."""
    line = " ".join(_UNSAFE.sub(" ", text[: limit * 4]).split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def error_from_payload(payload: Mapping[str, Any], status_code: int | None) -> ApiError:
    """An error body ``{"code", "message", "request_id"}`` (``msg`` wins over ``message``, as in the SDK)."""
    message = payload.get("msg") or payload.get("message") or ""
    code = payload.get("code")
    request_id = payload.get("request_id")
    return api_error_for(
        status_code,
        one_line(to_str(code), 80) if code else None,
        one_line(to_str(message)),
        one_line(to_str(request_id), 80) if request_id else None,
    )


def _first_data(text: str) -> str:
    """The ``data`` of the first SSE event in an error body (linear, no regex backtracking)."""
    for line in text.splitlines():
        if line.startswith("data:"):
            return line[5:]
    return text


def error_from_body(text: str, content_type: str, status_code: int, reason: str, summary: str) -> ApiError:
    """An HTTP error reply: a JSON body, an SSE error event, or a gateway's page (``summary``)."""
    if "event-stream" in content_type:
        text = _first_data(text)
    try:
        payload: Mapping[str, Any] | None = decode_payload(text)
    except ProtocolError:
        payload = None
    if payload is not None and (payload.get("code") or payload.get("message")):
        return error_from_payload(payload, status_code)
    message = f"non-JSON error page: {summary}" if summary else (reason or "empty error body")
    return error_from_payload({"message": message}, status_code)


def payload_of_event(event: ServerSentEvent) -> Mapping[str, Any] | None:
    """The result payload an SSE event carries, None for events to skip; raises on error frames."""
    if event.event == "error":
        payload = decode_payload(event.data) if event.data.strip() else {}
        raise error_from_payload(payload, event.status or 400)
    if event.event not in _RESULT_EVENTS:
        return None  # e.g. event:done, heartbeats
    payload = decode_payload(event.data)
    if "output" not in payload and payload.get("code"):
        raise error_from_payload(payload, event.status)
    return payload


def finish_reason(output: Mapping[str, Any]) -> str | None:
    """``choices[0].finish_reason`` (or ``output.finish_reason``); the string ``"null"`` is none."""
    choices = output.get("choices")
    raw = None
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        raw = choices[0].get("finish_reason")
    else:
        raw = output.get("finish_reason")
    if raw is None:
        return None
    text = to_str(raw)
    return None if text in ("", "null") else text


def read_usage(raw: Any, previous: Usage | None = None) -> Usage:
    """``usage`` of one payload. In a stream it is a running total; ``previous`` (the total so far)
    fills what a later event leaves out, so a count seen once (``plugins.search``) is never lost."""
    if not isinstance(raw, Mapping):
        return previous or Usage()
    usage = _read_usage(raw)
    return usage if previous is None else _carry(previous, usage)


def _carry(previous: Usage, usage: Usage) -> Usage:
    plugins = {**previous.plugins, **{k: max(v, previous.plugins.get(k, 0)) for k, v in usage.plugins.items()}}

    def pick(new: int | None, old: int | None) -> int | None:
        return old if new is None else new

    return Usage(
        input_tokens=pick(usage.input_tokens, previous.input_tokens),
        output_tokens=pick(usage.output_tokens, previous.output_tokens),
        total_tokens=pick(usage.total_tokens, previous.total_tokens),
        plugins=freeze(plugins),
        reasoning_tokens=pick(usage.reasoning_tokens, previous.reasoning_tokens),
        cached_tokens=pick(usage.cached_tokens, previous.cached_tokens),
    )


def _read_usage(raw: Mapping[str, Any]) -> Usage:
    plugins = raw.get("plugins")
    counts: dict[str, int] = {}
    if isinstance(plugins, Mapping):
        for name, value in plugins.items():
            count = value.get("count") if isinstance(value, Mapping) else value
            counts[to_str(name)] = to_int(count) or 0
    return Usage(
        input_tokens=to_int(raw.get("input_tokens")),
        output_tokens=to_int(raw.get("output_tokens")),
        total_tokens=to_int(raw.get("total_tokens")),
        plugins=freeze(counts),
        reasoning_tokens=_detail(raw, "output_tokens_details", "reasoning_tokens"),
        cached_tokens=_detail(raw, "prompt_tokens_details", "cached_tokens"),
    )


def _detail(raw: Mapping[str, Any], group: str, name: str) -> int | None:
    """``usage.<group>.<name>`` (thinking and context-cache counts), None when absent."""
    details = raw.get(group)
    return to_int(details.get(name)) if isinstance(details, Mapping) else None


