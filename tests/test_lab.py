"""A real JupyterLab in headless Chromium: today's trace streaming live, the map progress widget,
the batch watch, and the trace's controls (issues 9, 11, 12). Opt-in.

    DASHMAGIC_JUPYTER_LAB=/tmp/fe-lab/bin/jupyter python -m pytest tests/test_lab.py -q

``DASHMAGIC_JUPYTER_LAB`` names a ``jupyter`` executable with JupyterLab (a scratch venv; it is
not a dependency). When that venv also has ipywidgets (and dashmagic's requirements), its own
python runs the kernel, so the widgets have both halves; the kernel imports this checkout
(``PYTHONPATH``). The server, the fake DashScope and the browser all stay on 127.0.0.1; every
wait has a timeout. Facts are measured in the page: the output's DOM sampled every 100 ms and
after every mutation while the answer streams.

    DASHMAGIC_JUPYTER_LAB=… python tests/test_lab.py docs/screenshots   # the pictures
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _browser import (
    INSTALL_HINT,
    available,
    jupyter_lab,
    jupyterlab_page,
    lab_kernel_python,
    lab_notebook,
    lab_open,
    lab_run_cell,
    launch,
)

from dashmagic.testing import FakeDashScope

_LAB = os.environ.get("DASHMAGIC_JUPYTER_LAB", "")
pytestmark = [
    pytest.mark.skipif(not available(), reason=INSTALL_HINT),
    pytest.mark.skipif(not (_LAB and Path(_LAB).is_file()),
                       reason="opt-in: set DASHMAGIC_JUPYTER_LAB to a jupyter executable with JupyterLab"),
]

HERE = Path(__file__).resolve().parent
CI_PROMPT = "123的21次方是多少？"
POWER = str(123**21)
CI_CELL = f"%%dashscope --code-interpreter\n{CI_PROMPT}"

#: Sampled in the page while a cell streams: the output area of cell ``index``, every 100 ms
#: (bounded: 900 samples) and after every DOM mutation (bounded: 20,000 records).
_SAMPLER = """(index) => {
  const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[index];
  const area = cell.querySelector('.jp-OutputArea');
  const ids = new WeakMap(); let next = 0;
  const idOf = n => { if (!n) return null; if (!ids.has(n)) ids.set(n, ++next); return ids.get(n); };
  const log = window.__dm = {samples: [], mutations: [], t0: performance.now()};
  const facts = () => {
    const trace = area.querySelector('.dashmagic-trace');
    const out = trace ? trace.closest('.jp-OutputArea-output') : null;
    const steps = trace ? Array.from(trace.querySelectorAll('details.dm-step')) : [];
    const answer = trace ? trace.querySelector('.dm-answer') : null;
    const reasoning = steps.filter(d => d.classList.contains('dm-reasoning'));
    return {
      t: Math.round(performance.now() - log.t0),
      children: area.querySelectorAll(':scope > .jp-OutputArea-child').length,
      traces: area.querySelectorAll('.dashmagic-trace').length,
      node: idOf(out),
      kinds: steps.map(d => d.classList.contains('dm-reasoning') ? 'R' : d.classList.contains('dm-code-exec') ? 'C' : 'S'),
      open: steps.map(d => d.open),
      reasoningChars: reasoning.map(d => (d.querySelector('.dm-reasoning-text') || {textContent: ''}).textContent.length),
      code: steps.filter(d => d.classList.contains('dm-code-exec')).map(d => (d.querySelector('pre') || {textContent: ''}).textContent.trim()),
      answer: answer ? answer.textContent.length : 0,
      streaming: trace ? /streaming…|waiting for the model/.test(trace.textContent) : false,
    };
  };
  log.facts = facts;
  new MutationObserver(() => { if (log.mutations.length < 20000) log.mutations.push(facts()); })
    .observe(area, {childList: true, subtree: true, characterData: true});
  log.timer = setInterval(() => {
    log.samples.push(facts());
    if (log.samples.length >= 900) clearInterval(log.timer);
  }, 100);
}"""


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeDashScope]:
    with FakeDashScope(api_key="sk-lab-test", event_delay=0.05) as server:
        yield server


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, fake: FakeDashScope) -> Iterator[tuple[Any, str, Path]]:
    root = tmp_path_factory.mktemp("lab")
    env = {"PYTHONPATH": str(HERE.parent), "DASHSCOPE_HTTP_BASE_URL": fake.base_url,
           "DASHSCOPE_API_KEY": fake.api_key, "MPLBACKEND": "Agg"}
    with jupyter_lab(_LAB, root, kernel_python=lab_kernel_python(_LAB), kernel_env=env) as base, \
            launch() as browser:
        context = browser.new_context(viewport={"width": 1000, "height": 900})
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
            (base, "data:", "blob:")) else route.abort())  # nothing leaves loopback
        try:
            yield context, base, root
        finally:
            context.close()


def _widgets(lab: tuple[Any, str, Path]) -> None:
    if lab_kernel_python(_LAB) == sys.executable:
        pytest.skip("the DASHMAGIC_JUPYTER_LAB venv has no ipywidgets (pip install ipywidgets -e .)")


# -- live streaming of today's trace (issue 9) ---------------------------------------------------


def _stream(lab: tuple[Any, str, Path], name: str, shots: Path | None = None, suffix: str = "") -> dict[str, Any]:
    """Run the code-interpreter cell in notebook ``name`` and return what the sampler saw.
    With ``shots``, screenshots are taken at three moments (reasoning, code in place, done)."""
    context, _, root = lab
    lab_notebook(root, name, ["%load_ext dashmagic", CI_CELL, "print('cell 3 ran')"])
    page = lab_open(context, lab[1], name)
    lab_run_cell(page, 0)
    page.evaluate(_SAMPLER, 1)
    started = time.monotonic()
    page.click(".jp-Notebook .jp-Cell >> nth=1 >> .jp-InputArea-editor")
    page.keyboard.press("Shift+Enter")
    moments = {"reasoning": "s => s.kinds.length === 1 && s.kinds[0] === 'R' && s.reasoningChars[0] > 40",
               "code": "s => s.code.length === 1 && s.code[0].includes('123') && s.answer === 0",
               "done": "s => s.traces === 1 && !s.streaming && s.answer > 0"}
    for moment, test in moments.items():
        page.wait_for_function(f"() => ({test})(window.__dm.facts())", timeout=60_000, polling=20)
        if shots is not None:
            cell = page.locator(".jp-Notebook .jp-Cell >> nth=1")
            cell.screenshot(path=str(shots / f"current-live-{moment}-{suffix}.png"), animations="disabled")
    page.wait_for_selector(".jp-Notebook .jp-Cell >> nth=1 >> .jp-InputPrompt:has-text('[2]')", timeout=60_000)
    took = time.monotonic() - started
    time.sleep(0.3)  # two more samples of the settled output
    log = page.evaluate("() => { clearInterval(window.__dm.timer); return window.__dm; }")
    final = page.evaluate("""() => {
        const out = document.querySelectorAll('.jp-Notebook .jp-Cell')[1].querySelector('.dashmagic-trace');
        return {text: out.innerText, open: Array.from(out.querySelectorAll('details')).map(d => d.open)}; }""")
    saved = _saved_bundle(page, root / name, 1)
    page.close()
    return {"samples": log["samples"], "mutations": log["mutations"], "final": final, "saved": saved, "took": took}


def _saved_bundle(page: Any, path: Path, index: int) -> dict[str, str]:
    """Save the notebook from JupyterLab and return the trace output of cell ``index`` as it was
    written (what nbconvert would read). Bounded: 3 saves, 5 s each."""
    for _ in range(3):
        page.keyboard.press("Escape")
        page.click(".jp-NotebookPanel-toolbar [data-command='docmanager:save']")
        for _ in range(50):
            cells = json.loads(path.read_text("utf-8"))["cells"]
            for output in cells[index].get("outputs", []):
                data = output.get("data", {})
                if "dashmagic-trace" in "".join(data.get("text/html", "")):
                    return {k: "".join(v) if isinstance(v, list) else v for k, v in data.items()}
            time.sleep(0.1)
    raise AssertionError("the notebook was not saved with the trace output")


def _check_stream(run: dict[str, Any]) -> dict[str, Any]:
    """The assertions of issue 9's "Done means" on one sampled run; returns the numbers."""
    records = sorted(run["samples"] + run["mutations"], key=lambda s: s["t"])
    seen = [r for r in records if r["traces"]]
    assert seen, "the trace never appeared"
    first = records.index(seen[0])
    # No flicker: from its first appearance on, the trace is there in every record, once, in
    # one output node that JupyterLab keeps (an update re-renders in place).
    after = records[first:]
    assert all(r["traces"] == 1 for r in after), [r["traces"] for r in after if r["traces"] != 1][:5]
    assert all(r["children"] >= 1 for r in after)
    children = [r["children"] for r in after]
    assert children == sorted(children), "an output disappeared between updates"
    nodes = {r["node"] for r in after}
    # While reasoning streams alone, the step is visible and open.
    reasoning_only = [r for r in after if r["kinds"] == ["R"] and r["answer"] == 0 and r["streaming"]]
    assert reasoning_only, "no moment with the reasoning streaming on its own"
    assert all(r["open"] == [True] for r in reasoning_only)
    grew = [r["reasoningChars"][0] for r in reasoning_only]
    assert grew[-1] > grew[0], "the reasoning did not grow while it streamed"
    # The code block appears in its place (after the first reasoning) and never duplicates.
    with_code = [r for r in after if "C" in r["kinds"]]
    assert with_code, "the code block never appeared"
    assert all(r["kinds"].count("C") <= 1 for r in after)
    assert all(r["kinds"].index("C") == 1 and r["kinds"][0] == "R" for r in with_code)
    codes = [r["code"][0] for r in with_code if r["code"] and r["code"][0]]
    assert codes and all(c == codes[-1] for c in codes if "123" in c) and "123**21" in codes[-1].replace(" ", "")
    # Once the answer starts, every reasoning step is folded (the code stays open).
    answering = [r for r in after if r["answer"] > 0]
    assert answering, "the answer never appeared"
    for r in answering:
        assert all(not o for k, o in zip(r["kinds"], r["open"]) if k == "R"), r
    assert all(r["answer"] >= prev["answer"] for prev, r in zip(answering, answering[1:]))
    # The final output is what nbconvert shows: the saved bundle, rendered, reads the same.
    final = run["final"]
    assert POWER in final["text"]
    first_reasoning = next(r for r in after if "R" in r["kinds"])
    first_answer = answering[0]
    return {
        "records": len(records), "samples": len(run["samples"]), "mutations": len(run["mutations"]),
        "updates_seen": len({(tuple(r["reasoningChars"]), tuple(r["code"]), r["answer"]) for r in after}),
        "output_nodes": len(nodes), "first_trace_ms": seen[0]["t"], "first_reasoning_ms": first_reasoning["t"],
        "code_ms": with_code[0]["t"], "answer_ms": first_answer["t"], "done_ms": after[-1]["t"],
        "reasoning_only_records": len(reasoning_only), "took_s": round(run["took"], 2),
    }


