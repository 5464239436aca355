"""Traces of today's generation (thinking, built-in code interpreter, web search, function calls),
built directly from the step dataclasses: the renderers are tested independently of the wire
format that will produce them. Texts follow the real captures in ``shared/realdata``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from dashmagic.trace import (
    Answer,
    CodeExecution,
    FunctionCall,
    Reasoning,
    RequestInfo,
    SearchResults,
    Source,
    Trace,
    UnknownPart,
    Usage,
    freeze,
)

__all__ = [
    "REQUEST_ID",
    "THINK_1",
    "THINK_2",
    "ANSWER",
    "CODE",
    "SOURCES",
    "SEARCH_ANSWER",
    "thinking_code_trace",
    "streaming_snapshots",
    "search_trace",
    "function_call_trace",
    "unknown_trace",
    "english_thinking_code_trace",
]

REQUEST_ID = "752a7de3-d3aa-4aeb-82ab-a8b08b41524b"
THINK_1 = (
    "用户问的是123的21次方是多少。这是一个数学计算问题，我需要计算123^21的值。\n\n"
    "我可以使用代码计算器工具来计算这个大数。"
)
THINK_2 = "结果是一个非常大的数字：77269364466549865653073473388030061522211723\n\n我需要将这个结果清晰地呈现给用户。"
CODE = "123**21"
ANSWER = "123的21次方是：\n\n77269364466549865653073473388030061522211723\n\n这是一个非常大的数字，共有44位数。"

SOURCES = (
    Source(1, "Python 3.13 release notes", "https://docs.python.org/3/whatsnew/3.13.html", "docs.python.org",
           "https://docs.python.org/favicon.ico"),
    Source(2, "PEP 719 – Python 3.13 Release Schedule", "https://peps.python.org/pep-0719/", "peps.python.org",
           "https://peps.python.org/favicon.ico"),
    Source(3, "Signed report", "https://oss.example.com/r.pdf?OSSAccessKeyId=LEAKED&Signature=LEAKED", "",
           "https://oss.example.com/icon.png?Signature=LEAKED"),
)
SEARCH_ANSWER = (
    "Python 3.13 was released on 7 October 2024[1], with an experimental free-threaded build[ref_2]. "
    "See the report[3]; `xs[1]` in code is not a citation, nor is [9]."
)


def _usage(reasoning: int = 150, plugins: dict[str, int] | None = None) -> Usage:
    return Usage(723, 254, 977, MappingProxyType(plugins or {}), reasoning, 0)


def thinking_code_trace(**changes: Any) -> Trace:
    """The real qwen3-max capture, complete: thinking, ``123**21``, more thinking, the answer."""
    trace = Trace(
        request=RequestInfo(model="qwen3-max", prompt="123的21次方是多少？", stream=True, protocol="builtin_tools"),
        steps=(Reasoning(THINK_1), CodeExecution(CODE), Reasoning(THINK_2), Answer(ANSWER)),
        usage=_usage(plugins={"code_interpreter": 1}),
        request_id=REQUEST_ID,
        model="qwen3-max",
        finish_reason="stop",
        status="complete",
        elapsed=4.8,
    )
    return trace.replace(**changes) if changes else trace


def streaming_snapshots() -> list[Trace]:
    """What a live cell shows, in order: reasoning grows, an empty code entry, its code, more
    reasoning, the answer, then the finished trace."""
    partial = thinking_code_trace(status="partial", finish_reason=None, elapsed=None)
    steps: list[tuple[Any, ...]] = [
        (Reasoning(THINK_1[:8]),),
        (Reasoning(THINK_1),),
        (Reasoning(THINK_1), CodeExecution("")),
        (Reasoning(THINK_1), CodeExecution(CODE)),
        (Reasoning(THINK_1), CodeExecution(CODE), Reasoning(THINK_2[:10])),
        (Reasoning(THINK_1), CodeExecution(CODE), Reasoning(THINK_2)),
        (Reasoning(THINK_1), CodeExecution(CODE), Reasoning(THINK_2), Answer(ANSWER[:12])),
    ]
    return [partial.replace(steps=s) for s in steps] + [thinking_code_trace()]


def search_trace(**changes: Any) -> Trace:
    """A search with three sources (one signed URL) and an answer that cites them."""
    trace = Trace(
        request=RequestInfo(model="qwen-plus", prompt="When was Python 3.13 released?", stream=True,
                            protocol="builtin_tools"),
        steps=(SearchResults(SOURCES, extra=(freeze({"tool": "web_extractor", "result": "ok"}),)),
               Answer(SEARCH_ANSWER)),
        usage=Usage(1200, 88, 1288, MappingProxyType({"search": 1}), None, 1024),
        request_id="5f2c0e9a-search",
        model="qwen-plus",
        finish_reason="stop",
        status="complete",
        elapsed=2.1,
    )
    return trace.replace(**changes) if changes else trace


def function_call_trace(**changes: Any) -> Trace:
    """Two parallel calls (the real capture's first, plus a second) ending ``tool_calls``."""
    calls = (
        FunctionCall(0, "call_cec4c19d27624537b583af", "get_current_weather",
                     '{"location": "浙江省杭州市"}', freeze({"location": "浙江省杭州市"})),
        FunctionCall(1, "call_2", "get_current_time", "{}", freeze({})),
    )
    trace = Trace(
        request=RequestInfo(model="qwen-plus", prompt="杭州天气怎么样？现在几点？", protocol="builtin_tools"),
        steps=calls,
        usage=Usage(211, 8, 219),
        request_id="67300049-c108-9987-b1c1-8e0ee2de6b5d",
        model="qwen-plus",
        finish_reason="tool_calls",
        status="complete",
    )
    return trace.replace(**changes) if changes else trace


def unknown_trace() -> Trace:
    return thinking_code_trace(steps=(UnknownPart("output.new_thing", freeze({"k": [1, "<b>x</b>"]})), Answer("ok")))


#: The same exchange in English, for screenshots (the screenshot machine has no CJK font).
EN_THINK_1 = (
    "The user asks for 123 to the power of 21. That is a 44-digit integer, too large to work out "
    "reliably by hand.\n\nI will compute it exactly with the code interpreter."
)
EN_THINK_2 = (
    "The interpreter gives 77269364466549865653073473388030061522211723. Let me check the size: "
    "log10(123) ≈ 2.0899, times 21 ≈ 43.9, so 44 digits. That matches."
)
EN_ANSWER = (
    "**123²¹ = 77269364466549865653073473388030061522211723**\n\n"
    "It has 44 digits, computed exactly with Python's arbitrary-precision integers."
)


def english_thinking_code_trace(**changes: Any) -> Trace:
    return thinking_code_trace(
        request=RequestInfo(model="qwen3-max", prompt="What is 123**21?", stream=True, protocol="builtin_tools"),
        steps=(Reasoning(EN_THINK_1), CodeExecution(CODE), Reasoning(EN_THINK_2), Answer(EN_ANSWER)),
        **changes,
    )
