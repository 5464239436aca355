"""``code_interpreter``: arguments are a fenced code block (not JSON); results are Markdown.

Seed shapes::

    arguments: "```py\\nimport numpy as np\\n...\\n```"
    content:   "execute_result:\\n\\n```\\n(33, 67)\\n```"
    content:   "![fig-001](https://...png?OSSAccessKeyId=...&Signature=...)"

The code is display-only: dashmagic never runs it.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any

from ..render import _html_kit as h
from ..render import _text_kit as t
from ..trace import CodeBlock, Figure
from ._spec import PluginSpec

__all__ = ["PLUGIN", "Output", "CodeResult", "read_arguments", "read_result", "split_fence"]

# The readers below scan by hand instead of with one regex each: a lazy body followed by a
# closing pattern rescans the rest of the text from every candidate start, so adversarial
# results (40,000 spaces after a fence, 20,000 unclosed section headers, 10,000 "![a](")
# took seconds to minutes. Each reader here is one left-to-right pass; the old patterns are
# kept in tests/test_render_linear.py as the oracle they are checked against.
_OPEN = re.compile(r"\s*(`{3,}|~{3,})[ \t]*([\w+#.-]*)")
_HEADER_LINE = re.compile(r"^([A-Za-z_][\w ]*):[ \t]*\n+", re.M)
_RUN = re.compile(r"`{3,}+")
# A run of 3+ backticks ending its line (before spaces/tabs); group 1 is where the line ends.
_CLOSING = re.compile(r"(?<!`)`{3,}+(?=[ \t]*+(\n|\Z))")
_ALT_STOP = re.compile(r"[\]\n]")
_URL_STOP = re.compile(r"[)\s>]")
_NON_SPACE = re.compile(r"\S")
_QUOTE = re.compile('"')
_LANGS = {"py": "python", "python3": "python", "": "python"}
_ERROR_OUTPUTS = frozenset({"stderr", "error", "traceback"})


@dataclass(frozen=True, slots=True)
class Output:
    """One named output section, e.g. ``execute_result``, ``stdout``, ``stderr``, ``error``."""

    name: str
    text: str


@dataclass(frozen=True, slots=True)
class CodeResult:
    outputs: tuple[Output, ...] = ()
    figures: tuple[Figure, ...] = ()
    #: Markdown text left over after outputs and figures were taken out.
    rest: str = ""

    @property
    def failed(self) -> bool:
        return any(o.name.lower() in ("error", "stderr", "traceback") for o in self.outputs)


def split_fence(text: str) -> CodeBlock:
    """Read a (possibly unterminated, while streaming) fenced block; plain text is code too."""
    match = _OPEN.match(text)
    newline = text.find("\n", match.end()) if match else -1
    if match is None or newline < 0:
        return CodeBlock(code=text.strip("\n"), language="python")
    lang = match.group(2).lower()
    body = _fence_body(text[newline + 1 :], match.group(1))
    return CodeBlock(code=body.rstrip("\n"), language=_LANGS.get(lang, lang))


def _fence_body(rest: str, fence: str) -> str:
    """``rest`` up to its closing fence line (the fence, alone, then only whitespace) or its end."""
    body = rest.rstrip()
    if body.endswith(fence):
        line = body[: len(body) - len(fence)].rstrip(" \t")
        if line.endswith("\n"):
            return rest[: len(line) - 1]
    return body


def read_arguments(raw: str, parsed: Any) -> CodeBlock:
    return split_fence(raw)


def read_result(raw: str, parsed: Any) -> CodeResult:
    sections = _sections(raw)
    outputs = tuple(Output(name.strip(), text) for _, _, name, text in sections)
    # Only web URLs are figures; `![x](javascript:…)` stays text in `rest`-less raw content.
    figures = tuple(
        Figure(url=url, alt=alt)
        for _, _, alt, url in _images(raw)
        if url.lower().startswith(("https://", "http://"))
    )
    rest = _cut(raw, sections)
    rest = _cut(rest, _images(rest)).strip()
    return CodeResult(outputs=outputs, figures=figures, rest=rest)


def _summary(view: CodeBlock) -> str:
    lines = [ln for ln in view.code.splitlines() if ln.strip()]
    head = lines[0].strip() if lines else ""
    return f"{head} … ({len(lines)} lines)" if len(lines) > 1 else head


def _html_result(view: CodeResult, images: h.Images | None) -> str:
    parts = []
    for out in view.outputs:
        cls = " dm-stderr" if out.name.strip().lower() in _ERROR_OUTPUTS else ""
        parts.append(
            f'<div class="dm-output{cls}"><div class="dm-output-name">{h.esc(out.name)}</div>'
            f"{h.pre(out.text)}</div>"
        )
    parts += [h.render_figure(f, images) for f in view.figures]
    if view.rest:
        parts.append(f'<div class="dm-answer">{h.markdown_to_html(h.clean(view.rest))}</div>')
    return "".join(parts) or '<div class="dm-muted">(no output)</div>'


def _text_call(view: CodeBlock, label: str) -> list[str]:
    return [t.call_head(label, t.safe(view.language)), *t.indent(t.safe(view.code))]


def _text_result(view: CodeResult, images: t.Images | None) -> list[str]:
    lines: list[str] = []
    for out in view.outputs:
        lines.append(f"{t.safe(out.name)}:")
        lines.extend(t.indent(t.safe(out.text)))
    lines.extend(t.figure_line(f, images) for f in view.figures)
    if view.rest:
        lines.extend(t.safe(view.rest).split("\n"))
    return lines


PLUGIN: PluginSpec[CodeBlock, CodeResult] = PluginSpec(
    key="code_interpreter",
    read_arguments=read_arguments,
    read_result=read_result,
    call_view=CodeBlock,
    result_view=CodeResult,
    json_arguments=False,
    json_result=False,
    summary=_summary,
    html_call=lambda view: h.highlight_code(view.code, view.language),
    html_result=_html_result,
    text_call=_text_call,
    text_result=_text_result,
)


# -- one-pass readers ----------------------------------------------------------------------

_Span = tuple[int, int, str, str]  # (start, end, name or alt, text or url)


def _cut(text: str, spans: list[_Span]) -> str:
    """``text`` without the spans (sorted, non-overlapping)."""
    pieces, pos = [], 0
    for start, end, _, _ in spans:
        pieces.append(text[pos:start])
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


class _Next:
    """First match of ``pattern`` at or after ``pos`` (``len(text)`` if none), cached.

    Asked with positions that (mostly) only grow, each search starts past the previous answer,
    so all the searches together read the text once.
    """

    def __init__(self, pattern: re.Pattern[str], text: str) -> None:
        self._pattern, self._text = pattern, text
        self._asked, self._found = 1, 0

    def __call__(self, pos: int) -> int:
        if not self._asked <= pos <= self._found:
            match = self._pattern.search(self._text, pos)
            self._asked, self._found = pos, match.start() if match else len(self._text)
        return self._found


def _sections(text: str) -> list[_Span]:
    r"""What ``^([A-Za-z_][\w ]*):[ \t]*\n+(`{3,})[^\n]*\n(.*?)\n?\2[ \t]*$`` (multi-line,
    dot-all) finds with ``finditer``, in one pass: ``name:``, a backtick fence, its body."""
    closings = [(m.start(), m.end(), m.start(1)) for m in _CLOSING.finditer(text)]
    if not closings:
        return []
    # longest[i]: the longest closing run at or after closings[i], so a header that can never
    # close is rejected at once instead of by scanning the rest of the text.
    longest = [0] * (len(closings) + 1)
    for i in range(len(closings) - 1, -1, -1):
        longest[i] = max(closings[i][1] - closings[i][0], longest[i + 1])
    starts = [c[0] for c in closings]
    out: list[_Span] = []
    done = 0
    for header in _HEADER_LINE.finditer(text):
        if header.start() < done:
            continue
        fence = _RUN.match(text, header.end())
        info_end = text.find("\n", fence.end()) if fence else -1
        if fence is None or info_end < 0:
            continue
        first = bisect.bisect_left(starts, info_end + 1)
        # The fence is as long as it can be and still close (a shorter one leaves the extra
        # backticks on the info line); it closes at the first run at least that long.
        size = min(len(fence.group()), longest[first])
        if size < 3:
            continue
        while closings[first][1] - closings[first][0] < size:
            first += 1
        run_end, line_end = closings[first][1], closings[first][2]
        close_at = run_end - size
        body_end = close_at - 1 if close_at > info_end + 1 and text[close_at - 1] == "\n" else close_at
        out.append((header.start(), line_end, header.group(1), text[info_end + 1 : body_end]))
        done = line_end
    return out


def _images(text: str) -> list[_Span]:
    r"""What ``!\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`` finds with ``finditer``,
    in one pass (Markdown images: ``![alt](url "title")``)."""
    alt_stop, url_stop = _Next(_ALT_STOP, text), _Next(_URL_STOP, text)
    after_paren, after_url = _Next(_NON_SPACE, text), _Next(_NON_SPACE, text)
    after_title, quote = _Next(_NON_SPACE, text), _Next(_QUOTE, text)
    out: list[_Span] = []
    failed = -1  # an alt end whose tail did not parse: every "![" sharing it fails too
    pos = text.find("![")
    while pos >= 0:
        alt_end = alt_stop(pos + 2)
        tail = None if alt_end == failed else _image_tail(text, alt_end, url_stop, after_paren, after_url, after_title, quote)
        if tail is None:
            failed = alt_end
            pos = text.find("![", pos + 1)
            continue
        end, url_start, url_end = tail
        out.append((pos, end, text[pos + 2 : alt_end], text[url_start:url_end]))
        pos = text.find("![", end)
    return out


def _image_tail(
    text: str, alt_end: int, url_stop: _Next, after_paren: _Next, after_url: _Next, after_title: _Next, quote: _Next
) -> tuple[int, int, int] | None:
    """``](url "title")`` from ``alt_end``: (end of the image, url start, url end), or None.

    Positions, not the URL: slicing a failed candidate's URL would copy the rest of the text."""
    if not text.startswith("](", alt_end):
        return None
    start = after_paren(alt_end + 2)
    if text.startswith("<", start) and url_stop(start + 1) > start + 1:
        start += 1  # "<url>"; a bare "<" is itself the URL, as the pattern backtracks to it
    end = url_stop(start)
    if end == start:
        return None
    pos = end + 1 if text.startswith(">", end) else end
    nxt = after_url(pos)
    if nxt > pos and text.startswith('"', nxt):
        close = quote(nxt + 1)
        if close < len(text):
            paren = after_title(close + 1)
            if text.startswith(")", paren):
                return paren + 1, start, end
    return (nxt + 1, start, end) if text.startswith(")", nxt) else None
