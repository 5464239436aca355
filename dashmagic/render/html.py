"""``text/html``: the trace as one scoped, sanitized, deterministic ``.dashmagic-trace`` div.

Security rules (everything from the model or a plugin is untrusted):

* every string goes through :func:`esc` (``html.escape(..., quote=True)``), the answer Markdown
  through :func:`~.markdown.markdown_to_html` (markdown-it without raw HTML, then nh3), code
  through Pygments (which escapes its text);
* links only for ``http(s)`` URLs, without query string, with ``rel="noopener noreferrer
  nofollow"``; anything else is shown as text;
* the only ``<img>`` is a ``data:`` URI built here from fetched bytes of an allowed raster type,
  never a remote ``src``;
* no scripts, event handlers, ``id`` attributes, timestamps or randomness, so re-rendering the same
  trace gives the same bytes (nbval compares ``text/html`` verbatim).
"""

from __future__ import annotations

import base64
import html as _html
import re
from collections.abc import Callable, Mapping
from typing import Any

from ..plugins import GenericView
from ..plugins.calculator import CalculatorArgs, CalculatorResult
from ..plugins.code_interpreter import CodeResult
from ..plugins.hotel import HotelArgs, HotelResult
from ..plugins.ocr import OcrArgs, OcrResult
from ..plugins.text_to_image import TextToImageArgs, TextToImageResult
from ..trace import Answer, CodeBlock, Figure, PluginCall, PluginResult, Thought, Trace
from ._common import (
    Exchange,
    clean,
    embeddable,
    error_parts,
    exchange_state,
    footer_parts,
    format_size,
    group_steps,
    has_invisible,
    http_url,
    image_problem,
    invisible_name,
    mark_invisible,
    pretty_json,
    redact,
    strip_query,
    summarize_arguments,
    url_label,
)
from ._common import INVISIBLE
from ._style import CSS
from .markdown import markdown_to_html

__all__ = [
    "render_html",
    "esc",
    "link",
    "highlight_code",
    "mark_invisible_html",
    "HIGHLIGHT_LIMIT",
    "CALL_VIEWS",
    "RESULT_VIEWS",
]

Images = Mapping[str, Any]
_REL = "noopener noreferrer nofollow"
_ERROR_OUTPUTS = frozenset({"stderr", "error", "traceback"})
_formatter: Any = None
_INVISIBLE_CHAR = re.compile("[" + "".join(sorted(INVISIBLE)) + "]")
_BAD_ARGS = "arguments are not valid JSON; raw text shown"
_BAD_CONTENT = "content is not valid JSON; raw text shown"
_SUMMARY = 100  # characters of arguments shown in a <summary>
_LANG = re.compile(r"[A-Za-z0-9_+#.-]{1,32}")
#: Longer code is shown escaped but not highlighted: Pygments is linear but costs ~5 µs a
#: character, and no real code_interpreter call is anywhere near this long.
HIGHLIGHT_LIMIT = 100_000


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


