"""Hostile payloads for every field of a trace, and an HTMLParser-based safety checker.

The payloads set ``window.__pwned`` / call ``alert`` if they ever execute, so the browser test
can prove they stayed inert; :func:`check_html` proves the same statically.
"""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from types import MappingProxyType
from typing import Any

from dashmagic.plugins import GenericView, read_call, read_result
from dashmagic.plugins.calculator import CalculatorArgs, CalculatorResult
from dashmagic.plugins.code_interpreter import CodeResult, Output
from dashmagic.plugins.hotel import Hotel, HotelArgs, HotelResult
from dashmagic.plugins.ocr import OcrArgs, OcrResult
from dashmagic.plugins.text_to_image import TextToImageArgs, TextToImageResult
from dashmagic.trace import (
    Answer,
    CodeBlock,
    CodeExecution,
    FunctionCall,
    Reasoning,
    SearchResults,
    Source,
    UnknownPart,
    ErrorInfo,
    Figure,
    PluginCall,
    PluginResult,
    RequestInfo,
    Status,
    Thought,
    Trace,
    Usage,
    freeze,
)

#: One string that tries most HTML-context breakouts at once.
H = (
    "<script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=1;alert(1)\">"
    "\"'><svg/onload=window.__pwned=1></style></details></div><iframe src=javascript:alert(1)>"
    "<!-- x --> &amp; &lt;b&gt;"
)
#: Hostile URLs (figures, OCR images, files): script schemes, attribute breakouts, signatures.
BAD_URLS = (
    "javascript:window.__pwned=1//x.png",
    " JaVaScRiPt:alert(1)",
    "java\nscript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD53aW5kb3cuX19wd25lZD0xPC9zY3JpcHQ+",
    '"><script>window.__pwned=1</script>.png',
    'https://evil.example/x.png"onerror="window.__pwned=1',
    "https://evil.example/a.png?OSSAccessKeyId=LEAKED&Signature=LEAKED%3D",
    "http://user:pw@evil.example/b.png#frag",
    "//evil.example/protocol-relative.png",
    "vbscript:msgbox(1)",
)
HOSTILE_MARKDOWN = f"""# Title {H}

<img src=x onerror=alert(1)>
<script>window.__pwned=1</script>
[x](javascript:alert(1)) [y](JAVASCRIPT:window.__pwned=1) [z](data:text/html,<script>alert(1)</script>)
[rel](/files/secret) [ok](https://example.com/doc?page=2)
![](http://evil.example/x.png) ![pic](https://evil.example/y.png?Signature=LEAKED)
<iframe src="https://evil.example"></iframe><object data=x></object><embed src=x>
<a href="javascript:alert(1)" onclick="alert(1)">raw</a>

| a | b |
|---|---|
| {H} | [c](vbscript:msgbox) |

```html
{H}
```

Cited[1][ref_2][3][ref_4][99] and `code[1]`
"""

#: Bidi controls (Trojan Source) and terminal/control characters, for today's fields.
BIDI_CTRL = "\u202eevil\u2066 \x1b[2J\x07\r\x00 \u200b"
#: Nesting deeper than ``json`` recurses (the trace freezes it iteratively, so it can hold it).
DEEP_RAW = "[" * 5000 + "]" * 5000
#: A megabyte-scale argument string (kept at 200 kB so the many hostile renders stay quick).
HUGE_ARGS = '{"payload": "' + "<script>window.__pwned=1</script>" * 6000 + '"}'


def _deep() -> Any:
    value: Any = []
    for _ in range(5000):
        value = [value]
    return freeze(value)

#: Every string that must appear verbatim in text/plain.
VERBATIM = (H,)


def _fig(url: str) -> Figure:
    return Figure(url=url, alt=H)


