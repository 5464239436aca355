"""The plain Python API: one :class:`Client` wires every call; ``run()``/``stream()`` wrap it.

Pipeline: :class:`~dashmagic.request.CallOptions` → the wire format's
:meth:`~dashmagic.protocol.WireFormat.build` → :func:`~dashmagic.transport.send` (bounded,
visible retries) → JSON body or SSE events (:mod:`dashmagic.sse`) →
:class:`~dashmagic.events.TraceBuilder` → Trace snapshots, with their figures attached.

The Client owns what a call needs and reads it once: settings, the key, the mode and its
recordings, the transport session's life, validated timeouts, the retry policy, the figure
policy and cache. It is thread-safe: several threads may share one Client. Module-level
:func:`run` and :func:`stream` are ``with Client(...) as client: ...`` one-liners; the magic
builds one Client per cell from its traits.
"""

from __future__ import annotations

import email.utils
import math
import random
import threading
import time
from dataclasses import dataclass
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from .config import Secret, Settings, Timeouts, check_base_url, validate_key
from .errors import ConfigError, DashmagicError, Interrupted, ProtocolError, TimeoutError, TransportError
from .events import TraceBuilder
from .protocol import format_for, with_hint
from .protocol.envelope import decode_payload, error_from_body, payload_of_event
from .request import Call, CallKwargs, CallOptions, Prompt
from .sse import DEFAULT_MAX_EVENT_CHARS, SSEDecoder, ServerSentEvent
from .scrub import KeyScrubber
from .limits import MAX_THROTTLED_TRIES
from .trace import Trace

if TYPE_CHECKING:
    import requests
    from typing_extensions import Unpack

    from .batch_map import Traces
    from .images import ImageCache, ImagePolicy
    from .limits import RateLimiter
    from .tool_loop import ToolLoop

__all__ = [
    "Client",
    "ClientKwargs",
    "ToolLoopKwargs",
    "LoopCallKwargs",
    "MapOptions",
    "ClientMapKwargs",
    "MapKwargs",
    "RunKwargs",
    "RetryPolicy",
    "run",
    "stream",
    "map",
    "build_call",
    "DEFAULT_RETRIES",
    "DEFAULT_MAX_REPLY_BYTES",
]

DEFAULT_RETRIES = 3
#: The largest decoded reply accepted (a 306 KB gzip reply can inflate to 1.5 GB).
DEFAULT_MAX_REPLY_BYTES = 64 * 1024 * 1024
_MAX_ERROR_BODY = 1 << 20


class ClientKwargs(TypedDict, total=False):
    """How calls are made (the keyword arguments of :class:`Client`)."""

    api_key: str | Secret | None
    base_url: str | None
    environ: Any
    mode: str | None
    recordings: Any
    session: requests.Session | None
    timeout: Any
    deadline: float | None
    retries: int
    backoff: float
    embed_images: bool
    image_hosts: Any
    max_image_bytes: int | None
    max_reply_bytes: int
    #: One limiter shared by every thread of the Client (requests and tokens per minute);
    #: ``rpm``/``tpm`` make one. Without it, single calls go out unpaced, as they always did.
    limiter: RateLimiter | None
    rpm: float | None
    tpm: float | None


class ToolLoopKwargs(TypedDict, total=False):
    """With Python functions in ``tools=`` (the tool loop, :mod:`dashmagic.tool_loop`)."""

    #: None (ask: a y/n prompt in a terminal, else refuse), ``"all"``, tool names, or
    #: ``f(run) -> bool``.
    approve: Any
    #: Model calls at most (default 5); the limit ends with a note, not an error.
    max_rounds: int
    #: Calls of one round run at once (default 1: in order).
    tool_concurrency: int


class LoopCallKwargs(CallKwargs, ToolLoopKwargs, total=False):
    """What one call asks, plus the tool loop's options."""


class RunKwargs(ClientKwargs, LoopCallKwargs, total=False):
    """``run()``/``stream()``: how to call, what to ask, and whether errors raise."""

    raise_errors: bool