def _same_as_nbconvert(browser_context: Any, run: dict[str, Any], theme: str = "light") -> None:
    page = browser_context.new_page()
    try:
        page.set_content(jupyterlab_page(run["saved"]["text/html"], theme))  # type: ignore[arg-type]
        static = page.evaluate("""() => { const t = document.querySelector('.dashmagic-trace');
            return {text: t.innerText, open: Array.from(t.querySelectorAll('details')).map(d => d.open)}; }""")
    finally:
        page.close()
    assert static["open"] == run["final"]["open"]
    assert " ".join(static["text"].split()) == " ".join(run["final"]["text"].split())


def test_live_stream_of_thinking_and_code(lab: tuple[Any, str, Path]) -> None:
    run = _stream(lab, "live.ipynb")
    if os.environ.get("DASHMAGIC_LAB_DUMP"):
        Path(os.environ["DASHMAGIC_LAB_DUMP"]).write_text(json.dumps(run), "utf-8")
    numbers = _check_stream(run)
    _same_as_nbconvert(lab[0], run)
    print("live stream:", json.dumps(numbers))


# -- the map progress widget and the batch watch (issue 11) ----------------------------------------

_MAP_CELL = """import dashmagic
prompts = [f"Classify review {i}: it was fine" for i in range(30)]
traces = dashmagic.map(prompts, concurrency=4, update_interval=0.2)
print("map done", sum(t.status == "complete" for t in traces), sum(t.status == "error" for t in traces))"""


