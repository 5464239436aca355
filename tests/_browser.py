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


# -- the frontends a saved notebook is read in ---------------------------------------------------
# JupyterLab's own CSS as nbconvert's ``lab`` template ships it (index.css is JupyterLab's
# compiled application stylesheet, theme-*.css its theme variables): the rules that
# right-align table cells and paint ``<code>`` are JupyterLab's real ones, not a copy.

_OUTPUT_DIV = (
    '<div class="jp-Cell jp-CodeCell jp-Notebook-cell"><div class="jp-Cell-outputWrapper">'
    '<div class="jp-OutputArea jp-Cell-outputArea"><div class="jp-OutputArea-child">'
    '<div class="jp-OutputPrompt jp-OutputArea-prompt"></div>'
    '<div class="jp-RenderedHTMLCommon jp-RenderedHTML jp-OutputArea-output" '
    'data-mime-type="text/html">{html}</div></div></div></div></div>'
)
_DROPPED_ELEMENTS = {"style", "script"}
_VOID_TAGS = {"br", "hr", "img", "wbr", "col", "area", "input", "meta", "link", "source", "embed"}


def lab_static() -> Path | None:
    """nbconvert's ``lab`` template static folder (JupyterLab's CSS), if nbconvert is there."""
    import sys

    candidates = [Path(sys.prefix) / "share" / "jupyter" / "nbconvert" / "templates" / "lab" / "static"]
    try:
        from jupyter_core.paths import jupyter_path

        candidates += [Path(p) / "lab" / "static" for p in jupyter_path("nbconvert", "templates")]
    except ImportError:
        pass
    return next((p for p in candidates if (p / "index.css").is_file()), None)


def lab_css(theme: Theme = "light") -> str:
    static = lab_static()
    if static is None:
        raise FileNotFoundError("nbconvert's lab template (JupyterLab's CSS) is not installed")
    return (static / f"theme-{theme}.css").read_text("utf-8") + "\n" + (static / "index.css").read_text("utf-8")


def jupyterlab_page(output_html: str, theme: Theme = "light", trusted: bool = True) -> str:
    """``output_html`` as JupyterLab shows a ``text/html`` output, with JupyterLab's CSS.

    Untrusted, the output first goes through :func:`jupyterlab_sanitize`, as JupyterLab's
    sanitizer does for a notebook that was opened fresh or came from someone else.
    """
    html = output_html if trusted else jupyterlab_sanitize(output_html)
    light = "true" if theme == "light" else "false"
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>JupyterLab output</title>'
        f"<style>{lab_css(theme)}\nbody{{margin:0;padding:12px;background:var(--jp-layout-color0)}}"
        f'</style></head><body class="jp-Notebook" data-jp-theme-light="{light}">'
        f"{_OUTPUT_DIV.format(html=html)}</body></html>\n"
    )


