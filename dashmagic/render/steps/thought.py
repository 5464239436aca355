"""``thought``: the assistant's reasoning (the plugin generation's ``Thought:`` text)."""

from __future__ import annotations

from ...trace import Thought, Trace
from .. import _html_kit as h
from .. import _text_kit as t
from . import StepView

__all__ = ["VIEW"]


def _html(step: Thought, trace: Trace, images: h.Images | None) -> str:
    label = '<span class="dm-label">Thought:</span> '
    return f'<div class="dm-thought">{label}{h.esc(step.text.strip())}</div>'


def _text(step: Thought, trace: Trace, images: t.Images | None) -> list[str]:
    return t.tagged("thought", step.text)


VIEW: StepView[Thought] = StepView("thought", Thought, _html, _text)
