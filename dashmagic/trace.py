"""The typed, immutable trace of one plugin-calling exchange.

A :class:`Trace` is what every layer above the wire sees: an ordered tuple of steps
(:class:`Thought`, :class:`PluginCall`, :class:`PluginResult`, :class:`Answer`) plus usage,
request id, model, finish reason, wall time and status. Snapshots are rebuilt from each
server payload by :mod:`dashmagic.events`; nothing here knows about HTTP or IPython.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, Union

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
    "CallView",
    "ResultView",
    "NoCodeBlocks",
    "NoFigures",
    "Reasoning",
    "CodeExecution",
    "Source",
    "SearchResults",
    "FunctionCall",
    "UnknownPart",
    "LocalRun",
    "LocalRunStatus",
    "ToolRun",
    "ToolApproval",
    "ToolRunStatus",
    "Round",
    "Trace",
    "TraceStatus",
    "FrozenMap",
    "FetchedImage",
    "freeze",
    "thaw",
]

TraceStatus = Literal["pending", "partial", "complete", "error", "interrupted"]


class FrozenMap(Mapping[str, Any]):
    """A read-only mapping that pickles (``mappingproxy`` does not, which broke pickling a
    Trace, ``ProcessPoolExecutor`` and caches). Equal to any mapping with the same items."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = dict(data or {})
        self._hash: int | None = None

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        try:
            return repr(self._data)
        except RecursionError:
            return "{…nested too deeply to show…}"

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(tuple(self._data.items()))
        return self._hash

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenMap, (self._data,))


EMPTY_MAP = FrozenMap()


def freeze(value: Any) -> Any:
    """Deep-freeze parsed JSON: dicts become :class:`FrozenMap`, lists become tuples.

    Iterative, not recursive: a reply nested thousands deep must not raise RecursionError
    (and lose the trace) here.
    """
    if not isinstance(value, (dict, list, tuple)):
        return value
    result: list[Any] = []
    # Each frame: the items still to visit, the frozen items so far, whether it is a dict, and
    # the key this container will have in its parent (None for list items and the root).
    stack: list[tuple[Iterator[Any], list[Any], bool, Any]] = [(_items(value), [], isinstance(value, dict), None)]
    while stack:
        items, done, is_dict, _ = stack[-1]
        for item in items:
            key, child = item if is_dict else (None, item)
            if isinstance(child, (dict, list, tuple)):
                stack.append((_items(child), [], isinstance(child, dict), key))
                break
            done.append((key, child) if is_dict else child)
        else:
            _, done, is_dict, key = stack.pop()
            frozen = FrozenMap(dict(done)) if is_dict else tuple(done)
            if not stack:
                result.append(frozen)
            else:
                parent_done, parent_is_dict = stack[-1][1], stack[-1][2]
                parent_done.append((key, frozen) if parent_is_dict else frozen)
    return result[0]


def _items(node: Any) -> Iterator[Any]:
    return iter(node.items()) if isinstance(node, dict) else iter(node)


def thaw(value: Any) -> Any:
    """The inverse of :func:`freeze`: plain dicts and lists, for JSON or history (iterative too)."""
    if not isinstance(value, (Mapping, tuple, list)):
        return value
    result: list[Any] = []
    stack: list[tuple[Iterator[Any], list[Any], bool, Any]] = [(_items_any(value), [], isinstance(value, Mapping), None)]
    while stack:
        items, done, is_map, _ = stack[-1]
        for item in items:
            key, child = item if is_map else (None, item)
            if isinstance(child, (Mapping, tuple, list)):
                stack.append((_items_any(child), [], isinstance(child, Mapping), key))
                break
            done.append((key, child) if is_map else child)
        else:
            _, done, is_map, key = stack.pop()
            plain: Any = dict(done) if is_map else list(done)
            if not stack:
                result.append(plain)
            else:
                parent_done, parent_is_map = stack[-1][1], stack[-1][2]
                parent_done.append((key, plain) if parent_is_map else plain)
    return result[0]


