"""Wire out, the part every generation shares: validated call options, messages, the Call.

Pure: :class:`CallOptions` is what the user asked for, checked once; a wire format
(:mod:`dashmagic.protocol`) turns it into a :class:`Call` (URL, headers without the key, JSON
body). The transport adds ``Authorization`` at send time, so a Call can be shown (``--dry-run``),
recorded or compared without ever holding the key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Union, get_args
from urllib.parse import urlsplit

from . import __version__
from ._constants import DEFAULT_MODEL, DEFAULT_SYSTEM
from ._text import last_user_text
from .cell import check_text, normalise_files
from .errors import ConfigError
from .trace import EMPTY_MAP, FrozenMap, RequestInfo, freeze, thaw

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "TEXT_GENERATION_PATH",
    "MULTIMODAL_GENERATION_PATH",
    "TOOLS_MODEL",
    "ENDPOINTS",
    "SEARCH_STRATEGIES",
    "SEARCH_FRESHNESS",
    "Endpoint",
    "SearchOptions",
    "STREAM_HEADERS",
    "DEFAULT_MODEL",
    "DEFAULT_SYSTEM",
    "Call",
    "CallKwargs",
    "CallOptions",
    "Prompt",
    "build_messages",
    "base_headers",
    "prompt_text",
    "request_info",
]

TEXT_GENERATION_PATH = "/services/aigc/text-generation/generation"
#: Qwen 3.5 / 3.6 / 3.7 are served here, with list-form content (protocol-current §1).
MULTIMODAL_GENERATION_PATH = "/services/aigc/multimodal-generation/generation"
#: The model used when thinking or the built-in code interpreter is asked and no model is given:
#: the one the vendor's code-interpreter page documents (qwen-plus does not run the interpreter).
TOOLS_MODEL = "qwen3-max"
Endpoint = Literal["text", "multimodal"]
ENDPOINTS: tuple[Endpoint, ...] = get_args(Endpoint)
#: ``search_options.search_strategy`` and ``freshness`` values the vendor documents (§5).
SEARCH_STRATEGIES: tuple[str, ...] = ("turbo", "max", "agent", "agent_max")
SEARCH_FRESHNESS: tuple[int, ...] = (7, 30, 180, 365)
#: Headers that only ask for the reply as an event stream: same answer, other framing. Replay
#: lets a recording made with or without them answer (the client reads either framing).
STREAM_HEADERS: tuple[str, ...] = ("X-DashScope-SSE",)

Prompt = Union[str, Sequence[Mapping[str, Any]]]
#: Keys the client owns; a caller passing them in ``parameters`` is told why not.
_RESERVED = {
    "stream": "streaming is chosen with stream()/--stream (the X-DashScope-SSE header), never a body field",
    "result_format": "traces need result_format='message', which dashmagic always sends",
}


class SearchOptions(TypedDict, total=False):
    """``search=`` as a dict: web search with these ``search_options`` (protocol-current §5).

    The service's own key names (``search_strategy``, ``forced_search``, ``enable_source``,
    ``enable_citation``, ``assigned_site_list``, ``prepend_search_result``) are accepted too, and
    keys dashmagic does not know pass through unchanged.
    """

    strategy: str  # turbo | max | agent | agent_max
    forced: bool
    sources: bool  # output.search_info with the sources
    citations: bool  # inline [1] / [ref_1] markers; implies sources
    citation_format: str  # "[<number>]" or "[ref_<number>]"
    freshness: int  # 7 | 30 | 180 | 365 days
    sites: Sequence[str]


class CallKwargs(TypedDict, total=False):
    """What one call asks (the keyword arguments of ``run()``/``stream()``/``Client.run()``).

    Two generations: ``plugins`` selects the older ``X-DashScope-Plugin`` header; ``thinking``,
    ``code_interpreter``, ``search``, ``tools`` select today's built-in tools (body parameters).
    """

    plugins: Iterable[str] | Mapping[str, Any] | str | None
    model: str
    system: str | None
    files: Iterable[str] | str
    seed: int | None
    parameters: Mapping[str, Any] | None
    history: Sequence[Mapping[str, Any]] | None
    #: Today's generation: ``enable_thinking`` (None: the model's default).
    thinking: bool | None
    #: ``thinking_budget``: the most reasoning tokens (implies thinking).
    thinking_budget: int | None
    #: The built-in code interpreter (needs thinking and streaming; not with ``tools``).
    code_interpreter: bool
    #: Web search: True, or a :class:`SearchOptions` dict.
    search: bool | SearchOptions | Mapping[str, Any] | None
    #: Function tools as JSON specs ``{"type": "function", "function": {...}}``.
    tools: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None
    #: ``"auto"``, ``"none"``, a function name, or ``{"type": "function", "function": {"name": …}}``.
    tool_choice: str | Mapping[str, Any] | None
    #: ``"text"`` or ``"multimodal"`` (default: multimodal for Qwen 3.5 / 3.6 / 3.7).
    endpoint: Endpoint | None


@dataclass(frozen=True, slots=True)
class CallOptions:
    """One call's options, validated and normalised once (see :meth:`of`)."""

    prompt: str | tuple[Mapping[str, Any], ...]
    stream: bool = False
    model: str = DEFAULT_MODEL
    system: str | None = DEFAULT_SYSTEM
    plugins: Mapping[str, Any] = field(default_factory=lambda: EMPTY_MAP)
    files: tuple[str, ...] = ()
    seed: int | None = None
    parameters: Mapping[str, Any] = field(default_factory=lambda: EMPTY_MAP)
    history: tuple[Mapping[str, Any], ...] = ()
    thinking: bool | None = None
    thinking_budget: int | None = None
    code_interpreter: bool = False
    #: ``search_options`` in the service's names, or None when search is off.
    search: Mapping[str, Any] | None = None
    tools: tuple[Mapping[str, Any], ...] = ()
    tool_choice: str | Mapping[str, Any] | None = None
    endpoint: Endpoint | None = None

    @classmethod
    def of(cls, prompt: Prompt, *, stream: bool = False, **options: Unpack[CallKwargs]) -> CallOptions:
        """Check everything the service would reject; raises :class:`ConfigError` in one line."""
        unknown = set(options) - set(CallKwargs.__optional_keys__)
        if unknown:
            raise ConfigError(f"Unknown option(s) {', '.join(sorted(unknown))}; see help(dashmagic.run).")
        tools = _Tools.of(options, stream=bool(stream))
        model = options.get("model", TOOLS_MODEL if tools.wants_model else DEFAULT_MODEL)
        if not isinstance(model, str) or not model.strip():
            raise ConfigError("model must be a non-empty model name such as 'qwen-plus'.")
        plugins = FrozenMap(_normalise_plugins(options.get("plugins")))
        if plugins and tools.asked:
            raise ConfigError(
                "plugins= (the X-DashScope-Plugin header, the older generation) cannot be combined with "
                "thinking, code_interpreter, search or tools (today's built-in tools); use one or the other "
                "(--code-interpreter replaces --plugins code_interpreter)."
            )
        return cls(
            prompt=_check_prompt(prompt),
            stream=bool(stream),
            model=model.strip(),
            system=options.get("system", DEFAULT_SYSTEM),
            plugins=plugins,
            files=check_files(options.get("files", ())),
            seed=_check_seed(options.get("seed")),
            parameters=freeze(_check_parameters(options.get("parameters"))),
            history=_check_history(options.get("history")),
            thinking=tools.thinking,
            thinking_budget=tools.thinking_budget,
            code_interpreter=tools.code_interpreter,
            search=tools.search,
            tools=tools.tools,
            tool_choice=tools.tool_choice,
            endpoint=tools.endpoint,
        )

    @property
    def text(self) -> str:
        """The user's question as text (for the trace header and recordings)."""
        return prompt_text(self.prompt)


