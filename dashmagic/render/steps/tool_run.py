"""``tool_run``: a function the model asked for, run (or not) here by the tool loop.

One block per call: the call (name, arguments as a table of ``name | value`` rows, or the raw
text when they did not parse), who approved it, the result or the error, and the time it took.
The result is what the function returned, shown as text: a tool's HTML or Markdown is escaped,
never rendered. After the last run of the trace a line breaks the usage down per round.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ...trace import ToolRun, Trace, thaw
from .. import _html_kit as h
from .. import _text_kit as t
from .._common import clean, redact, truncate
from . import StepView
from ._shared import count

__all__ = ["VIEW", "call_line", "rounds_line"]

_SHOWN_RESULT = 4000  # characters of a result shown (the model got up to the cap; the trace keeps all)
_ROWS = 12
_VALUE = 120

_APPROVAL = {
    "pending": ("running", "waiting for your approval"),
    "approved": ("ok", "approved"),
    "automatic": ("info", "approved up front"),
    "rejected": ("fail", "rejected"),
    "needed": ("warn", "approval needed"),
    "none": ("warn", "not run"),
}
_STATUS = {
    "waiting": ("running", "not run yet"),
    "ok": ("ok", "✓ ran"),
    "replayed": ("ok", "✓ replayed"),
    "error": ("fail", "✗ raised"),
    "invalid": ("fail", "✗ refused"),
    "declined": ("warn", "declined"),
}


def _value(value: object) -> str:
    try:
        text = json.dumps(thaw(value), ensure_ascii=False, default=str)
    except (ValueError, RecursionError, TypeError):
        text = "…"
    return truncate(redact(clean(text)), _VALUE)


def call_line(run: ToolRun, limit: int = 100) -> str:
    """``top_regions(n=3, metric="drop")``: one redacted line of at most ~``limit`` chars."""
    args = run.arguments
    if isinstance(args, Mapping):
        inner, size = [], 0
        for key, value in args.items():
            inner.append(f"{clean(key)}={_value(value)}")
            size += len(inner[-1])
            if size > limit:
                break
        shown = ", ".join(inner)
    else:
        shown = run.arguments_raw
    return f"{truncate(clean(run.name) or '(unnamed)', 64)}({truncate(redact(clean(shown)), limit)})"


def _rows(run: ToolRun) -> list[tuple[str, str]] | None:
    args = run.arguments
    if not isinstance(args, Mapping):
        return None
    rows = [(truncate(clean(k), 40), _value(v)) for k, v in list(args.items())[:_ROWS]]
    if len(args) > _ROWS:
        rows.append(("…", f"{len(args) - _ROWS} more"))
    return rows


def _timing(run: ToolRun) -> str:
    if run.duration is None:
        return ""
    return f"{run.duration * 1000:.0f} ms" if run.duration < 1 else f"{run.duration:.2f} s"


def _result(run: ToolRun) -> tuple[str, str]:
    """``(label, text)`` of what went back to the model (capped for the screen)."""
    if run.status in ("ok", "replayed"):
        text = run.result
        label = f"result ({run.result_type})" if run.result_type else "result"
    elif run.status == "waiting":
        return "", ""
    else:
        label, text = "error" if run.status == "error" else "not run", run.error or ""
    if len(text) > _SHOWN_RESULT:
        text = text[:_SHOWN_RESULT] + f"\n…({count(len(text) - _SHOWN_RESULT, 'more char')})"
    return label, text


def rounds_line(trace: Trace) -> str:
    """``2 model calls: round 1 130 tokens (tool_calls) · round 2 95 tokens (stop) · 225 in all``."""
    if not trace.rounds:
        return ""
    parts = []
    for r in trace.rounds:
        tokens = f"{r.usage.total_tokens:,} tokens" if r.usage.total_tokens is not None else "tokens not reported"
        parts.append(f"round {r.index} {tokens}" + (f" ({clean(r.finish_reason)[:20]})" if r.finish_reason else ""))
    total = trace.usage.total_tokens
    return f"{count(len(trace.rounds), 'model call')}: " + " · ".join(parts) + (f" · {total:,} in all" if total is not None else "")


def _is_last(step: ToolRun, trace: Trace) -> bool:
    runs = trace.tool_runs
    return bool(runs) and runs[-1] is step


def _html(step: ToolRun, trace: Trace, images: h.Images | None) -> str:
    approval, status = _APPROVAL.get(step.approval, ("info", step.approval)), _STATUS.get(step.status, ("info", step.status))
    summary = [
        f'<span class="dm-plugin">{h.esc(truncate(clean(step.name), 64) or "(unnamed)")}</span>',
        f'<span class="dm-display">(tool run, round {h.esc(step.round)})</span>',
        h.badge(*approval),
        h.badge(*status),
    ]
    timing = _timing(step)
    if timing:
        summary.append(f'<span class="dm-muted">{h.esc(timing)}</span>')
    body = [h.kv([("id", h.esc(step.call_id))]) if step.call_id else ""]
    rows = _rows(step)
    if rows is not None:
        body.append(h.kv([(k, f"<code>{h.esc(v)}</code>") for k, v in rows]) if rows else
                    '<div class="dm-muted">(no arguments)</div>')
    else:
        body.append(h.pre(truncate(step.arguments_raw, 2000)) if step.arguments_raw else "")
    label, text = _result(step)
    if label:
        body.append(f'<div class="dm-label dm-muted">{h.esc(label)}</div>' + h.pre(text or "(empty)"))
    if step.note:
        body.append(h.warning(step.note))
    block = (
        f'<details class="dm-step dm-function dm-tool-run" open><summary>{" ".join(summary)}</summary>'
        f'<div class="dm-body">{"".join(body)}</div></details>'
    )
    if _is_last(step, trace) and trace.rounds:
        block += f'<div class="dm-asks">{h.esc(rounds_line(trace))}</div>'
    return block


def _text(step: ToolRun, trace: Trace, images: t.Images | None) -> list[str]:
    approval = _APPROVAL.get(step.approval, ("", step.approval))[1]
    status = _STATUS.get(step.status, ("", step.status))[1]
    timing = _timing(step)
    lines = [f"[tool run] {t.safe(call_line(step))} — round {step.round}, {approval}, {status}"
             + (f", {timing}" if timing else "")]
    label, text = _result(step)
    if label:
        lines.append(f"{t.INDENT}{label}:")
        lines += t.indent(t.safe(text or "(empty)").strip("\n"), t.INDENT * 2)
    if step.note:
        lines.append(f"{t.INDENT}({t.safe(step.note)})")
    if _is_last(step, trace) and trace.rounds:
        lines.append(f"[rounds] {t.safe(rounds_line(trace))}")
    return lines


VIEW: StepView[ToolRun] = StepView("tool_run", ToolRun, _html, _text)
