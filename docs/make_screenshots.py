"""Screenshots of the seven documented exchanges as dashmagic renders them, light and dark,
and of today's generation (thinking + built-in code interpreter, web search with citations).

    python docs/make_screenshots.py            # writes docs/screenshots/<name>-<theme>.png
    python docs/make_screenshots.py current    # only today's: current-<name>-<theme>.png

Traces come from the bundled demo recording through the real pipeline (replay transport, SSE
decoder, trace builder, figure fetcher, HTML renderer), then headless Debian Chromium renders
them on a page with JupyterLab's light or dark theme variables. Chinese text needs a CJK font
(Debian: fonts-noto-cjk); CI does not make screenshots, so it does not install one.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the browser helper lives with the browser tests

from _browser import html_page, launch, viewer  # noqa: E402
from _render_current import EN_THINK_2, english_thinking_code_trace, search_trace  # noqa: E402

import dashmagic  # noqa: E402
from dashmagic.images import ImageCache, ImagePolicy  # noqa: E402
from dashmagic.transport import image_session_for  # noqa: E402
from dashmagic.render.html import render_html  # noqa: E402
from dashmagic.testing import load_exchanges  # noqa: E402
from dashmagic.trace import Reasoning  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def traces() -> dict[str, tuple[dashmagic.Trace, dict]]:
    images = ImageCache(ImagePolicy.for_base_url("https://dashscope.aliyuncs.com/api/v1", offline=True),
                        session=image_session_for("replay", "demo"))
    out = {}
    for exchange in load_exchanges():
        content = exchange.request["input"]["messages"][-1]["content"]
        prompt = content if isinstance(content, str) else content[0]["text"]
        files = () if isinstance(content, str) else tuple(p["file"] for p in content if "file" in p)
        trace = dashmagic.run(prompt, plugins=exchange.plugins, seed=42, files=files, mode="replay", recordings="demo")
        out[exchange.name] = (trace, images.fetch_all([f.url for f in trace.figures]))
    return out


def current_traces() -> dict[str, tuple[dashmagic.Trace, dict]]:
    """Today's steps, built from the trace dataclasses (the wire format is tested elsewhere);
    English text, since the screenshot machine may lack a CJK font."""
    done = english_thinking_code_trace()
    # Mid-stream: the code has run and the second thought is still growing, so it is open.
    live = done.replace(steps=done.steps[:2] + (Reasoning(EN_THINK_2[:90]),), status="partial", finish_reason=None)
    return {
        "current-thinking-live": (live, {}),
        "current-thinking-code": (done, {}),
        "current-search": (search_trace(), {}),
    }


def main(argv: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    wanted = current_traces() if argv[:1] == ["current"] else {**traces(), **current_traces()}
    with launch() as browser, viewer(browser, width=860) as view:
        for name, (trace, images) in wanted.items():
            for theme in ("light", "dark"):
                path = view.screenshot(html_page(render_html(trace, images), theme), OUT / f"{name}-{theme}.png")
                print(path.relative_to(ROOT))


if __name__ == "__main__":
    main(sys.argv[1:])
