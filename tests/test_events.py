"""Payloads → Trace: both choice shapes, snapshots vs deltas, markers, bad JSON, errors."""

from __future__ import annotations

import json

import pytest

from dashmagic.errors import AuthenticationError, ProtocolError
from dashmagic.events import TraceBuilder, decode_payload, error_from_payload
from dashmagic.protocol.plugin_header import split_assistant
from dashmagic.plugins import GenericView
from dashmagic.trace import Answer, PluginCall, PluginResult, RequestInfo, Thought

INFO = RequestInfo(model="qwen-plus", plugins=("calculator",))


def call_msg(args: str = '{"payload__input__text": "1+2"}', name: str = "calculator", content: str = "Thought: use it") -> dict:
    return {"role": "assistant", "content": content, "plugin_call": {"name": name, "arguments": args}}


def plugin_msg(content: str = '{"equations": ["1 + 2"], "results": [3]}', name: str = "calculator") -> dict:
    return {"role": "plugin", "name": name, "content": content, "status": {"code": 200, "name": "Success", "message": "success"}}


def payload(messages: list[dict], finish: str = "null", **extra) -> dict:
    return {"output": {"choices": [{"finish_reason": finish, "messages": messages}]}, "request_id": "r1", **extra}


def test_split_assistant_forms() -> None:
    assert split_assistant("Thought: a\nFinal Answer: **b**", has_call=False) == [Thought("a"), Answer("**b**")]
    assert split_assistant("Thought: call it", has_call=True) == [Thought("call it")]
    assert split_assistant("plain answer", has_call=False) == [Answer("plain answer")]
    assert split_assistant("no marker but a call", has_call=True) == [Thought("no marker but a call")]
    assert split_assistant("", has_call=True) == []
    # Mid-stream, a half-arrived marker at the start of a line is held back, not shown as text.
    assert split_assistant("Thought: done.\nFinal Ans", has_call=False, final=False) == [Thought("done.")]
    assert split_assistant("Thou", has_call=False, final=False) == []
    # ...but text that merely ends like a marker's beginning is text, streaming or not (real
    # replies carry no markers at all), and a complete reply never loses anything.
    assert split_assistant("It is 86°F", has_call=False, final=False) == [Answer("It is 86°F")]
    assert split_assistant("It is 86°F", has_call=False) == [Answer("It is 86°F")]
    assert split_assistant("Thought: done.\nFinal Ans", has_call=False) == [Thought("done.\nFinal Ans")]


def test_snapshots_replace_not_append() -> None:
    builder = TraceBuilder(INFO)
    first = builder.feed(payload([call_msg()]))
    assert [s.kind for s in first.steps] == ["thought", "plugin_call"]
    assert first.status == "partial"
    second = builder.feed(payload([call_msg(), plugin_msg(), {"role": "assistant", "content": "Thought: ok\nFinal Answer: 3"}], "stop",
                                  usage={"input_tokens": 8, "output_tokens": 5, "total_tokens": 13, "plugins": {"calculator": {"count": 1}}}))
    assert [s.kind for s in second.steps] == ["thought", "plugin_call", "plugin_result", "thought", "answer"]
    assert second.status == "complete" and second.finish_reason == "stop"
    assert second.usage.plugins == {"calculator": 1} and second.usage.total_tokens == 13
    assert second.answer == "3" and second.events == 2
    # Snapshots are immutable and independent.
    assert first.steps != second.steps
    with pytest.raises(AttributeError):
        second.status = "x"  # type: ignore[misc]


def test_incremental_deltas_are_merged() -> None:
    builder = TraceBuilder(INFO)
    builder.feed(payload([call_msg()]), incremental=True)
    builder.feed(payload([plugin_msg()]), incremental=True)
    builder.feed(payload([{"role": "assistant", "content": "Thought: ok\nFinal "}]), incremental=True)
    trace = builder.feed(payload([{"role": "assistant", "content": "Answer: 3"}], "stop"), incremental=True)
    assert trace.answer == "3"
    assert [s.kind for s in trace.steps] == ["thought", "plugin_call", "plugin_result", "thought", "answer"]


