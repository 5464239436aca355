"""Today's generation: built-in tools set in ``parameters`` (protocol-current.md).

Out: ``enable_thinking`` (+ ``thinking_budget``), ``enable_code_interpreter``, ``enable_search`` +
``search_options``, ``tools`` / ``tool_choice``, and ``incremental_output: true`` on every
streamed call (thinking models stream only deltas; the service refuses it on non-streamed calls).
Qwen 3.5 / 3.6 / 3.7 go to the multimodal endpoint, whose content is a list of ``{"text": …}``.

In: :class:`BuiltinFolder` folds ``reasoning_content`` → :class:`Reasoning`, ``content`` →
:class:`Answer`, the cumulative ``output.tool_info`` → one :class:`CodeExecution` per entry,
``output.search_info`` (first event only) → one :class:`SearchResults`, ``tool_calls`` joined per
``index`` → :class:`FunctionCall`, and anything else → :class:`UnknownPart`, in arrival order.

Deltas or snapshots: whatever was asked, the folder reads the stream itself. A text that starts
with everything received so far for its field is a snapshot; one that does not proves the stream
sends deltas (the service uses one kind per stream). Until the first proof, texts are read as
snapshots and the raw pieces are kept, so a delta stream whose second piece happened to repeat
the first (``"1"``, ``"1"``) is repaired when the proof comes; past :data:`_UNDECIDED_CHARS`
characters of consistent growth the stream is taken for snapshots. (The same text again is read
as a repeated snapshot, as snapshot streams do on every event that changes another field; a delta
stream whose every piece repeats the first exactly would be misread, and real ones prove
themselves by their second or third event.) What was asked is not used: qwen3-max sends deltas
unasked, and a proxy may send snapshots when deltas were asked. Every pass is linear in the
reply: texts are kept as pieces and joined once per snapshot, only for the step that grew.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, Union

from ..request import (
    MULTIMODAL_GENERATION_PATH,
    TEXT_GENERATION_PATH,
    Call,
    CallOptions,
    base_headers,
    build_messages,
    request_info,
)
from ..trace import (
    Answer,
    CodeExecution,
    FunctionCall,
    Reasoning,
    RequestInfo,
    SearchResults,
    Source,
    Step,
    UnknownPart,
    freeze,
    thaw,
)
from .envelope import to_int, to_str
from .hints import endpoint_hint, first_hint, streaming_hint

if TYPE_CHECKING:
    from ..errors import ApiError

__all__ = ["FORMAT", "BuiltinToolsFormat", "BuiltinFolder", "endpoint_for", "multimodal_model", "list_content"]

#: Qwen 3.5 / 3.6 / 3.7 (Plus, Flash, dated snapshots) are "multimodal interface" models (§1).
_MULTIMODAL_MODEL = re.compile(r"^qwen3\.[5-7](?![0-9])", re.IGNORECASE)
#: How much consistently growing text makes a stream count as snapshots (see the module doc).
_UNDECIDED_CHARS = 64
#: Arguments longer than this are parsed once, when the reply is complete (not on every event).
_PARSE_WHILE_ARRIVING = 64 * 1024

_OUTPUT_KEYS = frozenset({"choices", "tool_info", "search_info", "finish_reason", "text"})
_CHOICE_KEYS = frozenset({"message", "finish_reason", "index", "logprobs"})
_MESSAGE_KEYS = frozenset({"role", "content", "reasoning_content", "tool_calls"})
_SEARCH_KEYS = frozenset({"search_results", "extra_tool_info"})


def multimodal_model(model: str) -> bool:
    return bool(_MULTIMODAL_MODEL.match(model.strip()))


def endpoint_for(options: CallOptions) -> str:
    """The path a call goes to: the override, else the multimodal endpoint for Qwen 3.5+."""
    endpoint = options.endpoint or ("multimodal" if multimodal_model(options.model) else "text")
    return MULTIMODAL_GENERATION_PATH if endpoint == "multimodal" else TEXT_GENERATION_PATH


def list_content(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message as the multimodal endpoint takes it: string content becomes ``[{"text": …}]``."""
    out = dict(message)
    content = out.get("content")
    if isinstance(content, str):
        out["content"] = [{"text": content}]
    return out


