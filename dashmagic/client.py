"""The plain Python API: ``run()`` and ``stream()``.

Pipeline: :func:`~dashmagic.request.build_call` → :func:`~dashmagic.transport.send` (with
bounded, visible retries) → JSON body or SSE events (:mod:`dashmagic.sse`) →
:class:`~dashmagic.events.TraceBuilder` → Trace snapshots. The magic is a thin layer over
:func:`stream`; scripts and tests use the same path.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from dataclasses import dataclass
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .config import Secret, Settings, check_base_url
from .errors import (
    ApiError,
    DashmagicError,
    Interrupted,
    ProtocolError,
    TransportError,
)
from .events import TraceBuilder, decode_payload, error_from_payload
from .request import DEFAULT_MODEL, DEFAULT_SYSTEM, Call, Prompt, build_call
from .sse import SSEDecoder, ServerSentEvent
from .trace import Trace
from .transport import Timeout, body_errors, send, shared_session, split_timeout

if TYPE_CHECKING:
    import requests

__all__ = ["run", "stream", "execute", "RetryPolicy", "DEFAULT_RETRIES"]

DEFAULT_RETRIES = 3
_MAX_ERROR_BODY = 1 << 20


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter; ``Retry-After`` wins when the server sends it."""

    tries: int = DEFAULT_RETRIES
    base: float = 0.5
    cap: float = 20.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap)
        backoff = min(self.cap, self.base * (2**attempt))
        return backoff * (0.5 + random.random() / 2)  # "equal jitter"


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _http_error(response: requests.Response, call: Call) -> ApiError:
    """Read an error response: JSON body, an SSE error event, or a gateway's HTML."""
    raw = response.raw.read(_MAX_ERROR_BODY, decode_content=True) if response.raw else b""
    response.close()
    text = raw.decode("utf-8", "replace")
    payload: Mapping[str, Any] | None = None
    if "event-stream" in response.headers.get("Content-Type", ""):
        match = re.search(r"^data:(.*)$", text, re.M)
        text = match.group(1) if match else text
    try:
        payload = decode_payload(text)
    except ProtocolError:
        payload = None
    if payload is not None and (payload.get("code") or payload.get("message")):
        return error_from_payload(payload, response.status_code)
    return error_from_payload({"message": _readable(text, response)}, response.status_code)


def _readable(text: str, response: requests.Response) -> str:
    # A gateway's HTML 502 page: keep its title or first words, never the whole page.
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
    words = title.group(1) if title else re.sub(r"<[^>]+>", " ", text)
    words = " ".join(words.split())[:200]
    reason = response.reason or ""
    return f"non-JSON error page: {words}" if words else f"{reason or 'empty error body'}"


def _decode_text(raw: bytes, call: Call) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            f"DashScope's reply is not valid UTF-8 (bad byte at position {exc.start}); "
            "nothing after that point could be read."
        ) from None


def _open(
    session: requests.Session,
    call: Call,
    key: Secret,
    timeout: tuple[float, float],
    retry: RetryPolicy,
    builder: TraceBuilder,
    sleep: Callable[[float], None],
    on_retry: Callable[[Trace], None] | None,
) -> requests.Response:
    """Send with retries: only before any response body was consumed, only for transient faults."""
    for attempt in range(retry.tries):
        last = attempt == retry.tries - 1
        try:
            response = send(session, call, key, timeout)
        except TransportError as exc:
            transient = exc.before_response and getattr(exc, "phase", "connect") == "connect"
            if last or not transient:
                raise
            wait, why = retry.delay(attempt, None), exc.message.split(". ")[0]
        else:
            if response.status_code < 400:
                return response
            error = _http_error(response, call)
            if last or not error.retryable:
                raise error
            wait = retry.delay(attempt, _retry_after(response))
            why = f"HTTP {error.status_code}" + (f" {error.code}" if error.code else "")
        trace = builder.note(f"Retried after {why} (attempt {attempt + 2} of {retry.tries}, waited {wait:.1f} s).")
        if on_retry is not None:
            on_retry(trace)
        sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def _read_chunks(response: requests.Response) -> Iterator[bytes]:
    raw = response.raw
    read1 = getattr(raw, "read1", None)
    if read1 is None:  # replay adapters may hand back a plain file-like object
        yield from response.iter_content(chunk_size=None)
        return
    while True:
        # decode_content: requests opens the body raw; a gzipped event stream must be inflated.
        chunk = read1(65536, decode_content=True)
        if not chunk:
            return
        yield chunk


