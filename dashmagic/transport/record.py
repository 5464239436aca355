"""Record mode: send for real and tee the response bytes into the recording.

:class:`RecordingAdapter` wraps a live adapter; the caller streams the response as usual while
every chunk it reads is kept, one string per chunk read, so SSE event boundaries are kept. The
line is written once the body was read to its end, or the response closed. Writing happens in
the caller's read path, so a failure to write never raises there: the answer that arrived is
the caller's, and the failure is reported through ``on_error`` (and kept in ``errors``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import requests
from requests.adapters import BaseAdapter, HTTPAdapter

from ..config import Secret
from ..errors import DashmagicError
from ..recording.fingerprint import fingerprint
from .http import carries_key
from .http import POOL_MAXSIZE
from ..recording.store import PathLike, append_line, ends_mid_event, ensure_file, exchange_record, figure_record

__all__ = ["RecordingAdapter", "MAX_KEPT_ERRORS"]

#: Write failures an adapter remembers (the first ones; later ones only reach ``on_error``).
MAX_KEPT_ERRORS = 20


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
        return bytes(data)

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

    POSTs and authenticated GETs (Batch API polls) become ``exchange`` lines, figure fetches
    (GETs without the key) ``figure`` lines. The file and its header are created now, so a destination that cannot be written fails before anything is
    sent (:func:`~dashmagic.recording.check_record_destination` says why). A line that cannot be
    written later is reported to ``on_error(message)`` and kept in :attr:`errors`; it never
    raises into the code reading the response.
    """

    def __init__(
        self,
        path: PathLike,
        key: Secret | None = None,
        inner: BaseAdapter | None = None,
        *,
        note: str | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.inner: BaseAdapter = inner if inner is not None else HTTPAdapter(
            max_retries=0, pool_connections=2, pool_maxsize=POOL_MAXSIZE
        )
        self.on_error = on_error
        #: One-line messages of the lines that could not be written.
        self.errors: list[str] = []
        self._secrets: list[str] = [key.reveal()] if key is not None else []
        ensure_file(self.path, note)

    def __repr__(self) -> str:
        return f"RecordingAdapter({str(self.path)!r})"

    def _secrets_for(self, request: requests.PreparedRequest) -> list[str]:
        # Any bearer token this request carries is scrubbed too, even if no key was given.
        auth = request.headers.get("Authorization") or ""
        text = auth.decode("latin-1") if isinstance(auth, bytes) else auth
        scheme, _, token = text.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return [*self._secrets, token.strip()]
        return list(self._secrets)

    def _write(self, build: Callable[[], Mapping[str, Any]], secrets: list[str]) -> None:
        """Build and append one line; any failure is reported, never raised (see the class doc)."""
        try:
            append_line(self.path, build(), secrets)
        except Exception as exc:  # noqa: BLE001 - the caller's answer must survive any of them
            self._report(exc)

    def _report(self, exc: Exception) -> None:
        if isinstance(exc, DashmagicError):
            message = str(exc)
        else:  # only the type and OS reason: an arbitrary message could quote the body
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            message = f"Cannot write the recording file {str(self.path)!r}: {reason}."
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(message)
        if self.on_error is not None:
            self.on_error(message)

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        secrets = self._secrets_for(request)
        response = self.inner.send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)
        method = (request.method or "GET").upper()
        on_done = self._on_done(request, method, response, secrets)
        if method != "HEAD":  # no body to serve later; replay answers HEAD from the GET's figure line
            response.raw = _TeeBody(response.raw, on_done)
        response.connection = self  # type: ignore[assignment]  # requests types it as HTTPAdapter
        return response

    def _on_done(self, request: requests.PreparedRequest, method: str, response: requests.Response,
                 secrets: list[str]) -> Callable[[list[bytes], bool, dict[str, str] | None], None]:
        url = request.url or ""
        status = int(response.status_code)
        headers = dict(response.headers)
        content_type = response.headers.get("Content-Type") or ""
        event_stream = "event-stream" in content_type
        body = request.body if isinstance(request.body, (bytes, str)) else None
        figure = method == "GET" and not carries_key(request)

        def done(chunks: list[bytes], at_eof: bool, error: dict[str, str] | None) -> None:
            whole = b"".join(chunks)
            if figure:
                # A truncated image would be worse than a 404 on replay; but an answer the fetcher
                # refuses by its status (403 expired, 302) is complete without its body.
                if at_eof or status >= 300:
                    location = response.headers.get("Location")
                    self._write(lambda: figure_record(url, status, content_type, whole, secrets, location=location),
                                secrets)
                return
            complete = at_eof and not (event_stream and ends_mid_event(whole))
            kept = chunks if event_stream else ([whole] if whole else [])  # JSON: boundaries do not matter
            self._write(lambda: exchange_record(fingerprint(method, url, request.headers, body), status, headers,
                                                kept, complete, error, secrets), secrets)

        return done

    def close(self) -> None:
        self.inner.close()
