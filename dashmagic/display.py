"""Live display of a streaming trace in IPython: one output, updated in place, throttled.

The final output is an ordinary ``display_data`` mime bundle (``text/html`` + ``text/plain``),
so it survives save/reopen, nbconvert, GitHub and VS Code; nothing lives only in a widget.
Updates are throttled (``interval``, default 0.1 s ⇒ at most ~10 a second) and the HTML is
re-rendered only when an update is actually sent, so a long answer costs O(events) parsing
plus O(updates) rendering, not O(events) renderings.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from .errors import DashmagicError, Interrupted
from .render import mimebundle
from .trace import Trace

__all__ = ["LiveDisplay", "output_metadata"]


def _display() -> Callable[..., Any]:
    """IPython's ``display`` (untyped upstream), imported when a trace is first shown."""
    from IPython.display import display

    shown: Callable[..., Any] = display
    return shown


def _stdout_write(text: str) -> None:
    import sys

    sys.stdout.write(text)


def output_metadata(trace: Trace) -> dict[str, Any]:
    """Provenance kept in the output's metadata (no key, no signed URLs)."""
    usage = trace.usage
    return {
        "dashmagic": {
            "model": trace.model or trace.request.model,
            "plugins": list(trace.request.plugins),
            "status": trace.status,
            "request_id": trace.request_id,
            "usage": {
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "total_tokens": usage.total_tokens,
                "plugins": dict(usage.plugins),
            },
        }
    }


