"""Replay mode: answer every request from recordings; never touch the network.

:class:`ReplayAdapter` answers with a real ``requests.Response`` whose ``raw`` hands back the
recorded chunks one by one, so the SSE decoder, trace builder and renderers run exactly as
live, streaming included. Which answer a request gets is :mod:`dashmagic.recording.matching`.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Collection, Iterator, Mapping, Sequence
from http import HTTPStatus
from typing import Any, cast

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from .._urls import display_url
from ..errors import RecordingMiss
from ..recording.fingerprint import fingerprint
from ..recording.matching import Answers
from ..recording.store import PathLike, Source, read_recording, resolve_recordings
from .http import carries_key

__all__ = ["ReplayAdapter"]


class _ReplayBody:
    """The recorded chunks, handed back as urllib3 would: ``read1`` keeps each boundary.

    A deque and an offset into its first chunk: reading a big body in small pieces stays linear.
    """

    def __init__(self, chunks: list[bytes], error: dict[str, str] | None = None, url: str = "") -> None:
        self._chunks = deque(bytes(c) for c in chunks if c)  # an empty read means end of body
        self._offset = 0  # bytes of the first chunk already handed out
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
        first = self._chunks[0]
        end = len(first) if amt is None or amt < 0 else min(len(first), self._offset + amt)
        piece = first[self._offset : end]
        if end == len(first):
            self._chunks.popleft()
            self._offset = 0
        else:
            self._offset = end
        return piece

    def read(self, amt: int | None = None, decode_content: bool = True, cache_content: bool = False) -> bytes:
        out = bytearray()
        while self._chunks and (amt is None or amt < 0 or len(out) < amt):
            out += self.read1(None if amt is None or amt < 0 else amt - len(out))
        if not out or amt is None or amt < 0:  # a sized read returns its data before the error
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


class ReplayAdapter(BaseAdapter):
    """Answer every request from recordings; never touch the network.

    POSTs and authenticated GETs (Batch API polls) are matched by fingerprint
    (:class:`~dashmagic.recording.Answers`); no match raises :class:`~dashmagic.errors.RecordingMiss`. With ``strict=False`` a request that still matches
    nothing may use an exchange with the same endpoint, headers, model and last user message.
    Other GETs are figure fetches: matched by full URL, then without the query string; an unknown
    one is a 404. ``recordings`` is a path, several, or an :class:`Answers` to share with others.
    """

    def __init__(self, recordings: Answers | PathLike | Sequence[PathLike | Source], *, strict: bool = True,
                 stream_headers: Collection[str] = ()) -> None:
        super().__init__()
        if isinstance(recordings, Answers):
            self.answers = recordings
        else:
            self.answers = Answers(read_recording(_sources(recordings)), stream_headers)
        self.strict = strict

    @property
    def sources(self) -> tuple[str, ...]:
        return self.answers.recording.sources

    def __repr__(self) -> str:
        return f"ReplayAdapter({list(self.sources)!r}, exchanges={len(self.answers.exchanges)})"

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        method = (request.method or "GET").upper()
        url = request.url or ""
        if method in ("GET", "HEAD") and not carries_key(request):
            return self._figure_response(request, method, url)
        body = request.body if isinstance(request.body, (bytes, str)) else None
        fp = fingerprint(method, url, request.headers, body)
        exchange = self.answers.match(fp, strict=self.strict)
        if exchange is None:
            raise RecordingMiss(self.answers.miss_message(fp))
        return self._response(request, exchange.status, exchange.headers,
                              _ReplayBody(list(exchange.chunks), exchange.error, url))

    def _figure_response(self, request: requests.PreparedRequest, method: str, url: str) -> requests.Response:
        figure = self.answers.figure(url)
        if figure is None:
            text = f"No recorded figure for {display_url(url)} in {self.answers.files_text()}.".encode()
            return self._response(request, 404, {"Content-Type": "text/plain; charset=utf-8"}, _ReplayBody([text]))
        headers = {"Content-Type": figure.content_type}
        if figure.location:
            headers["Location"] = figure.location
        chunks = [figure.body] if figure.body and method == "GET" else []
        return self._response(request, figure.status, headers, _ReplayBody(chunks))

    def _response(self, request: requests.PreparedRequest, status: int, headers: Mapping[str, str],
                  body: _ReplayBody) -> requests.Response:
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict(headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = body
        try:
            response.reason = HTTPStatus(status).phrase
        except ValueError:
            response.reason = ""
        url = request.url
        response.url = url.decode("utf-8") if isinstance(url, bytes) else (url or "")
        response.request = request
        response.connection = self  # type: ignore[assignment]  # requests types it as HTTPAdapter
        return response

    def close(self) -> None:
        pass  # nothing to release: the answers may be shared with other sessions


def _sources(recordings: PathLike | Sequence[PathLike | Source]) -> list[Source]:
    items: list[PathLike | Source] = list(recordings) if isinstance(recordings, (list, tuple)) else [
        cast("PathLike", recordings)]
    sources: list[Source] = []
    for item in items:
        if isinstance(item, (str, os.PathLike)):
            sources.extend(resolve_recordings(item))  # "demo", folders, missing files
        else:
            sources.append(item)  # an importlib.resources Traversable
    return sources
