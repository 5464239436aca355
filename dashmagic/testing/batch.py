"""The loopback fake of DashScope's OpenAI-compatible Batch File API (protocol-current.md §9).

Routes, under ``/compatible-mode/v1`` of :class:`~dashmagic.testing.FakeDashScope`, every one
behind ``Authorization: Bearer <api_key>`` (else 401 in the OpenAI error shape):

- ``POST /files`` (multipart: ``purpose=batch`` and ``file``) → a file object ``file-batch-…``;
  larger than ``max_bytes`` (500 MB) → 400 before the body is read.
- ``GET /files/{id}`` → the file object; ``GET /files/{id}/content`` → its bytes.
- ``POST /batches`` ``{"input_file_id", "endpoint": "/v1/chat/completions", "completion_window":
  "24h"}`` → a batch object in ``validating``.
- ``GET /batches`` (list) and ``GET /batches/{id}``; ``POST /batches/{id}/cancel``.

The state machine runs on the fake's own clock (:meth:`FakeBatches.advance`, or real time
with ``realtime=True``; ``poll_step`` moves it on every ``GET /batches/{id}`` so a client's
``wait()`` progresses with no real sleeping)::

    validating ─(validate_delay)→ in_progress ─(row_delay per line)→ finalizing
        ─(finalize_delay)→ completed
    validating → failed          bad JSONL, a wrong line shape, mixed models, too many lines
                                 (> 50,000; > 100 or > 1 MB for ``batch-test-model``)
    any running state → expired  not completed ``expire_after`` s after creation (24 h)
    running → cancelling ─(cancel_delay)→ cancelled

Output file lines: ``{"id", "custom_id", "response": {"status_code": 200, "request_id", "body":
<chat.completion>}, "error": null}``; error file lines carry ``"error": {"code", "message"}``
(a failed row also its 4xx ``response``; a row an expired batch never ran ``response: null``).
A prompt containing :data:`FAIL_MARK` makes its row fail (400 ``DataInspectionFailed``).
Standard library only.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import FakeDashScope, _Handler

__all__ = [
    "BATCH_STATES",
    "COMPATIBLE_PREFIX",
    "ENDPOINT",
    "FAIL_MARK",
    "MAX_BYTES",
    "MAX_LINES",
    "TEST_MAX_BYTES",
    "TEST_MAX_LINES",
    "TEST_MODEL",
    "TEST_ANSWER",
    "FakeBatch",
    "FakeBatches",
    "StoredFile",
    "batches_of",
    "serve",
]

COMPATIBLE_PREFIX = "/compatible-mode/v1"
ENDPOINT = "/v1/chat/completions"
MAX_LINES = 50_000
MAX_BYTES = 500 * 1024 * 1024
TEST_MODEL = "batch-test-model"
TEST_MAX_LINES = 100
TEST_MAX_BYTES = 1024 * 1024
TEST_ANSWER = "This is a test result."
FAIL_MARK = "[[fail]]"
BATCH_STATES = ("validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled")
_TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_JSON = "application/json"
#: Validation errors kept per batch (a 50,000-line file of bad lines is not 50,000 errors).
_MAX_ERRORS = 20


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def object(self) -> dict[str, Any]:
        return {"id": self.id, "object": "file", "bytes": len(self.data), "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": "processed"}


@dataclass
class FakeBatch:
    """One batch and its clock marks; :meth:`FakeBatches._update` moves it on."""

    id: str
    input_file_id: str
    created: float
    metadata: Any = None
    status: str = "validating"
    lines: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    stamps: dict[str, float] = field(default_factory=dict)
    processed: int = 0
    completed: int = 0
    failed: int = 0
    epoch: int = field(default_factory=lambda: _epoch())
    cancel_at: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None


class FakeBatches:
    """The Batch API state of one fake server (one per :class:`FakeDashScope`, see :func:`batches_of`).

    Times are seconds on the fake's clock: ``validate_delay`` in ``validating``, ``row_delay`` per
    line in ``in_progress`` (request_counts grow with it), ``finalize_delay``, ``cancel_delay``
    in ``cancelling``; ``expire_after`` ends the completion window.
    """

    def __init__(
        self,
        *,
        realtime: bool = False,
        validate_delay: float = 0.0,
        row_delay: float = 0.0,
        finalize_delay: float = 0.0,
        cancel_delay: float = 0.0,
        expire_after: float = 24 * 3600.0,
        poll_step: float = 0.0,
        max_bytes: int = MAX_BYTES,
        max_lines: int = MAX_LINES,
    ) -> None:
        self.realtime = realtime
        self.validate_delay = validate_delay
        self.row_delay = row_delay
        self.finalize_delay = finalize_delay
        self.cancel_delay = cancel_delay
        self.expire_after = expire_after
        self.poll_step = poll_step
        self.max_bytes = max_bytes
        self.max_lines = max_lines
        self._offset = 0.0
        self._lock = threading.RLock()
        self.files: dict[str, StoredFile] = {}
        self.batches: dict[str, FakeBatch] = {}
        self._raw: deque[tuple[int, bytes, str]] = deque()

    def configure(self, **settings: Any) -> FakeBatches:
        """Change delays or limits (names as in the constructor); returns ``self``."""
        for name, value in settings.items():
            if name.startswith("_") or not hasattr(self, name) or name in ("files", "batches"):
                raise TypeError(f"unknown FakeBatches setting {name!r}")
            setattr(self, name, value)
        return self

    # -- the clock ----------------------------------------------------------------------------
    def now(self) -> float:
        return self._offset + (time.monotonic() if self.realtime else 0.0)

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (every batch's state follows on its next read)."""
        with self._lock:
            self._offset += seconds

    def queue_raw(self, status: int, body: bytes, content_type: str = _JSON) -> None:
        """Answer the next Batch API request with exactly these bytes (hostile-server tests)."""
        with self._lock:
            self._raw.append((status, body, content_type))

    def _next_raw(self) -> tuple[int, bytes, str] | None:
        with self._lock:
            return self._raw.popleft() if self._raw else None

    # -- files --------------------------------------------------------------------------------
    def add_file(self, data: bytes, filename: str = "input.jsonl", purpose: str = "batch") -> StoredFile:
        with self._lock:
            stored = StoredFile(f"file-batch-{uuid.uuid4().hex[:24]}", filename, purpose, data, _epoch())
            self.files[stored.id] = stored
            return stored

    # -- batches ------------------------------------------------------------------------------
    def create(self, input_file_id: str, metadata: Any = None) -> FakeBatch:
        with self._lock:
            batch = FakeBatch(f"batch_{uuid.uuid4()}", input_file_id, self.now(), metadata)
            self.batches[batch.id] = batch
            return batch

    def get(self, batch_id: str) -> FakeBatch | None:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is not None:
                self._update(batch)
            return batch

    def cancel(self, batch: FakeBatch) -> None:
        with self._lock:
            self._update(batch)
            if batch.status not in _TERMINAL and batch.cancel_at is None:
                batch.cancel_at = self.now()
                batch.status = "cancelling"
                batch.stamps["cancelling"] = batch.cancel_at

    def _update(self, batch: FakeBatch) -> None:
        """Bring ``batch`` to the state its clock marks say it is in now (idempotent)."""
        if batch.status in _TERMINAL:
            return
        now = self.now()
        validated = batch.created + self.validate_delay
        expires = batch.created + self.expire_after
        stop = min(now, expires, batch.cancel_at if batch.cancel_at is not None else now)
        if stop < validated:
            if batch.cancel_at is not None:
                self._cancel_if_due(batch, now)
            elif now >= expires:
                self._end(batch, "expired", expires)
            return
        if "in_progress" not in batch.stamps and not self._validate(batch, validated):
            return
        rows = len(batch.lines)
        ran = rows if self.row_delay <= 0 else min(rows, int((stop - validated) / self.row_delay))
        self._run_rows(batch, ran)
        processed_at = validated + rows * max(self.row_delay, 0.0)
        done_at = processed_at + self.finalize_delay
        if batch.cancel_at is not None:
            self._cancel_if_due(batch, now)
        elif done_at <= min(now, expires):
            batch.stamps.setdefault("finalizing", processed_at)
            self._end(batch, "completed", done_at)
        elif now >= expires:
            self._end(batch, "expired", expires)
        elif now >= processed_at:
            batch.status = "finalizing"
            batch.stamps.setdefault("finalizing", processed_at)

    def _cancel_if_due(self, batch: FakeBatch, now: float) -> None:
        assert batch.cancel_at is not None
        if now >= batch.cancel_at + self.cancel_delay:
            self._end(batch, "cancelled", batch.cancel_at + self.cancel_delay)

    def _validate(self, batch: FakeBatch, at: float) -> bool:
        stored = self.files.get(batch.input_file_id)
        lines, errors = _parse_input(stored.data if stored else b"", self.max_lines)
        if errors:
            batch.errors = errors
            self._end(batch, "failed", at)
            return False
        batch.lines = lines
        batch.status = "in_progress"
        batch.stamps["in_progress"] = at
        return True

    def _run_rows(self, batch: FakeBatch, upto: int) -> None:
        for line in batch.lines[batch.processed : upto]:
            line["result"] = _answer_row(line)
            if line["result"]["error"] is None:
                batch.completed += 1
            else:
                batch.failed += 1
        batch.processed = max(batch.processed, upto)

    def _end(self, batch: FakeBatch, status: str, at: float) -> None:
        batch.status = status
        batch.stamps[status] = at
        if status == "failed":
            return
        if status == "expired":
            for line in batch.lines[batch.processed :]:
                line["result"] = _expired_row(line)
                batch.failed += 1
        results = [line["result"] for line in batch.lines if "result" in line]
        ok = [r for r in results if r["error"] is None]
        bad = [r for r in results if r["error"] is not None]
        if ok:
            batch.output_file_id = self._result_file(batch, ok, "output").id
        if bad:
            batch.error_file_id = self._result_file(batch, bad, "error").id

    def _result_file(self, batch: FakeBatch, rows: list[dict[str, Any]], kind: str) -> StoredFile:
        data = b"".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for r in rows)
        return self.add_file(data, f"{batch.id}_{kind}.jsonl", "batch_output")

    def object(self, batch: FakeBatch) -> dict[str, Any]:
        """The batch as ``GET /batches/{id}`` shows it (times in Unix seconds)."""

        def at(name: str) -> int | None:
            stamp = batch.stamps.get(name)
            return None if stamp is None else batch.epoch + int(stamp - batch.created)

        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": ENDPOINT,
            "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
            "input_file_id": batch.input_file_id,
            "completion_window": "24h",
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": batch.epoch,
            "in_progress_at": at("in_progress"),
            "expires_at": batch.epoch + int(self.expire_after),
            "finalizing_at": at("finalizing"),
            "completed_at": at("completed"),
            "failed_at": at("failed"),
            "expired_at": at("expired"),
            "cancelling_at": at("cancelling"),
            "cancelled_at": at("cancelled"),
            "request_counts": {"total": len(batch.lines), "completed": batch.completed, "failed": batch.failed},
            "metadata": batch.metadata,
        }


