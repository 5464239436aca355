"""Screenshots of the seven documented exchanges as dashmagic renders them, light and dark.

    python docs/make_screenshots.py            # writes docs/screenshots/<name>-<theme>.png

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

import dashmagic  # noqa: E402
from dashmagic.images import ImageCache, ImagePolicy  # noqa: E402
from dashmagic.transport import image_session_for  # noqa: E402
from dashmagic.render.html import render_html  # noqa: E402
from dashmagic.testing import load_exchanges  # noqa: E402

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


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with launch() as browser, viewer(browser, width=860) as view:
        for name, (trace, images) in traces().items():
            for theme in ("light", "dark"):
                path = view.screenshot(html_page(render_html(trace, images), theme), OUT / f"{name}-{theme}.png")
                print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
