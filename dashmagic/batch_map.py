"""Many prompts at once (:func:`dashmagic.map`): threads, one shared limiter, progress, resume.

The main thread owns the batch: it feeds rows to a ``ThreadPoolExecutor`` a few at a time (so
10,000 prompts never become 10,000 queued futures), collects results into their input slot,
and drives the progress view. Each worker builds one row's call, answers it from the record
file when it was already answered, else runs it through the Client (whose limiter paces every
thread and waits out 429s) and appends the finished row to the record file.

Ctrl-C lands in the main thread: it sets the batch's stop event (waits in the limiter see it
within 0.1 s and end their row as interrupted), keeps every finished row, marks each unfinished
one interrupted with the partial trace its worker last saw, and returns without waiting for a
socket that is still reading. Nothing finished is lost: finished rows are already in the
record file, and a row that completes after the stop is still appended to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, DashmagicError, Interrupted, RecordingMiss
from .limits import stopping
from .trace import ErrorInfo, RequestInfo, Trace

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .client import Client, ClientMapKwargs
    from .request import Call

__all__ = ["Traces", "RowLog", "map_prompts", "to_frame", "parse_json_answer", "row_key", "MAX_CONCURRENCY"]

MAX_CONCURRENCY = 64
_MAP_KEYS = ("concurrency", "template", "rows", "record", "raise_errors", "progress", "update_interval", "live",
             "namespace")
_FENCE = re.compile(r"```(?:json|JSON)?[ \t]*\n(.*?)```", re.S)


class Traces(list[Trace]):
    """The results of a batch: a plain list of Traces in input order, plus the rows' labels
    (``labels``, e.g. the DataFrame's index) so :func:`to_frame` lines up with the input frame."""

    labels: list[Any] | None = None
    sent: int = 0  # rows that went to the service in this run (not from the record file)


# -- the record file ---------------------------------------------------------------------------


def row_key(call: Call) -> str:
    """A row's identity: the hash of its request fingerprint (no host, no key, no volatile field)."""
    from .recording.fingerprint import fingerprint, fingerprint_key

    fp = fingerprint("POST", call.url, call.headers, call.body_bytes())
    return hashlib.sha256(fingerprint_key(fp).encode("utf-8")).hexdigest()


class RowLog:
    """``record=PATH``: one JSON line per finished row, appended and fsync'd as each completes.

    ``{"dashmagic_rows": 1, "key": "<sha256>", "row": 12, "trace": {...}}``. Only complete rows
    count as answered (an error is worth retrying). A torn last line (a crash mid-write) is cut
    off when the file is opened; any other bad line is a ConfigError naming it.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True, secrets: tuple[str, ...] = ()) -> None:
        from .trace_json import from_json

        self.path = Path(os.fspath(path)).expanduser()
        self.secrets = secrets
        self.answers: dict[str, Trace] = {}
        self._lock = threading.Lock()
        if not self.path.exists():
            if not create:
                raise ConfigError(f"The record file {str(self.path)!r} does not exist; nothing to replay.")
            return
        data = self._read_and_trim()
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                key, trace = item["key"], from_json(item["trace"])
                if item.get("dashmagic_rows") != 1 or not isinstance(key, str):
                    raise ValueError("not a dashmagic row")
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(
                    f"The record file {str(self.path)!r} line {number} is damaged ({str(exc)[:120]}); "
                    "remove that line to go on (the rows in it will be asked again)."
                ) from None
            if trace.status == "complete":
                self.answers[key] = trace

    def _read_and_trim(self) -> bytes:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            # A crash cut the last append short: drop the fragment, or the next append would
            # be glued to it and both rows lost.
            with self.path.open("r+b") as fh:
                fh.truncate(end)
                os.fsync(fh.fileno())
            data = data[:end]
        return data

    def append(self, key: str, row: int, trace: Trace) -> None:
        from .recording.redact import scrub
        from .trace_json import to_json

        line = json.dumps({"dashmagic_rows": 1, "key": key, "row": row, "trace": to_json(trace)},
                          ensure_ascii=False, separators=(",", ":"))
        data = (scrub(line, list(self.secrets)) + "\n").encode("utf-8")
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)  # a finished row survives a crash or a power cut
            finally:
                os.close(fd)
            self.answers[key] = trace


# -- the rows ----------------------------------------------------------------------------------


class _Row:
    """A mapping row for ``{{ row.col }}`` (attribute access) as well as ``{{ row['col'] }}``."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f"the row has no column {name!r}") from None

    def __getitem__(self, name: str) -> Any:
        return self._data[name]


def _prompts(prompts: Any, template: str | None, rows: Any) -> tuple[Iterator[tuple[Any, Any]], int | None]:
    """(label, prompt or template namespace) pairs, and the count when it is known."""
    if template is not None:
        if prompts is not None:
            raise ConfigError("Give either prompts or template= with rows=, not both.")
        if not isinstance(template, str) or not template.strip():
            raise ConfigError("template= must be the prompt text, with {{ row.col }} for each row's values.")
        if rows is None:
            raise ConfigError("template= needs rows= (a DataFrame, or a list of dicts) to fill it from.")
        return _rows_of(rows), _length(rows)
    if rows is not None:
        raise ConfigError("rows= needs template= (e.g. template='Classify: {{ row.review }}').")
    if prompts is None or isinstance(prompts, (str, bytes, Mapping)):
        raise ConfigError("map() needs a list of prompts (or a pandas Series), or template= with rows=; "
                          "for one prompt use run().")
    labels = list(prompts.index) if _is_pandas(prompts) else None
    values = prompts.tolist() if _is_pandas(prompts) else prompts
    if not isinstance(values, Iterable):
        raise ConfigError(f"prompts must be an iterable of strings or message lists, got {type(prompts).__name__}.")
    pairs = zip(labels, values) if labels is not None else enumerate(values)
    return ((label, (value,)) for label, value in pairs), _length(prompts)


def _rows_of(rows: Any) -> Iterator[tuple[Any, Any]]:
    if _is_pandas(rows) and hasattr(rows, "iterrows"):
        for label, series in rows.iterrows():
            yield label, {"row": series, "index": label}
        return
    for number, item in enumerate(rows):
        row = _Row(item) if isinstance(item, Mapping) else item
        yield number, {"row": row, "index": number}


def _is_pandas(value: Any) -> bool:
    module = type(value).__module__
    return module == "pandas" or module.startswith("pandas.")


def _length(value: Any) -> int | None:
    try:
        return len(value)
    except TypeError:
        return None


def _prompt_of(item: Any, template: str | None, namespace: Mapping[str, Any]) -> Any:
    if template is None:
        return item[0]
    from .cell import check_prompt, interpolate

    return check_prompt(interpolate(template, {**namespace, **item}).strip())


# -- the batch ---------------------------------------------------------------------------------


class _Batch:
    def __init__(self, client: Client, call: dict[str, Any], log: RowLog | None, replay: bool,
                 template: str | None, namespace: Mapping[str, Any], progress: Any) -> None:
        self.client, self.call, self.log, self.replay = client, call, log, replay
        self.template, self.namespace = template, namespace
        self.progress = progress
        self.stop = threading.Event()
        self.latest: dict[int, Trace] = {}  # the newest snapshot of each row in flight
        self.sent = 0
        self._lock = threading.Lock()

    def row(self, number: int, item: Any) -> tuple[Trace, bool]:
        """One row's final trace, and whether it came from the record file. Never raises."""
        with stopping(self.stop):
            if self.stop.is_set():
                return _not_sent(self.call, "Stopped before this row was sent."), False
            try:
                call = self.client.build(_prompt_of(item, self.template, self.namespace), stream=False, **self.call)
            except DashmagicError as exc:
                return _failed(self.call, exc), False
            key = row_key(call) if self.log is not None else ""
            if self.log is not None and key in self.log.answers:
                return self.log.answers[key], True
            if self.replay:
                where = str(self.log.path) if self.log is not None else "the record file"
                return _failed(self.call, RecordingMiss(
                    f"Row {number} is not answered in {where}; run the batch once with record= (not replay) "
                    "to answer it."), call), False
            with self._lock:
                self.sent += 1
            return self._send(number, call, key), False

    def _send(self, number: int, call: Call, key: str) -> Trace:
        def retrying(trace: Trace) -> None:
            self.latest[number] = trace
            self.progress.retrying(number)

        final: Trace | None = None
        try:
            for final in self.client.execute(call, raise_errors=False, on_retry=retrying):
                self.latest[number] = final
        except DashmagicError as exc:  # e.g. the key is missing: one line, on this row
            final = _failed(self.call, exc, call)
        finally:
            self.latest.pop(number, None)
        if final is None:  # pragma: no cover - execute() always yields
            final = _failed(self.call, Interrupted("No reply."), call)
        if final.ok and self.log is not None:
            self.log.append(key, number, final)
        return final


def _request_info(call_options: Mapping[str, Any], call: Call | None) -> RequestInfo:
    if call is not None:
        return call.info
    from ._constants import DEFAULT_MODEL

    return RequestInfo(model=str(call_options.get("model") or DEFAULT_MODEL))


def _failed(call_options: Mapping[str, Any], exc: DashmagicError, call: Call | None = None) -> Trace:
    error = ErrorInfo(type=type(exc).__name__, message=str(exc), status_code=getattr(exc, "status_code", None),
                      code=getattr(exc, "code", None), request_id=getattr(exc, "request_id", None))
    return Trace(request=_request_info(call_options, call), status="error", error=error)


def _not_sent(call_options: Mapping[str, Any], message: str) -> Trace:
    return Trace(request=_request_info(call_options, None), status="interrupted",
                 error=ErrorInfo(type="Interrupted", message=message))


def _interrupted(partial: Trace | None, call_options: Mapping[str, Any]) -> Trace:
    if partial is None:
        return _not_sent(call_options, "Stopped before this row was answered.")
    return partial.replace(status="interrupted", error=ErrorInfo(
        type="Interrupted", message="Stopped by the user while this row was in flight; the partial trace is kept."))


def map_prompts(client: Client, prompts: Any = None, **options: Unpack[ClientMapKwargs]) -> Traces:
    """:meth:`Client.map` (see :func:`dashmagic.map` for the arguments)."""
    from .progress import Progress, Reporter, choose_view

    opts: dict[str, Any] = dict(options)
    batch_options = {k: opts.pop(k) for k in list(opts) if k in _MAP_KEYS}
    concurrency = batch_options.get("concurrency", 8)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ConfigError(f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY}, got {concurrency!r}.")
    template = batch_options.get("template")
    items, total = _prompts(prompts, template, batch_options.get("rows"))
    record = batch_options.get("record")
    replay = client.replay and record is not None
    log = None if record is None else RowLog(record, create=not replay, secrets=_secrets(client))
    progress = Progress(total)
    reporter = Reporter(choose_view(batch_options.get("progress"), live=batch_options.get("live")),
                        interval=float(batch_options.get("update_interval", 0.1)))
    namespace = dict(batch_options.get("namespace") or {})
    batch = _Batch(client, opts, log, replay, template, namespace, progress)
    results = _run(batch, items, concurrency, progress, reporter)
    progress.finish()
    reporter.close(progress.state())
    results.sent = batch.sent
    if batch_options.get("raise_errors"):
        _raise_first(results)
    return results


def _secrets(client: Client) -> tuple[str, ...]:
    """The key, so the record file can never hold it (traces are scrubbed already; belt and braces)."""
    if client.replay:
        return ()
    try:
        return (client.key().reveal(),)
    except ConfigError:
        return ()  # no key: every row will say so, and nothing secret can be written


def _run(batch: _Batch, items: Iterator[tuple[Any, Any]], concurrency: int, progress: Any, reporter: Any) -> Traces:
    slots: list[Trace | None] = []
    labels: list[Any] = []
    pending: dict[Future[tuple[Trace, bool]], int] = {}
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="dashmagic-map")
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) < concurrency * 2:
                nxt = next(items, None)
                if nxt is None:
                    exhausted = True
                    break
                label, item = nxt
                number = len(slots)
                slots.append(None)
                labels.append(label)
                pending[pool.submit(batch.row, number, item)] = number
            if not pending:
                break
            done, _ = wait(pending, timeout=reporter.interval, return_when=FIRST_COMPLETED)
            for future in done:
                number = pending.pop(future)
                trace, from_record = future.result()
                slots[number] = trace
                progress.finished_row(number, trace, from_record=from_record)
            reporter.update(progress.state())
    except KeyboardInterrupt:
        batch.stop.set()
        for future, number in pending.items():
            future.cancel()
            if future.done() and not future.cancelled():
                trace, from_record = future.result()
                slots[number] = trace
            else:
                slots[number] = _interrupted(batch.latest.get(number), batch.call)
            progress.finished_row(number, slots[number] or _not_sent(batch.call, ""))
        if progress.total is not None:  # a sized input: still one result per prompt
            for label, _item in items:
                slots.append(_not_sent(batch.call, "Stopped before this row was sent."))
                labels.append(label)
    finally:
        # Do not wait for a socket still reading: the stop event ends every limiter wait, and a
        # row that completes after this is still appended to the record file.
        pool.shutdown(wait=False, cancel_futures=True)
    results = Traces(slot if slot is not None else _not_sent(batch.call, "Not run.") for slot in slots)
    results.labels = labels
    return results


