"""Limits that hold what they promise, and server replies that must never cost a traceback.

Each case plays raw bytes from a loopback socket (tests/_wire.py) through the real Client: a
stalled stream kept alive by comments, a slow stream past its deadline, a gzip bomb, one huge SSE
line, streams that end without finishing, odd Retry-After values, absurd numbers and deep nesting.
"""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import pytest

import dashmagic
from dashmagic.errors import ApiError, ProtocolError, ServerError, TimeoutError, TransportError
from dashmagic.render import mimebundle

from _wire import Reply, result_event, sse, wire_server

KEY = "sk-limits-0123456789abcdef"

#: The rows of docs/reliability.md's "Limits" table: (test in this module, situation, what happens).
LIMITS: tuple[tuple[str, str, str], ...] = (
    ("test_keepalives_do_not_keep_a_stalled_stream_alive", "a stream that sends only `:keepalive` comments",
     "`TimeoutError` after `--timeout` seconds without an event; the text so far is kept"),
    ("test_the_deadline_bounds_a_whole_call", "events keep coming, slowly, past the call's deadline",
     "`TimeoutError` at `deadline` (default 600 s); the text so far is kept"),
    ("test_a_gzip_bomb_is_refused_without_inflating_it", "a small gzip reply that inflates to 40 MB",
     "`ProtocolError` once `max_reply_bytes` (default 64 MB) is passed"),
    ("test_one_huge_sse_line_is_refused", "one SSE line of 3 MB that never ends",
     "`ProtocolError` past the event cap; earlier events kept"),
    ("test_a_stream_without_finish_reason_is_reported_truncated", "a stream that ends without `finish_reason`",
     "`TransportError` \"the answer is truncated\"; the text so far is kept and shown"),
    ("test_a_stream_with_no_event_at_all_says_so", "a stream with no event at all",
     "`TransportError` \"ended before any event\""),
    ("test_odd_retry_after_values_are_ignored_not_fatal", "`Retry-After: soon`, `nan`, `inf`, `-5`, a bad date",
     "ignored: normal backoff, then the retry"),
    ("test_absurd_numbers_in_usage_and_status_are_unknown_not_errors", "`1e999` / `NaN` token counts",
     "shown as unknown; the answer is kept"),
    ("test_a_reply_nested_900_deep_keeps_the_trace", "a reply nested 900 deep", "the trace is kept and rendered"),
    ("test_server_messages_are_one_bounded_line_without_terminal_controls",
     "a 1 MB error message with OSC-0/OSC-52/`ESC[2J` and bidi controls",
     "one line of at most 300 characters, controls removed"),
    ("test_an_error_page_full_of_titles_is_read_in_linear_time", "an HTML 502 page with 20,000 `<title>` tags",
     "`ServerError` \"non-JSON error page: …\", read in one linear pass"),
)


def test_every_limit_row_is_a_test_here() -> None:
    names = {name for name in globals() if name.startswith("test_")}
    assert {row[0] for row in LIMITS} <= names


def _client_kwargs(server: Any, **extra: Any) -> dict[str, Any]:
    return {"api_key": KEY, "base_url": server.base_url, "retries": 1, **extra}


def _last_trace(error: pytest.ExceptionInfo[Any]) -> Any:
    trace = error.value.trace
    assert trace is not None
    return trace


def test_keepalives_do_not_keep_a_stalled_stream_alive() -> None:
    pieces = sse(result_event("Hello"))
    pieces += [(0.2, b":keepalive\n\n")] * 40  # 8 s of comments, no event
    with wire_server(Reply(pieces=pieces)) as server:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="No event for more than 1 s") as info:
            list(dashmagic.stream("hi", **_client_kwargs(server, timeout=1)))
        assert time.monotonic() - started < 6  # bounded by the read timeout, not by the server
    assert _last_trace(info).answer == "Hello"  # what arrived is kept


def test_the_deadline_bounds_a_whole_call() -> None:
    pieces = [(0.3, result_event(f"part {i}. ")) for i in range(30)]
    with wire_server(Reply(pieces=pieces)) as server:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="deadline") as info:
            list(dashmagic.stream("hi", **_client_kwargs(server, timeout=5, deadline=1.5)))
        assert time.monotonic() - started < 6
    assert _last_trace(info).answer  # the parts that arrived are kept


def test_a_gzip_bomb_is_refused_without_inflating_it() -> None:
    body = gzip.compress(b'{"output": {"text": "' + b"0" * (40 * 1024 * 1024) + b'"}}')
    headers = (("Content-Type", "application/json"), ("Content-Encoding", "gzip"))
    with wire_server(Reply(headers=headers, pieces=[(0, body)], length=True)) as server:
        with pytest.raises(ProtocolError, match="larger than 1 MB") as info:
            dashmagic.run("hi", **_client_kwargs(server, max_reply_bytes=1024 * 1024))
    assert "\n" not in str(info.value)


