"""Views of today's trace steps (thinking, built-in code interpreter, web search, function calls,
unknown parts) in text/html and text/plain, live and finished, and under hostile payloads."""

from __future__ import annotations

import html
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from _hostile import BAD_URLS, BIDI_CTRL, DEEP_RAW, H, HUGE_ARGS, assert_safe_html, hostile_current_steps, hostile_trace
from _render_current import (
    ANSWER,
    CODE,
    SOURCES,
    THINK_1,
    THINK_2,
    function_call_trace,
    search_trace,
    streaming_snapshots,
    thinking_code_trace,
    unknown_trace,
)

from dashmagic.render import mimebundle
from dashmagic.render.citations import link_citations
from dashmagic.render.html import render_html
from dashmagic.render.markdown import markdown_to_html
from dashmagic.render.steps import STEP_VIEWS, code_execution, function_call, reasoning, search, step_view, unknown
from dashmagic.render.steps.code_execution import NO_OUTPUT_NOTE
from dashmagic.render.text import render_text
from dashmagic.trace import (
    Answer,
    CodeExecution,
    FunctionCall,
    Reasoning,
    SearchResults,
    Source,
    Trace,
    UnknownPart,
    Usage,
    freeze,
)

STATUSES = ["complete", "partial", "interrupted", "error", "pending"]
_BLOCK = re.compile(r'<(?:details|div) class="dm-(?:step dm-)?(reasoning|code-exec|answer|search|function)"( open)?')


def _body(markup: str) -> str:
    return markup.split("</style>", 1)[1]


