"""``function_call``: a function the model asks the caller to run (``message.tool_calls[i]``).

One block per call, so parallel calls stay apart; its arguments as pretty JSON when they
parse, else the raw text with a note (no note while they are still arriving). After the last
call of a trace that ended with ``finish_reason: "tool_calls"`` a line says what the model is
waiting for. (dashmagic does not run the functions: that is the caller's turn.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ...trace import FunctionCall, Trace, thaw
from .. import _html_kit as h
from .. import _text_kit as t
from .._common import clean, redact, truncate
from . import StepView
from ._shared import json_text

__all__ = ["VIEW", "call_signature", "asks_line"]

_BAD_ARGS = "arguments are not valid JSON; raw text shown"
_SIGNATURE_LIMIT = 80


def _label(call: FunctionCall) -> str:
    return clean(call.name) or "(unnamed function)"


def _value(value: object) -> str:
    try:
        return json.dumps(thaw(value), ensure_ascii=False, default=str)
    except (ValueError, RecursionError, TypeError):
        return "…"


def _inner(call: FunctionCall, limit: int) -> str:
    """The call's arguments as ``k="v", n=1``; stops once past ``limit`` (a 10 MB argument is
    read once, never joined whole)."""
    args = call.arguments
    if call.arguments_error is None and isinstance(args, Mapping):
        parts: list[str] = []
        size = 0
        for key, value in args.items():
            parts.append(f"{clean(key)}={_value(value)}")
            size += len(parts[-1]) + 2
            if size > limit:
                break
        return ", ".join(parts)
    return call.arguments_raw


def call_signature(call: FunctionCall, limit: int = _SIGNATURE_LIMIT) -> str:
    """``get_current_weather(location="杭州")``, one redacted line of at most ~``limit`` chars."""
    inner = truncate(redact(clean(_inner(call, limit))), limit)
    return f"{truncate(_label(call), limit)}({inner})"


def asks_line(trace: Trace) -> str:
    """``the model asks to call f(…), g(…)``: what a ``tool_calls`` finish waits for."""
    return "the model asks to call " + ", ".join(call_signature(c) for c in trace.function_calls)


def _shows_asks(step: FunctionCall, trace: Trace) -> bool:
    calls = trace.function_calls
    return trace.finish_reason == "tool_calls" and bool(calls) and calls[-1] is step


def _state(step: FunctionCall, trace: Trace) -> tuple[str, str]:
    if not trace.done:
        return "running", "arriving…"
    if step.arguments_error:
        return "warn", "arguments not JSON"
    return "info", "requested"


def _arguments(step: FunctionCall, trace: Trace) -> tuple[str | None, str]:
    """``(note or None, text)``: pretty JSON when the arguments parse, else the raw text."""
    if step.arguments_error is None and step.arguments_raw.strip():
        pretty = json_text(step.arguments)
        if pretty is not None:
            return None, pretty
        return "arguments nest too deep to re-indent; raw text shown", step.arguments_raw
    note = _BAD_ARGS if step.arguments_error and trace.done else None
    return note, step.arguments_raw


def _html(step: FunctionCall, trace: Trace, images: h.Images | None) -> str:
    parts = [
        f'<span class="dm-plugin">{h.esc(_label(step))}</span>',
        f'<span class="dm-display">(function call #{h.esc(step.index)})</span>',
    ]
    summary_args = truncate(redact(clean(step.arguments_raw)), h.SUMMARY_LIMIT)
    if summary_args:
        parts.append(f'<span class="dm-args">{h.esc(summary_args)}</span>')
    parts.append(h.badge(*_state(step, trace)))
    note, text = _arguments(step, trace)
    body = [h.kv([("id", h.esc(step.id))]) if step.id else ""]
    body.append(h.warning(note) if note else "")
    body.append(h.pre(text) if text else '<div class="dm-muted">(no arguments)</div>')
    block = (
        f'<details class="dm-step dm-function" open><summary>{" ".join(parts)}</summary>'
        f'<div class="dm-body">{"".join(body)}</div></details>'
    )
    if _shows_asks(step, trace):
        block += f'<div class="dm-asks">{h.esc(asks_line(trace))}</div>'
    return block


def _text(step: FunctionCall, trace: Trace, images: t.Images | None) -> list[str]:
    ident = f", id {t.safe(step.id)}" if step.id else ""
    lines = [f"[function call] {t.safe(_label(step))} (#{t.safe(step.index)}{ident}):"]
    note, text = _arguments(step, trace)
    if note:
        lines.append(f"{t.INDENT}({note})")
    lines += t.indent(t.safe(text).strip("\n")) if text else [f"{t.INDENT}(no arguments)"]
    if not trace.done:
        lines[0] += " arriving…"
    if _shows_asks(step, trace):
        lines.append(f"[tool calls] {t.safe(asks_line(trace))}")
    return lines


VIEW: StepView[FunctionCall] = StepView("function_call", FunctionCall, _html, _text)
