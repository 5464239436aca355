"""The Approve / Reject buttons of a tool loop in a real JupyterLab, clicked in headless Chromium.

Opt-in, like the live-lab tests of ``test_render_frontends.py``: set ``DASHMAGIC_JUPYTER_LAB`` to a
``jupyter`` executable that has JupyterLab and ``jupyterlab_widgets`` (a scratch venv; neither is
a dependency). The server and the fake DashScope listen on loopback only; the kernel is this
interpreter with this checkout on ``PYTHONPATH`` (it needs ipywidgets), in live mode against the
fake, whose scripted model calls the notebook's ``top_regions`` then ``change``.

What is checked is the point of the buttons: the ``%%dashscope`` cell has *finished* (its prompt
shows its number, the kernel is idle) while a call is pending; the click continues the loop from
the widget's callback, and the same trace output (still one per cell) gains the result and the
answer. Rejecting sends "declined" to the model, which says so.

    DASHMAGIC_JUPYTER_LAB=/tmp/fe-lab/bin/jupyter DASHMAGIC_WRITE_SCREENSHOTS=1 \\
        python -m pytest tests/test_lab_tools.py -q      # also docs/screenshots/tools-*.png
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _browser import INSTALL_HINT, available, jupyter_lab, launch

from dashmagic.testing import FakeDashScope
from dashmagic.testing.scripts import SALES_BEST

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "screenshots"
_LAB = os.environ.get("DASHMAGIC_JUPYTER_LAB", "")
WAIT = 90_000  # ms: the upper bound of every wait (a 2-core machine starting JupyterLab)

_SETUP = '''%load_ext dashmagic
import pandas as pd

sales = pd.DataFrame(
    {"Jan": [120, 95, 143, 80], "Feb": [132, 90, 150, 86], "Mar": [128, 101, 162, 91], "Apr": [141, 99, 171, 97]},
    index=pd.Index(["North", "South", "East", "West"], name="region"),
)
ran = []


def top_regions(n: int) -> list:
    """The n regions with the highest total sales, best first.

    Args:
        n: How many regions to return.
    """
    ran.append("top_regions")
    totals = sales.sum(axis=1).sort_values(ascending=False).head(n)
    return [{"region": region, "total": int(total)} for region, total in totals.items()]


def change(region: str, month_from: str, month_to: str) -> dict:
    """Percentage change of one region's sales between two months.

    Args:
        region: A region, e.g. "North".
        month_from: The earlier month (Jan, Feb, Mar, Apr).
        month_to: The later month.
    """
    ran.append("change")
    start, end = int(sales.loc[region, month_from]), int(sales.loc[region, month_to])
    return {"region": region, "from": start, "to": end, "change_pct": round(100 * (end - start) / start, 1)}'''
_ASK = f"%%dashscope --tools top_regions,change --out {{out}}\n{SALES_BEST}"
_CHECK = 'print("ran:", ran, "| approved:", approved.ok, "| rejected:", rejected.tool_runs[0].approval)'

pytestmark = pytest.mark.skipif(not (_LAB and Path(_LAB).is_file()),
                                reason="set DASHMAGIC_JUPYTER_LAB to a jupyter executable with JupyterLab")


def _notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "dm", "display_name": "dm", "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(s) for s in
                (_SETUP, _ASK.format(out="approved"), _ASK.format(out="rejected"), _CHECK)]
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    if not available():
        pytest.skip(INSTALL_HINT)
    pytest.importorskip("ipywidgets", reason="the kernel needs ipywidgets for the buttons")
    root = tmp_path_factory.mktemp("lab-tools")
    _notebook(root / "tools.ipynb")
    with FakeDashScope() as fake:
        # live mode against the fake: the key is the fake's own, never a real one
        kernel_env = {"PYTHONPATH": str(ROOT), "DASHMAGIC_MODE": "live", "DASHMAGIC_LIVE": "1",
                      "DASHSCOPE_HTTP_BASE_URL": fake.base_url, "DASHSCOPE_API_KEY": fake.api_key}
        with jupyter_lab(_LAB, root, kernel_python=sys.executable, kernel_env=kernel_env) as base, launch() as browser:
            context = browser.new_context(viewport={"width": 1280, "height": 1000})
            try:
                yield context, base
            finally:
                context.close()


def _run_cell(page: Any, index: int) -> Any:
    """Select cell ``index`` and run it with Shift+Enter; its locator, once its prompt has a number."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    prompt = cell.locator(".jp-InputPrompt")
    for _ in range(3):  # bounded: a keypress that lands while the kernel is still starting is lost
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function("p => /\\[\\d+\\]/.test(p.textContent)", arg=prompt.element_handle(),
                                   timeout=WAIT // 3)
            return cell
        except Exception:  # playwright's TimeoutError: press again
            continue
    raise AssertionError(f"cell {index} never finished: prompt {prompt.text_content()!r}")


def _idle(page: Any) -> None:
    page.wait_for_selector(".jp-StatusBar-TextItem:has-text('| Idle')", timeout=WAIT)


def _click(cell: Any, label: str) -> None:
    button = cell.locator(f".jp-OutputArea-output button.widget-button:has-text('{label}')").first
    button.wait_for(state="visible", timeout=WAIT)
    button.click()


def _trace_text(cell: Any) -> str:
    traces = cell.locator(".jp-OutputArea-output .dashmagic-trace")
    assert traces.count() == 1, f"{traces.count()} traces in one cell: the loop must update its own output"
    return str(traces.first.inner_text())


def _wait_for_text(cell: Any, text: str) -> None:
    cell.locator(".jp-OutputArea-output .dashmagic-trace", has_text=text).first.wait_for(timeout=WAIT)


def _shot(cell: Any, name: str) -> None:
    if os.environ.get("DASHMAGIC_WRITE_SCREENSHOTS") != "1":
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    cell.screenshot(path=str(path), animations="disabled")
    assert path.stat().st_size > 1000
    print(json.dumps({"screenshot": str(path), "bytes": path.stat().st_size}))


def test_approve_and_reject_in_a_real_jupyterlab(lab: tuple[Any, str]) -> None:
    context, base = lab
    page = context.new_page()
    page.goto(f"{base}/lab/tree/tools.ipynb?token=dm", wait_until="domcontentloaded", timeout=WAIT)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=WAIT)
    _idle(page)
    _run_cell(page, 0)
    _idle(page)

    # Approve: the cell finishes with the first call pending, then each click continues the loop.
    cell = _run_cell(page, 1)
    _idle(page)
    assert "Waiting for your approval" in _trace_text(cell)  # the cell is done, nothing ran yet
    _click(cell, "Approve")  # after the cell's prompt got its number and the kernel went idle
    cell.locator(".widget-label", has_text="change(").first.wait_for(timeout=WAIT)  # round 2 asks again
    text = _trace_text(cell)
    assert "626" in text and "Waiting for your approval" in text  # top_regions ran, change waits
    _shot(cell, "tools-pending.png")
    _click(cell, "Approve")
    _wait_for_text(cell, "East rose from 143 to 171")
    cell.locator(".widget-label", has_text="Done: every call was answered").wait_for(timeout=WAIT)
    text = _trace_text(cell)
    assert "approved" in text and "19.6" in text and "Waiting for your approval" not in text
    assert cell.locator("button.widget-button").count() == 0  # the buttons are gone
    _shot(cell, "tools-approved.png")

    # Reject: the first call is declined; the model is told so and answers without it.
    cell = _run_cell(page, 2)
    _idle(page)
    _click(cell, "Reject")
    _wait_for_text(cell, "You declined the call")
    text = _trace_text(cell)
    assert "declined by the user" in text and "rejected" in text

    # The kernel's view: the approved functions ran there, the rejected one never did.
    cell = _run_cell(page, 3)
    out = cell.locator(".jp-OutputArea-output").first
    out.wait_for(timeout=WAIT)
    assert "ran: ['top_regions', 'change'] | approved: True | rejected: rejected" in out.inner_text()
