"""Format 1 of the recording file, read by upgrading each request to the current form.

Format 1 stored two of DashScope's request headers as named fields of ``request``:
``plugins`` (the parsed ``X-DashScope-Plugin`` JSON, ``{}`` when the header was absent) and
``stream`` (true when ``X-DashScope-SSE: enable`` was sent). Format 2 stores every
``X-DashScope-*`` header generically under ``headers``. This frozen table maps the old fields
back; it describes old files only, and nothing else in the recording code names a header.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["is_format_1", "upgrade_request"]

_V1_PLUGIN_HEADER = "x-dashscope-plugin"
_V1_STREAM_HEADER = ("x-dashscope-sse", "enable")


def is_format_1(request: Mapping[str, Any]) -> bool:
    return "headers" not in request and ("plugins" in request or "stream" in request)


def upgrade_request(request: Mapping[str, Any]) -> dict[str, Any]:
    """A stored request in the current form (a format-2 request is returned as a copy)."""
    if not is_format_1(request):
        return dict(request)
    headers: dict[str, Any] = {}
    plugins = request.get("plugins")
    if plugins not in (None, {}, ""):
        headers[_V1_PLUGIN_HEADER] = plugins
    if request.get("stream") is True:
        name, value = _V1_STREAM_HEADER
        headers[name] = value
    upgraded = {k: v for k, v in request.items() if k not in ("plugins", "stream")}
    upgraded["headers"] = headers
    return upgraded
