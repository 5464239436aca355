"""The recording file: JSON Lines, read (strictly: a recording is untrusted input) and appended.

::

    {"dashmagic_recording": 2, "note": "..."}                        # header, first line
    {"type": "exchange",
     "request": {"method", "path", "headers", "body"},               # the fingerprint
     "response": {"status", "headers", "chunks" | "chunks_b64", "complete", ["error"]},
     "recorded_at": "2025-01-01T00:00:00+00:00"}
    {"type": "figure", "url", "status", "content_type", "body_b64", ["location"], ["note"]}

``request`` is a :func:`~dashmagic.recording.fingerprint.fingerprint` (format 1 stored two of
its headers as ``plugins`` and ``stream``; such lines are still read, see :mod:`.legacy`).
``complete`` is false when the body was cut: the connection broke (then ``error`` says how),
the caller stopped reading early, or an event stream ended in the middle of an event.

Every damaged line (not JSON, cut short, a wrong type anywhere) is a :class:`ConfigError` of one
line naming the file and the line, raised when the recording is loaded, never mid-reply.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import os
import threading
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Union

from ..config import Secret
from ..errors import ConfigError
from .fingerprint import Fingerprint, canonical_request, fingerprint_key
from .legacy import upgrade_request
from .redact import redact_chunks, scrub

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = [
    "FORMAT_VERSION",
    "DEMO_DIR",
    "ERROR_KINDS",
    "Exchange",
    "Figure",
    "PathLike",
    "Recording",
    "Recordings",
    "Source",
    "append_line",
    "check_record_destination",
    "encode_chunks",
    "ends_mid_event",
    "ensure_file",
    "figure_record",
    "kept_headers",
    "parse_recording",
    "read_recording",
    "record_figure",
    "resolve_recordings",
    "source_stamp",
]

FORMAT_VERSION = 2
DEMO_DIR = Path(__file__).resolve().parent.parent / "demo"
#: How a recorded body can end early; replay raises the same kind of error after the chunks.
ERROR_KINDS = ("connection_broken", "read_timeout")
#: Response headers worth keeping; everything else (dates, cookies, server names) is noise.
_KEPT_HEADERS = ("content-type", "retry-after", "x-request-id")
_KEPT_PREFIX = "x-dashscope-"
_DEFAULT_NOTE = (
    "dashmagic recording: HTTP exchanges with DashScope, one JSON object per line "
    "(replay with --replay PATH or DASHMAGIC_MODE=replay). The API key is never stored."
)

PathLike = Union[str, "os.PathLike[str]"]
Recordings = Union[PathLike, Sequence[PathLike], None]
#: A file on disk, or one bundled with the package (an importlib.resources Traversable).
Source = Union[Path, "Traversable"]


@dataclass(frozen=True)
class Exchange:
    request: Fingerprint
    status: int
    headers: dict[str, str]
    chunks: tuple[bytes, ...]
    complete: bool
    error: dict[str, str] | None
    source: str


@dataclass(frozen=True)
class Figure:
    url: str
    status: int
    content_type: str
    body: bytes
    location: str | None = None


@dataclass(frozen=True)
class Recording:
    """Everything one or more files hold, in file order."""

    sources: tuple[str, ...]
    exchanges: tuple[Exchange, ...]
    figures: tuple[Figure, ...]


# -- reading -----------------------------------------------------------------------------------


class _Line:
    """Where a value came from, so every complaint names the file and the line."""

    def __init__(self, name: str, number: int) -> None:
        self.name, self.number = name, number

    def fail(self, what: str) -> NoReturn:
        raise ConfigError(
            f"The recording {self.name!r} is damaged at line {self.number}: {what}. "
            "Record it again, or remove that line."
        )

    def mapping(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(f"{where} is {_kind(value)}, not an object")
        return value

    def text(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            self.fail(f"{where} is {_kind(value)}, not text")
        return value

    def texts(self, value: Any, where: str) -> list[str]:
        if not isinstance(value, list):
            self.fail(f"{where} is {_kind(value)}, not a list")
        return [self.text(item, f"{where}[{i}]") for i, item in enumerate(value)]

    def status(self, value: Any, where: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 100 <= value <= 599:
            self.fail(f"{where} is {_kind(value)}, not an HTTP status")
        return value

    def b64(self, value: str, where: str) -> bytes:
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            self.fail(f"{where} is not base64")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"[:40]
    if isinstance(value, str):
        return "text"
    return "a list" if isinstance(value, list) else "an object"


def _headers(line: _Line, value: Any, where: str) -> dict[str, str]:
    mapping = line.mapping(value if value is not None else {}, where)
    return {line.text(k, where): line.text(v, f"{where}[{k!r}]") for k, v in mapping.items()}


def _error(line: _Line, value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    error = line.mapping(value, "response.error")
    kind = line.text(error.get("kind"), "response.error.kind")
    if kind not in ERROR_KINDS:
        line.fail(f"response.error.kind {kind[:40]!r} is not one of {', '.join(ERROR_KINDS)}")
    return {"kind": kind, "message": line.text(error.get("message", ""), "response.error.message")}


def _chunks(line: _Line, reply: Mapping[str, Any]) -> tuple[bytes, ...]:
    if "chunks_b64" in reply:
        texts = line.texts(reply["chunks_b64"], "response.chunks_b64")
        return tuple(line.b64(t, f"response.chunks_b64[{i}]") for i, t in enumerate(texts))
    texts = line.texts(reply.get("chunks", []), "response.chunks")
    return tuple(t.encode("utf-8", "surrogatepass") for t in texts)


def _exchange(line: _Line, item: Mapping[str, Any]) -> Exchange:
    request = canonical_request(upgrade_request(line.mapping(item.get("request"), "request")))
    line.text(request["method"], "request.method")
    fingerprint_key(request)  # proves the request can be compared (no surrogates, not too deep)
    reply = line.mapping(item.get("response"), "response")
    complete = reply.get("complete", True)
    if not isinstance(complete, bool):
        line.fail(f"response.complete is {_kind(complete)}, not true or false")
    return Exchange(
        request=request, status=line.status(reply.get("status"), "response.status"),
        headers=_headers(line, reply.get("headers"), "response.headers"), chunks=_chunks(line, reply),
        complete=complete, error=_error(line, reply.get("error")), source=line.name,
    )


def _figure(line: _Line, item: Mapping[str, Any]) -> Figure:
    location = item.get("location")
    return Figure(
        url=line.text(item.get("url"), "url"), status=line.status(item.get("status"), "status"),
        content_type=line.text(item.get("content_type", ""), "content_type"),
        body=line.b64(line.text(item.get("body_b64", ""), "body_b64"), "body_b64"),
        location=None if location is None else line.text(location, "location"),
    )


def _check_version(line: _Line, version: Any) -> None:
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise ConfigError(
            f"The recording {line.name!r} has format version {repr(version)[:30]}; this dashmagic reads "
            f"versions up to {FORMAT_VERSION}. Upgrade dashmagic or record it again."
        )


def _parse(line: _Line, text: str, last: bool) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        line.fail("it is nested too deeply")
    except ValueError as exc:
        if last:
            line.fail("the line is cut short (the file ends inside it: was it still being written?)")
        line.fail(f"it is not valid JSON ({str(exc)[:80]})")


def parse_recording(text: str, name: str) -> tuple[list[Exchange], list[Figure]]:
    """Every exchange and figure of one file's text; one-line ConfigError on any damage."""
    exchanges: list[Exchange] = []
    figures: list[Figure] = []
    lines = text.split("\n")
    torn = not text.endswith("\n")  # a whole file ends with a newline: we write one per line
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        line = _Line(name, number)
        item = line.mapping(_parse(line, raw, torn and number == len(lines)), "the line")
        try:
            if "dashmagic_recording" in item:
                _check_version(line, item["dashmagic_recording"])
            elif item.get("type") == "exchange":
                exchanges.append(_exchange(line, item))
            elif item.get("type") == "figure":
                figures.append(_figure(line, item))
            # other types: written by a newer dashmagic, ignored
        except RecursionError:
            line.fail("it is nested too deeply")
    return exchanges, figures


