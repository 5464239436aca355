"""Compare notebook outputs by what a reader sees, not by how a library serialised them.

Saved and fresh outputs of a notebook are produced months apart, by different releases of
markdown-it-py, nh3, Pygments, IPython and nbconvert. A patch release may write ``&#39;`` where
the committed output has ``'``, order attributes differently, wrap base64 at 76 columns or add a
newline between two blocks. None of that changes the page, so none of it may fail a test; a changed
word, tag, attribute value or image byte still must.

:func:`canonical_html` parses HTML with the stdlib :mod:`html.parser` and writes it back in one
canonical form, one node per line:

* tags lower-case, attributes sorted by name (a bare attribute equals ``=""``), ``class`` and
  ``style`` whitespace collapsed, void elements (``<br>``, ``<img>``) without an end tag, comments
  and processing instructions dropped (no reader sees them);
* text with character references decoded (``&#39;`` = ``&apos;`` = ``'``), then escaped one way;
  consecutive text merged;
* whitespace as CSS renders it: verbatim inside ``<pre>``/``<textarea>``, inside an element whose
  inline style says ``white-space:pre*``, and inside an element matching a class or tag rule of the
  fragment's own ``<style>`` that says so (dashmagic's ``.dm-text`` and ``.dm-thought`` are
  ``pre-wrap``: a changed newline there is visible); elsewhere each run of whitespace is one space,
  and none at all next to a block boundary (``</p>\\n<p>`` = ``</p><p>``);
* ``data:`` URIs (the embedded figures) decoded and re-encoded as canonical base64, so their
  *bytes* are compared, not their line wrapping or percent-encoding.

:func:`semantic_outputs` applies this to a cell's outputs (``text/html``, and the base64 of
``image/*`` bundles) and is used both by ``tests/test_notebooks.py`` and by
``notebooks/conftest.py`` (nbval's own comparison). Every pass is linear in the input size.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from html.parser import HTMLParser
from typing import Any, Iterable, Literal, Mapping
from urllib.parse import unquote_to_bytes

__all__ = ["canonical_html", "canonical_data_uri", "canonical_base64", "semantic_outputs"]

# Elements whose edges start or end a line: whitespace next to them is never rendered.
_BLOCK = frozenset(
    "address article aside blockquote body br caption dd details dialog div dl dt fieldset "
    "figcaption figure footer form h1 h2 h3 h4 h5 h6 head header hr html legend li main nav ol p "
    "pre script section style summary table tbody td tfoot th thead title tr ul".split()
)
_VOID = frozenset("area base br col embed hr img input link meta source track wbr".split())
_PRE_TAGS = frozenset({"pre", "textarea", "listing", "plaintext", "xmp"})
_PRE_VALUES = frozenset({"pre", "pre-wrap", "pre-line", "break-spaces"})
_WS = re.compile(r"[ \t\n\r\f]+")
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_CSS_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_WHITE_SPACE = re.compile(r"white-space\s*:\s*([a-z-]+)", re.I)
_DATA_URI = re.compile(r"^\s*data:([^,]*),(.*)$", re.S | re.I)

Token = tuple[Literal["start", "end", "text"], str, tuple[tuple[str, str], ...]]


class _Tokens(HTMLParser):
    """Start tags, end tags and text, in document order; character references decoded."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tokens: list[Token] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tokens.append(("start", tag, tuple((k, "" if v is None else v) for k, v in attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/> is <br>; <div/> in HTML opens a div (the slash means nothing), so both are a start.
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag not in _VOID:
            self.tokens.append(("end", tag, ()))

    def handle_data(self, data: str) -> None:
        self.tokens.append(("text", data, ()))


def _tokens(text: str) -> list[Token]:
    parser = _Tokens()
    parser.feed(text)
    parser.close()
    merged: list[Token] = []
    for token in parser.tokens:  # a dropped comment may have split one text in two
        if token[0] == "text" and merged and merged[-1][0] == "text":
            merged[-1] = ("text", merged[-1][1] + token[1], ())
        else:
            merged.append(token)
    return merged


def _pre_rules(tokens: Iterable[Token]) -> list[tuple[str, str, bool]]:
    """(tag or "", class or "", preserves whitespace) for each simple rule of the inline ``<style>``."""
    rules: list[tuple[str, str, bool]] = []
    inside = False
    for kind, value, _ in tokens:
        if kind != "text":
            inside = kind == "start" and value == "style"
            continue
        if not inside:
            continue
        for selectors, body in _CSS_RULE.findall(_CSS_COMMENT.sub("", value)):
            found = _WHITE_SPACE.findall(body)
            if not found:
                continue
            preserves = found[-1].lower() in _PRE_VALUES
            for selector in selectors.split(","):
                last = re.split(r"[\s>+~]+", selector.strip())[-1]
                if ":" in last or "[" in last:  # pseudo-classes and attribute selectors: not modelled
                    continue
                match = re.match(r"^([a-z][a-z0-9]*)?((?:\.[\w-]+)*)$", last, re.I)
                if match:
                    classes = match[2].split(".")[1:] or [""]
                    rules += [((match[1] or "").lower(), c, preserves) for c in classes]
    return rules