def _done(label: str) -> int:
    """The rows done in a progress label (``12/30 · …`` or, total unknown, ``12 · …``)."""
    match = re.match(r"\s*([\d,]+)(?:/[\d,]+)? ·", label)
    assert match, label
    return int(match.group(1).replace(",", ""))


def _label(page: Any, cell: int) -> str:
    """The progress widget's label while it runs; once the batch ends the widget gives way to the
    static summary line a saved notebook keeps (``.dashmagic-progress``)."""
    here = page.locator(f".jp-Notebook .jp-Cell >> nth={cell}")
    widget = here.locator(".widget-html-content")
    if widget.count():
        try:
            return str(widget.first.inner_text(timeout=2_000))
        except Exception:  # noqa: BLE001 - closed between the count and the read
            pass
    return str(here.locator(".dashmagic-progress").first.inner_text(timeout=10_000))


def test_map_progress_widget(lab: tuple[Any, str, Path], fake: FakeDashScope) -> None:
    _widgets(lab)
    context, base, root = lab
    lab_notebook(root, "map.ipynb", [_MAP_CELL])
    fake.pace(latency=0.4, rate=6.0, burst=2)  # 4 workers x 2.5 rows/s > 6/s: some 429s, retried
    fake.inject("access_denied", times=2)  # two rows fail for good (403 is not retried)
    fake.inject("throttle", times=3)  # then three 429s: retried, and shown as retrying
    try:
        page = lab_open(context, base, "map.ipynb")
        lab_run_cell(page, 0, done=".widget-hprogress")
        labels = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # bounded: sample the label every ~150 ms
            text = _label(page, 0)
            if not labels or labels[-1] != text:
                labels.append(text)
            if "took" in text:
                break
            if len(labels) == 4:
                page.locator(".jp-Notebook .jp-Cell >> nth=0").screenshot(
                    path=str(root / "map-progress-running.png"), animations="disabled")
            time.sleep(0.15)
        page.wait_for_selector(".jp-RenderedText:has-text('map done')", timeout=60_000)
        page.locator(".jp-Notebook .jp-Cell >> nth=0").screenshot(path=str(root / "map-progress-done.png"))
        final = _label(page, 0)
        widgets_left = page.locator(".jp-Notebook .jp-Cell >> nth=0 >> .widget-hprogress").count()
        static = page.locator(".jp-Notebook .jp-Cell >> nth=0 >> .dashmagic-progress progress").first
        bar = (static.get_attribute("value"), static.get_attribute("max"))
        printed = page.locator(".jp-RenderedText:has-text('map done')").inner_text()
        page.close()
    finally:
        fake.pace()
    running = [t for t in labels if "ETA" in t]
    assert running, labels
    assert all(" ok" in t and " failed" in t and " retrying" in t for t in running)
    assert any(re.search(r"\b[1-9]\d* retrying", t) for t in running), labels  # the 429s showed
    done_counts = [_done(t) for t in labels]
    assert done_counts == sorted(done_counts) and done_counts[-1] == 30
    assert len(set(done_counts)) >= 3, labels  # it updated while running, not only at the end
    assert "30/30" in final and "28 ok" in final and "2 failed" in final and "took" in final
    assert widgets_left == 0 and bar == ("30", "30")  # the bar gave way to the static final line
    assert "map done 28 2" in printed
    print("map widget:", len(labels), "distinct labels; throttled 429s:", fake.throttled, "; first:", labels[0],
          "; last:", final)


