"""The HTML building blocks every view uses: the generic renderers and each plugin's views.

Plugin modules (:mod:`dashmagic.plugins`) import this kit, :mod:`._text_kit`, the trace and the
standard library, nothing else; so everything a view needs to stay safe is re-exported here.
The rules (see :mod:`.html`): every untrusted string goes through :func:`esc`, links only through
:func:`link`, images only through :func:`render_figure`, Markdown through
:func:`markdown_to_html`, code through :func:`highlight_code`.
"""

from __future__ import annotations

import base64
import html as _html
from typing import Any

from ..trace import Figure
from ._common import (
    Images,
    clean,
    embeddable,
    format_size,
    http_url,
    image_problem,
    pretty_json,
    redact,
    strip_query,
    url_label,
)
from .markdown import markdown_to_html

__all__ = [
    "SUMMARY_LIMIT",
    "Images",
    "esc",
    "link",
    "pre",
    "badge",
    "kv",
    "warning",
    "highlight_code",
    "render_figure",
    "markdown_to_html",
    "clean",
    "format_size",
    "pretty_json",
]

_REL = "noopener noreferrer nofollow"
#: Characters of a call's arguments the HTML summary line shows; a call view whose arguments
#: fit need not repeat them in its body.
SUMMARY_LIMIT = 100


def esc(text: Any) -> str:
    """The one escaping helper: control characters shown, signed URLs redacted, HTML escaped."""
    return _html.escape(redact(clean(text)), quote=True)


def link(url: str, label: str | None = None) -> str:
    """An ``<a>`` for an http(s) URL (query string removed); anything else is shown as text."""
    target = http_url(url)
    if target is None:
        return f'<span class="dm-mono">{esc(strip_query(url))}</span>'
    text = esc(label if label is not None else target)
    return f'<a href="{esc(target)}" rel="{_REL}" target="_blank">{text}</a>'


def pre(text: str, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<pre{attr}>{esc(text)}</pre>"


def badge(kind: str, text: str) -> str:
    return f'<span class="dm-badge dm-{kind}">{esc(text)}</span>'


def kv(rows: list[tuple[str, str]]) -> str:
    """Key/value rows as a ``<dl>`` (reads as pairs unstyled); values are already-escaped HTML."""
    cells = "".join(f'<dt class="dm-k">{esc(k)}</dt><dd class="dm-v">{v}</dd>' for k, v in rows)
    return f'<dl class="dm-kv">{cells}</dl>' if rows else ""


def warning(text: str) -> str:
    return f'<div class="dm-warning">{badge("warn", text)}</div>'


def highlight_code(code: str, language: str = "python") -> str:
    """Pygments HTML with ``tok-*`` classes (the function itself stays in :mod:`.html`)."""
    # Imported when called: html imports this kit, and Pygments loads only when code is shown.
    from .html import highlight_code as highlight

    return highlight(code, language)


def render_figure(fig: Figure, images: Images | None) -> str:
    """An inline ``data:`` image when bytes were fetched; otherwise a link and the reason."""
    image = images.get(fig.url) if images else None
    display = strip_query(getattr(image, "display_url", None) or fig.url)
    caption = link(display, url_label(display))
    alt = fig.alt or "figure"
    inline = embeddable(image)
    if inline is not None:
        data, mime = inline
        src = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        return (
            f'<figure class="dm-figure"><img src="{src}" alt="{esc(alt)}">'
            f"<figcaption>{esc(alt)} · {caption}</figcaption></figure>"
        )
    return (
        f'<div class="dm-figure dm-figure-missing">{esc(alt)} · {caption} '
        f'<span class="dm-muted">(image {esc(image_problem(image))})</span></div>'
    )
