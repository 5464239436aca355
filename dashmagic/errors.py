"""The errors dashmagic raises, all short and actionable.

::

    DashmagicError                  base; renders as one line in IPython (no traceback)
    ├── ConfigError                 bad settings: missing key, bad base URL, bad flag value
    ├── ApiError                    the service answered with an error (HTTP or SSE ``event:error``)
    │   ├── AuthenticationError     401 ``InvalidApiKey``
    │   ├── PermissionDeniedError   403, e.g. ``InvalidPlugin.AccessDenied``
    │   ├── RateLimitError          429 ``Throttling.*``
    │   └── ServerError             5xx, including a gateway's HTML 502
    ├── TransportError              no usable HTTP exchange: refused, reset, DNS, cut stream
    │   └── TimeoutError            connect or read timeout (``phase`` says which)
    ├── ProtocolError               the reply is not what the protocol says (garbage JSON, bad UTF-8)
    ├── RecordingMiss               replay mode found no recorded exchange for a request
    └── Interrupted                 the user stopped the kernel while a reply was arriving

Why not subclass IPython's ``UsageError``: the shell hides the traceback only when
``type(e) is UsageError`` (ipython#14024), so subclasses would still print one. IPython's
documented hook ``_render_traceback_`` gives the one-line display and keeps real types for
``pytest.raises``. Every error may carry the partial ``trace`` received before it happened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .trace import Trace

__all__ = [
    "DashmagicError",
    "ConfigError",
    "ApiError",
    "AuthenticationError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "TransportError",
    "TimeoutError",
    "ProtocolError",
    "RecordingMiss",
    "Interrupted",
    "api_error_for",
]


class DashmagicError(Exception):
    """Base class. ``str(e)`` is the whole actionable message."""

    #: The trace received before the error, when there was one. Set by the client.
    trace: Trace | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a traceback (integrating.rst).
        return [f"{type(self).__name__}: {self.message}"]

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep subclasses with keyword-only fields picklable (nbclient, multiprocessing).
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[DashmagicError], state: dict[str, Any]) -> DashmagicError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


class ConfigError(DashmagicError):
    """A setting or argument is missing or invalid; nothing was sent."""


class ApiError(DashmagicError):
    """DashScope answered with an error status or an SSE error event."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        super().__init__(_format_api_message(message, status_code, code, request_id))
        self.service_message = message

    @property
    def retryable(self) -> bool:
        return self.status_code in (429, 500, 502, 503, 504)


class AuthenticationError(ApiError):
    pass


class PermissionDeniedError(ApiError):
    pass


class RateLimitError(ApiError):
    pass


class ServerError(ApiError):
    pass


class TransportError(DashmagicError):
    """The HTTP exchange itself failed (refused, reset, cut off)."""

    def __init__(self, message: str, *, url: str | None = None, before_response: bool = True) -> None:
        super().__init__(message)
        self.url = url
        #: True when the failure happened before any response byte arrived (safe to retry).
        self.before_response = before_response


class TimeoutError(TransportError):  # noqa: A001 - deliberately shadows the builtin inside dashmagic
    """A connect or read timeout fired. ``phase`` is ``"connect"`` or ``"read"``."""

    def __init__(self, message: str, *, phase: str, url: str | None = None, before_response: bool = True) -> None:
        super().__init__(message, url=url, before_response=before_response)
        self.phase = phase


class ProtocolError(DashmagicError):
    """The server's reply does not follow the DashScope protocol."""


class RecordingMiss(DashmagicError):
    """Replay mode has no recorded exchange matching a request."""


class Interrupted(DashmagicError):
    """The kernel was interrupted while the reply was streaming."""


_HINTS: dict[int, str] = {
    401: "Check the key: it is region-bound (a Beijing key does not work on dashscope-intl and vice versa).",
    403: "Plugins must be applied for in the DashScope console before use ('申请体验').",
    429: "The service is throttling; wait a little, lower the request rate, or raise your quota.",
    500: "The service failed; try again later.",
    502: "A gateway in front of DashScope failed; try again later.",
    503: "The service is unavailable; try again later.",
    504: "A gateway timed out; try again later.",
}


def _format_api_message(message: str, status: int | None, code: str | None, request_id: str | None) -> str:
    head = f"DashScope returned HTTP {status}" if status else "DashScope reported an error"
    if code:
        head += f" {code}"
    text = f"{head}: {message.strip() or '(no message)'}"
    hint = _HINTS.get(status or 0)
    if hint:
        text += f" {hint}"
    if request_id:
        text += f" (request id {request_id})"
    return text


def api_error_for(
    status_code: int | None, code: str | None, message: str, request_id: str | None
) -> ApiError:
    """Pick the ApiError subclass for a status/code pair."""
    cls: type[ApiError] = ApiError
    if status_code == 401 or code == "InvalidApiKey":
        cls = AuthenticationError
    elif status_code == 403:
        cls = PermissionDeniedError
    elif status_code == 429 or (code or "").startswith("Throttling"):
        cls = RateLimitError
    elif status_code is not None and status_code >= 500:
        cls = ServerError
    return cls(message, status_code=status_code, code=code, request_id=request_id)
