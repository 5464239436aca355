"""Sending one Call: the live ``requests`` sessions, the key's auth hook, error translation.

Live calls use requests' own ``HTTPAdapter`` (no urllib3 retries: retries are done, and
shown, by the client). Record and replay mount other adapters on the same seam
(:mod:`.record`, :mod:`.replay`), so everything above the transport runs the same code whether
the bytes come from DashScope, the loopback fake or a recording.

Sessions belong to whoever asked for them: every session made here is counted by
:func:`open_sessions` until its ``close()``. The connection pool of live calls is one
process-wide adapter that closing a session leaves open (:func:`pooled_session`), so repeated
calls still reuse the TLS connection.

Every requests/urllib3 exception is translated here into :mod:`dashmagic.errors` types,
``from None``: the original chain holds frames whose locals include prepared headers.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Union

import requests
from requests.adapters import BaseAdapter, HTTPAdapter

from ..config import Secret
from ..errors import TimeoutError, TransportError
from ..request import Call

__all__ = [
    "Timeout",
    "DEFAULT_TIMEOUT",
    "KeyAuth",
    "carries_key",
    "OwnedSession",
    "mounted_session",
    "new_session",
    "open_sessions",
    "owned_session",
    "pooled_session",
    "shared_session",
    "send",
    "request",
    "body_errors",
    "split_timeout",
]

Timeout = Union[float, tuple[float, float], None]
#: (connect, read). For a stream, "read" is the longest allowed silence between events.
DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 180.0)


def split_timeout(timeout: Timeout) -> tuple[float, float]:
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, (int, float)):
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        return (min(float(timeout), DEFAULT_TIMEOUT[0]), float(timeout))
    connect, read = timeout
    return (float(connect), float(read))


class KeyAuth:
    """Adds ``Authorization: Bearer <key>`` at send time; its repr never shows the key."""

    def __init__(self, key: Secret) -> None:
        self._key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._key.reveal()}"
        return request

    def __repr__(self) -> str:
        return f"KeyAuth({self._key!r})"


def carries_key(request: requests.PreparedRequest) -> bool:
    """Whether a request is an API call (it carries the key's auth), not a figure fetch (whose
    session never holds the key). Record and replay keep authenticated GETs, such as the Batch
    API's polls and downloads, as exchanges answered in order, not as figures."""
    return bool(request.headers.get("Authorization"))


_open: weakref.WeakSet[requests.Session] = weakref.WeakSet()
_open_lock = threading.Lock()


class OwnedSession(requests.Session):
    """A session dashmagic made for a caller, who closes it; counted until then."""

    def close(self) -> None:
        with _open_lock:
            _open.discard(self)
        super().close()


def owned_session(*, trust_env: bool = True) -> requests.Session:
    """A new, counted session with requests' default adapters."""
    session = OwnedSession()
    session.trust_env = trust_env
    with _open_lock:
        _open.add(session)
    return session


def open_sessions() -> int:
    """How many sessions dashmagic made and their owners have not closed yet (a test's leak
    check: compare before and after). The process-wide :func:`shared_session` is not counted."""
    with _open_lock:
        return len(_open)


#: Keep-alive connections kept per host. map() runs up to 64 calls at once through one Client: a
#: smaller pool would drop every connection above its size after each call and open a new one
#: (a TCP + TLS handshake per call). Idle connections cost a socket each, nothing more.
POOL_MAXSIZE = 64


def _new_adapter() -> HTTPAdapter:
    return HTTPAdapter(max_retries=0, pool_connections=2, pool_maxsize=POOL_MAXSIZE)


def mounted_session(adapter: BaseAdapter, *, trust_env: bool = True) -> requests.Session:
    """A new, counted session whose http:// and https:// requests all go through ``adapter``."""
    session = owned_session(trust_env=trust_env)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def new_session() -> requests.Session:
    """A counted session for DashScope calls with its own pool: no urllib3 retries."""
    return mounted_session(_new_adapter())


class _ProcessPool(HTTPAdapter):
    """The one pool of live connections, mounted on many sessions: closing one keeps it."""

    def close(self) -> None:
        pass  # the pool lives as long as the process; urllib3 closes its sockets at exit


_pool: _ProcessPool | None = None
_shared: requests.Session | None = None
_shared_lock = threading.Lock()


def _process_pool() -> _ProcessPool:
    global _pool
    with _shared_lock:
        if _pool is None:
            _pool = _ProcessPool(max_retries=0, pool_connections=2, pool_maxsize=POOL_MAXSIZE)
        return _pool


