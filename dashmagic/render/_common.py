"""What the text and HTML renderers share: URL hygiene, step grouping, footer.

Everything here is pure and deterministic; no HTML is produced (see :mod:`._html_kit`). It
knows no plugin: each plugin's views live with the plugin (:mod:`dashmagic.plugins`).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from .._urls import display_url
from ..trace import PluginCall, PluginResult, Trace, Usage, thaw

__all__ = [
    "Images",
    "Exchange",
    "EMBEDDABLE_MIMES",
    "INVISIBLE",
    "clean",
    "redact",
    "has_invisible",
    "invisible_name",
    "mark_invisible",
    "strip_query",
    "http_url",
    "url_label",
    "truncate",
    "group_steps",
    "exchange_state",
    "plugin_label",
    "format_size",
    "format_elapsed",
    "footer_parts",
    "error_line",
    "error_parts",
    "image_problem",
    "pretty_json",
    "embeddable",
]

#: Figure URL -> fetched image (``data``, ``mime``, ``error``, ``display_url``; duck-typed, see
#: :class:`~dashmagic.trace.FetchedImage`), as every renderer and plugin view receives it.
Images = Mapping[str, Any]

#: Image types that may become ``data:`` URIs (never SVG: it can carry script).
EMBEDDABLE_MIMES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})

# C0 controls except tab/newline, DEL and C1 controls: terminal escapes (ESC[2J, OSC 8 links)
# or a lone CR could hide or rewrite text in a terminal, so they are shown as \xNN.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# A whole URL-like token, query included: matched once and consumed, so text made of many
# "http://" starts costs one pass (splitting body and query in the pattern made every start
# rescan the rest of the token: 20,000 × "http://" took 36 s).
_URL_TOKEN = re.compile(r"(?i)\bhttps?://[^\s<>\"'()\[\]]+")
_QUERY_START = re.compile(r"[?#]")
#: Bidi controls (Trojan Source, CVE-2021-42574) and other invisible format characters: shown as
#: a marked escape, never as themselves, so code reads the way it runs.
INVISIBLE = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
    + [chr(c) for c in range(0x200B, 0x2010)]
    + ["\u2028", "\u2029"]
    + [chr(c) for c in range(0x2060, 0x2065)]
    + ["\ufeff", "\u00ad"]
)
_INVISIBLE = re.compile("[" + "".join(sorted(INVISIBLE)) + "]")
_WORD = re.compile(r"\S+")
# Query keys that make a URL a bearer capability (OSS/S3 signatures, tokens, keys).
_SECRET_KEY = re.compile(
    r"(?i)(?:^|[?&#])(?:signature|ossaccesskeyid|x-oss-[a-z-]+|x-amz-[a-z-]+|security-token"
    r"|expires|access_?token|token|api_?key|key|sig|credential)="
)
# Plain http(s) URLs only: no whitespace, controls, quotes, <>, backslashes or backticks.
_HTTP = re.compile(r"(?i)^https?://[^\s\x00-\x1f\x7f\"'<>\\`]+$")


def clean(text: Any) -> str:
    """``str(text)`` with CRLF normalised and control characters made visible."""
    s = text if isinstance(text, str) else str(text)
    s = s.replace("\r\n", "\n")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", s)


def redact(text: str) -> str:
    """Drop the query string of every URL in free text whose query looks like a signature."""

    def fix(m: re.Match[str]) -> str:
        url = m.group()
        query = _QUERY_START.search(url, 8 if url[4] in "sS" else 7)
        if query is None or not _SECRET_KEY.search(url, query.start()):
            return url
        return url[: query.start()]

    return _URL_TOKEN.sub(fix, text)


def has_invisible(text: str) -> bool:
    """True when ``text`` holds a bidi control or another invisible format character."""
    return _INVISIBLE.search(text) is not None


def invisible_name(char: str) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE``: what a marked escape says the hidden character is."""
    return f"U+{ord(char):04X} {unicodedata.name(char, 'FORMAT CHARACTER')}"


def mark_invisible(text: str) -> str:
    """Every invisible character as a visible ``⟨U+202E⟩`` (plain-text form of the mark)."""
    if not has_invisible(text):
        return text
    return _INVISIBLE.sub(lambda m: f"⟨U+{ord(m.group()):04X}⟩", text)


def strip_query(url: str) -> str:
    """The URL without query string, fragment or ``user:pw@`` (signed OSS URLs are capabilities)."""
    return display_url(clean(url).strip())


def http_url(url: str) -> str | None:
    """``url`` without its query when it is a plain http(s) URL with a host, else None."""
    stripped = strip_query(url)
    if not _HTTP.match(stripped):
        return None
    try:
        host = urlsplit(stripped).hostname
    except ValueError:
        return None
    return stripped if host else None


def url_label(url: str) -> str:
    """A short label for a link: the last path segment, or the host."""
    stripped = strip_query(url)
    try:
        parts = urlsplit(stripped)
    except ValueError:
        return stripped
    tail = parts.path.rstrip("/").rpartition("/")[2]
    return tail or parts.netloc or stripped


def truncate(text: str, limit: int = 100) -> str:
    """One line, at most ``limit`` characters (an ellipsis marks the cut)."""
    # Collapse whitespace only as far as the limit needs: a 10 MB argument gives a 100-char line.
    words: list[str] = []
    size = -1
    for m in _WORD.finditer(text):
        words.append(m.group())
        size += len(words[-1]) + 1
        if size > limit:
            break
    line = " ".join(words)
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


# -- grouping -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exchange:
    """A plugin call and the result that answered it (either may be missing)."""

    call: PluginCall | None
    result: PluginResult | None
    #: The step kind the renderers' registry (:mod:`.steps`) knows this block by.
    kind: ClassVar[str] = "exchange"

    @property
    def plugin(self) -> str:
        step = self.call or self.result
        return step.plugin if step else ""

    @property
    def name(self) -> str:
        step = self.call or self.result
        return step.name if step else ""


