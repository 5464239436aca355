"""DashScope's Batch File API: many prompts as one job that the service runs, at half price.

    job = dashmagic.batch.submit(df["review"], model="qwen-plus", system="Classify: pos/neg.")
    job.id                      # keep it: attach(job.id) finds the job again after a restart
    job.watch()                 # live status and request_counts (a widget in Jupyter)
    df["label"] = job.to_frame()["answer"]

The wire (protocol-current.md §9, OpenAI-compatible, under ``{host}/compatible-mode/v1``):
``POST /files`` (multipart, ``purpose=batch``) uploads a JSON Lines file, one chat request per
prompt (``custom_id`` = the prompt's input position); ``POST /batches`` creates the job;
``GET /batches/{id}`` shows ``validating → in_progress → finalizing → completed`` (or
``failed | expired | cancelling → cancelled``) with ``request_counts``; the results are the
lines of ``output_file_id`` and ``error_file_id`` (``GET /files/{id}/content``). The service
runs the job: nothing here schedules, retries rows or keeps state beyond the job's id.

Every request goes through the :class:`~dashmagic.Client`'s session (so ``mode="record"`` /
``"replay"`` record and replay a whole job, polls included), with the key added at send time by
the transport's auth hook and scrubbed from everything read back. Limits checked before
uploading: at most :data:`MAX_LINES` prompts and :data:`MAX_BYTES` of JSONL; the test model
``batch-test-model`` answers files of at most 100 lines (the service refuses larger ones).
Thinking models think by default here: pass ``parameters={"enable_thinking": False}`` if unwanted.
"""

from __future__ import annotations

import hashlib
import html
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from . import __version__
from .client import Client, ClientKwargs, _retry_after
from .errors import ApiError, ConfigError, Interrupted, ProtocolError, TimeoutError, TransportError
from .protocol.envelope import decode_payload, error_from_body, error_from_payload, one_line, to_int, to_str
from .request import CallKwargs, CallOptions, Prompt, build_messages
from .scrub import KeyScrubber
from .trace import Answer, ErrorInfo, Reasoning, RequestInfo, Step, Trace, Usage, freeze, thaw

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .batch_map import Traces
    from .progress import ProgressState

__all__ = [
    "ACTIVE",
    "AttachKwargs",
    "COMPLETION_WINDOW",
    "ENDPOINT",
    "MAX_BYTES",
    "MAX_LINES",
    "STATES",
    "TERMINAL",
    "BatchInfo",
    "BatchJob",
    "BatchProgress",
    "RequestCounts",
    "SubmitKwargs",
    "attach",
    "build_lines",
    "compatible_base",
    "submit",
]

ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW = "24h"
MAX_LINES = 50_000
MAX_BYTES = 500 * 1024 * 1024
STATES = ("validating", "in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled")
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
ACTIVE = frozenset(STATES) - TERMINAL
#: The longest a default ``wait()`` lasts: the completion window plus an hour of finalizing.
DEFAULT_WAIT_TIMEOUT = 25 * 3600.0
#: A result file may be far larger than one chat reply (50,000 answers).
_MAX_FILE_READ = 2 * MAX_BYTES
_COMPATIBLE_PATH = "/compatible-mode/v1"


class AttachKwargs(ClientKwargs, total=False):
    """``attach()``: the Client's options, or ``client=`` an open Client."""

    client: Client | None


class SubmitKwargs(AttachKwargs, CallKwargs, total=False):
    """``submit()``: how to call (the Client's options) and what to ask (``run()``'s)."""

    template: str | None
    rows: Any