def _pre(text: str, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<pre{attr}>{esc(text)}</pre>"


def _badge(kind: str, text: str) -> str:
    return f'<span class="dm-badge dm-{kind}">{esc(text)}</span>'


def _kv(rows: list[tuple[str, str]]) -> str:
    """Key/value rows; values are already-escaped HTML."""
    cells = "".join(
        f'<span class="dm-k">{esc(k)}</span><span class="dm-v">{v}</span>' for k, v in rows
    )
    return f'<div class="dm-kv">{cells}</div>' if rows else ""


def _warning(text: str) -> str:
    return f'<div class="dm-warning">{_badge("warn", text)}</div>'


# -- code --------------------------------------------------------------------------------


def highlight_code(code: str, language: str = "python") -> str:
    """Pygments HTML with ``tok-*`` classes (classes survive JupyterLab's sanitizer; see _style)."""
    global _formatter
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import TextLexer, get_lexer_by_name
    from pygments.util import ClassNotFound

    if _formatter is None:
        _formatter = HtmlFormatter(nowrap=True, classprefix="tok-")
    try:
        lexer = get_lexer_by_name(clean(language) or "python", stripnl=False)
    except ClassNotFound:
        lexer = TextLexer(stripnl=False)
    text = redact(clean(code))
    if len(text) > HIGHLIGHT_LIMIT:
        body = _html.escape(text, quote=True).rstrip("\n")
    else:
        body = highlight(text, lexer, _formatter).rstrip("\n")
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


# -- figures -----------------------------------------------------------------------------


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


# -- plugin call views (registry: view type -> renderer) -------------------------------------


def _call_code(view: CodeBlock) -> str:
    return highlight_code(view.code, view.language)


def _call_ocr(view: OcrArgs) -> str:
    return _kv([("image", link(view.image_url))])


def _short_key(key: str) -> str:
    """``payload__parameters__oss_signed_url`` → ``oss_signed_url``."""
    return clean(key).rpartition("__")[2] or clean(key)


def _call_t2i(view: TextToImageArgs) -> str:
    rows = [("prompt", esc(view.prompt))]
    if view.negative_prompt:
        rows.append(("negative prompt", esc(view.negative_prompt)))
    if view.size:
        rows.append(("size", esc(format_size(clean(view.size)))))
    rows += [
        (_short_key(k), f'<span class="dm-muted">{esc(v)}</span>') for k, v in view.extra.items()
    ]
    return _kv(rows)


def _call_generic(view: GenericView) -> str:
    return _pre(pretty_json(view.value))


def _call_calc(view: CalculatorArgs) -> str:
    # The one-line summary says it all unless it had to be cut.
    if len(view.expression) <= _SUMMARY:
        return ""
    return _kv([("expression", f"<code>{esc(view.expression)}</code>")])


def _call_hotel(view: HotelArgs) -> str:
    return _kv([("city", esc(view.city_names))]) if len(view.city_names) > _SUMMARY else ""


CALL_VIEWS: Mapping[type, Callable[[Any], str]] = {
    CodeBlock: _call_code,
    OcrArgs: _call_ocr,
    TextToImageArgs: _call_t2i,
    GenericView: _call_generic,
    CalculatorArgs: _call_calc,
    HotelArgs: _call_hotel,
}


def _render_call(call: PluginCall, running: bool) -> str:
    view = CALL_VIEWS.get(type(call.view))
    if view is not None:
        return view(call.view)
    # While the call is still streaming its JSON is incomplete: no warning until it is final.
    warn = "" if running or not call.arguments_error else _warning(_BAD_ARGS)
    return warn + _pre(call.arguments_raw) if call.arguments_raw else warn


# -- plugin result views --------------------------------------------------------------------


def _res_calc(view: CalculatorResult, images: Images | None) -> str:
    return "".join(
        f'<div class="dm-calc"><code>{esc(eq)}</code> = <strong>{esc(res)}</strong></div>'
        for eq, res in view.pairs
    )


def _res_code(view: CodeResult, images: Images | None) -> str:
    parts = []
    for out in view.outputs:
        cls = " dm-stderr" if out.name.strip().lower() in _ERROR_OUTPUTS else ""
        parts.append(
            f'<div class="dm-output{cls}"><div class="dm-output-name">{esc(out.name)}</div>'
            f"{_pre(out.text)}</div>"
        )
    parts += [render_figure(f, images) for f in view.figures]
    if view.rest:
        parts.append(f'<div class="dm-answer">{markdown_to_html(clean(view.rest))}</div>')
    return "".join(parts) or '<div class="dm-muted">(no output)</div>'


def _res_ocr(view: OcrResult, images: Images | None) -> str:
    parts = []
    if view.error_message or view.success is False:
        parts.append(_badge("fail", f"OCR failed: {clean(view.error_message or 'no text')}"))
    if view.text:
        parts.append(f'<div class="dm-text">{esc(view.text)}</div>')
    return "".join(parts) or '<div class="dm-muted">(no text recognised)</div>'


def _res_t2i(view: TextToImageResult, images: Images | None) -> str:
    return "".join(render_figure(f, images) for f in view.figures)


def _res_hotel(view: HotelResult, images: Images | None) -> str:
    # ``url`` is a booking query string (checkIn=…&shid=…), not a link: muted text.
    rows = "".join(
        f"<tr><td>{esc(h.name)}</td><td>{esc(h.snippet)}"
        + (f'<div class="dm-query">{esc(h.query)}</div>' if h.query else "")
        + "</td></tr>"
        for h in view.hotels
    )
    head = "<thead><tr><th>Hotel</th><th>Details</th></tr></thead>"
    return f'<table class="dm-hotels">{head}<tbody>{rows}</tbody></table>'


def _res_generic(view: GenericView, images: Images | None) -> str:
    return _pre(pretty_json(view.value))


RESULT_VIEWS: Mapping[type, Callable[[Any, Images | None], str]] = {
    CalculatorResult: _res_calc,
    CodeResult: _res_code,
    OcrResult: _res_ocr,
    TextToImageResult: _res_t2i,
    HotelResult: _res_hotel,
    GenericView: _res_generic,
}


def _render_result(result: PluginResult, images: Images | None) -> str:
    parts = []
    if result.status is not None and not result.ok and result.status.message:
        parts.append(f'<div class="dm-error-message">{esc(result.status.message)}</div>')
    view = RESULT_VIEWS.get(type(result.view))
    if view is not None:
        parts.append(view(result.view, images))
    else:
        if result.content_error:
            parts.append(_warning(_BAD_CONTENT))
        raw = result.content_raw
        parts.append(_pre(raw) if raw else '<div class="dm-muted">(empty)</div>')
    return "".join(parts)


# -- blocks --------------------------------------------------------------------------------


def _summary(exchange: Exchange, trace: Trace) -> str:
    plugin, name = exchange.plugin, exchange.name
    parts = [f'<span class="dm-plugin">{esc(plugin)}</span>']
    if name and name != plugin:
        parts.append(f'<span class="dm-display">({esc(name)})</span>')
    args = summarize_arguments(exchange.call, limit=_SUMMARY)
    if args:
        parts.append(f'<span class="dm-args">{esc(args)}</span>')
    parts.append(_badge(*exchange_state(exchange, trace)))
    # Spaces between the spans: ignored by the flex layout, but they keep the line readable
    # where the <style> block is stripped (untrusted JupyterLab output).
    return f"<summary>{' '.join(parts)}</summary>"


def _render_exchange(exchange: Exchange, trace: Trace, images: Images | None) -> str:
    body = []
    running = exchange.result is None and not trace.done
    if exchange.call is not None:
        body.append(_render_call(exchange.call, running))
    if exchange.result is not None:
        if body and body[-1]:
            body.append('<div class="dm-section">Result</div>')
        body.append(_render_result(exchange.result, images))
    inner = "".join(b for b in body if b)
    content = f'<div class="dm-body">{inner}</div>' if inner else ""
    return f'<details class="dm-step" open>{_summary(exchange, trace)}{content}</details>'


def _render_thought(step: Thought) -> str:
    label = '<span class="dm-label">Thought</span> '
    return f'<div class="dm-thought">{label}{esc(step.text.strip())}</div>'


def _render_answer(step: Answer) -> str:
    return f'<div class="dm-answer">{markdown_to_html(clean(step.text))}</div>'


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
        return '<div class="dm-notice">Interrupted — partial trace kept</div>'
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


_BLOCKS: Mapping[type, Callable[[Any, Trace, Images | None], str]] = {
    Thought: lambda s, t, i: _render_thought(s),
    Answer: lambda s, t, i: _render_answer(s),
    Exchange: _render_exchange,
}


def render_html(trace: Trace, images: Images | None = None) -> str:
    """The trace as HTML; ``images`` maps figure URLs to fetched images (data, mime, error)."""
    parts = [f'<div class="dashmagic-trace"><style>{CSS}</style>', _render_files(trace)]
    parts += [_BLOCKS[type(b)](b, trace, images) for b in group_steps(trace.steps)]
    parts.append(_render_status(trace))
    parts += [f'<div class="dm-note">{esc(note)}</div>' for note in trace.notes]
    parts.append(_render_footer(trace))
    parts.append("</div>")
    return mark_invisible_html("\n".join(p for p in parts if p))