@dataclass(frozen=True, slots=True)
class Call:
    """One request, ready to send (minus the key)."""

    url: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]
    stream: bool
    info: RequestInfo
    #: Whether the reply's events are deltas (``incremental_output``) rather than snapshots.
    incremental: bool = False

    def body_bytes(self) -> bytes:
        # UTF-8, not ASCII escapes: what dashscope 2.x sends and easier to read in recordings.
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def shown_headers(self, masked_key: str | None = "****") -> dict[str, str]:
        """Headers as they will go out, with the key masked (for --dry-run)."""
        shown = dict(self.headers)
        if masked_key is not None:
            shown = {"Authorization": f"Bearer {masked_key}", **shown}
        return shown


def base_headers(stream: bool) -> dict[str, str]:
    """Headers every generation sends (all ASCII: a header value must encode as latin-1)."""
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
        "User-Agent": f"dashmagic/{__version__}",
    }
    if stream:
        headers["X-DashScope-SSE"] = "enable"
        headers["X-Accel-Buffering"] = "no"
    return headers


def _normalise_plugins(plugins: Iterable[str] | Mapping[str, Any] | str | None) -> dict[str, Any]:
    if not plugins:
        return {}
    if isinstance(plugins, str):
        plugins = [p for p in (s.strip() for s in plugins.split(",")) if p]
    if isinstance(plugins, Mapping):
        items = dict(plugins)
    else:
        items = {str(p).strip(): {} for p in plugins}
    for name, config in items.items():
        if not name or not isinstance(name, str):
            raise ConfigError(f"Plugin names must be non-empty strings, got {name!r}.")
        if not isinstance(config, Mapping):
            raise ConfigError(f"The config of plugin {name!r} must be a JSON object, got {config!r}.")
    return items