# -- the job's state, as the service reports it -------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestCounts:
    total: int = 0
    completed: int = 0
    failed: int = 0

    @property
    def done(self) -> int:
        return self.completed + self.failed


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """A batch object (``GET /batches/{id}``), checked: every field the client relies on."""

    id: str
    status: str
    counts: RequestCounts
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: tuple[str, ...] = ()
    created_at: int | None = None
    expires_at: int | None = None

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> BatchInfo:
        """The batch in ``payload``; a :class:`ProtocolError` of one line if its shape is wrong."""
        batch_id = payload.get("id")
        status = payload.get("status")
        if not isinstance(batch_id, str) or not batch_id.strip() or not isinstance(status, str):
            raise ProtocolError(
                "The Batch API sent a batch object without a string 'id' and 'status'; got keys "
                f"{one_line(', '.join(sorted(str(k) for k in list(payload)[:12])), 120) or '(none)'}."
            )
        if status not in STATES:
            raise ProtocolError(f"The Batch API reported an unknown batch status {one_line(status, 40)!r}.")
        return cls(
            id=one_line(batch_id, 120),
            status=status,
            counts=_counts(payload.get("request_counts")),
            input_file_id=_file_id(payload, "input_file_id"),
            output_file_id=_file_id(payload, "output_file_id"),
            error_file_id=_file_id(payload, "error_file_id"),
            errors=_batch_errors(payload.get("errors")),
            created_at=to_int(payload.get("created_at")),
            expires_at=to_int(payload.get("expires_at")),
        )

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


def _counts(raw: Any) -> RequestCounts:
    if raw is None:
        return RequestCounts()
    if not isinstance(raw, Mapping):
        raise ProtocolError(f"The Batch API sent request_counts that is not an object: {one_line(to_str(raw), 80)}.")
    values = [to_int(raw.get(name)) for name in ("total", "completed", "failed")]
    if any(v is None or v < 0 for v in values):
        raise ProtocolError(
            f"The Batch API sent request_counts without whole counts: {one_line(to_str(dict(raw)), 120)}."
        )
    total, completed, failed = (int(v or 0) for v in values)
    return RequestCounts(total, completed, failed)


def _file_id(payload: Mapping[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"The Batch API sent a {name} that is not a string: {one_line(to_str(value), 80)}.")
    return value


def _batch_errors(raw: Any) -> tuple[str, ...]:
    """``errors.data[*]`` as one line each: ``line 3: InvalidFile.Line: The line is not valid JSON.``"""
    data = raw.get("data") if isinstance(raw, Mapping) else None
    if not isinstance(data, list):
        return ()
    lines = []
    for item in data[:20]:
        if isinstance(item, Mapping):
            where = f"line {to_int(item.get('line'))}: " if to_int(item.get("line")) else ""
            code = f"{one_line(to_str(item.get('code')), 60)}: " if item.get("code") else ""
            lines.append(where + code + one_line(to_str(item.get("message")), 200))
    return tuple(lines)


# -- building the input file ----------------------------------------------------------------


def compatible_base(base_url: str) -> str:
    """``https://host/api/v1`` → ``https://host/compatible-mode/v1`` (the OpenAI-compatible root)."""
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, _COMPATIBLE_PATH, "", ""))


def _labelled_prompts(prompts: Any, template: str | None, rows: Any) -> Iterator[tuple[Any, Prompt]]:
    """(label, prompt) pairs by :func:`dashmagic.map`'s rules: a list or Series of prompts, or
    ``template=`` with ``rows=`` (a DataFrame or dicts, ``{{ row.col }}``); labels are the rows'."""
    from .batch_map import _prompt_of, _prompts

    if isinstance(prompts, str):
        raise ConfigError("submit() takes many prompts: pass a list (or a Series), not one string.")
    pairs, _ = _prompts(prompts, template, rows)
    for label, item in pairs:
        yield label, _prompt_of(item, template, {})


def _body(options: CallOptions) -> dict[str, Any]:
    """The OpenAI-compatible chat body of one prompt."""
    if options.plugins:
        raise ConfigError("The Batch API runs chat completions: plugins= cannot be used; drop it.")
    if options.files:
        raise ConfigError("The Batch API's chat lines take text: files= cannot be used; drop it.")
    body: dict[str, Any] = {"model": options.model, "messages": build_messages(options)}
    if options.seed is not None:
        body["seed"] = options.seed
    for name, value in options.parameters.items():
        if name == "incremental_output":
            raise ConfigError("incremental_output is for streamed calls; a batch is not streamed: drop it.")
        body[name] = thaw(value)
    return body