def test_one_huge_sse_line_is_refused() -> None:
    huge = b"data:" + b"x" * (3 * 1024 * 1024)  # never ends: no newline
    with wire_server(Reply(pieces=[(0, result_event("kept")), (0, huge)])) as server:
        with pytest.raises(ProtocolError) as info:
            list(dashmagic.stream("hi", **_client_kwargs(server, max_reply_bytes=1024 * 1024)))
    assert _last_trace(info).answer == "kept"


def test_a_stream_without_finish_reason_is_reported_truncated() -> None:
    with wire_server(Reply(pieces=sse(result_event("It was"), result_event("It was the best")))) as server:
        with pytest.raises(TransportError, match="truncated") as info:
            list(dashmagic.stream("hi", **_client_kwargs(server)))
    trace = _last_trace(info)
    assert trace.status == "error" and trace.answer == "It was the best"
    assert "truncated" in mimebundle(trace)["text/plain"]


def test_a_stream_with_no_event_at_all_says_so() -> None:
    with wire_server(Reply(pieces=[(0, b":HTTP_STATUS/200\n\n")])) as server:
        with pytest.raises(TransportError, match="before any event"):
            list(dashmagic.stream("hi", **_client_kwargs(server)))


@pytest.mark.parametrize("retry_after", ["soon", "nan", "inf", "-5", "Wed, 99 Foo 2026", "1e999"])
def test_odd_retry_after_values_are_ignored_not_fatal(retry_after: str) -> None:
    throttled = Reply(
        status=429,
        headers=(("Content-Type", "application/json"), ("Retry-After", retry_after)),
        pieces=[(0, json.dumps({"code": "Throttling.RateQuota", "message": "slow down"}).encode())],
        length=True,
    )
    ok = Reply(headers=(("Content-Type", "application/json"),), length=True, pieces=[(0, json.dumps({
        "output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}]},
        "request_id": "r"}).encode())])
    with wire_server(throttled, ok) as server:
        started = time.monotonic()
        trace = dashmagic.run("hi", **_client_kwargs(server, retries=2, backoff=0.01))
    assert trace.ok and trace.answer == "ok" and len(trace.notes) == 1
    assert time.monotonic() - started < 5


def test_absurd_numbers_in_usage_and_status_are_unknown_not_errors() -> None:
    event = result_event("ok", "stop", usage='{"input_tokens": 1e999, "output_tokens": -1e999, "total_tokens": "NaN"}')
    with wire_server(Reply(pieces=sse(event))) as server:
        trace = list(dashmagic.stream("hi", **_client_kwargs(server)))[-1]
    assert trace.ok and trace.usage.input_tokens is None and trace.usage.total_tokens is None
    assert trace.usage.output_tokens is None and "[answer] ok" in mimebundle(trace)["text/plain"]


def test_a_reply_nested_900_deep_keeps_the_trace() -> None:
    deep: Any = "bottom"
    for _ in range(900):
        deep = [deep]
    payload = {
        "output": {"choices": [{"finish_reason": "stop", "messages": [
            {"role": "assistant", "content": "Thought: check\nFinal Answer: fine", "status": {"name": deep}},
        ]}], "odd": deep},
        "request_id": "deep",
    }
    body = json.dumps(payload).encode()
    with wire_server(Reply(headers=(("Content-Type", "application/json"),), pieces=[(0, body)], length=True)) as server:
        trace = dashmagic.run("hi", plugins=["calculator"], **_client_kwargs(server))
    assert trace.ok and trace.answer == "fine" and len(repr(trace)) < 5000
    bundle = mimebundle(trace)
    assert "fine" in bundle["text/plain"] and "fine" in bundle["text/html"]


def test_server_messages_are_one_bounded_line_without_terminal_controls() -> None:
    message = "\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\x1b[2J" + "A" * (1024 * 1024) + "\u202e"
    reply = Reply(status=400, headers=(("Content-Type", "application/json"),), length=True,
                  pieces=[(0, json.dumps({"code": "InvalidParameter", "message": message}).encode())])
    with wire_server(reply) as server:
        with pytest.raises(ApiError) as info:
            dashmagic.run("hi", **_client_kwargs(server))
    text = str(info.value)
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text and "\n" not in text
    assert len(text) < 400 and text.endswith("…")


def test_an_error_page_full_of_titles_is_read_in_linear_time() -> None:
    page = ("<html><head>" + "<title>" * 20000 + "Bad Gateway</title></head><body>x</body></html>").encode()
    reply = Reply(status=502, headers=(("Content-Type", "text/html"),), pieces=[(0, page)], length=True)
    with wire_server(reply) as server:
        started = time.process_time()
        with pytest.raises(ServerError) as info:
            dashmagic.run("hi", **_client_kwargs(server))
        assert time.process_time() - started < 5  # a hang guard: the old regex took 17 s
    assert "non-JSON error page" in str(info.value) and len(str(info.value)) < 400