def _raise_first(results: Traces) -> None:
    for number, trace in enumerate(results):
        if trace.status in ("error", "interrupted"):
            info = trace.error
            message = info.message if info is not None else "the row failed"
            error: DashmagicError = Interrupted(message) if trace.status == "interrupted" else _error_of(info)
            error.trace = trace
            error.traces = results  # type: ignore[attr-defined]
            error.row = number  # type: ignore[attr-defined]
            raise error


def _error_of(info: ErrorInfo | None) -> DashmagicError:
    from . import errors

    if info is None:
        return DashmagicError("A row failed.")
    kind = getattr(errors, info.type, None)
    message = f"Row failed: {info.message}"
    if isinstance(kind, type) and issubclass(kind, errors.ApiError):
        return kind(message, status_code=info.status_code, code=info.code, request_id=info.request_id)
    if isinstance(kind, type) and issubclass(kind, DashmagicError) and not issubclass(kind, errors.TransportError):
        return kind(message)
    if isinstance(kind, type) and issubclass(kind, errors.TransportError):
        return errors.TransportError(message)
    return DashmagicError(message)


# -- results as a DataFrame --------------------------------------------------------------------


def parse_json_answer(text: str | None) -> Any:
    """The JSON object in an answer: inside a ```json fence, the whole answer, or from its first
    ``{``; None when there is none. One attempt each, so it is linear in the answer's length."""
    if not text:
        return None
    decoder = json.JSONDecoder()
    fence = _FENCE.search(text)
    candidates = [fence.group(1).strip()] if fence else []
    candidates.append(text.strip())
    brace = text.find("{")
    if brace >= 0:
        candidates.append(text[brace:])
    for candidate in candidates:
        try:
            value, _ = decoder.raw_decode(candidate)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, (dict, list)):
            return value
    return None


