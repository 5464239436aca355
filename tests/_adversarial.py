"""Adversarial model/plugin/server text of a given size, as real Trace objects.

Shared by ``tests/test_render_linear.py`` (a hang guard) and ``benchmarks/render_cost.py`` (time
per MB). Each kind is one pattern that made 0.1 quadratic somewhere (issue 10), repeated to the
size asked for; the trace carries it in every place text is shown (thought, code_interpreter
arguments and result, answer, error message), built by the real ``TraceBuilder``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from dashmagic.errors import api_error_for
from dashmagic.events import TraceBuilder
from dashmagic.trace import RequestInfo, Trace

__all__ = ["KINDS", "PLACES", "adversarial_text", "adversarial_trace"]

_PROSE = "The quick brown fox jumps over the lazy dog; 数据行,结果如下。 See https://example.com/a.\n"


def _repeat(unit: str) -> Callable[[int], str]:
    return lambda size: (unit * (size // len(unit) + 1))[:size]


#: kind -> text of exactly ``size`` characters.
KINDS: Mapping[str, Callable[[int], str]] = {
    "prose": _repeat(_PROSE),
    # The URL redactor on every rendered string (0.1: 20,000 × "http://" took 36 s).
    "http": _repeat("http://"),
    # code_interpreter result sections that never close (0.1: 20,000 headers, 107 s).
    "sections": _repeat("a:\n```x\n"),
    # Markdown images without a closing paren (0.1: 10,000 × "![a](", 45 s).
    "images": _repeat("![a]("),
    # Spaces after an opening fence (0.1: 40,000 spaces, 8.9 s in the fence regex).
    "spaces": lambda size: "```\n" + " " * max(size - 5, 0) + "x",
    # An error page of unclosed titles (0.1: 20,000 × "<title>", 17 s).
    "titles": _repeat("<title>"),
    # Trojan Source: every other character a bidi control to be marked.
    "bidi": _repeat("a\u202eb\u2066"),
}

#: Where the text goes; each place gets an equal share of the size.
PLACES = ("thought", "code", "result", "answer", "error")


def adversarial_text(kind: str, size: int) -> str:
    return KINDS[kind](size)


def adversarial_trace(kind: str, size: int) -> Trace:
    """A code_interpreter exchange whose every text field is ``kind`` (``size`` chars in all)."""
    part = adversarial_text(kind, max(size // len(PLACES), 1))
    builder = TraceBuilder(RequestInfo(model="qwen-plus", plugins=("code_interpreter",), prompt="p"))
    messages = [
        {
            "role": "assistant",
            "content": "Thought: " + part,
            "plugin_call": {"name": "code_interpreter", "arguments": part},
        },
        {
            "role": "plugin",
            "name": "code_interpreter",
            "content": part,
            "status": {"code": 200, "name": "Success", "message": "ok"},
        },
        {"role": "assistant", "content": "Thought: done\nFinal Answer: " + part},
    ]
    payload = {
        "output": {"choices": [{"finish_reason": "stop", "messages": messages}]},
        "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
        "request_id": "adversarial",
    }
    builder.feed(payload)
    builder.finish()
    return builder.fail(api_error_for(502, "BadGateway", part, "adversarial"))
