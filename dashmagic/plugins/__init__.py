"""The plugin registry: one :class:`PluginSpec` per plugin module, loaded by name when needed.

The one list of plugins is ``_constants.PLUGIN_MODULES`` (key → module); each module listed
there declares ``PLUGIN = PluginSpec(...)``: how its arguments and results read and how each view
renders. Adding a plugin is one new module plus its line in that list. Nothing here raises on odd
input: a view that cannot be built is simply None and the raw text is still shown; unknown
plugins get :class:`GenericView`.
"""

from __future__ import annotations

import json
from importlib import import_module
from collections.abc import Callable, Mapping
from typing import Any

from .._constants import KNOWN_PLUGINS, PLUGIN_MODULES
from ..trace import CallView, ResultView, freeze
from ._spec import GenericView, PluginSpec

__all__ = [
    "KNOWN_PLUGINS",
    "PluginSpec",
    "GenericView",
    "plugin_spec",
    "all_specs",
    "call_spec",
    "result_spec",
    "display_names",
    "resolve_plugin",
    "read_call",
    "read_result",
    "decode_json",
]

_MODULE_OF: dict[str, str] = dict(PLUGIN_MODULES)
# Specs loaded so far, by key. Filled lazily so `import dashmagic.plugins` (and events) stay
# cheap; a race between threads only loads the same module twice, and imports are locked.
_SPECS: dict[str, PluginSpec[Any, Any]] = {}
_Lookup = tuple[Mapping[type, PluginSpec[Any, Any]], Mapping[type, PluginSpec[Any, Any]], Mapping[str, str]]
_lookup: _Lookup | None = None


def plugin_spec(key: str) -> PluginSpec[Any, Any] | None:
    """The spec of a known plugin key (its module is imported on first use), else None."""
    spec = _SPECS.get(key)
    if spec is None and key in _MODULE_OF:
        spec = import_module(f".{_MODULE_OF[key]}", __name__).PLUGIN
        _SPECS[key] = spec
    return spec


def _fallback() -> PluginSpec[Any, Any]:
    # (Not named after its module: importing plugins._generic sets that attribute here.)
    spec: PluginSpec[Any, Any] = import_module("._generic", __name__).PLUGIN
    return spec


def all_specs() -> tuple[PluginSpec[Any, Any], ...]:
    """Every known plugin's spec, in list order."""
    return tuple(spec for key in _MODULE_OF if (spec := plugin_spec(key)) is not None)


def _tables() -> _Lookup:
    global _lookup
    if _lookup is None:
        specs = (_fallback(), *all_specs())
        calls = {s.call_view: s for s in specs if s.call_view is not None}
        results = {s.result_view: s for s in specs if s.result_view is not None}
        names = {name: s.key for s in specs for name in s.display_names}
        _lookup = (calls, results, names)
    return _lookup


def call_spec(view: CallView | None) -> PluginSpec[Any, Any] | None:
    """The spec that renders this call view (found by its type), or None for no/unknown view."""
    return _tables()[0].get(type(view)) if view is not None else None


def result_spec(view: ResultView | None) -> PluginSpec[Any, Any] | None:
    """The spec that renders this result view (found by its type), or None."""
    return _tables()[1].get(type(view)) if view is not None else None


def display_names() -> Mapping[str, str]:
    """``plugin_call.name`` values that are display names, not header keys → the key."""
    return _tables()[2]


def resolve_plugin(name: str, selected: tuple[str, ...] = ()) -> str:
    """Map the name the model sent to a header key.

    Known keys and known display names map directly; otherwise, when exactly one plugin was
    selected for the request, the call can only be that one.
    """
    if name in _MODULE_OF or name in selected:
        return name
    key = display_names().get(name)
    if key is not None:
        return key
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


def _read(raw: str, is_json: bool, reader: Callable[[str, Any], Any]) -> tuple[Any, str | None, Any]:
    parsed, error = decode_json(raw) if is_json else (None, None)
    try:
        view = reader(raw, parsed)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError):
        # A plugin changed its shape: show raw text rather than fail the whole trace.
        view = None
    return parsed, error, view


# The view is typed Any on purpose: these signatures are what dashmagic.events relies on (it
# reuses one variable for both views); PluginCall.view / PluginResult.view carry the real types.
def read_call(plugin: str, raw: str) -> tuple[Any, str | None, Any]:
    """``(parsed, error, view)`` for a ``plugin_call.arguments`` string; view is a CallView or None."""
    spec = plugin_spec(plugin) or _fallback()
    return _read(raw, spec.json_arguments, spec.read_arguments)


def read_result(plugin: str, raw: str) -> tuple[Any, str | None, Any]:
    """``(parsed, error, view)`` for a plugin message's ``content``; view is a ResultView or None."""
    spec = plugin_spec(plugin) or _fallback()
    return _read(raw, spec.json_result, spec.read_result)
