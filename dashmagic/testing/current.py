"""The fake's current generation: built-in tools in ``parameters``, thinking, function calling.

Facts are from ``protocol-current.md`` ([DOC]/[REAL]); what no source fixes is marked [INF].
A request is answered here when it has no ``X-DashScope-Plugin`` header and either goes to the
multimodal endpoint, sets ``enable_thinking``/``enable_code_interpreter``/``enable_search``/``tools``,
carries a ``role: tool`` message, or has a scripted prompt. Queued replies and seed exchanges
still come first (see :mod:`dashmagic.testing.server`).

Scripted prompts (text of the last user message; :mod:`dashmagic.testing.scripts`)
================================================  =================================================
prompt                                            answer
================================================  =================================================
``123的21次方是多少？``,                             with ``enable_code_interpreter``: thinking, the code
``What is 123 to the power of 21?``               ``123**21`` in ``tool_info``, thinking on the result,
                                                  the answer 77269364466549865653073473388030061522211723;
                                                  otherwise (thinking and) the answer only
``Who won the 2022 FIFA World Cup?``,             with ``enable_search``: five sources (``SEARCH_SOURCES``)
``2022年世界杯冠军是谁？``                           in ``search_info`` when ``search_options.enable_source``,
                                                  citations ``[1]``/``[ref_1]`` when ``enable_citation``
                                                  (``citation_format``), ``usage.plugins.search``
``What's the weather like in Hangzhou and         with a function whose name contains ``weather`` in
Beijing?``                                        ``tools``: calls it per city (both at once when
                                                  ``parallel_tool_calls``, else one per round), then,
                                                  once every ``tool_call_id`` has its ``role: tool``
                                                  message, answers from their content
``杭州现在的天气如何？``                             the same with one call (location ``浙江省杭州市``)
``请问 1+1 是多少？``, ``What is 1+1?``              (thinking and) ``1 + 1 = **2**. …``
the seed's chickens-and-rabbits question          with ``enable_code_interpreter``: thinking, code that
(``scripts.CAGE_PROMPT``)                         prints ``33 67``, thinking, the answer (33 and 67)
``What changed in pandas 3.0?``                   with ``enable_search``: four pandas.pydata.org
                                                  sources (``PANDAS_SOURCES``), citations as above
``SALES_BEST``, ``SALES_CHANGE`` (scripts.py;     with functions named ``*top*`` and ``*change*``: the
notebook 06)                                      ranking, then the best region's change, answered from
                                                  the results (or saying it was declined); ``change``
                                                  with full month names, retried with short ones after
                                                  an ``Error:`` result
anything else                                     (thinking and) ``(fake DashScope) no scripted answer
                                                  for: <prompt>``
================================================  =================================================
Call ids are ``scripts.call_id(name, arguments)``: deterministic, so a test can answer them.

Wire shape
    Streams are deltas when ``incremental_output`` is true, when it is absent and the model
    defaults to deltas (qwen3-max, open-source Qwen3, QwQ, QVQ, Qwen3-VL), and always with
    thinking ("thinking models only stream deltas"); otherwise snapshots. Each delta event's
    message is ``{"content", "reasoning_content" (with thinking), "role"}``, the unused text
    ``""``; mid-stream ``finish_reason`` is the string ``"null"``; a delta stream ends with an
    empty event carrying the real ``finish_reason``. ``output.tool_info`` is cumulative and
    repeated on every later event; each new entry first appears with ``"code": ""`` [DOC], then
    with its code; ``input_tokens`` jumps after the run; ``usage.plugins.code_interpreter.count``
    appears from the first tool event on. ``search_info.search_results`` holds the sources on
    the first event and ``[]`` later (with ``prepend_search_result`` the first event carries only
    them). Function calls stream per ``index``: id, type and name first (``arguments: ""``), then
    argument fragments (``id: ""``, no name); parallel calls interleave. On the multimodal
    endpoint ``content`` is a list: ``[]`` while thinking, ``[{"text": piece}]`` for the answer.
    ``usage`` is cumulative: ``output_tokens_details.reasoning_tokens`` with thinking,
    ``prompt_tokens_details.cached_tokens`` for qwen3* models [INF], ``plugins`` when a tool ran.

Refusals (400 ``InvalidParameter``; a 200 SSE ``event:error`` with ``:HTTP_STATUS/400`` when the
request streams, as the one real streamed refusal)
    ``REFUSALS`` maps each case to its message; see :func:`refusal` for the order.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .exchanges import prompt_text
from .scripts import SCRIPTS, Calls, Code, Plan, Say, Segment, Think, ToolCall, Turn, plan_for

__all__ = [
    "MULTIMODAL_PATH",
    "REFUSALS",
    "TEXT_PATH",
    "Answer",
    "CurrentRequest",
    "handles",
    "refusal",
]

TEXT_PATH = "/api/v1/services/aigc/text-generation/generation"
MULTIMODAL_PATH = "/api/v1/services/aigc/multimodal-generation/generation"
NULL_FINISH = "null"

REFUSALS: Mapping[str, str] = {
    "incremental_not_streamed": "parameter incremental_output only support stream call",  # [REAL]
    "plugin_incremental": "Plugins=[['code_interpreter']] don't support incremental_output",  # [REAL]
    "empty_messages": "Role must be user or assistant and Content length must be greater than 0",  # [REAL]
    "multimodal_model": "url error, please check url！",  # [DOC]
    "thinking_only": "The value of the enable_thinking parameter is restricted to True.",  # [DOC]
    "thinking_not_streamed": "parameter.enable_thinking must be set to false for non-streaming calls",  # [DOC]
    "code_not_streamed": "parameter enable_code_interpreter only support stream call",  # [INF]
    "code_without_thinking": "parameter enable_code_interpreter requires enable_thinking to be true",  # [INF]
    "code_with_tools": "parameter enable_code_interpreter can not be used together with tools",  # [INF]
    "unknown_tool_call_id": "tool_call_id of a tool message does not match any tool call of an earlier assistant message",  # [INF]
}

_MULTIMODAL_MODEL = re.compile(r"^qwen3\.[5-9]")
_OPEN_QWEN3 = re.compile(r"^qwen3-\d+(\.\d+)?b")
_THINKING_ONLY = re.compile(r"^(qwq|qvq|deepseek-r1)|-thinking")
_DELTA_DEFAULT = re.compile(r"^(qwen3-max|qwen3-vl|qwq|qvq)|^qwen3-\d+(\.\d+)?b")
_ROLES = frozenset({"system", "user", "assistant", "tool"})


def _flag(params: Mapping[str, Any], name: str) -> bool:
    return params.get(name) is True


@dataclass(frozen=True)
class CurrentRequest:
    """A generation request as the current-generation rules read it."""

    path: str
    body: Mapping[str, Any]
    streaming: bool
    plugins: Mapping[str, Any] | None  # the parsed plugin header, None if absent

    @property
    def model(self) -> str:
        model = self.body.get("model")
        return model.lower() if isinstance(model, str) else ""

    @property
    def params(self) -> Mapping[str, Any]:
        params = self.body.get("parameters")
        return params if isinstance(params, dict) else {}

    @property
    def messages(self) -> list[Any]:
        inp = self.body.get("input")
        messages = inp.get("messages") if isinstance(inp, dict) else None
        return messages if isinstance(messages, list) else []

    @property
    def multimodal(self) -> bool:
        return self.path == MULTIMODAL_PATH

    @property
    def thinking(self) -> bool:
        value = self.params.get("enable_thinking")
        return value is True or (value is None and bool(_THINKING_ONLY.search(self.model)))

    @property
    def tools(self) -> tuple[dict[str, Any], ...]:
        tools = self.params.get("tools")
        return tuple(t for t in tools if isinstance(t, dict)) if isinstance(tools, list) else ()

    @property
    def incremental(self) -> bool:
        value = self.params.get("incremental_output")
        if self.thinking or value is True:
            return True
        return value is None and bool(_DELTA_DEFAULT.search(self.model))


def handles(request: CurrentRequest) -> bool:
    """True when the current generation answers this request (see the module docstring)."""
    if request.plugins is not None:
        return False
    p = request.params
    features = ("enable_thinking", "enable_code_interpreter", "enable_search")
    return (
        request.multimodal
        or any(_flag(p, name) for name in features)
        or bool(request.tools)
        or any(isinstance(m, dict) and m.get("role") == "tool" for m in request.messages)
        or _prompt(request) in SCRIPTS
    )


def _prompt(request: CurrentRequest) -> str:
    return prompt_text(dict(request.body)) or ""


# -- refusals -----------------------------------------------------------------------------------


def refusal(request: CurrentRequest) -> str | None:
    """The key in ``REFUSALS`` of the first rule the request breaks, or ``None``."""
    p = request.params
    incremental = _flag(p, "incremental_output")
    if request.plugins is not None:
        if incremental and "code_interpreter" in request.plugins:
            return "plugin_incremental"
        return "incremental_not_streamed" if incremental and not request.streaming else None
    checks = (
        ("multimodal_model", not request.multimodal and bool(_MULTIMODAL_MODEL.search(request.model))),
        ("incremental_not_streamed", incremental and not request.streaming),
        ("empty_messages", _bad_messages(request)),
        ("thinking_only", p.get("enable_thinking") is False and bool(_THINKING_ONLY.search(request.model))),
        ("code_not_streamed", _flag(p, "enable_code_interpreter") and not request.streaming),
        ("code_without_thinking", _flag(p, "enable_code_interpreter") and not request.thinking),
        ("code_with_tools", _flag(p, "enable_code_interpreter") and bool(request.tools)),
        ("thinking_not_streamed", request.thinking and not request.streaming and bool(_OPEN_QWEN3.search(request.model))),
        ("unknown_tool_call_id", _unknown_tool_call_id(request)),
    )
    return next((key for key, broken in checks if broken), None)


def _bad_messages(request: CurrentRequest) -> bool:
    inp = request.body.get("input")
    if not isinstance(inp, dict) or "messages" not in inp:
        return False
    messages = inp["messages"]
    if not isinstance(messages, list) or not messages:
        return True
    return any(not _message_ok(m) for m in messages)


def _message_ok(message: Any) -> bool:
    if not isinstance(message, dict) or message.get("role") not in _ROLES:
        return False
    if message["role"] in ("assistant", "tool"):
        return True  # an assistant message with tool_calls has empty content
    content = message.get("content")
    return isinstance(content, (str, list)) and len(content) > 0


def _issued_ids(messages: list[Any]) -> set[str]:
    ids: set[str] = set()
    for message in messages:
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict) and isinstance(call.get("id"), str):
                ids.add(call["id"])
    return ids


def _unknown_tool_call_id(request: CurrentRequest) -> bool:
    issued: set[str] = set()
    for message in request.messages:
        if not isinstance(message, dict):
            continue
        if message.get("role") == "tool" and message.get("tool_call_id") not in issued:
            return True
        issued |= _issued_ids([message])
    return False


# -- answers ------------------------------------------------------------------------------------


def _tool_results(messages: list[Any]) -> dict[str, str]:
    results: dict[str, str] = {}
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "tool":
            content = message.get("content")
            results[str(message.get("tool_call_id"))] = content if isinstance(content, str) else str(content)
    return results


def _turn(request: CurrentRequest) -> Turn:
    p = request.params
    options = p.get("search_options")
    return Turn(
        prompt=_prompt(request),
        messages=tuple(m for m in request.messages if isinstance(m, dict)),
        thinking=request.thinking,
        code_interpreter=_flag(p, "enable_code_interpreter"),
        search=_flag(p, "enable_search"),
        search_options=options if isinstance(options, dict) else {},
        tools=request.tools,
        tool_choice=p.get("tool_choice", "auto"),
        parallel=_flag(p, "parallel_tool_calls"),
        tool_results=_tool_results(request.messages),
    )


def _tokens(text: str) -> int:
    return max(1, -(-len(text) // 3)) if text else 0


def _input_tokens(request: CurrentRequest) -> int:
    chars = sum(len(str(m.get("content") or "")) for m in request.messages if isinstance(m, dict))
    return 10 + chars // 3 + 40 * len(request.tools)


@dataclass
class _State:
    """Running totals while a plan is put on the wire."""

    input_tokens: int
    output_tokens: int = 0
    reasoning_tokens: int = 0
    reasoning: str = ""
    content: str = ""
    tool_info: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    searched: bool = False


@dataclass(frozen=True)
class _Delta:
    """What one event adds: text pieces, call fragments, or nothing (a tool being prepared)."""

    reasoning: str = ""
    content: str = ""
    calls: tuple[dict[str, Any], ...] = ()


class Answer:
    """A planned answer to one request: the SSE event payloads, or the one JSON body."""

    def __init__(self, request: CurrentRequest, plan: Plan | None = None) -> None:
        self.request = request
        self.plan = plan if plan is not None else plan_for(_turn(request))
        self.request_id = str(uuid.uuid4())

    # -- the pieces the stream is made of -------------------------------------------------------

    def _steps(self, chunk_chars: int) -> Iterator[tuple[_Delta, tuple[Action, ...]]]:
        """(delta, actions) per event; the actions change the state before the event is built."""
        carry: tuple[Action, ...] = ()
        for segment in self.plan.segments:
            for delta, actions in _segment_steps(segment, chunk_chars):
                if actions and actions[0][0] == "ran":
                    carry = actions  # the result shows in the next event, as in the capture
                    continue
                yield delta, carry + actions
                carry = ()
        if carry:
            yield _Delta(), carry

    # -- public -----------------------------------------------------------------------------------

    def events(self, chunk_chars: int = 8) -> list[dict[str, Any]]:
        """Every SSE payload, in order (deltas or snapshots; see the module docstring)."""
        state = _State(_input_tokens(self.request))
        events: list[dict[str, Any]] = []
        incremental = self.request.incremental
        for delta, action in self._steps(chunk_chars):
            _apply(state, delta, action)
            events.append(self._payload(state, delta if incremental else None, NULL_FINISH, first=not events))
        if incremental or not events:
            events.append(self._payload(state, _Delta(), self.plan.finish_reason, first=not events))
        else:
            events[-1] = self._payload(state, None, self.plan.finish_reason, first=len(events) == 1)
        if self._prepend_sources():
            events.insert(0, self._payload(_State(state.input_tokens, searched=True), _Delta(), NULL_FINISH, first=True))
            for event in events[1:]:
                event["output"]["search_info"]["search_results"] = []
        return events

    def body(self) -> dict[str, Any]:
        """The non-streamed reply: the whole answer in one message."""
        state = _State(_input_tokens(self.request))
        for delta, action in self._steps(1 << 30):
            _apply(state, delta, action)
        message: dict[str, Any] = {"role": "assistant"}
        if state.calls:
            message["tool_calls"] = copy.deepcopy(state.calls)
        message["content"] = self._content(state.content)
        if self.request.thinking:
            message["reasoning_content"] = state.reasoning
        output: dict[str, Any] = {"choices": [{"finish_reason": self.plan.finish_reason, "message": message}]}
        self._add_tools(output, state, first=True)
        return {"output": output, "usage": self._usage(state), "request_id": self.request_id}

    # -- building one payload -------------------------------------------------------------------

    def _prepend_sources(self) -> bool:
        options = self.request.params.get("search_options")
        return (
            self._sources_shown()
            and isinstance(options, dict)
            and options.get("prepend_search_result") is True
        )

    def _sources_shown(self) -> bool:
        options = self.request.params.get("search_options")
        return self.plan.search is not None and isinstance(options, dict) and options.get("enable_source") is True

    def _content(self, text: str) -> Any:
        if self.request.multimodal:
            return [{"text": text}] if text else []
        return text

    def _payload(self, state: _State, delta: _Delta | None, finish: str, *, first: bool) -> dict[str, Any]:
        """One event: ``delta`` is None in snapshot mode (the message then holds everything so far)."""
        content = state.content if delta is None else delta.content
        message: dict[str, Any] = {"content": self._content(content)}
        if self.request.thinking:
            message["reasoning_content"] = state.reasoning if delta is None else delta.reasoning
        message["role"] = "assistant"
        calls = state.calls if delta is None else list(delta.calls)
        if calls:
            message["tool_calls"] = copy.deepcopy(calls)
        output: dict[str, Any] = {"choices": [{"message": message, "finish_reason": finish}]}
        self._add_tools(output, state, first=first)
        return {"output": output, "usage": self._usage(state), "request_id": self.request_id}

    def _add_tools(self, output: dict[str, Any], state: _State, *, first: bool) -> None:
        if state.tool_info:
            output["tool_info"] = copy.deepcopy(state.tool_info)
        if self._sources_shown() and self.plan.search is not None:
            sources = [dict(s) for s in self.plan.search.sources] if first else []
            output["search_info"] = {"search_results": sources}

    def _usage(self, state: _State) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "total_tokens": state.input_tokens + state.output_tokens,
            "output_tokens": state.output_tokens,
            "input_tokens": state.input_tokens,
        }
        if self.request.thinking:
            usage["output_tokens_details"] = {"reasoning_tokens": state.reasoning_tokens}
        plugins = self._plugins_usage(state)
        if plugins:
            usage["plugins"] = plugins
        if self.request.model.startswith("qwen3"):
            usage["prompt_tokens_details"] = {"cached_tokens": 0}
        return usage

    def _plugins_usage(self, state: _State) -> dict[str, Any]:
        plugins: dict[str, Any] = {}
        if state.tool_info:
            plugins["code_interpreter"] = {"count": len(state.tool_info)}
        search = self.plan.search
        if search is not None:
            plugins["search"] = {"count": 1, **({"strategy": search.strategy} if search.strategy else {})}
        return plugins


def _segment_steps(segment: Segment, chunk_chars: int) -> Iterator[tuple[_Delta, tuple[Action, ...]]]:
    if isinstance(segment, Think):
        for piece in _pieces(segment.text, chunk_chars):
            yield _Delta(reasoning=piece), ()
    elif isinstance(segment, Say):
        for piece in _pieces(segment.text, chunk_chars):
            yield _Delta(content=piece), ()
    elif isinstance(segment, Code):
        yield from _code_steps(segment)
    else:
        for fragment in _call_fragments(segment.calls, chunk_chars):
            yield _Delta(calls=(fragment,)), ()


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


# An action on the state before an event: ("write", n) adds output tokens, ("tool", code)
# appends an entry with code "", ("code", code) fills it in, ("ran", n) adds the interpreter's
# result to the input tokens.
Action = tuple[str, Any]


def _code_steps(segment: Code) -> Iterator[tuple[_Delta, tuple[Action, ...]]]:
    # The model writes the tool call (output tokens grow, both texts empty), the entry appears
    # with empty code, then with its code; the result raises the input tokens of what follows.
    yield _Delta(), (("write", 6),)
    yield _Delta(), (("write", 6),)
    yield _Delta(), (("tool", segment.code),)
    yield _Delta(), (("code", segment.code),)
    yield _Delta(), (("ran", segment.result_tokens),)


def _call_fragments(calls: tuple[ToolCall, ...], chunk_chars: int) -> list[dict[str, Any]]:
    """Per call: the head (id, name), then argument fragments; parallel calls round-robin."""
    per_call: list[list[dict[str, Any]]] = []
    for index, call in enumerate(calls):
        head = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        parts = [
            {"index": index, "id": "", "type": "function", "function": {"arguments": piece}}
            for piece in _pieces(call.arguments, chunk_chars)
        ]
        per_call.append([head, *parts])
    longest = max((len(p) for p in per_call), default=0)
    return [p[i] for i in range(longest) for p in per_call if i < len(p)]


def _apply(state: _State, delta: _Delta, actions: tuple[Action, ...]) -> None:
    for action in actions:
        _apply_action(state, action)
    state.reasoning += delta.reasoning
    state.content += delta.content
    tokens = _tokens(delta.reasoning) + _tokens(delta.content)
    state.reasoning_tokens += _tokens(delta.reasoning)
    for fragment in delta.calls:
        tokens += _tokens(fragment["function"].get("arguments", "")) or 1
        _merge_call(state.calls, fragment)
    state.output_tokens += tokens


def _apply_action(state: _State, action: Action) -> None:
    kind, value = action
    if kind == "write":
        state.output_tokens += value
    elif kind == "tool":
        state.tool_info.append({"code_interpreter": {"code": ""}, "type": "code_interpreter"})
    elif kind == "code":
        state.tool_info[-1] = {"code_interpreter": {"code": value}, "type": "code_interpreter"}
    elif kind == "ran":
        state.input_tokens += value


def _merge_call(calls: list[dict[str, Any]], fragment: dict[str, Any]) -> None:
    for call in calls:
        if call["index"] == fragment["index"]:
            call["function"]["arguments"] += fragment["function"].get("arguments", "")
            return
    calls.append(copy.deepcopy(fragment))
