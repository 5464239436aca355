"""Wire in: server payloads → Trace snapshots (the reducer of the pipeline).

:class:`TraceBuilder` reads the envelope every generation shares (``request_id``, ``usage``,
``finish_reason``, error bodies; :mod:`dashmagic.protocol.envelope`) and hands each payload's
``output`` to the :class:`~dashmagic.protocol.Folder` of the wire format that built the request,
which turns it into steps and chat messages. A non-streamed reply is one payload fed through the
same builder, so there is one code path and every mid-stream snapshot can be rendered.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from .errors import DashmagicError, ProtocolError
from .protocol import Folder, folder_for
from .protocol.envelope import decode_payload, error_from_payload, finish_reason, preview, read_usage, to_str
from .trace import ErrorInfo, RequestInfo, Trace, TraceStatus

__all__ = ["TraceBuilder", "decode_payload", "error_from_payload"]


class TraceBuilder:
    """Folds payloads into Trace snapshots."""

    def __init__(self, request: RequestInfo, *, folder: Folder | None = None, started: float | None = None) -> None:
        self._request = request
        self._folder = folder if folder is not None else folder_for(request)
        self._started = time.monotonic() if started is None else started
        self._trace = Trace(request=request)
        self._notes: list[str] = []

    @property
    def trace(self) -> Trace:
        return self._trace

    def note(self, text: str) -> Trace:
        self._notes.append(text)
        self._trace = self._trace.replace(notes=tuple(self._notes))
        return self._trace

    def _elapsed(self) -> float:
        return round(time.monotonic() - self._started, 3)

    def feed(self, payload: Mapping[str, Any], *, incremental: bool = False) -> Trace:
        """Apply one result payload; return the new snapshot."""
        output = payload.get("output")
        if not isinstance(output, Mapping):
            if payload.get("code"):
                raise error_from_payload(payload, None)
            raise ProtocolError(f"DashScope sent a result without 'output'. It began: {preview(_dump(payload))}")
        finish = finish_reason(output)
        self._folder.feed(output, incremental=incremental)
        self._trace = self._trace.replace(
            steps=self._folder.steps(final=finish is not None),
            usage=read_usage(payload.get("usage")) if payload.get("usage") else self._trace.usage,
            request_id=to_str(payload.get("request_id")) or self._trace.request_id,
            model=self._request.model,
            finish_reason=finish,
            status="complete" if finish else "partial",
            elapsed=self._elapsed(),
            events=self._trace.events + 1,
            messages=self._folder.messages(),
        )
        return self._trace

    def finish(self, *, complete: bool = False) -> Trace:
        """The reply ended: complete if the service said so (a ``finish_reason``), or if the
        caller knows the reply arrived whole (``complete``: a JSON body, not a stream)."""
        status: TraceStatus = "complete" if complete or self._trace.finish_reason else "partial"
        self._trace = self._trace.replace(status=status, elapsed=self._elapsed())
        return self._trace

    def fail(self, error: DashmagicError) -> Trace:
        info = ErrorInfo(
            type=type(error).__name__,
            message=str(error),
            status_code=getattr(error, "status_code", None),
            code=getattr(error, "code", None),
            request_id=getattr(error, "request_id", None),
        )
        # One id per failed call: the error's (it names the failure, and is what support asks
        # for), so the footer and the error line never show two different ids.
        request_id = info.request_id or self._trace.request_id
        self._trace = self._trace.replace(status="error", error=info, elapsed=self._elapsed(), request_id=request_id)
        return self._trace

    def interrupt(self) -> Trace:
        self._trace = self._trace.replace(status="interrupted", elapsed=self._elapsed())
        return self._trace


def _dump(payload: Mapping[str, Any]) -> str:
    try:
        return json.dumps(payload, ensure_ascii=False, default=str)[:400]
    except (ValueError, RecursionError):
        return "(unprintable payload)"