def check_files(files: Iterable[str] | str | None) -> tuple[str, ...]:
    """Document URLs for list-form content. One string is one file, not its characters."""
    checked = []
    for url in normalise_files(files):
        text = str(url).strip()
        try:
            parts = urlsplit(text)
        except ValueError:
            parts = urlsplit("")
        if parts.scheme not in ("http", "https", "oss") or not parts.netloc:
            raise ConfigError(f"--file expects a URL the service can download (https://…/doc.pdf), got {text!r}.")
        checked.append(text)
    return tuple(checked)


def _check_seed(seed: Any) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be an integer, got {seed!r}.")
    return seed


def _check_parameters(parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if parameters is not None and not isinstance(parameters, Mapping):
        raise ConfigError(f"parameters must be a dict of model parameters, got {type(parameters).__name__}.")
    for key, value in (parameters or {}).items():
        if key in _RESERVED:
            if key == "result_format" and value == "message":
                continue
            raise ConfigError(f"Parameter {key!r} cannot be set: {_RESERVED[key]}.")
        _check_json(value, f"parameter {key!r}")
        params[str(key)] = value
    return params


def _check_json(value: Any, where: str) -> None:
    """The body is UTF-8 JSON: refuse what cannot be sent (NaN, objects, lone surrogates)."""
    try:
        json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(
            f"The {where} contains a lone surrogate (U+{ord(exc.object[exc.start]):04X}), which is not text "
            "and cannot be sent; remove it (it often comes from a bad copy-paste or decode)."
        ) from None
    except (TypeError, ValueError, RecursionError) as exc:
        raise ConfigError(f"The {where} cannot be sent as JSON ({type(exc).__name__}: {str(exc)[:120]}).") from None


def _check_prompt(prompt: Prompt) -> str | tuple[Mapping[str, Any], ...]:
    if isinstance(prompt, str):
        if not prompt.strip():
            raise ConfigError("The prompt is empty: write what you want to ask in the cell (or the line).")
        _check_json(prompt, "prompt")
        return prompt
    messages = _check_messages(prompt, "prompt", allow_empty=False)
    _check_json([thaw(m) for m in messages], "prompt")
    return tuple(messages)


def _check_messages(messages: Any, where: str, *, allow_empty: bool) -> list[Mapping[str, Any]]:
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Iterable):
        raise ConfigError(f"The {where} must be a list of {{'role': ..., 'content': ...}} dicts.")
    items = list(messages)
    if (not items and not allow_empty) or not all(isinstance(m, Mapping) and "role" in m for m in items):
        raise ConfigError(f"The {where} must be a non-empty list of {{'role': ..., 'content': ...}} dicts.")
    return [freeze(dict(m)) for m in items]


def _check_history(history: Sequence[Mapping[str, Any]] | None) -> tuple[Mapping[str, Any], ...]:
    messages = _check_messages(history or (), "history", allow_empty=True)
    _check_json([thaw(m) for m in messages], "history")
    return tuple(messages)


