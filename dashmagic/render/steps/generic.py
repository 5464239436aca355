"""The view of a step no renderer knows: its kind, then its fields as JSON, all escaped.

A newer wire format (or a newer dashmagic that pickled the trace) may hold steps this version
has never heard of; they are shown, never dropped and never a crash.
"""

from __future__ import annotations

import dataclasses

from ...trace import Trace
from .. import _html_kit as h
from .. import _text_kit as t
from . import StepView

__all__ = ["VIEW", "step_fields"]


def _kind(step: object) -> str:
    kind = getattr(step, "kind", None)
    return kind if isinstance(kind, str) and kind else type(step).__name__


def step_fields(step: object) -> str:
    """The step's fields (all but ``kind``) as pretty JSON; its ``repr`` when it has none."""
    if dataclasses.is_dataclass(step) and not isinstance(step, type):
        fields = {f.name: getattr(step, f.name) for f in dataclasses.fields(step) if f.name != "kind"}
    elif hasattr(step, "__dict__"):
        fields = {k: v for k, v in vars(step).items() if k != "kind"}
    else:
        return repr(step)
    try:
        return h.pretty_json(fields)
    except (ValueError, RecursionError):  # a cycle, or nesting too deep for json
        return f"({type(step).__name__}: its fields cannot be shown as JSON)"


def _html(step: object, trace: Trace, images: h.Images | None) -> str:
    summary = f'<summary><span class="dm-plugin">{h.esc(_kind(step))}</span></summary>'
    body = f'<div class="dm-body">{h.pre(step_fields(step))}</div>'
    return f'<details class="dm-step dm-generic" open>{summary}{body}</details>'


def _text(step: object, trace: Trace, images: t.Images | None) -> list[str]:
    return t.tagged(t.safe(_kind(step)), step_fields(step))


VIEW: StepView[object] = StepView("", object, _html, _text)
