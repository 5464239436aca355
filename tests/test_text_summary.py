"""``error_page_summary``: a gateway's HTML error page as one short, safe line."""

from __future__ import annotations

from dashmagic._text import error_page_summary


def test_the_title_wins() -> None:
    page = "<html><head><TITLE class=x>502  Bad\n Gateway</title></head><body><h1>nginx</h1></body></html>"
    assert error_page_summary(page) == "502 Bad Gateway"


def test_without_a_title_the_first_words() -> None:
    page = "<html><style>h1{color:red}</style><script>var x = 1 < 2;</script><h1>Service</h1>\n<p>Unavailable &amp; down</p>"
    assert error_page_summary(page) == "Service Unavailable & down"


def test_an_empty_or_unclosed_title_falls_back_to_the_words() -> None:
    assert error_page_summary("<title></title><p>upstream timeout</p>") == "upstream timeout"
    assert error_page_summary("<title>never closed <p>x") == "never closed x"


def test_bounded_with_an_ellipsis() -> None:
    summary = error_page_summary("<p>" + "word " * 1000 + "</p>", limit=20)
    assert summary == "word word word word…" and len(summary) <= 20
    assert len(error_page_summary("<title>" + "x" * 10_000 + "</title>")) == 200


def test_plain_text_and_lone_brackets_stay() -> None:
    assert error_page_summary("upstream said 1 < 2 > 0") == "upstream said 1 < 2 > 0"
    assert error_page_summary("") == "" and error_page_summary("<div>  </div>") == ""


def test_terminal_escapes_and_bidi_controls_are_shown_not_obeyed() -> None:
    page = "<title>\x1b]52;c;SGVsbG8=\x07bad\u202egateway&#27;[2J</title>"
    # (html.unescape drops the &#27; reference to a control character outright)
    assert error_page_summary(page) == "\\x1b]52;c;SGVsbG8=\\x07bad⟨U+202E⟩gateway[2J"
