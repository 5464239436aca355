"""Trojan Source: bidi controls and invisible characters are shown, marked, never obeyed.

The classic example (CVE-2021-42574): the line displays as ``if access_level != "user":`` but
the string really ends after ``// Check if admin``, so the admin branch runs.
"""

from __future__ import annotations

import pytest

from _hostile import assert_safe_html
from dashmagic.events import TraceBuilder
from dashmagic.render._common import INVISIBLE, invisible_name, mark_invisible
from dashmagic.render.html import mark_invisible_html, render_html
from dashmagic.render.text import render_text
from dashmagic.trace import RequestInfo, Trace

TROJAN = 'if access_level != "user\u202e \u2066// Check if admin\u2069 \u2066":\n    print("admin")'
SPAN = '<span class="dm-invisible" title="U+202E RIGHT-TO-LEFT OVERRIDE">⟨U+202E⟩</span>'


def _trace(code: str = TROJAN, text: str = "see\u200b this") -> Trace:
    builder = TraceBuilder(RequestInfo(model="qwen-plus", plugins=("code_interpreter",)))
    messages = [
        {
            "role": "assistant",
            "content": f"Thought: {text}",
            "plugin_call": {"name": "code_interpreter", "arguments": f"```py\n{code}\n```"},
        },
        {"role": "plugin", "name": "code_interpreter", "content": f"stdout:\n```\n{text}\n```\n![a\u202eb](https://x.example/f.png)"},
        {"role": "assistant", "content": f'Thought: ok\nFinal Answer: **{text}** [l\u2067](https://e.example/ "t\u202et")'},
    ]
    builder.feed({"output": {"choices": [{"finish_reason": "stop", "messages": messages}]}})
    return builder.finish()


def test_code_blocks_keep_the_exact_characters() -> None:
    assert _trace().code_blocks[0].code == TROJAN


def test_html_marks_the_trojan_source_example_in_highlighted_code() -> None:
    markup = render_html(_trace())
    code = markup[markup.index('<pre class="dm-code">') : markup.index("</pre>")]
    assert SPAN in code
    assert code.count('class="dm-invisible"') == 4  # U+202E, U+2066, U+2069, U+2066
    assert 'title="U+2069 POP DIRECTIONAL ISOLATE">⟨U+2069⟩</span>' in code
    assert not set(markup) & INVISIBLE
    assert_safe_html(markup)


def test_text_marks_the_trojan_source_example() -> None:
    text = render_text(_trace())
    assert 'if access_level != "user⟨U+202E⟩ ⟨U+2066⟩// Check if admin⟨U+2069⟩ ⟨U+2066⟩":' in text
    assert not set(text) & INVISIBLE


def test_every_place_text_is_shown_is_marked() -> None:
    markup, text = render_html(_trace()), render_text(_trace())
    # thought, result output, answer (after Markdown and nh3): one ZERO WIDTH SPACE each
    assert markup.count('title="U+200B ZERO WIDTH SPACE">⟨U+200B⟩</span>') == 3
    assert text.count("⟨U+200B⟩") == 3
    # the figure's alt and the link's title attribute get the plain form (no markup in a tag)
    assert 'title="t⟨U+202E⟩t"' in markup
    assert "a⟨U+202E⟩b" in text


@pytest.mark.parametrize("char", sorted(INVISIBLE))
def test_each_invisible_character_is_marked(char: str) -> None:
    name = invisible_name(char)
    assert name.startswith(f"U+{ord(char):04X} ") and len(name) > 7
    assert mark_invisible(f"a{char}b") == f"a⟨U+{ord(char):04X}⟩b"
    html = mark_invisible_html(f'<div class="x" title="{char}">{char}</div>')
    assert html == f'<div class="x" title="⟨U+{ord(char):04X}⟩"><span class="dm-invisible" title="{name}">⟨U+{ord(char):04X}⟩</span></div>'


def test_ordinary_text_is_untouched() -> None:
    plain = '<div title="a > b">x ⟨y⟩ 中文 — ok</div>'
    assert mark_invisible_html(plain) is plain
    assert mark_invisible("中文 — ok") == "中文 — ok"