class MapOptions(TypedDict, total=False):
    """``map()``: what :meth:`Client.map` adds to a call's keywords."""

    concurrency: int
    template: str | None
    rows: Any
    record: Any
    raise_errors: bool
    progress: Any
    #: Seconds between progress updates; whether the frontend is live (None: detect it).
    update_interval: float
    live: bool | None
    #: Names ``template`` may use besides ``row`` and ``index`` (the magic passes the notebook's).
    namespace: Mapping[str, Any] | None


class ClientMapKwargs(CallKwargs, MapOptions, total=False):
    """:meth:`Client.map`: what to ask of every row, and how to run the batch."""


class MapKwargs(ClientKwargs, ClientMapKwargs, total=False):
    """Module-level :func:`map`: how to call, what to ask, and how to run the batch."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter; ``Retry-After`` wins when the server sends it."""

    tries: int = DEFAULT_RETRIES
    base: float = 0.5
    cap: float = 20.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap)
        backoff = min(self.cap, self.base * 2.0**attempt)
        return backoff * (0.5 + random.random() / 2)  # "equal jitter"


def _retry_after(response: requests.Response) -> float | None:
    """``Retry-After`` as seconds: a number or an HTTP date; anything else is ignored."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if parsed is None or parsed.tzinfo is None:
            return None
        seconds = parsed.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _limiter_of(options: Mapping[str, Any]) -> RateLimiter | None:
    limiter = options.get("limiter")
    if limiter is not None or (options.get("rpm") is None and options.get("tpm") is None):
        return limiter
    from .limits import RateLimiter

    return RateLimiter(options.get("rpm"), options.get("tpm"))


def _no_wait(seconds: float) -> None:
    """Replay answers from a file: a recorded 429 needs no real backoff."""


class Client:
    """Makes calls to DashScope (or the loopback fake, or a recording).

    ``api_key``: a string or :class:`~dashmagic.config.Secret`; default from the environment, the
    way the official SDK reads it (``DASHSCOPE_API_KEY``, ``DASHSCOPE_API_KEY_FILE_PATH``,
    ``~/.dashscope/api_key``), looked up at the first call that needs it (replay needs none).
    ``mode``: ``live``, ``record`` or ``replay`` (default ``DASHMAGIC_MODE``, else live), with
    ``recordings`` (default ``DASHMAGIC_RECORDINGS``; replay falls back to the bundled ``demo``).
    ``timeout``: seconds or ``(connect, read)``; for a stream, "read" is the longest silence
    allowed between events. ``deadline``: seconds for a whole call (default 600).
    ``embed_images``: fetch each figure once and attach it to the trace (signed URLs expire).
    """

    def __init__(self, **options: Unpack[ClientKwargs]) -> None:
        unknown = set(options) - set(ClientKwargs.__optional_keys__)
        if unknown:
            raise ConfigError(f"Unknown Client option(s) {', '.join(sorted(unknown))}; see help(dashmagic.Client).")
        self._environ = options.get("environ")
        settings = Settings.from_env(self._environ, key=False)
        self.base_url = check_base_url(options.get("base_url") or settings.base_url)
        recordings = options.get("recordings")
        self.mode, self.recordings = _mode_of(
            options.get("mode") or settings.mode, settings.recordings if recordings is None else recordings
        )
        self.timeouts = Timeouts.of(options.get("timeout"), total=options.get("deadline"))
        retries = options.get("retries", DEFAULT_RETRIES)
        if isinstance(retries, bool) or not isinstance(retries, int) or not 1 <= retries <= 20:
            raise ConfigError(f"retries must be a whole number of tries from 1 to 20, got {retries!r}.")
        self.retry = RetryPolicy(tries=retries, base=float(options.get("backoff", 0.5)))
        self.max_reply_bytes = int(options.get("max_reply_bytes", DEFAULT_MAX_REPLY_BYTES))
        self.embed_images = bool(options.get("embed_images", True))
        self._image_hosts = options.get("image_hosts")
        self._max_image_bytes = options.get("max_image_bytes")
        self._key = _as_secret(options.get("api_key"))
        self._session = options.get("session")
        self._owns_session = False
        self._image_session: requests.Session | None = None
        self._image_policy: ImagePolicy | None = None
        self._lock = threading.Lock()
        self._record_lock = threading.Lock()
        self._record_errors: list[str] = []
        self._closed = False
        self.key_prompt: Callable[[], Secret | None] | None = None
        self.limiter = _limiter_of(options)

    def __repr__(self) -> str:
        return f"Client(mode={self.mode!r}, base_url={self.base_url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the sessions this client opened (the process-wide live pool stays open)."""
        with self._lock:
            self._closed = True
            sessions = [s for s in (self._session if self._owns_session else None, self._image_session) if s]
            self._session = None if self._owns_session else self._session
            self._image_session, self._image_policy = None, None
        for session in sessions:
            session.close()

    # -- what a call needs -------------------------------------------------------------------
    @property
    def replay(self) -> bool:
        return self.mode == "replay"

    def key(self) -> Secret:
        """The key for this client's calls: given, from the environment, or from ``key_prompt``."""
        if self.replay:
            from .transport import replay_key

            return replay_key()
        with self._lock:
            if self._key is None:
                self._key = Settings.from_env(self._environ).api_key
            if self._key is None and self.key_prompt is not None:
                self._key = self.key_prompt()
            if self._key is None:
                from .config import MISSING_KEY_MESSAGE

                raise ConfigError(MISSING_KEY_MESSAGE)
            return self._key

    def _http(self, key: Secret) -> requests.Session:
        with self._lock:
            if self._closed:
                raise ConfigError("This Client is closed; make a new one (or use `with Client(...) as client:`).")
            if self._session is None:
                from .transport import session_for

                self._session = session_for(self.mode, self.recordings, key=key, on_error=self._record_failed)
                self._owns_session = True
            return self._session

    def _record_failed(self, message: str) -> None:
        # The answer is kept; the recording is what failed. Shown as a note on the trace.
        with self._record_lock:
            self._record_errors.append(message)

    def take_record_errors(self) -> list[str]:
        """Recording writes that failed since the last call (each is reported once)."""
        with self._record_lock:
            errors, self._record_errors = self._record_errors, []
        return errors

    def image_cache(self, call: Call, key: Secret) -> ImageCache:
        """A fresh figure cache for one trace: its own figure budget, this client's policy and
        figure session (made once, on first use)."""
        from .images import ImageCache, ImagePolicy
        from .transport import image_session_for

        with self._lock:
            if self._image_policy is None:
                policy_options: dict[str, Any] = {"timeout": min(self.timeouts.read, 30.0), "offline": self.replay}
                if self._image_hosts is not None:
                    policy_options["hosts"] = tuple(self._image_hosts)
                if self._max_image_bytes is not None:
                    policy_options["max_bytes"] = int(self._max_image_bytes)
                self._image_policy = ImagePolicy.for_base_url(call.url, **policy_options)
                self._image_session = image_session_for(self.mode, self.recordings, key=key, on_error=self._record_failed)
            return ImageCache(self._image_policy, session=self._image_session)

    # -- building and running ----------------------------------------------------------------
    def build(self, prompt: Prompt, *, stream: bool = False, **call: Unpack[CallKwargs]) -> Call:
        """The exact request for ``prompt`` (nothing is sent; ``--dry-run`` shows this).
        Python functions in ``tools=`` go out as their JSON specs."""
        options = CallOptions.of(prompt, stream=stream, **_specs_only(call))
        return format_for(options).build(options, base_url=self.base_url)

    def stream(self, prompt: Prompt, *, raise_errors: bool = True, **call: Unpack[LoopCallKwargs]) -> Iterator[Trace]:
        """Stream a call (SSE); yield a Trace snapshot after every server event, the last final."""
        loop = self._tool_loop(prompt, True, dict(call))
        if loop is not None:
            return _loop_snapshots(loop, raise_errors)
        return self.execute(self.build(prompt, stream=True, **call), raise_errors=raise_errors)  # type: ignore[misc]

    def run(self, prompt: Prompt, *, raise_errors: bool = True, **call: Unpack[LoopCallKwargs]) -> Trace:
        """Call once (no streaming) and return the final Trace (a tool loop: every round)."""
        loop = self._tool_loop(prompt, False, dict(call))
        if loop is not None:
            return _last(_loop_snapshots(loop, raise_errors))
        return _last(self.execute(self.build(prompt, stream=False, **call), raise_errors=raise_errors))  # type: ignore[misc]

    # -- the tool loop: the one place it is wired (dashmagic.tool_loop does the work) ------------
    def tool_loop(
        self, prompt: Prompt, *, stream: bool = False, ask: Any = None, defer: bool = False,
        **call: Unpack[LoopCallKwargs],
    ) -> ToolLoop:
        """A :class:`~dashmagic.tool_loop.ToolLoop` for ``prompt`` (nothing is sent until its
        ``run()`` is iterated). ``ask``: how to ask the user per call (default: a y/n prompt in a
        terminal, else nobody); ``defer``: end ``run()`` with calls pending (widget buttons)."""
        from .tool_loop import DEFAULT_MAX_ROUNDS, ToolLoop, terminal_ask

        options: dict[str, Any] = dict(call)
        return ToolLoop(
            self, prompt, stream=stream, approve=options.pop("approve", None),
            max_rounds=options.pop("max_rounds", DEFAULT_MAX_ROUNDS), concurrency=options.pop("tool_concurrency", 1),
            ask=ask if ask is not None else terminal_ask(), defer=defer, call=options,
        )

    def _tool_loop(self, prompt: Prompt, stream: bool, call: dict[str, Any]) -> ToolLoop | None:
        from .tools import has_callables

        if has_callables(call.get("tools")):
            return self.tool_loop(prompt, stream=stream, **call)
        given = sorted(set(call) & set(ToolLoopKwargs.__optional_keys__))
        if given:
            raise ConfigError(f"{', '.join(given)} only matter(s) with Python functions in tools=; none was given.")
        return None

    def map(self, prompts: Any = None, **options: Unpack[ClientMapKwargs]) -> Traces:
        """Many prompts at once, in input order: see :func:`dashmagic.map`. The Client's limiter
        (a default one is made on first use) paces every thread."""
        from .batch_map import map_prompts

        from .limits import RateLimiter

        with self._lock:  # two threads mapping on one Client share one limiter
            if self.limiter is None:
                self.limiter = RateLimiter()
        return map_prompts(self, prompts, **options)

    def execute(
        self, call: Call, *, raise_errors: bool = True, on_retry: Callable[[Trace], None] | None = None
    ) -> Iterator[Trace]:
        """Run a built :class:`Call`; yield a snapshot after every server event, the last final.

        On failure the last snapshot has ``status="error"`` (or ``"interrupted"``) and keeps every
        step received; with ``raise_errors`` the typed error is raised after it, carrying ``.trace``.
        """
        key = self.key()
        return _Exchange(self, call, key, on_retry).run(raise_errors)


