"""What the views of today's steps share: the live-tail test and JSON that never raises.

Pure, like every view: it reads the trace, never the wire.
"""

from __future__ import annotations

from typing import Any

from ...trace import Trace
from .._common import pretty_json

__all__ = ["is_live_tail", "json_text", "count"]


def is_live_tail(step: object, trace: Trace) -> bool:
    """True while ``step`` is the newest step of a trace that is still streaming.

    By identity, not equality: two reasoning steps with the same text are still two steps, and
    :func:`~dashmagic.render._common.group_steps` passes these steps through unchanged.
    """
    return not trace.done and bool(trace.steps) and trace.steps[-1] is step


def json_text(value: Any) -> str | None:
    """``value`` as pretty JSON, or None when it cannot be (a cycle, or nesting deeper than
    ``json`` recurses: arguments are frozen iteratively, so they may nest far deeper)."""
    try:
        return pretty_json(value)
    except (ValueError, RecursionError, TypeError):
        return None


def count(n: int, noun: str) -> str:
    """``1 source``, ``5 sources``, ``2,650 chars`` (thousands separated)."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
