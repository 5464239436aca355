"""``reasoning``: the model's thinking (``reasoning_content``), plain text in a fold.

Open while it is the newest step of a streaming trace, so the user watches it grow; folded as
soon as anything follows it (the answer starts, code runs) or the trace ends. Shown as escaped
plain text, not Markdown: thinking is scratch work, and half-written Markdown re-rendered on
every snapshot flickers (one unclosed fence turns the rest into code until it closes).
"""

from __future__ import annotations

from ...trace import Reasoning, Trace
from .. import _html_kit as h
from .. import _text_kit as t
from .._common import clean, redact, truncate
from . import StepView
from ._shared import count, is_live_tail

__all__ = ["VIEW"]


def _html(step: Reasoning, trace: Trace, images: h.Images | None) -> str:
    live = is_live_tail(step, trace)
    size = count(len(step.text), "char")
    parts = ['<span class="dm-plugin">Thinking</span>']
    if not live:  # folded: a preview says what it is about; live, the body is in view
        preview = truncate(redact(clean(step.text)), h.SUMMARY_LIMIT)
        if preview:
            parts.append(f'<span class="dm-args">{h.esc(preview)}</span>')
    parts.append(h.badge("running", f"thinking… {size}") if live else h.badge("info", size))
    text = step.text.strip("\n")
    body = h.esc(text) if text else '<span class="dm-muted">…</span>'
    attr = " open" if live else ""
    return (
        f'<details class="dm-step dm-reasoning"{attr}><summary>{" ".join(parts)}</summary>'
        f'<div class="dm-body"><div class="dm-reasoning-text">{body}</div></div></details>'
    )


def _text(step: Reasoning, trace: Trace, images: t.Images | None) -> list[str]:
    size = count(len(step.text), "char")
    head = f"[reasoning] {size}" + (", thinking…" if is_live_tail(step, trace) else "")
    text = t.safe(step.text).strip("\n")
    return [head, *t.indent(text)] if text else [head]


VIEW: StepView[Reasoning] = StepView("reasoning", Reasoning, _html, _text)