def pooled_session() -> requests.Session:
    """A counted session on the process-wide pool: the caller closes it, the pool stays warm."""
    return mounted_session(_process_pool())


def shared_session() -> requests.Session:
    """One session per process for live calls made without a session, as the official SDK
    keeps: repeated calls reuse the TLS connection instead of paying a new handshake each time."""
    global _shared
    pool = _process_pool()
    with _shared_lock:
        if _shared is None:
            _shared = requests.Session()
            _shared.mount("https://", pool)
            _shared.mount("http://", pool)
        return _shared


def send(
    session: requests.Session,
    call: Call,
    key: Secret,
    timeout: tuple[float, float],
) -> requests.Response:
    """POST the call; translate failures before a response into TransportError/TimeoutError."""
    return request(session, "POST", call.url, key, timeout, data=call.body_bytes(), headers=call.headers)


def request(
    session: requests.Session,
    method: str,
    url: str,
    key: Secret,
    timeout: tuple[float, float],
    *,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> requests.Response:
    """Send one request with the key's auth (streamed, no redirects); failures before a
    response become TransportError/TimeoutError. :func:`send` and the Batch API use it."""
    try:
        return session.request(
            method,
            url,
            data=data,
            headers=dict(headers or {}),
            auth=KeyAuth(key),
            timeout=timeout,
            stream=True,
            allow_redirects=False,
        )
    except requests.exceptions.ConnectTimeout:
        error: TransportError = TimeoutError(
            f"Could not connect to {_host(url)} within {timeout[0]:g} s (connect timeout). "
            "Check the network or DASHSCOPE_HTTP_BASE_URL, or raise the timeout.",
            phase="connect",
            url=url,
        )
    except requests.exceptions.ReadTimeout:
        error = TimeoutError(
            f"{_host(url)} accepted the request but sent no response within {timeout[1]:g} s "
            "(read timeout). Raise --timeout for slow plugins such as code_interpreter.",
            phase="read",
            url=url,
        )
    except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, ValueError, UnicodeError) as exc:
        # Their messages quote the offending header, which may be "Authorization: Bearer <key>":
        # name only the kind of problem. (Raised after the except block: no chain, no frames.)
        error = TransportError(
            f"The request to {_host(url)} could not be encoded ({type(exc).__name__}): a header or the "
            "URL holds characters HTTP cannot carry. Check the key, the base URL and the plugin names.",
            url=url,
        )
    except requests.exceptions.RequestException as exc:
        error = TransportError(
            f"Could not reach {_host(url)}: {_reason(exc)}. Check the network connection and "
            "DASHSCOPE_HTTP_BASE_URL.",
            url=url,
        )
    raise error


@contextmanager
def body_errors(call: Call | str, timeout: tuple[float, float]) -> Iterator[None]:
    """Translate failures while reading a response body (the response had started).
    ``call`` is the Call whose reply is read, or just its URL."""
    import urllib3.exceptions

    url = call if isinstance(call, str) else call.url

    broken = (
        requests.exceptions.ConnectionError,
        requests.exceptions.ChunkedEncodingError,
        urllib3.exceptions.ProtocolError,
        urllib3.exceptions.ReadTimeoutError,
    )
    try:
        yield
    except broken as exc:
        if isinstance(exc, urllib3.exceptions.ReadTimeoutError) or "timed out" in str(exc).lower():
            raise TimeoutError(
                f"{_host(url)} went silent for more than {timeout[1]:g} s in the middle of the "
                "reply (read timeout). What arrived is kept; raise --timeout if the plugin is slow.",
                phase="read",
                url=url,
                before_response=False,
            ) from None
        raise TransportError(
            f"The connection to {_host(url)} broke in the middle of the reply ({_reason(exc)}). "
            "What arrived is kept; run the cell again to retry.",
            url=url,
            before_response=False,
        ) from None


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or url


def _reason(exc: BaseException) -> str:
    """The innermost human reason ("Connection refused"), without object reprs."""
    seen = exc
    while seen.__context__ is not None or getattr(seen, "reason", None) is not None:
        nxt = getattr(seen, "reason", None) or seen.__context__
        if not isinstance(nxt, BaseException) or nxt is seen:
            break
        seen = nxt
    text = str(seen)
    for marker in ("Connection refused", "Connection reset", "Connection aborted", "Name or service not known",
                   "Temporary failure in name resolution", "Remote end closed connection", "IncompleteRead",
                   "Max retries exceeded", "timed out"):
        if marker.lower() in text.lower():
            return marker
    return text.split(": ")[-1][:120] or type(seen).__name__
