"""``text/plain``: a readable, deterministic terminal transcript of a trace.

Example::

    [thought] 我应该使用计算器API来进行数学计算。
    [plugin call] calculator: 12345 * 98765
    [plugin result] calculator ✓ 200 Success: 12345 * 98765 = 1219253925
    [thought] 我现在可以作答了。
    [answer] 12345*98765的结果是1219253925。
    qwen-plus · 18 in / 116 out tokens · calculator×1 · 1.2 s · request 2cc7d894-…

Model and plugin text is kept verbatim (it is plain text) except that control characters are
shown as ``\\xNN`` and signed URLs lose their query strings (:func:`._text_kit.safe`). Each
step's lines come from its view in :mod:`.steps`; each plugin's from its spec.
"""

from __future__ import annotations

from ..trace import Trace
from ._common import Images, error_line, footer_parts, group_steps, mark_invisible, strip_query
from ._text_kit import safe
from .steps import step_view

__all__ = ["render_text"]


def _status_lines(trace: Trace) -> list[str]:
    if trace.status == "pending":
        return ["[waiting…]"]
    if trace.status == "partial":
        return ["[streaming…]"]
    if trace.status == "interrupted":
        return ["[interrupted] partial trace kept" if trace.steps else "[interrupted] before any reply arrived"]
    if trace.status == "error":
        return [f"[error] {error_line(trace)}"]
    return []


def render_text(trace: Trace, images: Images | None = None) -> str:
    """The trace as plain text; ``images`` (URL → fetched image) only marks figures embedded."""
    lines = [f"[file] {strip_query(f)}" for f in trace.request.files]
    for block in group_steps(trace.steps):
        lines += step_view(block).text(block, trace, images)
    lines += _status_lines(trace)
    lines += [f"[note] {safe(note)}" for note in trace.notes]
    footer = " · ".join(
        f"request {text}" if kind == "request" else text for kind, text in footer_parts(trace)
    )
    if footer:
        lines.append(footer)
    # Last, so every line shown (code, thoughts, arguments, results) gets the Trojan-Source mark.
    return mark_invisible("\n".join(lines))
