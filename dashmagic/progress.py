"""Progress of a batch (:func:`dashmagic.map`): counts, rate, ETA, tokens; a widget, a bar or a summary.

Where it runs decides the view (:func:`choose_view`):

* a Jupyter kernel with a live frontend: an ipywidgets ``IntProgress`` and an ``HTML`` label,
  updated in place (without ipywidgets: one HTML output updated through its display id);
* a terminal: one text line on stderr, rewritten with ``\\r``;
* nbconvert/nbval (``DASHMAGIC_LIVE=0``) or no frontend at all: only the final summary.

Updates follow the live display's throttle rule: at most one every ``interval`` seconds, counted
from the end of a render and never sooner than 4x what the render cost; the final state is
always shown. Rendering here is pure (escaped HTML, one-line text); only the views touch
IPython, and import it lazily.
"""

from __future__ import annotations

import html
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from .trace import Trace

__all__ = [
    "ProgressState",
    "Progress",
    "ProgressView",
    "Reporter",
    "TextView",
    "HtmlView",
    "WidgetView",
    "SummaryView",
    "CallbackView",
    "BatchSummary",
    "choose_view",
    "progress_line",
    "progress_html",
]

_BAR = 24


@dataclass(frozen=True, slots=True)
class ProgressState:
    """One moment of a batch. ``done`` counts every finished row, failed ones included."""

    total: int | None
    done: int = 0
    failed: int = 0
    interrupted: int = 0
    retrying: int = 0
    from_record: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    elapsed: float = 0.0
    finished: bool = False

    @property
    def rate(self) -> float:
        """Rows finished per second so far (rows answered from the record file included)."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if self.total is None or self.rate <= 0 or self.finished:
            return None
        return max(0, self.total - self.done) / self.rate


class Progress:
    """The counters behind :class:`ProgressState`, safe to bump from worker threads."""

    def __init__(self, total: int | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._counts = {"done": 0, "failed": 0, "interrupted": 0, "from_record": 0, "in": 0, "out": 0}
        self._retrying: set[int] = set()
        self._finished = False

    def retrying(self, row: int) -> None:
        with self._lock:
            self._retrying.add(row)

    def finished_row(self, row: int, trace: Trace, *, from_record: bool = False) -> None:
        with self._lock:
            self._retrying.discard(row)
            counts = self._counts
            counts["done"] += 1
            counts["failed"] += trace.status == "error"
            counts["interrupted"] += trace.status == "interrupted"
            counts["from_record"] += from_record
            counts["in"] += trace.usage.input_tokens or 0
            counts["out"] += trace.usage.output_tokens or 0

    def finish(self) -> None:
        with self._lock:
            self._finished = True

    def state(self) -> ProgressState:
        with self._lock:
            c = self._counts
            return ProgressState(
                total=self.total, done=c["done"], failed=c["failed"], interrupted=c["interrupted"],
                retrying=len(self._retrying), from_record=c["from_record"], input_tokens=c["in"],
                output_tokens=c["out"], elapsed=self._clock() - self._started, finished=self._finished,
            )


# -- rendering (pure) ----------------------------------------------------------------------------


def _seconds(value: float) -> str:
    value = max(0.0, value)
    if value < 60:
        return f"{value:.0f} s"
    if value < 3600:
        return f"{value // 60:.0f} min {value % 60:02.0f} s"
    return f"{value // 3600:.0f} h {value % 3600 // 60:02.0f} min"


def _parts(state: ProgressState) -> list[str]:
    parts = [f"{state.done - state.failed - state.interrupted:,} ok", f"{state.failed:,} failed"]
    if state.interrupted:
        parts.append(f"{state.interrupted:,} interrupted")
    if not state.finished:
        parts.append(f"{state.retrying:,} retrying")
    if state.from_record:
        parts.append(f"{state.from_record:,} from the record")
    parts.append(f"{state.rate:.1f} rows/s")
    eta = state.eta
    if eta is not None:
        parts.append(f"ETA {_seconds(eta)}")
    elif state.finished:
        parts.append(f"took {_seconds(state.elapsed)}")
    parts.append(f"tokens {state.input_tokens:,} in / {state.output_tokens:,} out")
    return parts


def _count(state: ProgressState) -> str:
    return f"{state.done:,}/{state.total:,}" if state.total is not None else f"{state.done:,}"


def progress_line(state: ProgressState, width: int = _BAR) -> str:
    """One terminal line: ``[#####-----] 120/200 · 118 ok · 2 failed · … · tokens …``."""
    if state.total and width > 0:
        filled = min(width, state.done * width // state.total)
        bar = "[" + "#" * filled + "-" * (width - filled) + "] "
    else:
        bar = ""
    return f"{bar}{_count(state)} · " + " · ".join(_parts(state))


def progress_html(state: ProgressState) -> str:
    """The same as HTML: a ``<progress>`` bar and the counts (every value is a number we made)."""
    maximum = state.total if state.total else max(1, state.done)
    return (
        '<div class="dashmagic-progress" style="font-family:var(--jp-ui-font-family,sans-serif);font-size:13px">'
        f'<progress value="{state.done}" max="{maximum}" style="width:16em;vertical-align:middle"></progress> '
        f"<b>{html.escape(_count(state))}</b> · {html.escape(' · '.join(_parts(state)))}</div>"
    )


# -- views ------------------------------------------------------------------------------------------


class ProgressView(Protocol):
    def update(self, state: ProgressState) -> None: ...

    def close(self, state: ProgressState) -> None: ...


class TextView:
    """A terminal bar: one line on ``stream``, rewritten with ``\\r``, ended by a newline."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self._width = 0

    def update(self, state: ProgressState) -> None:
        line = progress_line(state)
        pad = " " * max(0, self._width - len(line))  # wipe what a longer line left behind
        self._width = len(line)
        self.stream.write("\r" + line + pad)
        self.stream.flush()

    def close(self, state: ProgressState) -> None:
        self.update(state)
        self.stream.write("\n")
        self.stream.flush()


class HtmlView:
    """One HTML output updated in place through its display id (no ipywidgets needed)."""

    def __init__(self) -> None:
        self._handle: Any = None

    def _bundle(self, state: ProgressState) -> dict[str, str]:
        return {"text/html": progress_html(state), "text/plain": progress_line(state)}

    def update(self, state: ProgressState) -> None:
        from IPython.display import display

        if self._handle is None:
            self._handle = display(self._bundle(state), raw=True, display_id=True)  # type: ignore[no-untyped-call, unused-ignore]
        else:
            self._handle.update(self._bundle(state), raw=True)

    def close(self, state: ProgressState) -> None:
        self.update(state)


class WidgetView:
    """An ipywidgets ``IntProgress`` and an ``HTML`` label in an ``HBox``, updated in place.

    ``widgets`` is the ipywidgets module (given in tests); the final state is also left as
    plain text in the widget's place-holder output, so a saved notebook shows the summary.
    """

    def __init__(self, widgets: Any = None) -> None:
        if widgets is None:
            import ipywidgets as widgets  # type: ignore[import-not-found, no-redef]
        self.bar = widgets.IntProgress(value=0, min=0, max=1, description="dashmagic", bar_style="info")
        self.label = widgets.HTML(value="")
        self.box = widgets.HBox([self.bar, self.label])
        self._shown = False

    def state(self) -> dict[str, Any]:
        """What the frontend is told (tests read this: no browser needed)."""
        return {"value": self.bar.value, "max": self.bar.max, "bar_style": self.bar.bar_style,
                "description": self.bar.description, "label": self.label.value}

    def _apply(self, state: ProgressState) -> None:
        self.bar.max = state.total if state.total else max(1, state.done)
        self.bar.value = state.done
        self.label.value = html.escape(" · ".join([_count(state), *_parts(state)]))
        if state.finished:
            self.bar.bar_style = "danger" if state.failed or state.interrupted else "success"
        elif state.retrying:
            self.bar.bar_style = "warning"
        else:
            self.bar.bar_style = "info"

    def update(self, state: ProgressState) -> None:
        self._apply(state)
        if not self._shown:
            from IPython.display import display

            display(self.box)  # type: ignore[no-untyped-call, unused-ignore]
            self._shown = True

    def close(self, state: ProgressState) -> None:
        self.update(state)


class SummaryView:
    """No live frontend (nbconvert, nbval, a pipe): nothing while running, one line at the end."""

    def __init__(self, ipython: bool) -> None:
        self.ipython = ipython
        self.shown: str | None = None

    def update(self, state: ProgressState) -> None:
        return None

    def close(self, state: ProgressState) -> None:
        self.shown = progress_line(state, width=0).lstrip()
        if self.ipython:
            from IPython.display import display

            display({"text/plain": self.shown, "text/html": progress_html(state)}, raw=True)  # type: ignore[no-untyped-call, unused-ignore]
        elif sys.stderr is not None:
            print(self.shown, file=sys.stderr)


class CallbackView:
    """``progress=callable``: the callable gets every throttled state and the final one."""

    def __init__(self, callback: Callable[[ProgressState], Any]) -> None:
        self.callback = callback

    def update(self, state: ProgressState) -> None:
        self.callback(state)

    def close(self, state: ProgressState) -> None:
        self.callback(state)


class NullView:
    def update(self, state: ProgressState) -> None:
        return None

    def close(self, state: ProgressState) -> None:
        return None


@dataclass
class Reporter:
    """Throttles a view: at most one update per ``interval`` (from the end of the last render)."""

    view: ProgressView
    interval: float = 0.1
    clock: Callable[[], float] = time.monotonic
    updates: int = 0
    _next: float = field(default=float("-inf"), repr=False)

    def update(self, state: ProgressState) -> None:
        now = self.clock()
        if now < self._next:
            return
        self.view.update(state)
        self.updates += 1
        done = self.clock()
        self._next = done + max(self.interval, 4 * (done - now))

    def close(self, state: ProgressState) -> None:
        self.view.close(state)
        self.updates += 1


def _live_kernel() -> tuple[bool, bool]:
    """(running under IPython, a kernel with a live frontend)."""
    if "IPython" not in sys.modules:
        return False, False
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return False, False
    kernel = getattr(shell, "kernel", None)
    live = os.environ.get("DASHMAGIC_LIVE", "1").strip().lower() not in ("0", "false", "no")
    return True, kernel is not None and live


def choose_view(progress: Any, *, live: bool | None = None) -> ProgressView:
    """``progress``: False (nothing), a callable, True or None (by where this runs).

    ``live`` overrides the kernel check (the magic knows its shell and its live_updates trait).
    """
    if progress is False:
        return NullView()
    if callable(progress):
        return CallbackView(progress)
    in_ipython, kernel_live = _live_kernel()
    if live is not None:
        kernel_live = live
    if kernel_live:
        try:
            return WidgetView()
        except ImportError:
            return HtmlView()
    if not in_ipython and sys.stderr is not None and sys.stderr.isatty():
        return TextView()
    if in_ipython or progress is True:
        return SummaryView(ipython=in_ipython)
    return NullView()


# -- the batch summary --------------------------------------------------------------------------


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text[: limit * 4].split())
    flat = "".join(ch if ch.isprintable() else "\ufffd" for ch in flat)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class BatchSummary:
    """What the ``--over`` cell shows: counts per status, tokens, and the first rows."""

    def __init__(self, traces: Sequence[Trace], index: Sequence[Any] | None = None, head: int = 5) -> None:
        self.traces, self.head = traces, head
        self.index = list(index) if index is not None else list(range(len(traces)))
        self.counts: dict[str, int] = {}
        for trace in traces:
            self.counts[trace.status] = self.counts.get(trace.status, 0) + 1
        self.input_tokens = sum(t.usage.input_tokens or 0 for t in traces)
        self.output_tokens = sum(t.usage.output_tokens or 0 for t in traces)

    def _rows(self) -> list[tuple[str, str, str]]:
        rows: list[tuple[str, str, str]] = []
        for label, trace in zip(self.index[: self.head], self.traces[: self.head]):
            shown = trace.answer or (trace.error.message if trace.error else "")
            rows.append((_one_line(str(label), 20), trace.status, _one_line(shown, 80)))
        return rows

    def headline(self) -> str:
        counts = ", ".join(f"{n:,} {status}" for status, n in sorted(self.counts.items()))
        return (f"{len(self.traces):,} rows: {counts or 'none'}; tokens {self.input_tokens:,} in / "
                f"{self.output_tokens:,} out")

    def text(self) -> str:
        lines = [self.headline()]
        lines += [f"  {label:>6}  {status:<11}  {shown}" for label, status, shown in self._rows()]
        if len(self.traces) > self.head:
            lines.append(f"  … {len(self.traces) - self.head:,} more")
        return "\n".join(lines)

    def html(self) -> str:
        e = html.escape
        body = "".join(f"<tr><td>{e(a)}</td><td>{e(b)}</td><td style='text-align:left'>{e(c)}</td></tr>"
                       for a, b, c in self._rows())
        more = f"<p>… {len(self.traces) - self.head:,} more rows</p>" if len(self.traces) > self.head else ""
        return (f'<div class="dashmagic-batch"><p><b>{e(self.headline())}</b></p>'
                f"<table><thead><tr><th>row</th><th>status</th><th>answer / error</th></tr></thead>"
                f"<tbody>{body}</tbody></table>{more}</div>")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.text(), "text/html": self.html()}

    def __repr__(self) -> str:
        return self.text()