def _preserves(tag: str, attrs: Mapping[str, str], rules: list[tuple[str, str, bool]], parent: bool) -> bool:
    """Whether this element renders its whitespace (CSS ``white-space`` is inherited)."""
    inline = _WHITE_SPACE.findall(attrs.get("style", ""))
    if inline:
        return inline[-1].lower() in _PRE_VALUES
    classes = set(attrs.get("class", "").split())
    verdict = tag in _PRE_TAGS or parent
    for rule_tag, rule_class, preserves in rules:  # later rules win, as in the cascade
        if (not rule_tag or rule_tag == tag) and (not rule_class or rule_class in classes):
            if rule_tag or rule_class:
                verdict = preserves
    return verdict


def canonical_base64(data: str) -> str:
    """The canonical base64 of the bytes ``data`` encodes (line breaks and padding normalised)."""
    try:
        raw = base64.b64decode(_WS.sub("", data), validate=True)
    except (binascii.Error, ValueError):
        return data  # not base64: compared as written, which is stricter, never looser
    return base64.b64encode(raw).decode("ascii")


def canonical_data_uri(uri: str) -> str:
    """``data:`` URI → media type and the canonical base64 of its bytes; other URIs unchanged."""
    match = _DATA_URI.match(uri)
    if not match:
        return uri
    params = [p.strip().lower() for p in match[1].split(";") if p.strip()]
    payload = match[2]
    if "base64" in params:
        params.remove("base64")
        body = canonical_base64(unquote_to_bytes(payload).decode("ascii", "replace"))
    else:
        body = base64.b64encode(unquote_to_bytes(payload)).decode("ascii")
    return f"data:{';'.join(params)};base64,{body}"


def _attribute(name: str, value: str) -> str:
    if name == "class":
        value = " ".join(value.split())
    elif name == "style":
        value = re.sub(r"\s*([:;,])\s*", r"\1", _WS.sub(" ", value).strip()).rstrip(";")
    value = canonical_data_uri(value)
    return f' {name}="{html.escape(value, quote=True)}"'


def _text(value: str, preserve: bool, before: Token | None, after: Token | None) -> str:
    if preserve:
        return value
    value = _WS.sub(" ", value)
    if before is None or (before[0] != "text" and before[1] in _BLOCK):
        value = value.lstrip(" ")
    if after is None or (after[0] != "text" and after[1] in _BLOCK):
        value = value.rstrip(" ")
    return value


def _indent(depth: int) -> str:
    # Cosmetic (end tags are explicit), and capped so that deep nesting stays linear in size.
    return "  " * min(depth, 32)


def canonical_html(text: str) -> str:
    """``text`` (an HTML fragment) in the canonical form described in the module docstring."""
    tokens = _tokens(text)
    rules = _pre_rules(tokens)
    lines: list[str] = []
    stack: list[tuple[str, bool]] = []  # (open tag, preserves whitespace)
    open_count: dict[str, int] = {}  # how often each tag is on the stack: end tags stay O(1) amortised
    for i, (kind, value, attrs) in enumerate(tokens):
        indent = _indent(len(stack))
        if kind == "start":
            shown = "".join(_attribute(k, v) for k, v in sorted(attrs, key=lambda a: a[0]))
            lines.append(f"{indent}<{value}{shown}>")
            if value not in _VOID:
                parent = stack[-1][1] if stack else False
                stack.append((value, _preserves(value, dict(attrs), rules, parent)))
                open_count[value] = open_count.get(value, 0) + 1
        elif kind == "end":
            # Close up to the matching open tag, as a browser would, writing each element it closes
            # (so structure never rests on indentation); a stray end tag closes nothing.
            while open_count.get(value):
                name, _ = stack.pop()
                open_count[name] -= 1
                lines.append(f"{_indent(len(stack))}</{name}>")
                if name == value:
                    break
            else:
                lines.append(f"{_indent(len(stack))}</{value}>")
        else:
            preserve = bool(stack) and stack[-1][1]
            before = tokens[i - 1] if i else None
            after = tokens[i + 1] if i + 1 < len(tokens) else None
            shown_text = _text(value, preserve, before, after)
            if shown_text:
                # One "| " line per text line: a newline in <pre> cannot pose as structure.
                lines += [f"{indent}| {line}" for line in html.escape(shown_text, quote=False).split("\n")]
    return "\n".join(lines)


def _semantic_data(mime: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if mime == "text/html":
        return canonical_html(value)
    if mime.startswith("image/") and not mime.startswith("image/svg"):
        return canonical_base64(value)
    return value


def semantic_outputs(outputs: Iterable[Any]) -> list[Any]:
    """Copies of notebook ``outputs`` with rich data in canonical form; same type, same order.

    Works for nbformat ``NotebookNode`` and plain dicts (the copy is of the same class), so nbval
    can compare the result with its own code.
    """
    result: list[Any] = []
    for output in outputs:
        data = output.get("data")
        if isinstance(data, dict):
            output = type(output)(output)
            output["data"] = type(data)({mime: _semantic_data(mime, v) for mime, v in data.items()})
        result.append(output)
    return result
