"""``text/html``: the trace as one scoped, sanitized, deterministic ``.dashmagic-trace`` div.

Security rules (everything from the model or a plugin is untrusted):

* every string goes through :func:`esc` (``html.escape(..., quote=True)``), the answer Markdown
  through :func:`~.markdown.markdown_to_html` (markdown-it without raw HTML, then nh3), code
  through Pygments (which escapes its text); the helpers live in :mod:`._html_kit`, which every
  step view (:mod:`.steps`) and every plugin's views (:mod:`dashmagic.plugins`) use;
* links only for ``http(s)`` URLs, without query string, with ``rel="noopener noreferrer
  nofollow"``; anything else is shown as text;
* the only ``<img>`` is a ``data:`` URI built here from fetched bytes of an allowed raster type,
  never a remote ``src``;
* no scripts, event handlers, ``id`` attributes, timestamps or randomness, so re-rendering the same
  trace gives the same bytes (nbval compares ``text/html`` verbatim).
"""

from __future__ import annotations

import html as _html
import re
import threading
from typing import Any

from ..trace import Trace
from ._common import (
    INVISIBLE,
    Images,
    clean,
    error_parts,
    footer_parts,
    group_steps,
    has_invisible,
    invisible_name,
    mark_invisible,
    redact,
    url_label,
)
from ._html_kit import esc, link
from ._style import CSS
from .steps import step_view

__all__ = ["render_html", "esc", "link", "highlight_code", "mark_invisible_html", "HIGHLIGHT_LIMIT"]

_formatter: Any = None
_LOAD = threading.Lock()
_LANG = re.compile(r"[A-Za-z0-9_+#.-]{1,32}")
_INVISIBLE_CHAR = re.compile("[" + "".join(sorted(INVISIBLE)) + "]")
#: Longer code is shown escaped but not highlighted: Pygments is linear but costs ~5 µs a
#: character, and no real code_interpreter call is anywhere near this long.
HIGHLIGHT_LIMIT = 100_000


# -- code --------------------------------------------------------------------------------
# (Views call it through :func:`._html_kit.highlight_code`; its body is kept here.)


def _pygments() -> Any:
    """Pygments' pieces, imported once under a lock: pygments.lexers and .formatters swap their
    module objects while they import, so two threads importing them at once can see a half-made
    module ("cannot import name 'HtmlFormatter'") and lose a render."""
    global _formatter
    with _LOAD:
        if _formatter is None:
            from pygments import highlight
            from pygments.formatters import HtmlFormatter
            from pygments.lexers import TextLexer, get_lexer_by_name
            from pygments.util import ClassNotFound

            _formatter = (highlight, HtmlFormatter(nowrap=True, classprefix="tok-"), TextLexer, get_lexer_by_name,
                          ClassNotFound)
        return _formatter


def highlight_code(code: str, language: str = "python") -> str:
    """Pygments HTML with ``tok-*`` classes (classes survive JupyterLab's sanitizer; see _style)."""
    highlight, formatter, TextLexer, get_lexer_by_name, ClassNotFound = _pygments()
    try:
        lexer = get_lexer_by_name(clean(language) or "python", stripnl=False)
    except ClassNotFound:
        lexer = TextLexer(stripnl=False)
    text = redact(clean(code))
    if len(text) > HIGHLIGHT_LIMIT:
        body = _html.escape(text, quote=True).rstrip("\n")
    else:
        body = highlight(text, lexer, formatter).rstrip("\n")
    lang = language if _LANG.fullmatch(language) else "text"
    return f'<pre class="dm-code"><code class="language-{lang}">{body}</code></pre>'


# -- Trojan Source: invisible characters made visible ---------------------------------------

# A tag of this module's (or nh3's) output: attribute values are double-quoted and may hold ">".
_TAG = re.compile(r'<[^>"]*(?:"[^"]*"[^>"]*)*>')


def _invisible_span(m: re.Match[str]) -> str:
    char = m.group()
    return f'<span class="dm-invisible" title="{invisible_name(char)}">⟨U+{ord(char):04X}⟩</span>'


def mark_invisible_html(markup: str) -> str:
    """Bidi controls and invisible characters in ``markup`` as marked, visible escapes.

    Run once over the finished HTML, so code (after Pygments), answers (after Markdown and nh3),
    thoughts, arguments and results are all covered. In text a character becomes a
    ``<span class="dm-invisible">``; inside a tag (an ``alt`` or ``title``) it becomes the
    plain ``⟨U+202E⟩`` form, since markup cannot go there.
    """
    if not has_invisible(markup):
        return markup
    out, pos = [], 0
    for tag in _TAG.finditer(markup):
        out.append(_INVISIBLE_CHAR.sub(_invisible_span, markup[pos : tag.start()]))
        out.append(mark_invisible(tag.group()))
        pos = tag.end()
    out.append(_INVISIBLE_CHAR.sub(_invisible_span, markup[pos:]))
    return "".join(out)


# -- the frame around the steps -------------------------------------------------------------


def _render_files(trace: Trace) -> str:
    if not trace.request.files:
        return ""
    links = ", ".join(link(f, url_label(f)) for f in trace.request.files)
    via = " (read by pdf_extracter)" if "pdf_extracter" in trace.request.plugins else ""
    return f'<div class="dm-files"><span class="dm-label dm-muted">File{via}</span> {links}</div>'


def _render_status(trace: Trace) -> str:
    if trace.status == "pending":
        return '<div class="dm-status">waiting for the model…</div>'
    if trace.status == "partial":
        return '<div class="dm-status">streaming…</div>'
    if trace.status == "interrupted":
        what = "partial trace kept" if trace.steps else "before any reply arrived"
        return f'<div class="dm-notice">Interrupted — {what}</div>'
    if trace.status == "error":
        kind, message = error_parts(trace)
        return (
            f'<div class="dm-error"><span class="dm-error-type">{esc(kind)}</span> '
            f'<span class="dm-error-message">{esc(message)}</span></div>'
        )
    return ""


def _render_footer(trace: Trace) -> str:
    parts = [
        f'request <code>{esc(text)}</code>' if kind == "request" else esc(text)
        for kind, text in footer_parts(trace)
    ]
    return f'<div class="dm-footer">{" · ".join(parts)}</div>' if parts else ""


def render_html(trace: Trace, images: Images | None = None) -> str:
    """The trace as HTML; ``images`` maps figure URLs to fetched images (data, mime, error)."""
    parts = [f'<div class="dashmagic-trace"><style>{CSS}</style>', _render_files(trace)]
    parts += [step_view(b).html(b, trace, images) for b in group_steps(trace.steps)]
    parts.append(_render_status(trace))
    parts += [f'<div class="dm-note">{esc(note)}</div>' for note in trace.notes]
    parts.append(_render_footer(trace))
    parts.append("</div>")
    return mark_invisible_html("\n".join(p for p in parts if p))
