"""The fake's current generation (dashmagic.testing.current) over real loopback sockets.

Two groups: always-running tests of the wire properties the project relies on (our own
expectations, from protocol-current.md), and, when ``/work/shared/realdata`` is present (a
development checkout or CI), a comparison of the fake's reply with each real capture: the same
request must get a reply of the same shape (keys at every level, event pattern, headers).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from dashmagic.testing import FakeDashScope, parse_sse
from dashmagic.testing.current import REFUSALS
from dashmagic.testing.scripts import SEARCH_SOURCES, call_id

_ROOT = Path(__file__).resolve().parents[1]
# Beside the checkout (../shared/realdata), or beside the worktrees' folder, or where told.
_CANDIDATES = [Path(os.environ.get("DASHMAGIC_REALDATA", "")), _ROOT.parent / "shared" / "realdata",
               _ROOT.parents[1] / "shared" / "realdata"]
REALDATA = next((p for p in _CANDIDATES if str(p) not in ("", ".") and p.is_dir()), _CANDIDATES[1])
TEXT = "text-generation"
MULTIMODAL = "multimodal-generation"
POWER = str(123**21)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}
WEATHER = "What's the weather like in Hangzhou and Beijing?"


@pytest.fixture
def fake() -> Iterator[FakeDashScope]:
    with FakeDashScope(api_key="sk-test") as server:
        yield server


def send(
    fake: FakeDashScope, body: dict[str, Any], *, stream: bool = True, route: str = TEXT, plugins: Any = None
) -> requests.Response:
    headers = {"Authorization": "Bearer sk-test", "Content-Type": "application/json"}
    if stream:
        headers["X-DashScope-SSE"] = "enable"
    if plugins is not None:
        headers["X-DashScope-Plugin"] = json.dumps(plugins)
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return requests.post(f"{fake.base_url}/services/aigc/{route}/generation", data=data, headers=headers, timeout=10)


def events(resp: requests.Response) -> list[dict[str, Any]]:
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"] == "text/event-stream;charset=UTF-8"
    frames, rest = parse_sse(resp.content)
    assert rest == b"" and all(f.event == "result" for f in frames)
    return [f.json() for f in frames]


def request(prompt: str, model: str = "qwen3-max", *, content: Any = None, **parameters: Any) -> dict[str, Any]:
    message = {"role": "user", "content": prompt if content is None else content}
    return {"model": model, "input": {"messages": [message]}, "parameters": {"result_format": "message", **parameters}}


def message(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = event["output"]["choices"][0]["message"]
    return result


def finishes(evs: list[dict[str, Any]]) -> list[str]:
    return [e["output"]["choices"][0]["finish_reason"] for e in evs]


def assert_cumulative_usage(evs: list[dict[str, Any]]) -> None:
    for key in ("input_tokens", "output_tokens", "total_tokens"):
        values = [e["usage"][key] for e in evs]
        assert values == sorted(values), key
    assert all(e["usage"]["total_tokens"] == e["usage"]["input_tokens"] + e["usage"]["output_tokens"] for e in evs)


def ci_request(**extra: Any) -> dict[str, Any]:
    return request(
        "What is 123 to the power of 21?",
        enable_thinking=True,
        enable_code_interpreter=True,
        incremental_output=True,
        **extra,
    )


# -- thinking and the built-in code interpreter -----------------------------------------------------


def test_code_interpreter_stream_phases_and_tool_info(fake: FakeDashScope) -> None:
    evs = events(send(fake, ci_request()))
    msgs = [message(e) for e in evs]
    assert all(set(m) == {"content", "reasoning_content", "role"} for m in msgs)
    assert all(m["content"] == "" or m["reasoning_content"] == "" for m in msgs)  # the unused one is ""
    # Phases: reasoning, the tool run (both texts empty), reasoning on the result, the answer.
    kinds = [("r" if m["reasoning_content"] else "c" if m["content"] else "-") for m in msgs]
    collapsed = [k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1]]
    assert collapsed == ["r", "-", "r", "c", "-"]
    tooled = [i for i, e in enumerate(evs) if "tool_info" in e["output"]]
    assert tooled == list(range(tooled[0], len(evs)))  # repeated on every later event
    first = evs[tooled[0]]
    assert first["output"]["tool_info"] == [{"code_interpreter": {"code": ""}, "type": "code_interpreter"}]
    code = [{"code_interpreter": {"code": "123**21"}, "type": "code_interpreter"}]
    assert all(e["output"]["tool_info"] == code for e in evs[tooled[0] + 1 :])
    assert all(("plugins" in e["usage"]) == (i >= tooled[0]) for i, e in enumerate(evs))
    assert evs[-1]["usage"]["plugins"] == {"code_interpreter": {"count": 1}}
    before, after = evs[tooled[0]]["usage"]["input_tokens"], evs[-1]["usage"]["input_tokens"]
    assert after > before + 400  # the interpreter's result counts as input
    assert POWER in "".join(m["reasoning_content"] for m in msgs)  # the result shows only indirectly
    assert POWER in "".join(m["content"] for m in msgs)
    assert finishes(evs) == ["null"] * (len(evs) - 1) + ["stop"]
    assert msgs[-1] == {"content": "", "reasoning_content": "", "role": "assistant"}
    assert_cumulative_usage(evs)
    details = [e["usage"]["output_tokens_details"]["reasoning_tokens"] for e in evs]
    assert details == sorted(details) and details[-1] < evs[-1]["usage"]["output_tokens"]
    assert evs[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}
    assert len({e["request_id"] for e in evs}) == 1


def test_thinking_streams_deltas_even_without_incremental_output(fake: FakeDashScope) -> None:
    evs = events(send(fake, request("What is 1+1?", "qwen-plus", enable_thinking=True)))
    assert "".join(message(e)["content"] for e in evs) == "1 + 1 = **2**. It is one of the most basic sums in arithmetic."
    assert "".join(message(e)["reasoning_content"] for e in evs).startswith("The user asks")


@pytest.mark.parametrize("incremental", [True, False])
def test_incremental_output_true_gives_deltas_false_gives_snapshots(fake: FakeDashScope, incremental: bool) -> None:
    answer = "1 + 1 = **2**. It is one of the most basic sums in arithmetic."
    evs = events(send(fake, request("What is 1+1?", "qwen-plus", incremental_output=incremental)))
    contents = [message(e)["content"] for e in evs]
    assert all(set(message(e)) == {"content", "role"} for e in evs)
    if incremental:
        assert "".join(contents) == answer and contents[-1] == "" and len(contents[0]) == 8
    else:
        assert contents[-1] == answer and all(answer.startswith(c) for c in contents)
        assert [len(c) for c in contents] == sorted(len(c) for c in contents)
    assert finishes(evs)[-1] == "stop" and set(finishes(evs)[:-1]) == {"null"}


def test_qwen3_max_defaults_to_deltas(fake: FakeDashScope) -> None:
    evs = events(send(fake, request("What is 1+1?", "qwen3-max")))
    assert message(evs[-1])["content"] == "" and finishes(evs)[-1] == "stop"


def test_code_interpreter_without_it_answers_from_thinking(fake: FakeDashScope) -> None:
    evs = events(send(fake, request("What is 123 to the power of 21?", enable_thinking=True)))
    assert all("tool_info" not in e["output"] and "plugins" not in e["usage"] for e in evs)
    assert POWER in "".join(message(e)["content"] for e in evs)


def test_non_streamed_thinking_reply_carries_its_reasoning(fake: FakeDashScope) -> None:
    resp = send(fake, request("What is 1+1?", "deepseek-v4-pro", enable_thinking=True), stream=False)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    msg = body["output"]["choices"][0]["message"]
    assert msg["reasoning_content"].startswith("The user asks") and msg["content"].startswith("1 + 1")
    assert body["output"]["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["output_tokens_details"]["reasoning_tokens"] > 0


# -- web search ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "marker"), [(None, "[1]"), ("[<number>]", "[1]"), ("[ref_<number>]", "[ref_1]")])
def test_search_sources_on_the_first_event_and_citations(fake: FakeDashScope, fmt: str | None, marker: str) -> None:
    options: dict[str, Any] = {"enable_source": True, "enable_citation": True}
    if fmt:
        options["citation_format"] = fmt
    body = request("Who won the 2022 FIFA World Cup?", "qwen-plus", enable_search=True, search_options=options,
                   incremental_output=True)
    evs = events(send(fake, body))
    results = [e["output"]["search_info"]["search_results"] for e in evs]
    assert results[0] == [dict(s) for s in SEARCH_SOURCES] and len(results[0]) == 5
    assert all(r == [] for r in results[1:])
    assert {s["index"] for s in results[0]} == {1, 2, 3, 4, 5}
    text = "".join(message(e)["content"] for e in evs)
    assert marker in text and text.count(marker.replace("1", "5")) == 1
    other = "[ref_1]" if marker == "[1]" else "[1]"
    assert other not in text
    assert all(e["usage"]["plugins"] == {"search": {"count": 1}} for e in evs)


def test_search_without_enable_source_has_no_search_info(fake: FakeDashScope) -> None:
    body = request("Who won the 2022 FIFA World Cup?", "qwen-plus", enable_search=True, incremental_output=True)
    evs = events(send(fake, body))
    assert all("search_info" not in e["output"] for e in evs)
    assert "[1]" not in "".join(message(e)["content"] for e in evs)  # no citations asked for
    assert evs[-1]["usage"]["plugins"] == {"search": {"count": 1}}


def test_search_agent_strategy_and_prepended_sources(fake: FakeDashScope) -> None:
    options = {"enable_source": True, "search_strategy": "agent", "prepend_search_result": True}
    body = request("Who won the 2022 FIFA World Cup?", enable_thinking=True, enable_search=True, search_options=options)
    evs = events(send(fake, body))
    assert message(evs[0]) == {"content": "", "reasoning_content": "", "role": "assistant"}
    assert len(evs[0]["output"]["search_info"]["search_results"]) == 5
    assert all(e["output"]["search_info"]["search_results"] == [] for e in evs[1:])
    assert evs[-1]["usage"]["plugins"]["search"] == {"count": 1, "strategy": "agent"}


def test_search_non_streamed(fake: FakeDashScope) -> None:
    options = {"enable_source": True, "enable_citation": True, "citation_format": "[ref_<number>]"}
    body = request("Who won the 2022 FIFA World Cup?", "qwen-plus", enable_search=True, search_options=options)
    reply = send(fake, body, stream=False).json()
    assert len(reply["output"]["search_info"]["search_results"]) == 5
    assert "[ref_1][ref_2]" in reply["output"]["choices"][0]["message"]["content"]


# -- function calling -----------------------------------------------------------------------------------


def weather_request(**parameters: Any) -> dict[str, Any]:
    return request(WEATHER, "qwen-plus", tools=[WEATHER_TOOL], **parameters)


def joined_calls(evs: list[dict[str, Any]]) -> dict[int, dict[str, str]]:
    calls: dict[int, dict[str, str]] = {}
    for event in evs:
        for delta in message(event).get("tool_calls", []):
            call = calls.setdefault(delta["index"], {"id": "", "name": "", "arguments": ""})
            call["id"] += delta["id"]
            call["name"] += delta["function"].get("name", "")
            call["arguments"] += delta["function"]["arguments"]
    return calls


def test_parallel_calls_stream_as_interleaved_deltas(fake: FakeDashScope) -> None:
    evs = events(send(fake, weather_request(parallel_tool_calls=True, incremental_output=True)))
    deltas = [d for e in evs for d in message(e).get("tool_calls", [])]
    assert all(len(message(e).get("tool_calls", [])) <= 1 for e in evs)
    assert [d["index"] for d in deltas[:4]] == [0, 1, 0, 1]  # interleaved
    for index in (0, 1):
        mine = [d for d in deltas if d["index"] == index]
        assert mine[0]["id"].startswith("call_") and mine[0]["function"] == {"name": "get_current_weather", "arguments": ""}
        assert all(d["id"] == "" and set(d["function"]) == {"arguments"} for d in mine[1:])
        assert all(set(d) == {"index", "id", "type", "function"} and d["type"] == "function" for d in mine)
    calls = joined_calls(evs)
    assert [json.loads(calls[i]["arguments"]) for i in (0, 1)] == [{"location": "Hangzhou"}, {"location": "Beijing"}]
    assert calls[0]["id"] == call_id("get_current_weather", calls[0]["arguments"])
    assert finishes(evs) == ["null"] * (len(evs) - 1) + ["tool_calls"]


def conversation_turn(fake: FakeDashScope, history: list[dict[str, Any]], *, stream: bool, **params: Any) -> Any:
    body = {"model": "qwen-plus", "input": {"messages": history},
            "parameters": {"result_format": "message", "tools": [WEATHER_TOOL], **params}}
    if stream:
        evs = events(send(fake, body))
        calls = joined_calls(evs)
        text = "".join(message(e)["content"] for e in evs)
        return finishes(evs)[-1], [calls[i] for i in sorted(calls)], text
    reply = send(fake, body, stream=False).json()
    choice = reply["output"]["choices"][0]
    listed = [{"id": c["id"], "name": c["function"]["name"], "arguments": c["function"]["arguments"]}
              for c in choice["message"].get("tool_calls", [])]
    return choice["finish_reason"], listed, choice["message"]["content"]


def as_history(calls: list[dict[str, str]], results: dict[str, str]) -> list[dict[str, Any]]:
    assistant = {"role": "assistant", "content": "", "tool_calls": [
        {"id": c["id"], "type": "function", "index": i, "function": {"name": c["name"], "arguments": c["arguments"]}}
        for i, c in enumerate(calls)]}
    tools = [{"role": "tool", "content": results[json.loads(c["arguments"])["location"]], "tool_call_id": c["id"]}
             for c in calls]
    return [assistant, *tools]


@pytest.mark.parametrize("stream", [True, False])
def test_function_calling_conversation_one_call_per_round(fake: FakeDashScope, stream: bool) -> None:
    results = {"Hangzhou": "22°C, light rain", "Beijing": "9°C, sunny <b>windy</b>"}
    extra = {"incremental_output": True} if stream else {}
    history: list[dict[str, Any]] = [{"role": "user", "content": WEATHER}]
    asked: list[str] = []
    for _ in range(3):  # bounded: two calls, then the answer
        finish, calls, text = conversation_turn(fake, history, stream=stream, **extra)
        if finish == "stop":
            break
        assert finish == "tool_calls" and len(calls) == 1  # parallel_tool_calls not asked for
        asked.append(json.loads(calls[0]["arguments"])["location"])
        history += as_history(calls, results)
    assert asked == ["Hangzhou", "Beijing"] and finish == "stop"
    assert "Hangzhou: 22°C, light rain" in text and "Beijing: 9°C, sunny <b>windy</b>" in text


def test_function_calling_parallel_round_then_answer(fake: FakeDashScope) -> None:
    history: list[dict[str, Any]] = [{"role": "user", "content": WEATHER}]
    finish, calls, _ = conversation_turn(fake, history, stream=False, parallel_tool_calls=True)
    assert finish == "tool_calls" and len(calls) == 2
    history += as_history(calls, {"Hangzhou": "rain", "Beijing": "sun"})
    finish, calls, text = conversation_turn(fake, history, stream=True, parallel_tool_calls=True)
    assert finish == "stop" and calls == [] and "Hangzhou: rain" in text and "Beijing: sun" in text


def test_tool_message_with_an_unknown_call_id_is_refused(fake: FakeDashScope) -> None:
    history = [{"role": "user", "content": WEATHER}, {"role": "tool", "content": "x", "tool_call_id": "call_nope"}]
    body = {"model": "qwen-plus", "input": {"messages": history}, "parameters": {"tools": [WEATHER_TOOL]}}
    resp = send(fake, body, stream=False)
    assert resp.status_code == 400 and resp.json()["message"] == REFUSALS["unknown_tool_call_id"]


def test_tool_choice_none_and_no_weather_tool_answer_directly(fake: FakeDashScope) -> None:
    cases: list[dict[str, Any]] = [{"tool_choice": "none", "tools": [WEATHER_TOOL]}, {"tools": []}, {}]
    for params in cases:
        reply = send(fake, request(WEATHER, "qwen-plus", **params), stream=False).json()
        choice = reply["output"]["choices"][0]
        assert choice["finish_reason"] == "stop" and "tool_calls" not in choice["message"]


# -- the multimodal endpoint -----------------------------------------------------------------------------


def test_multimodal_list_content_while_thinking_then_text_pieces(fake: FakeDashScope) -> None:
    body = request("", "qwen3.5-plus", content=[{"text": "What is 1+1?"}], enable_thinking=True, incremental_output=True)
    evs = events(send(fake, body, route=MULTIMODAL))
    contents = [message(e)["content"] for e in evs]
    thinking = [c for e, c in zip(evs, contents) if message(e)["reasoning_content"]]
    assert thinking and all(c == [] for c in thinking)
    pieces = [c for c in contents if c]
    assert all(len(c) == 1 and set(c[0]) == {"text"} for c in pieces)
    assert "".join(c[0]["text"] for c in pieces).startswith("1 + 1 = **2**")
    assert contents[-1] == [] and finishes(evs)[-1] == "stop"
    assert all(isinstance(message(e)["reasoning_content"], str) for e in evs)


def test_multimodal_non_streamed(fake: FakeDashScope) -> None:
    body = request("", "qwen3.5-plus", content=[{"text": "What is 1+1?"}])
    reply = send(fake, body, stream=False, route=MULTIMODAL).json()
    assert reply["output"]["choices"][0]["message"]["content"][0]["text"].startswith("1 + 1")


# -- refusals ------------------------------------------------------------------------------------------------

REFUSED: list[tuple[str, dict[str, Any], bool, str]] = [
    ("incremental_not_streamed", request("What is 1+1?", "qwen-plus", incremental_output=True), False, TEXT),
    ("multimodal_model", request("What is 1+1?", "qwen3.5-plus"), True, TEXT),
    ("thinking_only", request("What is 1+1?", "qwq-plus", enable_thinking=False), True, TEXT),
    ("thinking_not_streamed", request("What is 1+1?", "qwen3-8b", enable_thinking=True), False, TEXT),
    ("code_not_streamed", request("x", enable_thinking=True, enable_code_interpreter=True), False, TEXT),
    ("code_without_thinking", request("x", enable_code_interpreter=True, incremental_output=True), True, TEXT),
    ("code_with_tools", ci_request(tools=[WEATHER_TOOL]), True, TEXT),
    ("empty_messages", {"model": "qwen-max", "input": {"prompt": "hi", "messages": []}, "parameters": {}}, True, TEXT),
]


@pytest.mark.parametrize(("key", "body", "stream", "route"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refusals(fake: FakeDashScope, key: str, body: dict[str, Any], stream: bool, route: str) -> None:
    resp = send(fake, body, stream=stream, route=route)
    if stream:  # a 200 stream whose only event is the error, as in the real capture
        assert resp.status_code == 200
        (frame,), rest = parse_sse(resp.content)
        assert rest == b"" and frame.event == "error" and frame.comments == ("HTTP_STATUS/400",)
        error = frame.json()
    else:
        assert resp.status_code == 400 and resp.headers["Content-Type"].startswith("application/json")
        error = resp.json()
    assert error["code"] == "InvalidParameter" and error["message"] == REFUSALS[key]
    assert set(error) == {"code", "message", "request_id"}


def test_exact_service_messages() -> None:
    assert REFUSALS["incremental_not_streamed"] == "parameter incremental_output only support stream call"
    assert REFUSALS["multimodal_model"] == "url error, please check url！"
    assert REFUSALS["thinking_only"] == "The value of the enable_thinking parameter is restricted to True."
    assert REFUSALS["thinking_not_streamed"] == "parameter.enable_thinking must be set to false for non-streaming calls"


def test_qwen35_on_the_multimodal_endpoint_is_accepted(fake: FakeDashScope) -> None:
    assert send(fake, request("What is 1+1?", "qwen3.5-plus"), stream=False, route=MULTIMODAL).status_code == 200
    assert [r.path for r in fake.generation_requests] == ["/api/v1/services/aigc/multimodal-generation/generation"]


# -- precedence and faults ----------------------------------------------------------------------------------


def test_refusals_come_first_then_queued_replies_then_scripts(fake: FakeDashScope) -> None:
    queued = {"output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": "q"}}]}}
    for route in (TEXT, MULTIMODAL):
        fake.queue_reply(queued)
        assert send(fake, ci_request(), stream=False, route=route).status_code == 400  # queue untouched
        reply = send(fake, request("What is 1+1?", enable_thinking=True), stream=False, route=route).json()
        assert message(reply)["content"] == "q"
        reply = send(fake, request("What is 1+1?", enable_thinking=True), stream=False, route=route).json()
        assert "reasoning_content" in message(reply)


@pytest.mark.parametrize("route", [TEXT, MULTIMODAL])
def test_faults_on_current_answers(fake: FakeDashScope, route: str) -> None:
    body = ci_request() if route == TEXT else request("What is 1+1?", "qwen3.5-plus", enable_thinking=True)
    fake.inject("throttle")
    assert send(fake, body, route=route).status_code == 429
    fake.inject("error_event_mid", after_events=3)
    frames, _ = parse_sse(send(fake, body, route=route).content)
    assert [f.event for f in frames] == ["result"] * 3 + ["error"]
    assert "reasoning_content" in message(frames[0].json())  # the current answer, cut short
    fake.inject("cut_mid_event", after_events=2)
    frames, rest = parse_sse(send(fake, body, route=route).content)
    assert len(frames) == 2 and rest
    fake.inject("reset_mid_stream", after_events=2)
    with pytest.raises(requests.exceptions.RequestException):
        send(fake, body, route=route)
    fake.inject("slow", seconds=0.05)
    assert finishes(events(send(fake, body, route=route)))[-1] == "stop"


def test_legacy_calculator_traces_plain_arithmetic_only(fake: FakeDashScope) -> None:
    body = request("(2+3)*4=?", "qwen-plus")
    trace = send(fake, body, stream=False, plugins={"calculator": {}}).json()["output"]["choices"][0]["messages"]
    assert [m["role"] for m in trace] == ["assistant", "plugin", "assistant"] and trace[0]["content"] == ""
    assert json.loads(trace[1]["content"]) == {"equations": ["(2 + 3) * 4"], "results": [20]}
    for prompt in ("__import__('os').system('true')", "2**99999999", "1/0", "hello"):
        reply = send(fake, request(prompt, "qwen-plus"), stream=False, plugins={"calculator": {}}).json()
        assert "messages" not in reply["output"]["choices"][0]  # the default answer, nothing evaluated


# -- against the real captures --------------------------------------------------------------------------------


def _shape(value: Any) -> Any:
    """Keys at every level (lists by the set of their elements' shapes); scalars by type."""
    if isinstance(value, dict):
        return tuple(sorted((k, _shape(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("list", tuple(sorted({repr(_shape(v)) for v in value})))
    return type(value).__name__


def _captures() -> list[str]:
    if not REALDATA.is_dir():
        return []
    return sorted(p.name[: -len(".request.body.json")] for p in REALDATA.glob("*.request.body.json"))


def _read(name: str, suffix: str) -> str | None:
    path = REALDATA / f"{name}.{suffix}"
    return path.read_text(encoding="utf-8-sig") if path.exists() else None


def _headers(text: str | None) -> dict[str, str]:
    lines = (text or "").splitlines()
    pairs = [line.split(":", 1) for line in lines if ":" in line and not line.startswith(("POST ", "HTTP/"))]
    return {k.strip().lower(): v.strip() for k, v in pairs}


def _real_response(name: str) -> tuple[int, dict[str, str], str]:
    header = _read(name, "response.header.txt") or ""
    status = int(header.split()[1]) if header.startswith("HTTP/") else 200
    body = _read(name, "response.body.txt") or _read(name, "response.body.json") or ""
    return status, _headers(header), body


def _replay(fake: FakeDashScope, name: str) -> tuple[requests.Response, bool]:
    body = json.loads(_read(name, "request.body.json") or "{}")
    plugin_names = json.loads(_read(name, "plugins.txt") or "null")
    plugins: dict[str, Any] | None = {p: {} for p in plugin_names} if plugin_names else None
    request_line = (_read(name, "request.header.txt") or "").splitlines()[:1]
    route = MULTIMODAL if request_line and MULTIMODAL in request_line[0] else TEXT
    real_status, real_headers, real_body = _real_response(name)
    streamed = real_headers.get("content-type", "").startswith("text/event-stream") or bool(
        body.get("parameters", {}).get("incremental_output")
    )
    return send(fake, body, stream=streamed, route=route, plugins=plugins), streamed


def _collapse(items: list[Any]) -> list[Any]:
    return [x for i, x in enumerate(items) if i == 0 or x != items[i - 1]]


needs_realdata = pytest.mark.skipif(
    not REALDATA.is_dir(), reason=f"real captures not found at {REALDATA} (present in development and CI only)"
)


@needs_realdata
def test_every_capture_is_covered() -> None:
    assert len(_captures()) >= 8


@needs_realdata
@pytest.mark.parametrize("name", _captures() or ["(none)"])
def test_fake_reply_has_the_shape_of_the_real_one(fake: FakeDashScope, name: str) -> None:
    real_status, real_headers, real_body = _real_response(name)
    resp, streamed = _replay(fake, name)
    assert resp.status_code == real_status
    if "content-type" in real_headers:
        assert resp.headers["Content-Type"].lower() == real_headers["content-type"].lower() or (
            real_headers["content-type"].startswith("application/json")
            and resp.headers["Content-Type"].startswith("application/json")
        )
    if not real_headers.get("content-type", "").startswith("text/event-stream"):
        real, mine = json.loads(real_body), resp.json()
        if "request_id" not in real:  # a message quoted from a code comment (dashscopego)
            mine.pop("request_id")
            assert mine == real
        assert _shape(mine) == _shape(real)
        return
    real_frames, _ = parse_sse(real_body.encode("utf-8"))
    frames, rest = parse_sse(resp.content)
    assert rest == b""
    assert [(f.event, f.comments) for f in _collapse_frames(frames)] == [
        (f.event, f.comments) for f in _collapse_frames(real_frames)
    ]
    real_events, my_events = [f.json() for f in real_frames], [f.json() for f in frames]
    assert _collapse([_shape(e) for e in my_events]) == _collapse([_shape(e) for e in real_events])
    if real_frames[0].event == "error":
        assert my_events[0]["code"] == real_events[0]["code"]
        return
    for evs in (real_events, my_events):
        assert set(finishes(evs)[:-1]) == {"null"} and finishes(evs)[-1] != "null"
        last = message(evs[-1])
        assert last["content"] == "" and last.get("reasoning_content", "") == ""
        assert_cumulative_usage(evs)
        lists = [e["output"].get("tool_info") for e in evs]
        tooled = [i for i, t in enumerate(lists) if t is not None]
        assert tooled == list(range(tooled[0], len(evs))) if tooled else True


def _collapse_frames(frames: list[Any]) -> list[Any]:
    keyed = [(f.event, f.comments) for f in frames]
    return [f for i, f in enumerate(frames) if i == 0 or keyed[i] != keyed[i - 1]]