def build_lines(
    prompts: Any = None, *, template: str | None = None, rows: Any = None, **call: Unpack[CallKwargs],
) -> tuple[bytes, tuple[RequestInfo, ...], list[Any]]:
    """The JSONL input file (one line per prompt, ``custom_id`` = its position), what each row
    asked, and the rows' labels (a DataFrame's index). Every prompt is checked as ``run()``
    checks it; a bad one is a ConfigError naming its row, and nothing is uploaded."""
    lines: list[bytes] = []
    infos: list[RequestInfo] = []
    labels: list[Any] = []
    size = 0
    for index, (label, prompt) in enumerate(_labelled_prompts(prompts, template, rows)):
        if index >= MAX_LINES:
            raise ConfigError(f"A batch holds at most {MAX_LINES:,} prompts; split the job into several batches.")
        try:
            options = CallOptions.of(prompt, **call)
            body = _body(options)
        except ConfigError as exc:
            raise ConfigError(f"Row {index}: {exc.message}") from None
        line = {"custom_id": str(index), "method": "POST", "url": ENDPOINT, "body": body}
        data = json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
        size += len(data)
        if size > MAX_BYTES:
            raise ConfigError(f"The batch file would exceed {MAX_BYTES // (1024 * 1024)} MB; split the job.")
        lines.append(data)
        labels.append(label)
        infos.append(RequestInfo(model=options.model, prompt=options.text, url=ENDPOINT,
                                 user_message=freeze(body["messages"][-1])))
    if not lines:
        raise ConfigError("There are no prompts to submit.")
    return b"".join(lines), tuple(infos), labels


def _multipart(data: bytes, filename: str) -> tuple[bytes, str]:
    """A multipart/form-data body (``purpose=batch`` + the file) and its Content-Type.

    The boundary is derived from the content, so the same file makes the same bytes: a recorded
    upload matches again on replay.
    """
    boundary = "dashmagic-" + hashlib.sha256(data).hexdigest()[:32]
    marker = boundary.encode("ascii")
    while marker in data:  # pragma: no cover - a file would have to contain its own hash
        boundary += "x"
        marker = boundary.encode("ascii")
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
        "Content-Type: application/jsonl\r\n\r\n"
    ).encode("ascii")
    return head + data + f"\r\n--{boundary}--\r\n".encode("ascii"), f"multipart/form-data; boundary={boundary}"


# -- HTTP -----------------------------------------------------------------------------------------


def _no_wait(seconds: float) -> None:
    """Replay answers from a file: no poll or backoff needs a real wait."""