def _items_any(node: Any) -> Iterator[Any]:
    return iter(node.items()) if isinstance(node, Mapping) else iter(node)




# -- readable reprs ------------------------------------------------------------------------------
# What a user reads at the prompt (``t.usage``, ``t.steps[1]``, ``t``): fields left at their
# default are left out, long text is cut with a count of what was cut, multi-line code is shown
# as a block. Each repr is bounded in size (a 10 MB answer prints as one short line), and is
# ``__repr__`` only: equality, hashing and pickling are the dataclass's own.
_TEXT_LIMIT = 80
_ITEMS_LIMIT = 3
_CODE_LINES = 12
_STEPS_LIMIT = 20
_DEPTH_LIMIT = 4


def _cut(text: str, limit: int = _TEXT_LIMIT) -> str:
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}…(+{len(text) - limit} chars)"


def _shown(value: Any, depth: int = 0) -> str:
    if isinstance(value, str):
        return _cut(value)
    if depth >= _DEPTH_LIMIT and isinstance(value, (tuple, Mapping)):
        return "(…)" if isinstance(value, tuple) else "{…}"  # a reply may nest thousands deep
    if isinstance(value, tuple) and len(value) > _ITEMS_LIMIT:
        shown = ", ".join(_shown(v, depth + 1) for v in value[:_ITEMS_LIMIT])
        return f"({shown}, …(+{len(value) - _ITEMS_LIMIT} more))"
    if isinstance(value, tuple):
        return "(" + ", ".join(_shown(v, depth + 1) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, Mapping):
        items = list(value.items())
        inner = ", ".join(f"{k!r}: {_shown(v, depth + 1)}" for k, v in items[:_ITEMS_LIMIT])
        more = f", …(+{len(items) - _ITEMS_LIMIT} more)" if len(items) > _ITEMS_LIMIT else ""
        return "{" + inner + more + "}"
    try:
        text = repr(value)
    except RecursionError:
        return f"<{type(value).__name__}, nested too deeply to show>"
    return text if len(text) <= 4 * _TEXT_LIMIT else text[: 4 * _TEXT_LIMIT] + f"…(+{len(text) - 4 * _TEXT_LIMIT} chars)"


def _is_default(f: dataclasses.Field[Any], value: Any) -> bool:
    if f.default is not dataclasses.MISSING:
        return bool(value == f.default)
    if f.default_factory is not dataclasses.MISSING:
        return bool(value == f.default_factory())
    return False


def _fields_repr(obj: Any, *, block: str = "") -> str:
    """``Name(field=value, …)`` without defaults and ``kind``; ``block`` names a code field shown
    as indented lines after the others."""
    parts: list[str] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if not f.repr or f.name == "kind" or f.name == block or _is_default(f, value):
            continue
        if f.name.endswith("_raw") and getattr(obj, "view", None) is not None:
            parts.append(f"{f.name}=<{len(value)} chars>")  # the view below says it readably
            continue
        parts.append(f"{f.name}={_shown(value)}")
    name = type(obj).__name__
    code = getattr(obj, block) if block else None
    if not isinstance(code, str) or "\n" not in code.strip("\n"):
        if isinstance(code, str):
            parts.insert(0, f"{block}={_cut(code)}")
        return f"{name}({', '.join(parts)})"
    return f"{name}({', '.join(parts)}{', ' if parts else ''}{block}=\n{_code_block(code)}\n)"


def _code_block(code: str) -> str:
    lines = code.strip("\n").split("\n")
    shown = [f"    {_cut(line, 2 * _TEXT_LIMIT)[1:-1] if len(line) > 2 * _TEXT_LIMIT else line}" for line in lines[:_CODE_LINES]]
    if len(lines) > _CODE_LINES:
        shown.append(f"    …(+{len(lines) - _CODE_LINES} lines)")
    return "\n".join(shown)



