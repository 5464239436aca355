"""``text/plain``: a readable, deterministic terminal transcript of a trace.

Example::

    [thought] 我应该使用计算器API来进行数学计算。
    [plugin call] calculator: 12345 * 98765
    [plugin result] calculator ✓ 200 Success: 12345 * 98765 = 1219253925
    [thought] 我现在可以作答了。
    [answer] 12345*98765的结果是1219253925。
    qwen-plus · 18 in / 116 out tokens · calculator×1 · 1.2 s · request 2cc7d894-…

Model and plugin text is kept verbatim (it is plain text) except that control characters are
shown as ``\\xNN`` and signed URLs lose their query strings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..plugins import GenericView
from ..plugins.calculator import CalculatorArgs, CalculatorResult
from ..plugins.code_interpreter import CodeResult
from ..plugins.hotel import HotelArgs, HotelResult
from ..plugins.ocr import OcrArgs, OcrResult
from ..plugins.text_to_image import TextToImageArgs, TextToImageResult
from ..trace import Answer, CodeBlock, Figure, PluginCall, PluginResult, Thought, Trace
from ._common import (
    Exchange,
    clean,
    embeddable,
    error_line,
    exchange_state,
    footer_parts,
    format_size,
    group_steps,
    image_problem,
    mark_invisible,
    plugin_label,
    pretty_json,
    redact,
    strip_query,
    summarize_arguments,
)

__all__ = ["render_text"]

INDENT = "    "
Images = Mapping[str, Any]


def _safe(text: Any) -> str:
    return redact(clean(text))


def _indent(text: str, prefix: str = INDENT) -> list[str]:
    return [prefix + line if line else "" for line in text.split("\n")]


def _figure_line(fig: Figure, images: Images | None) -> str:
    image = images.get(fig.url) if images else None
    state = "embedded" if embeddable(image) else image_problem(image)
    label = f"{_safe(fig.alt)}: " if fig.alt else ""
    return f"[figure] {label}{strip_query(fig.url)} ({state})"


# -- plugin call bodies: lines shown under "[plugin call] name:" ----------------------------


def _call_code(view: CodeBlock) -> list[str]:
    return _indent(_safe(view.code))


def _call_t2i(view: TextToImageArgs) -> list[str]:
    lines = [f"prompt: {_safe(view.prompt)}"]
    if view.negative_prompt:
        lines.append(f"negative prompt: {_safe(view.negative_prompt)}")
    if view.size:
        lines.append(f"size: {format_size(_safe(view.size))}")
    return _indent("\n".join(lines))


#: Views whose arguments need more than the one-line summary.
CALL_BODIES: Mapping[type, Callable[[Any], list[str]]] = {
    CodeBlock: _call_code,
    TextToImageArgs: _call_t2i,
}
#: Views fully described by the one-line summary.
_INLINE_CALLS = (CalculatorArgs, OcrArgs, HotelArgs, GenericView)


def _call_lines(call: PluginCall, label: str) -> list[str]:
    body = CALL_BODIES.get(type(call.view))
    if body is not None:
        language = f" ({_safe(call.view.language)})" if isinstance(call.view, CodeBlock) else ""
        return [f"[plugin call] {label}{language}:", *body(call.view)]
    if isinstance(call.view, _INLINE_CALLS):
        return [f"[plugin call] {label}: {summarize_arguments(call, limit=200)}"]
    lines = [f"[plugin call] {label}:"]
    if call.arguments_error:
        lines.append(f"{INDENT}(arguments are not valid JSON; raw text shown)")
    return lines + _indent(_safe(call.arguments_raw))


# -- plugin result bodies -------------------------------------------------------------------


def _res_calc(view: CalculatorResult, images: Images | None) -> list[str]:
    return [f"{_safe(eq)} = {_safe(res)}" for eq, res in view.pairs]


def _res_code(view: CodeResult, images: Images | None) -> list[str]:
    lines: list[str] = []
    for out in view.outputs:
        lines.append(f"{_safe(out.name)}:")
        lines.extend(_indent(_safe(out.text)))
    lines.extend(_figure_line(f, images) for f in view.figures)
    if view.rest:
        lines.extend(_safe(view.rest).split("\n"))
    return lines


def _res_ocr(view: OcrResult, images: Images | None) -> list[str]:
    lines = _safe(view.text).split("\n") if view.text else []
    if view.error_message or view.success is False:
        lines.append(f"(OCR failed: {_safe(view.error_message or 'no text')})")
    return lines


def _res_t2i(view: TextToImageResult, images: Images | None) -> list[str]:
    return [_figure_line(f, images) for f in view.figures]


def _res_hotel(view: HotelResult, images: Images | None) -> list[str]:
    lines = [f"{len(view.hotels)} hotel{'s' if len(view.hotels) != 1 else ''}"]
    for hotel in view.hotels:
        snippet = f": {_safe(hotel.snippet)}" if hotel.snippet else ""
        lines.append(f"- {_safe(hotel.name)}{snippet}")
    return lines


def _res_generic(view: GenericView, images: Images | None) -> list[str]:
    return _safe(pretty_json(view.value)).split("\n")


RESULT_BODIES: Mapping[type, Callable[[Any, Images | None], list[str]]] = {
    CalculatorResult: _res_calc,
    CodeResult: _res_code,
    OcrResult: _res_ocr,
    TextToImageResult: _res_t2i,
    HotelResult: _res_hotel,
    GenericView: _res_generic,
}


def _result_body(result: PluginResult, images: Images | None) -> list[str]:
    body = RESULT_BODIES.get(type(result.view))
    if body is not None:
        return body(result.view, images)
    lines = ["(content is not valid JSON; raw text shown)"] if result.content_error else []
    return lines + (_safe(result.content_raw).split("\n") if result.content_raw else [])


def _result_lines(exchange: Exchange, trace: Trace, label: str, images: Images | None) -> list[str]:
    _, badge = exchange_state(exchange, trace)
    head = f"[plugin result] {label} {badge}"
    result = exchange.result
    if result is None:
        return [head]
    body = _result_body(result, images)
    if result.status is not None and not result.ok and result.status.message:
        body.insert(0, _safe(result.status.message))
    if len(body) == 1 and not body[0].startswith("[") and len(body[0]) <= 120:
        return [f"{head}: {body[0]}"]
    return [head, *(INDENT + line if line else "" for line in body)]


def _exchange_lines(exchange: Exchange, trace: Trace, images: Images | None) -> list[str]:
    label = plugin_label(exchange)
    lines = _call_lines(exchange.call, label) if exchange.call is not None else []
    if exchange.result is not None or exchange.call is not None:
        lines += _result_lines(exchange, trace, label, images)
    return lines


def _tagged(tag: str, text: str) -> list[str]:
    text = _safe(text).strip("\n")
    if "\n" not in text:
        return [f"[{tag}] {text}"]
    return [f"[{tag}]", *_indent(text)]


def _status_lines(trace: Trace) -> list[str]:
    if trace.status == "pending":
        return ["[waiting…]"]
    if trace.status == "partial":
        return ["[streaming…]"]
    if trace.status == "interrupted":
        return ["[interrupted] partial trace kept"]
    if trace.status == "error":
        return [f"[error] {error_line(trace)}"]
    return []


def render_text(trace: Trace, images: Images | None = None) -> str:
    """The trace as plain text; ``images`` (URL → fetched image) only marks figures embedded."""
    lines = [f"[file] {strip_query(f)}" for f in trace.request.files]
    for block in group_steps(trace.steps):
        if isinstance(block, Thought):
            lines += _tagged("thought", block.text)
        elif isinstance(block, Answer):
            lines += _tagged("answer", block.text)
        else:
            lines += _exchange_lines(block, trace, images)
    lines += _status_lines(trace)
    lines += [f"[note] {_safe(note)}" for note in trace.notes]
    footer = " · ".join(
        f"request {text}" if kind == "request" else text for kind, text in footer_parts(trace)
    )
    if footer:
        lines.append(footer)
    # Last, so every line shown (code, thoughts, arguments, results) gets the Trojan-Source mark.
    return mark_invisible("\n".join(lines))
