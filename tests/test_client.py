"""run()/stream() against the loopback fake: pinned requests, parsed traces, config, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dashmagic
from dashmagic.config import DEFAULT_BASE_URL, INTL_BASE_URL, Secret
from dashmagic.errors import AuthenticationError, ConfigError, PermissionDeniedError
from dashmagic.plugins.calculator import CalculatorResult
from dashmagic.plugins.code_interpreter import CodeResult
from dashmagic.trace import CodeBlock

from _seed import BY_NAME, EXCHANGES, NAMES, files, user_prompt

EXPECTED_KINDS = {
    "pdf_extracter": ["answer"],
    **{name: ["thought", "plugin_call", "plugin_result", "thought", "answer"] for name in NAMES if name != "pdf_extracter"},
}


def _call(fake, exchange, *, streaming: bool):
    kwargs = dict(plugins=exchange.plugins, seed=42, files=files(exchange), api_key=fake.api_key, base_url=fake.base_url)
    if streaming:
        return list(dashmagic.stream(user_prompt(exchange), **kwargs))
    return [dashmagic.run(user_prompt(exchange), **kwargs)]


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("name", NAMES)
def test_request_is_pinned(fake_dashscope, name: str, streaming: bool) -> None:
    exchange = BY_NAME[name]
    _call(fake_dashscope, exchange, streaming=streaming)
    (sent,) = fake_dashscope.generation_requests
    assert sent.method == "POST"
    assert sent.path == "/api/v1/services/aigc/text-generation/generation"
    assert sent.header("Authorization") == "Bearer sk-test"
    assert sent.header("Content-Type") == "application/json"
    assert json.loads(sent.header("X-DashScope-Plugin")) == exchange.plugins
    assert sent.json == exchange.request  # the documented curl body, exactly
    if streaming:
        assert sent.header("X-DashScope-SSE") == "enable"
        assert sent.header("Accept") == "text/event-stream"
        assert "stream" not in sent.json["parameters"]
    else:
        assert sent.header("X-DashScope-SSE") is None
        assert sent.header("Accept") == "application/json"


@pytest.mark.parametrize("name", NAMES)
def test_response_round_trips_json_and_sse(fake_dashscope, name: str) -> None:
    exchange = BY_NAME[name]
    (final,) = _call(fake_dashscope, exchange, streaming=False)
    snapshots = _call(fake_dashscope, exchange, streaming=True)
    streamed = snapshots[-1]
    assert [s.kind for s in final.steps] == EXPECTED_KINDS[name]
    assert final.status == streamed.status == "complete"
    assert final.request_id == streamed.request_id == exchange.response["request_id"]
    assert final.usage.total_tokens == exchange.response["usage"]["total_tokens"]
    assert final.finish_reason == "stop" and final.model == "qwen-plus"
    # Streaming ends at the same trace (figure URLs point at the fake in both).
    assert streamed.steps == final.steps
    assert len(snapshots) >= 3 and all(s.status == "partial" for s in snapshots[:-2])
    assert [s.events for s in snapshots[:-1]] == list(range(1, len(snapshots)))
    assert final.answer and final.elapsed is not None


def test_plugin_fields_of_the_seed(fake_dashscope) -> None:
    fake = fake_dashscope
    run = lambda name: _call(fake, BY_NAME[name], streaming=False)[0]  # noqa: E731
    calc = run("calculator")
    assert calc.plugin_calls[0].view.expression == "12345 * 98765"
    assert calc.plugin_results[0].view == CalculatorResult((("12345 * 98765", 1219253925),))
    ocr = run("ocr")
    assert ocr.plugin_calls[0].view.image_url.endswith("20231124161643.jpg")
    assert ocr.plugin_results[0].view.text.startswith("全球数字化出海服务平台")
    t2i = run("text_to_image")
    assert t2i.plugin_calls[0].view.prompt == "black cat" and t2i.plugin_calls[0].view.size == "512*512"
    assert t2i.figures[0].url.startswith(fake.origin + "/oss/")
    hotel = run("hotel")
    assert hotel.plugin_calls[0].plugin == "haozhu_recommend_hotel" and hotel.plugin_calls[0].name == "酒店推荐插件"
    assert [h.name for h in hotel.plugin_results[0].view.hotels][0] == "三亚山海天大酒店,傲途格精选"
    assert "| 名称 | 地址 | 特色 |" in hotel.answer
    eq = run("code_interpreter_equation")
    assert isinstance(eq.plugin_calls[0].view, CodeBlock) and "solve((eq1, eq2), (x, y))" in eq.code_blocks[0].code
    assert eq.plugin_results[0].view.outputs[0].text == "(33, 67)"
    plot = run("code_interpreter_plot")
    result = plot.plugin_results[0].view
    assert isinstance(result, CodeResult) and result.figures[0].alt == "fig-001"
    assert "Signature=" in result.figures[0].url  # kept in the data; renderers strip it
    pdf = run("pdf_extracter")
    assert pdf.request.files == ("https://qianwen-res.oss-cn-beijing.aliyuncs.com/QWEN_TECHNICAL_REPORT.pdf",)
    assert pdf.answer.startswith("这篇文档主要介绍了QWEN系列")


def test_history_and_messages_prompt(fake_dashscope) -> None:
    first = dashmagic.run("12345*98765是多少", plugins=["calculator"], api_key="sk-test", base_url=fake_dashscope.base_url)
    history = [{"role": "user", "content": "12345*98765是多少"}, *first.history()]
    dashmagic.run("再乘以2", plugins=["calculator"], history=history, api_key="sk-test", base_url=fake_dashscope.base_url)
    sent = fake_dashscope.generation_requests[-1].json["input"]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "plugin", "assistant", "user"]
    assert sent[2]["plugin_call"]["name"] == "calculator" and sent[3]["status"]["code"] == 200
    messages = [{"role": "user", "content": "hi"}]
    dashmagic.run(messages, api_key="sk-test", base_url=fake_dashscope.base_url)
    assert fake_dashscope.generation_requests[-1].json["input"]["messages"] == messages


def test_parameters_and_several_plugins(fake_dashscope) -> None:
    dashmagic.run("x", plugins=["calculator", "ocr"], parameters={"temperature": 0.2, "top_p": 0.8}, seed=7,
                  api_key="sk-test", base_url=fake_dashscope.base_url)
    sent = fake_dashscope.generation_requests[-1]
    assert json.loads(sent.header("X-DashScope-Plugin")) == {"calculator": {}, "ocr": {}}
    assert sent.json["parameters"] == {"result_format": "message", "seed": 7, "temperature": 0.2, "top_p": 0.8}
    with pytest.raises(ConfigError, match="X-DashScope-SSE"):
        dashmagic.run("x", parameters={"stream": True}, api_key="k", base_url=fake_dashscope.base_url)


def test_configuration_is_read_at_call_time(fake_dashscope, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", fake_dashscope.base_url)
    key_file = tmp_path / "key"
    key_file.write_text("sk-test\n")
    monkeypatch.setenv("DASHSCOPE_API_KEY_FILE_PATH", str(key_file))
    assert dashmagic.run("hello").status == "complete"
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-wrong")  # the env var wins over the file
    with pytest.raises(AuthenticationError) as info:
        dashmagic.run("hello")
    assert info.value.status_code == 401 and info.value.code == "InvalidApiKey" and info.value.request_id
    assert "sk-wrong" not in str(info.value)


def test_intl_base_url_builds_the_intl_endpoint() -> None:
    call = dashmagic.build_call("x", base_url=INTL_BASE_URL)
    assert call.url == "https://dashscope-intl.aliyuncs.com/api/v1/services/aigc/text-generation/generation"


def test_missing_key_message_names_the_three_safe_ways() -> None:
    with pytest.raises(ConfigError) as info:
        dashmagic.run("hello", base_url=DEFAULT_BASE_URL)
    message = str(info.value)
    for way in ("DASHSCOPE_API_KEY", "DASHSCOPE_API_KEY_FILE_PATH", "~/.dashscope/api_key"):
        assert way in message
    assert "Do not paste" in message


def test_plugin_access_denied(fake_dashscope) -> None:
    with pytest.raises(PermissionDeniedError) as info:
        dashmagic.run("x", plugins=["weather"], api_key="sk-test", base_url=fake_dashscope.base_url)
    assert info.value.code == "InvalidPlugin.AccessDenied" and 'Plugin ["weather"] access denied.' in str(info.value)
    assert info.value.trace is not None and info.value.trace.status == "error"


def test_secret_never_shows_itself() -> None:
    secret = Secret("sk-canary-0123456789")
    assert "canary" not in repr(secret) and "canary" not in str(secret) and "canary" not in f"{secret}"
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(secret)


def test_import_is_cheap() -> None:
    import subprocess
    import sys

    code = "import sys, dashmagic; print('requests' in sys.modules, 'IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_all_exports_resolve() -> None:
    for name in dashmagic.__all__:
        assert getattr(dashmagic, name) is not None
