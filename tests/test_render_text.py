"""text/plain rendering: the terminal transcript of real seed traces and hostile ones."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from _hostile import BAD_URLS, HOSTILE_MARKDOWN, H, hostile_trace
from _render_seed import PLOT_URL, SEED_NAMES, T2I_URL, fetched, png_bytes, seed_trace

from dashmagic.render.text import render_text
from dashmagic.trace import Answer, ErrorInfo, Thought

SECRETS = ("Signature=", "OSSAccessKeyId", "Expires=", "LEAKED")


def test_calculator_transcript_exact() -> None:
    assert render_text(seed_trace("calculator")) == (
        "[thought] 我应该使用计算器API来进行数学计算。\n"
        "[plugin call] calculator: 12345 * 98765\n"
        "[plugin result] calculator ✓ 200 Success: 12345 * 98765 = 1219253925\n"
        "[thought] 我现在可以作答了。\n"
        "[answer] 12345*98765的结果是1219253925。\n"
        "qwen-plus · 18 in / 116 out tokens · calculator×1 · 1.2 s · "
        "request 2cc7d894-bde2-9181-88ac-85f95dff5e3c"
    )


def test_str_of_trace_uses_render_text() -> None:
    trace = seed_trace("ocr")
    assert str(trace) == render_text(trace)


def test_code_is_indented_and_output_shown() -> None:
    text = render_text(seed_trace("code_equations"))
    assert "[plugin call] code_interpreter (python):\n    from sympy import symbols, Eq, solve\n" in text
    assert "    eq1 = Eq(x + y, 100) # number of heads\n" in text
    assert "[plugin result] code_interpreter ✓ 200 success\n    execute_result:\n        (33, 67)\n" in text
    assert "[answer] 笼中有33只鸡和67只兔子。" in text


def test_figures_without_query_and_embedded_state() -> None:
    trace = seed_trace("code_plot")
    plain = render_text(trace)
    base = PLOT_URL.split("?")[0]
    assert f"    [figure] fig-001: {base} (not fetched)" in plain
    embedded = render_text(trace, images={PLOT_URL: fetched(PLOT_URL, png_bytes())})
    assert f"[figure] fig-001: {base} (embedded)" in embedded
    failed = render_text(trace, images={PLOT_URL: fetched(PLOT_URL, error="timed out after 10 s")})
    assert f"[figure] fig-001: {base} (timed out after 10 s)" in failed


def test_text_to_image_prompt_and_size() -> None:
    text = render_text(seed_trace("text_to_image"))
    assert "[plugin call] text_to_image:\n    prompt: black cat\n    size: 512×512\n" in text
    assert f"[figure] text_to_image: {T2I_URL.split('?')[0]} (not fetched)" in text


def test_hotels_listed_with_display_name() -> None:
    text = render_text(seed_trace("hotel"))
    assert "[plugin call] haozhu_recommend_hotel (酒店推荐插件): 三亚" in text
    assert "    3 hotels, stay 2023-11-21 → 2023-11-22 (1 night)\n    - 三亚山海天大酒店,傲途格精选: 位于三亚市" in text
    assert "    - 三亚艾迪逊酒店 (from ¥2498): " in text and "    - 三亚喜来登度假酒店 (from ¥925): " in text
    assert "| 名称 | 地址 | 特色 |" in text  # the answer's Markdown is kept as text


def test_pdf_file_then_answer() -> None:
    text = render_text(seed_trace("pdf_extracter"))
    lines = text.splitlines()
    assert lines[0] == "[file] https://qianwen-res.oss-cn-beijing.aliyuncs.com/QWEN_TECHNICAL_REPORT.pdf"
    assert lines[1].startswith("[answer] 这篇文档主要介绍了QWEN系列")
    assert lines[-1] == "qwen-plus · 8 in / 82 out tokens · 1.2 s · request f8616d2e-6e4a-990e-a953-0eb5e7561614"


@pytest.mark.parametrize("name", SEED_NAMES)
def test_no_signed_query_in_any_seed(name: str) -> None:
    trace = seed_trace(name)
    images = {PLOT_URL: fetched(PLOT_URL, png_bytes()), T2I_URL: fetched(T2I_URL, error="x")}
    for text in (render_text(trace), render_text(trace, images)):
        assert not any(s in text for s in SECRETS)


def test_signed_urls_in_free_text_are_redacted_but_other_queries_kept() -> None:
    trace = seed_trace("calculator", steps=(
        Thought(f"see {PLOT_URL} and https://example.com/search?q=cats"),
        Answer(f"![fig]({T2I_URL})"),
    ))
    text = render_text(trace)
    assert not any(s in text for s in SECRETS)
    assert PLOT_URL.split("?")[0] in text and "https://example.com/search?q=cats" in text


def test_statuses() -> None:
    partial = seed_trace("calculator", status="partial")
    cut = partial.replace(steps=partial.steps[:2])
    text = render_text(cut)
    assert "[plugin result] calculator running…" in text and text.splitlines()[-2] == "[streaming…]"
    assert "[waiting…]" in render_text(seed_trace("calculator", status="pending", steps=()))
    interrupted = render_text(cut.replace(status="interrupted"))
    assert "[plugin result] calculator interrupted" in interrupted
    assert "[interrupted] partial trace kept" in interrupted
    err = ErrorInfo("RateLimitError", "Requests rate limit exceeded", 429, "Throttling", "r-1")
    errored = render_text(seed_trace("calculator", status="error", error=err, steps=()))
    assert "[error] RateLimitError: Requests rate limit exceeded (HTTP 429, code Throttling, request r-1)" in errored
    noted = render_text(seed_trace("calculator", notes=("retried once after HTTP 503",)))
    assert "[note] retried once after HTTP 503" in noted


def test_control_characters_are_made_visible() -> None:
    trace = seed_trace("calculator", steps=(Thought("a\x1b[2Jb\rc\x07 ok\r\nnext"),))
    text = render_text(trace)
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text
    assert "[thought]\n    a\\x1b[2Jb\\x0dc\\x07 ok\n    next" in text


@pytest.mark.parametrize("status", ["complete", "partial", "interrupted", "error", "pending"])
def test_hostile_text_is_kept_verbatim(status: str) -> None:
    text = render_text(hostile_trace(status))
    assert f"[thought] {H}" in text
    assert text.count(H) > 30  # names, arguments, code, outputs, hotels, OCR, notes, footer...
    assert HOSTILE_MARKDOWN.splitlines()[0] in text
    assert "LEAKED" not in text
    for url in BAD_URLS:
        if url.startswith("javascript:"):
            assert url in text  # plain text: shown, never a link


def test_deterministic() -> None:
    for name in SEED_NAMES:
        assert render_text(seed_trace(name)) == render_text(seed_trace(name))
    assert render_text(hostile_trace()) == render_text(hostile_trace())


@dataclass(frozen=True)
class MadeUpStep:
    """A step kind no renderer knows (as a newer wire format might add one)."""

    query: str
    count: int = 0
    kind: str = "search_sources"


def test_unknown_step_kind_is_shown_as_its_fields() -> None:
    trace = seed_trace("calculator", steps=(Thought("before"), MadeUpStep("杭州\x1b[2J", 3), Answer("after")))
    lines = render_text(trace).split("\n")
    at = lines.index("[search_sources]")
    assert lines[at - 1] == "[thought] before" and lines[at + 5] == "[answer] after"
    assert lines[at + 1 : at + 5] == ["    {", '      "query": "杭州\\u001b[2J",', '      "count": 3', "    }"]
    one_field = seed_trace("calculator", steps=(MadeUpStep(H, kind="odd\x1b]8;;"),))
    out = render_text(one_field)
    assert "\x1b" not in out and "[odd\\x1b]8;;]" in out
