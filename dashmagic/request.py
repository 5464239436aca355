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
from typing import TYPE_CHECKING, Any, TypedDict, Union
from urllib.parse import urlsplit

from . import __version__
from ._constants import DEFAULT_MODEL, DEFAULT_SYSTEM
from .cell import check_text, normalise_files
from .errors import ConfigError
from .trace import EMPTY_MAP, FrozenMap, RequestInfo, freeze, thaw

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "TEXT_GENERATION_PATH",
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
]

TEXT_GENERATION_PATH = "/services/aigc/text-generation/generation"
#: Headers that only ask for the reply as an event stream: same answer, other framing. Replay
#: lets a recording made with or without them answer (the client reads either framing).
STREAM_HEADERS: tuple[str, ...] = ("X-DashScope-SSE",)

Prompt = Union[str, Sequence[Mapping[str, Any]]]
#: Keys the client owns; a caller passing them in ``parameters`` is told why not.
_RESERVED = {
    "stream": "streaming is chosen with stream()/--stream (the X-DashScope-SSE header), never a body field",
    "result_format": "traces need result_format='message', which dashmagic always sends",
}


class CallKwargs(TypedDict, total=False):
    """What one call asks (the keyword arguments of ``run()``/``stream()``/``Client.run()``)."""

    plugins: Iterable[str] | Mapping[str, Any] | str | None
    model: str
    system: str | None
    files: Iterable[str] | str
    seed: int | None
    parameters: Mapping[str, Any] | None
    history: Sequence[Mapping[str, Any]] | None


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

    @classmethod
    def of(cls, prompt: Prompt, *, stream: bool = False, **options: Unpack[CallKwargs]) -> CallOptions:
        """Check everything the service would reject; raises :class:`ConfigError` in one line."""
        unknown = set(options) - set(CallKwargs.__optional_keys__)
        if unknown:
            raise ConfigError(f"Unknown option(s) {', '.join(sorted(unknown))}; see help(dashmagic.run).")
        model = options.get("model", DEFAULT_MODEL)
        if not isinstance(model, str) or not model.strip():
            raise ConfigError("model must be a non-empty model name such as 'qwen-plus'.")
        return cls(
            prompt=_check_prompt(prompt),
            stream=bool(stream),
            model=model.strip(),
            system=options.get("system", DEFAULT_SYSTEM),
            plugins=FrozenMap(_normalise_plugins(options.get("plugins"))),
            files=check_files(options.get("files", ())),
            seed=_check_seed(options.get("seed")),
            parameters=freeze(_check_parameters(options.get("parameters"))),
            history=_check_history(options.get("history")),
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


def prompt_text(prompt: str | Sequence[Mapping[str, Any]]) -> str:
    if isinstance(prompt, str):
        return prompt
    for message in reversed(list(prompt)):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(str(p.get("text", "")) for p in content or () if isinstance(p, Mapping)).strip()
    return ""
