"""Helpers for today's-generation tests: the pure pipeline, delta→snapshot rewriting, a loopback
server that replays a captured body byte for byte."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dashmagic.events import TraceBuilder
from dashmagic.protocol.envelope import payload_of_event
from dashmagic.sse import SSEDecoder, ServerSentEvent
from dashmagic.trace import RequestInfo, Trace

__all__ = ["decode", "fold", "fold_payloads", "payloads_of", "to_snapshots", "Replayer", "replay_server"]


def decode(chunks: Sequence[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    events.extend(decoder.close())
    assert not decoder.pending
    return events


def payloads_of(events: Sequence[ServerSentEvent]) -> list[Mapping[str, Any]]:
    return [p for p in (payload_of_event(e) for e in events) if p is not None]


def fold_payloads(payloads: Sequence[Mapping[str, Any]], request: RequestInfo, *, incremental: bool) -> Trace:
    builder = TraceBuilder(request)
    for payload in payloads:
        builder.feed(payload, incremental=incremental)
    return builder.finish(complete=not request.stream)


def fold(chunks: Sequence[bytes], request: RequestInfo, *, incremental: bool) -> Trace:
    """SSEDecoder → payload_of_event → TraceBuilder, as the client runs them."""
    return fold_payloads(payloads_of(decode(chunks)), request, incremental=incremental)


def to_snapshots(payloads: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The same reply as a snapshot stream: every text field repeats everything so far.

    ``reasoning_content``, ``content`` (string or ``[{"text"}]``) and each ``tool_calls[index]``'s
    arguments accumulate; ``tool_info`` is cumulative already; ``search_info`` is left as sent.
    """
    reasoning = answer = ""
    calls: dict[int, dict[str, Any]] = {}
    out = []
    for payload in payloads:
        new = copy.deepcopy(dict(payload))
        message = new["output"].get("choices", [{}])[0].get("message")
        if isinstance(message, dict):
            reasoning += message.get("reasoning_content") or ""
            if "reasoning_content" in message:
                message["reasoning_content"] = reasoning
            content = message.get("content")
            if isinstance(content, list):
                answer += "".join(p.get("text", "") for p in content)
                message["content"] = [{"text": answer}] if answer else []
            elif isinstance(content, str):
                answer += content
                message["content"] = answer
            for delta in message.get("tool_calls") or []:
                call = calls.setdefault(delta["index"], {"index": delta["index"], "id": "", "type": "function",
                                                         "function": {"name": "", "arguments": ""}})
                call["id"] = delta.get("id") or call["id"]
                function = delta.get("function", {})
                call["function"]["name"] = function.get("name") or call["function"]["name"]
                call["function"]["arguments"] += function.get("arguments", "")
            if calls:
                message["tool_calls"] = copy.deepcopy([calls[i] for i in sorted(calls)])
        out.append(new)
    return out


def sse_body(payloads: Sequence[Mapping[str, Any]]) -> bytes:
    frames = [
        f"id:{i + 1}\nevent:result\n:HTTP_STATUS/200\ndata:{json.dumps(p, ensure_ascii=False)}\n\n"
        for i, p in enumerate(payloads)
    ]
    return "".join(frames).encode("utf-8")


@dataclass
class Replayer:
    """What the loopback server answers, and what it was asked."""

    body: bytes
    content_type: str
    status: int = 200
    chunk: int = 97  # odd-sized writes, so frames straddle TCP segments
    requests: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""


@contextmanager
def replay_server(body: bytes, content_type: str, *, status: int = 200) -> Iterator[Replayer]:
    """A stdlib HTTP server on 127.0.0.1 that answers every POST with ``body``, byte for byte."""
    replayer = Replayer(body=body, content_type=content_type, status=status)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            replayer.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(raw)})
            self.send_response(replayer.status)
            self.send_header("Content-Type", replayer.content_type)
            self.send_header("Content-Length", str(len(replayer.body)))
            self.end_headers()
            for start in range(0, len(replayer.body), replayer.chunk):
                self.wfile.write(replayer.body[start : start + replayer.chunk])
                self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    replayer.base_url = f"http://127.0.0.1:{server.server_address[1]}/api/v1"
    try:
        yield replayer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
