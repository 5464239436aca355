"""The official ``dashscope`` SDK against the fake: if the SDK is happy, the fake speaks DashScope.

Each seed exchange is replayed through ``dashscope.Generation.call`` exactly as the vendor page
calls it, non-streaming and with ``stream=True``; then the error paths. Some tests pin SDK
behaviour that a client author should know about (marked "SDK quirk").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from dashmagic.testing import PLOT_OSS_PATH, Exchange, FakeDashScope, load_exchanges, sse_events

dashscope = pytest.importorskip("dashscope")

EXCHANGES = {e.name: e for e in load_exchanges()}


@pytest.fixture
def fake() -> Iterator[FakeDashScope]:
    """A fake answering with the documented JSON, with the SDK pointed at it (restored after)."""
    with FakeDashScope(api_key="sk-test", rewrite_figure_urls=False) as server, _sdk_base(server):
        yield server


class _sdk_base:
    """Point ``dashscope.base_http_api_url`` at a fake for the duration of a block."""

    def __init__(self, server: FakeDashScope) -> None:
        self.server = server

    def __enter__(self) -> None:
        self.saved = dashscope.base_http_api_url
        dashscope.base_http_api_url = self.server.base_url

    def __exit__(self, *exc_info: object) -> None:
        dashscope.base_http_api_url = self.saved


def call(fake: FakeDashScope, exchange: Exchange, **kwargs: Any) -> Any:
    """The vendor page's SDK sample, plus the seed the curl body carries."""
    options: dict[str, Any] = {"api_key": fake.api_key, "seed": 42, **kwargs}
    return dashscope.Generation.call(
        model="qwen-plus",
        messages=exchange.request["input"]["messages"],
        result_format="message",
        plugins=exchange.plugins,
        **options,
    )


def documented_choice(exchange: Exchange) -> dict[str, Any]:
    choice: dict[str, Any] = exchange.response["output"]["choices"][0]
    return choice


def assert_usage(usage: Any, exchange: Exchange) -> None:
    expected = exchange.response["usage"]
    assert usage.input_tokens == expected["input_tokens"]
    assert usage.output_tokens == expected["output_tokens"]
    assert usage["total_tokens"] == expected["total_tokens"]


def assert_choice(choice: Any, exchange: Exchange) -> None:
    documented = documented_choice(exchange)
    assert choice.finish_reason == documented["finish_reason"]
    if "messages" in documented:
        # The SDK keeps `messages` as the raw list of dicts and sets `message` to None.
        assert choice["messages"] == documented["messages"]
        assert choice.message is None
    else:
        assert choice.message.role == "assistant"
        assert choice.message.content == documented["message"]["content"]


@pytest.mark.parametrize("name", list(EXCHANGES))
def test_sdk_non_streaming(fake: FakeDashScope, name: str) -> None:
    exchange = EXCHANGES[name]
    response = call(fake, exchange)
    assert response.status_code == 200
    assert response.code == "" and response.message == ""
    assert response.request_id == exchange.response["request_id"]
    assert_choice(response.output.choices[0], exchange)
    assert_usage(response.usage, exchange)

    (sent,) = fake.generation_requests
    assert sent.plugins == exchange.plugins
    assert sent.header("X-DashScope-Plugin") == json.dumps(exchange.plugins)  # json.dumps, default separators
    assert sent.header("X-DashScope-SSE") is None
    assert sent.header("Authorization") == "Bearer sk-test"
    assert sent.json["input"] == exchange.request["input"]
    assert sent.json["parameters"] == exchange.request["parameters"]
    # 2.0.2 sends raw UTF-8, not ASCII escapes.
    assert exchange.prompt.encode("utf-8") in sent.body


@pytest.mark.parametrize("name", list(EXCHANGES))
def test_sdk_streaming(fake: FakeDashScope, name: str) -> None:
    exchange = EXCHANGES[name]
    items = list(call(fake, exchange, stream=True))
    expected_events = sse_events(exchange.response, chunk_chars=fake.chunk_chars)
    assert len(items) == len(expected_events)  # one SDK item per event, no merging
    assert {i.status_code for i in items} == {200}
    assert {i.request_id for i in items} == {exchange.response["request_id"]}
    assert [i.output.choices[0].finish_reason for i in items] == ["null"] * (len(items) - 1) + ["stop"]
    assert_choice(items[-1].output.choices[0], exchange)
    assert_usage(items[-1].usage, exchange)

    (sent,) = fake.generation_requests
    assert sent.header("X-DashScope-SSE") == "enable"
    assert sent.header("Accept") == "text/event-stream"
    assert sent.plugins == exchange.plugins
    assert "stream" not in sent.json["parameters"]  # streaming is a header, never a body field
    assert "incremental_output" not in sent.json["parameters"]
    assert (sent.header("user-agent") or "").endswith("incremental_to_full/0")