class _Exchange:
    """One call in flight: send with retries, read the body, fold it, attach figures."""

    def __init__(self, client: Client, call: Call, key: Secret, on_retry: Callable[[Trace], None] | None) -> None:
        self.client = client
        self.call = call
        self.key = key
        self.on_retry = on_retry
        self.builder = TraceBuilder(call.info)
        self.scrub = KeyScrubber(None if client.replay else key)
        self.started = time.monotonic()
        self.timeouts = client.timeouts
        self.sleep: Callable[[float], None] = _no_wait if client.replay else time.sleep
        self.images: ImageCache | None = None
        #: The tokens this call is booked for with the limiter (corrected by the real usage).
        #: Replay answers from a file: nothing to pace.
        self.limiter = None if client.replay else client.limiter
        self.cost = self.limiter.cost(call.body_bytes()) if self.limiter is not None else 0.0

    def run(self, raise_errors: bool) -> Iterator[Trace]:
        response = None
        failure: DashmagicError | None = None
        final: Trace | None = None
        try:
            response = self._open()
            yield from self._read(response)
            self._note_record_errors()
            final = self._finish()
            if self.limiter is not None:
                self.limiter.succeeded(self.cost, final.usage.total_tokens)
            yield final
        except KeyboardInterrupt:
            failure = Interrupted(
                "Stopped by the user; the partial trace is kept." if self.builder.trace.events
                else "Stopped by the user before any reply arrived."
            )
            final = self._snapshot(self.builder.interrupt())
            yield final
        except DashmagicError as exc:
            # A refusal that points at the other generation or endpoint says what to use instead.
            failure = self.scrub.error(with_hint(exc, self.call))
            self._note_record_errors()
            final = self._snapshot(self.builder.fail(failure))
            yield final
        finally:
            if response is not None:
                response.close()
        if failure is not None and raise_errors:
            failure.trace = final
            raise failure

    def _note_record_errors(self) -> None:
        for message in self.client.take_record_errors():
            self.builder.note(f"The recording failed ({message}); the answer is kept, but it was not saved.")

    # -- sending -----------------------------------------------------------------------------
    def _open(self) -> requests.Response:
        """Send with retries: only before any response body was consumed, only for transient faults."""
        from .transport import send

        session = self.client._http(self.key)
        tries, limiter, throttles = self.client.retry.tries, self.limiter, 0
        attempt = 0
        while attempt < tries:
            last = attempt == tries - 1
            self._check_deadline()
            if limiter is not None:
                limiter.acquire(self.cost, timeout=max(0.0, self._remaining()))
            try:
                response = send(session, self.call, self.key, self.timeouts.for_requests())
            except TransportError as exc:
                transient = exc.before_response and getattr(exc, "phase", "connect") == "connect"
                if last or not transient:
                    raise
                wait, why = self.client.retry.delay(attempt, None), exc.message.split(". ")[0]
            else:
                if response.status_code < 400:
                    return response
                error = self._http_error(response)
                if limiter is not None and error.status_code == 429 and throttles < MAX_THROTTLED_TRIES:
                    # The shared limiter waits this out for every thread (and slows them all);
                    # the next acquire() blocks until the pause is over. Not a used-up try.
                    throttles += 1
                    pause = limiter.throttled(_retry_after(response), self.client.retry.delay(throttles, None))
                    self._retrying(f"Throttled (HTTP 429): the batch waits {pause:.1f} s and slows down "
                                   f"(throttle {throttles} of {MAX_THROTTLED_TRIES}).")
                    continue
                if last or not error.retryable:
                    raise error
                wait = self.client.retry.delay(attempt, _retry_after(response))
                why = f"HTTP {error.status_code}" + (f" {error.code}" if error.code else "")
            wait = min(wait, max(0.0, self._remaining()))
            self._retrying(f"Retrying after {why} (attempt {attempt + 2} of {tries}) in {wait:.1f} s.")
            (limiter.sleep if limiter is not None else self.sleep)(wait)
            attempt += 1
        raise AssertionError("unreachable")  # pragma: no cover

    def _retrying(self, note: str) -> None:
        trace = self.scrub.trace(self.builder.note(note))
        if self.on_retry is not None:
            self.on_retry(trace)

    def _http_error(self, response: requests.Response) -> Any:
        from ._text import error_page_summary

        raw = response.raw.read(_MAX_ERROR_BODY, decode_content=True) if response.raw else b""
        response.close()
        text = self.scrub.text(raw.decode("utf-8", "replace"))
        content_type = response.headers.get("Content-Type", "")
        return error_from_body(text, content_type, response.status_code, response.reason or "", error_page_summary(text))

    # -- reading -----------------------------------------------------------------------------
    def _remaining(self) -> float:
        return self.timeouts.total - (time.monotonic() - self.started)

    def _check_deadline(self) -> None:
        if self._remaining() <= 0:
            raise TimeoutError(
                f"The call took longer than its {self.timeouts.total:g} s deadline. What arrived is kept; "
                "raise `deadline` (or --timeout) for long answers.",
                phase="read",
                url=self.call.url,
                before_response=False,
            )

    def _read(self, response: requests.Response) -> Iterator[Trace]:
        from .transport import body_errors

        if "event-stream" not in response.headers.get("Content-Type", ""):
            with body_errors(self.call, self.timeouts.for_requests()):
                raw = b"".join(self._chunks(response))
            yield self._snapshot(self.builder.feed(decode_payload(self.scrub.text(_utf8(raw)))))
            return
        for event in self._events(response):
            payload = payload_of_event(event)
            if payload is not None:
                yield self._snapshot(self.builder.feed(payload, incremental=self.call.incremental))

    def _snapshot(self, trace: Trace) -> Trace:
        """What the caller sees: the key scrubbed, the figures fetched (each URL once per trace)."""
        trace = self.scrub.trace(trace)
        if not self.client.embed_images or not trace.figures:
            return trace
        if self.images is None:
            self.images = self.client.image_cache(self.call, self.key)
        images = tuple(self.images.fetch_all(trace.figures).values())
        return trace if images == trace.images else trace.replace(images=images)

    def _chunks(self, response: requests.Response) -> Iterator[bytes]:
        """The decoded body in pieces, never more than ``max_reply_bytes`` in all."""
        limit, total = self.client.max_reply_bytes, 0
        read1 = getattr(response.raw, "read1", None)
        if read1 is None:  # a replay body may be a plain file-like object
            pieces: Iterator[bytes] = response.iter_content(chunk_size=65536)
        else:
            # decode_content: requests opens the body raw; a gzipped body must be inflated.
            pieces = iter(lambda: bytes(read1(65536, decode_content=True)), b"")
        for chunk in pieces:
            if not chunk:
                return
            total += len(chunk)
            if total > limit:
                raise ProtocolError(
                    f"DashScope's reply is larger than {limit // (1024 * 1024)} MB decoded; dashmagic stopped "
                    "reading it (what arrived is kept). Raise max_reply_bytes if this is expected."
                )
            yield chunk

    def _events(self, response: requests.Response) -> Iterator[ServerSentEvent]:
        from .transport import body_errors

        decoder = SSEDecoder(max_event_chars=min(DEFAULT_MAX_EVENT_CHARS, self.client.max_reply_bytes))
        silence_from = time.monotonic()
        with body_errors(self.call, self.timeouts.for_requests()):
            for chunk in self._chunks(response):
                try:
                    events = decoder.feed(chunk)
                except UnicodeDecodeError as exc:
                    raise ProtocolError(
                        f"The event stream is not valid UTF-8 ({exc.reason}); the events before it are kept."
                    ) from None
                now = time.monotonic()
                if events:
                    silence_from = now
                elif now - silence_from > self.timeouts.read:
                    # Keep-alive comments arrive, but no event: the reply has stalled.
                    raise TimeoutError(
                        f"No event for more than {self.timeouts.read:g} s (only keep-alives); what arrived is "
                        "kept. Raise --timeout if the plugin is slow.",
                        phase="read",
                        url=self.call.url,
                        before_response=False,
                    )
                self._check_deadline()
                for event in events:
                    yield _scrubbed(event, self.scrub)
        for event in decoder.close():
            yield _scrubbed(event, self.scrub)
        if decoder.pending:
            raise TransportError(
                "The event stream ended in the middle of an event (the connection closed early). "
                "What arrived is kept; run the cell again to retry.",
                url=self.call.url,
                before_response=False,
            )

    def _finish(self) -> Trace:
        trace = self.builder.trace
        if self.call.stream and not trace.finish_reason:
            what = "before any event" if not trace.events else "before DashScope said the answer was complete"
            raise TransportError(
                f"The stream ended {what} (no finish_reason): the answer is truncated. What arrived is kept; "
                "run the cell again to retry.",
                url=self.call.url,
                before_response=False,
            )
        return self._snapshot(self.builder.finish(complete=not self.call.stream))


