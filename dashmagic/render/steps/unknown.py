"""``unknown``: a part of the reply dashmagic does not know (an ``output`` or message key, a
tool type). Shown folded, where it was found plus a one-line preview, its value as escaped JSON
inside: never dropped, never trusted, never a ``KeyError``.
"""

from __future__ import annotations

from ...trace import Trace, UnknownPart
from .. import _html_kit as h
from .. import _text_kit as t
from .._common import clean, redact, truncate
from . import StepView
from ._shared import json_text

__all__ = ["VIEW"]


def _value_text(step: UnknownPart) -> str:
    text = json_text(step.value)
    return text if text is not None else f"({type(step.value).__name__}: cannot be shown as JSON)"


def _html(step: UnknownPart, trace: Trace, images: h.Images | None) -> str:
    value = _value_text(step)
    preview = truncate(redact(clean(value)), h.SUMMARY_LIMIT)
    summary = (
        '<summary><span class="dm-plugin">unknown part</span> '
        f'<span class="dm-display">{h.esc(step.where)}</span> '
        f'<span class="dm-args">{h.esc(preview)}</span></summary>'
    )
    return f'<details class="dm-step dm-generic">{summary}<div class="dm-body">{h.pre(value)}</div></details>'


def _text(step: UnknownPart, trace: Trace, images: t.Images | None) -> list[str]:
    return t.tagged(f"unknown part: {t.safe(step.where)}", _value_text(step))


VIEW: StepView[UnknownPart] = StepView("unknown", UnknownPart, _html, _text)
