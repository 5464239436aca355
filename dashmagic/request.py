"""Wire out: what dashmagic sends, exactly as DashScope expects it (protocol.md §1-5).

Pure: builds a :class:`Call` (URL, headers without the key, JSON body). The transport adds
``Authorization`` at send time, so a Call can be shown (``--dry-run``), recorded or compared
without ever holding the key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import MappingProxyType
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union
from urllib.parse import urlsplit

from . import __version__
from ._constants import DEFAULT_MODEL, DEFAULT_SYSTEM
from .errors import ConfigError
from .trace import RequestInfo

__all__ = [
    "GENERATION_PATH",
    "STREAM_HEADERS",
    "DEFAULT_MODEL",
    "DEFAULT_SYSTEM",
    "Call",
    "Prompt",
    "build_call",
    "build_messages",
    "plugin_header",
]

GENERATION_PATH = "/services/aigc/text-generation/generation"
#: Headers that only ask for the reply as an event stream: same answer, other framing. Replay
#: lets a recording made with or without them answer (the client reads either framing).
STREAM_HEADERS: tuple[str, ...] = ("X-DashScope-SSE",)

Prompt = Union[str, Sequence[Mapping[str, Any]]]
#: Keys the client owns; a caller passing them in ``parameters`` is told why not.
_RESERVED = {
    "stream": "streaming is chosen with stream()/--stream (the X-DashScope-SSE header), never a body field",
    "result_format": "plugin traces need result_format='message', which dashmagic always sends",
}


@dataclass(frozen=True, slots=True)
class Call:
    """One request, ready to send (minus the key)."""

    url: str
    headers: Mapping[str, str]
    body: Mapping[str, Any]
    stream: bool
    info: RequestInfo
    plugins: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def body_bytes(self) -> bytes:
        # UTF-8, not ASCII escapes: what dashscope 2.x sends and easier to read in recordings.
        return json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def shown_headers(self, masked_key: str | None = "****") -> dict[str, str]:
        """Headers as they will go out, with the key masked (for --dry-run)."""
        shown = dict(self.headers)
        if masked_key is not None:
            shown = {"Authorization": f"Bearer {masked_key}", **shown}
        return shown


def plugin_header(plugins: Mapping[str, Any]) -> str:
    """``X-DashScope-Plugin``: a JSON object of every selected plugin with its config."""
    return json.dumps(dict(plugins), ensure_ascii=False, separators=(",", ":"))


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


def _check_files(files: Iterable[str]) -> tuple[str, ...]:
    checked = []
    for url in files:
        parts = urlsplit(str(url).strip())
        if parts.scheme not in ("http", "https", "oss") or not parts.netloc:
            raise ConfigError(
                f"--file expects a URL the service can download (https://…/doc.pdf), got {str(url)!r}."
            )
        checked.append(str(url).strip())
    return tuple(checked)


def _user_content(prompt: str, files: tuple[str, ...]) -> str | list[dict[str, str]]:
    # pdf_extracter needs list-form content: [{"text": ...}, {"file": url}, ...] (protocol §3).
    if not files:
        return prompt
    return [{"text": prompt}, *({"file": url} for url in files)]


def build_messages(
    prompt: Prompt,
    *,
    system: str | None = DEFAULT_SYSTEM,
    files: Iterable[str] = (),
    history: Sequence[Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The ``input.messages`` list: system, earlier turns, then the user's prompt."""
    file_urls = _check_files(files)
    if not isinstance(prompt, str):
        messages = [dict(m) for m in prompt]
        if not messages or not all(isinstance(m, Mapping) and "role" in m for m in messages):
            raise ConfigError("A messages prompt must be a non-empty list of {'role': ..., 'content': ...} dicts.")
        if file_urls:
            last = messages[-1]
            if last.get("role") != "user" or not isinstance(last.get("content"), str):
                raise ConfigError("files= needs the last message to be a user message with text content.")
            messages[-1] = {**last, "content": _user_content(last["content"], file_urls)}
        return messages
    if not prompt.strip():
        raise ConfigError("The prompt is empty: write what you want to ask in the cell (or the line).")
    earlier = [dict(m) for m in history or ()]
    messages: list[dict[str, Any]] = []
    if system and not (earlier and earlier[0].get("role") == "system"):
        messages.append({"role": "system", "content": system})
    messages.extend(earlier)
    messages.append({"role": "user", "content": _user_content(prompt, file_urls)})
    return messages


def _parameters(seed: int | None, parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    params: dict[str, Any] = {"result_format": "message"}
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"seed must be an integer, got {seed!r}.")
        params["seed"] = seed
    for key, value in (parameters or {}).items():
        if key in _RESERVED:
            if key == "result_format" and value == "message":
                continue
            raise ConfigError(f"Parameter {key!r} cannot be set: {_RESERVED[key]}.")
        params[key] = value
    return params


def _prompt_text(prompt: Prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    for message in reversed(list(prompt)):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(str(p.get("text", "")) for p in content or () if isinstance(p, Mapping)).strip()
    return ""


def build_call(
    prompt: Prompt,
    *,
    plugins: Iterable[str] | Mapping[str, Any] | str | None = (),
    model: str = DEFAULT_MODEL,
    system: str | None = DEFAULT_SYSTEM,
    files: Iterable[str] = (),
    seed: int | None = None,
    parameters: Mapping[str, Any] | None = None,
    history: Sequence[Mapping[str, Any]] | None = None,
    stream: bool = False,
    base_url: str,
) -> Call:
    """Build the exact request; raises :class:`ConfigError` for anything the service would reject."""
    if not model or not str(model).strip():
        raise ConfigError("model must be a non-empty model name such as 'qwen-plus'.")
    files = tuple(files)
    plugin_map = _normalise_plugins(plugins)
    messages = build_messages(prompt, system=system, files=files, history=history)
    body = {
        "model": str(model).strip(),
        "input": {"messages": messages},
        "parameters": _parameters(seed, parameters),
    }
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
        "User-Agent": f"dashmagic/{__version__}",
    }
    if plugin_map:
        headers["X-DashScope-Plugin"] = plugin_header(plugin_map)
    if stream:
        headers["X-DashScope-SSE"] = "enable"
        headers["X-Accel-Buffering"] = "no"
    url = base_url.rstrip("/") + GENERATION_PATH
    info = RequestInfo(
        model=body["model"],
        plugins=tuple(plugin_map),
        prompt=_prompt_text(prompt),
        files=_check_files(files),
        stream=stream,
        url=url,
    )
    return Call(
        url=url,
        headers=MappingProxyType(headers),
        body=body,
        stream=stream,
        info=info,
        plugins=MappingProxyType(plugin_map),
    )