def _epoch() -> int:
    return int(time.time())


# -- input validation ---------------------------------------------------------------------------


def _line_error(number: int, code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "param": None, "line": number}


def _parse_input(data: bytes, max_lines: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The lines of an input file, or the validation errors that fail the batch (linear)."""
    raw_lines = [line for line in data.split(b"\n") if line.strip()]
    if not raw_lines:
        return [], [_line_error(0, "InvalidFile", "The input file is empty.")]
    if len(raw_lines) > max_lines:
        return [], [_line_error(0, "InvalidFile.TooManyLines",
                                f"The input file has {len(raw_lines)} lines; the limit is {max_lines}.")]
    lines: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    models: set[str] = set()
    for number, raw in enumerate(raw_lines, 1):
        line, problem = _check_line(raw, seen)
        if problem is not None:
            if len(errors) < _MAX_ERRORS:
                errors.append(_line_error(number, "InvalidFile.Line", problem))
            continue
        assert line is not None
        models.add(str(line["body"]["model"]))
        lines.append(line)
    if not errors and len(models) > 1:
        errors.append(_line_error(0, "InvalidFile.MixedModels",
                                  f"All lines of a batch must use one model; found {len(models)}."))
    if not errors and TEST_MODEL in models:
        size = sum(len(r) + 1 for r in raw_lines)
        if len(lines) > TEST_MAX_LINES or size > TEST_MAX_BYTES:
            errors.append(_line_error(0, "InvalidFile.TestModelLimit",
                                      f"{TEST_MODEL} answers test files of at most {TEST_MAX_LINES} lines and 1 MB."))
    return lines, errors


def _check_line(raw: bytes, seen: set[str]) -> tuple[dict[str, Any] | None, str | None]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, "The line is not valid JSON."
    if not isinstance(value, dict):
        return None, "The line must be a JSON object."
    custom_id = value.get("custom_id")
    body = value.get("body")
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > 64:
        return None, "custom_id must be a string of 1 to 64 characters."
    if custom_id in seen:
        return None, f"custom_id {custom_id!r} is used twice."
    if value.get("method") != "POST" or value.get("url") != ENDPOINT:
        return None, f'Each line needs "method": "POST" and "url": "{ENDPOINT}".'
    if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not isinstance(body.get("messages"), list):
        return None, 'body must be a chat request with "model" and "messages".'
    seen.add(custom_id)
    return {"custom_id": custom_id, "body": body}, None


# -- row answers ------------------------------------------------------------------------------


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _answer_row(line: dict[str, Any]) -> dict[str, Any]:
    body = line["body"]
    prompt = _last_user_text(body["messages"])
    request_id = str(uuid.uuid4())
    row: dict[str, Any] = {"id": f"batch_req_{uuid.uuid4().hex[:24]}", "custom_id": line["custom_id"]}
    if FAIL_MARK in prompt:
        error = {"code": "DataInspectionFailed", "message": "Input data may contain inappropriate content."}
        row["response"] = {"status_code": 400, "request_id": request_id,
                           "body": {"error": {**error, "type": "invalid_request_error", "param": None},
                                    "request_id": request_id}}
        row["error"] = error
        return row
    model = body["model"]
    answer = TEST_ANSWER if model == TEST_MODEL else f"Answer to: {prompt}"
    prompt_tokens = max(1, len(prompt) // 4)
    completion_tokens = max(1, len(answer) // 4)
    row["response"] = {"status_code": 200, "request_id": request_id, "body": {
        "id": f"chatcmpl-{request_id}", "object": "chat.completion", "created": _epoch(), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop",
                     "logprobs": None}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
        "system_fingerprint": None,
    }}
    row["error"] = None
    return row


def _expired_row(line: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"batch_req_{uuid.uuid4().hex[:24]}", "custom_id": line["custom_id"], "response": None,
            "error": {"code": "batch_expired",
                      "message": "This request could not be executed before the completion window expired."}}


# -- HTTP ---------------------------------------------------------------------------------------

_registry: weakref.WeakKeyDictionary[FakeDashScope, FakeBatches] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def batches_of(fake: FakeDashScope) -> FakeBatches:
    """The Batch API state of ``fake`` (made on first use; configure it before submitting)."""
    with _registry_lock:
        found = _registry.get(fake)
        if found is None:
            found = _registry[fake] = FakeBatches()
        return found


def _error(code: str, message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code},
            "request_id": str(uuid.uuid4())}


Reply = tuple[int, Any]


def serve(handler: _Handler) -> bool:
    """Answer ``handler``'s request if it is a Batch API route; False leaves it to the server."""
    path = handler.path.split("?", 1)[0].rstrip("/")
    if not (path == COMPATIBLE_PREFIX + "/files" or path.startswith(COMPATIBLE_PREFIX + "/files/")
            or path == COMPATIBLE_PREFIX + "/batches" or path.startswith(COMPATIBLE_PREFIX + "/batches/")):
        return False
    state = batches_of(handler.fake)
    too_big = handler.command == "POST" and int(handler.headers.get("Content-Length") or 0) > state.max_bytes
    body = b"" if handler.command != "POST" or too_big else handler._read_body()
    request = handler._record(body)
    raw = state._next_raw()
    if raw is not None:
        handler._send(raw[0], raw[1], raw[2])
        return True
    if handler._check_auth(request) is not None:
        _send_reply(handler, (401, _error("invalid_api_key", "Incorrect API key provided.")))
        return True
    if too_big:
        handler.close_connection = True  # the body was not read: the connection cannot be reused
        _send_reply(handler, (400, _error("InvalidFile.TooLarge", f"The file is larger than {state.max_bytes} bytes.")))
        return True
    route = path[len(COMPATIBLE_PREFIX):].strip("/").split("/")
    _send_reply(handler, _route(state, handler.command, route, body, handler.headers.get("Content-Type") or ""))
    return True


def _send_reply(handler: _Handler, reply: Reply) -> None:
    status, payload = reply
    if isinstance(payload, bytes):
        handler._send(status, payload, "application/octet-stream")
    else:
        handler._send(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"), _JSON)


def _route(state: FakeBatches, method: str, route: list[str], body: bytes, content_type: str) -> Reply:
    handlers: dict[tuple[str, str, int], Callable[[], Reply]] = {
        ("POST", "files", 1): lambda: _upload(state, body, content_type),
        ("GET", "files", 2): lambda: _file(state, route[1], content=False),
        ("GET", "files", 3): lambda: _file(state, route[1], content=route[2] == "content"),
        ("POST", "batches", 1): lambda: _create(state, body),
        ("GET", "batches", 1): lambda: _list(state),
        ("GET", "batches", 2): lambda: _retrieve(state, route[1]),
        ("POST", "batches", 3): lambda: _cancel(state, route[1]) if route[2] == "cancel" else _not_found(),
    }
    chosen = handlers.get((method, route[0], len(route)))
    if chosen is None:
        return 404, _error("InvalidURL", "Invalid URL provided in your request.")
    return chosen()


def _not_found() -> Reply:
    return 404, _error("InvalidURL", "Invalid URL provided in your request.")


def _upload(state: FakeBatches, body: bytes, content_type: str) -> Reply:
    fields = _multipart(body, content_type)
    if fields is None or "file" not in fields:
        return 400, _error("InvalidParameter", "Upload the file as multipart/form-data with a 'file' field.")
    purpose = fields.get("purpose", (None, b""))[1].decode("utf-8", "replace")
    if purpose != "batch":
        return 400, _error("InvalidParameter", f"purpose must be 'batch', got {purpose[:40]!r}.")
    filename, data = fields["file"]
    return 200, state.add_file(data, filename or "input.jsonl").object()


def _multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]] | None:
    """The fields of a multipart/form-data body: name → (filename, bytes); None if not one."""
    if "multipart/form-data" not in content_type.lower():
        return None
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        return None
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = (part.get_filename(), payload)
    return fields


