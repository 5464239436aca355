"""text/html rendering: seed traces, per-plugin views, figures, statuses and hostile payloads."""

from __future__ import annotations

import base64
import html
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pytest
from _hostile import BAD_URLS, HOSTILE_MARKDOWN, H, assert_safe_html, check_html, hostile_trace
from _render_seed import (
    OCR_IMAGE,
    PDF_URL,
    PLOT_URL,
    SEED_NAMES,
    T2I_URL,
    fetched,
    png_bytes,
    seed_trace,
)

from dashmagic.plugins import GenericView, read_call, read_result
from dashmagic.render import mimebundle
from dashmagic.render._style import CSS
from dashmagic.render.html import render_html
from dashmagic.render import steps as steps_registry
from dashmagic.render.markdown import markdown_to_html
from dashmagic.render.steps import StepView
from dashmagic.trace import Answer, ErrorInfo, PluginCall, PluginResult, Status, Thought, freeze

SECRETS = ("Signature=", "OSSAccessKeyId", "Expires=", "LEAKED")


def _text(markup: str) -> str:
    """Visible text with tags removed and entities decoded (for readable assertions)."""
    body = markup.split("</style>", 1)[1]
    return html.unescape(re.sub(r"<[^>]+>", "", body))


def _images() -> dict[str, object]:
    return {PLOT_URL: fetched(PLOT_URL, png_bytes()), T2I_URL: fetched(T2I_URL, png_bytes(8, 8))}


# -- the seven documented exchanges -----------------------------------------------------------


@pytest.mark.parametrize("name", SEED_NAMES)
def test_seed_renders_safely_without_secrets(name: str) -> None:
    trace = seed_trace(name)
    for images in (None, _images()):
        bundle = mimebundle(trace, images=images)
        assert set(bundle) == {"text/plain", "text/html"}
        assert_safe_html(bundle["text/html"])
        for out in bundle.values():
            assert not any(s in out for s in SECRETS)
        assert bundle["text/html"].startswith('<div class="dashmagic-trace"><style>')
        assert bundle["text/html"].endswith("</div>")


@pytest.mark.parametrize("name", SEED_NAMES)
def test_seed_footer(name: str) -> None:
    trace = seed_trace(name)
    footer = render_html(trace).rsplit('<div class="dm-footer">', 1)[1]
    assert f"qwen-plus · {trace.usage.input_tokens} in / {trace.usage.output_tokens} out tokens" in footer
    assert f"request <code>{trace.request_id}</code>" in footer
    assert "1.2 s" in footer


def test_calculator() -> None:
    out = render_html(seed_trace("calculator"))
    assert '<div class="dm-calc"><code>12345 * 98765</code> = <strong>1219253925</strong></div>' in out
    assert '<span class="dm-plugin">calculator</span> <span class="dm-args">12345 * 98765</span>' in out
    assert '<span class="dm-badge dm-ok">✓ 200 Success</span>' in out
    assert '<details class="dm-step">' in out  # done: emitted folded (test_render_frontends)
    assert "calculator×1" in out
    assert '<div class="dm-thought"><span class="dm-label">Thought:</span> 我应该使用计算器API来进行数学计算。</div>' in out
    assert '<div class="dm-answer"><p>12345*98765的结果是1219253925。</p></div>' in out