def _visible(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", _body(markup)))


def _blocks(markup: str) -> list[tuple[str, bool]]:
    """``[(kind, open), ...]`` of today's blocks, in document order."""
    return [(m.group(1), m.group(2) is not None) for m in _BLOCK.finditer(markup)]


# -- the registry ------------------------------------------------------------------------------


def test_every_new_kind_has_its_own_view() -> None:
    expected = {
        "reasoning": reasoning.VIEW,
        "code_execution": code_execution.VIEW,
        "search": search.VIEW,
        "function_call": function_call.VIEW,
        "unknown": unknown.VIEW,
    }
    for kind, view in expected.items():
        assert STEP_VIEWS[kind] is view
    steps = (Reasoning("r"), CodeExecution("c"), SearchResults(), FunctionCall(0), UnknownPart("w"))
    assert [step_view(s) for s in steps] == list(expected.values())


# -- thinking + built-in code interpreter ----------------------------------------------------


def test_thinking_and_code_in_order_folded_when_done() -> None:
    out = render_html(thinking_code_trace())
    assert_safe_html(out)
    assert _blocks(out) == [("reasoning", False), ("code-exec", True), ("reasoning", False), ("answer", False)]
    assert '<span class="dm-plugin">Thinking</span>' in out
    assert f'<span class="dm-badge dm-info">{len(THINK_1)} chars</span>' in out
    assert f'<div class="dm-reasoning-text">{html.escape(THINK_2)}</div>' in out
    assert (
        '<span class="dm-plugin">code_interpreter</span> <span class="dm-display">(built-in, python)</span> '
        '<span class="dm-badge dm-info">no output returned</span>'
    ) in out
    assert '<span class="tok-mi">123</span><span class="tok-o">**</span><span class="tok-mi">21</span>' in out
    assert f'<div class="dm-note">{NO_OUTPUT_NOTE}</div>' in out
    assert out.count('<pre class="dm-code">') == 1
    assert "77269364466549865653073473388030061522211723" in _visible(out)


def test_thinking_transcript() -> None:
    text = render_text(thinking_code_trace())
    lines = text.split("\n")
    assert lines[0] == f"[reasoning] {len(THINK_1)} chars"
    assert lines[1] == "    " + THINK_1.split("\n")[0]
    start = lines.index("[code execution] built-in code interpreter (python):")
    assert lines[start + 1 : start + 3] == [f"    {CODE}", f"    ({NO_OUTPUT_NOTE})"]
    assert lines[start + 3] == f"[reasoning] {len(THINK_2)} chars"
    assert text.index("[answer]") > text.index(THINK_2.split("\n")[-1])
    assert lines[-1] == (
        "qwen3-max · 723 in / 254 out tokens (150 reasoning, 0 cached) · code_interpreter×1 · 4.8 s"
        " · request 752a7de3-d3aa-4aeb-82ab-a8b08b41524b"
    )


def test_streaming_snapshots_keep_order_and_fold_rule() -> None:
    """Reasoning is open exactly while it is the last step of a streaming trace; code appears in
    place once, never duplicated, and the order of blocks only ever grows at the end."""
    previous: list[str] = []
    for trace in streaming_snapshots():
        out = render_html(trace)
        assert_safe_html(out)
        blocks = _blocks(out)
        kinds = [kind for kind, _ in blocks]
        assert kinds[: len(previous)] == previous  # nothing moves, nothing vanishes
        previous = kinds
        last = trace.steps[-1]
        for (kind, is_open), step in zip(blocks, trace.steps):
            if kind == "reasoning":
                assert is_open == (step is last and not trace.done), (kind, trace.status, len(trace.steps))
        codes = [s for s in trace.steps if isinstance(s, CodeExecution) and s.code]
        assert out.count('<pre class="dm-code">') == len(codes) <= 1
    assert previous == ["reasoning", "code-exec", "reasoning", "answer"]


def test_live_reasoning_badge_and_text() -> None:
    trace = streaming_snapshots()[1]
    out = render_html(trace)
    assert f'<details class="dm-step dm-reasoning" open><summary><span class="dm-plugin">Thinking</span> ' \
           f'<span class="dm-badge dm-running">thinking… {len(THINK_1)} chars</span></summary>' in out
    assert render_text(trace).startswith(f"[reasoning] {len(THINK_1)} chars, thinking…\n")
    folded = render_html(trace.replace(status="complete"))
    assert '<details class="dm-step dm-reasoning"><summary>' in folded
    assert '<span class="dm-args">用户问的是123的21次方是多少。' in folded  # a preview when folded


def test_empty_code_entry_says_writing_while_streaming() -> None:
    trace = streaming_snapshots()[2]
    assert isinstance(trace.steps[-1], CodeExecution) and trace.steps[-1].code == ""
    out = render_html(trace)
    assert '<span class="dm-badge dm-running">writing code…</span>' in out
    assert '<div class="dm-body"><div class="dm-muted">writing code…</div></div>' in out
    assert _blocks(out) == [("reasoning", False), ("code-exec", True)]  # folded: code follows
    assert "[code execution] built-in code interpreter (python): writing code…" in render_text(trace)
    done = trace.replace(status="interrupted")
    assert "no code sent" in render_html(done) and "(no code sent)" in render_text(done)
    running = streaming_snapshots()[3]
    assert '<span class="dm-badge dm-running">running…</span>' in render_html(running)


# -- search and citations ------------------------------------------------------------------


def test_sources_list() -> None:
    out = render_html(search_trace())
    assert_safe_html(out)
    listing = out.split('<ul class="dm-sources">', 1)[1].split("</ul>", 1)[0]
    assert listing.count("<li>") == 3
    assert (
        '<li><span class="dm-src-index">[1]</span> <a href="https://docs.python.org/3/whatsnew/3.13.html" '
        'rel="noopener noreferrer nofollow" target="_blank">Python 3.13 release notes</a> '
        '<span class="dm-src-site">docs.python.org</span></li>'
    ) in listing
    assert 'href="https://oss.example.com/r.pdf"' in listing  # signature stripped
    assert "favicon" not in out and "icon.png" not in out  # icons are never fetched or shown
    assert '<span class="dm-badge dm-info">3 sources</span>' in out
    assert '<div class="dm-section">Extra tool info</div>' in out and "web_extractor" in out
    assert "1200 in / 88 out tokens (1024 cached) · search×1" in out


def test_citations_link_to_their_sources() -> None:
    out = render_html(search_trace())
    answer = out.split('<div class="dm-answer">', 1)[1]
    assert (
        '2024<a class="dm-cite" href="https://docs.python.org/3/whatsnew/3.13.html" '
        'title="Python 3.13 release notes — docs.python.org" rel="noopener noreferrer nofollow" '
        'target="_blank">[1]</a>,'
    ) in answer
    assert 'href="https://peps.python.org/pep-0719/"' in answer and ">[ref_2]</a>" in answer
    assert 'href="https://oss.example.com/r.pdf" title="Signed report">[3]</a>' not in answer  # has rel
    assert '<a class="dm-cite" href="https://oss.example.com/r.pdf" title="Signed report" ' in answer
    assert "<code>xs[1]</code>" in answer  # code is not a citation
    assert "nor is [9]." in answer  # no source 9: left as text
    assert answer.count('class="dm-cite"') == 3


def test_citation_text_transcript() -> None:
    text = render_text(search_trace())
    assert "[search] 3 sources\n    [1] Python 3.13 release notes — docs.python.org · https://docs.python.org/3/whatsnew/3.13.html" in text
    assert "    [3] Signed report · https://oss.example.com/r.pdf\n" in text
    assert "released on 7 October 2024[1]" in text  # the answer is verbatim
    assert "LEAKED" not in text and "favicon" not in text


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ('<p><a href="https://x.example/">see [1]</a> [1]</p>', 1),  # links do not nest
        ('<pre><code>a[1] = b[2]\n</code></pre><p>[2]</p>', 1),
        ('<p><a href="https://x.example/[1]" title="[1]">x</a></p>', 0),  # attributes untouched
        ("<p>[1][2][ref_1][ref_2][3][ref_][01]</p>", 5),  # [01] is index 1
        ("<p>[1 ] [ 1] [ref1] [ref_x] [-1]</p>", 0),
    ],
)
def test_link_citations_cases(markup: str, expected: int) -> None:
    sources = (Source(1, "one", "https://one.example/"), Source(2, "two", "https://two.example/"))
    out = link_citations(markup, sources)
    assert out.count('class="dm-cite"') == expected
    assert re.sub(r'<a class="dm-cite"[^>]*>(\[[^\]]*\])</a>', r"\1", out) == markup  # only wrapped