def _scrubbed(event: ServerSentEvent, scrub: KeyScrubber) -> ServerSentEvent:
    data = scrub.text(event.data)
    if data is event.data:
        return event
    return ServerSentEvent(event=event.event, data=data, id=event.id, retry=event.retry, status=event.status)


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            f"DashScope's reply is not valid UTF-8 (bad byte at position {exc.start}); "
            "nothing after that point could be read."
        ) from None


def _as_secret(value: str | Secret | None) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise ConfigError(f"api_key must be a string, got {type(value).__name__}.")
    return validate_key(value, "api_key=")


def _mode_of(mode: str | None, recordings: Any) -> tuple[str, Any]:
    from .transport import choose_mode

    if isinstance(recordings, str) and not recordings.strip():
        raise ConfigError("recordings= needs a file path ('demo' for the bundled recordings); got an empty one.")
    return choose_mode(mode, recordings)


def _specs_only(call: Mapping[str, Any]) -> dict[str, Any]:
    from .tools import Toolbox, has_callables

    options = dict(call)
    if has_callables(options.get("tools")):
        options["tools"] = list(Toolbox.of(options["tools"]).specs)
    return options


def _loop_snapshots(loop: ToolLoop, raise_errors: bool) -> Iterator[Trace]:
    try:
        yield from loop.run()
    except DashmagicError as exc:
        if raise_errors or exc.trace is None:
            raise
        yield exc.trace