def hostile_steps() -> tuple[Any, ...]:
    """Steps that put ``H`` (or a bad URL) into every field each view has."""
    figs = tuple(_fig(u) for u in BAD_URLS)
    calc_raw = json.dumps({"payload__input__text": H})
    calc_parsed, calc_err, calc_view = read_call("calculator", calc_raw)
    res_raw = json.dumps({"equations": [H], "results": [H]})
    res_parsed, res_err, res_view = read_result("calculator", res_raw)
    code_raw = f"```{H}\nprint({H!r})\n```"
    code_result_raw = f"stdout:\n\n```\n{H}\n```\n\nstderr:\n\n```\n{H}\n```\n\n![{H}](javascript:alert(1))\n{H}"
    bad = Status(code=500, name=H, message=H)
    return (
        Thought(H),
        PluginCall("calculator", H, calc_raw, calc_parsed, calc_err, calc_view),
        PluginResult("calculator", H, res_raw, res_parsed, res_err, Status(200, H, H), res_view),
        PluginCall(H, H + "2", H, None, None, CalculatorArgs(H)),
        PluginResult(H, H + "2", H, None, None, bad, CalculatorResult(((H, H),))),
        PluginCall("code_interpreter", "code_interpreter", code_raw,
                   view=read_call("code_interpreter", code_raw)[2]),
        PluginResult("code_interpreter", "code_interpreter", code_result_raw, status=bad,
                     view=read_result("code_interpreter", code_result_raw)[2]),
        PluginCall("code_interpreter", H, H, view=CodeBlock(code=H, language=H)),
        PluginResult("code_interpreter", H, H, view=CodeResult(
            outputs=(Output(H, H), Output("stderr", H), Output("error", H)), figures=figs, rest=H)),
        PluginCall("ocr", H, H, view=OcrArgs(BAD_URLS[0])),
        PluginResult("ocr", H, H, view=OcrResult(text=H, success=False, code=H, error_message=H)),
        PluginCall("text_to_image", H, H, view=TextToImageArgs(
            prompt=H, negative_prompt=H, size=H, extra=MappingProxyType({H: H}))),
        PluginResult("text_to_image", H, H, view=TextToImageResult(figs)),
        PluginCall("haozhu_recommend_hotel", H, H, view=HotelArgs(H)),
        PluginResult("haozhu_recommend_hotel", H, H, view=HotelResult((Hotel(H, H, H), Hotel(H)))),
        PluginCall(H, H, H, freeze({H: [H, 1]}), None, GenericView(freeze({H: [H, 1]}))),
        PluginResult(H, H, H, freeze([H]), None, Status(None, H, H), GenericView(freeze([H, {H: H}]))),
        PluginCall("calculator", H, H + "{", None, f"not valid JSON {H}", None),
        PluginResult("calculator", H, H + "{", None, f"not valid JSON {H}", Status(400, H, H), None),
        PluginResult("orphan", H, H, view=None),
        PluginCall("calculator", H, H, None, H, None),  # still running / never answered
        *hostile_current_steps(),
        Answer(HOSTILE_MARKDOWN),
    )


def hostile_sources() -> tuple[Source, ...]:
    """Index 1.. over every bad URL (as url *and* icon), hostile title and site everywhere."""
    return tuple(
        Source(i, title=H + BIDI_CTRL, url=url, site_name=H, icon=url) for i, url in enumerate(BAD_URLS, 1)
    ) + (Source(len(BAD_URLS) + 1, "", "", "", "javascript:window.__pwned=1"),)


def hostile_current_steps() -> tuple[Any, ...]:
    """Today's steps with ``H``, bidi/control characters, bad URLs and huge or deep values in
    every field (the answer that cites the sources is :data:`HOSTILE_MARKDOWN`)."""
    return (
        Reasoning(H + BIDI_CTRL),
        CodeExecution(f"print({H!r}){BIDI_CTRL}", index=0, language=H),
        CodeExecution("", index=1),
        Reasoning(H),
        SearchResults(hostile_sources(), extra=(freeze({H: H, "url": BAD_URLS[0]}), _deep())),
        FunctionCall(0, H, H + BIDI_CTRL, json.dumps({H: [H, BIDI_CTRL]}), freeze({H: [H, BIDI_CTRL]})),
        FunctionCall(1, H, H, H + "{", None, f"not valid JSON {H}"),
        FunctionCall(2, "", "", DEEP_RAW, _deep()),
        FunctionCall(3, H, "huge", HUGE_ARGS, freeze(json.loads(HUGE_ARGS))),
        UnknownPart(H + BIDI_CTRL, freeze({H: [H, BIDI_CTRL]})),
        UnknownPart("output.deep", _deep()),
    )


def hostile_trace(status: str = "error", **changes: Any) -> Trace:
    trace = Trace(
        request=RequestInfo(model=H, plugins=(H, "pdf_extracter"), prompt=H, files=BAD_URLS),
        steps=hostile_steps(),
        usage=Usage(1, 2, 3, MappingProxyType({H: 1}), reasoning_tokens=H, cached_tokens=H),  # type: ignore[arg-type]
        request_id=H,
        model=H,
        finish_reason=H,
        status=status,  # type: ignore[arg-type]
        error=ErrorInfo(type=H, message=H, status_code=500, code=H, request_id=H + "x"),
        elapsed=3.25,
        notes=(H, f"retried after {H}"),
    )
    return trace.replace(**changes) if changes else trace