class _Api:
    """The Batch API over one Client: its session, key, timeouts and retry policy."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.base = compatible_base(client.base_url)
        self.key = client.key()
        self.scrub = KeyScrubber(None if client.replay else self.key)
        self.sleep: Callable[[float], None] = _no_wait if client.replay else time.sleep

    def json(self, method: str, path: str, *, data: bytes | None = None,
             content_type: str = "application/json") -> Mapping[str, Any]:
        raw = self.call(method, path, data=data, content_type=content_type)
        return decode_payload(self.scrub.text(_utf8(raw, path)))

    def call(self, method: str, path: str, *, data: bytes | None = None,
             content_type: str = "application/json", limit: int | None = None) -> bytes:
        """Send with bounded retries: GETs on 429/5xx and connect failures; POSTs only when
        nothing can have been done (a 429 or a connect failure), never twice a created batch."""
        from .transport import request

        url = self.base + path
        session = self.client._http(self.key)
        headers = {"Accept": "application/json", "User-Agent": f"dashmagic/{__version__}"}
        if data is not None:
            headers["Content-Type"] = content_type
        tries = self.client.retry.tries
        for attempt in range(tries):
            last = attempt == tries - 1
            try:
                response = request(session, method, url, self.key, self.client.timeouts.for_requests(),
                                   data=data, headers=headers)
            except TransportError as exc:
                if last or not (exc.before_response and getattr(exc, "phase", "connect") == "connect"):
                    raise self.scrub.error(exc) from None
                self.sleep(self.client.retry.delay(attempt, None))
                continue
            try:
                body = self._read(response, url, limit or self.client.max_reply_bytes)
            finally:
                response.close()
            if response.status_code < 400:
                return body
            error = self._error(body, response.headers.get("Content-Type", ""), response.status_code,
                                response.reason or "")
            again = error.status_code == 429 or (method == "GET" and error.retryable)
            if last or not again:
                raise error
            self.sleep(self.client.retry.delay(attempt, _retry_after(response)))
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, response: Any, url: str, limit: int) -> bytes:
        from .transport import body_errors

        pieces: list[bytes] = []
        total = 0
        with body_errors(url, self.client.timeouts.for_requests()):
            for chunk in response.iter_content(65536):
                total += len(chunk)
                if total > limit:
                    raise ProtocolError(
                        f"The Batch API's reply is larger than {limit // (1024 * 1024)} MB; dashmagic stopped "
                        "reading it. Raise max_reply_bytes if this is expected."
                    )
                pieces.append(chunk)
        return b"".join(pieces)

    def _error(self, body: bytes, content_type: str, status: int, reason: str) -> ApiError:
        from ._text import error_page_summary

        text = self.scrub.text(body[: 1 << 20].decode("utf-8", "replace"))
        try:
            payload = json.loads(text)
        except (ValueError, RecursionError):
            payload = None
        # The OpenAI-compatible routes nest the error: {"error": {"code", "message"}, "request_id"}.
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            return error_from_payload({**payload["error"], "request_id": payload.get("request_id")}, status)
        return error_from_body(text, content_type, status, reason, error_page_summary(text))


def _utf8(raw: bytes, path: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"The Batch API's reply to {path.split('/')[1]} is not valid UTF-8 "
                            f"(bad byte at position {exc.start}).") from None


# -- results ----------------------------------------------------------------------------------


def _parse_lines(text: str, what: str) -> Iterator[Mapping[str, Any]]:
    """The JSON objects of a result file, one per line (blank lines skipped); linear."""
    for number, raw in enumerate(text.split("\n"), 1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            raise ProtocolError(f"Line {number} of the batch's {what} file is not JSON; it began: "
                                f"{one_line(raw[:80], 80)!r}.") from None
        if not isinstance(value, dict):
            raise ProtocolError(f"Line {number} of the batch's {what} file is not a JSON object.")
        yield value


def _position(line: Mapping[str, Any], size: int, what: str) -> int:
    """The input position a result line answers (its ``custom_id``), within the job's rows."""
    custom_id = line.get("custom_id")
    index = to_int(custom_id) if isinstance(custom_id, (str, int)) else None
    bound = size or MAX_LINES  # a hostile "custom_id": "999999999" must not make a billion rows
    if index is None or not 0 <= index < bound:
        raise ProtocolError(f"A line of the batch's {what} file has a custom_id that is not a row number "
                            f"below {bound}: {one_line(to_str(custom_id), 60)!r}.")
    return index


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "" if content is None else to_str(content)


def _error_trace(info: RequestInfo, message: str, *, kind: str, status: int | None = None,
                 code: str | None = None, request_id: str | None = None) -> Trace:
    error = ErrorInfo(type=kind, message=message, status_code=status, code=code, request_id=request_id)
    return Trace(request=info, status="error", error=error, request_id=request_id)


def _row_trace(info: RequestInfo, line: Mapping[str, Any]) -> Trace:
    """One result line as a Trace: the answer and usage, or the row's error."""
    response = line.get("response")
    response = response if isinstance(response, Mapping) else {}
    status = to_int(response.get("status_code"))
    request_id = one_line(to_str(response.get("request_id")), 80) or None
    body = response.get("body")
    body = body if isinstance(body, Mapping) else {}
    error = line.get("error")
    if error or (status is not None and status >= 400):
        detail = error if isinstance(error, Mapping) else body.get("error")
        api = error_from_payload({**(detail if isinstance(detail, Mapping) else {}), "request_id": request_id}, status)
        return _error_trace(info, api.message, kind=type(api).__name__, status=status, code=api.code,
                            request_id=request_id)
    choices = body.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], Mapping) else None
    message = choice.get("message") if choice is not None else None
    if not isinstance(message, Mapping):
        return _error_trace(info, "The batch's output line has no choices[0].message; the answer is unreadable.",
                            kind="ProtocolError", status=status, request_id=request_id)
    steps: list[Step] = []
    reasoning = _message_text(message.get("reasoning_content"))
    if reasoning:
        steps.append(Reasoning(reasoning))
    steps.append(Answer(_message_text(message.get("content"))))
    found = body.get("usage")
    usage: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    model = body.get("model")
    finish = choice.get("finish_reason") if choice is not None else None
    return Trace(
        request=info, steps=tuple(steps), status="complete", request_id=request_id,
        usage=Usage(to_int(usage.get("prompt_tokens")), to_int(usage.get("completion_tokens")),
                    to_int(usage.get("total_tokens"))),
        model=one_line(model, 80) if isinstance(model, str) else None,
        finish_reason=one_line(finish, 40) if isinstance(finish, str) else None,
        messages=(freeze(dict(message)),), events=1,
    )


