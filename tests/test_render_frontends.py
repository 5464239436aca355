"""The trace's HTML where a saved notebook is read: JupyterLab (trusted and untrusted), nbconvert
HTML, and a page filtered the way GitHub filters notebook outputs, in headless Chromium.

JupyterLab's CSS is the real one, as nbconvert's ``lab`` template ships it (see
``_browser.jupyterlab_page``); a live JupyterLab server is not driven. Every assertion is a
readability fact measured in the page: text present, table cells left-aligned and CJK lines
flush, no band behind code lines, steps that fold, and a user's fold kept across a display
update applied the way JupyterLab applies one (the output's ``innerHTML`` replaced).

    python tests/test_render_frontends.py docs/screenshots after   # the pictures in docs/
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from _browser import (
    INSTALL_HINT,
    available,
    github_filter,
    html_page,
    jupyter_lab,
    jupyterlab_page,
    lab_static,
    launch,
    nbconvert_page,
    viewer,
)
from _render_seed import SEED_NAMES, seed_trace

from dashmagic.render import mimebundle
from dashmagic.render._style import CSS
from dashmagic.render.html import render_html
from dashmagic.render.text import render_text
from dashmagic.trace import Answer, PluginResult, Status, Trace

browser_only = pytest.mark.skipif(not available() or lab_static() is None, reason=INSTALL_HINT)

#: A budget, not a measurement: the stylesheet rides in every output and every streamed update.
#: (9,716 B in 0.1; 6,749 B after the frontend pass; the rules for today's steps — reasoning,
#: built-in code, sources, citations, function calls — bring it to about 7.8 kB.)
CSS_BUDGET = 8_000


# -- snapshots of one streamed exchange -------------------------------------------------------


def snapshots(name: str = "calculator") -> list[Trace]:
    """The seed exchange as a stream would show it: call running, answer half-written, done."""
    final = seed_trace(name)
    steps = final.steps
    call_at = next((i for i, s in enumerate(steps) if s.kind == "plugin_call"), 0)
    answer = steps[-1]
    assert isinstance(answer, Answer)
    half = Answer(answer.text[: max(1, len(answer.text) // 2)])
    return [
        final.replace(status="partial", steps=steps[: call_at + 1]),
        final.replace(status="partial", steps=(*steps[:-1], half)),
        final,
    ]


# -- pure checks (no browser) -----------------------------------------------------------------


def _details_tags(markup: str) -> list[str]:
    return re.findall(r"<details[^>]*>", markup)


def test_a_completed_step_is_never_reopened_by_later_updates() -> None:
    running, streaming, done = (render_html(t) for t in snapshots())
    assert _details_tags(running) == ['<details class="dm-step" open>']  # watched while it runs
    assert _details_tags(streaming) == ['<details class="dm-step">']  # done: folded, and stays so
    assert _details_tags(done) == _details_tags(streaming)


def test_every_completed_step_keeps_one_fold_state_in_every_later_snapshot() -> None:
    for name in SEED_NAMES:
        shots = [render_html(t) for t in snapshots(name)[1:]]
        assert len({tuple(_details_tags(s)) for s in shots}) == 1, name


def test_a_step_that_shows_a_figure_stays_open() -> None:
    # The picture is the result the reader came for (text_to_image, a plot): not hidden.
    out = render_html(seed_trace("text_to_image"))
    assert _details_tags(out) == ['<details class="dm-step" open>']


def test_a_failed_step_stays_open_with_its_reason() -> None:
    trace = seed_trace("calculator")
    denied = Status(403, "Forbidden", "no access")
    failed = tuple(
        dataclasses.replace(s, status=denied) if isinstance(s, PluginResult) else s
        for s in trace.steps
    )
    out = render_html(trace.replace(steps=failed))
    assert _details_tags(out) == ['<details class="dm-step" open>'] and "no access" in out


def test_hotel_rows_show_name_dates_price_not_query_plumbing() -> None:
    out = render_html(seed_trace("hotel"))
    table = out.split('<table class="dm-hotels">', 1)[1].split("</table>", 1)[0]
    for plumbing in ("checkIn=", "shid=", "cityCode=", "&amp;"):
        assert plumbing not in table
    assert "2023-11-21 → 2023-11-22 (1 night)" in out
    assert ">¥2498<" in table and ">¥925<" in table
    assert table.count("<tr>") == 4
    text = render_text(seed_trace("hotel"))
    assert "shid" not in text and "2023-11-21 → 2023-11-22" in text and "¥925" in text


def test_table_cells_carry_alignment_that_survives_sanitizers() -> None:
    out = render_html(seed_trace("hotel"))
    cells = re.findall(r"<t[dh](?: [^>]*)?>", out)
    assert cells and all('style="text-align:' in c for c in cells), cells[:3]


def test_stylesheet_within_budget_and_text_plain_always_present() -> None:
    assert len(CSS.encode()) < CSS_BUDGET
    for name in SEED_NAMES:
        for trace in snapshots(name):
            bundle = mimebundle(trace)
            assert bundle["text/plain"].strip() and bundle["text/html"].count("<style>") == 1


# -- in a browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Any:
    # One browser for the module: Playwright's sync API cannot run two at once.
    if not available():
        pytest.skip(INSTALL_HINT)
    with launch() as b:
        yield b


@pytest.fixture(scope="module")
def tab(browser: Any) -> Any:
    if lab_static() is None:
        pytest.skip(INSTALL_HINT)
    with viewer(browser, width=760) as v:
        yield v


_CELLS = """() => Array.from(document.querySelectorAll('.dm-root-probe td, .dm-root-probe th')).map(c => {
    const s = getComputedStyle(c);
    const r = document.createRange(); r.selectNodeContents(c);
    const lines = Array.from(r.getClientRects()).filter(b => b.width > 0);
    const box = c.getBoundingClientRect();
    const left = box.left + parseFloat(s.paddingLeft) + parseFloat(s.borderLeftWidth);
    const right = box.right - parseFloat(s.paddingRight) - parseFloat(s.borderRightWidth);
    return {align: s.textAlign, text: c.innerText.slice(0, 20),
            starts: lines.map(b => b.left - left), ends: lines.map(b => right - b.right)};
})"""


def _probe(page: Any) -> None:
    """Mark the trace's root (by position: GitHub's filter drops its class)."""
    page.evaluate(
        """() => { const out = document.querySelector('.jp-OutputArea-output') || document.body;
                   const root = out.querySelector('.dashmagic-trace') || out.querySelector('div');
                   root.classList.add('dm-root-probe'); }"""
    )


def _pages(bundle: dict[str, str], theme: Any = "light") -> dict[str, str]:
    html = bundle["text/html"]
    return {
        "jupyterlab": jupyterlab_page(html, theme),
        "jupyterlab-untrusted": jupyterlab_page(html, theme, trusted=False),
        "nbconvert": nbconvert_page(bundle, theme),
        "github": html_page(github_filter(html), theme),
    }


@browser_only
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_tables_left_aligned_and_cjk_lines_flush_everywhere(tab: Any, theme: str) -> None:
    for where, doc in _pages(mimebundle(seed_trace("hotel")), theme).items():
        page = tab.show(doc)
        _probe(page)
        cells = page.evaluate(_CELLS)
        assert len(cells) == 4 * 3 + 4 * 3, where  # hotel table + the answer's Markdown table
        multi = 0
        for cell in cells:
            assert cell["align"] in ("left", "-webkit-left", "justify", "start"), (where, cell)
            assert all(abs(s) < 2 for s in cell["starts"][:1]), (where, cell)
            if len(cell["ends"]) > 1:
                multi += 1
                # Every line but the last reaches the right edge: Chinese text is not ragged.
                assert all(abs(e) < 2 for e in cell["ends"][:-1]), (where, cell)
        assert multi >= 3, where  # the test measured wrapped Chinese text, not one-liners


_CODE_BANDS = """() => Array.from(document.querySelectorAll('pre > code')).map(c => {
    const bg = getComputedStyle(c).backgroundColor;
    return bg === 'rgba(0, 0, 0, 0)' || bg === 'transparent'
        || bg === getComputedStyle(c.parentElement).backgroundColor;
})"""


@browser_only
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_code_has_no_band_behind_each_line(tab: Any, theme: str) -> None:
    for where, doc in _pages(mimebundle(seed_trace("code_equations")), theme).items():
        page = tab.show(doc)
        flat = page.evaluate(_CODE_BANDS)
        assert flat and all(flat), (where, flat)


_UPDATE = """html => { document.querySelector('.jp-OutputArea-output').innerHTML = html; }"""


def _step_open(page: Any) -> bool:
    return bool(page.eval_on_selector(".dashmagic-trace details.dm-step", "d => d.open"))


@browser_only
def test_a_users_fold_survives_live_updates_in_jupyterlab(tab: Any) -> None:
    running, streaming, done = (render_html(t) for t in snapshots())
    page = tab.show(jupyterlab_page(running))
    assert _step_open(page)
    page.click(".dashmagic-trace details.dm-step > summary")  # the user folds the running call
    assert not _step_open(page)
    for snapshot in (streaming, done):  # as JupyterLab applies display updates
        page.evaluate(_UPDATE, snapshot)
        assert not _step_open(page)
    # After the last update nothing replaces the DOM: the reader's unfold holds for good.
    page.click(".dashmagic-trace details.dm-step > summary")
    assert _step_open(page) and "1219253925" in page.inner_text(".dashmagic-trace details.dm-step")


@browser_only
def test_documented_limit_unfolding_a_done_step_lasts_until_the_next_update(tab: Any) -> None:
    # docs/frontends.md: markup cannot carry a click across an innerHTML replacement.
    _, streaming, done = (render_html(t) for t in snapshots())
    page = tab.show(jupyterlab_page(streaming))
    page.click(".dashmagic-trace details.dm-step > summary")
    assert _step_open(page)
    page.evaluate(_UPDATE, done)
    assert not _step_open(page)


@browser_only
@pytest.mark.parametrize("name", SEED_NAMES)
def test_structure_reads_in_every_frontend(tab: Any, name: str) -> None:
    trace = seed_trace(name)
    bundle = mimebundle(trace)
    answer = trace.answer.strip()[:12] if trace.answer else ""
    for where, doc in _pages(bundle).items():
        page = tab.show(doc)
        text = page.inner_text("body")
        assert answer in text, where
        assert "Thought:" in text or not trace.thoughts, where
        assert trace.request_id and trace.request_id in text, where
        for call in trace.plugin_calls:
            assert call.plugin in text, where
        steps = page.locator("details")
        for i in range(steps.count()):  # every step folds and unfolds with a click
            before = steps.nth(i).evaluate("d => d.open")
            steps.nth(i).locator("summary").first.click()
            assert steps.nth(i).evaluate("d => d.open") != before, where


# -- a real JupyterLab server (opt-in) -------------------------------------------------------
# Set DASHMAGIC_JUPYTER_LAB to a ``jupyter`` executable that has JupyterLab (a scratch venv: it
# is not a dependency). The server listens on loopback only; its kernel is this interpreter
# with this checkout on PYTHONPATH, so the cell renders with the code under test.

_LAB = os.environ.get("DASHMAGIC_JUPYTER_LAB", "")
_FOLD_CELL = """import sys, time
sys.path.insert(0, {tests!r})
from IPython.display import display
from test_render_frontends import snapshots
from dashmagic.render import mimebundle
shots = [mimebundle(t) for t in snapshots()]
handle = display(shots[0], raw=True, display_id=True)
time.sleep(8)
handle.update(shots[1], raw=True)
time.sleep(3)
handle.update(shots[2], raw=True)
print("updates done")"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Any:
    if not (_LAB and Path(_LAB).is_file()):
        pytest.skip("set DASHMAGIC_JUPYTER_LAB to a jupyter executable with JupyterLab")
    import nbformat

    root = tmp_path_factory.mktemp("lab")
    here = Path(__file__).resolve().parent
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "dm", "display_name": "dm", "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(_FOLD_CELL.format(tests=str(here)))]
    nbformat.write(nb, root / "fold.ipynb")
    saved = nbformat.v4.new_notebook()  # outputs saved, no signature: JupyterLab distrusts it
    cell = nbformat.v4.new_code_cell("%%dashscope …", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("display_data", data=mimebundle(seed_trace("hotel")))]
    code = nbformat.v4.new_code_cell("%%dashscope …", execution_count=2)
    code.outputs = [nbformat.v4.new_output("display_data", data=mimebundle(seed_trace("code_equations")))]
    saved.cells = [cell, code]
    nbformat.write(saved, root / "saved.ipynb")
    with jupyter_lab(_LAB, root, kernel_python=sys.executable, kernel_env={"PYTHONPATH": str(here.parent)}) as base:
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        try:
            yield context, base
        finally:
            context.close()


