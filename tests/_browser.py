"""Headless-Chromium helpers for rendered-output tests and screenshots (Playwright, system chromium).

No ``playwright install`` is needed: Debian's ``/usr/bin/chromium`` is launched directly. Every
request that is not ``file:`` or ``data:`` is aborted and recorded, so a test can prove the page
never tried to reach the network.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
INSTALL_HINT = (
    "needs Playwright and Debian's chromium: pip install playwright && "
    "apt-get install -y --no-install-recommends chromium fonts-dejavu-core "
    "(no `playwright install` needed)"
)

Theme = Literal["light", "dark"]

# A subset of JupyterLab 4's theme variables (theme-light / theme-dark variables.css).
_THEMES: dict[str, dict[str, str]] = {
    "light": {
        "--jp-layout-color0": "#ffffff",
        "--jp-layout-color1": "#ffffff",
        "--jp-layout-color2": "#eeeeee",
        "--jp-border-color2": "#e0e0e0",
        "--jp-ui-font-color1": "rgba(0,0,0,.87)",
        "--jp-ui-font-color2": "rgba(0,0,0,.54)",
        "--jp-content-font-color1": "rgba(0,0,0,.87)",
        "--jp-content-link-color": "#1976d2",
        "--jp-error-color1": "#f44336",
        "--jp-mirror-editor-keyword-color": "#008000",
        "--jp-mirror-editor-string-color": "#ba2121",
        "--jp-mirror-editor-number-color": "#080",
        "--jp-mirror-editor-comment-color": "#408080",
        "--jp-mirror-editor-def-color": "#00f",
        "--jp-mirror-editor-builtin-color": "#008000",
        "--jp-mirror-editor-operator-color": "#a2f",
    },
    "dark": {
        "--jp-layout-color0": "#111111",
        "--jp-layout-color1": "#111111",
        "--jp-layout-color2": "#424242",
        "--jp-border-color2": "#424242",
        "--jp-ui-font-color1": "rgba(255,255,255,.87)",
        "--jp-ui-font-color2": "rgba(255,255,255,.54)",
        "--jp-content-font-color1": "rgba(255,255,255,1)",
        "--jp-content-link-color": "#64b5f6",
        "--jp-error-color1": "#f44336",
        "--jp-mirror-editor-keyword-color": "#4caf50",
        "--jp-mirror-editor-string-color": "#ff7070",
        "--jp-mirror-editor-number-color": "#66bb6a",
        "--jp-mirror-editor-comment-color": "#408080",
        "--jp-mirror-editor-def-color": "#1e88e5",
        "--jp-mirror-editor-builtin-color": "#43a047",
        "--jp-mirror-editor-operator-color": "#d48fff",
    },
}
_COMMON_VARS = {
    "--jp-content-font-family": "system-ui,-apple-system,'Segoe UI',helvetica,arial,sans-serif",
    "--jp-content-font-size1": "14px",
    "--jp-code-font-family": "menlo,consolas,'DejaVu Sans Mono',monospace",
    "--jp-code-font-size": "13px",
}


def available() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return os.path.exists(CHROMIUM)


def html_page(body_html: str, theme: Theme = "light", title: str = "dashmagic trace") -> str:
    """A full HTML document that defines JupyterLab-like CSS variables for ``theme``."""
    if theme not in _THEMES:
        raise ValueError(f'invalid theme, expected "light" or "dark" (not {theme!r})')
    variables = ";".join(f"{k}:{v}" for k, v in {**_COMMON_VARS, **_THEMES[theme]}.items())
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{title}</title><style>:root{{{variables}}}"
        "body{margin:0;padding:16px 20px;background:var(--jp-layout-color0);"
        "color:var(--jp-ui-font-color1);font-family:var(--jp-content-font-family)}"
        f"</style></head><body class=\"theme-{theme}\">\n{body_html}\n</body></html>\n"
    )


@dataclass
class PageLog:
    """What a page did: requests blocked, dialogs opened, console errors."""

    blocked: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)


@contextmanager
def launch() -> Iterator[Any]:
    """A headless system chromium (Playwright sync API)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class Viewer:
    """One offline browser tab that shows HTML documents one after another.

    A new context costs ~0.7 s, so tests and screenshot loops reuse one tab; each
    :meth:`show` navigates to a fresh ``file:`` page, which resets ``window``.
    """

    def __init__(self, browser: Any, width: int = 920) -> None:
        self.log = PageLog()
        self._tmp = tempfile.TemporaryDirectory(prefix="dashmagic-page-")
        self._count = 0
        self._context = browser.new_context(
            viewport={"width": width, "height": 700}, device_scale_factor=1
        )
        self.page = self._context.new_page()
        self.page.route("**/*", self._route)
        self.page.on("dialog", self._dialog)
        self.page.on("console", lambda m: self.log.console.append(m.text) if m.type == "error" else None)

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            self.log.blocked.append(url)
            route.abort()

    def _dialog(self, dialog: Any) -> None:
        self.log.dialogs.append(dialog.message)
        dialog.dismiss()

    def show(self, html: str) -> Any:
        """Load ``html`` (a full document) from a file and wait for its images; return the page."""
        self._count += 1
        path = Path(self._tmp.name) / f"page-{self._count}.html"
        path.write_text(html, encoding="utf-8")
        self.page.goto(path.as_uri(), wait_until="load")
        self.page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
        return self.page

    def screenshot(self, html: str, path: str | os.PathLike[str]) -> Path:
        """A PNG of the page body (tight around the content) at ``path``."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        self.show(html).locator("body").screenshot(path=str(out), animations="disabled")
        return out

    def close(self) -> None:
        self._context.close()
        self._tmp.cleanup()


@contextmanager
def viewer(browser: Any, width: int = 920) -> Iterator[Viewer]:
    v = Viewer(browser, width)
    try:
        yield v
    finally:
        v.close()


@contextmanager
def open_page(browser: Any, html: str, width: int = 920) -> Iterator[tuple[Any, PageLog]]:
    """Open ``html`` offline in a fresh tab and yield ``(page, log)``."""
    with viewer(browser, width) as v:
        yield v.show(html), v.log


def screenshot(
    html: str, path: str | os.PathLike[str], browser: Any = None, width: int = 920
) -> Path:
    """Save a PNG of ``html`` (a full document, see :func:`html_page`) to ``path``.

    ``browser`` may be a launched browser or a :class:`Viewer` (reused, faster); with neither,
    a browser is launched for this one picture.
    """
    if isinstance(browser, Viewer):
        return browser.screenshot(html, path)
    if browser is None:
        with launch() as own:
            return screenshot(html, path, own, width)
    with viewer(browser, width) as v:
        return v.screenshot(html, path)
