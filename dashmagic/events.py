"""Wire in: DashScope payloads (JSON bodies or SSE ``data``) → Trace snapshots.

All knowledge of the response shapes lives here: ``output.choices[0]`` with either a
``messages`` list (a plugin trace) or a single ``message`` (``pdf_extracter``), assistant
contents of the form ``Thought: …\\nFinal Answer: …``, ``usage.plugins``, error bodies.

Each ``result`` event is a full snapshot of the choice, so :class:`TraceBuilder` *replaces*
its messages on every payload; with ``incremental_output: true`` payloads are deltas and are
merged instead. Steps are rebuilt from the messages on every snapshot, but each message's steps
are memoised by its content, so a growing answer costs one re-parse of the last message only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import ApiError, DashmagicError, ProtocolError, api_error_for
from .plugins import read_call, read_result, resolve_plugin
from .trace import (
    Answer,
    ErrorInfo,
    PluginCall,
    PluginResult,
    RequestInfo,
    Status,
    Step,
    Thought,
    Trace,
    TraceStatus,
    Usage,
    freeze,
)

__all__ = ["TraceBuilder", "decode_payload", "error_from_payload", "split_assistant"]

_THOUGHT = "Thought:"
_FINAL = "Final Answer:"


def decode_payload(text: str | bytes) -> Mapping[str, Any]:
    """Parse one JSON payload; anything but a JSON object is a :class:`ProtocolError`."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(
            f"DashScope sent a reply that is not valid JSON ({exc.__class__.__name__}: {exc}). "
            f"It began: {_preview(text)}"
        ) from None
    if not isinstance(value, dict):
        raise ProtocolError(f"DashScope sent JSON that is not an object. It began: {_preview(text)}")
    return value


def _preview(text: str | bytes, limit: int = 200) -> str:
    if isinstance(text, bytes):
        text = text[:limit].decode("utf-8", "replace")
    text = text[:limit]
    return repr(text) + ("…" if len(text) >= limit else "")


def error_from_payload(payload: Mapping[str, Any], status_code: int | None) -> ApiError:
    """An error body ``{"code", "message", "request_id"}`` (``msg`` wins over ``message``, as in the SDK)."""
    message = payload.get("msg") or payload.get("message") or ""
    code = payload.get("code")
    return api_error_for(
        status_code,
        str(code) if code else None,
        str(message),
        str(payload["request_id"]) if payload.get("request_id") else None,
    )


def _strip_partial_marker(text: str) -> str:
    # While streaming, "…\nFinal Ans" may arrive before the marker is complete: hide the stub.
    for cut in range(len(_FINAL) - 1, 0, -1):
        if text.endswith(_FINAL[:cut]):
            return text[: -cut].rstrip()
    return text


def split_assistant(content: str, *, has_call: bool) -> list[Step]:
    """Read one assistant ``content`` into Thought/Answer steps.

    ``Thought: x\\nFinal Answer: y`` → [Thought(x), Answer(y)]. Text with a plugin call is a
    thought. Plain text without markers is the answer (``pdf_extracter`` replies so).
    """
    text = content.strip()
    if not text:
        return []
    head, marker, tail = text.partition(_FINAL)
    steps: list[Step] = []
    thought = head.strip()
    if thought.startswith(_THOUGHT):
        thought = thought[len(_THOUGHT) :].strip()
    elif not marker and not has_call:
        return [Answer(_strip_partial_marker(text))]
    if not marker:
        thought = _strip_partial_marker(thought)
    if thought:
        steps.append(Thought(thought))
    if marker:
        steps.append(Answer(tail.strip()))
    return steps


def _str(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _status(raw: Any) -> Status | None:
    if not isinstance(raw, Mapping):
        return None
    code = raw.get("code")
    return Status(
        code=code if isinstance(code, int) else _int(code),
        name=_str(raw.get("name")),
        message=_str(raw.get("message")),
    )


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, Mapping):
        return Usage()
    plugins = raw.get("plugins")
    counts: dict[str, int] = {}
    if isinstance(plugins, Mapping):
        for name, value in plugins.items():
            count = value.get("count") if isinstance(value, Mapping) else value
            counts[str(name)] = _int(count) or 0
    return Usage(
        input_tokens=_int(raw.get("input_tokens")),
        output_tokens=_int(raw.get("output_tokens")),
        total_tokens=_int(raw.get("total_tokens")),
        plugins=freeze(counts),
    )


