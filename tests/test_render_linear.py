"""No quadratic paths on untrusted text: adversarial kinds at 200 kB render, and the one-pass
readers read exactly what the regexes they replaced read.

The guard is generous (5 s per render, where a linear pass takes well under a second): it
catches a quadratic regression (0.1 took 36 s to 107 s on a tenth of this text), not a slow
machine. Speed itself is measured by ``benchmarks/render_cost.py``.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from _adversarial import KINDS, adversarial_text, adversarial_trace
from dashmagic._text import error_page_summary
from dashmagic.plugins.code_interpreter import read_result, split_fence
from dashmagic.render._common import format_size, redact, truncate
from dashmagic.render.html import render_html
from dashmagic.render.text import render_text

SIZE = 200_000
#: CPU seconds one render may use: a linear pass takes well under one at 200 kB, the quadratic
#: paths of 0.1 took from several seconds to minutes. CPU, not wall time, because the machine
#: running the suite may be shared; the wall-clock join below only stops a hang.
GUARD_S = 5.0
HANG_S = 60.0


def _finishes(fn: Callable[[], Any]) -> Any:
    """``fn()``'s value; fails (instead of hanging the suite) if it uses more than ``GUARD_S``."""
    box: dict[str, Any] = {}

    def run() -> None:
        start = time.thread_time()
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc
        box["cpu"] = time.thread_time() - start

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(HANG_S)
    if worker.is_alive():
        pytest.fail(f"still running after {HANG_S} s: a quadratic path on adversarial text?")
    if "error" in box:
        raise box["error"]
    assert box["cpu"] < GUARD_S, f"{box['cpu']:.1f} s of CPU: a quadratic path on adversarial text?"
    return box["value"]


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("render", [render_html, render_text], ids=["html", "text"])
def test_adversarial_text_renders_in_bounded_time(kind: str, render: Callable[..., str]) -> None:
    trace = adversarial_trace(kind, SIZE)
    out = _finishes(lambda: render(trace))
    assert isinstance(out, str) and len(out) >= SIZE // 2  # everything is shown, not dropped


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_error_page_summary_is_bounded_on_every_kind(kind: str) -> None:
    text = adversarial_text(kind, 5 * SIZE)  # the client reads error bodies up to 1 MB
    summary = _finishes(lambda: error_page_summary(text))
    assert len(summary) <= 200 and "\n" not in summary


