"""Today's generation, going out: bodies, headers and endpoints pinned per feature; the
constraints checked before sending; the hints added to refusals; the magic's flags; folding
corner cases (snapshots, repairs, linear cost)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

import dashmagic
from dashmagic.errors import ApiError, ConfigError, PermissionDeniedError, api_error_for
from dashmagic.events import TraceBuilder
from dashmagic.plan import plan_cell
from dashmagic.protocol import format_for, get_format, with_hint
from dashmagic.protocol.builtin_tools import BuiltinFolder, multimodal_model
from dashmagic.protocol.envelope import read_usage
from dashmagic.request import MULTIMODAL_GENERATION_PATH, TEXT_GENERATION_PATH, Call, CallOptions
from dashmagic.trace import RequestInfo

BASE = "https://dashscope.aliyuncs.com/api/v1"


def build(prompt: str = "hi", *, stream: bool = False, **options: Any) -> Call:
    return dashmagic.build_call(prompt, stream=stream, base_url=BASE, **options)


def params(call: Call) -> dict[str, Any]:
    return dict(call.body["parameters"])


# -- which generation --------------------------------------------------------------------------------


def test_plugins_keep_the_plugin_header_and_everything_else_is_builtin() -> None:
    seed = build(plugins=["calculator"], stream=True)
    assert seed.info.protocol == "plugin_header"
    assert json.loads(seed.headers["X-DashScope-Plugin"]) == {"calculator": {}}
    assert params(seed) == {"result_format": "message"} and seed.incremental is False  # snapshots, as before
    plain = build(stream=True)
    assert plain.info.protocol == "builtin_tools" and "X-DashScope-Plugin" not in plain.headers
    assert format_for(CallOptions.of("x")).name == "builtin_tools"


def test_plain_stream_asks_for_deltas_and_a_plain_call_does_not() -> None:
    streamed = build(stream=True)
    assert params(streamed) == {"result_format": "message", "incremental_output": True}
    assert streamed.incremental is True and streamed.headers["X-DashScope-SSE"] == "enable"
    plain = build()
    assert params(plain) == {"result_format": "message"} and plain.incremental is False
    assert "X-DashScope-SSE" not in plain.headers


def test_user_incremental_output_false_is_honoured_and_incremental_is_truthful() -> None:
    call = build(stream=True, parameters={"incremental_output": False})
    assert params(call)["incremental_output"] is False and call.incremental is False


# -- bodies pinned per feature ----------------------------------------------------------------------


def test_thinking_and_budget() -> None:
    assert params(build(thinking=True, stream=True)) == {
        "result_format": "message", "incremental_output": True, "enable_thinking": True}
    assert params(build(thinking=False))["enable_thinking"] is False
    budget = params(build(thinking_budget=50, stream=True))
    assert (budget["enable_thinking"], budget["thinking_budget"]) == (True, 50)


def test_code_interpreter_body_matches_the_vendor_example() -> None:
    call = build("123的21次方是多少？", code_interpreter=True, stream=True)
    assert call.body["model"] == "qwen3-max"  # a default that runs the interpreter
    assert params(call) == {"result_format": "message", "incremental_output": True, "enable_thinking": True,
                            "enable_code_interpreter": True}
    assert call.url == BASE + TEXT_GENERATION_PATH


def test_search_options_use_the_service_names() -> None:
    assert params(build(search=True))["enable_search"] is True and "search_options" not in params(build(search=True))
    body = params(build(search={"strategy": "agent", "forced": True, "sources": True, "freshness": 30,
                                "citation_format": "[ref_<number>]", "future_option": 1}))
    assert body["search_options"] == {
        "search_strategy": "agent", "forced_search": True, "enable_source": True, "freshness": 30,
        "citation_format": "[ref_<number>]", "enable_citation": True, "future_option": 1}
    assert params(build(search={"enable_source": True}))["search_options"] == {"enable_source": True}


def test_tools_tool_choice_and_parallel_calls() -> None:
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    body = params(build(tools=[weather], tool_choice="get_weather", parameters={"parallel_tool_calls": True}))
    assert body["tools"] == [weather] and body["parallel_tool_calls"] is True
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert params(build(tools=weather, tool_choice="none"))["tool_choice"] == "none"  # one spec is a list of one


def test_seed_and_unknown_future_tools_pass_through_parameters() -> None:
    body = params(build(seed=7, parameters={"enable_future_tool": True, "temperature": 0.2}))
    assert (body["seed"], body["enable_future_tool"], body["temperature"]) == (7, True, 0.2)


def test_qwen35_to_37_go_to_the_multimodal_endpoint_with_list_content() -> None:
    for model in ("qwen3.5-plus", "qwen3.6-flash", "Qwen3.7-plus-2026-01-01"):
        call = build("2+2?", model=model, stream=True)
        assert call.url == BASE + MULTIMODAL_GENERATION_PATH, model
        assert call.body["input"]["messages"] == [
            {"role": "system", "content": [{"text": "You are a helpful assistant."}]},
            {"role": "user", "content": [{"text": "2+2?"}]}]
    for model in ("qwen3-max", "qwen-plus", "qwen3.50-x", "qwen3.8-plus", "qwq-plus"):
        assert not multimodal_model(model), model
        assert build(model=model).url == BASE + TEXT_GENERATION_PATH


def test_endpoint_override_both_ways() -> None:
    assert build(model="qwen3.5-plus", endpoint="text").url == BASE + TEXT_GENERATION_PATH
    call = build(model="qwen-vl-max", endpoint="multimodal")
    assert call.url == BASE + MULTIMODAL_GENERATION_PATH
    assert call.body["input"]["messages"][-1]["content"] == [{"text": "hi"}]


def test_history_with_tool_calls_and_tool_messages_goes_back_as_given() -> None:
    history = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "index": 0, "function": {"name": "w", "arguments": "{}"}}]},
        {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
    ]
    messages = build("and tomorrow?", history=history).body["input"]["messages"]
    assert messages[1:4] == history and messages[-1] == {"role": "user", "content": "and tomorrow?"}


# -- constraints, checked before sending ------------------------------------------------------------


@pytest.mark.parametrize(("options", "says"), [
    ({"code_interpreter": True}, "add --stream"),
    ({"code_interpreter": True, "stream": True, "thinking": False}, "drop --no-thinking"),
    ({"code_interpreter": True, "stream": True, "tools": [{"type": "function", "function": {"name": "f"}}]},
     "drop --tools"),
    ({"thinking": False, "thinking_budget": 10}, "drop one"),
    ({"thinking_budget": 0}, "positive"),
    ({"thinking": "yes"}, "True, False or None"),
    ({"search": {"strategy": "deep"}}, "turbo, max, agent, agent_max"),
    ({"search": {"freshness": 8}}, "7, 30, 180, 365"),
    ({"search": {"forced": "yes"}}, "True or False"),
    ({"search": "on"}, "search must be"),
    ({"tools": [{"function": {"name": "f"}}]}, "'type'"),
    ({"tools": [{"type": "function", "function": {}}]}, "needs"),
    ({"tool_choice": 3}, "tool_choice"),
    ({"endpoint": "vision"}, "text, multimodal"),
    ({"plugins": ["calculator"], "thinking": True}, "--code-interpreter replaces --plugins code_interpreter"),
])
def test_documented_constraints_are_one_line_config_errors(options: dict[str, Any], says: str) -> None:
    stream = bool(options.pop("stream", False))
    with pytest.raises(ConfigError) as info:
        build(stream=stream, **options)
    assert says in str(info.value) and "\n" not in str(info.value)


def test_per_model_rules_are_left_to_the_service() -> None:
    # Some models refuse non-streamed thinking, deepseek-v4-pro answers it: never blocked here.
    assert params(build(model="qwen3-8b", thinking=True))["enable_thinking"] is True
    assert params(build(model="qwq-plus", thinking=False))["enable_thinking"] is False
    assert params(build(search={"strategy": "agent_max"}))["search_options"] == {"search_strategy": "agent_max"}


# -- hints on refusals ------------------------------------------------------------------------------


def hinted(call: Call, status: int, code: str, message: str) -> str:
    error = with_hint(api_error_for(status, code, message, "rid-1"), call)
    assert isinstance(error, ApiError) and error.request_id == "rid-1" and error.code == code
    text = str(error)
    assert "\n" not in text and text.endswith("(request id rid-1)")
    return text


def test_hint_multimodal_model_on_the_text_endpoint() -> None:
    text = hinted(build(model="qwen3.5-plus", endpoint="text"), 400, "InvalidParameter", "url error, please check url！")
    assert "--endpoint multimodal" in text and "qwen3.5-plus" in text
    text = hinted(build(model="qwen-plus", endpoint="multimodal"), 400, "InvalidParameter", "url error, please check url！")
    assert "--endpoint text" in text


def test_hint_legacy_plugin_access_denied_names_todays_flags() -> None:
    call = build(plugins=["code_interpreter"])
    error = with_hint(api_error_for(403, "InvalidPlugin.AccessDenied", "Plugin access denied", None), call)
    assert isinstance(error, PermissionDeniedError)
    assert "--code-interpreter" in str(error) and "older generation" in str(error)


def test_hint_plugins_with_incremental_output() -> None:
    call = build(plugins=["code_interpreter"], stream=True, parameters={"incremental_output": True})
    text = hinted(call, 400, "InvalidParameter", "Plugins=[['code_interpreter']] don't support incremental_output")
    assert "remove incremental_output" in text


def test_hints_for_streaming_and_thinking_refusals() -> None:
    call = build(thinking=True, parameters={"incremental_output": True})
    assert "add --stream" in hinted(call, 400, "InvalidParameter", "parameter incremental_output only support stream call")
    text = hinted(call, 400, "InvalidParameter", "parameter.enable_thinking must be set to false for non-streaming calls")
    assert "add --stream" in text and "--no-thinking" in text
    text = hinted(build(thinking=False), 400, "InvalidParameter",
                  "The value of the enable_thinking parameter is restricted to True.")
    assert "drop --no-thinking" in text


def test_no_hint_for_other_errors() -> None:
    error = api_error_for(400, "InvalidParameter", "Role must be user or assistant", "r")
    assert with_hint(error, build()) is error
    assert get_format("builtin_tools").hint(error, build()) is None


# -- the magic's flags (plan_cell is pure) ----------------------------------------------------------

TRAITS = {"interpolate": False, "plugins": [], "stream": None, "model": "qwen-plus", "system": "sys", "mode": "",
          "recordings": "", "timeout": 10.0, "connect_timeout": 1.0, "retries": 1, "embed_images": False,
          "image_hosts": [], "max_image_bytes": 1, "base_url": ""}


def args(**given: Any) -> SimpleNamespace:
    base: dict[str, Any] = dict(
        prompt=[], no_interpolate=False, out=None, plugins=None, stream=None, model=None, system=None, file=[],
        seed=None, param=[], chat=False, dry_run=False, record=None, replay=None, timeout=None, thinking=None,
        thinking_budget=None, code_interpreter=False, search=False, search_strategy=None, forced_search=False,
        sources=False, citations=False, freshness=None, tools=None, endpoint=None)
    base.update(given)
    return SimpleNamespace(**base)


def test_flags_become_call_options_and_default_to_qwen3_max() -> None:
    plan = plan_cell(args(code_interpreter=True), "q", TRAITS, {}, in_kernel=True)
    assert plan.call["code_interpreter"] is True and plan.call["model"] == "qwen3-max"
    plan = plan_cell(args(thinking=True, model="qwq-plus", thinking_budget=9), "q", TRAITS, {})
    assert (plan.call["model"], plan.call["thinking"], plan.call["thinking_budget"]) == ("qwq-plus", True, 9)
    assert plan_cell(args(thinking_budget=5), "q", TRAITS, {}).call["model"] == "qwen3-max"  # as run() does
    assert build(thinking_budget=5).body["model"] == "qwen3-max"
    plan = plan_cell(args(thinking=False), "q", TRAITS, {})
    assert plan.call["thinking"] is False and plan.call["model"] == "qwen-plus"
    assert "thinking" not in plan_cell(args(), "q", TRAITS, {}).call  # the seed's cells are unchanged


def test_search_flags_imply_search() -> None:
    plan = plan_cell(args(search_strategy="max", citations=True, freshness=7), "q", TRAITS, {})
    assert plan.call["search"] == {"strategy": "max", "citations": True, "freshness": 7}
    assert plan_cell(args(search=True), "q", TRAITS, {}).call["search"] == {}


def test_tools_flag_reads_variables_and_endpoint_flag() -> None:
    one = {"type": "function", "function": {"name": "a"}}
    two = [{"type": "function", "function": {"name": "b"}}]
    plan = plan_cell(args(tools="one, two", endpoint="multimodal"), "q", TRAITS, {"one": one, "two": two})
    assert plan.call["tools"] == [one, *two] and plan.call["endpoint"] == "multimodal"
    with pytest.raises(ConfigError, match="not defined"):
        plan_cell(args(tools="missing"), "q", TRAITS, {})
    with pytest.raises(ConfigError, match="must be a tool spec"):
        plan_cell(args(tools="n"), "q", TRAITS, {"n": 3})


def test_configured_default_plugins_step_aside_for_todays_flags() -> None:
    traits = dict(TRAITS, plugins=["calculator"])
    plan = plan_cell(args(thinking=True), "q", traits, {})
    assert not plan.call["plugins"]
    assert "calculator" in plan_cell(args(), "q", traits, {}).call["plugins"]


def test_magic_help_explains_both_generations_first(shell: Any) -> None:
    doc = shell.find_cell_magic("dashscope").__doc__
    first, second = doc.splitlines()[:2]
    assert "--thinking" in first and "--code-interpreter" in first
    assert "--plugins" in second and "older generation" in second
    for flag in ("--thinking-budget", "--search-strategy", "--forced-search", "--sources", "--citations",
                 "--freshness", "--tools", "--endpoint", "--no-thinking"):
        assert flag in doc, flag


def test_magic_dry_run_with_todays_flags(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        shell.run_cell_magic("dashscope", "--dry-run --code-interpreter --stream", "123**21?")
    shown = "".join(o.data.get("text/plain", "") for o in captured.outputs) + captured.stdout
    assert "enable_code_interpreter" in shown and "qwen3-max" in shown


# -- folding corner cases -----------------------------------------------------------------------------


def folder() -> BuiltinFolder:
    return BuiltinFolder(RequestInfo(model="m", protocol="builtin_tools"))


def out(content: Any = "", reasoning: str = "", **extra: Any) -> dict[str, Any]:
    return {"choices": [{"message": {"role": "assistant", "content": content, "reasoning_content": reasoning},
                         "finish_reason": "null"}], **extra}


def test_a_delta_repeating_the_text_so_far_is_repaired_when_deltas_are_proven() -> None:
    f = folder()
    for piece in ("1", "1", "+", "1"):  # "1" then "1" could be a snapshot; "+" proves deltas
        f.feed(out(piece), incremental=False)
    assert [s.text for s in f.steps(final=True)] == ["11+1"]  # type: ignore[union-attr]


def test_snapshots_are_read_whatever_was_asked() -> None:
    f = folder()
    for text in ("Hel", "Hello", "Hello, wor", "Hello, world", ""):
        f.feed(out(text), incremental=True)
    assert [s.text for s in f.steps(final=True)] == ["Hello, world"]  # type: ignore[union-attr]


def test_transient_empty_code_entry_is_one_step_filled_in_place() -> None:
    f = folder()
    f.feed(out(reasoning="think"), incremental=True)
    f.feed(out(tool_info=[{"type": "code_interpreter", "code_interpreter": {"code": ""}}]), incremental=True)
    first = f.steps(final=False)
    f.feed(out(tool_info=[{"type": "code_interpreter", "code_interpreter": {"code": "1+1"}}]), incremental=True)
    f.feed(out(reasoning=" more", tool_info=[{"type": "code_interpreter", "code_interpreter": {"code": "1+1"}}]),
           incremental=True)
    steps = f.steps(final=True)
    assert [s.kind for s in first] == ["reasoning", "code_execution"]
    assert [s.kind for s in steps] == ["reasoning", "code_execution", "reasoning"]
    assert steps[1].code == "1+1"  # type: ignore[union-attr]


def test_usage_reads_reasoning_cached_and_plugin_counts() -> None:
    usage = read_usage({"input_tokens": 1, "output_tokens_details": {"reasoning_tokens": 5},
                        "prompt_tokens_details": {"cached_tokens": 3},
                        "plugins": {"code_interpreter": {"count": 2}, "search": {"count": 1, "strategy": "agent"}}})
    assert (usage.reasoning_tokens, usage.cached_tokens) == (5, 3)
    assert dict(usage.plugins) == {"code_interpreter": 2, "search": 1}
    assert read_usage({"output_tokens_details": "junk"}).reasoning_tokens is None


def test_usage_is_cumulative_per_stream_and_keeps_counts_a_later_event_omits() -> None:
    builder = TraceBuilder(RequestInfo(model="m", protocol="builtin_tools"))
    builder.feed({"output": out("a"), "usage": {"input_tokens": 281, "output_tokens": 3,
                                                "plugins": {"search": {"count": 1}}}})
    builder.feed({"output": out("b"), "usage": {"input_tokens": 723, "output_tokens": 9,
                                                "output_tokens_details": {"reasoning_tokens": 4}}})
    usage = builder.trace.usage
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens) == (723, 9, 4)
    assert dict(usage.plugins) == {"search": 1}


def test_finished_steps_are_reused_not_rebuilt() -> None:
    """Linear folding, checked by structure (no timing): once code follows it, a reasoning step is
    the same object in every later snapshot, and the growing answer is kept as pieces."""
    f = folder()
    f.feed(out(reasoning="a" * 100), incremental=True)
    f.feed(out(tool_info=[{"type": "code_interpreter", "code_interpreter": {"code": "x"}}]), incremental=True)
    first = f.steps(final=False)[0]
    for i in range(50):
        f.feed(out(f"piece {i} "), incremental=True)
        assert f.steps(final=False)[0] is first
    assert f.steps(final=True)[-1].text == "".join(f"piece {i} " for i in range(50))  # type: ignore[union-attr]


def test_turn_goes_back_without_reasoning_and_with_joined_tool_calls() -> None:
    call = build("weather?", stream=True, tools=[{"type": "function", "function": {"name": "w"}}])
    builder = TraceBuilder(call.info)
    def delta(reasoning: str, call: dict[str, Any]) -> dict[str, Any]:
        payload = {"output": out(reasoning=reasoning)}
        payload["output"]["choices"][0]["message"]["tool_calls"] = [call]
        return payload

    builder.feed(delta("let me call w", {"index": 0, "id": "c1", "type": "function",
                                         "function": {"name": "w", "arguments": '{"a": '}}))
    builder.feed(delta("", {"index": 0, "function": {"arguments": "1}"}}))
    trace = builder.feed({"output": {"choices": [{"message": {"role": "assistant", "content": ""},
                                                  "finish_reason": "tool_calls"}]}})
    turn = trace.turn()
    assert turn[0] == {"role": "user", "content": "weather?"}
    assert turn[1] == {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "type": "function", "index": 0, "function": {"name": "w", "arguments": '{"a": 1}'}}]}
    follow = turn + [{"role": "tool", "content": "sunny", "tool_call_id": "c1"}]
    messages = build("thanks", history=follow).body["input"]["messages"]
    assert messages[1:4] == follow and all("reasoning_content" not in m for m in messages)


def test_malformed_shapes_never_raise_and_are_never_dropped() -> None:
    f = folder()
    hostile: list[dict[str, Any]] = [
        {"choices": [{"message": {"role": "assistant", "content": {"not": "text"}, "reasoning_content": 42,
                                  "tool_calls": ["junk", {"index": "1", "function": {"name": "f", "arguments": 7}}]}}]},
        {"choices": "junk", "tool_info": {"type": "code_interpreter"}, "search_info": {"search_results": ["x", None]}},
        {"choices": [None], "tool_info": [None, 3, {"type": "code_interpreter", "code_interpreter": "junk"}]},
        {"search_info": "junk", "text": 5},
    ]
    for output in hostile:
        f.feed(output, incremental=True)
    steps = f.steps(final=True)
    where = {s.where for s in steps if s.kind == "unknown"}  # type: ignore[union-attr]
    assert {"message.content", "message.tool_calls[0]", "output.tool_info", "output.search_info",
            "output.search_info.search_results[0]", "output.tool_info[1]"} <= where
    assert any(s.kind == "reasoning" and s.text == "42" for s in steps)  # type: ignore[union-attr]
    (call,) = [s for s in steps if s.kind == "function_call"]
    assert (call.index, call.name, call.arguments) == (1, "f", 7)  # type: ignore[union-attr]
