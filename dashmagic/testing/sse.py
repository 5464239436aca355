"""Turn one final DashScope response into the SSE events a stream of it would carry.

No SSE transcript with plugins has been published (protocol.md §7.3 is inferred), so this module
*defines* the fake's model, kept SDK-compatible:

Snapshot mode (default, ``incremental_output`` false): every event is a full snapshot.

* ``messages`` reply (a plugin trace): walk the messages in order. An assistant message with a
  ``plugin_call`` and a ``plugin`` message each appear whole, one event each. Every other
  assistant message (the answer) appears with its ``content`` growing ``chunk_chars`` characters
  per event. Each event lists all messages so far.
* ``message`` reply: ``message.content`` grows. ``result_format="text"`` reply: ``output.text``
  grows.
* ``finish_reason`` is the string ``"null"`` until the last event, whose payload is exactly the
  final response (real ``finish_reason`` and ``usage``). Earlier ``usage`` is
  ``{input_tokens, output_tokens, total_tokens}`` with output tokens growing in proportion to the
  characters emitted so far.

Incremental mode (``incremental_output`` true): the same events, but each carries only what is
new. For ``messages`` the list holds exactly one message: a ``plugin_call`` or ``plugin`` message
whole (once), or the answer message with only its new ``content`` piece (role and any other keys
repeated). A delta continues the previous message when both are assistant messages without
``plugin_call``; anything else starts a new message. For ``message`` the content is the new piece;
for ``text`` ``output.text`` is the new piece. ``usage`` stays cumulative, as on the real service.

Only ``choices[0]`` is streamed; other choices appear in the final event alone. A payload of any
other shape (e.g. a hostile queued reply) becomes one event holding it unchanged.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["SSEFrame", "encode_json", "format_event", "parse_sse", "sse_events"]

NULL_FINISH = "null"  # the service sends the *string* "null" mid-stream (protocol.md §7.1)


def encode_json(obj: Any, indent: int | None = None) -> bytes:
    """UTF-8 JSON as the service sends it: non-ASCII raw, compact unless ``indent`` is given."""
    separators = None if indent is not None else (",", ":")
    return json.dumps(obj, ensure_ascii=False, indent=indent, separators=separators).encode("utf-8")


def format_event(
    id: int,  # noqa: A002 - the SSE field is called id
    payload: dict[str, Any] | str | bytes,
    event: str = "result",
    status: int = 200,
    *,
    status_line: bool = False,
) -> bytes:
    """One event, framed like DashScope: ``id:N\\nevent:E\\n:HTTP_STATUS/S\\ndata:<json>\\n\\n``.

    ``payload`` may be a dict (encoded as one-line JSON), or ``str``/``bytes`` sent verbatim
    (for garbage). ``status_line`` adds ``status:S`` before ``data:``, the only status line the
    SDK reads (the ``:HTTP_STATUS`` comment is ignored by every SSE parser).
    """
    if isinstance(payload, dict):
        data = encode_json(payload)
    elif isinstance(payload, str):
        data = payload.encode("utf-8")
    else:
        data = payload
    head = f"id:{id}\nevent:{event}\n:HTTP_STATUS/{status}\n"
    if status_line:
        head += f"status:{status}\n"
    return head.encode("ascii") + b"data:" + data + b"\n\n"


def _chunks(text: str, size: int) -> list[str]:
    # An empty answer still needs one event, so that the message appears at all.
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _grows(message: Any) -> bool:
    """Answer-like messages stream their content; plugin calls and results arrive whole."""
    return (
        isinstance(message, dict)
        and message.get("role") == "assistant"
        and "plugin_call" not in message
        and isinstance(message.get("content"), str)
    )


def _text_len(message: Any) -> int:
    content = message.get("content") if isinstance(message, dict) else None
    return len(content) if isinstance(content, str) else 0


# A "step" is (snapshot list of messages, delta message, characters emitted so far).
Step = tuple[list[Any], Any, int]


def _message_steps(messages: list[Any], chunk_chars: int) -> list[Step]:
    steps: list[Step] = []
    done: list[Any] = []
    emitted = 0
    for message in messages:
        if not _grows(message):
            done.append(message)
            emitted += _text_len(message)
            steps.append((list(done), message, emitted))
            continue
        so_far = ""
        for piece in _chunks(message["content"], chunk_chars):
            so_far += piece
            emitted += len(piece)
            steps.append(([*done, {**message, "content": so_far}], {**message, "content": piece}, emitted))
        done.append(message)
    return steps


def _partial_usage(usage: Any, fraction: float) -> Any:
    """Cumulative-looking usage for a mid-stream event; the final event carries the real one."""
    if not isinstance(usage, dict):
        return None
    out_total = usage.get("output_tokens")
    if not isinstance(out_total, int):
        return copy.deepcopy(usage)
    raw_input = usage.get("input_tokens")
    inp = raw_input if isinstance(raw_input, int) else 0
    out = min(out_total, max(1, round(out_total * fraction)))
    return {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out}


def _envelope(response: dict[str, Any], output: dict[str, Any], usage: Any) -> dict[str, Any]:
    """Event payload in the documented key order: output, usage, then request_id and the rest."""
    event: dict[str, Any] = {"output": output}
    if usage is not None:
        event["usage"] = usage
    event.update({k: copy.deepcopy(v) for k, v in response.items() if k not in ("output", "usage")})
    return event


def _event_usage(response: dict[str, Any], last: bool, fraction: float) -> Any:
    if last:
        return copy.deepcopy(response.get("usage"))
    return _partial_usage(response.get("usage"), fraction)


def _choice_steps(
    choice: dict[str, Any], chunk_chars: int, incremental: bool
) -> tuple[str, list[tuple[Any, int]], int] | None:
    """(key, [(value for that key, chars emitted)], total chars) for a streamable choice."""
    if isinstance(choice.get("messages"), list) and choice["messages"]:
        messages = choice["messages"]
        steps = _message_steps(messages, chunk_chars)
        values = [([delta] if incremental else snapshot, emitted) for snapshot, delta, emitted in steps]
        return "messages", values, sum(_text_len(m) for m in messages)
    if _grows(choice.get("message")):
        steps = _message_steps([choice["message"]], chunk_chars)
        values = [(delta if incremental else snapshot[-1], emitted) for snapshot, delta, emitted in steps]
        return "message", values, _text_len(choice["message"])
    return None


def _choice_events(response: dict[str, Any], chunk_chars: int, incremental: bool) -> list[dict[str, Any]] | None:
    output = response["output"]
    choice = output["choices"][0] if output["choices"] else None
    if not isinstance(choice, dict):
        return None
    planned = _choice_steps(choice, chunk_chars, incremental)
    if planned is None:
        return None
    key, values, total = planned
    events = []
    for index, (value, emitted) in enumerate(values):
        last = index == len(values) - 1
        new_choice = copy.deepcopy(choice)
        new_choice[key] = copy.deepcopy(value)
        if not last:
            new_choice["finish_reason"] = NULL_FINISH
        new_output = copy.deepcopy(output)
        # Other choices are not streamed: they appear, complete, in the final event only.
        new_output["choices"] = [new_choice, *new_output["choices"][1:]] if last else [new_choice]
        events.append(_envelope(response, new_output, _event_usage(response, last, emitted / max(total, 1))))
    return events


def _text_events(response: dict[str, Any], chunk_chars: int, incremental: bool) -> list[dict[str, Any]]:
    output = response["output"]
    text: str = output["text"]
    pieces = _chunks(text, chunk_chars)
    events = []
    so_far = ""
    for index, piece in enumerate(pieces):
        so_far += piece
        last = index == len(pieces) - 1
        new_output = copy.deepcopy(output)
        new_output["text"] = piece if incremental else so_far
        if not last:
            new_output["finish_reason"] = NULL_FINISH
        events.append(_envelope(response, new_output, _event_usage(response, last, len(so_far) / max(len(text), 1))))
    return events


def sse_events(response: dict[str, Any], *, chunk_chars: int = 8, incremental: bool = False) -> list[dict[str, Any]]:
    """The event payloads (dicts, in order) that stream ``response``; see the module docstring.

    In snapshot mode the last payload equals ``response``. The input is never modified.
    """
    if chunk_chars < 1:
        raise ValueError(f"chunk_chars must be >= 1, got {chunk_chars}")
    output = response.get("output") if isinstance(response, dict) else None
    events: list[dict[str, Any]] | None = None
    if isinstance(output, dict) and isinstance(output.get("choices"), list):
        events = _choice_events(response, chunk_chars, incremental)
    elif isinstance(output, dict) and isinstance(output.get("text"), str):
        events = _text_events(response, chunk_chars, incremental)
    if events is None:
        return [copy.deepcopy(response)]
    if not incremental:
        # Guarantee the documented property exactly, key order included.
        events[-1] = copy.deepcopy(response)
    return events


@dataclass(frozen=True)
class SSEFrame:
    """One complete event as :func:`parse_sse` read it (values as text, without the prefix)."""

    id: str | None
    event: str | None
    data: str | None
    comments: tuple[str, ...]
    status: str | None

    def json(self) -> Any:
        """``data`` parsed as JSON."""
        return json.loads(self.data or "null")


_FRAME_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def _parse_frame(raw: str) -> SSEFrame:
    fields: dict[str, str] = {}
    comments = []
    # Not str.splitlines(): that also splits on U+2028, U+0085 etc., which JSON may carry raw.
    for line in re.split(r"\r\n|\r|\n", raw):
        if line.startswith(":"):
            comments.append(line[1:])
            continue
        name, _, value = line.partition(":")
        # DashScope sends no space after the colon; strip one if present, as the SSE spec says.
        fields[name] = value[1:] if value.startswith(" ") else value
    return SSEFrame(fields.get("id"), fields.get("event"), fields.get("data"), tuple(comments), fields.get("status"))


def parse_sse(body: bytes) -> tuple[list[SSEFrame], bytes]:
    """Split a whole SSE body into complete frames and the unterminated rest (``b""`` if none).

    A test helper for bodies read to the end (not an incremental decoder): each frame must end
    with a blank line; a trailing partial frame is returned raw, so cut streams can be asserted.
    Frames must be UTF-8.
    """
    frames = []
    start = 0
    for match in _FRAME_END.finditer(body):
        frames.append(_parse_frame(body[start : match.start()].decode("utf-8")))
        start = match.end()
    return frames, body[start:]