def _user_content(prompt: str, files: tuple[str, ...]) -> str | list[dict[str, str]]:
    # Documents go as list-form content: [{"text": ...}, {"file": url}, ...] (protocol §3).
    if not files:
        return prompt
    return [{"text": prompt}, *({"file": url} for url in files)]


def build_messages(options: CallOptions) -> list[dict[str, Any]]:
    """The ``input.messages`` list: system, earlier turns, then the user's prompt."""
    if not isinstance(options.prompt, str):
        messages = [thaw(m) for m in options.prompt]
        if options.files:
            last = messages[-1]
            if last.get("role") != "user" or not isinstance(last.get("content"), str):
                raise ConfigError("files= needs the last message to be a user message with text content.")
            messages[-1] = {**last, "content": _user_content(last["content"], options.files)}
        return messages
    earlier = [thaw(m) for m in options.history]
    messages = []
    if options.system and not (earlier and earlier[0].get("role") == "system"):
        messages.append({"role": "system", "content": options.system})
    messages.extend(earlier)
    messages.append({"role": "user", "content": _user_content(options.prompt, options.files)})
    return messages


def request_info(options: CallOptions, *, url: str, protocol: str, messages: Sequence[Mapping[str, Any]]) -> RequestInfo:
    """What a trace keeps of the request a wire format built (no key, no headers)."""
    return RequestInfo(
        model=options.model,
        plugins=tuple(options.plugins),
        prompt=options.text,
        files=options.files,
        stream=options.stream,
        url=url,
        protocol=protocol,
        user_message=freeze(messages[-1]),
    )


def prompt_text(prompt: str | Sequence[Mapping[str, Any]]) -> str:
    return prompt if isinstance(prompt, str) else last_user_text(prompt) or ""


# -- today's built-in tools: checked once, before anything is sent ----------------------------------

#: ``search=`` keys → the service's ``search_options`` names (both spellings are accepted).
_SEARCH_KEYS: dict[str, str] = {
    "strategy": "search_strategy",
    "search_strategy": "search_strategy",
    "forced": "forced_search",
    "forced_search": "forced_search",
    "sources": "enable_source",
    "enable_source": "enable_source",
    "citations": "enable_citation",
    "enable_citation": "enable_citation",
    "citation_format": "citation_format",
    "freshness": "freshness",
    "sites": "assigned_site_list",
    "assigned_site_list": "assigned_site_list",
    "prepend": "prepend_search_result",
    "prepend_search_result": "prepend_search_result",
}
_SEARCH_BOOLS = ("forced_search", "enable_source", "enable_citation", "prepend_search_result")
_TOOL_CHOICES = ("auto", "none")


@dataclass(frozen=True, slots=True)
class _Tools:
    """The built-in-tool options of one call, validated (see :meth:`of`)."""

    thinking: bool | None = None
    thinking_budget: int | None = None
    code_interpreter: bool = False
    search: Mapping[str, Any] | None = None
    tools: tuple[Mapping[str, Any], ...] = ()
    tool_choice: str | Mapping[str, Any] | None = None
    endpoint: Endpoint | None = None

    @property
    def asked(self) -> bool:
        return bool(
            self.thinking is not None or self.thinking_budget is not None or self.code_interpreter
            or self.search is not None or self.tools or self.tool_choice is not None
        )

    @property
    def wants_model(self) -> bool:
        """Thinking or the interpreter asked: the default model must be one that does both."""
        return bool(self.thinking or self.code_interpreter)

    @classmethod
    def of(cls, options: Mapping[str, Any], *, stream: bool) -> _Tools:
        thinking = _check_optional_bool(options.get("thinking"), "thinking")
        budget = _check_budget(options.get("thinking_budget"))
        if budget is not None:
            if thinking is False:
                raise ConfigError("thinking_budget caps the thinking, but thinking=False turns it off; drop one of them.")
            thinking = True
        code = _check_optional_bool(options.get("code_interpreter"), "code_interpreter") or False
        tools = _check_tools(options.get("tools"))
        if code:
            # The vendor documents these for every model (protocol-current §4).
            if thinking is False:
                raise ConfigError(
                    "The built-in code interpreter runs only with thinking on: drop --no-thinking (thinking=False)."
                )
            if not stream:
                raise ConfigError(
                    "The built-in code interpreter runs only in streamed calls: add --stream (or use stream())."
                )
            if tools:
                raise ConfigError(
                    "The built-in code interpreter cannot be combined with function tools: drop --tools "
                    "(tools=) or --code-interpreter."
                )
            thinking = True
        return cls(
            thinking=thinking,
            thinking_budget=budget,
            code_interpreter=code,
            search=_check_search(options.get("search")),
            tools=tools,
            tool_choice=_check_tool_choice(options.get("tool_choice"), tools),
            endpoint=_check_endpoint(options.get("endpoint")),
        )


