"""Record and replay DashScope exchanges at the transport level (``requests`` adapters).

Three modes (style.md §6.3-4, vcr's vocabulary):

``live``
    the process-wide pooled session (:func:`dashmagic.transport.shared_session`).
``record``
    :class:`RecordingAdapter` sends for real and tees the response bytes into a JSON Lines
    file *while the caller streams them*, one string per chunk read, so SSE event boundaries
    are kept.
``replay``
    :class:`ReplayAdapter` never touches the network: it answers from recordings with a real
    ``requests.Response`` whose ``raw`` hands back the recorded chunks one by one. The SSE
    decoder, trace builder and renderers therefore run exactly as live, streaming included.

File format (one JSON object per line, UTF-8, non-ASCII kept readable)::

    {"dashmagic_recording": 1, "note": "..."}                       # header, first line
    {"type": "exchange",
     "request": {"method", "path", "plugins", "stream", "body"},    # the fingerprint
     "response": {"status", "headers", "chunks" | "chunks_b64", "complete", ["error"]},
     "recorded_at": "2025-01-01T00:00:00+00:00"}
    {"type": "figure", "url", "status", "content_type", "body_b64", ["location"], ["note"]}

``path`` is the URL path without host, so a recording made against the loopback fake replays
under the real base URL and vice versa. ``complete`` is false when the body was cut: the
connection broke (then ``error`` says how, and replay raises the same kind of error after the
recorded chunks), the caller stopped reading early, or an event stream ended in the middle of
an event. The API key never enters a file: the ``Authorization`` header is not recorded, and
every line is scrubbed of the key (and of any bearer token the request carried) before writing;
in response bodies any piece of 10+ characters of it goes too, since a streamed answer echoing
the key shows a growing prefix of it event after event.

Identical requests replay in recorded order; when the recorded answers for a request are used
up, replay starts again from the first, so re-running a notebook in the same kernel keeps
working. :func:`session_for` shares one :class:`ReplayAdapter` per set of files, so that order
carries from cell to cell (:func:`reset_replays` starts it over).
"""

from __future__ import annotations

import base64
import codecs
import json
import os
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter, HTTPAdapter

from .config import Secret
from .errors import ConfigError, RecordingMiss
from ._urls import display_url
from .images import new_image_session

_DEMO_DIR = Path(__file__).resolve().parent / "demo"

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = [
    "FORMAT_VERSION",
    "MODES",
    "REDACTED",
    "VOLATILE_PARAMETERS",
    "RecordingAdapter",
    "ReplayAdapter",
    "fingerprint",
    "fingerprint_key",
    "record_figure",
    "session_for",
    "image_session_for",
    "resolve_recordings",
    "reset_replays",
]

FORMAT_VERSION = 1
MODES = ("live", "record", "replay")
#: Keys under the request body's ``parameters`` that differ between otherwise identical calls
#: and so must not take part in matching. dashmagic sends none today (seed, model and messages
#: are the user's data and always match); the mechanism stays for fields such as a client-side
#: ``request_id`` that some SDK versions add.
VOLATILE_PARAMETERS: tuple[str, ...] = ("request_id",)
#: Response headers worth keeping; everything else (dates, cookies, server names) is noise.
_KEPT_HEADERS = ("content-type", "retry-after", "x-request-id")
_KEPT_PREFIX = "x-dashscope-"
REDACTED = "<redacted>"
_DEFAULT_NOTE = (
    "dashmagic recording: HTTP exchanges with DashScope, one JSON object per line "
    "(replay with --replay PATH or DASHMAGIC_MODE=replay). The API key is never stored."
)
_MIN_SECRET = 4  # shorter "keys" would redact ordinary text; real keys are ~35 characters
_MIN_FRAGMENT = 10  # a piece of the key this long is redacted too (see _secret_spans)

PathLike = Union[str, "os.PathLike[str]"]
Recordings = Union[PathLike, Sequence[PathLike], None]


# -- fingerprints -----------------------------------------------------------------------------


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if str(key).lower() == wanted:
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return None


def _canonical_body(body: bytes | str | None) -> Any:
    if not isinstance(body, (bytes, str)) or not body:
        return None  # no body, or a streamed one (dashmagic always sends bytes)
    raw = body if isinstance(body, bytes) else body.encode("utf-8")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"body_b64": base64.b64encode(raw).decode("ascii")}
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict) and isinstance(value.get("parameters"), dict):
        value = dict(value)
        value["parameters"] = {k: v for k, v in value["parameters"].items() if k not in VOLATILE_PARAMETERS}
    return value


