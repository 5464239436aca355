"""Approve / Reject buttons for a tool loop's pending calls (ipywidgets), under the trace.

The loop does not block the kernel: the cell ends with the calls ``pending``; each button's
callback records the answer, and once every pending call has one, the loop continues from that
callback, updating the trace's own output (the same DisplayHandle, via the LiveDisplay). Without
ipywidgets :func:`approval_controls` returns None and the caller falls back to "approval needed:
rerun with --approve …" (nothing waits for an answer that cannot come).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .tool_loop import ToolLoop
from .trace import Trace

__all__ = ["widgets_available", "approval_controls"]


def widgets_available() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def approval_controls(
    loop: ToolLoop,
    show: Callable[[Trace], None],
    done: Callable[[Trace, Exception | None], None],
    pause: Callable[[Trace], None] | None = None,
) -> Any:
    """A VBox with one row per pending call; ``show`` gets every snapshot of the continued loop,
    ``done`` the final trace (and the error that ended it, if any), ``pause`` the snapshot the
    loop stopped at when a later round waits for approval again: it must reach the screen now
    (a throttled ``show`` may have held it back, and nothing else follows until the next click).
    None without ipywidgets."""
    try:
        import ipywidgets as widgets
    except ImportError:
        return None
    from .render.steps.tool_run import call_line

    box = widgets.VBox()

    def rows() -> list[Any]:
        out = []
        for run in loop.pending:
            label = widgets.Label(value=f"Run {call_line(run)}?")
            approve = widgets.Button(description="Approve", button_style="success")
            reject = widgets.Button(description="Reject", button_style="danger")
            approve.on_click(_answer(run.call_id, True))
            reject.on_click(_answer(run.call_id, False))
            out.append(widgets.HBox([label, approve, reject]))
        return out

    def _answer(call_id: str, approved: bool) -> Callable[[Any], None]:
        def clicked(_button: Any) -> None:
            show(loop.decide(call_id, approved))
            if loop.pending:
                box.children = rows()
                return
            box.children = [widgets.Label(value="Running the approved calls…")]
            final: Trace | None = None
            error: Exception | None = None
            try:
                for final in loop.resume():
                    show(final)
                    if loop.pending:  # a later round asks again: new buttons
                        break
            except Exception as exc:  # shown in the trace; the callback must not die silently
                error = exc
                final = getattr(exc, "trace", None) or final
            if loop.pending:
                if final is not None:
                    (pause or show)(final)
                box.children = rows()
                return
            box.children = [widgets.Label(value="Done: every call was answered.")]
            if final is not None:
                done(final, error)

        return clicked

    box.children = rows()
    return box