@dataclass(frozen=True, slots=True)
class Status:
    """A plugin message's ``status``: ``{"code": 200, "name": "Success", "message": ...}``."""

    def __repr__(self) -> str:
        return _fields_repr(self)


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

    def __repr__(self) -> str:
        # Without the query: a signed URL's signature must not reach logs or tracebacks.
        bare = self.url.split("?", 1)[0] + ("?…" if "?" in self.url else "")
        return f"Figure(url={_cut(bare, 2 * _TEXT_LIMIT)}" + (f", alt={_cut(self.alt)})" if self.alt else ")")


@dataclass(frozen=True, slots=True)
class FetchedImage:
    """The outcome of fetching one figure URL: bytes and sniffed MIME type, or an error.

    Kept on the :class:`Trace` (``trace.images``) so a stored trace displays exactly what the
    cell showed. ``url`` (the signed original) and ``data`` are left out of ``repr`` so logs and
    tracebacks never carry the signature or megabytes of bytes; show ``display_url`` instead.
    """

    url: str = field(repr=False)
    display_url: str
    data: bytes | None = field(default=None, repr=False)
    mime: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the bytes are a PNG/JPEG/GIF/WEBP image ready to embed."""
        return self.error is None and self.data is not None and self.mime is not None

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the image's bytes to ``path`` (e.g. ``t.images[0].save("fig-001.png")``)."""
        from .errors import ConfigError

        if not self.ok or self.data is None:
            raise ConfigError(f"This figure has no image to save ({self.error or 'not fetched'}): {self.display_url}")
        target = Path(path).expanduser()
        target.write_bytes(self.data)
        return target


class CallView(Protocol):
    """A plugin's typed reading of a call's arguments (built by :mod:`dashmagic.plugins`)."""

    @property
    def code_blocks(self) -> tuple[CodeBlock, ...]:
        """Code the call asks to run, in order (display only: never executed)."""
        ...


class ResultView(Protocol):
    """A plugin's typed reading of what it returned (built by :mod:`dashmagic.plugins`)."""

    @property
    def figures(self) -> tuple[Figure, ...]:
        """Images the result points to, in order (fetched by :mod:`dashmagic.images`)."""
        ...


class NoCodeBlocks:
    """Mixin for call views that carry no code. (A mixin, not a default on a base class: a
    dataclass would take an inherited ``figures``/``code_blocks`` property for a field default.)"""

    __slots__ = ()

    @property
    def code_blocks(self) -> tuple[CodeBlock, ...]:
        return ()