def group_steps(steps: tuple[Any, ...]) -> list[Any]:
    """Steps in order, with each plugin call paired with the result that follows it.

    Every other step (thoughts, answers, kinds this module has never heard of) passes through
    as its own block, so nothing the trace holds is dropped from the view.
    """
    out: list[Any] = []
    open_at: int | None = None
    for step in steps:
        if isinstance(step, PluginCall):
            out.append(Exchange(step, None))
            open_at = len(out) - 1
        elif isinstance(step, PluginResult):
            pending = out[open_at] if open_at is not None else None
            if isinstance(pending, Exchange) and open_at is not None:
                out[open_at] = Exchange(pending.call, step)
                open_at = None
            else:
                out.append(Exchange(None, step))
        else:
            out.append(step)
    return out


def exchange_state(exchange: Exchange, trace: Trace) -> tuple[str, str]:
    """``(kind, label)`` for the status badge; kind is ok, fail, running or missing."""
    result = exchange.result
    if result is None:
        if not trace.done:
            return "running", "running…"
        return "missing", "interrupted" if trace.status == "interrupted" else "no result"
    status = result.status
    if status is None:
        return ("ok", "✓") if result.ok else ("fail", "✗")
    words = " ".join(str(p) for p in (status.code, status.name) if p not in (None, ""))
    mark = "✓" if status.ok else "✗"
    return ("ok" if status.ok else "fail"), truncate(f"{mark} {clean(words)}", 48)


def plugin_label(exchange: Exchange) -> str:
    """``haozhu_recommend_hotel (酒店推荐插件)``: header key, plus the sent name if different."""
    plugin, name = clean(exchange.plugin), clean(exchange.name)
    return f"{plugin} ({name})" if name and name != plugin else plugin


# -- small formatting helpers ------------------------------------------------------------


def format_size(size: str) -> str:
    """``512*512`` → ``512×512``."""
    # Split, then strip: "\s*[*xX]\s*" rescans a run of spaces from every start (quadratic).
    return "×".join(part.strip() for part in re.split(r"[*xX]", size.strip())) if size else ""


def pretty_json(value: Any) -> str:
    return json.dumps(thaw(value), ensure_ascii=False, indent=2, default=str)


def embeddable(image: Any) -> tuple[bytes, str] | None:
    """``(data, mime)`` when a fetched image may be inlined as a ``data:`` URI."""
    data = getattr(image, "data", None)
    mime = getattr(image, "mime", None)
    if isinstance(data, (bytes, bytearray)) and data and mime in EMBEDDABLE_MIMES:
        return bytes(data), str(mime)
    return None


def image_problem(image: Any) -> str:
    """Why a figure is shown as a link only."""
    if image is None:
        return "not fetched"
    error = getattr(image, "error", None)
    if error:
        return clean(error)
    mime = getattr(image, "mime", None)
    return f"not embedded ({clean(mime)})" if mime else "not embedded"


# -- footer and status --------------------------------------------------------------------


def format_elapsed(seconds: float | None) -> str:
    """``1.2 s``; ``2 min 5 s`` past a minute; empty when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def _token_details(usage: Usage) -> str:
    """`` (225 reasoning, 0 cached)``: what thinking and the context cache account for."""
    details = [
        f"{clean(n)} {label}"
        for n, label in ((usage.reasoning_tokens, "reasoning"), (usage.cached_tokens, "cached"))
        if n is not None
    ]
    return f" ({', '.join(details)})" if details else ""


def footer_parts(trace: Trace) -> list[tuple[str, str]]:
    """``(kind, text)`` pieces of the footer; kind lets HTML style the request id as code."""
    parts: list[tuple[str, str]] = []
    model = trace.model or trace.request.model
    if model:
        parts.append(("model", clean(model)))
    usage = trace.usage
    if usage.input_tokens is not None or usage.output_tokens is not None:
        tin = "?" if usage.input_tokens is None else usage.input_tokens
        tout = "?" if usage.output_tokens is None else usage.output_tokens
        parts.append(("tokens", f"{tin} in / {tout} out tokens{_token_details(usage)}"))
    for plugin, count in (usage.plugins or {}).items():
        parts.append(("plugin", f"{clean(plugin)}×{clean(count)}"))
    if trace.finish_reason and trace.finish_reason not in ("stop", "null"):
        parts.append(("finish", f"finish: {clean(trace.finish_reason)}"))
    elapsed = format_elapsed(trace.elapsed)
    if elapsed:
        parts.append(("elapsed", elapsed))
    if trace.request_id:
        parts.append(("request", clean(trace.request_id)))
    return parts


def error_line(trace: Trace) -> str:
    """``ApiError: message (HTTP 400, code X, request Y)`` for an errored trace."""
    kind, message = error_parts(trace)
    return f"{kind}: {message}"


def error_parts(trace: Trace) -> tuple[str, str]:
    """``(type, message with HTTP status/code/request id)`` of an errored trace."""
    err = trace.error
    if err is None:
        return "Error", "the request failed"
    extra = []  # only what the message does not already say (ApiError's message names all three)
    if err.status_code is not None and f"HTTP {err.status_code}" not in err.message:
        extra.append(f"HTTP {err.status_code}")
    if err.code and err.code not in err.message:
        extra.append(f"code {clean(err.code)}")
    if err.request_id and err.request_id != trace.request_id and err.request_id not in err.message:
        extra.append(f"request {clean(err.request_id)}")
    tail = f" ({', '.join(extra)})" if extra else ""
    return clean(err.type), f"{redact(clean(err.message))}{tail}"
