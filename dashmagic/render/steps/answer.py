"""``answer``: the final answer, Markdown (rendered safely: see :mod:`..markdown`)."""

from __future__ import annotations

from ...trace import Answer, Trace
from .. import _html_kit as h
from .. import _text_kit as t
from . import StepView

__all__ = ["VIEW"]


def _html(step: Answer, trace: Trace, images: h.Images | None) -> str:
    return f'<div class="dm-answer">{h.markdown_to_html(h.clean(step.text))}</div>'


def _text(step: Answer, trace: Trace, images: t.Images | None) -> list[str]:
    return t.tagged("answer", step.text)


VIEW: StepView[Answer] = StepView("answer", Answer, _html, _text)
