"""``code_interpreter``: arguments are a fenced code block (not JSON); results are Markdown.

Seed shapes::

    arguments: "```py\\nimport numpy as np\\n...\\n```"
    content:   "execute_result:\\n\\n```\\n(33, 67)\\n```"
    content:   "![fig-001](https://...png?OSSAccessKeyId=...&Signature=...)"

The code is display-only: dashmagic never runs it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..render import _html_kit as h
from ..render import _text_kit as t
from ..trace import CodeBlock, Figure
from ._spec import PluginSpec

__all__ = ["PLUGIN", "Output", "CodeResult", "read_arguments", "read_result", "split_fence"]

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:\n[ \t]*\1[ \t]*)?\s*$", re.S)
_SECTION = re.compile(r"^([A-Za-z_][\w ]*):[ \t]*\n+(`{3,})[^\n]*\n(.*?)\n?\2[ \t]*$", re.S | re.M)
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
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
    match = _FENCE.match(text)
    if not match:
        return CodeBlock(code=text.strip("\n"), language="python")
    lang = match.group(2).lower()
    return CodeBlock(code=match.group(3).rstrip("\n"), language=_LANGS.get(lang, lang))


def read_arguments(raw: str, parsed: Any) -> CodeBlock:
    return split_fence(raw)


def read_result(raw: str, parsed: Any) -> CodeResult:
    outputs = tuple(Output(m.group(1).strip(), m.group(3)) for m in _SECTION.finditer(raw))
    # Only web URLs are figures; `![x](javascript:…)` stays text in `rest`-less raw content.
    figures = tuple(
        Figure(url=m.group(2), alt=m.group(1))
        for m in _IMAGE.finditer(raw)
        if m.group(2).lower().startswith(("https://", "http://"))
    )
    rest = _IMAGE.sub("", _SECTION.sub("", raw)).strip()
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