_NOT_RUN = {
    "cancelled": "The batch was cancelled before this row ran.",
    "expired": "The batch expired (24 h window) before this row ran.",
    "failed": "The batch failed validation, so no row ran",
}


def _missing_trace(info: RequestInfo, batch: BatchInfo) -> Trace:
    reason = _NOT_RUN.get(batch.status, "The batch's result files hold no line for this row.")
    if batch.status == "failed" and batch.errors:
        reason += f": {batch.errors[0]}"
    return _error_trace(info, reason if reason.endswith(".") else reason + ".", kind="NotRun")


# -- the job handle ---------------------------------------------------------------------------


class BatchJob:
    """A batch on the service: refresh, wait, watch, cancel, results. Re-attach with :func:`attach`."""

    def __init__(self, client: Client, info: BatchInfo, requests: Sequence[RequestInfo] = (), *,
                 labels: Sequence[Any] | None = None, owns_client: bool = False) -> None:
        self._client = client
        self._api = _Api(client)
        self._owns_client = owns_client
        self.info = info
        self._requests = tuple(requests)
        #: The input rows' labels (a DataFrame's index), when this process submitted the job.
        self.labels = list(labels) if labels is not None else None
        self._results: tuple[Trace, ...] | None = None
        self._started = time.monotonic()

    def __repr__(self) -> str:
        counts = self.info.counts
        return f"BatchJob(id={self.id!r}, status={self.status!r}, done={counts.done}/{counts.total})"

    def __enter__(self) -> BatchJob:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the client this job made (a client passed in is the caller's to close)."""
        if self._owns_client:
            self._client.close()

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def status(self) -> str:
        return self.info.status

    @property
    def request_counts(self) -> RequestCounts:
        return self.info.counts

    @property
    def done(self) -> bool:
        return self.info.done

    def refresh(self) -> BatchJob:
        """Ask the service for the job's state (``GET /batches/{id}``). A finished job never
        changes again, so refreshing one sends nothing."""
        if not self.info.done:
            self.info = self._checked(self._api.json("GET", f"/batches/{quote(self.id, safe='')}"))
        return self

    def _checked(self, payload: Mapping[str, Any]) -> BatchInfo:
        info = BatchInfo.of(payload)
        if info.id != self.id:
            raise ProtocolError(f"Asked for batch {self.id!r}, the service answered about {info.id!r}.")
        return info

    def cancel(self) -> BatchJob:
        """Ask the service to stop the job (``cancelling``, then ``cancelled``); rows that ran are kept."""
        if not self.info.done:
            self.info = self._checked(self._api.json("POST", f"/batches/{quote(self.id, safe='')}/cancel"))
        return self

    def wait(self, *, poll: float = 5.0, timeout: float | None = None,
             on_update: Callable[[BatchJob], None] | None = None) -> BatchJob:
        """Poll every ``poll`` seconds until the job ends; at most ``timeout`` seconds (default
        25 h). On timeout or Ctrl-C the job keeps running on the service: wait again, or
        ``attach(id)`` later. Returns the job (``status`` says how it ended)."""
        if poll <= 0:
            raise ConfigError(f"poll must be a positive number of seconds, got {poll!r}.")
        limit = DEFAULT_WAIT_TIMEOUT if timeout is None else float(timeout)
        deadline = time.monotonic() + limit
        try:
            self.refresh()
            while True:
                if on_update is not None:
                    on_update(self)
                if self.done:
                    return self
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"Batch {self.id} is still {self.status} after {limit:g} s; it keeps running on the "
                        f"service. Wait again, or dashmagic.batch.attach({self.id!r}) later.",
                        phase="read", url=self._api.base, before_response=False,
                    )
                self._api.sleep(min(poll, left))
                self.refresh()
        except KeyboardInterrupt:
            raise Interrupted(
                f"Stopped watching batch {self.id} ({self.status}); it keeps running on the service: "
                f"job.cancel() stops it, dashmagic.batch.attach({self.id!r}) finds it again."
            ) from None

    def watch(self, *, poll: float = 5.0, timeout: float | None = None, progress: Any = None,
              live: bool | None = None) -> BatchJob:
        """:meth:`wait`, showing status and request_counts as they change, with the views of
        :func:`dashmagic.map`: an ipywidgets bar in a Jupyter kernel (a live HTML line without
        ipywidgets), a text bar in a terminal, the final line only under nbconvert/nbval.
        ``progress``: False (nothing), a callable (gets each state), None/True (by where this runs)."""
        from .progress import Reporter, choose_view

        reporter = Reporter(choose_view(progress, live=live))
        try:
            return self.wait(poll=poll, timeout=timeout, on_update=lambda job: reporter.update(job.state()))
        finally:
            reporter.close(self.state())

    def state(self) -> ProgressState:
        """The job's progress as the map() views show it (tokens are known only from results)."""
        from .progress import ProgressState

        counts = self.info.counts
        return ProgressState(total=counts.total or None, done=counts.done, failed=counts.failed,
                             elapsed=time.monotonic() - self._started, finished=self.info.done)

    def progress(self) -> BatchProgress:
        """The job's state as a displayable line (HTML + text)."""
        return BatchProgress(self.id, self.status, self.info.counts)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return self.progress()._repr_mimebundle_(include, exclude)

    # -- results ------------------------------------------------------------------------------
    def results(self) -> Traces:
        """One Trace per prompt, in input order: the answer and usage, or the row's error (a row
        that never ran says why). Downloads the output and error files once the job ended."""
        from .batch_map import Traces

        if self._results is None:
            self.refresh()
            if not self.info.done:
                raise ConfigError(f"Batch {self.id} is still {self.status}: wait() for it before results().")
            self._results = self._collect()
        traces = Traces(self._results)
        if self.labels is not None and len(self.labels) == len(traces):
            traces.labels = list(self.labels)
        return traces

    def _collect(self) -> tuple[Trace, ...]:
        size = max(len(self._requests), self.info.counts.total)
        found: dict[int, Trace] = {}
        for file_id, what in ((self.info.output_file_id, "output"), (self.info.error_file_id, "error")):
            if file_id is None:
                continue
            path = f"/files/{quote(file_id, safe='')}/content"
            # Scrubbed as text before parsing: an echoed key is masked in answers, errors and ids alike.
            text = self._api.scrub.text(_utf8(self._api.call("GET", path, limit=_MAX_FILE_READ), path))
            for line in _parse_lines(text, what):
                index = _position(line, size, what)
                if index not in found:
                    found[index] = _row_trace(self._request(index, line), line)
        size = max([size, *(i + 1 for i in found)])
        return tuple(found.get(i) or _missing_trace(self._request(i, None), self.info) for i in range(size))

    def _request(self, index: int, line: Mapping[str, Any] | None) -> RequestInfo:
        if index < len(self._requests):
            return self._requests[index]
        model = ""  # re-attached: the prompts are not known here, the model is in the answer
        response = line.get("response") if line is not None else None
        body = response.get("body") if isinstance(response, Mapping) else None
        if isinstance(body, Mapping) and isinstance(body.get("model"), str):
            model = one_line(body["model"], 80)
        return RequestInfo(model=model, url=ENDPOINT)

    def to_frame(self, json: bool | str | None = "auto") -> Any:  # noqa: A002 - as dashmagic.to_frame
        """The results as :func:`dashmagic.to_frame` makes them for ``map()``: answer, status,
        input/output tokens, request id, error (and the parsed JSON), indexed like the input rows."""
        from .batch_map import to_frame

        return to_frame(self.results(), json=json)