_BATCH_CELL = """import dashmagic.batch
job = dashmagic.batch.submit([f"Summarise note {i}" for i in range(12)], model="batch-test-model")
job.watch(poll=0.3, timeout=60)
print("batch", job.status, job.info.counts.done)"""


def test_batch_watch_widget(lab: tuple[Any, str, Path], fake: FakeDashScope) -> None:
    _widgets(lab)
    from dashmagic.testing.batch import batches_of

    context, base, root = lab
    state = batches_of(fake)
    state.realtime, state.validate_delay, state.row_delay = True, 1.0, 0.3
    lab_notebook(root, "batch.ipynb", [_BATCH_CELL])
    page = lab_open(context, base, "batch.ipynb")
    lab_run_cell(page, 0, done=".widget-hprogress")
    labels: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = _label(page, 0)
        if not labels or labels[-1] != text:
            labels.append(text)
        if page.locator(".jp-RenderedText:has-text('batch ')").count():
            break
        time.sleep(0.15)
    page.locator(".jp-Notebook .jp-Cell >> nth=0").screenshot(path=str(root / "batch-watch.png"))
    printed = page.locator(".jp-RenderedText:has-text('batch ')").inner_text()
    page.close()
    assert "batch completed 12" in printed
    counts = [_done(t) for t in labels]
    assert counts and counts == sorted(counts) and counts[-1] == 12 and len(set(counts)) >= 3, labels
    print("batch watch:", len(labels), "distinct labels:", labels[:2], "…", labels[-1])


