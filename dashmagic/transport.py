"""The seam between dashmagic and the network: a ``requests.Session`` and its adapters.

Live calls use requests' own ``HTTPAdapter`` (no urllib3 retries: retries are done, and
shown, by the client). Record and replay mount other adapters on the same seam
(:mod:`dashmagic.recording`), so everything above the transport runs the same code whether
the bytes come from DashScope, the loopback fake or a recording.

Every requests/urllib3 exception is translated here into :mod:`dashmagic.errors` types,
``from None``: the original chain holds frames whose locals include prepared headers.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, Union

from .config import Secret
from .errors import TimeoutError, TransportError
from .request import Call

if TYPE_CHECKING:
    import requests

__all__ = [
    "Timeout",
    "DEFAULT_TIMEOUT",
    "KeyAuth",
    "new_session",
    "shared_session",
    "send",
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


def new_session() -> requests.Session:
    """A session for DashScope calls: no urllib3 retries, no proxies' credentials in reprs."""
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    adapter = HTTPAdapter(max_retries=0, pool_connections=2, pool_maxsize=4)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


_shared: requests.Session | None = None
_shared_lock = threading.Lock()


def shared_session() -> requests.Session:
    """One pooled session per process for live calls, as the official SDK keeps: repeated calls
    reuse the TLS connection instead of paying a new handshake each time."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = new_session()
        return _shared


def send(
    session: requests.Session,
    call: Call,
    key: Secret,
    timeout: tuple[float, float],
) -> requests.Response:
    """POST the call; translate failures before a response into TransportError/TimeoutError."""
    import requests

    try:
        return session.post(
            call.url,
            data=call.body_bytes(),
            headers=dict(call.headers),
            auth=KeyAuth(key),
            timeout=timeout,
            stream=True,
            allow_redirects=False,
        )
    except requests.exceptions.ConnectTimeout:
        error: TransportError = TimeoutError(
            f"Could not connect to {_host(call.url)} within {timeout[0]:g} s (connect timeout). "
            "Check the network or DASHSCOPE_HTTP_BASE_URL, or raise the timeout.",
            phase="connect",
            url=call.url,
        )
    except requests.exceptions.ReadTimeout:
        error = TimeoutError(
            f"{_host(call.url)} accepted the request but sent no response within {timeout[1]:g} s "
            "(read timeout). Raise --timeout for slow plugins such as code_interpreter.",
            phase="read",
            url=call.url,
        )
    except requests.exceptions.RequestException as exc:
        error = TransportError(
            f"Could not reach {_host(call.url)}: {_reason(exc)}. Check the network connection and "
            "DASHSCOPE_HTTP_BASE_URL.",
            url=call.url,
        )
    raise error


@contextmanager
def body_errors(call: Call, timeout: tuple[float, float]) -> Iterator[None]:
    """Translate failures while reading a response body (the response had started)."""
    import requests
    import urllib3.exceptions

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
                f"{_host(call.url)} went silent for more than {timeout[1]:g} s in the middle of the "
                "reply (read timeout). What arrived is kept; raise --timeout if the plugin is slow.",
                phase="read",
                url=call.url,
                before_response=False,
            ) from None
        raise TransportError(
            f"The connection to {_host(call.url)} broke in the middle of the reply ({_reason(exc)}). "
            "What arrived is kept; run the cell again to retry.",
            url=call.url,
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
