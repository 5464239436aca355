"""Progress of a batch: the counters, the throttle, each view's state (no browser needed)."""

from __future__ import annotations

import io
from typing import Any

import pytest

from dashmagic.progress import (
    BatchSummary, CallbackView, HtmlView, NullView, Progress, ProgressState, Reporter, SummaryView, TextView,
    WidgetView, choose_view, progress_html, progress_line,
)
from dashmagic.trace import Answer, ErrorInfo, RequestInfo, Trace, Usage


def trace(status: str = "complete", answer: str = "ok") -> Trace:
    return Trace(request=RequestInfo(model="qwen-plus"), steps=(Answer(answer),), status=status,  # type: ignore[arg-type]
                 usage=Usage(input_tokens=2, output_tokens=3),
                 error=ErrorInfo("ServerError", "boom") if status == "error" else None)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_counts_rate_eta_and_tokens() -> None:
    clock = Clock()
    progress = Progress(10, clock=clock)
    progress.retrying(3)
    for row in range(4):
        progress.finished_row(row, trace("error" if row == 1 else "complete"), from_record=row == 0)
    clock.now = 2.0
    state = progress.state()
    assert (state.done, state.failed, state.retrying, state.from_record) == (4, 1, 0, 1)
    assert state.rate == pytest.approx(2.0) and state.eta == pytest.approx(3.0)
    assert (state.input_tokens, state.output_tokens) == (8, 12)
    line = progress_line(state)
    assert line.startswith("[#########") and "4/10" in line and "1 failed" in line and "ETA 3 s" in line
    assert "<progress value=\"4\" max=\"10\"" in progress_html(state)


def test_the_throttle_counts_from_the_end_of_a_render() -> None:
    clock = Clock()
    seen: list[ProgressState] = []

    def slow(state: ProgressState) -> None:
        seen.append(state)
        clock.now += 0.05  # rendering costs 50 ms: the next update waits 4 x that

    reporter = Reporter(CallbackView(slow), interval=0.1, clock=clock)
    for _ in range(100):
        reporter.update(ProgressState(total=100))
        clock.now += 0.01
    # 100 calls over ~1 s of clock: one render per 0.2 s (4 x 50 ms) plus the first.
    assert 4 <= len(seen) <= 8
    reporter.close(ProgressState(total=100, finished=True))
    assert seen[-1].finished  # the final state always goes out


class FakeWidget:
    def __init__(self, *children: Any, **traits: Any) -> None:
        self.children = children
        self.closed = False
        self.__dict__.update(traits)

    def close(self) -> None:
        self.closed = True


class FakeWidgets:
    IntProgress = HTML = HBox = FakeWidget


def test_widget_state_follows_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[Any] = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    view = WidgetView(widgets=FakeWidgets)
    view.update(ProgressState(total=5, done=2, retrying=1))
    assert view.state()["value"] == 2 and view.state()["max"] == 5 and view.state()["bar_style"] == "warning"
    assert "2/5" in view.state()["label"] and "1 retrying" in view.state()["label"]
    view.close(ProgressState(total=5, done=5, failed=1, finished=True))
    assert view.state()["bar_style"] == "danger" and view.state()["value"] == 5
    # The bar gives way to a static line, so a saved notebook (no widget state) keeps the summary.
    assert view.box.closed and "5/5" in shown[-1]["text/plain"] and "text/html" in shown[-1]
    assert shown[0] is view.box and len(shown) == 2  # displayed once, updated in place, then the line


def test_terminal_bar_rewrites_one_line() -> None:
    out = io.StringIO()
    view = TextView(out)
    view.update(ProgressState(total=4, done=1))
    view.close(ProgressState(total=4, done=4, finished=True))
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and "4/4" in text and "\n" not in text[:-1]


def test_views_are_chosen_by_where_the_batch_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(choose_view(False), NullView)
    assert isinstance(choose_view(print), CallbackView)
    # A live kernel that nothing draws widgets in (nbclient, nbconvert): one HTML output.
    monkeypatch.setattr("dashmagic.progress._live_kernel", lambda: (True, True, False))
    assert isinstance(choose_view(None), HtmlView)
    # A Jupyter server's or VS Code's kernel: the widget, when ipywidgets is installed.
    monkeypatch.setattr("dashmagic.progress._live_kernel", lambda: (True, True, True))
    live = choose_view(None)
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        assert isinstance(live, HtmlView)  # the display_id fallback
    else:
        assert isinstance(live, WidgetView)


def test_no_live_frontend_shows_only_the_final_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[Any] = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj))
    view = SummaryView(ipython=True)
    reporter = Reporter(view, interval=0.0)
    for done in range(5):
        reporter.update(ProgressState(total=5, done=done))
    assert shown == []
    reporter.close(ProgressState(total=5, done=5, finished=True))
    assert len(shown) == 1 and "5/5" in shown[0]["text/plain"]


def test_html_fallback_updates_one_output(monkeypatch: pytest.MonkeyPatch) -> None:
    class Handle:
        def __init__(self) -> None:
            self.updates = 0

        def update(self, *a: Any, **k: Any) -> None:
            self.updates += 1

    handle = Handle()
    calls: list[Any] = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: calls.append(kw) or handle)
    view = HtmlView()
    view.update(ProgressState(total=2))
    view.close(ProgressState(total=2, done=2, finished=True))
    assert len(calls) == 1 and calls[0]["display_id"] is True and handle.updates == 1


def test_batch_summary_escapes_and_stays_short() -> None:
    traces = [trace(answer="<script>x</script>\n" * 50)] + [trace("error")] + [trace() for _ in range(10)]
    summary = BatchSummary(traces, head=3)
    bundle = summary._repr_mimebundle_()
    assert "<script>" not in bundle["text/html"] and "&lt;script&gt;" in bundle["text/html"]
    assert "12 rows: 11 complete, 1 error" in bundle["text/plain"]
    assert "9 more" in bundle["text/plain"] and len(bundle["text/plain"].splitlines()) == 5


def test_magic_in_a_kernel_without_a_live_frontend_shows_no_progress_updates(fake_env, shell, monkeypatch) -> None:
    from IPython.utils.capture import capture_output

    class Kernel:
        _allow_stdin = False

    monkeypatch.setenv("DASHMAGIC_LIVE", "0")
    shell.kernel = Kernel()
    try:
        shell.user_ns["dm_rows"] = [{"t": str(i)} for i in range(6)]
        with capture_output() as cap:
            result = shell.run_cell("%%dashscope --over dm_rows\nrow {{ row.t }}")
    finally:
        del shell.kernel
    assert result.error_in_exec is None
    texts = [o.data["text/plain"] for o in cap.outputs]
    assert len(texts) == 2  # the final progress summary and the batch table: nothing per row
    assert "6/6" in texts[0] and "6 rows: 6 complete" in texts[1]