def test_citation_to_a_non_web_source_is_not_a_link() -> None:
    sources = (Source(1, "evil", "javascript:window.__pwned=1"),)
    out = link_citations(markdown_to_html("x[1]"), sources)
    assert out == '<p>x<span class="dm-cite" title="evil">[1]</span></p>'
    assert link_citations("<p>[1]</p>", ()) == "<p>[1]</p>"


# -- function calls ------------------------------------------------------------------------------


def test_parallel_function_calls_and_the_ask_line() -> None:
    trace = function_call_trace()
    out = render_html(trace)
    assert_safe_html(out)
    assert _blocks(out) == [("function", True), ("function", True)]
    assert (
        '<span class="dm-plugin">get_current_weather</span> <span class="dm-display">(function call #0)</span> '
        '<span class="dm-args">{&quot;location&quot;: &quot;浙江省杭州市&quot;}</span> '
        '<span class="dm-badge dm-info">requested</span>'
    ) in out
    assert "<pre>{\n  &quot;location&quot;: &quot;浙江省杭州市&quot;\n}</pre>" in out
    assert '<dt class="dm-k">id</dt><dd class="dm-v">call_cec4c19d27624537b583af</dd>' in out
    ask = 'the model asks to call get_current_weather(location=&quot;浙江省杭州市&quot;), get_current_time()'
    assert out.count('<div class="dm-asks">') == 1
    assert out.index(f'<div class="dm-asks">{ask}</div>') > out.rindex("get_current_time</span>")
    assert "finish: tool_calls" in out
    text = render_text(trace)
    assert "[function call] get_current_weather (#0, id call_cec4c19d27624537b583af):\n    {\n" in text
    assert "[function call] get_current_time (#1, id call_2):\n    {}\n" in text
    assert '[tool calls] the model asks to call get_current_weather(location="浙江省杭州市"), get_current_time()' in text


def test_no_ask_line_unless_finish_reason_is_tool_calls() -> None:
    trace = function_call_trace(finish_reason="stop")
    assert "<div class=\"dm-asks\">" not in render_html(trace) and "[tool calls]" not in render_text(trace)


def test_arguments_arriving_then_invalid() -> None:
    partial = FunctionCall(0, "call_1", "get_current_weather", '{"location": "', None, "still arriving")
    trace = function_call_trace(steps=(partial,), status="partial", finish_reason=None)
    out = render_html(trace)
    assert '<span class="dm-badge dm-running">arriving…</span>' in out
    assert "not valid JSON" not in out  # no warning while it streams
    assert "<pre>{&quot;location&quot;: &quot;</pre>" in out
    assert "arriving…" in render_text(trace) and "not valid JSON" not in render_text(trace)
    done = trace.replace(status="complete", finish_reason="tool_calls")
    out = render_html(done)
    assert '<span class="dm-badge dm-warn">arguments not JSON</span>' in out
    assert "arguments are not valid JSON; raw text shown" in out
    assert "(arguments are not valid JSON; raw text shown)" in render_text(done)
    assert 'get_current_weather({"location": ")' in render_text(done)


def test_long_arguments_make_a_short_ask_line() -> None:
    args = {"query": "x" * 500, "k": 3}
    call = FunctionCall(0, "c", "search_docs", str(args), freeze(args))
    line = function_call.call_signature(call)
    assert line.startswith('search_docs(query="xxx') and line.endswith("…)") and len(line) < 100


# -- unknown parts ------------------------------------------------------------------------------


def test_unknown_part_is_folded_escaped_json() -> None:
    out = render_html(unknown_trace())
    assert_safe_html(out)
    assert (
        '<details class="dm-step dm-generic"><summary><span class="dm-plugin">unknown part</span> '
        '<span class="dm-display">output.new_thing</span>'
    ) in out
    assert "&lt;b&gt;x&lt;/b&gt;" in out and "<b>x</b>" not in out
    assert '[unknown part: output.new_thing]\n    {\n      "k": [' in render_text(unknown_trace())