def _events(response: requests.Response, call: Call, timeout: tuple[float, float]) -> Iterator[ServerSentEvent]:
    decoder = SSEDecoder()
    with body_errors(call, timeout):
        for chunk in _read_chunks(response):
            try:
                yield from decoder.feed(chunk)
            except UnicodeDecodeError as exc:
                raise ProtocolError(
                    f"The event stream is not valid UTF-8 ({exc.reason}); the events before it are kept."
                ) from None
    yield from decoder.close()
    if decoder.pending:
        raise TransportError(
            "The event stream ended in the middle of an event (the connection closed early). "
            "What arrived is kept; run the cell again to retry.",
            url=call.url,
            before_response=False,
        )


def _fold_events(
    response: requests.Response, call: Call, timeout: tuple[float, float], builder: TraceBuilder, incremental: bool
) -> Iterator[Trace]:
    for event in _events(response, call, timeout):
        if event.event == "error":
            payload = decode_payload(event.data) if event.data.strip() else {}
            raise error_from_payload(payload, event.status or 400)
        if event.event not in ("result", "message"):
            continue  # e.g. event:done, heartbeats
        payload = decode_payload(event.data)
        if "output" not in payload and payload.get("code"):
            raise error_from_payload(payload, event.status)
        yield builder.feed(payload, incremental=incremental)


def execute(
    call: Call,
    *,
    key: Secret,
    timeout: Timeout = None,
    retries: int = DEFAULT_RETRIES,
    session: requests.Session | None = None,
    raise_errors: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[Trace], None] | None = None,
    backoff: float = 0.5,
) -> Iterator[Trace]:
    """Run a built :class:`Call`; yield a snapshot after every server event, the last final.

    On failure the last snapshot has ``status="error"`` (or ``"interrupted"``) and keeps every
    step received; with ``raise_errors`` the typed error is raised after it, carrying ``.trace``.
    """
    limits = split_timeout(timeout)
    retry = RetryPolicy(tries=max(1, int(retries)), base=backoff)
    builder = TraceBuilder(call.info)
    http = shared_session() if session is None else session
    response = None
    failure: DashmagicError | None = None
    incremental = bool(call.body.get("parameters", {}).get("incremental_output"))
    try:
        response = _open(http, call, key, limits, retry, builder, sleep, on_retry)
        if "event-stream" in response.headers.get("Content-Type", ""):
            yield from _fold_events(response, call, limits, builder, incremental)
        else:
            with body_errors(call, limits):
                raw = response.content
            yield builder.feed(decode_payload(_decode_text(raw, call)))
        yield builder.finish()
    except KeyboardInterrupt:
        failure = Interrupted("Stopped by the user; the partial trace is kept.")
        yield builder.interrupt()
    except DashmagicError as exc:
        failure = exc
        yield builder.fail(exc)
    finally:
        if response is not None:
            response.close()
    if failure is not None and raise_errors:
        failure.trace = builder.trace
        raise failure


def _no_wait(seconds: float) -> None:
    """Replay answers from a file: a recorded 429 needs no real backoff."""