def _parameters(options: CallOptions) -> dict[str, Any]:
    parameters: dict[str, Any] = {"result_format": "message"}
    if options.stream:
        # Ask for deltas wherever the service allows it (never on non-streamed calls: a 400).
        parameters["incremental_output"] = True
    if options.thinking is not None:
        parameters["enable_thinking"] = options.thinking
    if options.thinking_budget is not None:
        parameters["thinking_budget"] = options.thinking_budget
    if options.code_interpreter:
        parameters["enable_code_interpreter"] = True
    if options.search is not None:
        parameters["enable_search"] = True
        if options.search:
            parameters["search_options"] = thaw(options.search)
    if options.tools:
        parameters["tools"] = [thaw(tool) for tool in options.tools]
    if options.tool_choice is not None:
        parameters["tool_choice"] = thaw(options.tool_choice)
    if options.seed is not None:
        parameters["seed"] = options.seed
    # The user's parameters win: unknown future tools and overrides pass through as given.
    parameters.update(thaw(options.parameters))
    return parameters


class BuiltinToolsFormat:
    """Builds built-in-tool calls and folds their replies."""

    name = "builtin_tools"

    def build(self, options: CallOptions, *, base_url: str) -> Call:
        path = endpoint_for(options)
        messages = build_messages(options)
        if path == MULTIMODAL_GENERATION_PATH:
            messages = [list_content(m) for m in messages]
        parameters = _parameters(options)
        body = {"model": options.model, "input": {"messages": messages}, "parameters": parameters}
        url = base_url.rstrip("/") + path
        info = request_info(options, url=url, protocol=self.name, messages=messages)
        incremental = bool(options.stream and parameters.get("incremental_output") is True)
        return Call(
            url=url, headers=base_headers(options.stream), body=body, stream=options.stream, info=info,
            incremental=incremental,
        )

    def folder(self, request: RequestInfo) -> BuiltinFolder:
        return BuiltinFolder(request)

    def hint(self, error: ApiError, call: Call) -> str | None:
        return first_hint(error, call, endpoint_hint, streaming_hint)


FORMAT = BuiltinToolsFormat()


# -- reading replies -----------------------------------------------------------------------------

_Mode = Literal["undecided", "deltas", "snapshots"]


class _Stream:
    """What kind of texts this reply sends; shared by all its fields (one kind per stream)."""

    __slots__ = ("mode", "fields")

    def __init__(self) -> None:
        self.mode: _Mode = "undecided"
        self.fields: list[_Text] = []

    def deltas(self) -> None:
        self.mode = "deltas"
        for text in self.fields:
            text.as_deltas()


class _Text:
    """One growing text of the reply (reasoning, answer, one call's arguments), kept as pieces.

    ``revision`` changes only when text already shown changes (a repair or a rewritten snapshot),
    so the steps cut from earlier spans of it stay cached while it grows.
    """

    __slots__ = ("_stream", "_whole", "_pieces", "_raws", "length", "revision")

    def __init__(self, stream: _Stream) -> None:
        self._stream = stream
        self._whole = ""
        self._pieces: list[str] = []
        self._raws: list[str] = []  # the texts as received, while the stream's kind is undecided
        self.length = 0
        self.revision = 0
        stream.fields.append(self)

    def text(self) -> str:
        if self._pieces:
            self._whole += "".join(self._pieces)
            self._pieces = []
        return self._whole

    def merge(self, new: str) -> None:
        if not new:
            return  # the empty last event of a delta stream, or "nothing yet" in a snapshot
        mode = self._stream.mode
        if mode == "deltas" or not self.length:
            if mode == "undecided":
                self._raws.append(new)
            self._append(new)
        elif mode == "snapshots":
            self._replace(new)
        elif len(new) >= self.length and new.startswith(self.text()):
            self._raws.append(new)
            self._replace(new)
            if self.length >= _UNDECIDED_CHARS:
                self._stream.mode = "snapshots"
                self._raws = []
        else:
            self._stream.deltas()  # proof: repairs every field read as snapshots so far
            self._append(new)

    def as_deltas(self) -> None:
        """The stream sends deltas: what was read as snapshots is the pieces joined."""
        raws, self._raws = self._raws, []
        if len(raws) > 1:
            self._whole, self._pieces = "".join(raws), []
            self.length = len(self._whole)
            self.revision += 1

    def _append(self, new: str) -> None:
        self._pieces.append(new)
        self.length += len(new)

    def _replace(self, new: str) -> None:
        if not new.startswith(self.text()):
            self.revision += 1
        self._whole, self._pieces, self.length = new, [], len(new)