# -- footer ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reasoning_tokens", "cached", "expected"),
    [
        (225, 0, "281 in / 442 out tokens (225 reasoning, 0 cached)"),
        (None, 12, "281 in / 442 out tokens (12 cached)"),
        (7, None, "281 in / 442 out tokens (7 reasoning)"),
        (None, None, "281 in / 442 out tokens ·"),
    ],
)
def test_footer_reasoning_and_cached_tokens(reasoning_tokens: int | None, cached: int | None, expected: str) -> None:
    trace = thinking_code_trace(usage=Usage(281, 442, 723, reasoning_tokens=reasoning_tokens, cached_tokens=cached))
    assert expected in render_html(trace) and expected in render_text(trace)


# -- hostile payloads ---------------------------------------------------------------------------


def _current_hostile(status: str) -> Trace:
    steps = (*hostile_current_steps(), Answer(f"{H}[1][ref_2][3][6][7][ref_8][ref_11][12]"))
    return hostile_trace(status, steps=steps, finish_reason="tool_calls")


@pytest.mark.parametrize("status", STATUSES)
def test_hostile_current_steps_are_inert_and_shown(status: str) -> None:
    trace = _current_hostile(status)
    bundle = mimebundle(trace)
    out, text = bundle["text/html"], bundle["text/plain"]
    checker = assert_safe_html(out)
    assert not checker.imgs  # icons are never embedded
    assert all(href.startswith(("https://", "http://")) for href in checker.hrefs)
    assert _visible(out).count(H) > 15  # shown, escaped, not dropped
    assert "dm-invisible" in out and "\u202e" not in out and "\u202e" not in text
    for char in ("\x1b", "\x07", "\x00", "\r"):
        assert char not in out and char not in text
    assert "\\x1b[2J" in text and "⟨U+202E⟩" in text
    assert text.count(H) > 15 and "LEAKED" not in text
    # Citations: only the http(s) sources are links; javascript: sources are spans.
    answer = out.split('<div class="dm-answer">', 1)[1]
    cited = re.findall(r'<a class="dm-cite" href="([^"]*)"', answer)
    # 7 and 8 lose their signature and user:pw; 1, 2, 3 and 6 are not web links, 11 has no URL.
    assert cited == ["https://evil.example/a.png", "http://evil.example/b.png"]
    assert answer.count('<span class="dm-cite"') == 5 and "[12]" in answer


def test_hostile_deep_and_huge_arguments_fall_back_to_raw() -> None:
    out = render_html(_current_hostile("complete"))
    assert html.escape(DEEP_RAW) in out  # json cannot re-indent 5,000 levels: raw text shown
    assert "arguments nest too deep to re-indent; raw text shown" in out
    assert "(extra tool info nests too deep to show as JSON)" in out
    assert "(tuple: cannot be shown as JSON)" in out
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" * 100 in out
    assert len(HUGE_ARGS) > 100_000


def test_hostile_source_fields_in_text_are_plain() -> None:
    text = render_text(_current_hostile("complete"))
    assert f"    [1] {H}" in text and BAD_URLS[0] in text  # shown as text, never a link
    assert "[11] (untitled)" in text


# -- linear passes -----------------------------------------------------------------------------

GUARD_S = 5.0  # CPU seconds: a linear pass takes well under one here (see test_render_linear)


def _cpu(fn: Callable[[], Any]) -> Any:
    box: dict[str, Any] = {}

    def run() -> None:
        start = time.thread_time()
        box["value"] = fn()
        box["cpu"] = time.thread_time() - start

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive() and "value" in box, "a quadratic path on adversarial text?"
    assert box["cpu"] < GUARD_S, f"{box['cpu']:.1f} s of CPU: a quadratic path on adversarial text?"
    return box["value"]


@pytest.mark.parametrize(
    "unit", ["[1]", "[ref_", "[1", "<a ", '"<a "[1]', "`[1]` ", "[" * 3, "[ref_1]\u202e"]
)
def test_citations_and_new_views_are_linear(unit: str) -> None:
    size = 200_000
    text = (unit * (size // len(unit) + 1))[:size]
    sources = tuple(Source(i, f"s{i}", f"https://s{i}.example/") for i in range(1, 50))
    steps = (
        Reasoning(text),
        CodeExecution(text),
        SearchResults(sources),
        FunctionCall(0, text, text, text, None, "bad"),
        UnknownPart(text, text),
        Answer(text),
    )
    trace = thinking_code_trace(steps=steps, finish_reason="tool_calls")
    out = _cpu(lambda: render_html(trace))
    assert len(out) > size
    assert len(_cpu(lambda: render_text(trace))) > size