def _last(snapshots: Iterator[Trace]) -> Trace:
    last: Trace | None = None
    for last in snapshots:
        pass
    if last is None:  # pragma: no cover - execute() always yields at least once
        raise ProtocolError("The call produced no trace.")
    return last


# -- the module-level API ----------------------------------------------------------------------


def _split(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], bool]:
    client = {k: options.pop(k) for k in list(options) if k in ClientKwargs.__optional_keys__}
    raise_errors = bool(options.pop("raise_errors", True))
    return client, options, raise_errors


def stream(prompt: Prompt, **options: Unpack[RunKwargs]) -> Iterator[Trace]:
    """Stream a call (SSE); yield a Trace snapshot after every server event.

    ``prompt`` is the user's text or a full ``messages`` list. What to ask: ``plugins``,
    ``model``, ``system``, ``files`` (document URLs), ``seed``, ``parameters``, ``history``
    (e.g. ``trace.turn()`` of an earlier call); today's built-in tools: ``thinking``,
    ``thinking_budget``, ``code_interpreter``, ``search`` (True or search options), ``tools`` (JSON
    function specs), ``tool_choice``, ``endpoint``. How to call: the :class:`Client` options
    (``api_key``, ``base_url``, ``mode``, ``recordings``, ``timeout``, ``deadline``, ``retries``,
    ``embed_images``…). The request is checked now; nothing is sent until you iterate.
    """
    client_options, call, raise_errors = _split(dict(options))
    client = Client(**client_options)
    try:
        snapshots = client.stream(prompt, raise_errors=raise_errors, **call)
    except BaseException:
        client.close()
        raise
    return _closing(client, snapshots)