def _read_text(source: Source) -> str:
    try:
        return source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"The recording file {str(source)!r} does not exist. Check the path given to --replay "
            "or DASHMAGIC_RECORDINGS, or record it first with --record PATH (needs an API key)."
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"The recording {str(source)!r} is not UTF-8 text (byte {exc.start}).") from None
    except OSError as exc:
        raise ConfigError(f"Cannot read the recording file {str(source)!r}: {exc.strerror or exc}.") from None


def read_recording(sources: Sequence[Source]) -> Recording:
    """Load and check every file, in order."""
    exchanges: list[Exchange] = []
    figures: list[Figure] = []
    for source in sources:
        more, pictures = parse_recording(_read_text(source), str(source))
        exchanges += more
        figures += pictures
    return Recording(tuple(str(s) for s in sources), tuple(exchanges), tuple(figures))


def source_stamp(source: Source) -> tuple[int, int]:
    """Changes when the file does (a bundled Traversable never does)."""
    if not isinstance(source, Path):
        return (0, 0)
    try:
        info = source.stat()
    except OSError:
        return (-1, -1)
    return (info.st_mtime_ns, info.st_size)


# -- writing -----------------------------------------------------------------------------------

_file_locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
_file_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _file_locks_guard:
        return _file_locks[str(path.resolve())]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _cannot_write(path: Path, exc: OSError) -> ConfigError:
    return ConfigError(f"Cannot write the recording file {str(path)!r}: {exc.strerror or exc}.")