def _file(state: FakeBatches, file_id: str, *, content: bool) -> Reply:
    stored = state.files.get(file_id)
    if stored is None:
        return 404, _error("NotFound", f"No file with id {file_id[:80]!r}.")
    return (200, stored.data) if content else (200, stored.object())


def _create(state: FakeBatches, body: bytes) -> Reply:
    try:
        request = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        request = None
    if not isinstance(request, dict):
        return 400, _error("InvalidParameter", "The body must be a JSON object.")
    if request.get("endpoint") != ENDPOINT:
        return 400, _error("InvalidParameter", f"endpoint must be {ENDPOINT!r}.")
    if request.get("completion_window") != "24h":
        return 400, _error("InvalidParameter", "completion_window must be '24h'.")
    file_id = request.get("input_file_id")
    stored = state.files.get(file_id) if isinstance(file_id, str) else None
    if stored is None or stored.purpose != "batch":
        return 400, _error("InvalidParameter", "input_file_id must name an uploaded file with purpose 'batch'.")
    return 200, state.object(state.create(stored.id, request.get("metadata")))


def _list(state: FakeBatches) -> Reply:
    with state._lock:
        ids = list(state.batches)
    data = [state.object(b) for b in (state.get(i) for i in reversed(ids)) if b is not None]
    return 200, {"object": "list", "data": data, "has_more": False,
                 "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}


def _retrieve(state: FakeBatches, batch_id: str) -> Reply:
    if state.poll_step:
        state.advance(state.poll_step)
    batch = state.get(batch_id)
    if batch is None:
        return 404, _error("NotFound", f"No batch with id {batch_id[:80]!r}.")
    return 200, state.object(batch)


def _cancel(state: FakeBatches, batch_id: str) -> Reply:
    batch = state.get(batch_id)
    if batch is None:
        return 404, _error("NotFound", f"No batch with id {batch_id[:80]!r}.")
    if batch.status in _TERMINAL:
        return 400, _error("InvalidParameter", f"A batch in state {batch.status!r} cannot be cancelled.")
    state.cancel(batch)
    return 200, state.object(batch)
