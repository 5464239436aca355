"""``calculator``: ``{"payload__input__text": "12345 * 98765"}`` → ``{"equations": [...], "results": [...]}``."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any

__all__ = ["CalculatorArgs", "CalculatorResult", "read_arguments", "read_result"]


@dataclass(frozen=True, slots=True)
class CalculatorArgs:
    expression: str


@dataclass(frozen=True, slots=True)
class CalculatorResult:
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