@pytest.mark.parametrize(
    "text",
    [
        "<title>" * (SIZE // 7),
        "<" * SIZE,
        "<script>" * (SIZE // 8),
        "<title>" + " " * SIZE,
        "a " * SIZE,
    ],
    ids=["titles", "lt", "scripts", "title-spaces", "words"],
)
def test_error_page_summary_is_linear_on_tag_soup(text: str) -> None:
    assert len(_finishes(lambda: error_page_summary(text))) <= 200


def test_one_line_helpers_are_linear_on_long_runs() -> None:
    spaces = " " * SIZE
    assert _finishes(lambda: format_size(spaces + "512" + spaces + "*" + spaces + "512")) == "512×512"
    assert _finishes(lambda: truncate("a" + spaces + "b", 10)) == "a b"
    assert _finishes(lambda: redact("http://" * (SIZE // 7))) == "http://" * (SIZE // 7)


# -- the replaced regexes are the oracle ----------------------------------------------------

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:\n[ \t]*\1[ \t]*)?\s*$", re.S)
_SECTION = re.compile(r"^([A-Za-z_][\w ]*):[ \t]*\n+(`{3,})[^\n]*\n(.*?)\n?\2[ \t]*$", re.S | re.M)
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_URL_WITH_QUERY = re.compile(r"(?i)\b(https?://[^\s?#<>\"'()\[\]]+)[?#][^\s<>\"'()\[\]]*")
_SECRET_KEY = re.compile(
    r"(?i)(?:^|[?&#])(?:signature|ossaccesskeyid|x-oss-[a-z-]+|x-amz-[a-z-]+|security-token"
    r"|expires|access_?token|token|api_?key|key|sig|credential)="
)
_LANGS = {"py": "python", "python3": "python", "": "python"}


def _old_fence(text: str) -> tuple[str, str]:
    match = _FENCE.match(text)
    if not match:
        return text.strip("\n"), "python"
    lang = match.group(2).lower()
    return match.group(3).rstrip("\n"), _LANGS.get(lang, lang)


def _old_result(raw: str) -> tuple[Any, ...]:
    outputs = [(m.group(1).strip(), m.group(3)) for m in _SECTION.finditer(raw)]
    figures = [(m.group(2), m.group(1)) for m in _IMAGE.finditer(raw) if m.group(2).lower().startswith(("https://", "http://"))]
    return outputs, figures, _IMAGE.sub("", _SECTION.sub("", raw)).strip()


def _old_redact(text: str) -> str:
    def fix(m: re.Match[str]) -> str:
        return m.group(1) if _SECRET_KEY.search(m.group()[len(m.group(1)) :]) else m.group()

    return _URL_WITH_QUERY.sub(fix, text)


def _samples(atoms: list[str], count: int, seed: int, longest: int = 10) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(atoms) for _ in range(rng.randint(0, longest))) for _ in range(count)]


_FENCE_ATOMS = ["```", "~~~", "`", " ", "\t", "\n", "py", "a", "````", "\n```", "\r", "js x"]
_RESULT_ATOMS = [
    "a:", "b c:", "\n", "```", "````", "`", " ", "\t", "x", "\n\n", "\r", "![", "]", "(", ")",
    "<", ">", '"', "![a](", "http://x/p.png", "https://y",
]  # fmt: skip
_URL_ATOMS = ["http://", "https://", "HTTP://", "a", "b.c", "/", "?", "#", "&", "sig=", "key=", " ", "(", '"', "=", "é"]


def test_split_fence_reads_what_the_fence_regex_read() -> None:
    for text in _samples(_FENCE_ATOMS, 20_000, seed=1):
        block = split_fence(text)
        assert (block.code, block.language) == _old_fence(text), repr(text)


def test_read_result_reads_what_the_section_and_image_regexes_read() -> None:
    for text in _samples(_RESULT_ATOMS, 20_000, seed=2, longest=14):
        view = read_result(text, None)
        outputs = [(o.name, o.text) for o in view.outputs]
        figures = [(f.url, f.alt) for f in view.figures]
        assert (outputs, figures, view.rest) == _old_result(text), repr(text)


def test_read_result_on_the_documented_shapes() -> None:
    raw = 'stdout:\n\n```\n(33, 67)\n```\nerror:\n````py\nboom\n````\n![fig-001](https://x/p.png "t")\nleft'
    view = read_result(raw, None)
    assert [(o.name, o.text) for o in view.outputs] == [("stdout", "(33, 67)"), ("error", "boom")]
    assert [(f.url, f.alt) for f in view.figures] == [("https://x/p.png", "fig-001")]
    assert view.rest == "left"
    assert _old_result(raw) == ([("stdout", "(33, 67)"), ("error", "boom")], [("https://x/p.png", "fig-001")], "left")


def test_redact_drops_what_the_old_pattern_dropped() -> None:
    for text in _samples(_URL_ATOMS, 20_000, seed=3):
        if re.search(r"(?i)https?://[?#]", text):
            # "http://?sig=…" has no host; the old pattern kept its query, the new one drops it.
            assert len(redact(text)) <= len(text)
            continue
        assert redact(text) == _old_redact(text), repr(text)
    signed = "see https://b.oss.aliyuncs.com/f.png?OSSAccessKeyId=K&Signature=S done"
    assert redact(signed) == "see https://b.oss.aliyuncs.com/f.png done"
    assert redact("http://?signature=1") == "http://"