def _closing(client: Client, snapshots: Iterator[Trace]) -> Iterator[Trace]:
    with client:
        yield from snapshots


def run(prompt: Prompt, **options: Unpack[RunKwargs]) -> Trace:
    """Call once (no streaming) and return the final Trace. Same arguments as :func:`stream`."""
    client_options, call, raise_errors = _split(dict(options))
    with Client(**client_options) as client:
        return client.run(prompt, raise_errors=raise_errors, **call)


def map(prompts: Any = None, **options: Unpack[MapKwargs]) -> Traces:  # noqa: A001 - the batch verb
    """Many prompts at once: results in input order, one Trace per prompt, failures kept per row.

    ``prompts``: strings or message lists (any iterable, a pandas Series), or ``template=`` with
    ``rows=`` (a DataFrame or dicts; ``{{ row.col }}`` and ``{{ index }}`` are filled per row, the
    brace-safe rules of the magic). ``concurrency`` threads share one rate limiter (``rpm``,
    ``tpm``; adaptive on 429). ``record=PATH`` appends each finished row as it completes, and a
    rerun sends only the rows not yet answered; ``mode="replay"`` with ``record=PATH`` answers
    the whole batch from the file, offline. ``progress``: None (a widget, a text bar or a final
    summary, by where it runs), False, True, or a callable given the progress after each row.
    A failed row holds its error (``status`` "error"/"interrupted"); ``raise_errors=True``
    raises the first one after every row has finished. Every :func:`run` keyword works here.
    """
    rest: dict[str, Any] = dict(options)
    client_options = {k: rest.pop(k) for k in list(rest) if k in ClientKwargs.__optional_keys__}
    with Client(**client_options) as client:
        return client.map(prompts, **rest)


def build_call(prompt: Prompt, *, stream: bool = False, base_url: str | None = None, **call: Unpack[CallKwargs]) -> Call:
    """The exact request ``run()``/``stream()`` would send (nothing is sent, no key is read)."""
    options = CallOptions.of(prompt, stream=stream, **call)
    from .config import DEFAULT_BASE_URL

    return format_for(options).build(options, base_url=check_base_url(base_url or DEFAULT_BASE_URL))

