"""``answer``: the final answer, Markdown (rendered safely: see :mod:`..markdown`), with its
citation markers linked to the web sources of the trace (see :mod:`..citations`)."""

from __future__ import annotations

from ...trace import Answer, Trace
from .. import _html_kit as h
from .. import _text_kit as t
from ..citations import link_citations
from . import StepView

__all__ = ["VIEW"]


# JupyterLab right-aligns output cells with a two-class rule, and drops <style> when untrusted:
# an inline text-align (kept by its sanitizer) is the one form that wins everywhere. Data cells
# are justified: a one-line cell reads left-aligned, wrapped Chinese lines end flush, not ragged.
# Cells the Markdown aligned itself (``|:-:|``) keep their own.
# Cells also say ``align``: where styles are stripped (GitHub) it still beats the browser's
# defaults (centred <th>, ragged <td>).
_TH = '<th align="left" style="text-align:left">'
_CELL = {"<td>": '<td align="justify" style="text-align:justify">', "<th>": _TH}


def _html(step: Answer, trace: Trace, images: h.Images | None) -> str:
    markup = h.markdown_to_html(h.clean(step.text))
    for bare, aligned in _CELL.items():
        markup = markup.replace(bare, aligned)
    sources = trace.sources
    if sources:  # on the sanitized HTML, so a marker can never open a hole in it
        markup = link_citations(markup, sources)
    return f'<div class="dm-answer">{markup}</div>'


def _text(step: Answer, trace: Trace, images: t.Images | None) -> list[str]:
    return t.tagged("answer", step.text)


VIEW: StepView[Answer] = StepView("answer", Answer, _html, _text)
