"""Faults the fake DashScope can inject, and exactly what each one puts on the wire.

``fake.inject(fault, times=1, **params)`` queues a fault (FIFO). Each queued entry is consumed,
one use per request, by the next ``POST …/generation`` request(s); the request is still read in
full and recorded first. A fault replaces the normal answer: authentication, the plugin header
and the body are *not* checked while a fault is being served, except by ``slow`` and ``stall``,
which only delay an otherwise normal exchange (errors included).

JSON errors have the DashScope error body ``{"code", "message", "request_id"}`` (protocol.md §8.1).
"SSE" below means HTTP 200 ``text/event-stream;charset=UTF-8``, ``Connection: close``, no
Content-Length (``Transfer-Encoding: chunked`` unless the fake uses ``sse_framing="close"``),
events framed as ``id:N\\nevent:result\\n:HTTP_STATUS/200\\ndata:<json>\\n\\n`` and built from
the reply the request would have got without the fault (seed, queued or default). An SSE body
normally ends cleanly (last chunk, then FIN) after its last event.

=========================  ================================================================
fault                      on the wire
=========================  ================================================================
``throttle``               429 JSON ``Throttling.RateQuota`` "Requests rate limit exceeded,
                           please try again later."
``access_denied``          403 JSON ``InvalidPlugin.AccessDenied``
                           ``Plugin ["<first requested plugin>"] access denied.``
``server_error``           500 JSON ``InternalError`` "An internal error has occured, …" (sic)
``bad_gateway_html``       502 ``text/html`` nginx/Tengine-style page (not JSON: tests the
                           client's ``code="Unknown"`` path)
``unavailable``            503 JSON ``ServiceUnavailable`` + header ``Retry-After: <retry_after>``
                           (default 1)
``reset_before_response``  reads the request, then closes the socket with SO_LINGER (1, 0):
                           the client sees a TCP RST and no status line
``reset_mid_stream``       SSE: ``after_events`` complete events (default 2), then RST
                           (no last chunk: requests raises ChunkedEncodingError/ConnectionError)
``stall``                  SSE request: first event, sleep ``seconds`` (default 5), then the
                           rest; JSON request: sleep ``seconds`` then the normal answer
``garbage_json``           JSON request: 200 ``application/json`` body ``{"output": [not json``;
                           SSE request: 200 SSE with one event whose ``data:`` is that text
``cut_mid_event``          SSE: ``after_events`` events (default 2), then the first half of
                           the next event's bytes, then a clean end of body (last chunk,
                           FIN): no transport error, but the body ends without the blank
                           line that terminates an event
``error_event_first``      SSE whose only event is ``id:1 / event:error / :HTTP_STATUS/400 /
                           data:{"code":"DataInspectionFailed",…}``; also header
                           ``x-dashscope-finished: true`` (as in the one real capture, §8.2)
``error_event_mid``        SSE: ``after_events`` result events (default 2), then
                           ``event:error`` + ``:HTTP_STATUS/500`` + ``InternalError`` data.
                           A ``status:500`` line is added only with ``status_line=True``
                           (no real capture shows one; the SDK reads it when present)
``huge_response``          200 ``message`` reply whose content is ``size`` bytes (default
                           10 MiB) of Markdown text; JSON request: one JSON body; SSE request:
                           a short first event, then one event whose data line holds it all
``invalid_utf8``           200 ``message`` reply whose content contains the bytes ``\\xff\\xfe``
                           (invalid UTF-8) inside the JSON string; JSON or one SSE event
``slow``                   sleep ``seconds`` (default 2) before the status line, then the
                           normal answer
=========================  ================================================================

``reset_mid_stream``, ``cut_mid_event``, ``error_event_first`` and ``error_event_mid`` only make
sense for streams, so they answer with SSE even when the request did not ask for streaming.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["SSE_ONLY_FAULTS", "Fault", "InjectedFault"]


class Fault(str, Enum):
    """Names accepted by :meth:`FakeDashScope.inject` (plain strings work too)."""

    THROTTLE = "throttle"
    ACCESS_DENIED = "access_denied"
    SERVER_ERROR = "server_error"
    BAD_GATEWAY_HTML = "bad_gateway_html"
    UNAVAILABLE = "unavailable"
    RESET_BEFORE_RESPONSE = "reset_before_response"
    RESET_MID_STREAM = "reset_mid_stream"
    STALL = "stall"
    GARBAGE_JSON = "garbage_json"
    CUT_MID_EVENT = "cut_mid_event"
    ERROR_EVENT_FIRST = "error_event_first"
    ERROR_EVENT_MID = "error_event_mid"
    HUGE_RESPONSE = "huge_response"
    INVALID_UTF8 = "invalid_utf8"
    SLOW = "slow"


# Faults whose whole point is a broken stream: they always answer with SSE.
SSE_ONLY_FAULTS = frozenset(
    {Fault.RESET_MID_STREAM, Fault.CUT_MID_EVENT, Fault.ERROR_EVENT_FIRST, Fault.ERROR_EVENT_MID}
)


@dataclass(frozen=True)
class InjectedFault:
    """One queued fault with its parameters (see the module docstring for the defaults' use)."""

    fault: Fault
    seconds: float = 5.0
    retry_after: int = 1
    after_events: int = 2
    status_line: bool = False
    size: int = 10 * 1024 * 1024

    @classmethod
    def make(
        cls,
        fault: Fault | str,
        *,
        seconds: float | None = None,
        retry_after: int = 1,
        after_events: int = 2,
        status_line: bool = False,
        size: int = 10 * 1024 * 1024,
    ) -> InjectedFault:
        """Validate the name (``ValueError`` lists the valid ones) and fill per-fault defaults."""
        try:
            kind = Fault(fault)
        except ValueError:
            valid = ", ".join(f.value for f in Fault)
            raise ValueError(f"unknown fault {fault!r}; valid faults: {valid}") from None
        if seconds is None:
            # `slow` is meant to be survivable, `stall` to trip a read timeout.
            seconds = 2.0 if kind is Fault.SLOW else 5.0
        return cls(kind, seconds, retry_after, after_events, status_line, size)
