"""The rendered HTML in a real headless Chromium: visible, offline, and inert under attack."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from _browser import INSTALL_HINT, available, html_page, launch, open_page, screenshot, viewer
from _hostile import BAD_URLS, H, hostile_trace
from _render_seed import PLOT_URL, SEED_NAMES, T2I_URL, fetched, png_bytes, seed_trace

from dashmagic.render.html import render_html
from dashmagic.trace import Figure, PluginResult, Thought

pytestmark = pytest.mark.skipif(not available(), reason=INSTALL_HINT)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def browser():
    with launch() as b:
        yield b


def _plot_png() -> bytes:
    """The seed's y=x² figure, drawn for real when matplotlib is there."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return png_bytes(320, 240)
    fig, ax = plt.subplots(figsize=(5.3, 4), dpi=60)
    xs = [x / 20 for x in range(-200, 201)]
    ax.plot(xs, [x * x for x in xs])
    ax.set_title("Function Graph: $y=x^2$")
    ax.grid(True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _hostile_page_trace():
    """The hostile trace plus one real embedded PNG figure among the attacks."""
    trace = hostile_trace("error")
    figure = Figure(url=PLOT_URL, alt=H)
    result = PluginResult(
        "code_interpreter", "code_interpreter", "", view=type(trace.steps[8].view)(figures=(figure,))
    )
    return trace.replace(steps=(Thought(H), result, *trace.steps))


def test_hostile_trace_is_inert_in_chromium(browser) -> None:
    trace = _hostile_page_trace()
    images = {PLOT_URL: fetched(PLOT_URL, png_bytes(48, 32)), BAD_URLS[0]: fetched(BAD_URLS[0], error=H)}
    page_html = html_page(render_html(trace, images), "dark")
    with open_page(browser, page_html) as (page, log):
        root = page.locator(".dashmagic-trace")
        assert root.count() == 1 and root.is_visible()
        assert page.locator("details.dm-step").count() > 10  # done steps are emitted folded
        widths = page.eval_on_selector_all(".dm-figure img", "imgs => imgs.map(i => i.naturalWidth)")
        assert widths == [48]
        assert page.evaluate("() => window.__pwned") is None
        assert log.dialogs == []
        assert log.blocked == [], f"remote requests attempted: {log.blocked}"
        # The DOM agrees with the static checker: no handlers, scripts, frames or foreign images.
        report = page.evaluate(
            """() => {
                const all = Array.from(document.querySelectorAll('*'));
                return {
                    handlers: all.flatMap(e => Array.from(e.attributes).filter(a => a.name.startsWith('on')).map(a => a.name)),
                    bad: all.filter(e => ['SCRIPT','IFRAME','OBJECT','EMBED','SVG','svg'].includes(e.tagName)).length,
                    styles: document.querySelectorAll('.dashmagic-trace style').length,
                    imgs: Array.from(document.images).map(i => i.src.slice(0, 22)),
                    hrefs: Array.from(document.links).map(a => a.protocol),
                    url: location.href,
                };
            }"""
        )
        assert report["handlers"] == [] and report["bad"] == 0 and report["styles"] == 1
        assert report["imgs"] == ["data:image/png;base64,"]
        assert set(report["hrefs"]) <= {"http:", "https:", "mailto:"}
        assert report["url"].startswith("file:")
        # Hostile text is displayed as text.
        assert H in page.locator(".dm-thought").first.inner_text()
        # Clicking every link must not run anything either (links open new tabs, which are blocked).
        page.locator(".dashmagic-trace details.dm-step > summary").first.click()
        assert page.evaluate("() => window.__pwned") is None


def test_seed_plot_figure_renders(browser) -> None:
    data = _plot_png()
    out = render_html(seed_trace("code_plot"), {PLOT_URL: fetched(PLOT_URL, data)})
    with open_page(browser, html_page(out, "light")) as (page, log):
        assert page.eval_on_selector(".dm-figure img", "i => i.naturalWidth") > 100
        assert "12345" not in page.inner_text("body")
        assert "import matplotlib.pyplot as plt" in page.inner_text(".dm-code")
        assert log.blocked == [] and log.dialogs == []


def test_screenshots_of_seed_traces(browser, tmp_path: Path) -> None:
    images = {PLOT_URL: fetched(PLOT_URL, _plot_png()), T2I_URL: fetched(T2I_URL, error="not fetched in tests")}
    written = []
    with viewer(browser) as tab:
        for name in SEED_NAMES:
            body = render_html(seed_trace(name), images)
            for theme in ("light", "dark"):
                written.append(screenshot(html_page(body, theme), tmp_path / f"{name}-{theme}.png", tab))
        assert tab.log.blocked == [] and tab.log.dialogs == []
    assert len(written) == 14
    for path in written:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5_000, path


def _current_hostile_page_trace(status: str):
    """Today's hostile steps, with icons on hosts of their own (so a fetch would show), cited."""
    from _hostile import hostile_current_steps
    from dashmagic.trace import Answer, SearchResults, Source

    icons = tuple(
        Source(90 + i, H, "https://ok.example/page", H, f"https://icon{i}.example/favicon.ico") for i in range(3)
    )
    steps = (*hostile_current_steps(), SearchResults(icons), Answer(f"{H}[1][ref_7][ref_8][90][91][99]"))
    return hostile_trace(status, steps=steps, finish_reason="tool_calls")


@pytest.mark.parametrize("status", ["partial", "complete"])
def test_hostile_current_trace_is_inert_in_chromium(browser, status: str) -> None:
    trace = _current_hostile_page_trace(status)
    with open_page(browser, html_page(render_html(trace), "light")) as (page, log):
        assert page.evaluate("() => window.__pwned") is None
        assert log.dialogs == []
        assert log.blocked == [], f"remote requests attempted (icons?): {log.blocked}"
        assert page.evaluate("() => document.images.length") == 0
        report = page.evaluate(
            """() => {
                const all = Array.from(document.querySelectorAll('*'));
                return {
                    handlers: all.flatMap(e => Array.from(e.attributes).filter(a => a.name.startsWith('on')).length ? [e.tagName] : []),
                    bad: all.filter(e => ['SCRIPT','IFRAME','OBJECT','EMBED','SVG','svg'].includes(e.tagName)).length,
                    hrefs: Array.from(document.links).map(a => a.protocol),
                    cites: Array.from(document.querySelectorAll('a.dm-cite')).map(a => a.href),
                };
            }"""
        )
        assert report["handlers"] == [] and report["bad"] == 0
        assert set(report["hrefs"]) <= {"http:", "https:"}
        assert report["cites"] == ["https://evil.example/a.png", "http://evil.example/b.png",
                                   "https://ok.example/page", "https://ok.example/page"]
        # Hostile text is displayed as text in every new view.
        for selector in (".dm-reasoning-text", ".dm-sources li", ".dm-function .dm-v", ".dm-function .dm-plugin"):
            assert H in page.locator(selector).first.text_content(), selector
        assert "call <script>window.__pwned=1</script>" in page.locator(".dm-asks").text_content()  # cut short
        # Rule 1 holds in the DOM: no reasoning is open unless it is the streaming tail (it is not
        # here: an answer follows), and a folded one hides its text.
        assert page.locator("details.dm-reasoning[open]").count() == 0
        assert not page.locator(".dm-reasoning-text").first.is_visible()
        page.locator("details.dm-reasoning > summary").first.click()  # unfolding runs nothing
        assert page.locator(".dm-reasoning-text").first.is_visible()
        assert page.evaluate("() => window.__pwned") is None and log.blocked == []


def test_streaming_thinking_code_in_chromium(browser) -> None:
    """Each live snapshot in a real browser: reasoning visible while it streams, folded once code
    or the answer follows; the code sits between the two thoughts, shown once."""
    from _render_current import streaming_snapshots

    with viewer(browser) as tab:
        for trace in streaming_snapshots():
            page = tab.show(html_page(render_html(trace), "dark"))
            last_is_reasoning = type(trace.steps[-1]).__name__ == "Reasoning" and not trace.done
            assert page.locator("details.dm-reasoning[open]").count() == (1 if last_is_reasoning else 0)
            order = page.eval_on_selector_all(
                ".dashmagic-trace > details, .dashmagic-trace > .dm-answer", "els => els.map(e => e.className)"
            )
            assert len(order) == len(trace.steps)
            assert page.locator("pre.dm-code").count() == sum(
                1 for s in trace.steps if type(s).__name__ == "CodeExecution" and s.code
            )
        assert "123**21" in page.inner_text(".dm-code")
        assert tab.log.blocked == [] and tab.log.dialogs == []


def test_screenshots_of_current_traces(browser, tmp_path: Path) -> None:
    from _render_current import english_thinking_code_trace, search_trace

    written = []
    with viewer(browser) as tab:
        for name, trace in (("thinking", english_thinking_code_trace()), ("search", search_trace())):
            for theme in ("light", "dark"):
                written.append(screenshot(html_page(render_html(trace), theme), tmp_path / f"{name}-{theme}.png", tab))
        assert tab.log.blocked == [] and tab.log.dialogs == []
    for path in written:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5_000, path