class _Segment:
    """A run of reasoning or answer between other steps: a span of its field's text."""

    __slots__ = ("kind", "field", "start", "end", "_key", "_step")

    def __init__(self, kind: Literal["reasoning", "answer"], field: _Text, start: int) -> None:
        self.kind = kind
        self.field = field
        self.start = start
        self.end: int | None = None  # open while it is the last step
        self._key: Any = None
        self._step: Step | None = None

    def close(self) -> None:
        if self.end is None:
            self.end = self.field.length

    def step(self, final: bool) -> Step | None:
        end = self.field.length if self.end is None else self.end
        key = (self.start, end, self.field.revision)
        if key != self._key:
            text = self.field.text()[self.start : end]
            self._key, self._step = key, (Reasoning(text) if self.kind == "reasoning" else Answer(text)) if text else None
        return self._step


class _Code:
    """One ``tool_info`` entry of the code interpreter: its code is the latest non-empty one."""

    __slots__ = ("index", "code")

    def __init__(self, index: int) -> None:
        self.index = index
        self.code = ""

    def step(self, final: bool) -> Step | None:
        return CodeExecution(self.code, index=self.index)


class _Search:
    __slots__ = ("sources", "extra")

    def __init__(self) -> None:
        self.sources: tuple[Source, ...] = ()
        self.extra: tuple[Any, ...] = ()

    def step(self, final: bool) -> Step | None:
        return SearchResults(self.sources, self.extra)


class _Call:
    """One requested function call, joined across deltas by its ``index``."""

    __slots__ = ("index", "id", "type", "name", "arguments", "_key", "_step")

    def __init__(self, index: int, stream: _Stream) -> None:
        self.index = index
        self.id = ""
        self.type = "function"
        self.name = ""
        self.arguments = _Text(stream)
        self._key: Any = None
        self._step: Step | None = None

    def step(self, final: bool) -> Step | None:
        key = (self.id, self.name, self.arguments.length, self.arguments.revision, final)
        if key != self._key:
            raw = self.arguments.text()
            parsed, error = _parse_arguments(raw, final)
            self._key = key
            self._step = FunctionCall(self.index, self.id, self.name, raw, parsed, error)
        return self._step

    def message(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "index": self.index,
            "function": {"name": self.name, "arguments": self.arguments.text()},
        }


class _Unknown:
    __slots__ = ("where", "value")

    def __init__(self, where: str) -> None:
        self.where = where
        self.value: Any = None

    def step(self, final: bool) -> Step | None:
        return UnknownPart(self.where, self.value)


_Slot = Union[_Segment, _Code, _Search, _Call, _Unknown]


def _parse_arguments(raw: str, final: bool) -> tuple[Any, str | None]:
    # Arguments arrive in fragments: parse only what may be whole (cheap check first).
    stripped = raw.strip()
    if not final and (len(stripped) > _PARSE_WHILE_ARRIVING or not stripped.endswith(("}", "]"))):
        return None, "still arriving"
    if not stripped:
        return {}, None
    try:
        return freeze(json.loads(stripped)), None
    except (ValueError, RecursionError) as exc:
        return None, ("still arriving" if not final else f"not JSON ({str(exc)[:80]})")


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _content_text(content: Any, unknown: list[tuple[str, Any]]) -> str:
    """``content`` as text: a string, or the ``{"text"}`` parts of the multimodal list form."""
    if isinstance(content, str) or content is None:
        return content or ""
    if not isinstance(content, list):
        unknown.append(("message.content", content))
        return ""
    texts = []
    for part in content:
        if isinstance(part, Mapping) and set(part) == {"text"}:
            texts.append(to_str(part["text"]))
        elif not _empty(part):
            unknown.append(("message.content[]", part))
    return "".join(texts)