def _lab_open(lab: Any, name: str) -> Any:
    context, base = lab
    page = context.new_page()
    page.goto(f"{base}/lab/tree/{name}?token=dm", wait_until="domcontentloaded", timeout=90_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    return page


def test_real_jupyterlab_keeps_a_fold_across_display_updates(lab: Any) -> None:
    page = _lab_open(lab, "fold.ipynb")
    page.wait_for_selector(".jp-StatusBar-TextItem:has-text('| Idle')", timeout=90_000)
    step = ".jp-OutputArea-output .dashmagic-trace details.dm-step"
    for _ in range(3):  # bounded: a keypress that lands while the kernel is still starting is lost
        page.click(".jp-Cell .jp-InputArea-editor")
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_selector(step, timeout=30_000)
            break
        except Exception:  # playwright's TimeoutError: try the (first) cell again
            continue
    page.wait_for_selector(step, timeout=1_000)
    assert page.eval_on_selector(step, "d => d.open")  # the running call, open
    page.click(f"{step} > summary")  # the reader folds it
    assert not page.eval_on_selector(step, "d => d.open")
    page.wait_for_selector(".jp-RenderedText:has-text('updates done')", timeout=60_000)
    assert "streaming" not in page.inner_text(".jp-OutputArea-output .dashmagic-trace")
    assert not page.eval_on_selector(step, "d => d.open")  # two updates later: still folded


def test_real_jupyterlab_untrusted_notebook_stays_readable(lab: Any) -> None:
    page = _lab_open(lab, "saved.ipynb")
    page.wait_for_selector(".jp-OutputArea-output .dashmagic-trace table", state="attached", timeout=60_000)
    facts = page.evaluate(
        """() => {
            const outs = Array.from(document.querySelectorAll('.jp-OutputArea-output'));
            const cells = Array.from(document.querySelectorAll('.jp-OutputArea-output td, .jp-OutputArea-output th'));
            const code = Array.from(document.querySelectorAll('.jp-OutputArea-output pre > code'));
            return {styles: outs.map(o => o.querySelectorAll('style').length),
                    aligns: [...new Set(cells.map(c => getComputedStyle(c).textAlign))],
                    bands: code.map(c => [getComputedStyle(c).backgroundColor,
                                          getComputedStyle(c.parentElement).backgroundColor]),
                    steps: document.querySelectorAll('.jp-OutputArea-output details.dm-step').length};
        }"""
    )
    assert facts["styles"] == [0, 0]  # untrusted: JupyterLab's sanitizer dropped the <style>
    assert set(facts["aligns"]) <= {"left", "justify"}, facts["aligns"]
    assert facts["bands"] and all(c in ("rgba(0, 0, 0, 0)", p) for c, p in facts["bands"]), facts["bands"]
    assert facts["steps"] == 2


# -- pictures for docs/screenshots ------------------------------------------------------------


def make_screenshots(out: Path, suffix: str) -> list[Path]:
    """The defects of issue 12 as they look (``suffix``: before/after) in each frontend."""
    written = []
    with launch() as browser, viewer(browser, width=760) as v:
        hotel, code = mimebundle(seed_trace("hotel")), mimebundle(seed_trace("code_equations"))
        shots = {
            "hotel-jupyterlab": jupyterlab_page(hotel["text/html"]),
            "code-nbconvert-light": nbconvert_page(code, "light"),
            "code-nbconvert-dark": nbconvert_page(code, "dark"),
            "hotel-untrusted": jupyterlab_page(hotel["text/html"], trusted=False),
            "code-github": html_page(github_filter(code["text/html"])),
        }
        for name, doc in shots.items():
            page = v.show(doc)  # unfolded, so the picture shows the rows and the code
            page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
            path = out / f"{name}-{suffix}.png"
            page.locator("body").screenshot(path=str(path), animations="disabled")
            written.append(path)
        running, streaming, _ = (render_html(t) for t in snapshots())
        page = v.show(jupyterlab_page(running))
        page.click(".dashmagic-trace details.dm-step > summary")
        page.evaluate(_UPDATE, streaming)
        path = out / f"fold-after-update-{suffix}.png"
        page.locator("body").screenshot(path=str(path), animations="disabled")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in make_screenshots(Path(sys.argv[1]), sys.argv[2]):
        print(p)