# -- progress views -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """One line about a job: ``batch_… in_progress: 40/100 done (2 failed)``."""

    id: str
    status: str
    counts: RequestCounts

    @property
    def text(self) -> str:
        c = self.counts
        tally = f"{c.done}/{c.total} done" if c.total else "no rows counted yet"
        return f"Batch {self.id} {self.status}: {tally}" + (f" ({c.failed} failed)" if c.failed else "")

    def html(self) -> str:
        c = self.counts
        bar = f'<progress max="{max(c.total, 1)}" value="{c.done}"></progress> ' if c.total else ""
        return f'<div class="dashmagic-batch">{bar}<code>{html.escape(self.text)}</code></div>'

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        data = {"text/plain": self.text, "text/html": self.html()}
        if include:
            data = {k: v for k, v in data.items() if k in include}
        if exclude:
            data = {k: v for k, v in data.items() if k not in exclude}
        return data


# -- the module API ---------------------------------------------------------------------------


def _client_of(options: dict[str, Any]) -> tuple[Client, bool]:
    client = options.pop("client", None)
    client_options = {k: options.pop(k) for k in list(options) if k in ClientKwargs.__optional_keys__}
    if client is not None:
        if client_options:
            raise ConfigError("Pass either client= or Client options (api_key, base_url, mode…), not both.")
        if not isinstance(client, Client):
            raise ConfigError(f"client= must be a dashmagic.Client, got {type(client).__name__}.")
        return client, False
    return Client(**client_options), True


