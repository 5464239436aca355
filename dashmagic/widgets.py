"""Small controls under a trace, in a live Jupyter kernel: see the code to copy, put it in a new
cell, run it locally. Optional (``pip install dashmagic[widgets]``): without ipywidgets,
:func:`trace_controls` returns None and nothing else changes.

The controls are a SEPARATE output after the trace (the magic displays them), so a saved
notebook's trace output is the same with or without them, and everywhere widgets cannot run
(nbconvert, GitHub, nbval, a terminal) the static trace is complete on its own.

What the buttons do lives in :class:`TraceControls` (plain Python, tested without a frontend);
:func:`trace_controls` only wires it to ipywidgets. Callbacks run when the kernel is idle, after
the cell finished. One limit of Jupyter's protocol: the kernel can add a cell only in the reply to
a cell being run, so "New cell" queues the code (``set_next_input``) and it appears below the next
cell the user runs; ``%dashscope_code`` puts it below at once. This module does not import IPython
(the shell is passed in).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from .local_run import invisible_warning, joined_code
from .trace import Trace

__all__ = ["TraceControls", "local_run_bundle", "trace_controls", "widgets_available"]

NEW_CELL_NOTE = (
    "Queued: the code appears in a new cell below the next cell you run (a button cannot add a cell "
    "by itself). To put it below now, run %dashscope_code."
)


def widgets_available() -> bool:
    """True when ipywidgets can be imported (the ``widgets`` extra is installed)."""
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


class TraceControls:
    """The buttons' effects: plain methods on a trace and a shell."""

    def __init__(self, trace: Trace, shell: Any, run_locally: Callable[[Trace], Trace]) -> None:
        self.trace = trace
        self.shell = shell
        self._run_locally = run_locally

    @property
    def code(self) -> str:
        return joined_code([block.code for block in self.trace.code_blocks])

    @property
    def warning(self) -> str | None:
        """The invisible-character warning for the code, shown above it (None when clean)."""
        return invisible_warning([self.code]) if self.code else None

    def new_cell(self) -> str:
        """Queue the code for a new cell; returns what to tell the user."""
        self.shell.set_next_input(self.code, replace=False)
        return NEW_CELL_NOTE

    def run(self) -> Trace:
        """Run the code locally (never in this kernel); the trace gains a LocalRun step."""
        self.trace = self._run_locally(self.trace)
        return self.trace


class _Bundle:
    """A ready mimebundle for ``Output.append_display_data`` (which calls the display formatter)."""

    def __init__(self, data: dict[str, str]) -> None:
        self.data = data

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return self.data


def _note(text: str) -> str:
    # Everything here can hold model text: escaped, never markup.
    return f"<span>{html.escape(text)}</span>"


def local_run_bundle(trace: Trace) -> dict[str, str]:
    """Only the trace's newest local run, as a display bundle: the trace itself is already on
    screen right above the controls, so showing it again (the first version did) doubled every
    step, answer and footer under the buttons (seen in a real JupyterLab)."""
    from .render._style import CSS
    from .render.html import mark_invisible_html
    from .render.steps import step_view

    runs = trace.local_runs
    if not runs:
        return {"text/plain": "(nothing ran)"}
    run = runs[-1]
    view = step_view(run)
    markup = f'<div class="dashmagic-trace"><style>{CSS}</style>{view.html(run, trace, None)}</div>'
    return {"text/html": mark_invisible_html(markup), "text/plain": "\n".join(view.text(run, trace, None))}


def trace_controls(trace: Trace, shell: Any, *, run_locally: Callable[[Trace], Trace]) -> Any | None:
    """An ipywidgets box for ``trace``, or None without ipywidgets or without code to act on."""
    try:
        import ipywidgets as w
    except ImportError:
        return None
    if not trace.code_blocks:
        return None
    controls = TraceControls(trace, shell, run_locally)
    code = w.Textarea(value=controls.code, layout=w.Layout(width="100%", height="14em", display="none"))
    status = w.HTML(_note(controls.warning or ""))
    output = w.Output()
    show = w.Button(description="Show code to copy", tooltip="Select it and copy (Ctrl/Cmd+C)")
    cell = w.Button(description="New cell", tooltip="Put the code in a new cell (never run here)")
    run = w.Button(description="Run locally", tooltip="Run it in a separate Python process, not in this kernel")

    def on_show(_: Any) -> None:
        code.layout.display = None if code.layout.display == "none" else "none"

    def on_cell(_: Any) -> None:
        status.value = _note(controls.new_cell())

    def on_run(_: Any) -> None:
        run.disabled = True
        status.value = _note("Running in a separate Python process…")
        try:
            result = controls.run()
        except Exception as exc:  # shown, not raised: a callback's traceback goes nowhere useful
            status.value = _note(f"{type(exc).__name__}: {exc}")
        else:
            status.value = _note("")
            output.clear_output()
            output.append_display_data(_Bundle(local_run_bundle(result)))
        finally:
            run.disabled = False

    show.on_click(on_show)
    cell.on_click(on_cell)
    run.on_click(on_run)
    box = w.VBox([w.HBox([show, cell, run]), status, code, output])
    box.controls = controls  # for tests and for users who want the plain object
    return box