def _check_optional_bool(value: Any, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ConfigError(f"{name} must be True, False or None, got {value!r}.")


def _check_budget(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"thinking_budget must be a positive number of tokens, got {value!r}.")
    return value


def _check_endpoint(value: Any) -> Endpoint | None:
    if value is None:
        return None
    for endpoint in ENDPOINTS:
        if value == endpoint:
            return endpoint
    raise ConfigError(f"endpoint must be one of {', '.join(ENDPOINTS)} (or None to follow the model), got {value!r}.")


def _check_search(value: Any) -> Mapping[str, Any] | None:
    if value is None or value is False:
        return None
    if value is True:
        return EMPTY_MAP
    if not isinstance(value, Mapping):
        raise ConfigError(f"search must be True, False or a dict of search options, got {type(value).__name__}.")
    options: dict[str, Any] = {}
    for key, item in value.items():
        options[_SEARCH_KEYS.get(str(key), str(key))] = item  # unknown keys: future options pass through
    for key in _SEARCH_BOOLS:
        if key in options and not isinstance(options[key], bool):
            raise ConfigError(f"search option {key} must be True or False, got {options[key]!r}.")
    strategy = options.get("search_strategy")
    if strategy is not None and strategy not in SEARCH_STRATEGIES:
        raise ConfigError(f"search strategy must be one of {', '.join(SEARCH_STRATEGIES)}, got {strategy!r}.")
    freshness = options.get("freshness")
    if freshness is not None and (isinstance(freshness, bool) or freshness not in SEARCH_FRESHNESS):
        raise ConfigError(f"search freshness must be one of {', '.join(map(str, SEARCH_FRESHNESS))} days, got {freshness!r}.")
    sites = options.get("assigned_site_list")
    if isinstance(sites, str):
        options["assigned_site_list"] = [s.strip() for s in sites.split(",") if s.strip()]
    if "citation_format" in options and not isinstance(options["citation_format"], str):
        raise ConfigError(f"citation_format must be text such as '[<number>]' or '[ref_<number>]', got {options['citation_format']!r}.")
    if options.get("enable_citation") or "citation_format" in options:
        # A marker points at a source's index: without the sources it links nowhere.
        options.setdefault("enable_citation", True)
        options.setdefault("enable_source", True)
    _check_json(options, "search options")
    return freeze(options)  # type: ignore[no-any-return]


def _check_tools(value: Any) -> tuple[Mapping[str, Any], ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, Mapping) else value
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise ConfigError("tools must be a list of tool specs like {'type': 'function', 'function': {'name': …}}.")
    checked = []
    for tool in items:
        if not isinstance(tool, Mapping) or not isinstance(tool.get("type"), str):
            raise ConfigError(f"Each tool must be a dict with a 'type' (e.g. 'function'), got {_short(tool)}.")
        function = tool.get("function")
        if tool["type"] == "function" and not (isinstance(function, Mapping) and isinstance(function.get("name"), str)
                                                and function["name"].strip()):
            raise ConfigError(f"A function tool needs {{'function': {{'name': …, 'parameters': {{…}}}}}}, got {_short(tool)}.")
        _check_json(thaw(tool), "tool spec")
        checked.append(freeze(dict(tool)))
    return tuple(checked)


def _check_tool_choice(value: Any, tools: tuple[Mapping[str, Any], ...]) -> str | Mapping[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        _check_json(thaw(value), "tool_choice")
        return freeze(dict(value))  # type: ignore[no-any-return]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"tool_choice must be 'auto', 'none', a function name or a dict, got {value!r}.")
    if value in _TOOL_CHOICES:
        return value
    # A bare name is the guess users make for "call this function".
    return freeze({"type": "function", "function": {"name": value.strip()}})  # type: ignore[no-any-return]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"