def submit(prompts: Any = None, **options: Unpack[SubmitKwargs]) -> BatchJob:
    """Upload the prompts as one batch file and create the job; returns its handle at once.

    ``prompts``: strings or message lists (a list, a pandas Series…), or ``template=`` with
    ``rows=`` (a DataFrame or dicts; ``{{ row.col }}`` as in the magic). What to ask: ``run()``'s
    options (``model``, ``system``, ``seed``, ``parameters``, ``history``); how to call: the
    :class:`~dashmagic.Client` options or ``client=``. Nothing is uploaded if any prompt is invalid.
    """
    opts: dict[str, Any] = dict(options)
    template, rows = opts.pop("template", None), opts.pop("rows", None)
    client, owned = _client_of(opts)
    try:
        data, requests, labels = build_lines(prompts, template=template, rows=rows, **opts)
        api = _Api(client)
        body, content_type = _multipart(data, "dashmagic-batch.jsonl")
        uploaded = api.json("POST", "/files", data=body, content_type=content_type)
        file_id = uploaded.get("id")
        if not isinstance(file_id, str) or not file_id:
            raise ProtocolError("The Batch API accepted the upload but sent no file id.")
        request = {"input_file_id": file_id, "endpoint": ENDPOINT, "completion_window": COMPLETION_WINDOW}
        created = api.json("POST", "/batches", data=json.dumps(request).encode("utf-8"))
        return BatchJob(client, BatchInfo.of(created), requests, labels=labels, owns_client=owned)
    except BaseException:
        if owned:
            client.close()
        raise


def attach(batch_id: str, **options: Unpack[AttachKwargs]) -> BatchJob:
    """The job with this id (e.g. after a kernel restart), fetched now. Its results have the
    answers in input order; the prompts themselves are not sent back by the service."""
    if not isinstance(batch_id, str) or not batch_id.strip() or len(batch_id) > 200:
        raise ConfigError(f"attach() needs a batch id such as 'batch_…', got {batch_id!r:.80}.")
    opts: dict[str, Any] = dict(options)
    client, owned = _client_of(opts)
    if opts:
        raise ConfigError(f"Unknown option(s) {', '.join(sorted(opts))}; see help(dashmagic.batch.attach).")
    try:
        job = BatchJob(client, BatchInfo(id=batch_id.strip(), status="validating", counts=RequestCounts()),
                       owns_client=owned)
        return job.refresh()
    except BaseException:
        if owned:
            client.close()
        raise
