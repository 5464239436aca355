"""request.py and the plugin-header wire format, as pure functions: CallOptions in, Call out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dashmagic.errors import ConfigError
from dashmagic.protocol import format_for, get_format
from dashmagic.protocol.plugin_header import HEADER, plugin_header
from dashmagic.request import TEXT_GENERATION_PATH, CallOptions, build_messages

BASE = "https://dashscope.aliyuncs.com/api/v1"


def _call(prompt: Any = "hi", *, stream: bool = False, **options: Any) -> Any:
    opts = CallOptions.of(prompt, stream=stream, **options)
    return format_for(opts).build(opts, base_url=BASE)


def test_a_plugin_call_is_built_exactly() -> None:
    call = _call("12345*98765是多少", plugins=["calculator"], seed=42)
    assert call.url == BASE + TEXT_GENERATION_PATH
    assert call.headers[HEADER] == '{"calculator":{}}'
    assert json.loads(call.body_bytes()) == {
        "model": "qwen-plus",
        "input": {"messages": [{"role": "system", "content": "You are a helpful assistant."},
                               {"role": "user", "content": "12345*98765是多少"}]},
        "parameters": {"result_format": "message", "seed": 42},
    }
    assert not call.stream and not call.incremental and "X-DashScope-SSE" not in call.headers
    assert call.info.user_message == {"role": "user", "content": "12345*98765是多少"}


def test_streaming_sets_the_sse_headers_and_plugin_streams_are_snapshots() -> None:
    call = _call(plugins="code_interpreter", stream=True)
    assert call.headers["X-DashScope-SSE"] == "enable" and call.headers["Accept"] == "text/event-stream"
    assert call.incremental is False  # the service refuses incremental_output with this plugin
    asked = _call(plugins="calculator", stream=True, parameters={"incremental_output": True})
    assert asked.incremental is True


def test_every_header_value_is_ascii() -> None:
    call = _call(plugins=["酒店推荐插件", "calculator"])
    for value in call.headers.values():
        value.encode("ascii")
    assert json.loads(call.headers[HEADER]) == {"酒店推荐插件": {}, "calculator": {}}
    assert plugin_header({"x": {"q": "é"}}) == '{"x":{"q":"\\u00e9"}}'


def test_one_file_string_is_one_file() -> None:
    call = _call("summarise", plugins=["pdf_extracter"], files="https://x.example/a.pdf")
    assert call.body["input"]["messages"][-1]["content"] == [{"text": "summarise"}, {"file": "https://x.example/a.pdf"}]
    assert call.info.files == ("https://x.example/a.pdf",)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": " "}, "model must be a non-empty"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"seed": True}, "seed must be an integer"),
        ({"parameters": {"stream": True}}, "cannot be set"),
        ({"parameters": {"result_format": "text"}}, "cannot be set"),
        ({"parameters": {"temperature": float("nan")}}, "cannot be sent as JSON"),
        ({"parameters": {"stop": "\ud800"}}, "lone surrogate"),
        ({"parameters": "temperature=1"}, "must be a dict"),
        ({"files": ["report.pdf"]}, "--file expects a URL"),
        ({"files": ["http://[::1"]}, "--file expects a URL"),
        ({"plugins": {"calculator": "on"}}, "must be a JSON object"),
        ({"history": [{"content": "no role"}]}, "history must be"),
        ({"temprature": 1}, "Unknown option"),
    ],
)
def test_bad_options_are_one_line_config_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        CallOptions.of("hi", **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("prompt", ["", "   \n", [], [{"content": "x"}], "bad \ud800 text"])
def test_bad_prompts_are_refused(prompt: Any) -> None:
    with pytest.raises(ConfigError):
        CallOptions.of(prompt)


def test_messages_history_and_system() -> None:
    history = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    messages = build_messages(CallOptions.of("c", history=history, system="Be brief."))
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert build_messages(CallOptions.of("c", system=None)) == [{"role": "user", "content": "c"}]
    given = [{"role": "system", "content": "S"}, {"role": "user", "content": "q"}]
    assert build_messages(CallOptions.of(given)) == given


def test_options_are_frozen_and_a_call_never_holds_the_key() -> None:
    options = CallOptions.of("hi", parameters={"temperature": 0.2})
    with pytest.raises(AttributeError):
        options.model = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        options.parameters["temperature"] = 1  # type: ignore[index]
    call = _call()
    assert "Authorization" not in call.headers
    assert call.shown_headers()["Authorization"] == "Bearer ****"


def test_the_format_registry() -> None:
    assert get_format("plugin_header").name == "plugin_header"
    with pytest.raises(KeyError, match="unknown wire format"):
        get_format("nope")