def _asked_for_json(trace: Trace) -> bool:
    return "json" in trace.request.prompt.lower()


def to_frame(traces: Iterable[Trace], json: bool | str | None = "auto", index: Any = None) -> Any:  # noqa: A002
    """A pandas DataFrame of a batch: answer, status, tokens, request id, error, and the parsed
    JSON (``json``: "auto" when the prompt mentions JSON, True, False); a JSON object's fields
    become columns too. The index is the input rows' (a DataFrame's own), so
    ``df["label"] = to_frame(ts)["answer"]`` lines up."""
    try:
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        raise ConfigError("to_frame() needs pandas: pip install pandas (map() itself does not).") from None
    if json not in ("auto", True, False, None):
        raise ConfigError(f"json= must be 'auto', True or False, got {json!r}.")
    items = list(traces)
    labels = index if index is not None else getattr(traces, "labels", None)
    records = []
    for trace in items:
        record: dict[str, Any] = {
            "answer": trace.answer, "status": trace.status, "input_tokens": trace.usage.input_tokens,
            "output_tokens": trace.usage.output_tokens, "request_id": trace.request_id,
            "error": trace.error.message if trace.error is not None else None,
        }
        if json is True or (json == "auto" and _asked_for_json(trace)):
            record["json"] = parse_json_answer(trace.answer)
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=_columns(records))
    if labels is not None and len(labels) == len(frame):
        frame.index = pd.Index(list(labels))
    _expand_json(frame)
    return frame


def _columns(records: list[dict[str, Any]]) -> list[str]:
    base = ["answer", "status", "input_tokens", "output_tokens", "request_id", "error"]
    return base + (["json"] if any("json" in r for r in records) else [])


def _expand_json(frame: Any) -> None:
    """Each JSON object field becomes a column (unless it would shadow one of ours)."""
    if "json" not in frame.columns:
        return
    fields: dict[str, None] = {}
    for value in frame["json"]:
        if isinstance(value, dict):
            fields.update(dict.fromkeys(k for k in value if isinstance(k, str)))
    for name in fields:
        if name not in frame.columns:
            frame[name] = [v.get(name) if isinstance(v, dict) else None for v in frame["json"]]
