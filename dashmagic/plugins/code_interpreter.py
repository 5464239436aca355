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

from ..trace import CodeBlock, Figure

__all__ = ["Output", "CodeResult", "read_arguments", "read_result", "split_fence"]

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:\n[ \t]*\1[ \t]*)?\s*$", re.S)
_SECTION = re.compile(r"^([A-Za-z_][\w ]*):[ \t]*\n+(`{3,})[^\n]*\n(.*?)\n?\2[ \t]*$", re.S | re.M)
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_LANGS = {"py": "python", "python3": "python", "": "python"}


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