def test_sdk_streaming_snapshots_grow(fake: FakeDashScope) -> None:
    exchange = EXCHANGES["calculator"]
    documented = documented_choice(exchange)["messages"]
    snapshots = [i.output.choices[0]["messages"] for i in call(fake, exchange, stream=True)]
    assert snapshots[0] == documented[:1]
    assert snapshots[1] == documented[:2]
    answers = [s[2]["content"] for s in snapshots[2:]]
    assert all(documented[2]["content"].startswith(a) for a in answers) and answers[-1] == documented[2]["content"]


def test_sdk_quirk_incremental_output_false_is_rewritten_and_messages_are_not_merged(fake: FakeDashScope) -> None:
    """stream=True + incremental_output=False: 2.0.2 asks for deltas and merges only `message`.

    The request carries incremental_output=true and UA ``incremental_to_full/1``; the fake then
    sends deltas. The SDK's merger re-accumulates ``message``/``text`` only: plugin ``messages``
    reach the caller as raw one-message deltas, and every choice gains a synthetic empty
    ``message`` (protocol.md §4.3).
    """
    exchange = EXCHANGES["calculator"]
    documented = documented_choice(exchange)["messages"]
    items = list(call(fake, exchange, stream=True, incremental_output=False))
    (sent,) = fake.generation_requests
    assert sent.json["parameters"]["incremental_output"] is True
    assert (sent.header("user-agent") or "").endswith("incremental_to_full/1")
    choices = [i.output.choices[0] for i in items]
    assert all(len(c["messages"]) == 1 for c in choices)  # deltas, not snapshots
    assert "".join(c["messages"][0]["content"] for c in choices[2:]) == documented[2]["content"]
    assert all(c.message == {"role": "assistant", "content": ""} for c in choices)


def test_sdk_incremental_output_merge_works_for_a_single_message(fake: FakeDashScope) -> None:
    exchange = EXCHANGES["pdf_extracter"]
    items = list(call(fake, exchange, stream=True, incremental_output=False))
    contents = [i.output.choices[0].message.content for i in items]
    assert contents[-1] == documented_choice(exchange)["message"]["content"]
    assert all(contents[-1].startswith(c) for c in contents)  # re-accumulated by the SDK


def test_sdk_incremental_output_true_passes_through(fake: FakeDashScope) -> None:
    exchange = EXCHANGES["pdf_extracter"]
    items = list(call(fake, exchange, stream=True, incremental_output=True))
    (sent,) = fake.generation_requests
    assert sent.json["parameters"]["incremental_output"] is True
    assert (sent.header("user-agent") or "").endswith("incremental_to_full/0")
    text = "".join(i.output.choices[0].message.content for i in items)
    assert text == documented_choice(exchange)["message"]["content"]


def test_sdk_sees_rewritten_figure_url() -> None:
    with FakeDashScope(api_key="sk-test") as server, _sdk_base(server):
        response = call(server, EXCHANGES["code_interpreter_plot"])
        content = response.output.choices[0]["messages"][1]["content"]
        assert content.startswith(f"![fig-001]({server.origin}{PLOT_OSS_PATH}?OSSAccessKeyId=")


# -- error paths ---------------------------------------------------------------------------------


def test_sdk_wrong_key(fake: FakeDashScope) -> None:
    response = call(fake, EXCHANGES["calculator"], api_key="sk-wrong")
    assert response.status_code == 401
    assert response.code == "InvalidApiKey" and response.message == "Invalid API-key provided."
    assert response.request_id and response.output is None


@pytest.mark.parametrize("stream", [False, True])
def test_sdk_throttle(fake: FakeDashScope, stream: bool) -> None:
    fake.inject("throttle")
    result = call(fake, EXCHANGES["calculator"], stream=stream)
    (response,) = list(result) if stream else [result]
    assert response.status_code == 429 and response.code == "Throttling.RateQuota"


def test_sdk_unknown_plugin(fake: FakeDashScope) -> None:
    exchange = EXCHANGES["calculator"]
    response = dashscope.Generation.call(
        model="qwen-plus",
        messages=exchange.request["input"]["messages"],
        result_format="message",
        plugins={"quark_search": {}},
        api_key=fake.api_key,
    )
    assert response.status_code == 403 and response.code == "InvalidPlugin.AccessDenied"
    assert response.message == 'Plugin ["quark_search"] access denied.'


def test_sdk_bad_gateway_html_becomes_code_unknown(fake: FakeDashScope) -> None:
    fake.inject("bad_gateway_html")
    response = call(fake, EXCHANGES["calculator"])
    assert response.status_code == 502 and response.code == "Unknown" and "502 Bad Gateway" in response.message


