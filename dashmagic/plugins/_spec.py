"""What a plugin module declares: one :class:`PluginSpec`, its reading and its rendering.

A spec is generic in its two view types: ``C`` (what :attr:`PluginSpec.read_arguments` builds
from ``plugin_call.arguments``) and ``R`` (what :attr:`PluginSpec.read_result` builds from the
plugin message's ``content``). The renderers find a spec by the *type* of a step's view, so a
view always meets the functions written for it, whatever plugin name the model sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..trace import CallView, NoCodeBlocks, NoFigures, ResultView

if TYPE_CHECKING:  # a type alias only: the registry must not load the renderers
    from ..render._common import Images

__all__ = ["PluginSpec", "GenericView"]

C = TypeVar("C", bound=CallView)
R = TypeVar("R", bound=ResultView)


@dataclass(frozen=True, slots=True)
class GenericView(NoCodeBlocks, NoFigures):
    """Fallback for unknown plugins: the parsed JSON, pretty-printed by the renderers."""

    value: Any


@dataclass(frozen=True, slots=True)
class PluginSpec(Generic[C, R]):
    """One plugin: how its arguments and results read, and how each view renders.

    Readers get ``(raw, parsed)``, where ``parsed`` is the frozen JSON decoded from ``raw`` (None
    when it was not JSON, or when ``json_arguments``/``json_result`` says the text is not JSON);
    they return None when the shape is not theirs, and the raw text is shown instead.
    Renderers left as None fall back to the generic ones: a call shows its one-line
    ``summary`` (or raw arguments), a result its raw content.
    """

    #: The ``X-DashScope-Plugin`` header key, as listed in ``_constants.PLUGIN_MODULES``.
    key: str
    read_arguments: Callable[[str, Any], C | None]
    read_result: Callable[[str, Any], R | None]
    #: The view types this spec renders (None: it renders no view of its own).
    call_view: type[C] | None = None
    result_view: type[R] | None = None
    #: ``plugin_call.name`` values the model sends instead of the key (``酒店推荐插件``).
    display_names: tuple[str, ...] = ()
    json_arguments: bool = True
    json_result: bool = True
    #: One line of what the plugin was asked (redacted and cut by the renderer).
    summary: Callable[[C], str] | None = None
    #: HTML under the call's summary line (may be empty when the summary says it all).
    html_call: Callable[[C], str] | None = None
    html_result: Callable[[R, Images | None], str] | None = None
    #: All text lines of the call, given its label; None: ``[plugin call] label: summary``.
    text_call: Callable[[C, str], list[str]] | None = None
    text_result: Callable[[R, Images | None], list[str]] | None = None
