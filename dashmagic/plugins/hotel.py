"""``haozhu_recommend_hotel`` (sent by the model as ``酒店推荐插件``).

Arguments ``{"cityNames": "三亚"}``; the result is a JSON list of ``{"name", "snippet", "url"}``
where ``url`` is a booking query string (``checkIn=...&shid=...``), not a link.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any

__all__ = ["Hotel", "HotelArgs", "HotelResult", "read_arguments", "read_result"]


@dataclass(frozen=True, slots=True)
class HotelArgs:
    city_names: str


@dataclass(frozen=True, slots=True)
class Hotel:
    name: str
    snippet: str = ""
    query: str = ""


@dataclass(frozen=True, slots=True)
class HotelResult:
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
