"""A loopback HTTP server that plays raw, scripted replies (for faults the fake does not model).

Each reply is a list of ``(delay_seconds, bytes)`` pieces written to the socket after the status
line and headers, so a test can drip keep-alives, send one huge line, a gzip bomb or a reply that
never finishes. Only 127.0.0.1; every wait is bounded; ``stop()`` cuts open connections.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["Reply", "WireServer", "wire_server", "sse", "result_event"]


@dataclass
class Reply:
    status: int = 200
    headers: Sequence[tuple[str, str]] = (("Content-Type", "text/event-stream;charset=UTF-8"),)
    pieces: Sequence[tuple[float, bytes]] = ()
    #: Write a Content-Length (else the body ends when the connection closes).
    length: bool = False


@dataclass
class WireServer:
    replies: list[Reply] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/api/v1"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self._conns.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while len(body) < length:
                body += conn.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + body)
            reply = self.replies.pop(0) if self.replies else Reply(status=500)
            payload = b"".join(p for _, p in reply.pieces)
            lines = [f"HTTP/1.1 {reply.status} X".encode()]
            lines += [f"{k}: {v}".encode() for k, v in reply.headers]
            if reply.length:
                lines.append(f"Content-Length: {len(payload)}".encode())
            lines.append(b"Connection: close")
            conn.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
            for delay, piece in reply.pieces:
                if self._stop.wait(delay):
                    return
                conn.sendall(piece)
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def stop(self) -> None:
        self._stop.set()
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._sock.close()
        self._thread.join(timeout=2)


@contextmanager
def wire_server(*replies: Reply) -> Iterator[WireServer]:
    server = WireServer(list(replies))
    try:
        yield server
    finally:
        server.stop()


def result_event(content: str, finish: str = "null", *, usage: str = "", request_id: str = "req-1") -> bytes:
    import json

    payload = {
        "output": {"choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": finish}]},
        "request_id": request_id,
    }
    text = json.dumps(payload, ensure_ascii=False)
    if usage:
        text = text[:-1] + f',"usage":{usage}}}'
    return f"event:result\n:HTTP_STATUS/200\ndata:{text}\n\n".encode()


def sse(*events: bytes, delay: float = 0.0) -> list[tuple[float, bytes]]:
    return [(delay, e) for e in events]


def now() -> float:
    return time.monotonic()
