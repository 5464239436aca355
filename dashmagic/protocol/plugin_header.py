"""The seed's generation: plugins selected by the ``X-DashScope-Plugin`` header (protocol.md).

Everything this generation knows lives here and nowhere else: the header (a JSON object of the
selected plugins, ASCII-escaped so any plugin name is a valid header value), ``plugin_call`` on
assistant messages, ``role: plugin`` messages with a ``status``, and the vendor page's
``Thought:`` / ``Final Answer:`` markers — which real replies do not always carry.

Each ``result`` event of a plugin stream is a full snapshot of the choice (the service refuses
``incremental_output`` with the ``code_interpreter`` plugin, so dashmagic never asks for deltas
here), so the folder *replaces* its messages on every payload; when the caller does ask for
``incremental_output``, payloads are deltas and are merged instead. Each message's steps are
memoised by its content, so a growing answer costs one re-parse of the last message only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..plugins import read_call, read_result, resolve_plugin
from ..request import TEXT_GENERATION_PATH, Call, CallOptions, base_headers, build_messages, request_info
from ..trace import Answer, PluginCall, PluginResult, RequestInfo, Status, Step, Thought, freeze, thaw
from .envelope import to_int, to_str
from .hints import endpoint_hint, first_hint, plugin_hint

if TYPE_CHECKING:
    from ..errors import ApiError

__all__ = ["FORMAT", "HEADER", "PluginHeaderFormat", "PluginFolder", "plugin_header", "split_assistant"]

HEADER = "X-DashScope-Plugin"
_THOUGHT = "Thought:"
_FINAL = "Final Answer:"
_MARKERS = (_THOUGHT, _FINAL)


def plugin_header(plugins: Mapping[str, Any]) -> str:
    """``X-DashScope-Plugin``: a JSON object of every selected plugin with its config.

    ASCII-escaped: a header value must encode as latin-1, and ``酒店推荐插件`` (the hotel plugin's
    display name, which users type) would otherwise raise inside requests.
    """
    return json.dumps(thaw(plugins), ensure_ascii=True, separators=(",", ":"))


class PluginHeaderFormat:
    """Builds plugin-header calls and folds their replies."""

    name = "plugin_header"

    def build(self, options: CallOptions, *, base_url: str) -> Call:
        messages = build_messages(options)
        parameters: dict[str, Any] = {"result_format": "message"}
        if options.seed is not None:
            parameters["seed"] = options.seed
        parameters.update(thaw(options.parameters))
        body = {"model": options.model, "input": {"messages": messages}, "parameters": parameters}
        headers = base_headers(options.stream)
        if options.plugins:
            headers[HEADER] = plugin_header(options.plugins)
        url = base_url.rstrip("/") + TEXT_GENERATION_PATH
        info = request_info(options, url=url, protocol=self.name, messages=messages)
        incremental = bool(options.stream and parameters.get("incremental_output"))
        return Call(url=url, headers=headers, body=body, stream=options.stream, info=info, incremental=incremental)

    def folder(self, request: RequestInfo) -> PluginFolder:
        return PluginFolder(request)

    def hint(self, error: ApiError, call: Call) -> str | None:
        # Gated header or deltas with plugins → today's tools; a multimodal model → its endpoint.
        return first_hint(error, call, plugin_hint, endpoint_hint)


FORMAT = PluginHeaderFormat()


def _partial_marker(text: str) -> int:
    """Length of a marker's beginning at the end of ``text``, when it starts a line.

    While streaming, ``…\\nFinal Ans`` may arrive before the marker is complete; only a piece
    at the start of a line can be one ("It is 86°F" ends with the "F" of "Final" but is text).
    """
    for marker in _MARKERS:
        for cut in range(len(marker) - 1, 0, -1):
            if text.endswith(marker[:cut]):
                start = len(text) - cut
                if start == 0 or text[start - 1] == "\n":
                    return cut
    return 0


def split_assistant(content: str, *, has_call: bool, final: bool = True) -> list[Step]:
    """Read one assistant ``content`` into Thought/Answer steps.

    ``Thought: x\\nFinal Answer: y`` → [Thought(x), Answer(y)]. Text with a plugin call is a
    thought. Plain text without markers is the answer (real replies often carry none). Until the
    reply is ``final``, a marker's first letters at the start of a line are held back; once it is
    final, nothing is ever dropped.
    """
    text = content.strip()
    if not final:
        cut = _partial_marker(text)
        text = text[: len(text) - cut].rstrip() if cut else text
    if not text:
        return []
    head, marker, tail = text.partition(_FINAL)
    steps: list[Step] = []
    thought = head.strip()
    if thought.startswith(_THOUGHT):
        thought = thought[len(_THOUGHT) :].strip()
    elif not marker and not has_call:
        return [Answer(text)]
    if thought:
        steps.append(Thought(thought))
    if marker:
        steps.append(Answer(tail.strip()))
    return steps


def _status(raw: Any) -> Status | None:
    if not isinstance(raw, Mapping):
        return None
    return Status(code=to_int(raw.get("code")), name=to_str(raw.get("name")), message=to_str(raw.get("message")))


def _choice_messages(output: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    choices = output.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        choice = choices[0]
        messages = choice.get("messages")
        if isinstance(messages, list):
            return [dict(m) for m in messages if isinstance(m, Mapping)]
        message = choice.get("message")
        return [dict(message)] if isinstance(message, Mapping) else []
    if isinstance(output.get("text"), str):  # result_format=text, should a proxy force it
        return [{"role": "assistant", "content": output["text"]}]
    return None


def _message_key(message: Mapping[str, Any]) -> Any:
    call = message.get("plugin_call")
    call_key = (to_str(call.get("name")), to_str(call.get("arguments"))) if isinstance(call, Mapping) else None
    status = message.get("status")
    status_key = tuple(sorted((str(k), repr(v)) for k, v in status.items())) if isinstance(status, Mapping) else None
    return (message.get("role"), to_str(message.get("name")), to_str(message.get("content")), call_key, status_key)


class PluginFolder:
    """The plugin generation's reducer: messages → Thought/PluginCall/PluginResult/Answer steps."""

    def __init__(self, request: RequestInfo) -> None:
        self._request = request
        self._messages: list[dict[str, Any]] = []
        self._keys: list[Any] = []
        self._cache: dict[Any, tuple[Step, ...]] = {}
        self._frozen: dict[Any, Mapping[str, Any]] = {}

    def feed(self, output: Mapping[str, Any], *, incremental: bool) -> None:
        messages = _choice_messages(output)
        if messages is None:
            return
        if incremental:
            self._merge(messages)
        else:
            self._messages = messages
        self._keys = [_message_key(message) for message in self._messages]

    def _merge(self, deltas: list[dict[str, Any]]) -> None:
        # incremental_output=true: each payload carries only the new piece of each message.
        for delta in deltas:
            last = self._messages[-1] if self._messages else None
            same = (
                last is not None
                and delta.get("role", "assistant") == last.get("role")
                and delta.get("role") != "plugin"
                and not (delta.get("plugin_call") and last.get("plugin_call"))
            )
            if not same or last is None:
                self._messages.append(dict(delta))
                continue
            last["content"] = to_str(last.get("content")) + to_str(delta.get("content"))
            call = delta.get("plugin_call")
            if isinstance(call, Mapping):
                last["plugin_call"] = dict(call)

    def steps(self, *, final: bool) -> tuple[Step, ...]:
        cache: dict[Any, tuple[Step, ...]] = {}
        steps: list[Step] = []
        last = len(self._messages) - 1
        for index, (message, key) in enumerate(zip(self._messages, self._keys)):
            # Only the last message can still be growing; earlier ones are complete.
            done = final or index < last
            memo = (key, done)
            parsed = self._cache.get(memo)
            if parsed is None:
                parsed = tuple(self._read_message(message, final=done))
            cache[memo] = parsed
            steps.extend(parsed)
        self._cache = cache  # keep only what the current snapshot uses
        return tuple(steps)

    def messages(self) -> tuple[Mapping[str, Any], ...]:
        # Messages are re-sent whole on every event; freeze each distinct one once.
        frozen: dict[Any, Mapping[str, Any]] = {}
        out = []
        for message, key in zip(self._messages, self._keys):
            value = self._frozen.get(key)
            if value is None:
                value = freeze(message)
            frozen[key] = value
            out.append(value)
        self._frozen = frozen
        return tuple(out)

    def _read_message(self, message: Mapping[str, Any], *, final: bool) -> Iterable[Step]:
        role = message.get("role")
        if role == "plugin":
            name = to_str(message.get("name"))
            plugin = resolve_plugin(name, self._request.plugins)
            raw = to_str(message.get("content"))
            parsed, error, view = read_result(plugin, raw)
            yield PluginResult(plugin, name, raw, parsed, error, _status(message.get("status")), view)
            return
        if role not in ("assistant", None):
            return  # echoed user/system messages are not part of the answer
        call = message.get("plugin_call")
        yield from split_assistant(to_str(message.get("content")), has_call=isinstance(call, Mapping), final=final)
        if isinstance(call, Mapping):
            name = to_str(call.get("name"))
            plugin = resolve_plugin(name, self._request.plugins)
            raw = to_str(call.get("arguments"))
            parsed, error, view = read_call(plugin, raw)
            yield PluginCall(plugin, name, raw, parsed, error, view)
