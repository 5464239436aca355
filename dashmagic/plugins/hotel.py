"""``haozhu_recommend_hotel`` (sent by the model as ``酒店推荐插件``).

Arguments ``{"cityNames": "三亚"}``; the result is a JSON list of ``{"name", "snippet", "url"}``
where ``url`` is a booking query string (``checkIn=...&shid=...``), not a link.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any

from ..render import _html_kit as h
from ..render import _text_kit as t
from ..trace import NoCodeBlocks, NoFigures
from ._spec import PluginSpec

__all__ = ["PLUGIN", "Hotel", "HotelArgs", "HotelResult", "read_arguments", "read_result"]

@dataclass(frozen=True, slots=True)
class HotelArgs(NoCodeBlocks):
    city_names: str


@dataclass(frozen=True, slots=True)
class Hotel:
    name: str
    snippet: str = ""
    query: str = ""


@dataclass(frozen=True, slots=True)
class HotelResult(NoFigures):
    hotels: tuple[Hotel, ...]


def read_arguments(raw: str, parsed: Any) -> HotelArgs | None:
    if isinstance(parsed, Mapping) and "cityNames" in parsed:
        return HotelArgs(str(parsed["cityNames"]))
    return None


def read_result(raw: str, parsed: Any) -> HotelResult | None:
    if not isinstance(parsed, tuple):
        return None
    hotels = tuple(
        Hotel(
            name=str(item.get("name") or ""),
            snippet=str(item.get("snippet") or ""),
            query=str(item.get("url") or ""),
        )
        for item in parsed
        if isinstance(item, Mapping)
    )
    return HotelResult(hotels)


def _html_call(view: HotelArgs) -> str:
    return h.kv([("city", h.esc(view.city_names))]) if len(view.city_names) > h.SUMMARY_LIMIT else ""


def _html_result(view: HotelResult, images: h.Images | None) -> str:
    # ``url`` is a booking query string (checkIn=…&shid=…), not a link: muted text.
    rows = "".join(
        f"<tr><td>{h.esc(hotel.name)}</td><td>{h.esc(hotel.snippet)}"
        + (f'<div class="dm-query">{h.esc(hotel.query)}</div>' if hotel.query else "")
        + "</td></tr>"
        for hotel in view.hotels
    )
    head = "<thead><tr><th>Hotel</th><th>Details</th></tr></thead>"
    return f'<table class="dm-hotels">{head}<tbody>{rows}</tbody></table>'


def _text_result(view: HotelResult, images: t.Images | None) -> list[str]:
    lines = [f"{len(view.hotels)} hotel{'s' if len(view.hotels) != 1 else ''}"]
    for hotel in view.hotels:
        snippet = f": {t.safe(hotel.snippet)}" if hotel.snippet else ""
        lines.append(f"- {t.safe(hotel.name)}{snippet}")
    return lines


PLUGIN: PluginSpec[HotelArgs, HotelResult] = PluginSpec(
    key="haozhu_recommend_hotel",
    read_arguments=read_arguments,
    read_result=read_result,
    call_view=HotelArgs,
    result_view=HotelResult,
    display_names=("酒店推荐插件",),
    summary=lambda view: view.city_names,
    html_call=_html_call,
    html_result=_html_result,
    text_result=_text_result,
)
