"""Wire formats: one module per generation of DashScope's API, behind one small interface.

A :class:`WireFormat` does two things: it turns validated :class:`~dashmagic.request.CallOptions`
into a :class:`~dashmagic.request.Call` (URL, headers, JSON body), and it makes a :class:`Folder`
that folds the ``output`` of each server payload into trace steps and chat messages. Everything
else — the envelope (``request_id``, ``usage``, ``finish_reason``, error bodies, SSE event
names: :mod:`.envelope`), the client, the transport, recordings and renderers — is the same for
every generation and knows nothing of plugin headers or tool parameters.

Generations:

- ``plugin_header`` (:mod:`.plugin_header`): the seed's ``X-DashScope-Plugin`` header, plugin
  messages and ``Thought:`` / ``Final Answer:`` markers.
- ``builtin_tools`` (:mod:`.builtin_tools`): today's generation — thinking, the built-in code
  interpreter, web search and function tools as body ``parameters``, deltas, the multimodal
  endpoint. Every call without plugins speaks it.

When the service refuses a call in a way that points at the other generation, the format's
:meth:`WireFormat.hint` names the flag or endpoint to use instead (:func:`with_hint`).

Adding one: write ``protocol/<name>.py`` exposing ``FORMAT`` (a WireFormat), add its name to
:data:`FORMATS`, and teach :func:`format_for` when to choose it.
"""

from __future__ import annotations

from importlib import import_module
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..errors import ApiError, DashmagicError
    from ..request import Call, CallOptions
    from ..trace import RequestInfo, Step

__all__ = ["Folder", "WireFormat", "FORMATS", "get_format", "format_for", "folder_for", "with_hint"]


class Folder(Protocol):
    """Folds the ``output`` of successive payloads of one reply (the generation-specific reducer)."""

    def feed(self, output: Mapping[str, Any], *, incremental: bool) -> None:
        """Apply one payload's ``output`` (a snapshot, or a delta when ``incremental``)."""

    def steps(self, *, final: bool) -> tuple[Step, ...]:
        """The steps so far; ``final`` once the reply is complete (no partial-text guards)."""

    def messages(self) -> tuple[Mapping[str, Any], ...]:
        """The service's messages so far, as they must be sent back as chat history."""


class WireFormat(Protocol):
    """One generation of the API: how a call goes out and how its reply reads."""

    name: str

    def build(self, options: CallOptions, *, base_url: str) -> Call:
        """The exact request for ``options``; :class:`~dashmagic.errors.ConfigError` if invalid."""

    def folder(self, request: RequestInfo) -> Folder:
        """A fresh folder for the reply to ``request``."""

    def hint(self, error: ApiError, call: Call) -> str | None:
        """What to change when the service refused ``call`` this way (one sentence), or None."""


#: name → module; each module exposes ``FORMAT``. Imported on first use.
FORMATS: Mapping[str, str] = {"plugin_header": ".plugin_header", "builtin_tools": ".builtin_tools"}


def get_format(name: str) -> WireFormat:
    module = FORMATS.get(name)
    if module is None:
        raise KeyError(f"unknown wire format {name!r}; known: {', '.join(FORMATS)}")
    fmt: WireFormat = import_module(module, __name__).FORMAT
    return fmt


def format_for(options: CallOptions) -> WireFormat:
    """The generation a call speaks: plugins → the plugin header; everything else → built-in tools."""
    return get_format("plugin_header" if options.plugins else "builtin_tools")


def with_hint(error: DashmagicError, call: Call) -> DashmagicError:
    """``error`` with the hint of the format that built ``call`` added to its one line.

    Only service refusals (:class:`~dashmagic.errors.ApiError`) get one; the hint goes before the
    request id, and the error keeps its type, code, status and request id.
    """
    from ..errors import ApiError

    if not isinstance(error, ApiError):
        return error
    hint = get_format(call.info.protocol).hint(error, call)
    if not hint:
        return error
    hinted = type(error)(
        f"{error.service_message.strip()} {hint}",
        status_code=error.status_code,
        code=error.code,
        request_id=error.request_id,
    )
    hinted.service_message = error.service_message
    hinted.trace = error.trace
    return hinted


def folder_for(request: RequestInfo) -> Folder:
    """A folder for a reply, chosen by the format that built the request."""
    return get_format(request.protocol).folder(request)