def nbconvert_page(bundle: dict[str, str], theme: Theme = "light") -> str:
    """A one-cell notebook holding ``bundle`` as a display_data output, through nbconvert's
    HTML exporter (the ``lab`` template, as ``jupyter nbconvert --to html`` writes it)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("%%dashscope\n…", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("display_data", data=dict(bundle))]
    nb.cells = [cell]
    exporter = HTMLExporter(template_name="lab", theme=theme)
    body, _ = exporter.from_notebook_node(nb)
    return body


class _Refilter:
    """Re-serialise HTML keeping what a sanitizer keeps (stdlib html.parser)."""

    def __init__(self, drop_attrs: frozenset[str]) -> None:
        from html.parser import HTMLParser

        self.out: list[str] = []
        self.skip = 0
        self.drop_attrs = drop_attrs
        refilter = self

        class _P(HTMLParser):
            def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
                refilter.start(tag, attrs)

            def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
                refilter.start(tag, attrs)
                if tag not in _VOID_TAGS:
                    refilter.end(tag)

            def handle_endtag(self, tag: str) -> None:
                refilter.end(tag)

            def handle_data(self, data: str) -> None:
                if not refilter.skip:
                    import html as _h

                    refilter.out.append(_h.escape(data, quote=False))

        self.parser = _P(convert_charrefs=True)

    def start(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        import html as _h

        if tag in _DROPPED_ELEMENTS:
            self.skip += 1
            return
        if self.skip:
            return
        kept = [
            f' {name}="{_h.escape(value or "", quote=True)}"' if value is not None else f" {name}"
            for name, value in attrs
            if name not in self.drop_attrs and not name.startswith("on")
        ]
        self.out.append(f"<{tag}{''.join(kept)}>")

    def end(self, tag: str) -> None:
        if tag in _DROPPED_ELEMENTS:
            self.skip = max(0, self.skip - 1)
        elif not self.skip and tag not in _VOID_TAGS:
            self.out.append(f"</{tag}>")

    def run(self, markup: str) -> str:
        self.parser.feed(markup)
        self.parser.close()
        return "".join(self.out)


def jupyterlab_sanitize(markup: str) -> str:
    """What JupyterLab's sanitizer leaves of an untrusted output, for dashmagic's markup:
    ``<style>`` (and scripts, handlers) go; classes, ``open`` and ``text-align`` styles stay."""
    return _Refilter(frozenset()).run(markup)


def github_filter(markup: str) -> str:
    """HTML as GitHub's notebook viewer filters it: no ``<style>``, no ``style``, ``id`` or
    ``class`` attributes (classes are dropped wholesale here: the strictest reading)."""
    return _Refilter(frozenset({"style", "id", "class"})).run(markup)


# -- a real JupyterLab server on loopback (opt-in: DASHMAGIC_JUPYTER_LAB) -------------------------


def lab_kernel_python(jupyter: str) -> str:
    """The interpreter for the kernel: the JupyterLab venv's own python when it has ipywidgets
    (widgets need the kernel side and the lab extension from the same install), else this one."""
    import subprocess
    import sys

    candidate = Path(jupyter).parent / "python"
    if candidate.is_file():
        probe = subprocess.run([str(candidate), "-c", "import ipywidgets, requests"], capture_output=True, timeout=60)
        if probe.returncode == 0:
            return str(candidate)
    return sys.executable


@contextmanager
def jupyter_lab(
    jupyter: str, root: Path, *, kernel_python: str, kernel_env: dict[str, str], theme: Theme = "light"
) -> Iterator[str]:
    """A JupyterLab server on 127.0.0.1 serving ``root`` (token ``dm``), with one kernelspec
    ``dm`` that runs ``kernel_python`` with ``kernel_env``; yields its base URL.

    Everything (config, data, runtime, user settings) lives under ``root``; news and update
    checks are off, so the page asks nothing of the network. Waits are bounded (60 s to answer).
    """
    import json
    import socket
    import subprocess
    import time

    kernels = root / "data" / "kernels" / "dm"
    kernels.mkdir(parents=True, exist_ok=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [kernel_python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "dashmagic under test", "language": "python", "env": kernel_env,
    }))
    set_lab_theme(root, theme)
    # No "get notified about Jupyter news?" toast over the page (and no request for news).
    (root / "cfg" / "labconfig").mkdir(parents=True, exist_ok=True)
    (root / "cfg" / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The server needs none of dashmagic's settings; the kernel gets exactly kernel_env.
    server_env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "DASHMAGIC_"))}
    env = {**server_env, "JUPYTER_PATH": str(root / "data"), "JUPYTER_CONFIG_DIR": str(root / "cfg"),
           "JUPYTER_RUNTIME_DIR": str(root / "run"), "JUPYTER_DATA_DIR": str(root / "data"),
           "JUPYTERLAB_SETTINGS_DIR": str(root / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(root / "ws")}
    server = subprocess.Popen(
        [jupyter, "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         "--IdentityProvider.token=dm", f"--ServerApp.root_dir={root}", "--LabApp.news_url=",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(120):  # bounded: 60 s for the server to answer
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError(f"JupyterLab did not listen on 127.0.0.1:{port} within 60 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def set_lab_theme(root: Path, theme: Theme) -> None:
    """JupyterLab's theme, as a user setting (read when the page loads: reload to apply)."""
    import json

    settings = root / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    name = "JupyterLab Light" if theme == "light" else "JupyterLab Dark"
    (settings / "themes.jupyterlab-settings").write_text(json.dumps({"theme": name}))
    # No "get notified about Jupyter news?" toast over the outputs (and no fetch of the news).
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))


def lab_notebook(root: Path, name: str, cells: list[str]) -> Path:
    """A notebook of code cells on the ``dm`` kernelspec."""
    import nbformat

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "dm", "display_name": "dm", "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    path = root / name
    nbformat.write(nb, path)
    return path


def lab_open(context: Any, base: str, name: str) -> Any:
    """Open notebook ``name`` in a new tab and wait (bounded) until its kernel is idle."""
    page = context.new_page()
    # ``reset``: a fresh workspace, so notebooks opened by earlier tabs are not restored beside it
    page.goto(f"{base}/lab/tree/{name}?token=dm&reset", wait_until="domcontentloaded", timeout=90_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    page.wait_for_selector(".jp-StatusBar-TextItem:has-text('| Idle')", timeout=90_000)
    return page


def lab_run_cell(page: Any, index: int, done: str | None = None, timeout: float = 30.0) -> None:
    """Run cell ``index`` (click its editor, Shift+Enter). ``done``: a selector, inside the cell,
    that shows it ran; a keypress that lands while the kernel is still starting is lost, so the
    run is retried (bounded: 3 tries). Without ``done``, the cell's execution count is awaited."""
    cell = f".jp-Notebook .jp-Cell >> nth={index}"
    for attempt in range(3):
        page.click(f"{cell} >> .jp-InputArea-editor")
        page.keyboard.press("Shift+Enter")
        try:
            if done is not None:
                page.locator(cell).locator(done).first.wait_for(state="attached", timeout=timeout * 1000)
            else:
                page.wait_for_function(
                    "i => { const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[i];"
                    " const p = c && c.querySelector('.jp-InputPrompt');"
                    " return p && /\\[\\d+\\]/.test(p.textContent); }", arg=index, timeout=timeout * 1000)
            return
        except Exception:  # playwright's TimeoutError: try again
            if attempt == 2:
                raise
