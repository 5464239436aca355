"""A :class:`~dashmagic.trace.Trace` as plain JSON and back (the batch record file's rows). Pure.

``to_json(trace)`` keeps everything a trace shows: the request info, every step, usage, ids,
status, error, notes, the service's messages (for history) and fetched figures (base64). Plugin
views are not stored: :func:`from_json` rebuilds them from the raw text with the plugin's own
reader, exactly as the live fold did, so a stored trace renders the same.

A stored trace is untrusted input: every field is type-checked on the way in and a wrong one is
one :class:`ValueError` line naming the field; nothing is evaluated, every pass is linear.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, cast

from .trace import (
    Answer,
    CodeExecution,
    ErrorInfo,
    FetchedImage,
    FunctionCall,
    PluginCall,
    PluginResult,
    Reasoning,
    RequestInfo,
    SearchResults,
    Source,
    Status,
    Step,
    Thought,
    ToolRun,
    Trace,
    TraceStatus,
    UnknownPart,
    Usage,
    freeze,
    thaw,
)

__all__ = ["TRACE_JSON_VERSION", "to_json", "from_json"]

TRACE_JSON_VERSION = 1
_STATUSES = ("pending", "partial", "complete", "error", "interrupted")


# -- out ---------------------------------------------------------------------------------------


def to_json(trace: Trace) -> dict[str, Any]:
    """The trace as JSON-ready plain data (dicts, lists, strings, numbers, None)."""
    usage = trace.usage
    return {
        "v": TRACE_JSON_VERSION,
        "request": {
            "model": trace.request.model,
            "plugins": list(trace.request.plugins),
            "prompt": trace.request.prompt,
            "files": list(trace.request.files),
            "stream": trace.request.stream,
            "url": trace.request.url,
            "protocol": trace.request.protocol,
            "user_message": thaw(trace.request.user_message),
        },
        "steps": [_step_out(step) for step in trace.steps],
        "usage": {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "plugins": dict(usage.plugins),
            "reasoning_tokens": usage.reasoning_tokens,
            "cached_tokens": usage.cached_tokens,
        },
        "request_id": trace.request_id,
        "model": trace.model,
        "finish_reason": trace.finish_reason,
        "status": trace.status,
        "error": None if trace.error is None else {
            "type": trace.error.type, "message": trace.error.message, "status_code": trace.error.status_code,
            "code": trace.error.code, "request_id": trace.error.request_id,
        },
        "elapsed": trace.elapsed,
        "events": trace.events,
        "notes": list(trace.notes),
        "messages": [thaw(m) for m in trace.messages],
        "images": [_image_out(image) for image in trace.images],
    }


def _step_out(step: Step) -> dict[str, Any]:
    if isinstance(step, (Thought, Answer, Reasoning)):
        return {"kind": step.kind, "text": step.text}
    if isinstance(step, PluginCall):
        return {"kind": step.kind, "plugin": step.plugin, "name": step.name, "raw": step.arguments_raw}
    if isinstance(step, PluginResult):
        status = None if step.status is None else {
            "code": step.status.code, "name": step.status.name, "message": step.status.message
        }
        return {"kind": step.kind, "plugin": step.plugin, "name": step.name, "raw": step.content_raw, "status": status}
    if isinstance(step, CodeExecution):
        return {"kind": step.kind, "code": step.code, "index": step.index, "language": step.language}
    if isinstance(step, SearchResults):
        sources = [{"index": s.index, "title": s.title, "url": s.url, "site_name": s.site_name, "icon": s.icon}
                   for s in step.sources]
        return {"kind": step.kind, "sources": sources, "extra": thaw(step.extra)}
    if isinstance(step, FunctionCall):
        return {"kind": step.kind, "index": step.index, "id": step.id, "name": step.name,
                "raw": step.arguments_raw, "arguments": thaw(step.arguments), "error": step.arguments_error}
    if isinstance(step, ToolRun):
        return {"kind": step.kind, "id": step.call_id, "name": step.name, "raw": step.arguments_raw,
                "round": step.round, "approval": step.approval, "status": step.status, "result": step.result,
                "error": step.error, "note": step.note}
    if isinstance(step, UnknownPart):
        return {"kind": step.kind, "where": step.where, "value": thaw(step.value)}
    # A step kind this format does not carry (e.g. a local run): kept as a readable unknown part.
    return {"kind": "unknown", "where": f"a {step.kind} step", "value": repr(step)}


def _image_out(image: FetchedImage) -> dict[str, Any]:
    data = None if image.data is None else base64.b64encode(image.data).decode("ascii")
    return {"url": image.url, "display_url": image.display_url, "data_b64": data, "mime": image.mime,
            "error": image.error}


# -- in ----------------------------------------------------------------------------------------


class _Reader:
    """Typed field access on untrusted JSON; every complaint names the field."""

    def __init__(self, value: Any, where: str) -> None:
        if not isinstance(value, Mapping):
            raise ValueError(f"{where} must be a JSON object, not {type(value).__name__}")
        self.value, self.where = value, where

    def _bad(self, key: str, what: str) -> ValueError:
        return ValueError(f"{self.where}.{key} must be {what}")

    def text(self, key: str, default: str | None = "") -> str:
        value = self.value.get(key, default)
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def optional_text(self, key: str) -> str | None:
        value = self.value.get(key)
        if value is not None and not isinstance(value, str):
            raise self._bad(key, "a string or null")
        return value

    def optional_int(self, key: str) -> int | None:
        value = self.value.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise self._bad(key, "a whole number or null")
        return value

    def number(self, key: str) -> float | None:
        value = self.value.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise self._bad(key, "a number or null")
        return None if value is None else float(value)

    def items(self, key: str) -> list[Any]:
        value = self.value.get(key, [])
        if not isinstance(value, list):
            raise self._bad(key, "a list")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        values = self.items(key)
        if not all(isinstance(v, str) for v in values):
            raise self._bad(key, "a list of strings")
        return tuple(values)

    def child(self, key: str) -> _Reader:
        return _Reader(self.value.get(key) or {}, f"{self.where}.{key}")


def from_json(data: Any) -> Trace:
    """Rebuild a Trace from :func:`to_json` output; ValueError (one line) on anything malformed."""
    top = _Reader(data, "trace")
    if top.value.get("v") != TRACE_JSON_VERSION:
        raise ValueError(f"trace.v must be {TRACE_JSON_VERSION} (this dashmagic reads that version)")
    status = top.text("status", "complete")
    if status not in _STATUSES:
        raise ValueError(f"trace.status must be one of {', '.join(_STATUSES)}")
    return Trace(
        request=_request(top.child("request")),
        steps=tuple(_step(item, f"trace.steps[{i}]") for i, item in enumerate(top.items("steps"))),
        usage=_usage(top.child("usage")),
        request_id=top.optional_text("request_id"),
        model=top.optional_text("model"),
        finish_reason=top.optional_text("finish_reason"),
        status=cast(TraceStatus, status),
        error=_error(top.value.get("error")),
        elapsed=top.number("elapsed"),
        events=top.optional_int("events") or 0,
        notes=top.texts("notes"),
        messages=tuple(freeze(m) for m in _objects(top, "messages")),
        images=tuple(_image(item, f"trace.images[{i}]") for i, item in enumerate(top.items("images"))),
    )


def _objects(reader: _Reader, key: str) -> list[Mapping[str, Any]]:
    values = reader.items(key)
    if not all(isinstance(v, Mapping) for v in values):
        raise ValueError(f"{reader.where}.{key} must be a list of JSON objects")
    return values


def _request(r: _Reader) -> RequestInfo:
    user = r.value.get("user_message")
    if user is not None and not isinstance(user, Mapping):
        raise ValueError(f"{r.where}.user_message must be a JSON object or null")
    return RequestInfo(
        model=r.text("model"), plugins=r.texts("plugins"), prompt=r.text("prompt"), files=r.texts("files"),
        stream=bool(r.value.get("stream", False)), url=r.text("url"), protocol=r.text("protocol", "plugin_header"),
        user_message=None if user is None else freeze(dict(user)),
    )


def _usage(r: _Reader) -> Usage:
    plugins = r.value.get("plugins") or {}
    if not isinstance(plugins, Mapping) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in plugins.values()
    ):
        raise ValueError(f"{r.where}.plugins must map plugin names to counts")
    return Usage(
        input_tokens=r.optional_int("input_tokens"), output_tokens=r.optional_int("output_tokens"),
        total_tokens=r.optional_int("total_tokens"), plugins=freeze(dict(plugins)),
        reasoning_tokens=r.optional_int("reasoning_tokens"), cached_tokens=r.optional_int("cached_tokens"),
    )


def _error(value: Any) -> ErrorInfo | None:
    if value is None:
        return None
    r = _Reader(value, "trace.error")
    return ErrorInfo(type=r.text("type"), message=r.text("message"), status_code=r.optional_int("status_code"),
                     code=r.optional_text("code"), request_id=r.optional_text("request_id"))


def _step(value: Any, where: str) -> Step:
    from .plugins import read_call, read_result

    r = _Reader(value, where)
    kind = r.text("kind")
    if kind in ("thought", "answer", "reasoning"):
        text = r.text("text")
        return Thought(text) if kind == "thought" else Answer(text) if kind == "answer" else Reasoning(text)
    if kind == "plugin_call":
        plugin, raw = r.text("plugin"), r.text("raw")
        parsed, error, call_view = read_call(plugin, raw)
        return PluginCall(plugin, r.text("name"), raw, parsed, error, call_view)
    if kind == "plugin_result":
        plugin, raw = r.text("plugin"), r.text("raw")
        parsed, error, result_view = read_result(plugin, raw)
        status = None
        if r.value.get("status") is not None:
            s = r.child("status")
            status = Status(s.optional_int("code"), s.text("name"), s.text("message"))
        return PluginResult(plugin, r.text("name"), raw, parsed, error, status, result_view)
    if kind == "code_execution":
        return CodeExecution(r.text("code"), r.optional_int("index") or 0, r.text("language", "python"))
    if kind == "search":
        sources = tuple(_source(item, f"{where}.sources[{i}]") for i, item in enumerate(r.items("sources")))
        return SearchResults(sources, tuple(freeze(r.items("extra"))))
    if kind == "function_call":
        return FunctionCall(r.optional_int("index") or 0, r.text("id"), r.text("name"), r.text("raw"),
                            freeze(r.value.get("arguments")), r.optional_text("error"))
    if kind == "unknown":
        return UnknownPart(r.text("where"), freeze(r.value.get("value")))
    raise ValueError(f"{where}.kind {kind[:40]!r} is not a step kind this dashmagic knows")


def _source(value: Any, where: str) -> Source:
    r = _Reader(value, where)
    return Source(r.optional_int("index") or 0, r.text("title"), r.text("url"), r.text("site_name"), r.text("icon"))


def _image(value: Any, where: str) -> FetchedImage:
    r = _Reader(value, where)
    encoded = r.optional_text("data_b64")
    try:
        data = None if encoded is None else base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{where}.data_b64 is not base64") from None
    return FetchedImage(url=r.text("url"), display_url=r.text("display_url"), data=data,
                        mime=r.optional_text("mime"), error=r.optional_text("error"))