def check_record_destination(path: PathLike | None) -> Path:
    """The file to record into, checked before anything is sent: ConfigError with the reason.

    Missing parent folders are created (as recording always did); the file is opened for
    appending, which proves it is writable whoever runs the kernel.
    """
    text = "" if path is None else os.fspath(path)
    if not text.strip():
        raise ConfigError("--record needs a file path: --record PATH, or DASHMAGIC_RECORDINGS=PATH.")
    if text == "demo":
        raise ConfigError(
            "'demo' names the bundled, read-only recordings; record to a file of your own, "
            "e.g. --record recordings/my-notebook.jsonl."
        )
    target = Path(text).expanduser()
    if target.is_dir():
        raise ConfigError(
            f"The recording path {text!r} is a folder: record to a file in it, e.g. {str(target / 'session.jsonl')!r}."
        )
    folder = next((p for p in target.parents if p.exists()), None)
    if folder is not None and not folder.is_dir():
        raise ConfigError(f"Cannot record to {text!r}: {str(folder)!r} is a file, not a folder.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise _cannot_write(target, exc) from None
    return target


def ensure_file(path: Path, note: str | None = None) -> None:
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
        raise _cannot_write(path, exc) from None


def append_line(path: Path, record: Mapping[str, Any], secrets: Sequence[str]) -> None:
    """Append one line: scrubbed, written with a single ``write`` in append mode, under a lock."""
    data = (scrub(json.dumps(record, ensure_ascii=False, separators=(", ", ": ")), secrets) + "\n").encode()
    ensure_file(path)  # (again: the file may have been deleted since the adapter was made)
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
            raise _cannot_write(path, exc) from None


def encode_chunks(chunks: Sequence[bytes]) -> dict[str, list[str]]:
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


def kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: value
        for name, value in headers.items()
        if name.lower() in _KEPT_HEADERS or name.lower().startswith(_KEPT_PREFIX)
    }


def ends_mid_event(body: bytes) -> bool:
    """An event stream must end on a blank line (the SSE spec); otherwise its last event is cut."""
    stripped = body.rstrip(b" \t")
    return bool(stripped) and not (stripped.endswith((b"\n\n", b"\r\n\r\n", b"\r\r", b"\n\r\n")))


def exchange_record(request: Fingerprint, status: int, headers: Mapping[str, str], chunks: list[bytes],
                    complete: bool, error: dict[str, str] | None, secrets: Sequence[str]) -> dict[str, Any]:
    reply: dict[str, Any] = {"status": status, "headers": kept_headers(headers),
                             **encode_chunks(redact_chunks(chunks, secrets)), "complete": complete}
    if error is not None:
        reply["error"] = error
    return {"type": "exchange", "request": request, "response": reply, "recorded_at": _now()}


def figure_record(url: str, status: int, content_type: str, body: bytes, secrets: Sequence[str],
                  location: str | None = None, note: str | None = None) -> dict[str, Any]:
    redacted = b"".join(redact_chunks([body], secrets)) if body else b""
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
    return record


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
    secrets = [key.reveal()] if key is not None else []
    record = figure_record(url, status, content_type, body_bytes, secrets, location=location, note=note)
    append_line(Path(path), record, secrets)


# -- which files -------------------------------------------------------------------------------


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


def _split_recordings(recordings: Recordings) -> list[str]:
    if recordings is None:
        return []
    if isinstance(recordings, (str, os.PathLike)):
        text = os.fspath(recordings)
        return [p for p in text.split(os.pathsep) if p.strip()]
    return [os.fspath(r) for r in recordings]


def resolve_recordings(recordings: Recordings) -> list[Source]:
    """Files to replay: ``"demo"`` is the bundled set, a folder means its ``*.jsonl`` files,
    a string may list several paths separated by ``os.pathsep`` (like ``PATH``)."""
    resolved: list[Source] = []
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