class LiveDisplay:
    """Shows snapshots of one trace.

    ``live`` (a Jupyter kernel): the first snapshot is displayed at once with a display id,
    later ones update it at most every ``interval`` seconds, and :meth:`close` sends the final
    one. Not live (terminal IPython, ``--no-stream`` under nbval…): only the final snapshot is
    displayed, once, so a terminal never reprints the whole trace.
    """

    def __init__(
        self,
        *,
        live: bool,
        interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        terminal: bool = False,
        out: str | None = None,
        write: Callable[[str], object] | None = None,
    ) -> None:
        self.live = live
        #: Terminal IPython: the answer's new text is printed as it streams, figures say where
        #: their bytes are. ``out`` is the --out name the trace will have.
        self.terminal = terminal and not live
        self.out = out
        self._write = write
        self._printed = ""  # the answer text already printed while streaming
        self.interval = interval
        self._clock = clock
        self._handle: Any = None
        self._next_send = float("-inf")
        self._pending: Trace | None = None
        self._shown_events = 0
        #: Whether the final trace stayed on screen (False: blanked, an error before any step).
        self.kept = False
        self.updates = 0  # how many bundles were sent to the frontend (benchmarks read this)
        self.bytes_sent = 0

    def _bundle(self, trace: Trace) -> tuple[dict[str, Any], dict[str, Any]]:
        data = mimebundle(trace)
        self.updates += 1
        self.bytes_sent += sum(len(v) for v in data.values())
        return data, output_metadata(trace)

    def show(self, trace: Trace) -> None:
        """A new snapshot arrived; send it now if the throttle allows, else keep it pending."""
        self._pending = trace
        if self.terminal:
            self._print_new_text(trace)
        if not self.live:
            return
        now = self._clock()
        # The first snapshot with content goes out at once (the "waiting" placeholder before it
        # does not count against the throttle): first visible update = first event.
        first_content = self._shown_events == 0 and trace.events > 0
        if self._handle is not None and not first_content and now < self._next_send:
            return
        self._send(trace)

    def _send(self, trace: Trace) -> None:
        display = _display()

        started = self._clock()
        data, metadata = self._bundle(trace)
        if self._handle is None:
            self._handle = display(data, metadata=metadata, raw=True, display_id=True)
        else:
            self._handle.update(data, metadata=metadata, raw=True)
        done = self._clock()
        # Counted from the end of the render, and never less than 4x what rendering cost: a long
        # answer whose render approaches the interval would otherwise render back to back and
        # starve the stream (quadratic in the answer's length).
        self._next_send = done + max(self.interval, 4 * (done - started))
        self._shown_events = trace.events
        self._pending = None

    def follow(self, snapshots: Iterator[Trace]) -> tuple[Trace, DashmagicError | None]:
        """Show every snapshot to the end; return the last one and the error that ended it, if any.

        A Ctrl-C that lands outside the generator (while rendering) still closes the HTTP response
        and leaves the partial trace, marked interrupted. The final trace is always shown once,
        except when an error came before anything worth showing (its own line says it all).
        """
        last: Trace | None = None
        error: DashmagicError | None = None
        try:
            for last in snapshots:
                self.show(last)
        except DashmagicError as exc:
            error, last = exc, exc.trace or last
        except KeyboardInterrupt:
            close = getattr(snapshots, "close", None)
            if close is not None:
                close()
            if last is None:
                self.discard()
                raise Interrupted("Stopped by the user before any reply arrived.") from None
            last = last.replace(status="interrupted")
            # Only a trace with steps has a partial trace to keep (Stop may come before any byte).
            error = Interrupted("Stopped by the user; the partial trace is kept." if last.steps
                                else "Stopped by the user before any reply arrived.")
            error.trace = last
        if last is None:  # pragma: no cover - a client always yields before it raises
            raise error or Interrupted("No reply.")
        if error is not None and not last.steps and not last.notes:
            self.discard()
        else:
            self.close(last)
            self.kept = True
        return last, error

    def _print_new_text(self, trace: Trace) -> None:
        """Print what the answer gained since the last snapshot (each piece once); a revised
        answer (not an extension of what was printed) waits for the final transcript."""
        import sys

        answer = trace.answer or ""
        if not answer.startswith(self._printed) or len(answer) == len(self._printed):
            return
        write = self._write or sys.stdout.write
        write(answer[len(self._printed):])
        self._printed = answer
        flush = getattr(sys.stdout, "flush", None)
        if self._write is None and flush is not None:
            flush()

    def _terminal_text(self, trace: Trace, text: str) -> str:
        """The transcript for a terminal: an embedded figure says where its bytes are and how
        to save them ("embedded" means nothing where nothing can be shown)."""
        from .render._text_kit import figure_line

        images = {image.url: image for image in trace.images}
        name = self.out or "t"
        for fig in trace.figures:
            image = images.get(fig.url)
            if image is None or not image.ok or image.data is None:
                continue
            index = trace.images.index(image)
            file = f"{fig.alt or f'fig-{index + 1:03d}'}.{(image.mime or 'image/png').split('/')[-1]}"
            where = f"kept in {name}.images[{index}]" + ("" if self.out else " (store the trace with --out t)")
            line = (f"[figure] {fig.alt + ': ' if fig.alt else ''}{len(image.data) / 1000:.1f} kB "
                    f"{(image.mime or '').split('/')[-1].upper()}, {where}; save with "
                    f"{name}.images[{index}].save({file!r})")
            text = text.replace(figure_line(fig, images), line)
        return text

    def discard(self) -> None:
        """Nothing worth showing arrived (an error before any step): blank the placeholder, so
        the error's own one-line message is the only thing the cell shows."""
        if self._handle is not None:
            self._handle.update({"text/plain": ""}, raw=True)
        self._pending = None

    def close(self, final: Trace | None = None) -> None:
        """Send the final snapshot (always, even if the throttle just sent one)."""
        display = _display()

        trace = final or self._pending
        if trace is None:
            return
        data, metadata = self._bundle(trace)
        if self.terminal:
            if self._printed:
                (self._write or _stdout_write)("\n\n")  # the streamed text ends; the transcript follows
            data = {**data, "text/plain": self._terminal_text(trace, data["text/plain"])}
        if self._handle is None:
            display(data, metadata=metadata, raw=True)
        else:
            self._handle.update(data, metadata=metadata, raw=True)
        self._pending = None