def fingerprint(method: str, url: str, headers: Mapping[str, Any], body_bytes: bytes | str | None) -> dict[str, Any]:
    """What identifies a request in a recording: no host, no key, no volatile fields."""
    raw_plugins = _header(headers, "X-DashScope-Plugin")
    plugins: Any = {}
    if raw_plugins:
        try:
            plugins = json.loads(raw_plugins)
        except ValueError:
            plugins = raw_plugins
    return {
        "method": method.upper(),
        "path": urlsplit(url).path or "/",
        "plugins": plugins,
        "stream": (_header(headers, "X-DashScope-SSE") or "").strip().lower() == "enable",
        "body": _canonical_body(body_bytes),
    }


def fingerprint_key(fp: Mapping[str, Any]) -> str:
    """The canonical, comparable form of a fingerprint: sorted-key compact JSON."""
    return json.dumps(fp, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _loose_key(fp: Mapping[str, Any]) -> str:
    # strict=False: same endpoint, plugins, model and last user text; other fields may differ.
    body = fp.get("body")
    model = body.get("model") if isinstance(body, dict) else None
    return fingerprint_key(
        {"method": fp.get("method"), "path": fp.get("path"), "plugins": fp.get("plugins"),
         "model": model, "prompt": _prompt_of(body)}
    )


def _without_stream(fp: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fp.items() if k != "stream"}


def _prompt_of(body: Any) -> str | None:
    """Text of the last user message of a generation body."""
    if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
        return None
    messages = body["input"].get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                if isinstance(content, list):
                    return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict)).strip()
                return None
    prompt = body["input"].get("prompt")
    return prompt if isinstance(prompt, str) else None


# -- secrets ---------------------------------------------------------------------------------


def _secret_forms(secrets: Sequence[str]) -> list[str]:
    """Every spelling of each secret that can appear in a JSON line, longest first."""
    forms: set[str] = set()
    for secret in secrets:
        if not secret or len(secret) < _MIN_SECRET:
            continue
        for text in (secret, json.dumps(secret, ensure_ascii=False)[1:-1], json.dumps(secret)[1:-1]):
            forms.add(f"Bearer {text}")
            forms.add(text)
    return sorted(forms, key=len, reverse=True)


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for form in _secret_forms(secrets):
        text = text.replace(form, REDACTED)
    return text


def _secret_spans(body: bytes, secret: bytes) -> list[tuple[int, int]]:
    """Where ``secret`` or a long enough piece of it (``_MIN_FRAGMENT`` bytes) occurs in ``body``.

    Pieces matter because a streamed answer that echoes the key grows a few characters per event
    (snapshot mode): every event but the last holds a longer and longer prefix of it.
    """
    size = min(len(secret), _MIN_FRAGMENT)
    spans: list[tuple[int, int]] = []
    for i in range(len(secret) - size + 1):
        seed = secret[i : i + size]
        start = body.find(seed)
        while start >= 0:
            lo, hi, s_lo, s_hi = start, start + size, i, i + size
            while lo > 0 and s_lo > 0 and body[lo - 1] == secret[s_lo - 1]:
                lo, s_lo = lo - 1, s_lo - 1
            while hi < len(body) and s_hi < len(secret) and body[hi] == secret[s_hi]:
                hi, s_hi = hi + 1, s_hi + 1
            if body[max(0, lo - 7) : lo] == b"Bearer ":
                lo -= 7
            spans.append((lo, hi))
            start = body.find(seed, start + 1)
    return spans


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _redact_chunks(chunks: list[bytes], secrets: Sequence[str]) -> list[bytes]:
    """Redact secrets (and long pieces of them) in a chunked body, even across chunk boundaries.

    A boundary falling inside an occurrence is moved to its end, so the whole occurrence is in
    one chunk and is replaced there; no other boundary moves.
    """
    body = b"".join(chunks)
    spans = _merge([
        span
        for secret in secrets
        if secret and len(secret) >= _MIN_SECRET
        for span in _secret_spans(body, secret.encode("utf-8"))
    ])
    if not spans:
        return chunks
    bounds, offset = [], 0
    for chunk in chunks[:-1]:
        offset += len(chunk)
        bounds.append(next((hi for lo, hi in spans if lo < offset < hi), offset))
    pieces, previous = [], 0
    for bound in [*bounds, len(body)]:
        bound = max(bound, previous)
        piece, cursor = bytearray(), previous
        for lo, hi in spans:
            if previous <= lo < bound:
                piece += body[cursor:lo] + REDACTED.encode()
                cursor = hi
        piece += body[cursor:bound]
        previous = bound
        if piece:
            pieces.append(bytes(piece))
    return pieces


