"""``code_execution``: code the built-in code interpreter ran (an entry of ``tool_info``).

The service returns the code and nothing else (no stdout, no result, no figure), so the view
says so instead of leaving an empty "Result" the reader would wait for.
"""

from __future__ import annotations

from ...trace import CodeExecution, Trace
from .. import _html_kit as h
from .. import _text_kit as t
from . import StepView
from ._shared import is_live_tail

__all__ = ["VIEW", "NO_OUTPUT_NOTE", "WRITING"]

NO_OUTPUT_NOTE = (
    "DashScope runs this code but returns only the code; its output shows in the reasoning "
    "and answer that follow."
)
WRITING = "writing code…"


def _state(step: CodeExecution, trace: Trace) -> tuple[str, str]:
    """``(badge kind, label)``: the service never says whether the code succeeded."""
    if not step.code:
        return ("running", WRITING) if not trace.done else ("missing", "no code sent")
    if is_live_tail(step, trace):
        return "running", "running…"
    return "info", "no output returned"


def _html(step: CodeExecution, trace: Trace, images: h.Images | None) -> str:
    summary = (
        '<summary><span class="dm-plugin">code_interpreter</span> '
        f'<span class="dm-display">(built-in, {h.esc(step.language)})</span> '
        f"{h.badge(*_state(step, trace))}</summary>"
    )
    if step.code:
        body = h.highlight_code(step.code, step.language) + f'<div class="dm-note">{NO_OUTPUT_NOTE}</div>'
    elif not trace.done:
        body = f'<div class="dm-muted">{WRITING}</div>'
    else:
        body = '<div class="dm-muted">(the service sent no code for this entry)</div>'
    return f'<details class="dm-step dm-code-exec" open>{summary}<div class="dm-body">{body}</div></details>'


def _text(step: CodeExecution, trace: Trace, images: t.Images | None) -> list[str]:
    head = f"[code execution] built-in code interpreter ({t.safe(step.language)})"
    if not step.code:
        return [f"{head}: {WRITING if not trace.done else '(no code sent)'}"]
    return [f"{head}:", *t.indent(t.safe(step.code).strip("\n")), f"{t.INDENT}({NO_OUTPUT_NOTE})"]


VIEW: StepView[CodeExecution] = StepView("code_execution", CodeExecution, _html, _text)