class NoFigures:
    """Mixin for result views that carry no figures."""

    __slots__ = ()

    @property
    def figures(self) -> tuple[Figure, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class CodeBlock:
    """Code in a fence (the ``code_interpreter`` call view)."""

    def __repr__(self) -> str:
        return _fields_repr(self, block="code")


    code: str
    language: str = "python"

    @property
    def code_blocks(self) -> tuple[CodeBlock, ...]:
        return (self,)


@dataclass(frozen=True, slots=True)
class Thought:
    """The assistant's reasoning (the ``Thought:`` text)."""

    def __repr__(self) -> str:
        return _fields_repr(self)


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

    def __repr__(self) -> str:
        return _fields_repr(self)


    plugin: str
    name: str
    arguments_raw: str
    arguments: Any = None
    arguments_error: str | None = None
    view: CallView | None = None
    kind: Literal["plugin_call"] = "plugin_call"


@dataclass(frozen=True, slots=True)
class PluginResult:
    """What the plugin returned, with its status."""

    def __repr__(self) -> str:
        return _fields_repr(self)


    plugin: str
    name: str
    content_raw: str
    content: Any = None
    content_error: str | None = None
    status: Status | None = None
    view: ResultView | None = None
    kind: Literal["plugin_result"] = "plugin_result"

    @property
    def ok(self) -> bool:
        return self.status is None or self.status.ok


@dataclass(frozen=True, slots=True)
class Answer:
    """The final answer (the ``Final Answer:`` text), Markdown."""

    def __repr__(self) -> str:
        return _fields_repr(self)


    text: str
    kind: Literal["answer"] = "answer"


@dataclass(frozen=True, slots=True)
class Reasoning:
    """The model's thinking (``message.reasoning_content``, today's generation): shown while it
    streams, folded once the answer starts. Thinking resumes after each tool run, so a trace may
    hold several, in order with the code they surround."""

    def __repr__(self) -> str:
        return _fields_repr(self)


    text: str
    kind: Literal["reasoning"] = "reasoning"


@dataclass(frozen=True, slots=True)
class CodeExecution:
    """Code the built-in code interpreter ran (an entry of ``output.tool_info``).

    The service returns only the code: no output, no result, no figure (protocol-current §4).
    ``index`` is the entry's position in the cumulative ``tool_info`` list.
    """

    def __repr__(self) -> str:
        return _fields_repr(self, block="code")


    code: str
    index: int = 0
    language: str = "python"
    kind: Literal["code_execution"] = "code_execution"

    @property
    def code_blocks(self) -> tuple[CodeBlock, ...]:
        return (CodeBlock(self.code, self.language),) if self.code else ()


@dataclass(frozen=True, slots=True)
class Source:
    """One web-search result (``output.search_info.search_results[]``). ``icon`` is never fetched."""

    def __repr__(self) -> str:
        return _fields_repr(self)


    index: int
    title: str = ""
    url: str = ""
    site_name: str = ""
    icon: str = ""


@dataclass(frozen=True, slots=True)
class SearchResults:
    """The sources a web search used; citation markers in the answer (``[1]``, ``[ref_1]``) point
    at their ``index``. ``extra`` holds ``extra_tool_info`` entries as sent."""

    def __repr__(self) -> str:
        return _fields_repr(self)


    sources: tuple[Source, ...] = ()
    extra: tuple[Any, ...] = ()
    kind: Literal["search"] = "search"


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """A function the model asks the caller to run (``message.tool_calls[i]``, joined per
    ``index`` across deltas). ``arguments`` is the parsed JSON once it parses, else None with
    ``arguments_error`` saying why (still arriving, or not JSON)."""

    def __repr__(self) -> str:
        return _fields_repr(self)


    index: int
    id: str = ""
    name: str = ""
    arguments_raw: str = ""
    arguments: Any = None
    arguments_error: str | None = None
    kind: Literal["function_call"] = "function_call"


@dataclass(frozen=True, slots=True)
class UnknownPart:
    """A part of the reply dashmagic does not know (an ``output`` or message key, a tool type):
    shown generically and safely, never dropped. ``where`` says where it was found."""

    def __repr__(self) -> str:
        return _fields_repr(self)


    where: str
    value: Any = None
    kind: Literal["unknown"] = "unknown"


LocalRunStatus = Literal["ok", "error", "timeout", "refused"]


@dataclass(frozen=True, slots=True)
class LocalRun:
    """The trace's code, run HERE (a separate Python process on this machine), not on DashScope.

    Made only on request (``--run-locally``, :meth:`Trace.run_locally`) by
    :mod:`dashmagic.local_run`. ``status``: ``ok`` (exit 0), ``error`` (non-zero exit: the
    traceback is in ``stderr``), ``timeout`` (killed, with its process group, after ``timeout``
    seconds) or ``refused`` (nothing ran; ``reason`` says why, e.g. invisible characters).
    ``stdout_dropped`` / ``stderr_dropped`` count the bytes cut past the cap. ``figures`` are the
    PNGs of the figures matplotlib had open at the end; ``files`` what the code left in its
    temporary folder (removed afterwards). ``replayed``: the result came from a recording.
    """

    code_sha256: str
    status: LocalRunStatus
    blocks: int = 0
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_dropped: int = 0
    stderr_dropped: int = 0
    value: str | None = None
    figures: tuple[FetchedImage, ...] = ()
    files: tuple[str, ...] = ()
    duration: float = 0.0
    timeout: float = 30.0
    reason: str = ""
    replayed: bool = False
    kind: Literal["local_run"] = "local_run"

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def timed_out(self) -> bool:
        return self.status == "timeout"


#: Who let a tool call run: ``pending`` (waiting for the user), ``approved`` / ``rejected`` (the
#: user's answer), ``automatic`` (approved up front: ``approve="all"`` or the tool's name),
#: ``needed`` (nobody could answer here, so it did not run), ``none`` (never asked: refused first).
ToolApproval = Literal["pending", "approved", "rejected", "automatic", "needed", "none"]
#: ``waiting`` (not run yet), ``ok``, ``error`` (the function raised), ``invalid`` (the arguments
#: were not JSON, did not fit the schema, or named a tool not offered: never run), ``declined``
#: (rejected, or approval needed), ``replayed`` (the result came from the recording).
ToolRunStatus = Literal["waiting", "ok", "error", "invalid", "declined", "replayed"]


@dataclass(frozen=True, slots=True)
class ToolRun:
    """One function call the model asked for, run (or not) HERE by :mod:`dashmagic.tool_loop`.

    ``result`` is the text sent back to the model as the ``role: tool`` message (capped);
    ``error`` the one-line reason when it did not run or raised. ``round`` counts model calls
    from 1. ``note`` says something worth knowing (cut to the cap, differs from the recording).
    """

    def __repr__(self) -> str:
        return _fields_repr(self)

    call_id: str
    name: str
    arguments_raw: str = ""
    arguments: Any = None
    round: int = 1
    approval: ToolApproval = "pending"
    status: ToolRunStatus = "waiting"
    result: str = ""
    result_type: str = ""
    error: str | None = None
    duration: float | None = None
    note: str = ""
    kind: Literal["tool_run"] = "tool_run"

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "replayed")


