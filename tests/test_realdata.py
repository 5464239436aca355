"""Real captures (``../shared/realdata``) and hand-made fixtures (``tests/fixtures/current``) read
right end to end: answer, reasoning, code, sources, calls, usage, request id, finish reason; in
text and HTML; streamed and not; with and without ``incremental_output`` asked; as deltas and
rewritten as snapshots; at every chunk boundary; and replayed byte for byte over a real loopback
socket through ``dashmagic.stream()`` / ``dashmagic.run()``.

Chunk boundaries: every capture is decoded fed one byte at a time (so every position of the body
is a chunk boundary, inside multi-byte UTF-8 characters too), and small bodies are also split in
two at every byte; the decoded events must equal the unsplit ones, and the folded trace is checked
from them (folding is a pure function of the events).

The captures are beside the checkout only in development and CI; without them those cases skip
with the reason, and the fixtures (same shapes, hand-made) always run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import dashmagic
from dashmagic.errors import ApiError
from dashmagic.protocol import format_for
from dashmagic.request import CallOptions
from dashmagic.trace import Answer, CodeExecution, FunctionCall, Reasoning, SearchResults, Trace, UnknownPart

from _current import decode, fold, fold_payloads, payloads_of, replay_server, sse_body, to_snapshots

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "current"


def _find_realdata() -> Path | None:
    configured = os.environ.get("DASHMAGIC_REALDATA")
    if configured:
        return Path(configured) if Path(configured).is_dir() else None
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "realdata"
        if candidate.is_dir():
            return candidate
    return None


REALDATA = _find_realdata()
SKIP_REAL = "the real captures (../shared/realdata, or $DASHMAGIC_REALDATA) are not beside this checkout"
KEY = "sk-realdata-test-key-000"


@dataclass(frozen=True)
class Case:
    """One reply, how it was asked for, and what it must read as."""

    name: str
    body: Callable[[], bytes]
    prompt: str
    call: dict[str, Any]
    stream: bool
    check: Callable[[Trace], None]
    real: bool = False
    content_type: str = "text/event-stream;charset=UTF-8"
    expect_body: dict[str, Any] = field(default_factory=dict)

    def skip(self) -> None:
        if self.real and REALDATA is None:
            pytest.skip(SKIP_REAL)

    def bytes(self) -> bytes:
        self.skip()
        return self.body()


def _real(name: str) -> Callable[[], bytes]:
    def read() -> bytes:
        assert REALDATA is not None
        return (REALDATA / name).read_bytes()

    return read


def _fixture(name: str) -> Callable[[], bytes]:
    return lambda: (FIXTURES / name).read_bytes()


def kinds(trace: Trace) -> list[str]:
    return [step.kind for step in trace.steps]


# -- what each reply must read as -------------------------------------------------------------


def check_real_reasoning(t: Trace) -> None:
    assert t.answer == "1+1 等于 **2**。这是数学中最基本的加法运算之一。\n\n如果你有其他关于数学、科学或任何领域的问题，欢迎继续提问！😊"
    assert t.reasoning == "嗯，用户问的是“1+1是多少"
    assert kinds(t) == ["reasoning", "answer"]
    assert (t.usage.total_tokens, t.usage.reasoning_tokens) == (69, 10)
    assert t.request_id == "ab9f3446-9bbf-963e-9754-2d6543343d7e"
    assert t.finish_reason == "stop"


def check_real_plain_deltas(t: Trace) -> None:
    # The "answer None" defect: a delta stream whose last events are empty.
    assert t.answer == "1+1 等于 2。这是最基本的数学加法之一，在十进制计数体系中，任何情况下 1 加上另一个 1 的结果都是 2。"
    assert kinds(t) == ["answer"]
    assert (t.usage.input_tokens, t.usage.output_tokens, t.usage.total_tokens) == (8, 40, 48)
    assert t.request_id == "d272255f-82d7-9cc7-93c5-17ff77024349"
    assert t.finish_reason == "stop"


def check_real_code(t: Trace) -> None:
    assert kinds(t) == ["reasoning", "code_execution", "reasoning", "answer"]
    reasoning = [s.text for s in t.steps if isinstance(s, Reasoning)]
    assert sum(map(len, reasoning)) == 225  # the "225 characters of reasoning"
    assert [b.code for b in t.code_blocks] == ["123**21"]
    assert t.answer is not None and "77269364466549865653073473388030061522211723" in t.answer
    assert t.answer.endswith("共有42位数。")
    assert dict(t.usage.plugins) == {"code_interpreter": 1}
    assert (t.usage.input_tokens, t.usage.reasoning_tokens, t.usage.cached_tokens) == (723, 150, 0)
    assert t.request_id == "752a7de3-d3aa-4aeb-82ab-a8b08b41524b"
    assert t.finish_reason == "stop"
    assert "reasoning_content" not in t.history()[0]


def check_real_tools(t: Trace) -> None:
    (call,) = t.function_calls
    assert (call.index, call.id, call.name) == (0, "call_cec4c19d27624537b583af", "get_current_weather")
    assert call.arguments == {"location": "浙江省杭州市"} and call.arguments_error is None
    assert t.finish_reason == "stop" and t.request_id == "67300049-c108-9987-b1c1-8e0ee2de6b5d"
    assert t.history() == [{"role": "assistant", "content": "", "tool_calls": [{
        "id": "call_cec4c19d27624537b583af", "type": "function", "index": 0,
        "function": {"name": "get_current_weather", "arguments": '{"location": "浙江省杭州市"}'}}]}]


def check_real_calculator(t: Trace) -> None:
    # The seed's generation, non-streamed, no Thought:/Final Answer: markers (protocol-current §7).
    assert kinds(t) == ["plugin_call", "plugin_result", "answer"]
    assert t.answer == "The result of the expression \\(1 + 2 \\times 3 - \\frac{4}{5}\\) is approximately 6.2."
    assert t.request_id == "3659340f-7dad-9815-bd11-ce6c6eb4d1c2"


def check_real_pdf(t: Trace) -> None:
    assert t.answer is not None and t.answer.startswith("这篇文档是中国国民经济和社会发展第十四个五年规划")
    assert t.usage.total_tokens == 365 and t.request_id == "d1eb2274-35cc-97fb-b60a-570fab96ab0b"


def check_fixture_code(t: Trace) -> None:
    # thinking → code → thinking → code → thinking → answer; the transient empty-code entries and
    # the cumulative tool_info list give one step per entry, filled in place.
    assert kinds(t) == ["reasoning", "code_execution", "reasoning", "code_execution", "reasoning", "answer"]
    codes = [s for s in t.steps if isinstance(s, CodeExecution)]
    assert [(c.index, c.code) for c in codes] == [
        (0, "sum(range(1, 11)) / 10"), (1, "import statistics\nstatistics.median(range(1, 11))")]
    assert [s.text for s in t.steps if isinstance(s, Reasoning)] == [
        "The user wants the mean of 1..10; I'll compute it.", "It printed 5.5. Now check the median too.",
        "Median is 5.5 as well."]
    assert t.answer == "The mean of 1..10 is **5.5**, and so is the median."
    assert dict(t.usage.plugins) == {"code_interpreter": 2} and t.usage.input_tokens == 700
    assert t.request_id == "0c0de000-0000-4000-8000-00000000c0de" and t.finish_reason == "stop"


def check_fixture_search(t: Trace) -> None:
    (search,) = [s for s in t.steps if isinstance(s, SearchResults)]
    assert [s.index for s in search.sources] == [1, 2, 3, 4, 5]  # later `search_results: []` kept them
    assert search.sources[0].title == "Source 1 <b>title</b>" and search.sources[0].url == "https://example1.org/page?a=1&b=2"
    assert t.answer == ("pandas 3.0 makes copy-on-write the default [1] and strings use a new dtype [ref_2]; "
                        "see also [3][4] and [5].")
    assert kinds(t) == ["search", "answer"]
    assert dict(t.usage.plugins) == {"search": 1}
    assert t.request_id == "5ea4c000-0000-4000-8000-000000005ea4"


def check_fixture_parallel(t: Trace) -> None:
    calls = t.function_calls
    assert [(c.index, c.id, c.name, c.arguments) for c in calls] == [
        (0, "call_aaa111", "get_weather", {"location": "杭州"}), (1, "call_bbb222", "get_weather", {"location": "上海"})]
    assert t.finish_reason == "tool_calls"
    (message,) = t.history()
    # The defect: history kept only the first fragment '{"location": "'.
    assert [c["function"]["arguments"] for c in message["tool_calls"]] == ['{"location": "杭州"}', '{"location": "上海"}']
    assert [c["id"] for c in message["tool_calls"]] == ["call_aaa111", "call_bbb222"]
    assert "reasoning_content" not in message


def check_fixture_length(t: Trace) -> None:
    # The non-streamed thinking reply cut by length: its reasoning is its only text.
    assert kinds(t) == ["reasoning"]
    assert len(t.reasoning) == 2650 and t.finish_reason == "length"
    assert t.usage.reasoning_tokens == 800 and t.answer is None
    assert t.history() == []  # an empty assistant message would be refused on the next turn


def check_fixture_multimodal(t: Trace) -> None:
    assert kinds(t) == ["reasoning", "answer"]
    assert t.reasoning == "Two plus two is four." and t.answer == "2 + 2 = **4**"
    assert t.history() == [{"role": "assistant", "content": [{"text": "2 + 2 = **4**"}]}]


def check_fixture_unknown(t: Trace) -> None:
    assert t.answer == "Hello, world."
    unknown = {s.where: s.value for s in t.steps if isinstance(s, UnknownPart)}
    assert set(unknown) == {"output.future_key", "output.tool_info[0]", "message.annotations"}
    assert unknown["output.tool_info[0]"]["type"] == "web_extractor"
    assert len([s for s in t.steps if isinstance(s, Answer)]) == 1


WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}

CASES = [
    Case("real-reasoning-sse", _real("cnblogs-single-generation-message-reasoning-sse-normalized.response.body.txt"),
         "请问 1+1 是多少？", {"model": "qwen-plus-latest", "thinking_budget": 10}, True, check_real_reasoning, real=True,
         expect_body={"enable_thinking": True, "thinking_budget": 10, "incremental_output": True}),
    Case("real-plain-deltas-sse", _real("cnblogs-single-generation-message-sse-normalized.response.body.txt"),
         "请问 1+1 是多少？", {"model": "qwen-max", "seed": 1234}, True, check_real_plain_deltas, real=True,
         expect_body={"incremental_output": True, "seed": 1234}),
    Case("real-code-interpreter-sse", _real("cnblogs-single-generation-message-with-code-interpreter-sse.response.body.txt"),
         "123的21次方是多少？", {"model": "qwen3-max-preview", "code_interpreter": True}, True, check_real_code, real=True,
         expect_body={"enable_thinking": True, "enable_code_interpreter": True, "incremental_output": True}),
    Case("real-tools-nosse", _real("cnblogs-single-generation-message-with-tools-nosse.response.body.txt"),
         "杭州现在的天气如何？", {"model": "qwen-max", "tools": [WEATHER], "tool_choice": "get_weather"}, False,
         check_real_tools, real=True, content_type="application/json"),
    Case("real-calculator-plugin-nosse", _real("dashscope4j-readme-calculator-plugin-nosse.response.body.json"),
         "1+2*3-4/5=?", {"plugins": ["calculator"]}, False, check_real_calculator, real=True,
         content_type="application/json"),
    Case("real-pdf-plugin-nosse", _real("dashscope4j-readme-pdf-extracter-plugin-nosse.response.body.json"),
         "请总结这篇文档", {"plugins": ["pdf_extracter"]}, False, check_real_pdf, real=True,
         content_type="application/json"),
    Case("fixture-thinking-code-sse", _fixture("thinking-code-sse.txt"), "mean and median of 1..10",
         {"code_interpreter": True}, True, check_fixture_code,
         expect_body={"enable_thinking": True, "enable_code_interpreter": True}),
    Case("fixture-search-sse", _fixture("search-sse.txt"), "pandas 3.0?",
         {"search": {"strategy": "max", "citations": True}}, True, check_fixture_search,
         expect_body={"enable_search": True, "search_options": {
             "search_strategy": "max", "enable_citation": True, "enable_source": True}}),
    Case("fixture-parallel-tools-sse", _fixture("parallel-tools-sse.txt"), "weather in 杭州 and 上海",
         {"tools": [WEATHER]}, True, check_fixture_parallel, expect_body={"tools": [WEATHER]}),
    Case("fixture-thinking-length-nosse", _fixture("thinking-length-nosse.json"), "sum of odd numbers",
         {"model": "deepseek-v4-pro", "thinking": True}, False, check_fixture_length, content_type="application/json",
         expect_body={"enable_thinking": True}),
    Case("fixture-multimodal-sse", _fixture("multimodal-sse.txt"), "2+2?", {"model": "qwen3.5-plus"}, True,
         check_fixture_multimodal),
    Case("fixture-unknown-parts-sse", _fixture("unknown-parts-sse.txt"), "hi", {}, True, check_fixture_unknown),
]
IDS = [c.name for c in CASES]


def request_of(case: Case) -> Any:
    options = CallOptions.of(case.prompt, stream=case.stream, **case.call)
    return format_for(options).build(options, base_url="https://dashscope.aliyuncs.com/api/v1").info


def events_of(case: Case, body: bytes) -> list[Any]:
    if not case.stream:
        return [json.loads(body.decode("utf-8-sig"))]
    return payloads_of(decode([body]))


# -- the pure pipeline ------------------------------------------------------------------------------


@pytest.mark.parametrize("incremental", [True, False], ids=["deltas-asked", "nothing-asked"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_reads_right_as_sent(case: Case, incremental: bool) -> None:
    body = case.bytes()
    payloads = events_of(case, body)
    case.check(fold_payloads(payloads, request_of(case), incremental=incremental))


@pytest.mark.parametrize("incremental", [True, False], ids=["deltas-asked", "nothing-asked"])
@pytest.mark.parametrize("case", [c for c in CASES if c.stream], ids=[c.name for c in CASES if c.stream])
def test_reads_right_as_snapshots(case: Case, incremental: bool) -> None:
    """The same replies, every event repeating the whole text so far: same trace."""
    snapshots = to_snapshots(events_of(case, case.bytes()))
    case.check(fold_payloads(snapshots, request_of(case), incremental=incremental))
    # …and through the SSE framing, as a server would send it.
    case.check(fold([sse_body(snapshots)], request_of(case), incremental=incremental))


@pytest.mark.parametrize("case", [c for c in CASES if c.stream], ids=[c.name for c in CASES if c.stream])
def test_every_chunk_boundary(case: Case) -> None:
    body = case.bytes()
    reference = decode([body])
    one_byte = [body[i : i + 1] for i in range(len(body))]
    assert decode(one_byte) == reference
    case.check(fold(one_byte, request_of(case), incremental=True))
    if len(body) <= 6000:
        for split in range(len(body) + 1):
            assert decode([body[:split], body[split:]]) == reference, split


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_text_and_html(case: Case) -> None:
    trace = fold_payloads(events_of(case, case.bytes()), request_of(case), incremental=True)
    bundle = trace._repr_mimebundle_()
    text, html = bundle["text/plain"], bundle["text/html"]
    assert text == str(trace)
    for step in trace.steps:
        if isinstance(step, Answer):
            assert step.text.splitlines()[-1].replace("**", "") in text.replace("**", "")
        if isinstance(step, CodeExecution):
            assert step.code.splitlines()[0] in text
        if isinstance(step, FunctionCall):
            assert step.name in text and step.name in html
    for source in trace.sources:
        assert source.title in text
    assert "<b>title</b>" not in html and "<script>" not in html  # untrusted fields are escaped


# -- byte for byte over a loopback socket -----------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_replayed_over_loopback(case: Case) -> None:
    body = case.bytes()
    with replay_server(body, case.content_type) as server:
        options = dict(case.call, api_key=KEY, base_url=server.base_url, retries=1, embed_images=False)
        if case.stream:
            snapshots = list(dashmagic.stream(case.prompt, **options))
            trace = snapshots[-1]
            assert len(snapshots) == len(events_of(case, body)) + 1  # one per event, then the final
        else:
            trace = dashmagic.run(case.prompt, **options)
    assert trace.status == "complete", trace.error
    case.check(trace)
    (sent,) = server.requests
    parameters = sent["body"]["parameters"]
    for key, value in case.expect_body.items():
        assert parameters[key] == value, key
    if not case.stream:
        assert "incremental_output" not in parameters  # the service refuses it on non-streamed calls
    assert KEY not in repr(trace) and KEY not in str(trace)


# -- real refusals ----------------------------------------------------------------------------------


def test_real_parameter_error_event_is_one_line_with_request_id() -> None:
    if REALDATA is None:
        pytest.skip(SKIP_REAL)
    body = (REALDATA / "cnblogs-parameter-error-sse-normalized.response.body.txt").read_bytes()
    with replay_server(body, "text/event-stream;charset=UTF-8") as server:
        with pytest.raises(ApiError) as info:
            list(dashmagic.stream("1+1", api_key=KEY, base_url=server.base_url, retries=1))
    error = info.value
    assert (error.status_code, error.code, error.request_id) == (400, "InvalidParameter", "7671ecd8-93cc-9ee9-bc89-739f0fd8b809")
    assert "\n" not in str(error) and error.trace is not None and error.trace.status == "error"


def test_real_plugin_incremental_refusal_hints_at_todays_interpreter() -> None:
    if REALDATA is None:
        pytest.skip(SKIP_REAL)
    body = (REALDATA / "dashscopego-code-interpreter-plugin-incremental-error.response.body.json").read_bytes()
    with replay_server(body, "application/json", status=400) as server:
        with pytest.raises(ApiError) as info:
            list(dashmagic.stream("画图", plugins=["code_interpreter"], parameters={"incremental_output": True},
                                  api_key=KEY, base_url=server.base_url, retries=1))
    message = str(info.value)
    assert "don't support incremental_output" in message and "--code-interpreter" in message
    assert "\n" not in message


def test_magic_code_interpreter_cell_over_loopback_with_chat(shell: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """``%%dashscope --code-interpreter --chat`` end to end: the flags, the model default, the
    fold, and a reasoning-free turn kept for the next cell."""
    from IPython.utils.capture import capture_output

    body = (FIXTURES / "thinking-code-sse.txt").read_bytes()
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    magics = shell.magics_manager.registry["DashScopeMagics"]  # type: ignore[attr-defined]
    with replay_server(body, "text/event-stream;charset=UTF-8") as server:
        monkeypatch.setattr(magics, "base_url", server.base_url)
        monkeypatch.setattr(magics, "live_updates", False)
        with capture_output() as captured:
            shell.run_cell_magic("dashscope", "--code-interpreter --stream --chat --out dm_t",  # type: ignore[attr-defined]
                                 "mean and median of 1..10")
    trace = shell.user_ns["dm_t"]  # type: ignore[attr-defined]
    check_fixture_code(trace)
    (sent,) = server.requests
    assert sent["body"]["model"] == "qwen3-max"
    assert sent["body"]["parameters"]["enable_code_interpreter"] is True
    assert "X-DashScope-Plugin" not in sent["headers"]
    assert magics._chat == trace.turn()
    assert all("reasoning_content" not in m for m in magics._chat)
    shown = "".join(o.data.get("text/plain", "") for o in captured.outputs)
    assert "sum(range(1, 11)) / 10" in shown and KEY not in shown
    magics._chat.clear()


@pytest.mark.parametrize(("capture", "prompt", "options"), [
    ("cnblogs-single-generation-message-with-code-interpreter-sse", "123的21次方是多少？",
     {"model": "qwen3-max-preview", "code_interpreter": True}),
    ("cnblogs-single-generation-message-reasoning-sse-normalized", "请问 1+1 是多少？",
     {"model": "qwen-plus-latest", "thinking_budget": 10}),
])
def test_our_request_is_the_captured_request(capture: str, prompt: str, options: dict[str, Any]) -> None:
    """The keyword arguments a user would guess build exactly the body the real client sent."""
    if REALDATA is None:
        pytest.skip(SKIP_REAL)
    captured = json.loads((REALDATA / f"{capture}.request.body.json").read_text(encoding="utf-8-sig"))
    call = dashmagic.build_call(prompt, stream=True, system=None, **options)
    assert call.body == captured
    assert call.url.endswith("/api/v1/services/aigc/text-generation/generation")
    assert call.headers["Accept"] == "text/event-stream" and call.headers["X-DashScope-SSE"] == "enable"