def test_hotel_table_and_markdown_answer_table() -> None:
    out = render_html(seed_trace("hotel"))
    assert '<span class="dm-plugin">haozhu_recommend_hotel</span> <span class="dm-display">(酒店推荐插件)</span>' in out
    table = out.split('<table class="dm-hotels">', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 4  # header + 3 hotels
    for name in ("三亚山海天大酒店,傲途格精选", "三亚艾迪逊酒店", "三亚喜来登度假酒店"):
        assert f'<tr><td align="justify" style="text-align:justify">{name}</td>' in table
    assert "checkIn=" not in table and "shid=" not in table  # dates and price, not plumbing
    assert "<a " not in table  # the booking query string is not a link
    answer = out.split('<div class="dm-answer">', 1)[1]
    assert "<table>" in answer and '<th align="left" style="text-align:left">名称</th>' in answer and answer.count("<tr>") == 4


def test_code_highlighted_with_output() -> None:
    out = render_html(seed_trace("code_equations"))
    assert '<pre class="dm-code"><code class="language-python"><span class="tok-kn">from</span>' in out
    assert '<span class="tok-c1"># number of heads</span>' in out
    assert '<div class="dm-output"><div class="dm-output-name">execute_result</div><pre>(33, 67)</pre></div>' in out
    assert '<span class="dm-badge dm-ok">✓ 200 success</span>' in out
    assert "style=" not in out  # classes only (see _style: they survive JupyterLab's sanitizer)


def test_code_plot_figure_link_when_not_fetched() -> None:
    out = render_html(seed_trace("code_plot"))
    base = PLOT_URL.split("?")[0]
    assert "<img" not in out
    assert f'<a href="{base}" rel="noopener noreferrer nofollow" target="_blank">code-output-20231121-033437.859289.png</a>' in out
    assert "(image not fetched)" in out


def test_ocr_link_and_text() -> None:
    out = render_html(seed_trace("ocr"))
    assert f'<a href="{OCR_IMAGE}" rel="noopener noreferrer nofollow" target="_blank">{OCR_IMAGE}</a>' in out
    assert '<div class="dm-text">全球数字化出海服务平台 我们致力于提供全球领先的数字外贸服务' in out


def test_text_to_image_prompt_size_and_figure() -> None:
    out = render_html(seed_trace("text_to_image"))
    assert '<span class="dm-args">black cat (512×512)</span>' in out
    assert '<dt class="dm-k">prompt</dt><dd class="dm-v">black cat</dd>' in out
    assert '<dt class="dm-k">size</dt><dd class="dm-v">512×512</dd>' in out
    assert '<dt class="dm-k">oss_signed_url</dt>' in out
    assert f'href="{T2I_URL.split("?")[0]}"' in out


def test_pdf_file_link_then_answer() -> None:
    out = render_html(seed_trace("pdf_extracter"))
    files = out.index('<div class="dm-files">')
    assert f'<a href="{PDF_URL}" rel="noopener noreferrer nofollow" target="_blank">QWEN_TECHNICAL_REPORT.pdf</a>' in out
    assert files < out.index('<div class="dm-answer"><p>这篇文档主要介绍了QWEN系列')
    assert "<details" not in out


# -- figures ---------------------------------------------------------------------------------


def test_figure_with_bytes_is_one_inline_png() -> None:
    data = png_bytes()
    out = render_html(seed_trace("code_plot"), images={PLOT_URL: fetched(PLOT_URL, data)})
    checker = assert_safe_html(out)
    assert checker.imgs == [f"data:image/png;base64,{base64.b64encode(data).decode()}"]
    assert '<img src="data:image/png;base64,' in out and 'alt="fig-001"' in out
    assert f'<figcaption>fig-001 · <a href="{PLOT_URL.split("?")[0]}"' in out


def test_figure_with_error_is_link_and_reason() -> None:
    err = fetched(PLOT_URL, error="host not allowed: evil.example")
    out = render_html(seed_trace("code_plot"), images={PLOT_URL: err})
    assert "<img" not in out
    assert "(image host not allowed: evil.example)" in out
    assert f'href="{PLOT_URL.split("?")[0]}"' in out


@pytest.mark.parametrize(
    "mime", ["image/svg+xml", "text/html", None, "image/png;charset=x", "IMAGE/PNG"]
)
def test_figure_with_unsafe_mime_is_not_embedded(mime: str | None) -> None:
    img = fetched(PLOT_URL, b"<svg onload=alert(1)>", mime=mime)
    img = type(img)(b"<svg onload=alert(1)>", mime, None, img.display_url)
    out = render_html(seed_trace("code_plot"), images={PLOT_URL: img})
    assert "<img" not in out and "PHN2Zy" not in out  # base64 of "<svg"
    assert_safe_html(out)


@pytest.mark.parametrize("mime", ["image/png", "image/jpeg", "image/gif", "image/webp"])
def test_raster_types_embed(mime: str) -> None:
    img = fetched(T2I_URL, b"\x00\x01bytes", mime=mime)
    out = render_html(seed_trace("text_to_image"), images={T2I_URL: img})
    assert check_html(out).imgs == [f"data:{mime};base64,AAFieXRlcw=="]


def test_display_url_is_never_trusted() -> None:
    img = fetched(PLOT_URL, png_bytes())
    img = type(img)(img.data, img.mime, None, "javascript:alert(1)//?Signature=LEAKED")
    out = render_html(seed_trace("code_plot"), images={PLOT_URL: img})
    assert_safe_html(out)


# -- statuses ---------------------------------------------------------------------------------


def test_partial_shows_running_and_streaming() -> None:
    trace = seed_trace("code_equations", status="partial", elapsed=None)
    out = render_html(trace.replace(steps=trace.steps[:2]))
    assert '<span class="dm-badge dm-running">running…</span>' in out
    assert '<div class="dm-status">streaming…</div>' in out
    assert_safe_html(out)


def test_partial_unparsable_arguments_do_not_warn_while_running() -> None:
    raw = '{"payload__input__text": "12'
    parsed, error, view = read_call("calculator", raw)
    call = PluginCall("calculator", "calculator", raw, parsed, error, view)
    running = render_html(seed_trace("calculator", status="partial", steps=(call,)))
    assert "not valid JSON" not in running and f"<pre>{html.escape(raw)}</pre>" in running
    done = render_html(seed_trace("calculator", status="interrupted", steps=(call,)))
    assert "arguments are not valid JSON; raw text shown" in done
    assert '<span class="dm-badge dm-missing">interrupted</span>' in done


def test_pending_interrupted_error_and_notes() -> None:
    assert "waiting for the model…" in render_html(seed_trace("calculator", status="pending", steps=()))
    interrupted = render_html(seed_trace("calculator", status="interrupted"))
    assert '<div class="dm-notice">Interrupted — partial trace kept</div>' in interrupted
    err = ErrorInfo("ApiError", "Model <b>not</b> found", 404, "ModelNotFound", "req-9")
    out = render_html(seed_trace("calculator", status="error", error=err, steps=(), notes=("retried 2×",)))
    assert '<span class="dm-error-type">ApiError</span>' in out
    assert "Model &lt;b&gt;not&lt;/b&gt; found (HTTP 404, code ModelNotFound, request req-9)" in out
    assert '<div class="dm-note">retried 2×</div>' in out
    complete = render_html(seed_trace("calculator"))
    assert "dm-status" not in complete.split("</style>")[1] and "dm-notice" not in complete.split("</style>")[1]


def test_failed_plugin_status() -> None:
    result = PluginResult("ocr", "ocr", "boom", None, "not valid JSON", Status(500, "InternalError", "OCR backend down"))
    out = render_html(seed_trace("ocr", steps=(seed_trace("ocr").steps[1], result)))
    assert '<span class="dm-badge dm-fail">✗ 500 InternalError</span>' in out
    assert '<div class="dm-error-message">OCR backend down</div>' in out
    assert "content is not valid JSON; raw text shown" in out and "<pre>boom</pre>" in out


def test_generic_view_pretty_json() -> None:
    raw = '{"城市": "三亚", "n": [1, 2]}'
    parsed, error, view = read_result("some_new_plugin", raw)
    assert isinstance(view, GenericView)
    step = PluginResult("some_new_plugin", "x", raw, parsed, error, None, view)
    out = render_html(seed_trace("calculator", steps=(step,)))
    assert '<pre>{\n  &quot;城市&quot;: &quot;三亚&quot;,\n  &quot;n&quot;: [\n    1,\n    2\n  ]\n}</pre>' in out


def test_code_stderr_is_styled_as_error() -> None:
    raw = "stderr:\n\n```\nTraceback: ZeroDivisionError\n```"
    _, _, view = read_result("code_interpreter", raw)
    step = PluginResult("code_interpreter", "code_interpreter", raw, view=view)
    out = render_html(seed_trace("code_equations", steps=(step,)))
    assert (
        '<div class="dm-output dm-stderr"><div class="dm-output-name">stderr</div>'
        "<pre>Traceback: ZeroDivisionError</pre></div>"
    ) in out


# -- hostile payloads -------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["complete", "partial", "interrupted", "error", "pending"])
def test_hostile_payloads_are_inert(status: str) -> None:
    trace = hostile_trace(status)
    images = {BAD_URLS[0]: fetched(BAD_URLS[0], png_bytes()), BAD_URLS[4]: fetched(BAD_URLS[4], error=H)}
    bundle = mimebundle(trace, images=images)
    checker = assert_safe_html(bundle["text/html"])
    assert checker.imgs and all(src.startswith("data:image/png;base64,") for src in checker.imgs)
    assert all(h.startswith(("https://", "http://", "mailto:")) for h in checker.hrefs)
    assert H in bundle["text/plain"]
    # The hostile text is still *shown* (escaped), not silently dropped.
    assert _text(bundle["text/html"]).count(H) > 20


def test_hostile_markdown_answer() -> None:
    out = markdown_to_html(HOSTILE_MARKDOWN)
    wrapped = f'<div class="dashmagic-trace"><style></style>{out}</div>'
    checker = assert_safe_html(wrapped)
    assert not checker.imgs
    assert checker.hrefs == [
        "https://example.com/doc?page=2",
        "http://evil.example/x.png",
        "https://evil.example/y.png",
    ]
    assert "<table>" in out and "&lt;img src=x onerror=alert(1)&gt;" in out
    assert 'rel="noopener noreferrer nofollow"' in out and 'target="_blank"' in out


def test_markdown_allow_list() -> None:
    source = "**b** *i* ~~s~~ `c`\n\n> q\n\n1. x\n\n---\n\n| a | b |\n|:-|-:|\n| 1 | 2 |\n\n"
    out = markdown_to_html(source + "[m](mailto:a@b.c)")
    tags = ("<strong>", "<em>", "<s>", "<code>", "<blockquote>", "<ol>", "<hr>", "<table>")
    for tag in (*tags, '<th style="text-align:left">', '<td style="text-align:right">'):
        assert tag in out, tag
    assert 'href="mailto:a@b.c"' in out


def test_css_is_scoped() -> None:
    assert "url(" not in CSS and "@import" not in CSS and "expression(" not in CSS
    preludes = [p.strip() for p in re.findall(r"([^{}]+)\{", CSS)]
    assert len(preludes) > 50
    for rule in (p for p in preludes if not p.startswith("@")):
        selectors = [s.strip() for s in rule.split(",")]
        assert all(s.startswith(".dashmagic-trace") or re.fullmatch(r"\d+%|from|to", s) for s in selectors), rule


def test_no_ids_and_deterministic() -> None:
    for name in SEED_NAMES:
        a = render_html(seed_trace(name), images=_images())
        b = render_html(seed_trace(name), images=_images())
        assert a == b
        assert " id=" not in a
    assert render_html(hostile_trace()) == render_html(hostile_trace())


def test_mimebundle_include_exclude() -> None:
    trace = seed_trace("calculator")
    assert set(mimebundle(trace, include={"text/plain"})) == {"text/plain"}
    assert set(mimebundle(trace, exclude=["text/html"])) == {"text/plain"}
    assert set(mimebundle(trace, include={"text/html"}, exclude={"text/html"})) == set()
    assert trace._repr_mimebundle_() == mimebundle(trace)
    assert set(trace._repr_mimebundle_(include=["text/html", "image/png"])) == {"text/html"}


def test_import_is_cheap_and_pure() -> None:
    code = (
        "import sys, dashmagic.render\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('markdown_it', 'nh3', 'pygments', 'IPython', 'requests')]\n"
        "assert not heavy, heavy\n"
        "from dashmagic.render import mimebundle\n"
        "import dashmagic.render.html, dashmagic.render.text\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('IPython', 'requests')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_usage_plugins_and_finish_reason_in_footer() -> None:
    trace = seed_trace("calculator", usage=seed_trace("calculator").usage.__class__(
        5, 6, 11, MappingProxyType({"calculator": 2, "ocr": 1})), finish_reason="length", elapsed=75.0)
    footer = render_html(trace).rsplit('<div class="dm-footer">', 1)[1]
    assert "calculator×2 · ocr×1 · finish: length · 1 min 15 s" in footer


def test_thoughts_and_answers_stay_in_order() -> None:
    trace = seed_trace("calculator", steps=(Thought("one"), Answer("two"), Thought("three")))
    text = _text(render_html(trace))
    assert text.index("one") < text.index("two") < text.index("three")


# -- open step kinds ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MadeUpStep:
    """A step kind no renderer knows (as a newer wire format might add one)."""

    query: str
    sources: tuple[Any, ...]
    kind: str = "search_sources"


def test_unknown_step_kind_gets_a_generic_safe_view() -> None:
    step = MadeUpStep(query=H, sources=(freeze({"title": H, "url": BAD_URLS[0]}),))
    trace = seed_trace("calculator", steps=(Thought("before"), step, Answer("after")))
    out = render_html(trace)
    assert_safe_html(out)
    body = out.split('<details class="dm-step dm-generic" open>', 1)[1].split("</details>", 1)[0]
    assert '<summary><span class="dm-plugin">search_sources</span></summary>' in body
    shown = html.unescape(re.sub(r"<[^>]+>", "", body))
    assert f'"query": {json.dumps(H, ensure_ascii=False)}' in shown  # shown, escaped, not run
    assert '"kind"' not in shown  # the kind is the title, not a field
    text = _text(out)
    assert text.index("before") < text.index("search_sources") < text.index("after")


def test_steps_without_kind_or_of_the_wrong_type_are_generic_too() -> None:
    class Bare:
        __slots__ = ()

        def __repr__(self) -> str:
            return f"Bare({H})"

    @dataclass(frozen=True)
    class FakeThought:  # claims a registered kind but is not a Thought: never fed to its view
        note: str
        kind: str = "thought"

    out = render_html(seed_trace("calculator", steps=(Bare(), FakeThought(H), MadeUpStep(H, (), kind=H))))
    assert_safe_html(out)
    assert out.count('<details class="dm-step dm-generic" open>') == 3
    assert '<span class="dm-plugin">Bare</span>' in out and '<span class="dm-plugin">thought</span>' in out
    assert f"<pre>Bare({esc_html(H)})</pre>" in out


def esc_html(text: str) -> str:
    return html.escape(text, quote=True)


def test_a_new_step_kind_is_one_registry_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    view = StepView(
        "search_sources",
        MadeUpStep,
        html=lambda step, trace, images: f'<div class="dm-sources">{len(step.sources)} sources</div>',
        text=lambda step, trace, images: [f"[sources] {len(step.sources)}"],
    )
    monkeypatch.setitem(steps_registry.STEP_VIEWS, "search_sources", view)
    trace = seed_trace("calculator", steps=(MadeUpStep("q", (1, 2)),))
    assert '<div class="dm-sources">2 sources</div>' in render_html(trace)
    assert "[sources] 2" in str(trace)
