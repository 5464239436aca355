"""One small reader per plugin: how its arguments and results read.

Each plugin module exposes ``read_arguments(raw, parsed)`` and ``read_result(raw, parsed)``
returning a small frozen *view* (or None). ``parsed`` is the JSON decoded from ``raw`` (None
when ``raw`` was not JSON). Unknown plugins get :class:`GenericView`; nothing here raises on
odd input: a view that cannot be built is simply None and the raw text is still shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from collections.abc import Callable, Mapping
from typing import Any

from .._constants import KNOWN_PLUGINS
from ..trace import freeze
from . import calculator, code_interpreter, hotel, ocr, pdf_extracter, text_to_image

__all__ = [
    "KNOWN_PLUGINS",
    "DISPLAY_NAMES",
    "GenericView",
    "resolve_plugin",
    "read_call",
    "read_result",
    "decode_json",
]


#: ``plugin_call.name`` values that are display names, not header keys (seed: the hotel plugin).
DISPLAY_NAMES: Mapping[str, str] = {"酒店推荐插件": "haozhu_recommend_hotel"}

_MODULES: Mapping[str, Any] = {
    "ocr": ocr,
    "calculator": calculator,
    "text_to_image": text_to_image,
    "haozhu_recommend_hotel": hotel,
    "pdf_extracter": pdf_extracter,
    "code_interpreter": code_interpreter,
}

#: Plugins whose arguments/results are not JSON text.
_NOT_JSON_ARGS = frozenset({"code_interpreter"})
_NOT_JSON_RESULT = frozenset({"code_interpreter"})


@dataclass(frozen=True, slots=True)
class GenericView:
    """Fallback for unknown plugins: the parsed JSON, pretty-printed by the renderers."""

    value: Any


def resolve_plugin(name: str, selected: tuple[str, ...] = ()) -> str:
    """Map the name the model sent to a header key.

    Known keys and known display names map directly; otherwise, when exactly one plugin was
    selected for the request, the call can only be that one.
    """
    if name in _MODULES or name in selected:
        return name
    if name in DISPLAY_NAMES:
        return DISPLAY_NAMES[name]
    if len(selected) == 1:
        return selected[0]
    return name


def decode_json(raw: str) -> tuple[Any, str | None]:
    """Parse JSON text; return ``(frozen value, None)`` or ``(None, reason)``."""
    if not raw.strip():
        return None, None
    try:
        return freeze(json.loads(raw)), None
    except (ValueError, RecursionError) as exc:
        return None, f"not valid JSON ({exc})"


def _read(
    plugin: str, raw: str, not_json: frozenset[str], reader_name: str
) -> tuple[Any, str | None, Any]:
    module = _MODULES.get(plugin)
    if plugin in not_json:
        parsed, error = None, None
    else:
        parsed, error = decode_json(raw)
    reader: Callable[[str, Any], Any] | None = getattr(module, reader_name, None) if module else None
    try:
        view = reader(raw, parsed) if reader else (GenericView(parsed) if parsed is not None else None)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError):
        # A plugin changed its shape: show raw text rather than fail the whole trace.
        view = None
    return parsed, error, view


def read_call(plugin: str, raw: str) -> tuple[Any, str | None, Any]:
    """``(parsed, error, view)`` for a ``plugin_call.arguments`` string."""
    return _read(plugin, raw, _NOT_JSON_ARGS, "read_arguments")


def read_result(plugin: str, raw: str) -> tuple[Any, str | None, Any]:
    """``(parsed, error, view)`` for a plugin message's ``content`` string."""
    return _read(plugin, raw, _NOT_JSON_RESULT, "read_result")