def _prepare(
    prompt: Prompt,
    *,
    stream: bool,
    plugins: Iterable[str] | Mapping[str, Any] | str | None,
    model: str,
    system: str | None,
    files: Iterable[str],
    seed: int | None,
    parameters: Mapping[str, Any] | None,
    history: Sequence[Mapping[str, Any]] | None,
    api_key: str | Secret | None,
    base_url: str | None,
    environ: Mapping[str, str] | None,
    mode: str | None,
    recordings: str | Sequence[str] | None,
    session: requests.Session | None,
) -> tuple[Call, Secret, requests.Session | None, bool]:
    settings = Settings.from_env(environ, key=False)
    base = check_base_url(base_url or settings.base_url)
    call = build_call(
        prompt,
        plugins=plugins,
        model=model,
        system=system,
        files=files,
        seed=seed,
        parameters=parameters,
        history=history,
        stream=stream,
        base_url=base,
    )
    mode = (mode or settings.mode or "live").lower()
    if mode == "replay":
        # Replay never sends anything, so it needs no key (Binder and CI have none).
        key: Secret = Secret("replay-mode-sends-no-key")
    elif isinstance(api_key, str):
        key = Secret(api_key)
    else:
        key = api_key or Settings.from_env(environ).require_key()
    if session is None and mode != "live":
        from .transport import session_for

        where = recordings or settings.recordings or ("demo" if mode == "replay" else None)
        session = session_for(mode, where, key=key)
    return call, key, session, mode == "replay"


def _begin(prompt: Prompt, streaming: bool, options: dict[str, Any]) -> Iterator[Trace]:
    """The one path behind run() and stream(): settings, call, transport, then execute()."""
    run_options = {name: options.pop(name) for name in ("timeout", "retries", "raise_errors")}
    call, key, session, replay = _prepare(prompt, stream=streaming, **options)
    return execute(call, key=key, session=session, sleep=_no_wait if replay else time.sleep, **run_options)


def stream(
    prompt: Prompt,
    *,
    plugins: Iterable[str] | Mapping[str, Any] | str | None = (),
    model: str = DEFAULT_MODEL,
    system: str | None = DEFAULT_SYSTEM,
    files: Iterable[str] = (),
    seed: int | None = None,
    parameters: Mapping[str, Any] | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    timeout: Timeout = None,
    retries: int = DEFAULT_RETRIES,
    api_key: str | Secret | None = None,
    base_url: str | None = None,
    session: requests.Session | None = None,
    raise_errors: bool = True,
    environ: Mapping[str, str] | None = None,
    mode: str | None = None,
    recordings: str | Sequence[str] | None = None,
) -> Iterator[Trace]:
    """Stream a plugin call (SSE); yield a Trace snapshot after every server event.

    ``prompt`` is the user's text or a full ``messages`` list. ``files`` are URLs sent as
    list-form content (for ``pdf_extracter``); ``history`` is earlier messages, e.g.
    ``trace.history()`` of a previous turn. Configuration (key, base URL) is read from the
    environment now, at call time. ``timeout`` is seconds or ``(connect, read)``; for a
    stream "read" is the longest silence allowed between events. ``mode`` is ``live``,
    ``record`` or ``replay`` (default: ``DASHMAGIC_MODE``, else live) with ``recordings`` the
    file (default ``DASHMAGIC_RECORDINGS``; replay falls back to the bundled ``demo``).
    """
    return _begin(prompt, True, {name: value for name, value in locals().items() if name != "prompt"})


def run(
    prompt: Prompt,
    *,
    plugins: Iterable[str] | Mapping[str, Any] | str | None = (),
    model: str = DEFAULT_MODEL,
    system: str | None = DEFAULT_SYSTEM,
    files: Iterable[str] = (),
    seed: int | None = None,
    parameters: Mapping[str, Any] | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    timeout: Timeout = None,
    retries: int = DEFAULT_RETRIES,
    api_key: str | Secret | None = None,
    base_url: str | None = None,
    session: requests.Session | None = None,
    raise_errors: bool = True,
    environ: Mapping[str, str] | None = None,
    mode: str | None = None,
    recordings: str | Sequence[str] | None = None,
) -> Trace:
    """Call once (no streaming) and return the final Trace. Same arguments as :func:`stream`."""
    snapshots = _begin(prompt, False, {name: value for name, value in locals().items() if name != "prompt"})
    last: Trace | None = None
    for last in snapshots:
        pass
    assert last is not None
    return last