class TraceBuilder:
    """Folds payloads into Trace snapshots (the reducer of the pipeline)."""

    def __init__(self, request: RequestInfo, *, started: float | None = None) -> None:
        self._request = request
        self._started = time.monotonic() if started is None else started
        self._messages: list[dict[str, Any]] = []
        self._cache: dict[Any, tuple[Step, ...]] = {}
        self._frozen: dict[Any, Mapping[str, Any]] = {}
        self._keys: list[Any] = []
        self._trace = Trace(request=request)
        self._notes: list[str] = []

    @property
    def trace(self) -> Trace:
        return self._trace

    def note(self, text: str) -> Trace:
        self._notes.append(text)
        self._trace = self._trace.replace(notes=tuple(self._notes))
        return self._trace

    def _elapsed(self) -> float:
        return round(time.monotonic() - self._started, 3)

    # -- feeding ----------------------------------------------------------------------
    def feed(self, payload: Mapping[str, Any], *, incremental: bool = False) -> Trace:
        """Apply one result payload; return the new snapshot."""
        output = payload.get("output")
        if not isinstance(output, Mapping):
            if payload.get("code"):
                raise error_from_payload(payload, None)
            raise ProtocolError(f"DashScope sent a result without 'output'. It began: {_preview(json.dumps(payload))}")
        choice, finish = self._choice(output)
        if choice is not None:
            messages = _choice_messages(choice)
            if incremental:
                self._merge(messages)
            else:
                self._messages = messages
        elif isinstance(output.get("text"), str):  # result_format=text, should a proxy force it
            self._messages = [{"role": "assistant", "content": output["text"]}]
        done = bool(finish) and finish != "null"
        self._trace = self._trace.replace(
            steps=self._steps(),
            usage=_usage(payload.get("usage")) if payload.get("usage") else self._trace.usage,
            request_id=_str(payload.get("request_id")) or self._trace.request_id,
            model=self._request.model,
            finish_reason=finish if done else None,
            status="complete" if done else "partial",
            elapsed=self._elapsed(),
            events=self._trace.events + 1,
            messages=self._frozen_messages(),
        )
        return self._trace

    def _frozen_messages(self) -> tuple[Mapping[str, Any], ...]:
        # Messages are re-sent whole on every event; freeze each distinct one once.
        frozen: dict[Any, Mapping[str, Any]] = {}
        out = []
        for message, key in zip(self._messages, self._keys):
            value = self._frozen.get(key)
            if value is None:
                value = freeze(message)
            frozen[key] = value
            out.append(value)
        self._frozen = frozen
        return tuple(out)

    @staticmethod
    def _choice(output: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, str | None]:
        choices = output.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
            finish = choices[0].get("finish_reason")
            return choices[0], (str(finish) if finish is not None else None)
        finish = output.get("finish_reason")
        return None, (str(finish) if finish is not None else None)

    def _merge(self, deltas: list[dict[str, Any]]) -> None:
        # incremental_output=true: each payload carries only the new piece of each message.
        for delta in deltas:
            last = self._messages[-1] if self._messages else None
            same = (
                last is not None
                and delta.get("role", "assistant") == last.get("role")
                and delta.get("role") != "plugin"
                and not (delta.get("plugin_call") and last.get("plugin_call"))
            )
            if not same or last is None:
                self._messages.append(dict(delta))
                continue
            last["content"] = _str(last.get("content")) + _str(delta.get("content"))
            call = delta.get("plugin_call")
            if isinstance(call, Mapping):
                last["plugin_call"] = dict(call)

    def _steps(self) -> tuple[Step, ...]:
        cache: dict[Any, tuple[Step, ...]] = {}
        steps: list[Step] = []
        self._keys = [_message_key(message) for message in self._messages]
        for message, key in zip(self._messages, self._keys):
            parsed = self._cache.get(key)
            if parsed is None:
                parsed = tuple(self._read_message(message))
            cache[key] = parsed
            steps.extend(parsed)
        self._cache = cache  # keep only what the current snapshot uses
        return tuple(steps)

    def _read_message(self, message: Mapping[str, Any]) -> Iterable[Step]:
        role = message.get("role")
        if role == "plugin":
            name = _str(message.get("name"))
            plugin = resolve_plugin(name, self._request.plugins)
            raw = _str(message.get("content"))
            parsed, error, view = read_result(plugin, raw)
            yield PluginResult(plugin, name, raw, parsed, error, _status(message.get("status")), view)
            return
        if role not in ("assistant", None):
            return  # echoed user/system messages are not part of the answer
        call = message.get("plugin_call")
        yield from split_assistant(_str(message.get("content")), has_call=isinstance(call, Mapping))
        if isinstance(call, Mapping):
            name = _str(call.get("name"))
            plugin = resolve_plugin(name, self._request.plugins)
            raw = _str(call.get("arguments"))
            parsed, error, view = read_call(plugin, raw)
            yield PluginCall(plugin, name, raw, parsed, error, view)

    # -- ending -----------------------------------------------------------------------
    def finish(self) -> Trace:
        """The stream ended (or the JSON body was applied): complete only if the service said so."""
        status: TraceStatus = "complete" if self._trace.finish_reason else "partial"
        self._trace = self._trace.replace(status=status, elapsed=self._elapsed())
        return self._trace

    def fail(self, error: DashmagicError) -> Trace:
        info = ErrorInfo(
            type=type(error).__name__,
            message=str(error),
            status_code=getattr(error, "status_code", None),
            code=getattr(error, "code", None),
            request_id=getattr(error, "request_id", None),
        )
        request_id = self._trace.request_id or info.request_id
        self._trace = self._trace.replace(status="error", error=info, elapsed=self._elapsed(), request_id=request_id)
        return self._trace

    def interrupt(self) -> Trace:
        self._trace = self._trace.replace(status="interrupted", elapsed=self._elapsed())
        return self._trace


def _choice_messages(choice: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = choice.get("messages")
    if isinstance(messages, list):
        return [dict(m) for m in messages if isinstance(m, Mapping)]
    message = choice.get("message")
    if isinstance(message, Mapping):
        return [dict(message)]
    return []


def _message_key(message: Mapping[str, Any]) -> Any:
    call = message.get("plugin_call")
    call_key = (_str(call.get("name")), _str(call.get("arguments"))) if isinstance(call, Mapping) else None
    status = message.get("status")
    status_key = tuple(sorted((k, repr(v)) for k, v in status.items())) if isinstance(status, Mapping) else None
    return (message.get("role"), _str(message.get("name")), _str(message.get("content")), call_key, status_key)