@pytest.mark.parametrize(("status_line", "sdk_status"), [(False, 400), (True, 500)])
def test_sdk_mid_stream_error_event(fake: FakeDashScope, status_line: bool, sdk_status: int) -> None:
    """SDK quirk: it ignores ``:HTTP_STATUS/500`` and reports 400 unless a ``status:`` line is sent."""
    fake.inject("error_event_mid", after_events=2, status_line=status_line)
    items = list(call(fake, EXCHANGES["calculator"], stream=True))
    assert [i.status_code for i in items[:-1]] == [200, 200]
    last = items[-1]
    assert last.code == "InternalError" and last.status_code == sdk_status and last.output is None


def test_sdk_error_event_first(fake: FakeDashScope) -> None:
    fake.inject("error_event_first")
    (item,) = list(call(fake, EXCHANGES["calculator"], stream=True))
    assert item.status_code == 400 and item.code == "DataInspectionFailed"


def test_sdk_quirk_retries_once_after_a_reset(fake: FakeDashScope) -> None:
    """2.0.2 retries a request once on a connection error raised before any response."""
    fake.inject("reset_before_response")
    response = call(fake, EXCHANGES["calculator"])
    assert response.status_code == 200 and len(fake.generation_requests) == 2
    fake.clear()
    fake.inject("reset_before_response", times=2)
    with pytest.raises(requests.ConnectionError):
        call(fake, EXCHANGES["calculator"])
    assert len(fake.generation_requests) == 2


def test_sdk_quirk_garbage_json_raises(fake: FakeDashScope) -> None:
    """A 200 with a non-JSON body is not mapped to an error response: the SDK raises."""
    fake.inject("garbage_json")
    with pytest.raises(ValueError):
        call(fake, EXCHANGES["calculator"])


def test_sdk_quirk_invalid_utf8_in_a_stream_raises(fake: FakeDashScope) -> None:
    fake.inject("invalid_utf8")
    with pytest.raises(UnicodeDecodeError):
        list(call(fake, EXCHANGES["calculator"], stream=True))


# -- today's generation: thinking, built-in tools, function calls, the multimodal endpoint ---------

CI_PROMPT = "What is 123 to the power of 21?"
WEATHER_PROMPT = "What's the weather like in Hangzhou and Beijing?"
SEARCH_PROMPT = "Who won the 2022 FIFA World Cup?"
WEATHER_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Current weather of a city",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
        },
    }
]


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def test_sdk_thinking_code_interpreter_stream(fake: FakeDashScope) -> None:
    items = list(
        dashscope.Generation.call(
            model="qwen3-max", messages=user(CI_PROMPT), api_key=fake.api_key, result_format="message",
            enable_thinking=True, enable_code_interpreter=True, stream=True, incremental_output=True,
        )
    )
    assert {i.status_code for i in items} == {200}
    reasoning = "".join(i.output.choices[0].message.reasoning_content for i in items)
    answer = "".join(i.output.choices[0].message.content for i in items)
    assert str(123**21) in reasoning and str(123**21) in answer
    assert items[-1].output.tool_info == [{"code_interpreter": {"code": "123**21"}, "type": "code_interpreter"}]
    assert items[-1].output.choices[0].finish_reason == "stop"
    usage = items[-1].usage
    assert usage["plugins"] == {"code_interpreter": {"count": 1}}
    assert usage["output_tokens_details"]["reasoning_tokens"] > 0 and usage["prompt_tokens_details"]["cached_tokens"] == 0
    (sent,) = fake.generation_requests
    assert sent.json["parameters"]["enable_code_interpreter"] is True and sent.header("X-DashScope-Plugin") is None


def test_sdk_merges_thinking_deltas_when_asked_for_full_output(fake: FakeDashScope) -> None:
    """stream + incremental_output=False: the SDK asks for deltas and re-accumulates them."""
    items = list(
        dashscope.Generation.call(
            model="qwen3-max", messages=user(CI_PROMPT), api_key=fake.api_key, result_format="message",
            enable_thinking=True, enable_code_interpreter=True, stream=True, incremental_output=False,
        )
    )
    final = items[-1].output.choices[0].message
    assert str(123**21) in final.content and final.reasoning_content.startswith("The user asks")


@pytest.mark.parametrize("stream", [False, True])
def test_sdk_search_with_sources_and_citations(fake: FakeDashScope, stream: bool) -> None:
    options = {"enable_source": True, "enable_citation": True, "citation_format": "[ref_<number>]"}
    result = dashscope.Generation.call(
        model="qwen-plus", messages=user(SEARCH_PROMPT), api_key=fake.api_key, result_format="message",
        enable_search=True, search_options=options, stream=stream, **({"incremental_output": True} if stream else {}),
    )
    items = list(result) if stream else [result]
    sources = items[0].output.search_info["search_results"]
    assert [s["index"] for s in sources] == [1, 2, 3, 4, 5] and sources[0]["url"].startswith("https://")
    assert all(i.output.search_info["search_results"] == [] for i in items[1:])
    answer = "".join(i.output.choices[0].message.content for i in items)
    assert "[ref_1]" in answer and "[ref_5]" in answer
    assert items[-1].usage["plugins"] == {"search": {"count": 1}}
    (sent,) = fake.generation_requests
    assert sent.json["parameters"]["enable_search"] is True and sent.json["parameters"]["search_options"] == options