def _source(position: int, raw: Any) -> Source | None:
    if not isinstance(raw, Mapping):
        return None
    index = to_int(raw.get("index"))
    return Source(
        index=position + 1 if index is None else index,
        title=to_str(raw.get("title")),
        url=to_str(raw.get("url")),
        site_name=to_str(raw.get("site_name")),
        icon=to_str(raw.get("icon")),
    )


class BuiltinFolder:
    """Today's reducer: reasoning, code, search, answer, function calls and unknown parts, in order."""

    def __init__(self, request: RequestInfo) -> None:
        self._multimodal = request.url.endswith(MULTIMODAL_GENERATION_PATH)
        self._stream = _Stream()
        self._reasoning = _Text(self._stream)
        self._answer = _Text(self._stream)
        self._slots: list[_Slot] = []
        self._open: _Segment | None = None  # the run of text still growing
        self._code: dict[int, _Code] = {}
        self._search: _Search | None = None
        self._calls: dict[int, _Call] = {}
        self._unknown: dict[str, _Unknown] = {}
        self._messages_key: Any = None
        self._messages: tuple[Mapping[str, Any], ...] = ()

    # -- feeding -------------------------------------------------------------------------------
    def feed(self, output: Mapping[str, Any], *, incremental: bool) -> None:
        # ``incremental`` (what was asked) is not trusted: the texts say what the server sends.
        unknown: list[tuple[str, Any]] = [(f"output.{k}", v) for k, v in output.items() if k not in _OUTPUT_KEYS]
        self._read_search(output.get("search_info"), unknown)
        message = self._message(output, unknown)
        self._add_text("reasoning", to_str(message.get("reasoning_content")))
        self._read_tool_info(output.get("tool_info"), unknown)
        content = message.get("content") if "content" in message else output.get("text")
        self._add_text("answer", _content_text(content, unknown))
        self._read_tool_calls(message.get("tool_calls"), unknown)
        for where, value in unknown:
            self._set_unknown(where, value)

    def _message(self, output: Mapping[str, Any], unknown: list[tuple[str, Any]]) -> Mapping[str, Any]:
        choices = output.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
            return {}
        choice = choices[0]
        unknown.extend((f"choices[0].{k}", v) for k, v in choice.items() if k not in _CHOICE_KEYS)
        message = choice.get("message")
        if not isinstance(message, Mapping):
            return {}
        unknown.extend((f"message.{k}", v) for k, v in message.items() if k not in _MESSAGE_KEYS)
        return message

    def _append_slot(self, slot: _Slot) -> None:
        # A new step ends the open run of text; an unknown part beside it does not (it is shown
        # after the text, which goes on growing in the same step).
        if self._open is not None and not isinstance(slot, _Unknown):
            self._open.close()
            self._open = None
        self._slots.append(slot)

    def _add_text(self, kind: Literal["reasoning", "answer"], new: str) -> None:
        field = self._reasoning if kind == "reasoning" else self._answer
        before = field.length
        field.merge(new)
        if field.length <= before:
            return  # nothing new to show (an empty delta, a repeated snapshot)
        if self._open is None or self._open.field is not field:
            # Thinking resumes after a tool run: a new step, after the code, in arrival order.
            segment = _Segment(kind, field, before)
            self._append_slot(segment)
            self._open = segment

    def _read_tool_info(self, tool_info: Any, unknown: list[tuple[str, Any]]) -> None:
        if not isinstance(tool_info, list):
            if not _empty(tool_info):
                unknown.append(("output.tool_info", tool_info))
            return
        for index, entry in enumerate(tool_info):
            kind = entry.get("type") if isinstance(entry, Mapping) else None
            if kind != "code_interpreter":
                if not _empty(entry):
                    unknown.append((f"output.tool_info[{index}]", entry))
                continue
            slot = self._code.get(index)
            if slot is None:
                # The entry's place is fixed when it first appears (often with code ""): one
                # step per index, filled in place, never duplicated by the cumulative list.
                slot = self._code[index] = _Code(index)
                self._append_slot(slot)
            config = entry.get("code_interpreter")
            code = to_str(config.get("code")) if isinstance(config, Mapping) else ""
            if code:
                slot.code = code

    def _read_search(self, info: Any, unknown: list[tuple[str, Any]]) -> None:
        if not isinstance(info, Mapping):
            if not _empty(info):
                unknown.append(("output.search_info", info))
            return
        unknown.extend((f"output.search_info.{k}", v) for k, v in info.items() if k not in _SEARCH_KEYS)
        results = info.get("search_results")
        sources: tuple[Source, ...] = ()
        if isinstance(results, list):
            sources = tuple(s for i, r in enumerate(results) if (s := _source(i, r)))
            unknown.extend((f"output.search_info.search_results[{i}]", r) for i, r in enumerate(results)
                           if not isinstance(r, Mapping))
        elif not _empty(results):
            unknown.append(("output.search_info.search_results", results))
        extra = info.get("extra_tool_info")
        extras = tuple(freeze(e) for e in extra) if isinstance(extra, list) else ()
        if not sources and not extras:
            return  # later events carry ``search_results: []``: they must not wipe the first
        if self._search is None:
            self._search = _Search()
            self._append_slot(self._search)
        if sources:
            self._search.sources = sources
        if extras:
            self._search.extra = extras

    def _read_tool_calls(self, calls: Any, unknown: list[tuple[str, Any]]) -> None:
        if not isinstance(calls, list):
            if not _empty(calls):
                unknown.append(("message.tool_calls", calls))
            return
        for position, delta in enumerate(calls):
            if not isinstance(delta, Mapping):
                unknown.append((f"message.tool_calls[{position}]", delta))
                continue
            index = to_int(delta.get("index"))
            index = position if index is None else index
            slot = self._calls.get(index)
            if slot is None:
                slot = self._calls[index] = _Call(index, self._stream)
                self._append_slot(slot)
            # id, type and name come whole (first); only the arguments arrive in fragments.
            slot.id = to_str(delta.get("id")) or slot.id
            slot.type = to_str(delta.get("type")) or slot.type
            function = delta.get("function")
            if isinstance(function, Mapping):
                slot.name = to_str(function.get("name")) or slot.name
                slot.arguments.merge(to_str(function.get("arguments")))
            if slot.type != "function" and "function" not in delta:
                unknown.append((f"message.tool_calls[{index}]", delta))

    def _set_unknown(self, where: str, value: Any) -> None:
        if _empty(value):
            return
        slot = self._unknown.get(where)
        if slot is None:
            slot = self._unknown[where] = _Unknown(where)
            self._append_slot(slot)
        slot.value = freeze(value)

    # -- reading -------------------------------------------------------------------------------
    def steps(self, *, final: bool) -> tuple[Step, ...]:
        return tuple(step for slot in self._slots if (step := slot.step(final)) is not None)

    def messages(self) -> tuple[Mapping[str, Any], ...]:
        """The assistant message as the service expects it back: no ``reasoning_content``, the
        ``tool_calls`` joined. None when the reply had neither text nor calls (an empty
        assistant message is refused: "Content length must be greater than 0")."""
        calls = tuple(self._calls[i] for i in sorted(self._calls))
        key = (
            self._answer.length,
            self._answer.revision,
            tuple((c.id, c.name, c.arguments.length, c.arguments.revision) for c in calls),
        )
        if key == self._messages_key:
            return self._messages
        self._messages_key = key
        text = self._answer.text()
        if not text and not calls:
            self._messages = ()
            return self._messages
        message: dict[str, Any] = {"role": "assistant", "content": [{"text": text}] if self._multimodal else text}
        if calls:
            message["tool_calls"] = [c.message() for c in calls]
        self._messages = (freeze(message),)
        return self._messages