Step = Union[Thought, PluginCall, PluginResult, Answer, Reasoning, CodeExecution, SearchResults, FunctionCall, UnknownPart, LocalRun, ToolRun]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the service reported them (None: not reported)."""

    def __repr__(self) -> str:
        return _fields_repr(self)


    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    #: ``usage.plugins`` as ``{plugin: count}``, when the service reported it.
    plugins: Mapping[str, int] = field(default_factory=lambda: EMPTY_MAP)
    #: ``usage.output_tokens_details.reasoning_tokens`` (thinking models).
    reasoning_tokens: int | None = None
    #: ``usage.prompt_tokens_details.cached_tokens`` (context cache hits).
    cached_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Round:
    """One model call of a tool loop: what it cost and how it ended."""

    def __repr__(self) -> str:
        return _fields_repr(self)

    index: int
    usage: Usage
    request_id: str | None = None
    finish_reason: str | None = None
    elapsed: float | None = None
    tool_calls: int = 0



@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What was asked, kept beside the answer (no key, no headers)."""

    def __repr__(self) -> str:
        return _fields_repr(self)


    model: str
    plugins: tuple[str, ...] = ()
    prompt: str = ""
    files: tuple[str, ...] = ()
    stream: bool = False
    url: str = ""
    #: The wire format that built the request and folds its reply (see :mod:`dashmagic.protocol`).
    protocol: str = "plugin_header"
    #: The user message this call added to the conversation (``--chat`` / ``history()`` carry it).
    user_message: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A plain-data summary of the error that ended a trace (the exception may not pickle)."""

    def __repr__(self) -> str:
        return _fields_repr(self)


    type: str
    message: str
    status_code: int | None = None
    code: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Trace:
    """One exchange: steps in order plus everything around them."""

    def __repr__(self) -> str:
        head = [f"status={self.status!r}"]
        for name in ("model", "request_id", "finish_reason"):
            value = getattr(self, name)
            if value is not None:
                head.append(f"{name}={_cut(value)}")
        if self.elapsed is not None:
            head.append(f"elapsed={self.elapsed:.2f}")
        lines = [f"Trace({', '.join(head)},", f"  request={self.request!r},"]
        if self.steps:
            lines.append("  steps=[")
            for step in self.steps[:_STEPS_LIMIT]:
                lines.append("    " + repr(step).replace("\n", "\n    ") + ",")
            if len(self.steps) > _STEPS_LIMIT:
                lines.append(f"    …(+{len(self.steps) - _STEPS_LIMIT} more steps)")
            lines.append("  ],")
        lines.append(f"  usage={self.usage!r},")
        if self.error is not None:
            lines.append(f"  error={self.error!r},")
        if self.rounds:
            lines.append(f"  rounds=<{len(self.rounds)} model call(s)>,")
        for name in ("notes", "images"):
            value = getattr(self, name)
            if value:
                lines.append(f"  {name}={_shown(value)},")
        if self.messages:
            lines.append(f"  messages=<{len(self.messages)} message(s); see .history()>,")
        lines[-1] = lines[-1].rstrip(",") + ")"
        return "\n".join(lines)


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
    #: Figures fetched for this trace, in first-seen order (so the trace is self-sufficient).
    images: tuple[FetchedImage, ...] = ()
    #: A tool loop's model calls, in order (``usage`` is their sum); empty for a single call.
    rounds: tuple[Round, ...] = ()

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
        """Code the model ran or asked to run, in order: the ``code_interpreter`` plugin's calls and
        the built-in interpreter's executions (never executed, except by :meth:`run_locally`, on request)."""
        blocks: list[CodeBlock] = []
        for step in self.steps:
            if isinstance(step, PluginCall) and step.view is not None:
                blocks.extend(step.view.code_blocks)
            elif isinstance(step, CodeExecution):
                blocks.extend(step.code_blocks)
        return tuple(blocks)

    @property
    def reasoning(self) -> str:
        """All the model's thinking, in order (empty when it did not think)."""
        return "\n\n".join(s.text for s in self.steps if isinstance(s, Reasoning))

    @property
    def function_calls(self) -> tuple[FunctionCall, ...]:
        """Functions the model asks the caller to run (``finish_reason: tool_calls``)."""
        return tuple(s for s in self.steps if isinstance(s, FunctionCall))

    @property
    def tool_runs(self) -> tuple[ToolRun, ...]:
        """The function calls run (or refused) here by a tool loop, in order."""
        return tuple(s for s in self.steps if isinstance(s, ToolRun))

    @property
    def sources(self) -> tuple[Source, ...]:
        """Web-search sources, in the order the service listed them."""
        return tuple(src for s in self.steps if isinstance(s, SearchResults) for src in s.sources)

    @property
    def local_runs(self) -> tuple[LocalRun, ...]:
        """Runs of this trace's code on this machine (``--run-locally``), in order."""
        return tuple(s for s in self.steps if isinstance(s, LocalRun))

    def run_locally(self, **options: Any) -> Trace:
        """This trace plus a :class:`LocalRun` step: its code run in a separate Python process.

        Never in this kernel. Options (see :func:`dashmagic.local_run.run_trace`): ``timeout``
        (30 s), ``allow_invisible`` (False: code holding bidi/invisible characters is refused),
        ``mode`` and ``recordings`` (default ``DASHMAGIC_MODE`` / ``DASHMAGIC_RECORDINGS``: in
        replay mode the result comes from the recording and nothing runs).
        """
        from .local_run import run_trace

        return run_trace(self, **options)

    @property
    def figures(self) -> tuple[Figure, ...]:
        out: list[Figure] = []
        for step in self.plugin_results:
            if step.view is not None:
                out.extend(step.view.figures)
        return tuple(out)

    def image(self, url: str) -> FetchedImage | None:
        """The fetched image for a figure URL, if one was fetched."""
        for image in self.images:
            if image.url == url:
                return image
        return None

    def history(self) -> list[dict[str, Any]]:
        """The service's messages as plain dicts, ready to send back as chat history."""
        return [thaw(m) for m in self.messages]

    def turn(self) -> list[dict[str, Any]]:
        """This exchange as conversation history: the user message sent, then the service's."""
        asked = [thaw(self.request.user_message)] if self.request.user_message is not None else []
        return asked + self.history()

    def replace(self, **changes: Any) -> Trace:
        return dataclasses.replace(self, **changes)

    # -- display -----------------------------------------------------------------------
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from .render import mimebundle  # rendering is imported only when something displays

        return mimebundle(self, include=include, exclude=exclude)

    def __str__(self) -> str:
        from .render.text import render_text

        return render_text(self)
