"""The typed, immutable trace of one plugin-calling exchange.

A :class:`Trace` is what every layer above the wire sees: an ordered tuple of steps
(:class:`Thought`, :class:`PluginCall`, :class:`PluginResult`, :class:`Answer`) plus usage,
request id, model, finish reason, wall time and status. Snapshots are rebuilt from each
server payload by :mod:`dashmagic.events`; nothing here knows about HTTP or IPython.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import MappingProxyType
from collections.abc import Mapping
from typing import Any, Literal, Union

__all__ = [
    "Status",
    "Thought",
    "PluginCall",
    "PluginResult",
    "Answer",
    "Step",
    "Usage",
    "RequestInfo",
    "ErrorInfo",
    "Figure",
    "CodeBlock",
    "Trace",
    "TraceStatus",
    "freeze",
]

TraceStatus = Literal["pending", "partial", "complete", "error", "interrupted"]


def freeze(value: Any) -> Any:
    """Deep-freeze parsed JSON: dicts become read-only mappings, lists become tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The inverse of :func:`freeze`: plain dicts and lists, for JSON or history."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Status:
    """A plugin message's ``status``: ``{"code": 200, "name": "Success", "message": ...}``."""

    code: int | None
    name: str = ""
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.code is None or 200 <= self.code < 300


@dataclass(frozen=True, slots=True)
class Figure:
    """An image a plugin produced, by URL. The bytes are fetched by the renderer, not here."""

    url: str
    alt: str = ""


@dataclass(frozen=True, slots=True)
class CodeBlock:
    code: str
    language: str = "python"


@dataclass(frozen=True, slots=True)
class Thought:
    """The assistant's reasoning (the ``Thought:`` text)."""

    text: str
    kind: Literal["thought"] = "thought"


@dataclass(frozen=True, slots=True)
class PluginCall:
    """The assistant asked a plugin to run.

    ``plugin`` is the header key (``haozhu_recommend_hotel``); ``name`` is what the model sent
    (``酒店推荐插件``). ``arguments`` is the parsed JSON (frozen), or None when
    ``arguments_error`` says why it could not be parsed. ``view`` is the plugin's own typed reading
    of the arguments (see :mod:`dashmagic.plugins`).
    """

    plugin: str
    name: str
    arguments_raw: str
    arguments: Any = None
    arguments_error: str | None = None
    view: Any = None
    kind: Literal["plugin_call"] = "plugin_call"


@dataclass(frozen=True, slots=True)
class PluginResult:
    """What the plugin returned, with its status."""

    plugin: str
    name: str
    content_raw: str
    content: Any = None
    content_error: str | None = None
    status: Status | None = None
    view: Any = None
    kind: Literal["plugin_result"] = "plugin_result"

    @property
    def ok(self) -> bool:
        return self.status is None or self.status.ok


@dataclass(frozen=True, slots=True)
class Answer:
    """The final answer (the ``Final Answer:`` text), Markdown."""

    text: str
    kind: Literal["answer"] = "answer"


Step = Union[Thought, PluginCall, PluginResult, Answer]


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    #: ``usage.plugins`` as ``{plugin: count}``, when the service reported it.
    plugins: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What was asked, kept beside the answer (no key, no headers)."""

    model: str
    plugins: tuple[str, ...] = ()
    prompt: str = ""
    files: tuple[str, ...] = ()
    stream: bool = False
    url: str = ""


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A plain-data summary of the error that ended a trace (the exception may not pickle)."""

    type: str
    message: str
    status_code: int | None = None
    code: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Trace:
    """One exchange: steps in order plus everything around them."""

    request: RequestInfo
    steps: tuple[Step, ...] = ()
    usage: Usage = field(default_factory=Usage)
    request_id: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    status: TraceStatus = "pending"
    error: ErrorInfo | None = None
    elapsed: float | None = None
    events: int = 0
    #: Human-readable notes about how the exchange went (retries, fallbacks).
    notes: tuple[str, ...] = ()
    #: The assistant/plugin messages as the service sent them, for chat history.
    messages: tuple[Mapping[str, Any], ...] = ()

    # -- convenience views -------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.status in ("complete", "error", "interrupted")

    @property
    def ok(self) -> bool:
        return self.status == "complete"

    @property
    def answer(self) -> str | None:
        answers = [s.text for s in self.steps if isinstance(s, Answer)]
        return answers[-1] if answers else None

    @property
    def text(self) -> str:
        """The final answer, or an empty string."""
        return self.answer or ""

    @property
    def thoughts(self) -> tuple[str, ...]:
        return tuple(s.text for s in self.steps if isinstance(s, Thought))

    @property
    def plugin_calls(self) -> tuple[PluginCall, ...]:
        return tuple(s for s in self.steps if isinstance(s, PluginCall))

    @property
    def plugin_results(self) -> tuple[PluginResult, ...]:
        return tuple(s for s in self.steps if isinstance(s, PluginResult))

    @property
    def code_blocks(self) -> tuple[CodeBlock, ...]:
        """Code the model asked ``code_interpreter`` to run (display only: never executed)."""
        return tuple(s.view for s in self.plugin_calls if isinstance(s.view, CodeBlock))

    @property
    def figures(self) -> tuple[Figure, ...]:
        out: list[Figure] = []
        for step in self.plugin_results:
            out.extend(getattr(step.view, "figures", ()) or ())
        return tuple(out)

    def history(self) -> list[dict[str, Any]]:
        """The service's messages as plain dicts, ready to send back as chat history."""
        return [thaw(m) for m in self.messages]

    def replace(self, **changes: Any) -> Trace:
        return dataclasses.replace(self, **changes)

    # -- display -----------------------------------------------------------------------
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from .render import mimebundle  # rendering is imported only when something displays

        return mimebundle(self, include=include, exclude=exclude)

    def __str__(self) -> str:
        from .render.text import render_text

        return render_text(self)
