"""The view of a plugin dashmagic has no module for: its JSON, shown as JSON.

Not a plugin (it is in no list): the registry falls back to :data:`PLUGIN` for unknown keys,
and :mod:`.pdf_extracter` reuses it.
"""

from __future__ import annotations

import json
from typing import Any

from ..render import _html_kit as h
from ..render import _text_kit as t
from ..trace import thaw
from ._spec import GenericView, PluginSpec

__all__ = ["PLUGIN", "read_generic"]


def read_generic(raw: str, parsed: Any) -> GenericView | None:
    return GenericView(parsed) if parsed is not None else None


def _summary(view: GenericView) -> str:
    return json.dumps(thaw(view.value), ensure_ascii=False, default=str)


def _html(view: GenericView, images: h.Images | None = None) -> str:
    return h.pre(h.pretty_json(view.value))


def _text_result(view: GenericView, images: t.Images | None) -> list[str]:
    return t.safe(t.pretty_json(view.value)).split("\n")


PLUGIN: PluginSpec[GenericView, GenericView] = PluginSpec(
    key="",
    read_arguments=read_generic,
    read_result=read_generic,
    call_view=GenericView,
    result_view=GenericView,
    summary=_summary,
    html_call=_html,
    html_result=_html,
    text_result=_text_result,
)