# -- writing ---------------------------------------------------------------------------------

_file_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
_file_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _file_locks_guard:
        return _file_locks[str(path.resolve())]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _ensure_file(path: Path, note: str | None = None) -> None:
    """Create the recording (and its parent folders) with its header line, if it is new."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _lock_for(path):
            if path.exists() and path.stat().st_size > 0:
                return
            header = {"dashmagic_recording": FORMAT_VERSION, "note": note or _DEFAULT_NOTE}
            with path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(header, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise ConfigError(f"Cannot write the recording file {str(path)!r}: {exc.strerror or exc}.") from None


def _append(path: Path, record: Mapping[str, Any], secrets: Sequence[str]) -> None:
    """Append one line: scrubbed, written with a single ``write`` in append mode, under a lock."""
    data = (_scrub(json.dumps(record, ensure_ascii=False, separators=(", ", ": ")), secrets) + "\n").encode()
    _ensure_file(path)  # (again: the file may have been deleted since the adapter was made)
    with _lock_for(path):
        # O_APPEND and one unbuffered write: lines from other processes cannot interleave.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
        except OSError as exc:
            raise ConfigError(f"Cannot write the recording file {str(path)!r}: {exc.strerror or exc}.") from None


def _encode_chunks(chunks: list[bytes]) -> dict[str, list[str]]:
    """Chunks as text when the body is UTF-8, else base64 (exact bytes).

    A network read may end inside a multi-byte character; its first bytes then move to the next
    chunk. Such a boundary is always inside a JSON string, never between events, so the events
    completed by each chunk (and so the snapshots) are unchanged.
    """
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        texts = [decoder.decode(chunk) for chunk in chunks]
        tail = decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return {"chunks_b64": [base64.b64encode(chunk).decode("ascii") for chunk in chunks]}
    # A read that held only the first bytes of a character decodes to "": drop it, since an
    # empty chunk would read as end of body on replay.
    return {"chunks": [text for text in [*texts, tail] if text]}


def _kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: value
        for name, value in headers.items()
        if name.lower() in _KEPT_HEADERS or name.lower().startswith(_KEPT_PREFIX)
    }


def _ends_mid_event(body: bytes) -> bool:
    stripped = body.rstrip(b" \t")
    return bool(stripped) and not (stripped.endswith((b"\n\n", b"\r\n\r\n", b"\r\r", b"\n\r\n")))


def _figure_line(path: Path, url: str, status: int, content_type: str, body: bytes, secrets: Sequence[str],
                 location: str | None = None, note: str | None = None) -> None:
    redacted = b"".join(_redact_chunks([body], secrets)) if body else b""
    record: dict[str, Any] = {
        "type": "figure",
        "url": url,
        "status": int(status),
        "content_type": content_type,
        "body_b64": base64.b64encode(redacted).decode("ascii"),
    }
    if location:
        record["location"] = location  # a redirect: replay sends it as the Location header
    if note:
        record["note"] = note
    _append(path, record, secrets)


def record_figure(
    path: PathLike,
    url: str,
    status: int,
    content_type: str,
    body_bytes: bytes,
    note: str | None = None,
    key: Secret | None = None,
    *,
    location: str | None = None,
) -> None:
    """Append a ``figure`` line: a fetched image (or the error page its URL gave) for replay."""
    _figure_line(Path(path), url, status, content_type, body_bytes, [key.reveal()] if key is not None else [],
                 location=location, note=note)


# -- record ----------------------------------------------------------------------------------


class _TeeBody:
    """Wraps urllib3's response; every chunk the caller reads is also kept for the recording.

    ``on_done(chunks, at_eof, error)`` runs once: at end of body, on a read error, or on close.
    Anything else is delegated to the real response (``_original_response`` for cookies, …).
    """

    def __init__(self, inner: Any, on_done: Callable[[list[bytes], bool, dict[str, str] | None], None]) -> None:
        self._inner = inner
        self._on_done = on_done
        self._chunks: list[bytes] = []
        self._done = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _keep(self, data: bytes) -> bytes:
        if data:
            self._chunks.append(bytes(data))
        return data

    def _finish(self, at_eof: bool, error: dict[str, str] | None = None) -> None:
        if not self._done:
            self._done = True
            self._on_done(self._chunks, at_eof, error)

    def _failed(self, exc: BaseException) -> None:
        import urllib3.exceptions

        if isinstance(exc, urllib3.exceptions.ReadTimeoutError) or "timed out" in str(exc).lower():
            self._finish(False, {"kind": "read_timeout", "message": str(exc)[:300]})
        elif isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
            self._finish(False, {"kind": "connection_broken", "message": str(exc)[:300]})
        else:  # KeyboardInterrupt and the like: the caller stopped, the server did not fail
            self._finish(False)

    def _inner_at_eof(self) -> bool:
        buffered = getattr(self._inner, "_decoded_buffer", None)
        try:
            return bool(self._inner.closed) and not (buffered is not None and len(buffered))
        except Exception:  # noqa: BLE001 - a best-effort check; "not known" means not complete
            return False

    def read1(self, amt: int | None = None, decode_content: bool = True) -> bytes:
        # decode_content=True: the file stores the body as the caller should see it (no gzip).
        try:
            data = self._inner.read1(amt, decode_content=decode_content)
        except BaseException as exc:
            self._failed(exc)
            raise
        if not data and amt != 0:
            self._finish(True)
        return self._keep(data)

    def read(self, amt: int | None = None, decode_content: bool = True, cache_content: bool = False) -> bytes:
        try:
            data = self._inner.read(amt, decode_content=decode_content, cache_content=cache_content)
        except BaseException as exc:
            self._failed(exc)
            raise
        self._keep(data)
        if amt is None or (not data and amt != 0):
            self._finish(True)
        return data

    def stream(self, amt: int | None = 2**16, decode_content: bool = True) -> Iterator[bytes]:
        try:
            for data in self._inner.stream(amt, decode_content=decode_content):
                yield self._keep(data)
        except GeneratorExit:
            raise
        except BaseException as exc:
            self._failed(exc)
            raise
        self._finish(True)

    def close(self) -> None:
        try:
            self._finish(self._inner_at_eof())
        finally:
            self._inner.close()

    def release_conn(self) -> None:
        self._inner.release_conn()

    @property
    def closed(self) -> bool:
        return bool(self._inner.closed)


class RecordingAdapter(BaseAdapter):
    """Send for real (through ``inner``, default ``HTTPAdapter(max_retries=0)``) and record.

    POSTs become ``exchange`` lines, GETs (figure fetches) ``figure`` lines. The line is written
    once the caller has read the body to its end, or closed the response.
    """

    def __init__(
        self, path: PathLike, key: Secret | None = None, inner: Any = None, *, note: str | None = None
    ) -> None:
        super().__init__()
        if inner is None:
            inner = HTTPAdapter(max_retries=0, pool_connections=2, pool_maxsize=4)
        self.path = Path(path)
        self.inner = inner
        self._secrets: list[str] = [key.reveal()] if key is not None else []
        _ensure_file(self.path, note)

    def __repr__(self) -> str:
        return f"RecordingAdapter({str(self.path)!r})"

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        # Any bearer token this request carries is scrubbed too, even if no key was given.
        auth = _header(request.headers, "Authorization") or ""
        scheme, _, token = auth.strip().partition(" ")
        secrets = list(self._secrets)
        if scheme.lower() == "bearer" and token.strip():
            secrets.append(token.strip())
        response = self.inner.send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)
        method = (request.method or "GET").upper()
        url = request.url or ""
        status = int(response.status_code)
        headers = dict(response.headers)
        event_stream = "event-stream" in (response.headers.get("Content-Type") or "")

        def done(chunks: list[bytes], at_eof: bool, error: dict[str, str] | None) -> None:
            body = b"".join(chunks)
            if method == "HEAD":
                return  # no body to serve later; replay answers HEAD from the GET's figure line
            if method == "GET":
                # A truncated image would be worse than a 404 on replay; but an answer the fetcher
                # refuses by its status (403 expired, 302) is complete without its body.
                if at_eof or status >= 300:
                    _figure_line(self.path, url, status, response.headers.get("Content-Type", ""), body,
                                 secrets, location=response.headers.get("Location"))
                return
            complete = at_eof and not (event_stream and _ends_mid_event(body))
            if not event_stream:
                chunks = [body] if body else []  # boundaries do not matter for a whole-body read
            encoded = _encode_chunks(_redact_chunks(chunks, secrets))
            reply: dict[str, Any] = {"status": status, "headers": _kept_headers(headers), **encoded,
                                     "complete": complete}
            if error is not None:
                reply["error"] = error
            record = {
                "type": "exchange",
                "request": fingerprint(method, url, request.headers, request.body),
                "response": reply,
                "recorded_at": _now(),
            }
            _append(self.path, record, secrets)

        response.raw = _TeeBody(response.raw, done)  # type: ignore[assignment]
        response.connection = self
        return response

    def close(self) -> None:
        self.inner.close()


# -- replay ----------------------------------------------------------------------------------


@dataclass
class _Exchange:
    request: dict[str, Any]
    status: int
    headers: dict[str, str]
    chunks: list[bytes]
    complete: bool
    error: dict[str, str] | None
    source: str


@dataclass
class _Figure:
    url: str
    status: int
    content_type: str
    body: bytes
    location: str | None = None


@dataclass
class _Queue:
    items: list[_Exchange] = field(default_factory=list)
    cursor: int = 0

    def next(self) -> _Exchange:
        item = self.items[self.cursor % len(self.items)]
        self.cursor = (self.cursor + 1) % len(self.items)
        return item


class _ReplayBody:
    """The recorded chunks, handed back as urllib3 would: ``read1`` keeps each boundary."""

    def __init__(self, chunks: list[bytes], error: dict[str, str] | None = None, url: str = "") -> None:
        self._chunks = [bytes(c) for c in chunks if c]  # an empty read means end of body
        self._error = error
        self._url = url
        self._closed = False

    def _raise_error(self) -> None:
        import urllib3.exceptions

        error, self._error = self._error, None
        if error is None:
            return
        message = f"{error.get('message', '')} (replayed from a recording)".strip()
        if error.get("kind") == "read_timeout":
            raise urllib3.exceptions.ReadTimeoutError(None, self._url, message)  # type: ignore[arg-type]
        raise urllib3.exceptions.ProtocolError(message)

    def read1(self, amt: int | None = None, decode_content: bool = True) -> bytes:
        if not self._chunks:
            self._raise_error()
            return b""
        chunk = self._chunks.pop(0)
        if amt is not None and 0 <= amt < len(chunk):
            chunk, rest = chunk[:amt], chunk[amt:]
            self._chunks.insert(0, rest)
        return chunk

    def read(self, amt: int | None = None, decode_content: bool = True, cache_content: bool = False) -> bytes:
        if amt is None or amt < 0:
            data = b"".join(self._chunks)
            self._chunks.clear()
            self._raise_error()
            return data
        out = bytearray()
        while self._chunks and len(out) < amt:
            out += self.read1(amt - len(out))
        if not out:
            self._raise_error()
        return bytes(out)

    def stream(self, amt: int | None = 2**16, decode_content: bool = True) -> Iterator[bytes]:
        while self._chunks:
            yield self.read1(amt if amt and amt > 0 else None)
        self._raise_error()

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._closed = True

    def release_conn(self) -> None:
        pass

    def isclosed(self) -> bool:
        return self._closed

    @property
    def closed(self) -> bool:
        return self._closed


def _read_source(source: Any) -> str:
    try:
        return source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"The recording file {str(source)!r} does not exist. Check the path given to --replay "
            "or DASHMAGIC_RECORDINGS, or record it first with --record PATH (needs an API key)."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read the recording file {str(source)!r}: {exc}.") from None


class ReplayAdapter(BaseAdapter):
    """Answer every request from recordings; never touch the network.

    POSTs are matched by fingerprint (:func:`fingerprint`); if none has the same ``stream`` flag,
    one recorded with the other flag is used (the client handles a JSON reply to a stream request
    and an SSE reply to a plain one). With ``strict=False`` a request that still matches nothing
    may use an exchange with the same endpoint, plugins, model and last user message. Identical
    requests get their recorded answers in order, then wrap around to the first. GETs are figure
    fetches: matched by full URL, then without the query string; an unknown one is a 404. No
    match for a POST raises :class:`~dashmagic.errors.RecordingMiss`.
    """

    def __init__(self, path_or_paths: Any, *, strict: bool = True) -> None:
        super().__init__()
        items = list(path_or_paths) if isinstance(path_or_paths, (list, tuple)) else [path_or_paths]
        self.sources: list[Any] = []
        for item in items:
            if isinstance(item, (str, os.PathLike)):
                self.sources.extend(resolve_recordings(item))  # "demo", folders, missing files
            else:
                self.sources.append(item)  # an importlib.resources Traversable
        self.strict = strict
        self.exchanges: list[_Exchange] = []
        self.figures: list[_Figure] = []
        for source in self.sources:
            self._load(source)
        self._lock = threading.Lock()
        self._exact: dict[str, _Queue] = defaultdict(_Queue)
        self._any_stream: dict[str, _Queue] = defaultdict(_Queue)
        self._loose: dict[str, _Queue] = defaultdict(_Queue)
        for exchange in self.exchanges:
            fp = exchange.request
            self._exact[fingerprint_key(fp)].items.append(exchange)
            self._any_stream[fingerprint_key(_without_stream(fp))].items.append(exchange)
            self._loose[_loose_key(fp)].items.append(exchange)
        self._by_url = {f.url: f for f in self.figures}
        self._by_bare_url = {display_url(f.url): f for f in self.figures}

    def __repr__(self) -> str:
        return f"ReplayAdapter({[str(s) for s in self.sources]!r}, exchanges={len(self.exchanges)})"

    def _load(self, source: Any) -> None:
        name = str(source)
        for number, line in enumerate(_read_source(source).splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError as exc:
                raise ConfigError(f"Line {number} of the recording {name!r} is not valid JSON ({exc}).") from None
            if not isinstance(item, dict):
                raise ConfigError(f"Line {number} of the recording {name!r} is not a JSON object.")
            if "dashmagic_recording" in item:
                version = item["dashmagic_recording"]
                if not isinstance(version, int) or version > FORMAT_VERSION:
                    raise ConfigError(
                        f"The recording {name!r} has format version {version!r}; this dashmagic reads "
                        f"version {FORMAT_VERSION}. Upgrade dashmagic or record it again."
                    )
                continue
            try:
                if item.get("type") == "exchange":
                    self.exchanges.append(self._exchange(item, name))
                elif item.get("type") == "figure":
                    self.figures.append(_Figure(
                        url=item["url"], status=int(item["status"]), content_type=item.get("content_type", ""),
                        body=base64.b64decode(item.get("body_b64", "")), location=item.get("location"),
                    ))
                # other types: written by a newer dashmagic, ignored
            except (KeyError, TypeError, ValueError) as exc:
                raise ConfigError(f"Line {number} of the recording {name!r} is malformed ({exc!r}).") from None

    @staticmethod
    def _exchange(item: Mapping[str, Any], name: str) -> _Exchange:
        reply = item["response"]
        if "chunks_b64" in reply:
            chunks = [base64.b64decode(c) for c in reply["chunks_b64"]]
        else:
            chunks = [c.encode("utf-8") for c in reply.get("chunks", [])]
        request = dict(item["request"])
        request["method"] = str(request.get("method", "POST")).upper()
        return _Exchange(
            request=request, status=int(reply["status"]), headers=dict(reply.get("headers") or {}),
            chunks=chunks, complete=bool(reply.get("complete", True)), error=reply.get("error"), source=name,
        )

    # -- matching ------------------------------------------------------------------------------

    def rewind(self) -> None:
        """Identical requests start again from their first recorded answer."""
        with self._lock:
            for table in (self._exact, self._any_stream, self._loose):
                for queue in table.values():
                    queue.cursor = 0

    def match(self, fp: Mapping[str, Any]) -> _Exchange | None:
        """The next recorded exchange for a fingerprint, or None."""
        with self._lock:
            for table, key in (
                (self._exact, fingerprint_key(fp)),
                (self._any_stream, fingerprint_key(_without_stream(fp))),
                *(((self._loose, _loose_key(fp)),) if not self.strict else ()),
            ):
                queue = table.get(key)
                if queue is not None and queue.items:
                    return queue.next()
        return None

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        method = (request.method or "GET").upper()
        url = request.url or ""
        if method in ("GET", "HEAD"):
            return self._figure_response(request, method, url)
        fp = fingerprint(method, url, request.headers, request.body)
        exchange = self.match(fp)
        if exchange is None:
            raise RecordingMiss(self._miss_message(fp))
        body = _ReplayBody(exchange.chunks, exchange.error, url)
        return self._response(request, exchange.status, exchange.headers, body)

    def _figure_response(self, request: Any, method: str, url: str) -> requests.Response:
        figure = self._by_url.get(url) or self._by_bare_url.get(display_url(url))
        if figure is None:
            text = f"No recorded figure for {display_url(url)} in {self._files_text()}.".encode()
            return self._response(request, 404, {"Content-Type": "text/plain; charset=utf-8"}, _ReplayBody([text]))
        headers = {"Content-Type": figure.content_type}
        if figure.location:
            headers["Location"] = figure.location
        chunks = [figure.body] if figure.body and method == "GET" else []
        return self._response(request, figure.status, headers, _ReplayBody(chunks))

    def _response(self, request: Any, status: int, headers: Mapping[str, str], body: _ReplayBody) -> requests.Response:
        from requests.structures import CaseInsensitiveDict
        from requests.utils import get_encoding_from_headers

        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict(headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = body
        try:
            response.reason = HTTPStatus(status).phrase
        except ValueError:
            response.reason = ""
        response.url = request.url.decode("utf-8") if isinstance(request.url, bytes) else request.url
        response.request = request
        response.connection = self
        return response

    def _files_text(self) -> str:
        names = [str(s) for s in self.sources]
        shown = ", ".join(repr(n) for n in names[:3])
        return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")

    def _miss_message(self, fp: Mapping[str, Any]) -> str:
        body = fp.get("body") if isinstance(fp.get("body"), dict) else {}
        plugins = fp.get("plugins")
        plugin_text = ", ".join(plugins) if isinstance(plugins, dict) and plugins else "no plugins"
        prompt = _prompt_of(body) or ""
        short = " ".join(prompt.split())
        short = short[:40] + ("…" if len(short) > 40 else "")
        files = self._files_text()
        first = self.sources[0] if len(self.sources) == 1 else "PATH"
        if "PATH" != first and Path(first).resolve().parent == _DEMO_DIR:
            first = "my-recording.jsonl"  # the bundled demo is package data: never write into it
        closest = self._closest(fp)
        return (
            f"No recorded exchange in {files} matches this request: {fp.get('method')} {fp.get('path')} "
            f"with plugins {plugin_text}, model {body.get('model')!r}, "
            f"{'streaming' if fp.get('stream') else 'not streaming'}, prompt {short!r}"
            f"{closest}. Replay never calls the service, and the recordings hold "
            f"{len(self.exchanges)} exchange(s). To add this one, run it once with an API key while "
            f"recording: '%%dashscope --record {first} …', or DASHMAGIC_MODE=record "
            f"DASHMAGIC_RECORDINGS={first}; then replay again."
        )

    def _closest(self, fp: Mapping[str, Any]) -> str:
        """Name the body fields that differ from a recording with the same plugins and prompt."""
        for exchange in self.exchanges:
            if _loose_key(exchange.request) != _loose_key(fp):
                continue
            a, b = exchange.request.get("body"), fp.get("body")
            diffs = sorted(_differences(a, b))[:4]
            if diffs:
                return f" (a recording with the same plugins and prompt differs in {', '.join(diffs)})"
        return ""

    def close(self) -> None:
        pass


def _differences(a: Any, b: Any) -> set[str]:
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


# -- sessions --------------------------------------------------------------------------------


def _demo_sources() -> list[Traversable]:
    """The bundled ``dashmagic/demo/*.jsonl`` files (looked up only when asked for)."""
    from importlib.resources import files

    missing = ConfigError(
        "The bundled demo recordings (dashmagic/demo/*.jsonl) are not installed with this copy of "
        "dashmagic. Reinstall dashmagic, or replay a recording of your own with --replay PATH."
    )
    try:
        folder = files("dashmagic").joinpath("demo")
        found = sorted((p for p in folder.iterdir() if p.name.endswith(".jsonl")), key=lambda p: p.name)
    except (FileNotFoundError, NotADirectoryError, OSError, ModuleNotFoundError):
        raise missing from None
    if not found:
        raise missing
    return found


def _split_recordings(recordings: Recordings) -> list[Any]:
    if recordings is None:
        return []
    if isinstance(recordings, (str, os.PathLike)):
        text = os.fspath(recordings)
        return [p for p in text.split(os.pathsep) if p.strip()] if isinstance(text, str) else [text]
    return [os.fspath(r) for r in recordings]


def resolve_recordings(recordings: Recordings) -> list[Any]:
    """Files to replay: ``"demo"`` is the bundled set, a folder means its ``*.jsonl`` files,
    a string may list several paths separated by ``os.pathsep`` (like ``PATH``)."""
    resolved: list[Any] = []
    for item in _split_recordings(recordings):
        if item == "demo":
            resolved.extend(_demo_sources())
            continue
        path = Path(item).expanduser()
        if path.is_dir():
            inside = sorted(path.glob("*.jsonl"))
            if not inside:
                raise ConfigError(f"The recordings folder {str(path)!r} holds no *.jsonl files.")
            resolved.extend(inside)
        elif not path.exists():
            raise ConfigError(
                f"The recording file {str(path)!r} does not exist. Check the path given to --replay or "
                "DASHMAGIC_RECORDINGS ('demo' means the bundled recordings), or record it first with "
                "--record PATH (needs an API key)."
            )
        else:
            resolved.append(path)
    return resolved


def _record_path(recordings: Recordings) -> Path:
    if isinstance(recordings, (str, os.PathLike)):
        items = [os.fspath(recordings)]
    else:
        items = [os.fspath(r) for r in recordings or ()]
    if len(items) != 1 or not str(items[0]).strip():
        raise ConfigError(
            "Record mode needs exactly one file to write: pass --record PATH or set "
            f"DASHMAGIC_RECORDINGS=PATH (got {items!r})."
        )
    if items[0] == "demo":
        raise ConfigError(
            "'demo' names the bundled, read-only recordings; record to a file of your own, "
            "e.g. --record recordings/my-notebook.jsonl."
        )
    return Path(items[0]).expanduser()


def _check_mode(mode: str) -> str:
    name = (mode or "").strip().lower()
    if name not in MODES:
        raise ConfigError(f"Unknown mode {mode!r}: use one of live, record or replay (DASHMAGIC_MODE).")
    return name


_replays: dict[tuple[Any, ...], ReplayAdapter] = {}
_replays_lock = threading.Lock()


def _stamp(source: Any) -> tuple[str, int, int]:
    try:
        info = os.stat(source)
        return (str(source), info.st_mtime_ns, info.st_size)
    except TypeError:  # a Traversable inside an installed package: it does not change
        return (str(source), 0, 0)
    except OSError:
        return (str(source), -1, -1)


def _replay_adapter(recordings: Recordings) -> ReplayAdapter:
    """One shared adapter per set of files, so answer order carries over from cell to cell."""
    sources = resolve_recordings(recordings)
    if not sources:
        raise ConfigError(
            "Replay mode needs recordings: pass --replay PATH (or --replay demo for the bundled ones), "
            "or set DASHMAGIC_RECORDINGS."
        )
    key = tuple(_stamp(source) for source in sources)  # a re-recorded file gets a fresh adapter
    with _replays_lock:
        adapter = _replays.get(key)
        if adapter is None:
            adapter = _replays[key] = ReplayAdapter(sources)
    return adapter


def reset_replays() -> None:
    """Forget the shared replay adapters: identical requests start again from their first answer."""
    with _replays_lock:
        _replays.clear()


def _mounted(adapter: Any, *, trust_env: bool = True) -> requests.Session:
    session = requests.Session()
    session.trust_env = trust_env
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def session_for(mode: str, recordings: Recordings, *, key: Secret | None = None) -> requests.Session:
    """The ``requests.Session`` for DashScope calls in ``mode`` (``live``, ``record``, ``replay``).

    ``recordings``: one file for ``record`` (parent folders are created); for ``replay`` a file,
    a folder, several of them, or ``"demo"`` for the bundled recordings. ``key`` is only used to
    scrub the key from what is recorded. Replay sessions over the same files share one
    :class:`ReplayAdapter` (until a file changes on disk, or :func:`reset_replays`), so identical
    requests made from different cells still get their recorded answers in order.
    """
    name = _check_mode(mode)
    if name == "live":
        from .transport import shared_session

        return shared_session()
    if name == "record":
        return _mounted(RecordingAdapter(_record_path(recordings), key))
    return _mounted(_replay_adapter(recordings))


def image_session_for(mode: str, recordings: Recordings, key: Secret | None = None) -> requests.Session:
    """The session the figure fetcher uses: never the DashScope one, so it never carries the key.

    live: a fresh plain session that ignores proxy/netrc settings from the environment;
    record: fetches are recorded as ``figure`` lines; replay: served from them.
    """
    name = _check_mode(mode)
    if name == "live":
        return new_image_session()
    if name == "record":
        return _mounted(RecordingAdapter(_record_path(recordings), key), trust_env=False)
    return _mounted(_replay_adapter(recordings), trust_env=False)
