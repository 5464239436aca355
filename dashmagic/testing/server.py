"""A loopback fake of DashScope's text-generation API (both wire generations), standard library only.

    with FakeDashScope(api_key="sk-test") as fake:
        fake.base_url            # "http://127.0.0.1:PORT/api/v1"
        ...                      # point a client (or the dashscope SDK) at it
        fake.requests[-1].header("X-DashScope-Plugin")

Routes
    ``POST /api/v1/services/aigc/text-generation/generation`` and
    ``POST /api/v1/services/aigc/multimodal-generation/generation`` (trailing ``/`` accepted),
    checked in this order (protocol.md §12; codes of the unconfirmed cases are inferred):

    1. an injected fault, if one is queued (see :mod:`dashmagic.testing.faults`);
    2. ``Authorization: Bearer <api_key>`` else 401 ``InvalidApiKey``;
    3. ``X-DashScope-Plugin`` must be a JSON object, else 400 ``InvalidParameter``; every plugin
       name must be in ``allowed_plugins``, else 403 ``InvalidPlugin.AccessDenied``;
    4. the body must be a JSON object (UTF-8, raw or ASCII-escaped) with ``model`` (else 400
       ``BadRequest.EmptyModel``) and ``input`` (else 400 ``BadRequest.EmptyInput``);
    5. the service's refusals of invalid parameter combinations (400 ``InvalidParameter``; see
       :mod:`dashmagic.testing.current`, e.g. ``incremental_output`` on a non-streamed call).

    The answer is, in this order of precedence: the oldest reply queued with
    :meth:`FakeDashScope.queue_reply` (queued first, so a test can script any turn, even one whose
    prompt happens to equal a seed example); the seed exchange with the same plugin set and last
    user text; with only the calculator plugin, a trace for any arithmetic prompt
    (:func:`dashmagic.testing.scripts.calculator_trace`); a current-generation answer (thinking, code interpreter, search, function calls,
    multimodal content; scripted prompts listed in :mod:`dashmagic.testing.current`) when the
    request has no plugin header and uses that generation; a default single-``message`` reply
    saying no answer is scripted (``output.text`` shape unless ``result_format`` is
    ``"message"``, the service default being ``text``).
    Streaming iff the header ``X-DashScope-SSE: enable``: events per :mod:`dashmagic.testing.sse`
    (seed, queued, default) or :mod:`dashmagic.testing.current`; deltas if
    ``parameters.incremental_output`` is true.

    ``GET``/``HEAD /oss/<host>/<path>``: files registered with :meth:`FakeDashScope.add_file`
    (query ignored), preloaded with the two seed figures (see :mod:`dashmagic.testing.oss`);
    unknown ``/oss/`` paths answer OSS-style 404 ``NoSuchKey`` XML.

Every JSON body carries a ``request_id``: seed responses keep the documented one, anything the
fake makes up gets a fresh uuid4.
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from . import batch as batch_api
from . import current
from .exchanges import FIGURE_PATH, Exchange, find_exchange, load_exchanges, prompt_text
from .faults import Fault, InjectedFault
from .oss import EXPIRED_XML, NOT_FOUND_XML, PLOT_OSS_PATH, TEXT_TO_IMAGE_OSS_PATH, rewrite_signed_urls
from .scripts import calculator_trace
from .sse import encode_json, format_event, sse_events

__all__ = [
    "DOCUMENTED_PLUGINS",
    "GENERATION_PATH",
    "GENERATION_PATHS",
    "MULTIMODAL_PATH",
    "FakeDashScope",
    "RecordedRequest",
    "ServedFile",
]

GENERATION_PATH = current.TEXT_PATH
MULTIMODAL_PATH = current.MULTIMODAL_PATH
GENERATION_PATHS = frozenset({GENERATION_PATH, MULTIMODAL_PATH})
DOCUMENTED_PLUGINS = frozenset(
    {"ocr", "calculator", "text_to_image", "haozhu_recommend_hotel", "pdf_extracter", "code_interpreter"}
)

JSON_TYPE = "application/json;charset=UTF-8"
SSE_TYPE = "text/event-stream;charset=UTF-8"
XML_TYPE = "application/xml"

INTERNAL_ERROR_MESSAGE = "An internal error has occured, please try again later or contact service support."
BAD_GATEWAY_HTML = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>Tengine</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
GARBAGE_JSON = b'{"output": [not json'
INVALID_UTF8_MARK = "@@INVALID_UTF8@@"  # replaced by b"\xff\xfe" after encoding


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it. ``headers`` keeps the names as sent."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None  # parsed body, or None if absent or not JSON

    def header(self, name: str) -> str | None:
        """Header value by case-insensitive name (HTTP header names are case-insensitive)."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    @property
    def plugins(self) -> Any:
        """The parsed ``X-DashScope-Plugin`` header, or ``None`` if absent or not JSON."""
        raw = self.header("X-DashScope-Plugin")
        try:
            return json.loads(raw) if raw is not None else None
        except ValueError:
            return None

    @property
    def streaming(self) -> bool:
        """True if the request asked for SSE (``X-DashScope-SSE: enable``)."""
        return (self.header("X-DashScope-SSE") or "").strip().lower() == "enable"