def test_sdk_tool_calls_non_streamed_then_the_answer(fake: FakeDashScope) -> None:
    messages = user(WEATHER_PROMPT)
    first = dashscope.Generation.call(
        model="qwen-plus", messages=messages, api_key=fake.api_key, result_format="message",
        tools=WEATHER_TOOLS, parallel_tool_calls=True,
    )
    choice = first.output.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [{"location": "Hangzhou"}, {"location": "Beijing"}]
    assert [c["index"] for c in calls] == [0, 1] and all(c["id"].startswith("call_") for c in calls)
    results = ["22°C, rain", "9°C, sun"]
    messages += [dict(choice.message)] + [
        {"role": "tool", "content": r, "tool_call_id": c["id"]} for c, r in zip(calls, results)
    ]
    second = dashscope.Generation.call(
        model="qwen-plus", messages=messages, api_key=fake.api_key, result_format="message", tools=WEATHER_TOOLS,
    )
    assert second.output.choices[0].finish_reason == "stop"
    assert "Hangzhou: 22°C, rain" in second.output.choices[0].message.content


@pytest.mark.parametrize("incremental", [True, False])
def test_sdk_tool_calls_streamed(fake: FakeDashScope, incremental: bool) -> None:
    items = list(
        dashscope.Generation.call(
            model="qwen-plus", messages=user(WEATHER_PROMPT), api_key=fake.api_key, result_format="message",
            tools=WEATHER_TOOLS, parallel_tool_calls=True, stream=True, incremental_output=incremental,
        )
    )
    assert items[-1].output.choices[0].finish_reason == "tool_calls"
    if incremental:  # deltas per index: the caller joins them
        joined: dict[int, str] = {}
        for item in items:
            for delta in item.output.choices[0].message.get("tool_calls") or []:
                joined[delta["index"]] = joined.get(delta["index"], "") + delta["function"]["arguments"]
        arguments = [joined[0], joined[1]]
    else:  # the SDK merges the deltas by index itself
        arguments = [c["function"]["arguments"] for c in items[-1].output.choices[0].message.tool_calls]
    assert [json.loads(a) for a in arguments] == [{"location": "Hangzhou"}, {"location": "Beijing"}]


@pytest.mark.parametrize("stream", [False, True])
def test_sdk_multimodal_conversation_qwen35(fake: FakeDashScope, stream: bool) -> None:
    extra: dict[str, Any] = {"stream": True, "incremental_output": True, "enable_thinking": True} if stream else {}
    result = dashscope.MultiModalConversation.call(
        model="qwen3.5-plus", messages=[{"role": "user", "content": [{"text": "What is 1+1?"}]}],
        api_key=fake.api_key, **extra,
    )
    items = list(result) if stream else [result]
    assert {i.status_code for i in items} == {200}
    pieces = [part["text"] for i in items for part in i.output.choices[0].message.content]
    assert "".join(pieces).startswith("1 + 1 = **2**")
    if stream:
        assert "".join(i.output.choices[0].message.reasoning_content for i in items).startswith("The user asks")
        assert items[-1].usage["output_tokens_details"]["reasoning_tokens"] > 0
    (sent,) = fake.generation_requests
    assert sent.path.rstrip("/").endswith("/services/aigc/multimodal-generation/generation")


def test_sdk_sees_the_services_refusals(fake: FakeDashScope) -> None:
    wrong = dashscope.Generation.call(model="qwen3.5-plus", messages=user("hi"), api_key=fake.api_key)
    assert wrong.status_code == 400 and wrong.code == "InvalidParameter" and wrong.message == "url error, please check url！"
    (streamed,) = list(
        dashscope.Generation.call(
            model="qwen3-max", messages=user(CI_PROMPT), api_key=fake.api_key, enable_code_interpreter=True,
            stream=True, incremental_output=True,
        )
    )
    assert streamed.status_code == 400 and streamed.code == "InvalidParameter"


def test_sdk_faults_on_the_multimodal_endpoint(fake: FakeDashScope) -> None:
    fake.inject("throttle")
    response = dashscope.MultiModalConversation.call(
        model="qwen3.5-plus", messages=[{"role": "user", "content": [{"text": "What is 1+1?"}]}], api_key=fake.api_key
    )
    assert response.status_code == 429 and response.code == "Throttling.RateQuota"
