"""The optional controls under a trace: callbacks in a real shell, and nothing breaks without ipywidgets."""

from __future__ import annotations

import builtins
import importlib.util

import pytest
from IPython.utils.capture import capture_output

from dashmagic.trace import CodeExecution, RequestInfo, Trace
from dashmagic.widgets import NEW_CELL_NOTE, TraceControls, trace_controls, widgets_available

from _code_reply import code_reply

HAVE_WIDGETS = importlib.util.find_spec("ipywidgets") is not None
TRACE = Trace(RequestInfo("m"), steps=(CodeExecution("print('hi')\n6 * 7"),), status="complete")


class FakeKernel:
    _allow_stdin = False


@pytest.fixture
def kernel_shell(shell, monkeypatch):  # type: ignore[no-untyped-def]
    shell.kernel = FakeKernel()
    calls: list[tuple[str, bool]] = []
    monkeypatch.setattr(shell, "set_next_input", lambda text, replace=False: calls.append((text, replace)))
    shell.next_inputs = calls
    magics = shell.magics_manager.registry["DashScopeMagics"]
    magics.live_updates = False  # one output for the trace, so the controls' output is countable
    yield shell
    magics.widgets = magics.live_updates = None
    del shell.kernel, shell.next_inputs


def _no_ipywidgets(monkeypatch: pytest.MonkeyPatch) -> None:
    real = builtins.__import__

    def fail(name: str, *args: object, **kwargs: object) -> object:
        if name.split(".")[0] == "ipywidgets":
            raise ImportError("No module named 'ipywidgets' (test)")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fail)


def test_the_controls_effects_without_any_frontend(kernel_shell) -> None:
    runs: list[Trace] = []
    controls = TraceControls(TRACE, kernel_shell, run_locally=lambda t: runs.append(t) or t.run_locally(mode="live"))
    assert controls.code == "print('hi')\n6 * 7\n" and controls.warning is None
    assert controls.new_cell() == NEW_CELL_NOTE and kernel_shell.next_inputs == [(controls.code, False)]
    done = controls.run()
    assert runs == [TRACE] and done.local_runs[-1].value == "42" and controls.trace is done


def test_without_ipywidgets_nothing_breaks(kernel_shell, fake_env, monkeypatch) -> None:
    _no_ipywidgets(monkeypatch)
    assert not widgets_available()
    assert trace_controls(TRACE, kernel_shell, run_locally=lambda t: t) is None
    kernel_shell.magics_manager.registry["DashScopeMagics"].widgets = True
    fake_env.queue_reply(code_reply("x = 1"))
    with capture_output() as cap:
        result = kernel_shell.run_cell("%%dashscope --plugins code_interpreter --no-stream\nrun it")
    assert result.error_in_exec is None and len(cap.outputs) == 1  # the trace, and only it


def test_no_controls_under_nbval_nbconvert_or_a_terminal(shell, kernel_shell, fake_env, monkeypatch) -> None:
    magics = shell.magics_manager.registry["DashScopeMagics"]
    magics.live_updates = None
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert not magics._widgets_wanted()  # nbclient/nbconvert: a kernel, but no Jupyter server
    monkeypatch.setenv("JPY_SESSION_NAME", "lesson.ipynb")
    monkeypatch.setenv("DASHMAGIC_LIVE", "0")
    assert not magics._widgets_wanted()  # nbval runs with live updates off
    monkeypatch.delenv("DASHMAGIC_LIVE")
    assert magics._widgets_wanted()
    magics.widgets = False
    assert not magics._widgets_wanted()
    magics.widgets = None
    del shell.kernel
    magics.widgets = True
    assert not magics._widgets_wanted()  # a terminal has no kernel: never, even when asked
    shell.kernel = FakeKernel()


@pytest.mark.skipif(not HAVE_WIDGETS, reason="ipywidgets not installed (pip install dashmagic[widgets])")
def test_buttons_work_after_the_cell_finished(kernel_shell, fake_env) -> None:
    magics = kernel_shell.magics_manager.registry["DashScopeMagics"]
    magics.widgets = True
    fake_env.queue_reply(code_reply("print('hi')\n6 * 7"))
    with capture_output() as cap:
        kernel_shell.run_cell("%%dashscope --plugins code_interpreter --no-stream\nrun it")
    box = magics.last_controls
    assert box is not None and len(cap.outputs) == 2  # trace first, controls as a separate output
    assert "Ran here" not in cap.outputs[0].data["text/plain"]
    (show, cell, run), status, code, output = box.children[0].children, *box.children[1:]
    show.click()
    assert code.layout.display is None and code.value == "print('hi')\n6 * 7\n"
    cell.click()
    assert kernel_shell.next_inputs == [(code.value, False)] and "next cell you run" in status.value
    run.click()
    (shown,) = output.outputs
    assert "Ran here, not on DashScope" in shown["data"]["text/plain"] and box.controls.trace.local_runs[-1].value == "42"


@pytest.mark.skipif(not HAVE_WIDGETS, reason="ipywidgets not installed (pip install dashmagic[widgets])")
def test_status_text_is_escaped(kernel_shell) -> None:
    trace = Trace(RequestInfo("m"), steps=(CodeExecution("x = '<img src=x onerror=alert(1)>\u202e'"),))
    box = trace_controls(trace, kernel_shell, run_locally=lambda t: t)
    status = box.children[1]
    assert "U+202E" in status.value and "<img" not in status.value
