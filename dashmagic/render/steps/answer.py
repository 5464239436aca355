"""``answer``: the final answer, Markdown (rendered safely: see :mod:`..markdown`), with its
citation markers linked to the web sources of the trace (see :mod:`..citations`)."""

from __future__ import annotations

from ...trace import Answer, Trace
from .. import _html_kit as h
from .. import _text_kit as t
from ..citations import link_citations
from . import StepView

__all__ = ["VIEW"]


def _html(step: Answer, trace: Trace, images: h.Images | None) -> str:
    markup = h.markdown_to_html(h.clean(step.text))
    sources = trace.sources
    if sources:  # on the sanitized HTML, so a marker can never open a hole in it
        markup = link_citations(markup, sources)
    return f'<div class="dm-answer">{markup}</div>'


def _text(step: Answer, trace: Trace, images: t.Images | None) -> list[str]:
    return t.tagged("answer", step.text)


VIEW: StepView[Answer] = StepView("answer", Answer, _html, _text)
