"""The SSE decoder against the spec and DashScope's framing, split at every byte."""

from __future__ import annotations

import pytest

from dashmagic.sse import ServerSentEvent, SSEDecoder, iter_events

DASHSCOPE_EVENT = (
    'id:1\nevent:result\n:HTTP_STATUS/200\ndata:{"output":{"text":"你好"},"request_id":"r1"}\n\n'
    'id:2\nevent:error\n:HTTP_STATUS/500\ndata:{"code":"InternalError","message":"boom"}\n\n'
)
EXPECTED = [
    ServerSentEvent(event="result", data='{"output":{"text":"你好"},"request_id":"r1"}', id="1", status=200),
    ServerSentEvent(event="error", data='{"code":"InternalError","message":"boom"}', id="2", status=500),
]


def _with_ending(text: str, ending: str) -> bytes:
    return text.replace("\n", ending).encode("utf-8")


@pytest.mark.parametrize("ending", ["\n", "\r", "\r\n"], ids=["LF", "CR", "CRLF"])
def test_every_split_point(ending: str) -> None:
    stream = _with_ending(DASHSCOPE_EVENT, ending)
    for split in range(len(stream) + 1):
        # An empty chunk in the middle, as a network read may produce.
        events = list(iter_events([stream[:split], b"", stream[split:]]))
        assert events == EXPECTED, f"split at byte {split}"


@pytest.mark.parametrize("ending", ["\n", "\r", "\r\n"], ids=["LF", "CR", "CRLF"])
def test_byte_by_byte(ending: str) -> None:
    stream = _with_ending(DASHSCOPE_EVENT, ending)
    assert list(iter_events(stream[i : i + 1] for i in range(len(stream)))) == EXPECTED


def test_space_after_colon_is_optional_and_only_one_is_removed() -> None:
    events = list(iter_events([b"event: result\ndata:  two spaces\ndata:x\n\n"]))
    assert events == [ServerSentEvent(event="result", data=" two spaces\nx")]


def test_comments_and_unknown_fields_are_ignored() -> None:
    events = list(iter_events([b": keep-alive\nfoo:bar\ndata:1\n\n:tail\n\n"]))
    assert events == [ServerSentEvent(data="1")]


def test_status_line_and_retry() -> None:
    events = list(iter_events([b"event:error\nstatus:429\nretry:1500\ndata:{}\n\n"]))
    assert events == [ServerSentEvent(event="error", data="{}", status=429, retry=1500)]


def test_cut_mid_event_is_pending_and_not_dispatched() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id:1\nevent:result\ndata:{\"a\":1}\n\nid:2\nevent:result\ndata:{\"a\"") == [
        ServerSentEvent(event="result", data='{"a":1}', id="1")
    ]
    assert decoder.close() == []
    assert decoder.pending


def test_clean_end_is_not_pending() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data:1\n\n")
    decoder.close()
    assert not decoder.pending


def test_lone_cr_at_end_of_stream_ends_the_line() -> None:
    assert list(iter_events([b"data:1\r\r"])) == [ServerSentEvent(data="1")]


def test_multibyte_character_split_across_chunks() -> None:
    data = "data:鸡兔同笼\n\n".encode()
    assert list(iter_events([data[:7], data[7:]])) == [ServerSentEvent(data="鸡兔同笼")]


def test_invalid_utf8_raises() -> None:
    with pytest.raises(UnicodeDecodeError):
        list(iter_events([b"data:\xff\xfe\n\n"]))


def test_last_event_id_is_tracked() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id:7\ndata:x\n\n")
    assert decoder.last_id == "7"