@dataclass(frozen=True)
class ServedFile:
    """A canned answer for ``GET``/``HEAD`` of one path."""

    data: bytes
    content_type: str
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Reply:
    """What the generation route will answer before streaming is decided."""

    body: dict[str, Any]
    status: int = 200


@dataclass
class _QueuedFault:
    fault: InjectedFault
    remaining: int


class _Dropped(Exception):
    """Raised after the fake tore the connection down on purpose; ends the handler quietly."""


def _error_body(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": str(uuid.uuid4())}


def _denied_message(names: list[str]) -> str:
    # Observed exactly once, for one plugin: Plugin ["ocr"] access denied.
    return f"Plugin {json.dumps(names, ensure_ascii=False, separators=(',', ':'))} access denied."


class FakeDashScope:
    """A started-on-demand loopback DashScope; see the module docstring for the behaviour.

    Parameters
    ----------
    api_key:
        The only key accepted in ``Authorization: Bearer``.
    port:
        0 picks a free port.
    allowed_plugins:
        Plugin names the "account" may use; others get 403 ``InvalidPlugin.AccessDenied``.
    rewrite_figure_urls:
        Point signed OSS URLs in answers at this server (``/oss/…``). ``False`` serves the
        documented JSON unchanged.
    event_delay:
        Seconds to wait between SSE events.
    chunk_chars:
        Characters of answer text added per SSE event.
    json_indent:
        Indent for non-streaming JSON bodies. ``None`` (default) sends compact JSON; 4 makes the
        seed answers byte-for-byte the text on the vendor page.
    sse_framing:
        ``"chunked"`` (default): SSE bodies use ``Transfer-Encoding: chunked``, one chunk per
        event, ended by the last chunk. ``"close"``: the body is delimited only by closing the
        connection (HTTP/1.0 style), which delays block-reading clients by up to one event.
    verbose:
        Log each request to stderr (the CLI turns this on).
    """

    def __init__(
        self,
        api_key: str = "sk-test",
        *,
        port: int = 0,
        allowed_plugins: frozenset[str] | set[str] | list[str] | tuple[str, ...] = DOCUMENTED_PLUGINS,
        rewrite_figure_urls: bool = True,
        event_delay: float = 0.0,
        chunk_chars: int = 8,
        json_indent: int | None = None,
        sse_framing: Literal["chunked", "close"] = "chunked",
        verbose: bool = False,
    ) -> None:
        if chunk_chars < 1:
            raise ValueError(f"chunk_chars must be >= 1, got {chunk_chars}")
        if sse_framing not in ("chunked", "close"):
            raise ValueError(f"sse_framing must be 'chunked' or 'close', got {sse_framing!r}")
        self.sse_framing = sse_framing
        self.api_key = api_key
        self.allowed_plugins = frozenset(allowed_plugins)
        self.rewrite_figure_urls = rewrite_figure_urls
        self.event_delay = event_delay
        self.chunk_chars = chunk_chars
        self.json_indent = json_indent
        self.verbose = verbose
        self.exchanges: list[Exchange] = load_exchanges()
        self._port = port
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._replies: deque[_Reply] = deque()
        self._faults: deque[_QueuedFault] = deque()
        self._files: dict[str, ServedFile] = {}
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._pacer: _Pacer | None = None
        self._add_seed_files()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeDashScope:
        """Bind 127.0.0.1 and serve in a daemon thread. Returns ``self``."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", self._port), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="FakeDashScope", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping handlers and cut open connections. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by the client or the handler
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeDashScope:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeDashScope is not running; call start() or use it as a context manager")
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/api/v1``: what ``DASHSCOPE_HTTP_BASE_URL`` should be."""
        return f"{self.origin}/api/v1"

    def url_for(self, path: str) -> str:
        """Absolute URL of a path on this server."""
        return f"{self.origin}{path}"

    # -- recording and scripting ------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far (all routes), oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def generation_requests(self) -> list[RecordedRequest]:
        """Only the requests to the generation routes (text and multimodal)."""
        return [r for r in self.requests if _route(r.path) in GENERATION_PATHS]

    def clear(self) -> None:
        """Forget recorded requests (queued replies, faults and files are kept)."""
        with self._lock:
            self._requests.clear()

    def reset(self) -> None:
        """Forget recorded requests, queued replies and faults; files back to the seed ones."""
        with self._lock:
            self._requests.clear()
            self._replies.clear()
            self._faults.clear()
            self._files.clear()
        self._add_seed_files()

    def queue_reply(self, response: dict[str, Any], *, status: int = 200) -> None:
        """Answer the next generation request (FIFO) with ``response``, before seed matching.

        A ``request_id`` is added if missing. Status 200 replies are streamed like any answer;
        other statuses are sent as a JSON error body.
        """
        body = dict(response)
        body.setdefault("request_id", str(uuid.uuid4()))
        with self._lock:
            self._replies.append(_Reply(body, status))

    def inject(
        self,
        fault: Fault | str,
        times: int = 1,
        *,
        seconds: float | None = None,
        retry_after: int = 1,
        after_events: int = 2,
        status_line: bool = False,
        size: int = 10 * 1024 * 1024,
    ) -> None:
        """Queue ``fault`` for the next ``times`` generation requests (FIFO after earlier ones)."""
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        entry = InjectedFault.make(
            fault,
            seconds=seconds,
            retry_after=retry_after,
            after_events=after_events,
            status_line=status_line,
            size=size,
        )
        with self._lock:
            self._faults.append(_QueuedFault(entry, times))

    def pace(self, *, latency: float = 0.0, rate: float | None = None, burst: float | None = None) -> None:
        """Like a loaded service: every generation request waits ``latency`` seconds before it is
        answered, and above ``rate`` requests per second (a token bucket of ``burst`` requests,
        default one second's worth) it gets 429 ``Throttling.RateQuota`` with ``Retry-After``.
        ``throttled`` counts those 429s. ``pace()`` with no arguments turns it off."""
        self._pacer = _Pacer(latency, rate, burst) if latency > 0 or rate is not None else None

    @property
    def throttled(self) -> int:
        """How many requests :meth:`pace` refused with 429 so far."""
        return self._pacer.refused if self._pacer is not None else 0

    def add_file(
        self,
        path: str,
        data: bytes,
        content_type: str,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Serve ``data`` at ``path`` (e.g. ``/oss/x/y.png``) for GET/HEAD; returns its URL.

        ``status``/``headers`` allow redirects (302 + ``Location``) or error pages.
        """
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        with self._lock:
            self._files[path] = ServedFile(data, content_type, status, dict(headers or {}))
        return self.url_for(path) if self._server is not None else path

    # -- internals used by the handler ------------------------------------------------------

    def _add_seed_files(self) -> None:
        plot = FIGURE_PATH.read_bytes() if FIGURE_PATH.exists() else b""
        with self._lock:
            self._files[PLOT_OSS_PATH] = ServedFile(plot, "image/png")
            self._files[TEXT_TO_IMAGE_OSS_PATH] = ServedFile(EXPIRED_XML, XML_TYPE, 403)

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _track(self, conn: socket.socket, alive: bool) -> None:
        with self._lock:
            (self._connections.add if alive else self._connections.discard)(conn)

    def _file(self, path: str) -> ServedFile | None:
        with self._lock:
            return self._files.get(path)

    def _next_fault(self) -> InjectedFault | None:
        with self._lock:
            if not self._faults:
                return None
            entry = self._faults[0]
            entry.remaining -= 1
            if entry.remaining <= 0:
                self._faults.popleft()
            return entry.fault

    def _next_reply(self) -> _Reply | None:
        with self._lock:
            return self._replies.popleft() if self._replies else None

    def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up at once when the server stops."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def _answer(self, request: RecordedRequest) -> _Reply | current.Answer:
        """Queued reply, else the matching seed exchange, else a current-generation answer
        (:mod:`dashmagic.testing.current`) if that generation handles the request, else the
        default reply."""
        reply = self._next_reply()
        if reply is None:
            body, prompt = request.json, prompt_text(request.json)
            exchange = find_exchange(self.exchanges, _plugins_of(request), prompt)
            view = _current_view(request)
            if exchange is None and current.handles(view):
                return current.Answer(view)
            trace = calculator_trace(prompt) if set(_plugins_of(request)) == {"calculator"} else None
            reply = _Reply(exchange.response if exchange else trace or _default_reply(body, prompt))
        if self.rewrite_figure_urls:
            reply = _Reply(rewrite_signed_urls(reply.body, self.origin), reply.status)
        return reply


def _route(path: str) -> str:
    return path.split("?", 1)[0].rstrip("/")


def _current_view(request: RecordedRequest) -> current.CurrentRequest:
    body = request.json if isinstance(request.json, dict) else {}
    plugins = request.plugins if request.header("X-DashScope-Plugin") is not None else None
    return current.CurrentRequest(_route(request.path), body, request.streaming, plugins)


def _plugins_of(request: RecordedRequest) -> dict[str, Any]:
    plugins = request.plugins
    return plugins if isinstance(plugins, dict) else {}


def _default_reply(body: Any, prompt: str | None) -> dict[str, Any]:
    text = f"(fake DashScope) no scripted answer for: {(prompt or '')[:60]}"
    input_tokens = max(1, len(prompt or "") // 2)
    output_tokens = max(1, len(text) // 2)
    usage = {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}
    params = body.get("parameters") if isinstance(body, dict) else None
    if isinstance(params, dict) and params.get("result_format") == "message":
        output: dict[str, Any] = {
            "choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": text}}]
        }
    else:
        output = {"text": text, "finish_reason": "stop"}
    return {"output": output, "usage": usage, "request_id": str(uuid.uuid4())}


def _fault_reply(body: Any, content: str) -> dict[str, Any]:
    reply = _default_reply(body, "")
    reply["output"] = {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": content}}]}
    return reply


def _huge_content(size: int) -> str:
    line = "| 0123456789 | abcdefghijklmnopqrstuvwxyz | ABCDEFGHIJKLMNOPQRSTUVWXYZ |\n"
    return (line * (size // len(line) + 1))[:size]


class _Pacer:
    """The state behind :meth:`FakeDashScope.pace`: a fixed latency and a token bucket."""

    def __init__(self, latency: float, rate: float | None, burst: float | None) -> None:
        if latency < 0 or (rate is not None and rate <= 0):
            raise ValueError(f"latency must be >= 0 and rate > 0, got {latency!r} and {rate!r}")
        self.latency, self.rate = latency, rate
        self.capacity = max(1.0, burst if burst is not None else (rate or 1.0))
        self.level, self.stamp, self.refused = self.capacity, time.monotonic(), 0
        self.lock = threading.Lock()

    def admit(self) -> float | None:
        """None if the request may go on, else the seconds until it would be admitted."""
        if self.rate is None:
            return None
        with self.lock:
            now = time.monotonic()
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.level >= 1.0:
                self.level -= 1.0
                return None
            self.refused += 1
            return (1.0 - self.level) / self.rate


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], fake: FakeDashScope) -> None:
        self.fake = fake
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for JSON; SSE responses close explicitly
    server_version = "FakeDashScope/1.0"
    server: _Server

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def fake(self) -> FakeDashScope:
        return self.server.fake

    def setup(self) -> None:
        super().setup()
        # Small SSE writes must leave at once, not wait for Nagle.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.fake._track(self.connection, True)
        self._sse_open = False

    def finish(self) -> None:
        self.fake._track(self.connection, False)
        with contextlib.suppress(OSError):  # the peer is gone; nothing left to flush
            super().finish()

    def handle(self) -> None:
        try:
            super().handle()
        except (_Dropped, BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.fake.verbose:
            super().log_message(format, *args)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _record(self, body: bytes) -> RecordedRequest:
        try:
            parsed = json.loads(body.decode("utf-8")) if body else None
        except ValueError:
            parsed = None
        request = RecordedRequest(self.command, self.path, dict(self.headers.items()), body, parsed)
        self.fake._record(request)
        return request

    def _send(self, status: int, data: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _send_json(self, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> None:
        self._send(status, encode_json(body, self.fake.json_indent), JSON_TYPE, headers)

    def _reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER on, timeout 0, then close)."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # rfile holds a reference to the socket; the fd (and the RST) only go once all are closed.
        self.rfile.close()
        self.wfile.close()
        self.connection.close()
        raise _Dropped

    # -- routes -----------------------------------------------------------------------------

    def do_GET(self) -> None:
        if batch_api.serve(self):  # /compatible-mode/v1/files and /batches: dashmagic.testing.batch
            return
        self._record(b"")
        path = self.path.split("?", 1)[0]
        served = self.fake._file(path)
        if served is not None:
            self._send(served.status, served.data, served.content_type, served.headers)
        elif path.startswith("/oss/"):
            self._send(404, NOT_FOUND_XML, XML_TYPE)
        elif path.rstrip("/") in GENERATION_PATHS:
            self._send_json(405, _error_body("MethodNotAllowed", "Use POST for this endpoint."))
        else:
            self._send_json(404, _error_body("InvalidURL", "Invalid URL provided in your request."))

    do_HEAD = do_GET

    def do_POST(self) -> None:
        if batch_api.serve(self):
            return
        request = self._record(self._read_body())
        if _route(self.path) not in GENERATION_PATHS:
            self._send_json(404, _error_body("InvalidURL", "Invalid URL provided in your request."))
            return
        if self._paced():
            return
        fault = self.fake._next_fault()
        if fault is not None:
            self._serve_fault(fault, request)
            return
        self._respond(request)

    def _paced(self) -> bool:
        """Apply :meth:`FakeDashScope.pace`: True when the request was refused with 429."""
        pacer = self.fake._pacer
        if pacer is None:
            return False
        wait = pacer.admit()
        if wait is not None:
            # Retry-After is whole seconds on the wire, as HTTP says; never 0.
            headers = {"Retry-After": str(max(1, math.ceil(wait)))}
            body = _error_body("Throttling.RateQuota", "Requests rate limit exceeded, please try again later.")
            self._send_json(429, body, headers)
            return True
        self.fake._sleep(pacer.latency)
        return False

    def _respond(self, request: RecordedRequest) -> None:
        """The fault-free path: validate, then answer."""
        rejection = self._validate(request)
        if rejection is not None:
            self._send_json(*rejection)
            return
        refused = current.refusal(_current_view(request))
        if refused is not None:
            self._refuse(request, refused)
            return
        self._serve_answer(request, self.fake._answer(request))

    def _refuse(self, request: RecordedRequest, key: str) -> None:
        """400 InvalidParameter; a stream gets it as an ``event:error`` (the real capture's form),
        except the legacy plugin refusal, which is plain JSON like the plugin header's checks."""
        body = _error_body("InvalidParameter", current.REFUSALS[key])
        if request.streaming and key != "plugin_incremental":
            self._start_sse()
            self._sse_write(format_event(1, body, "error", 400))
            self._end_sse()
        else:
            self._send_json(400, body)

    # -- validation -------------------------------------------------------------------------

    def _validate(self, request: RecordedRequest) -> tuple[int, dict[str, Any]] | None:
        return self._check_auth(request) or self._check_plugins(request) or self._check_body(request)

    def _check_auth(self, request: RecordedRequest) -> tuple[int, dict[str, Any]] | None:
        scheme, _, token = (request.header("Authorization") or "").strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip() == self.fake.api_key:
            return None
        return 401, _error_body("InvalidApiKey", "Invalid API-key provided.")

    def _check_plugins(self, request: RecordedRequest) -> tuple[int, dict[str, Any]] | None:
        raw = request.header("X-DashScope-Plugin")
        if raw is None:
            return None
        if not isinstance(request.plugins, dict):
            return 400, _error_body(
                "InvalidParameter", 'The X-DashScope-Plugin header must be a JSON object, e.g. {"calculator": {}}.'
            )
        denied = [name for name in request.plugins if name not in self.fake.allowed_plugins]
        if denied:
            return 403, _error_body("InvalidPlugin.AccessDenied", _denied_message(denied))
        return None

    def _check_body(self, request: RecordedRequest) -> tuple[int, dict[str, Any]] | None:
        body = request.json
        if not isinstance(body, dict):
            return 400, _error_body(
                "InvalidParameter", "Required parameter(s) missing or invalid, please check the request parameters."
            )
        if not body.get("model"):
            return 400, _error_body("BadRequest.EmptyModel", 'Required parameter "model" missing from request.')
        if not isinstance(body.get("input"), dict) or not body["input"]:
            return 400, _error_body("BadRequest.EmptyInput", "Required input parameter missing from request.")
        return None

    # -- answers ----------------------------------------------------------------------------

    def _events_for(self, request: RecordedRequest, reply: _Reply | current.Answer) -> list[dict[str, Any]]:
        if isinstance(reply, current.Answer):
            return reply.events(self.fake.chunk_chars)
        return self._seed_events(request, reply.body)

    def _seed_events(self, request: RecordedRequest, reply: dict[str, Any]) -> list[dict[str, Any]]:
        params = request.json.get("parameters") if isinstance(request.json, dict) else None
        incremental = isinstance(params, dict) and params.get("incremental_output") is True
        return sse_events(reply, chunk_chars=self.fake.chunk_chars, incremental=incremental)

    def _serve_answer(self, request: RecordedRequest, reply: _Reply | current.Answer) -> None:
        if isinstance(reply, current.Answer):
            if request.streaming:
                self._stream(reply.events(self.fake.chunk_chars))
            else:
                self._send_json(200, reply.body())
        elif reply.status != 200:
            self._send_json(reply.status, reply.body)
        elif request.streaming:
            self._stream(self._events_for(request, reply))
        else:
            self._send_json(200, reply.body)

    def _start_sse(self, headers: Mapping[str, str] | None = None) -> None:
        # No Content-Length and no [DONE]: the stream ends when the server ends the body and
        # closes the connection. Chunked framing (the default) sends one chunk per event, so
        # clients reading in fixed-size blocks (requests' iter_lines, hence the SDK) get each
        # event when it is sent; close-delimited framing makes them wait for the next block.
        self.send_response(200)
        self.send_header("Content-Type", SSE_TYPE)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        if self.fake.sse_framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
        self._sse_open = True

    def _sse_write(self, data: bytes) -> None:
        if self.fake.sse_framing == "chunked":
            data = b"%x\r\n%s\r\n" % (len(data), data)
        self.wfile.write(data)

    def _end_sse(self) -> None:
        """End the body cleanly (last chunk); the connection then closes with a FIN."""
        if self._sse_open and self.fake.sse_framing == "chunked":
            self.wfile.write(b"0\r\n\r\n")
        self._sse_open = False

    def _write_events(self, events: list[dict[str, Any]], first_id: int = 1) -> None:
        for offset, payload in enumerate(events):
            if offset or first_id > 1:
                self.fake._sleep(self.fake.event_delay)
            self._sse_write(format_event(first_id + offset, payload))

    def _stream(self, events: list[dict[str, Any]]) -> None:
        self._start_sse()
        self._write_events(events)
        self._end_sse()

    # -- faults -----------------------------------------------------------------------------

    def _serve_fault(self, fault: InjectedFault, request: RecordedRequest) -> None:
        handler = getattr(self, f"_fault_{fault.fault.value}")
        handler(fault, request)
        self._end_sse()

    def _normal_events(self, request: RecordedRequest) -> list[dict[str, Any]]:
        return self._events_for(request, self.fake._answer(request))

    def _fault_throttle(self, fault: InjectedFault, request: RecordedRequest) -> None:
        self._send_json(
            429, _error_body("Throttling.RateQuota", "Requests rate limit exceeded, please try again later.")
        )

    def _fault_access_denied(self, fault: InjectedFault, request: RecordedRequest) -> None:
        names = list(request.plugins) if isinstance(request.plugins, dict) and request.plugins else ["ocr"]
        self._send_json(403, _error_body("InvalidPlugin.AccessDenied", _denied_message(names[:1])))

    def _fault_server_error(self, fault: InjectedFault, request: RecordedRequest) -> None:
        self._send_json(500, _error_body("InternalError", INTERNAL_ERROR_MESSAGE))

    def _fault_bad_gateway_html(self, fault: InjectedFault, request: RecordedRequest) -> None:
        self._send(502, BAD_GATEWAY_HTML, "text/html")

    def _fault_unavailable(self, fault: InjectedFault, request: RecordedRequest) -> None:
        body = _error_body("ServiceUnavailable", "Service is temporarily unavailable, please try again later.")
        self._send_json(503, body, {"Retry-After": str(fault.retry_after)})

    def _fault_reset_before_response(self, fault: InjectedFault, request: RecordedRequest) -> None:
        self._reset()

    def _fault_reset_mid_stream(self, fault: InjectedFault, request: RecordedRequest) -> None:
        events = self._normal_events(request)
        self._start_sse()
        self._write_events(events[: min(fault.after_events, len(events) - 1)])
        self._reset()

    def _fault_stall(self, fault: InjectedFault, request: RecordedRequest) -> None:
        rejection = self._validate(request)
        if not request.streaming or rejection is not None:
            self.fake._sleep(fault.seconds)
            self._respond(request)
            return
        events = self._normal_events(request)
        self._start_sse()
        self._write_events(events[:1])
        self.fake._sleep(fault.seconds)
        self._write_events(events[1:], first_id=2)

    def _fault_garbage_json(self, fault: InjectedFault, request: RecordedRequest) -> None:
        if request.streaming:
            self._start_sse()
            self._sse_write(format_event(1, GARBAGE_JSON))
        else:
            self._send(200, GARBAGE_JSON, JSON_TYPE)

    def _fault_cut_mid_event(self, fault: InjectedFault, request: RecordedRequest) -> None:
        events = self._normal_events(request)
        keep = max(0, min(fault.after_events, len(events) - 1))
        self._start_sse()
        self._write_events(events[:keep])
        partial = format_event(keep + 1, events[keep])
        self.fake._sleep(self.fake.event_delay)
        self._sse_write(partial[: len(partial) // 2])
        # _serve_fault then ends the body normally and the socket closes with a FIN: a clean
        # end of stream in the middle of an event.

    def _fault_error_event_first(self, fault: InjectedFault, request: RecordedRequest) -> None:
        self._start_sse({"x-dashscope-finished": "true"})
        body = _error_body("DataInspectionFailed", "Input or output data may contain inappropriate content.")
        self._sse_write(format_event(1, body, "error", 400, status_line=fault.status_line))

    def _fault_error_event_mid(self, fault: InjectedFault, request: RecordedRequest) -> None:
        events = self._normal_events(request)
        keep = max(0, min(fault.after_events, len(events) - 1))
        self._start_sse()
        self._write_events(events[:keep])
        self.fake._sleep(self.fake.event_delay)
        body = _error_body("InternalError", INTERNAL_ERROR_MESSAGE)
        self._sse_write(format_event(keep + 1, body, "error", 500, status_line=fault.status_line))

    def _fault_huge_response(self, fault: InjectedFault, request: RecordedRequest) -> None:
        reply = _fault_reply(request.json, _huge_content(fault.size))
        if not request.streaming:
            self._send_json(200, reply)
            return
        first = sse_events(_fault_reply(request.json, "| huge |\n"), chunk_chars=64)[0]
        first["output"]["choices"][0]["finish_reason"] = "null"
        self._stream([first, reply])

    def _fault_invalid_utf8(self, fault: InjectedFault, request: RecordedRequest) -> None:
        reply = _fault_reply(request.json, f"bytes that are not UTF-8: {INVALID_UTF8_MARK} (end)")
        data = format_event(1, reply) if request.streaming else encode_json(reply)
        data = data.replace(INVALID_UTF8_MARK.encode("ascii"), b"\xff\xfe")
        if request.streaming:
            self._start_sse()
            self._sse_write(data)
        else:
            self._send(200, data, JSON_TYPE)

    def _fault_slow(self, fault: InjectedFault, request: RecordedRequest) -> None:
        self.fake._sleep(fault.seconds)
        self._respond(request)
