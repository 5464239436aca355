"""``calculator``: ``{"payload__input__text": "12345 * 98765"}`` → ``{"equations": [...], "results": [...]}``."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any

from ..render import _html_kit as h
from ..render import _text_kit as t
from ..trace import NoCodeBlocks, NoFigures
from ._spec import PluginSpec

__all__ = ["PLUGIN", "CalculatorArgs", "CalculatorResult", "read_arguments", "read_result"]

@dataclass(frozen=True, slots=True)
class CalculatorArgs(NoCodeBlocks):
    expression: str


@dataclass(frozen=True, slots=True)
class CalculatorResult(NoFigures):
    #: ``(equation, result)`` pairs, in order.
    pairs: tuple[tuple[str, Any], ...]


def read_arguments(raw: str, parsed: Any) -> CalculatorArgs | None:
    if isinstance(parsed, Mapping) and "payload__input__text" in parsed:
        return CalculatorArgs(str(parsed["payload__input__text"]))
    return None


def read_result(raw: str, parsed: Any) -> CalculatorResult | None:
    if not isinstance(parsed, Mapping):
        return None
    equations = tuple(str(e) for e in parsed.get("equations") or ())
    results = tuple(_tidy(r) for r in parsed.get("results") or ())
    if not equations and not results:
        return None
    width = max(len(equations), len(results))
    pairs = tuple(
        (equations[i] if i < len(equations) else "?", results[i] if i < len(results) else "?")
        for i in range(width)
    )
    return CalculatorResult(pairs)


def _tidy(value: Any) -> Any:
    # The service returns 1219253925.0 for an integer product; show it as 1219253925.
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return int(value)
    return value


def _html_call(view: CalculatorArgs) -> str:
    # The one-line summary says it all unless it had to be cut.
    if len(view.expression) <= h.SUMMARY_LIMIT:
        return ""
    return h.kv([("expression", f"<code>{h.esc(view.expression)}</code>")])


def _html_result(view: CalculatorResult, images: h.Images | None) -> str:
    return "".join(
        f'<div class="dm-calc"><code>{h.esc(eq)}</code> = <strong>{h.esc(res)}</strong></div>'
        for eq, res in view.pairs
    )


def _text_result(view: CalculatorResult, images: t.Images | None) -> list[str]:
    return [f"{t.safe(eq)} = {t.safe(res)}" for eq, res in view.pairs]


PLUGIN: PluginSpec[CalculatorArgs, CalculatorResult] = PluginSpec(
    key="calculator",
    read_arguments=read_arguments,
    read_result=read_result,
    call_view=CalculatorArgs,
    result_view=CalculatorResult,
    summary=lambda view: view.expression,
    html_call=_html_call,
    html_result=_html_result,
    text_result=_text_result,
)
