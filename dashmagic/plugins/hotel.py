"""``haozhu_recommend_hotel`` (sent by the model as ``酒店推荐插件``).

Arguments ``{"cityNames": "三亚"}``; the result is a JSON list of ``{"name", "snippet", "url"}``
where ``url`` is a booking query string (``checkIn=…&checkOut=…&shid=…&cityCode=…``), not a
link. A reader needs the hotel, the dates and the price, not that plumbing: the view takes the
stay's dates from the query string, the lowest price from the snippet (``最低会员价2498元``),
and links only a ``url`` that really is a web address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from collections.abc import Mapping
from datetime import date
from typing import Any
from urllib.parse import parse_qsl

from ..render import _html_kit as h
from ..render import _text_kit as t
from ..trace import NoCodeBlocks, NoFigures
from ._spec import PluginSpec

__all__ = ["PLUGIN", "Hotel", "HotelArgs", "HotelResult", "read_arguments", "read_result"]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PRICE = re.compile(r"最低(?:会员)?价\s{0,3}(\d{1,9}(?:\.\d{1,2})?)\s{0,3}元")
#: Cells carry their alignment inline: JupyterLab right-aligns output cells and strips <style>
#: when untrusted (see render/_style.py). Text cells are justified: a one-line cell reads
#: left-aligned, and wrapped Chinese lines end flush instead of ragged.
_LEFT = ' style="text-align:left"'
_PROSE = ' align="justify" style="text-align:justify"'


@dataclass(frozen=True, slots=True)
class HotelArgs(NoCodeBlocks):
    city_names: str


@dataclass(frozen=True, slots=True)
class Hotel:
    name: str
    snippet: str = ""
    query: str = ""
    check_in: str = ""
    check_out: str = ""
    price: str = ""
    link: str = ""


@dataclass(frozen=True, slots=True)
class HotelResult(NoFigures):
    hotels: tuple[Hotel, ...]

    @property
    def stay(self) -> str:
        """``"2023-11-21 → 2023-11-22 (1 night)"`` when every hotel is for the same dates."""
        stays = {(hotel.check_in, hotel.check_out) for hotel in self.hotels}
        if len(stays) != 1:
            return ""
        return _stay(*stays.pop())


def _stay(check_in: str, check_out: str) -> str:
    if not (check_in or check_out):
        return ""
    try:
        nights = (date.fromisoformat(check_out) - date.fromisoformat(check_in)).days
    except ValueError:
        nights = 0
    span = f" ({nights} night{'s' if nights != 1 else ''})" if nights > 0 else ""
    return f"{check_in or '?'} → {check_out or '?'}{span}"


def _hotel(item: Mapping[str, Any]) -> Hotel:
    snippet = str(item.get("snippet") or "")
    url = str(item.get("url") or "")
    link = url if url.startswith(("https://", "http://")) else ""
    fields = {} if link else dict(parse_qsl(url[:2000]))
    price = _PRICE.search(snippet[:2000])
    return Hotel(
        name=str(item.get("name") or ""),
        snippet=snippet,
        query=url,
        check_in=fields.get("checkIn", "") if _DATE.fullmatch(fields.get("checkIn", "")) else "",
        check_out=fields.get("checkOut", "") if _DATE.fullmatch(fields.get("checkOut", "")) else "",
        price=f"¥{price.group(1)}" if price else "",
        link=link,
    )


def read_arguments(raw: str, parsed: Any) -> HotelArgs | None:
    if isinstance(parsed, Mapping) and "cityNames" in parsed:
        return HotelArgs(str(parsed["cityNames"]))
    return None


def read_result(raw: str, parsed: Any) -> HotelResult | None:
    if not isinstance(parsed, tuple):
        return None
    return HotelResult(tuple(_hotel(item) for item in parsed if isinstance(item, Mapping)))


def _html_call(view: HotelArgs) -> str:
    return h.kv([("city", h.esc(view.city_names))]) if len(view.city_names) > h.SUMMARY_LIMIT else ""


def _html_row(hotel: Hotel, dates: bool) -> str:
    name = h.link(hotel.link, hotel.name or hotel.link) if hotel.link else h.esc(hotel.name)
    cells = [f"<td{_PROSE}>{name}</td>"]
    if dates:
        cells.append(f"<td{_LEFT}>{h.esc(_stay(hotel.check_in, hotel.check_out))}</td>")
    cells.append(f'<td class="dm-price"{_LEFT}>{h.esc(hotel.price or "—")}</td>')
    cells.append(f"<td{_PROSE}>{h.esc(hotel.snippet)}</td>")
    return f"<tr>{''.join(cells)}</tr>"


def _html_result(view: HotelResult, images: h.Images | None) -> str:
    stay = view.stay
    # One stay for all (the usual case): said once above the table, not on every row.
    dates = not stay and any(hotel.check_in or hotel.check_out for hotel in view.hotels)
    heads = ["Hotel", *(["Dates"] if dates else []), "From", "Details"]
    # ``align`` too: where styles are stripped (GitHub) it beats the browser's centred <th>
    # (and, on text cells, its ragged default).
    head = "".join(f'<th align="left"{_LEFT}>{name}</th>' for name in heads)
    rows = "".join(_html_row(hotel, dates) for hotel in view.hotels)
    caption = f'<div class="dm-caption">Stay {h.esc(stay)}</div>' if stay else ""
    table = f'<table class="dm-hotels"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    return caption + table


def _text_result(view: HotelResult, images: t.Images | None) -> list[str]:
    count = len(view.hotels)
    stay = f", stay {view.stay}" if view.stay else ""
    lines = [f"{count} hotel{'s' if count != 1 else ''}{stay}"]
    for hotel in view.hotels:
        price = f" (from {hotel.price})" if hotel.price else ""
        own = "" if view.stay else _stay(hotel.check_in, hotel.check_out)
        snippet = f": {t.safe(hotel.snippet)}" if hotel.snippet else ""
        lines.append(f"- {t.safe(hotel.name)}{price}{f' [{own}]' if own else ''}{snippet}")
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