def test_single_message_choice_is_the_answer() -> None:
    builder = TraceBuilder(RequestInfo(model="qwen-plus", plugins=("pdf_extracter",), files=("https://x/y.pdf",)))
    trace = builder.feed({"output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": "摘要"}}]}})
    assert trace.steps == (Answer("摘要"),)


def test_hotel_display_name_maps_to_header_key() -> None:
    info = RequestInfo(model="qwen-plus", plugins=("haozhu_recommend_hotel",))
    hotels = json.dumps([{"name": "A", "snippet": "s", "url": "checkIn=1"}])
    trace = TraceBuilder(info).feed(payload([call_msg('{"cityNames": "三亚"}', "酒店推荐插件"), plugin_msg(hotels, "酒店推荐插件")]))
    call, result = trace.plugin_calls[0], trace.plugin_results[0]
    assert (call.plugin, call.name) == ("haozhu_recommend_hotel", "酒店推荐插件")
    assert call.view.city_names == "三亚"
    assert result.view.hotels[0].name == "A" and result.view.hotels[0].query == "checkIn=1"


def test_malformed_json_keeps_raw_text_and_flags_it() -> None:
    trace = TraceBuilder(INFO).feed(payload([call_msg('{"payload__input__text": '), plugin_msg("not json at all")]))
    call, result = trace.plugin_calls[0], trace.plugin_results[0]
    assert call.arguments is None and call.arguments_error and call.arguments_raw == '{"payload__input__text": '
    assert result.content is None and result.content_error and result.content_raw == "not json at all"


def test_unknown_plugin_falls_back_to_generic_view() -> None:
    info = RequestInfo(model="qwen-plus", plugins=("weather", "calculator"))
    trace = TraceBuilder(info).feed(payload([call_msg('{"city": "杭州"}', "weather"), plugin_msg('{"temp": [21]}', "weather")]))
    assert isinstance(trace.plugin_calls[0].view, GenericView)
    assert trace.plugin_results[0].view.value["temp"] == (21,)


def test_plugin_status_error_is_kept() -> None:
    msg = {**plugin_msg(), "status": {"code": 500, "name": "Failed", "message": "timeout"}}
    result = TraceBuilder(INFO).feed(payload([call_msg(), msg])).plugin_results[0]
    assert not result.ok and result.status.message == "timeout"


def test_error_payload_and_missing_output() -> None:
    with pytest.raises(AuthenticationError):
        TraceBuilder(INFO).feed({"code": "InvalidApiKey", "message": "Invalid API-key provided.", "request_id": "x"})
    with pytest.raises(ProtocolError):
        TraceBuilder(INFO).feed({"foo": 1})
    err = error_from_payload({"code": "Throttling.RateQuota", "msg": "slow down", "message": "ignored", "request_id": "q"}, 429)
    assert (err.status_code, err.code, err.request_id, err.service_message) == (429, "Throttling.RateQuota", "q", "slow down")
    assert "request id q" in str(err)


def test_decode_payload_rejects_non_objects() -> None:
    with pytest.raises(ProtocolError, match="not valid JSON"):
        decode_payload('{"output": [not json')
    with pytest.raises(ProtocolError, match="not an object"):
        decode_payload("[1]")


def test_unchanged_messages_are_not_reparsed() -> None:
    builder = TraceBuilder(INFO)
    first = builder.feed(payload([call_msg(), plugin_msg(), {"role": "assistant", "content": "Thought: a"}]))
    second = builder.feed(payload([call_msg(), plugin_msg(), {"role": "assistant", "content": "Thought: ab"}]))
    # The same step objects are reused for messages whose content did not change.
    assert first.steps[1] is second.steps[1] and first.steps[2] is second.steps[2]


def test_fail_and_interrupt_keep_steps() -> None:
    builder = TraceBuilder(INFO)
    builder.feed(payload([call_msg()]))
    failed = builder.fail(ProtocolError("bad"))
    assert failed.status == "error" and failed.error.type == "ProtocolError" and len(failed.steps) == 2
    assert builder.interrupt().status == "interrupted"
