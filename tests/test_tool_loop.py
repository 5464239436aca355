"""The tool loop on real loopback sockets: approval, refusals, errors, limits, replay, widgets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import dashmagic
from dashmagic.render.html import render_html
from dashmagic.tool_loop import DECLINED, RESULT_LIMIT, serialise
from dashmagic.trace import ToolRun

WEATHER = "What's the weather like in Hangzhou and Beijing?"
ran: list[str] = []


def get_current_weather(location: str) -> dict[str, Any]:
    """The current weather in a city.

    Args:
        location: The city.
    """
    ran.append(location)
    return {"location": location, "temp_c": 21}


def broken_weather(location: str) -> str:
    """Always raises."""
    raise KeyError(f"no station for {location}\nsecond line")


@pytest.fixture(autouse=True)
def _reset() -> None:
    ran.clear()


def _kw(fake: Any, **more: Any) -> dict[str, Any]:
    return {"api_key": fake.api_key, "base_url": fake.base_url, **more}


def _tool_messages(fake: Any) -> list[dict[str, Any]]:
    body = json.loads(fake.generation_requests[-1].body)
    return [m for m in body["input"]["messages"] if m.get("role") == "tool"]


def _reply_calling(name: str, arguments: str, ident: str = "call_1") -> dict[str, Any]:
    call = {"id": ident, "type": "function", "index": 0, "function": {"name": name, "arguments": arguments}}
    message = {"role": "assistant", "content": "", "tool_calls": [call]}
    return {"output": {"choices": [{"finish_reason": "tool_calls", "message": message}]},
            "usage": {"input_tokens": 5, "output_tokens": 5, "total_tokens": 10}}


def test_approved_up_front_the_loop_runs_every_round(fake_dashscope: Any) -> None:
    trace = dashmagic.run(WEATHER, tools=[get_current_weather], approve="all", **_kw(fake_dashscope))
    assert ran == ["Hangzhou", "Beijing"] and trace.ok
    assert "Hangzhou" in (trace.answer or "") and "21" in (trace.answer or "")
    runs = trace.tool_runs
    assert [r.approval for r in runs] == ["automatic", "automatic"] and [r.round for r in runs] == [1, 2]
    assert len(trace.rounds) == 3 and trace.usage.total_tokens == sum(r.usage.total_tokens or 0 for r in trace.rounds)
    assert all(r.duration is not None for r in runs)
    # history carries the whole exchange: assistant tool_calls, tool messages, the answer
    roles = [m["role"] for m in trace.turn()]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    again = dashmagic.run("What is 1+1?", history=trace.turn(), **_kw(fake_dashscope))
    assert again.ok


def test_parallel_calls_run_concurrently_and_stream(fake_dashscope: Any) -> None:
    snapshots = list(dashmagic.stream(WEATHER, tools=[get_current_weather], approve=["get_current_weather"],
                                      tool_concurrency=2, parameters={"parallel_tool_calls": True},
                                      **_kw(fake_dashscope)))
    final = snapshots[-1]
    assert sorted(ran) == ["Beijing", "Hangzhou"] and final.ok and len(final.rounds) == 2
    ids = {m["tool_call_id"] for m in _tool_messages(fake_dashscope)}
    assert ids == {r.call_id for r in final.tool_runs} and len(ids) == 2
    assert len(snapshots) > 4 and any(s.status == "partial" for s in snapshots)


def test_without_approval_nothing_runs_and_nothing_hangs(fake_dashscope: Any) -> None:
    trace = dashmagic.run(WEATHER, tools=[get_current_weather], **_kw(fake_dashscope))
    assert ran == [] and len(fake_dashscope.generation_requests) == 1
    assert trace.tool_runs[0].approval == "needed" and "--approve get_current_weather" in " ".join(trace.notes)


def test_a_rejected_call_is_sent_back_as_declined(fake_dashscope: Any) -> None:
    trace = dashmagic.run("杭州现在的天气如何？", tools=[get_current_weather], approve=lambda run: False,
                          **_kw(fake_dashscope))
    assert ran == [] and trace.tool_runs[0].approval == "rejected"
    assert _tool_messages(fake_dashscope)[0]["content"] == DECLINED and trace.ok


def test_a_tool_that_raises_goes_back_to_the_model_in_one_line(fake_dashscope: Any) -> None:
    trace = dashmagic.run("杭州现在的天气如何？", tools=[_renamed(broken_weather, "weather_now")], approve="all",
                          **_kw(fake_dashscope))
    run = trace.tool_runs[0]
    assert run.status == "error" and run.error is not None and run.error.startswith("KeyError:")
    assert "\n" not in run.error
    sent = _tool_messages(fake_dashscope)[0]["content"]
    assert sent.startswith("Error: KeyError") and trace.ok and "KeyError" in (trace.answer or "")


def _renamed(fn: Any, name: str) -> Any:
    def wrapper(location: str) -> Any:
        return fn(location)

    wrapper.__name__ = wrapper.__qualname__ = name
    wrapper.__doc__ = fn.__doc__
    return wrapper


@pytest.mark.parametrize("name, arguments, why", [
    ("rm_rf", '{"location": "x"}', "not offered"),
    ("get_current_weather", "{not json", "not valid JSON"),
    ("get_current_weather", '{"location": 5}', "location"),
    ("get_current_weather", '{"location": "x", "cmd": "rm"}', "cmd"),
    ("get_current_weather", '{"location": "' + "x" * 200_000 + '"}', "more than"),
    ("get_current_weather", "[" * 20_000 + "]" * 20_000, "JSON"),
])
def test_hostile_calls_are_reported_never_run(fake_dashscope: Any, name: str, arguments: str, why: str) -> None:
    fake_dashscope.queue_reply(_reply_calling(name, arguments))
    trace = dashmagic.run("Use the tool.", tools=[get_current_weather], approve="all", **_kw(fake_dashscope))
    assert ran == []
    run = trace.tool_runs[0]
    assert run.status == "invalid" and run.approval == "none" and why in (run.error or "")
    sent = _tool_messages(fake_dashscope)[0]
    assert sent["content"].startswith("Invalid call:") and sent["tool_call_id"] == "call_1"
    assert len(sent["content"]) < 500


def test_the_round_limit_ends_with_a_note(fake_dashscope: Any) -> None:
    for i in range(3):
        fake_dashscope.queue_reply(_reply_calling("get_current_weather", '{"location": "x"}', f"call_{i}"))
    trace = dashmagic.run("Use the tool.", tools=[get_current_weather], approve="all", max_rounds=2,
                          **_kw(fake_dashscope))
    assert ran == ["x"] and trace.ok and len(trace.rounds) == 2
    assert any("Stopped after 2 round(s)" in n for n in trace.notes)


def test_results_are_serialised_and_capped() -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"region": ["north", "south"], "drop": [0.3, 0.1]})
    text, kind, _ = serialise(frame)
    assert kind == "DataFrame" and "north" in text and "drop" in text
    assert serialise("plain")[0] == "plain" and serialise({"a": [1]})[0] == '{"a": [1]}'
    assert serialise(object())[0].startswith("<object object")
    text, _, note = serialise("x" * (RESULT_LIMIT + 10))
    assert len(text) < RESULT_LIMIT + 100 and "cut" in note


def test_a_tools_html_is_shown_escaped_and_the_key_never_appears() -> None:
    from dashmagic.testing import FakeDashScope

    with FakeDashScope(api_key="sk-tool-loop-secret-0123456789") as fake:
        _check_escaped_and_scrubbed(fake)


def _check_escaped_and_scrubbed(fake_dashscope: Any) -> None:
    def weather_leak(location: str) -> str:
        """Returns HTML, Markdown and the key."""
        return f"<img src=x onerror=alert(1)> **bold** {fake_dashscope.api_key}"

    trace = dashmagic.run("杭州现在的天气如何？", tools=[weather_leak], approve="all", **_kw(fake_dashscope))
    html = render_html(trace)
    assert "<img src=x" not in html and "&lt;img src=x" in html
    everything = html + str(trace) + repr(trace) + json.dumps(trace.history(), ensure_ascii=False)
    assert fake_dashscope.api_key not in everything
    assert all(fake_dashscope.api_key not in r.body.decode() for r in fake_dashscope.generation_requests)


def test_record_then_replay_runs_nothing(fake_dashscope: Any, tmp_path: Path) -> None:
    path = tmp_path / "loop.jsonl"
    recorded = dashmagic.run(WEATHER, tools=[get_current_weather], approve="all", mode="record", recordings=str(path),
                             **_kw(fake_dashscope))
    assert ran == ["Hangzhou", "Beijing"]
    ran.clear()
    replayed = dashmagic.run(WEATHER, tools=[get_current_weather], approve="all", mode="replay", recordings=str(path))
    assert ran == [] and replayed.ok and replayed.answer == recorded.answer
    assert [r.status for r in replayed.tool_runs] == ["replayed", "replayed"]


def test_the_same_call_approved_then_declined_replays_each_as_recorded(fake_dashscope: Any, tmp_path: Path) -> None:
    """The fake's call ids are deterministic, so one recording holds the same call id twice, with
    two results: each replayed conversation must get its own, not the last one written."""
    path = tmp_path / "loop.jsonl"
    for approve in ("all", lambda run: False):
        dashmagic.run("杭州现在的天气如何？", tools=[get_current_weather], approve=approve, mode="record",
                      recordings=str(path), **_kw(fake_dashscope))
    ran.clear()
    approved, declined = (
        dashmagic.run("杭州现在的天气如何？", tools=[get_current_weather], approve=approve, mode="replay",
                      recordings=str(path))
        for approve in ("all", lambda run: False)
    )
    assert ran == [] and approved.ok and declined.ok
    assert approved.tool_runs[0].status == "replayed" and "21" in (approved.tool_runs[0].result or "")
    assert declined.tool_runs[0].status == "declined"
    assert approved.tool_runs[0].call_id == declined.tool_runs[0].call_id


def test_a_changed_result_on_a_recorded_rerun_is_noted(fake_dashscope: Any, tmp_path: Path) -> None:
    path = tmp_path / "loop.jsonl"
    dashmagic.run("杭州现在的天气如何？", tools=[get_current_weather], approve="all", mode="record",
                  recordings=str(path), **_kw(fake_dashscope))

    def get_weather_changed(location: str) -> str:
        return "snow"

    get_weather_changed.__name__ = "get_current_weather"
    again = dashmagic.run("杭州现在的天气如何？", tools=[get_weather_changed], approve="all", mode="record",
                          recordings=str(path), **_kw(fake_dashscope))
    assert "different from the recording" in again.tool_runs[0].note
    assert "different from the recording" in render_html(again)


def test_loop_options_without_functions_are_refused() -> None:
    with pytest.raises(dashmagic.ConfigError, match="only matter"):
        dashmagic.run("hi", approve="all", mode="replay")


def test_deferred_approval_continues_from_decide(fake_dashscope: Any) -> None:
    """What the buttons do, without the buttons: the loop stops pending, then resumes."""
    with dashmagic.Client(**_kw(fake_dashscope)) as client:
        loop = client.tool_loop("杭州现在的天气如何？", tools=[get_current_weather], defer=True, ask=lambda run: None)
        first = list(loop.run())[-1]
        assert first.status == "partial" and [r.approval for r in loop.pending] == ["pending"] and ran == []
        loop.decide(loop.pending[0].call_id, True)
        final = list(loop.resume())[-1]
    assert ran == ["浙江省杭州市"] and final.ok and final.tool_runs[0].approval == "approved"


def test_the_widget_buttons_approve_and_reject(fake_dashscope: Any) -> None:
    pytest.importorskip("ipywidgets", reason="approval needed: rerun with --approve … (ipywidgets is not installed)")
    from dashmagic.tool_approval import approval_controls

    for approved in (True, False):
        ran.clear()
        shown: list[Any] = []
        finished: list[Any] = []
        with dashmagic.Client(**_kw(fake_dashscope)) as client:
            loop = client.tool_loop("杭州现在的天气如何？", tools=[get_current_weather], defer=True, ask=lambda run: None)
            list(loop.run())
            box = approval_controls(loop, shown.append, lambda t, e: finished.append(t))
            button = box.children[0].children[1 if approved else 2]
            button.click()
        assert finished and finished[-1].ok and (ran == ["浙江省杭州市"]) is approved
        assert finished[-1].tool_runs[0].approval == ("approved" if approved else "rejected")


def test_a_later_round_waiting_again_reaches_the_screen(fake_dashscope: Any) -> None:
    """Round 2 asks again: the snapshot the loop stops at goes to ``pause`` (the magic's unthrottled
    close), else a throttled display kept the first round's "not run yet" until the next click."""
    pytest.importorskip("ipywidgets", reason="the buttons need ipywidgets")
    from dashmagic.tool_approval import approval_controls

    paused: list[Any] = []
    finished: list[Any] = []
    with dashmagic.Client(**_kw(fake_dashscope)) as client:
        loop = client.tool_loop(WEATHER, tools=[get_current_weather], defer=True, ask=lambda run: None)
        list(loop.run())
        box = approval_controls(loop, lambda t: None, lambda t, e: finished.append(t), pause=paused.append)
        box.children[0].children[1].click()
        assert ran == ["Hangzhou"] and len(paused) == 1
        first, second = paused[0].tool_runs
        assert first.status == "ok" and second.approval == "pending" and loop.pending
        assert "Beijing" in box.children[0].children[0].value  # the new row asks about round 2
        assert any("Waiting for your approval" in n for n in paused[0].notes)
        box.children[0].children[1].click()
    assert ran == ["Hangzhou", "Beijing"] and finished and finished[-1].ok
    # The note was for the waiting snapshots: the finished trace does not say it still waits.
    assert not any("Waiting for your approval" in n for n in finished[-1].notes), finished[-1].notes


def test_without_widgets_the_magic_degrades_to_approve_up_front(shell: Any, fake_env: Any) -> None:
    from IPython.utils.capture import capture_output

    shell.user_ns["get_current_weather"] = get_current_weather
    with capture_output() as cap:
        shell.run_cell_magic("dashscope", "--tools get_current_weather --out t", "杭州现在的天气如何？")
    assert ran == [] and "--approve get_current_weather" in cap.outputs[-1].data["text/plain"]
    with capture_output():
        shell.run_cell_magic("dashscope", "--tools get_current_weather --approve all --out t --chat", "杭州现在的天气如何？")
    trace = shell.user_ns["t"]
    assert ran == ["浙江省杭州市"] and trace.ok and isinstance(trace.tool_runs[0], ToolRun)