# -- static checker --------------------------------------------------------------------------

_FORBIDDEN_TAGS = {
    "script", "iframe", "object", "embed", "style", "link", "meta", "base", "form", "input",
    "button", "textarea", "svg", "math", "frame", "frameset", "applet", "template", "noscript",
    "video", "audio", "source", "select",
}  # fmt: skip
_VOID = {"br", "hr", "img", "wbr", "col", "area", "input", "meta", "link", "source", "embed"}
_DATA_IMG = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/]+={0,2}$")
_SCHEME_JUNK = re.compile(r"[\s\x00-\x1f\x7f]+")
_ALIGN_STYLE = re.compile(r"^text-align:(left|right|center|justify)$")


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.imgs: list[str] = []
        self.hrefs: list[str] = []
        self.styles = 0
        self.root_closed = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.root_closed:
            self.problems.append(f"content after the root div: <{tag}>")
        if not self.tags and (tag != "div" or dict(attrs).get("class") != "dashmagic-trace"):
            self.problems.append(f"first tag is not the root div: <{tag} {attrs}>")
        if tag == "style":
            self.styles += 1
            if self.tags != ["div"] or self.styles > 1:
                self.problems.append("a <style> other than the leading one")
        elif tag in _FORBIDDEN_TAGS:
            self.problems.append(f"forbidden tag <{tag}>")
        self.tags.append(tag)
        for name, value in attrs:
            self._check_attr(tag, name, value or "")
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"unbalanced </{tag}> (open: {self.stack[-3:]})")
            return
        self.stack.pop()
        if not self.stack:
            self.root_closed = True

    def handle_comment(self, data: str) -> None:
        self.problems.append(f"comment: {data[:40]!r}")

    def handle_decl(self, decl: str) -> None:
        self.problems.append(f"declaration: {decl[:40]!r}")

    def handle_pi(self, data: str) -> None:
        self.problems.append(f"processing instruction: {data[:40]!r}")

    def _check_attr(self, tag: str, name: str, value: str) -> None:
        squashed = _SCHEME_JUNK.sub("", value).lower()
        if name.startswith("on"):
            self.problems.append(f"event handler {name}= on <{tag}>")
        if name in ("id", "srcdoc", "formaction", "srcset", "background", "poster", "action", "xlink:href"):
            self.problems.append(f"attribute {name}= on <{tag}>")
        if name == "style" and not (tag in ("td", "th") and _ALIGN_STYLE.match(value)):
            self.problems.append(f"inline style on <{tag}>: {value[:60]!r}")
        for scheme in ("javascript:", "vbscript:", "livescript:"):
            # alt/title are plain text to a browser (never fetched or run); every other
            # attribute must be free of script schemes.
            if scheme in squashed and name not in ("alt", "title"):
                self.problems.append(f"{scheme} in {name}= of <{tag}>")
        if "data:" in squashed and name not in ("alt", "title") and not (tag == "img" and name == "src"):
            self.problems.append(f"data: URI in {name}= of <{tag}>")
        if name == "src":
            if tag != "img" or not _DATA_IMG.match(value):
                self.problems.append(f"src that is not an inline raster image: <{tag} src={value[:60]!r}>")
            self.imgs.append(value)
        if name == "href":
            self.hrefs.append(value)
            if not re.match(r"^(https?://[^\s\"'<>]+|mailto:[^\s\"'<>]+)$", value):
                self.problems.append(f"href that is not plain http(s)/mailto: {value[:80]!r}")
            if re.search(r"(?i)signature|ossaccesskeyid|LEAKED", value):
                self.problems.append(f"signed URL leaked into href: {value[:80]!r}")


def check_html(markup: str) -> _Checker:
    """Parse ``markup`` and return the checker; ``.problems`` lists every violation."""
    checker = _Checker()
    checker.feed(markup)
    checker.close()
    if checker.stack:
        checker.problems.append(f"unclosed tags: {checker.stack}")
    if not checker.root_closed:
        checker.problems.append("root div never closed")
    return checker


def assert_safe_html(markup: str) -> _Checker:
    checker = check_html(markup)
    assert not checker.problems, "\n".join(checker.problems)
    lowered = markup.lower()
    for needle in ("<script", "<iframe", "<object", "<embed", "<svg", "<img src=x", "<a href=\"javascript"):
        assert needle not in lowered, needle
    assert lowered.count("<style") == 1
    assert "LEAKED" not in markup  # signed query strings never reach the output
    return checker