# -- the trace's controls (issue 12) -------------------------------------------------------------


def test_controls_run_locally(lab: tuple[Any, str, Path]) -> None:
    _widgets(lab)
    context, base, root = lab
    lab_notebook(root, "controls.ipynb", ["%load_ext dashmagic", CI_CELL])
    page = lab_open(context, base, "controls.ipynb")
    lab_run_cell(page, 0)
    lab_run_cell(page, 1, done="button:has-text('Run locally')", timeout=60)
    cell = page.locator(".jp-Notebook .jp-Cell >> nth=1")
    page.wait_for_selector(".jp-Notebook .jp-Cell >> nth=1 >> .jp-InputPrompt:has-text('[2]')", timeout=60_000)
    buttons = cell.locator(".jupyter-button").all_inner_texts()
    assert [b.strip() for b in buttons] == ["Show code to copy", "New cell", "Run locally"]
    cell.locator("button:has-text('Show code to copy')").click()
    assert "123" in cell.locator("textarea").input_value()
    cell.locator("button:has-text('Run locally')").click()
    # The local run's step arrives in the widget's output, after the cell has finished.
    cell.locator(".widget-output .dashmagic-trace:has-text('not on DashScope')").wait_for(timeout=60_000)
    text = cell.locator(".widget-output .dashmagic-trace").inner_text()
    # Only the new step under the buttons: the trace is already on screen above them.
    shown = cell.locator(".widget-output .dashmagic-trace").evaluate(
        "t => ({runs: t.querySelectorAll('details.dm-local-run').length, answers: t.querySelectorAll('.dm-answer').length,"
        " steps: t.querySelectorAll('details.dm-step').length})")
    assert cell.locator(".dm-answer").count() == 1  # the trace's own answer, once
    cell.locator("button:has-text('Show code to copy')").click()  # fold the copy box for the picture
    cell.screenshot(path=str(root / "trace-controls.png"))
    page.close()
    assert shown == {"runs": 1, "answers": 0, "steps": 1}, shown
    assert POWER in text  # the code ran here and printed 123**21


# -- pictures for docs/screenshots ---------------------------------------------------------------


def make_screenshots(out: Path) -> None:
    """current-live-{reasoning,code,done}-{light,dark}.png, map-progress-*.png, batch-watch.png,
    trace-controls.png: the same runs as the tests, against a fresh server per theme."""
    import shutil
    import tempfile

    out.mkdir(parents=True, exist_ok=True)
    for theme in ("light", "dark"):
        with tempfile.TemporaryDirectory(prefix="dm-lab-") as tmp, \
                FakeDashScope(api_key="sk-lab-test", event_delay=0.1) as server:
            root = Path(tmp)
            env = {"PYTHONPATH": str(HERE.parent), "DASHSCOPE_HTTP_BASE_URL": server.base_url,
                   "DASHSCOPE_API_KEY": server.api_key, "MPLBACKEND": "Agg"}
            with jupyter_lab(_LAB, root, kernel_python=lab_kernel_python(_LAB), kernel_env=env, theme=theme) as base, \
                    launch() as browser:
                context = browser.new_context(viewport={"width": 1000, "height": 900})
                lab = (context, base, root)
                numbers = _check_stream(_stream(lab, "live.ipynb", shots=out, suffix=theme))
                print(theme, json.dumps(numbers))
                if theme == "light":
                    test_map_progress_widget(lab, server)
                    test_batch_watch_widget(lab, server)
                    test_controls_run_locally(lab)
                    for name in ("map-progress-running", "map-progress-done", "batch-watch", "trace-controls"):
                        shutil.copy(root / f"{name}.png", out / f"{name}.png")
                context.close()


if __name__ == "__main__":
    make_screenshots(Path(sys.argv[1]))
