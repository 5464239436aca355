"""The fault matrix and the bad-input matrix; docs/reliability.md is generated from these rows.

Each row is a real exchange with the loopback fake (faults injected on the wire) or a real
cell in an InteractiveShell. Regenerate the document with::

    python tests/test_reliability.py --write
"""

from __future__ import annotations

import logging
import socket
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

import dashmagic
from dashmagic.errors import (
    ApiError,
    ConfigError,
    ProtocolError,
    RateLimitError,
    ServerError,
    TimeoutError,
    TransportError,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"
CALC = "12345*98765是多少"


@dataclass(frozen=True)
class Fault:
    id: str
    situation: str
    inject: tuple[str, dict[str, Any]] | None
    stream: bool
    error: type[Exception] | None
    message: str  # a phrase the user sees
    requests: int  # how many requests reached the server (1 = not retried)
    partial: bool  # steps received before the failure are kept
    timeout: float | tuple[float, float] | None = None


FAULTS: list[Fault] = [
    Fault("429-then-ok", "429 Throttling.RateQuota, then success", ("throttle", {}), True, None,
          "Retrying after HTTP 429 Throttling.RateQuota", 2, False),
    Fault("429-always", "429 on every try", ("throttle", {"times": 5}), False, RateLimitError,
          "Requests rate limit exceeded", 3, False),
    Fault("500", "500 InternalError once", ("server_error", {}), False, None, "Retrying after HTTP 500 InternalError", 2, False),
    Fault("502-html", "502 with an HTML page, every try", ("bad_gateway_html", {"times": 5}), False, ServerError,
          "non-JSON error page", 3, False),
    Fault("503-retry-after", "503 with Retry-After: 1, then success", ("unavailable", {"retry_after": 1}), False, None,
          "in 1.0 s", 2, False),
    Fault("refused", "connection refused (nothing listening)", None, False, TransportError,
          "Connection refused", 0, False),
    Fault("connect-timeout", "connect timeout (the server's accept queue is full)", None, False, TimeoutError,
          "within 0.3 s (connect timeout)", 0, False, (0.3, 5.0)),
    Fault("reset-before", "connection reset before the response, then success", ("reset_before_response", {}), False,
          None, "Retrying after Could not reach", 2, False),
    Fault("reset-mid-stream", "connection reset in the middle of a stream", ("reset_mid_stream", {}), True,
          TransportError, "broke in the middle of the reply", 1, True),
    Fault("stall", "stream stalls longer than the read timeout", ("stall", {"seconds": 3.0}), True, TimeoutError,
          "went silent for more than 0.5 s", 1, True, 0.5),
    Fault("garbage-json", "status 200 with garbage JSON", ("garbage_json", {}), False, ProtocolError,
          "not valid JSON", 1, False),
    Fault("cut-mid-event", "SSE stream cut in the middle of an event", ("cut_mid_event", {}), True, TransportError,
          "ended in the middle of an event", 1, True),
    Fault("error-event-first", "event:error as the first event", ("error_event_first", {}), True, ApiError,
          "DataInspectionFailed", 1, False),
    Fault("error-event-mid", "event:error in the middle of a stream", ("error_event_mid", {}), True, ServerError,
          "InternalError", 1, True),
    Fault("10mb", "a 10 MB response", ("huge_response", {}), False, None, "", 1, False),
    Fault("invalid-utf8", "invalid UTF-8 in the body", ("invalid_utf8", {}), False, ProtocolError,
          "not valid UTF-8", 1, False),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _unresponsive_port() -> Iterator[int]:
    """A loopback listener whose accept queue is full: new connections hang in SYN, so the
    client's connect timeout fires (without any traffic beyond 127.0.0.1)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    time.sleep(0.1)
    try:
        yield port
    finally:
        for sock in (*fillers, server):
            sock.close()


@pytest.mark.parametrize("row", FAULTS, ids=[f.id for f in FAULTS])
def test_fault(fake_dashscope, row: Fault) -> None:
    with _unresponsive_port() as hanging:
        _check_fault(fake_dashscope, row, {
            "refused": f"http://127.0.0.1:{_free_port()}/api/v1",
            "connect-timeout": f"http://127.0.0.1:{hanging}/api/v1",
        }.get(row.id, fake_dashscope.base_url))


def _check_fault(fake_dashscope, row: Fault, base: str) -> None:
    if row.inject:
        name, options = row.inject
        fake_dashscope.inject(name, **options)
    call = dashmagic.stream if row.stream else dashmagic.run
    kwargs = dict(plugins=["calculator"], seed=42, api_key="sk-test", base_url=base, timeout=row.timeout)
    started = time.monotonic()
    if row.error is None:
        result = call(CALC, **kwargs)
        trace = list(result)[-1] if row.stream else result
        assert trace.status == "complete" and trace.error is None
        if row.message:
            assert any(row.message in note for note in trace.notes), trace.notes
        if row.id == "10mb":
            assert len(trace.answer) >= 10 * 1024 * 1024 - 100
        if row.id == "503-retry-after":
            assert time.monotonic() - started >= 1.0  # Retry-After was honoured
    else:
        with pytest.raises(row.error) as info:
            list(call(CALC, **kwargs)) if row.stream else call(CALC, **kwargs)
        error = info.value
        assert row.message in str(error), str(error)
        assert "\n" not in str(error) and "Traceback" not in str(error)
        trace = error.trace
        assert trace is not None and trace.status == "error" and trace.error.type == type(error).__name__
        assert bool(trace.steps) == row.partial, trace.steps
        if row.id in ("refused", "connect-timeout"):
            assert len(trace.notes) == 2  # three tries, two visible retries
        if row.id == "connect-timeout":
            assert error.phase == "connect"
    assert len(fake_dashscope.generation_requests) == row.requests


def test_never_retries_other_4xx(fake_dashscope) -> None:
    fake_dashscope.inject("access_denied", times=3)
    with pytest.raises(ApiError):
        dashmagic.run(CALC, plugins=["calculator"], api_key="sk-test", base_url=fake_dashscope.base_url)
    assert len(fake_dashscope.generation_requests) == 1


def test_retries_are_configurable(fake_dashscope) -> None:
    fake_dashscope.inject("throttle", times=5)
    with pytest.raises(RateLimitError):
        dashmagic.run(CALC, api_key="sk-test", base_url=fake_dashscope.base_url, retries=1)
    assert len(fake_dashscope.generation_requests) == 1


def test_retry_is_shown_in_the_notebook_output(fake_env, shell) -> None:
    from IPython.utils.capture import capture_output

    fake_env.inject("throttle")
    with capture_output() as cap:
        shell.run_cell(f"%%dashscope --plugins calculator\n{CALC}")
    final = cap.outputs[-1].data
    assert "Retrying after HTTP 429 Throttling.RateQuota" in final["text/plain"]
    assert "Retrying after HTTP 429" in final["text/html"]


# -- bad input ------------------------------------------------------------------------------------
#: A key shaped like a real one; no part of it may be printed when it is refused.
ROW_KEY = "sk-row0123456789abcdef0123456789ab"


@dataclass(frozen=True)
class BadInput:
    id: str
    situation: str
    line: str
    body: str | None
    error: str  # exception type name
    message: str
    env: tuple[tuple[str, str], ...] = ()  # environment for this row ("" unsets)
    key_file: str | None = None  # DASHSCOPE_API_KEY_FILE_PATH points at a file with this text
    setup: str = ""  # code run in the shell first (names start with dm_: the fixture removes them)
    source: str | None = None  # a whole cell instead of `%%dashscope line` + body
    pending: str | None = None  # why the row cannot pass yet (strict xfail until it is wired)


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


BAD_INPUTS: list[BadInput] = [
    BadInput("unknown-flag", "unknown flag", "--bogus", "hi", "UsageError", "unknown flag --bogus"),
    BadInput("duplicate-flag", "duplicate flag", "--model qwen-max --model qwen-plus", "hi", "UsageError",
             "--model is given twice"),
    BadInput("empty-cell", "empty cell (IPython's own check)", "", "", "UsageError", "the cell body is empty"),
    BadInput("whitespace-cell", "whitespace-only cell", "", "  \n\t \n", "ConfigError", "The cell is empty"),
    BadInput("1mb-prompt", "a 1 MB prompt", "", "x" * 1_000_000, "ConfigError", "more than the 500,000 dashmagic sends"),
    BadInput("10mb-value", "a 10 MB `{{ value }}`", "", "summarise {{ dm_big }}", "ConfigError",
             "The value of {{ dm_big }} is 10,000,000 characters, more than the 500,000", setup="dm_big = 'x' * 10_000_000"),
    BadInput("interpolated-over-limit", "two 300 kB `{{ values }}` (the limit holds after interpolation)", "",
             "{{ dm_part }} and {{ dm_part }}", "ConfigError", "the prompt is over 500,000 characters",
             setup="dm_part = 'x' * 300_000"),
    BadInput("str-raises", "`{{ obj }}` whose `__str__` raises", "", "look at {{ dm_obj }}", "ConfigError",
             "{{ dm_obj }}: str() of its Broken value raised RuntimeError: no str",
             setup="class Broken:\n    def __str__(self):\n        raise RuntimeError('no str')\ndm_obj = Broken()"),
    BadInput("str-not-a-string", "`{{ obj }}` whose `__str__` returns a non-string", "", "look at {{ dm_obj }}",
             "ConfigError", "raised TypeError: __str__ returned non-string",
             setup="class Odd:\n    def __str__(self):\n        return 5\ndm_obj = Odd()"),
    BadInput("surrogate-prompt", "a lone surrogate in the prompt", "", "hello \ud800 world", "ConfigError",
             "The prompt contains a lone surrogate U+D800 at character 7"),
    BadInput("surrogate-value", "a lone surrogate in a `{{ value }}`", "", "hello {{ dm_text }}", "ConfigError",
             "The value of {{ dm_text }} contains a lone surrogate U+DCFF at character 3",
             setup="dm_text = b'ab\\xff'.decode('utf-8', 'surrogateescape')"),
    BadInput("surrogate-param", "a lone surrogate in --param (a JSON escape)", "--param 'stop=[\"ok\", \"\\ud800\"]'",
             "hi", "ConfigError", "--param stop[1] contains a lone surrogate U+D800 at character 1"),
    BadInput("param-json", "--param with invalid JSON", "--param 'stop=[\"a\",'", "hi", "ConfigError",
             "looks like JSON but does not parse"),
    BadInput("param-no-equals", "--param without =", "--param temperature", "hi", "ConfigError", "--param expects key=value"),
    BadInput("param-deep", "--param JSON nested 2,000 deep", f"--param x={_nested(2_000)}", "hi", "ConfigError",
             "--param x: the JSON is nested deeper than 100 levels"),
    BadInput("param-nan", "--param temperature=NaN (not JSON)", "--param temperature=NaN", "hi", "ConfigError",
             "--param temperature: NaN is not a JSON number"),
    BadInput("file-not-url", "--file that is not a URL", "--plugins pdf_extracter --file report.pdf", "总结", "ConfigError",
             "--file expects a URL"),
    BadInput("unknown-name", "unknown interpolation name", "", "{{ no_such_name }}", "ConfigError",
             "name 'no_such_name' is not defined"),
    BadInput("unknown-plugin", "unknown plugin (sent with a warning; the fake's account refuses it)", "--plugins weather",
             "hi", "PermissionDeniedError", 'Plugin ["weather"] access denied.'),
    BadInput("bad-base-url", "a base URL that is not a URL", "", "hi", "ConfigError", "is not an http(s) URL",
             env=(("DASHSCOPE_HTTP_BASE_URL", "dashscope.aliyuncs.com/api/v1"),)),
    BadInput("ipv6-base-url", "DASHSCOPE_HTTP_BASE_URL='http://[::1'", "", "hi", "ConfigError",
             "is not a valid URL (Invalid IPv6 URL)", env=(("DASHSCOPE_HTTP_BASE_URL", "http://[::1"),)),
    BadInput("http-base-url", "plain http to a non-loopback host", "", "hi", "ConfigError",
             "Refusing to send the API key over plain http",
             env=(("DASHSCOPE_HTTP_BASE_URL", "http://dashscope.example.com/api/v1"),)),
    BadInput("key-two-lines-env", "DASHSCOPE_API_KEY with a second line (pasted)", "", "hi", "ConfigError",
             "The DashScope API key in DASHSCOPE_API_KEY contains a line break (U+000A) at character 35",
             env=(("DASHSCOPE_API_KEY", f"{ROW_KEY}\n# old key"),)),
    BadInput("key-zero-width", "DASHSCOPE_API_KEY ending in a zero-width space (copy-paste)", "", "hi", "ConfigError",
             "DASHSCOPE_API_KEY contains U+200B ZERO WIDTH SPACE at character 35",
             env=(("DASHSCOPE_API_KEY", f"{ROW_KEY}\u200b"),)),
    BadInput("key-file-two-lines", "a two-line key file", "", "hi", "ConfigError",
             "(named by DASHSCOPE_API_KEY_FILE_PATH) contains a line break (U+000A) at character 35",
             env=(("DASHSCOPE_API_KEY", ""),), key_file=f"{ROW_KEY}\nsk-older-key-0123456789abcdef\n"),
    BadInput("key-file-bom", "a key file saved with a byte-order mark", "", "hi", "ConfigError",
             "contains U+FEFF ZERO WIDTH NO-BREAK SPACE at character 1",
             env=(("DASHSCOPE_API_KEY", ""),), key_file=f"\ufeff{ROW_KEY}\n"),
    BadInput("bad-timeout", "--timeout 0", "--timeout 0", "hi", "ConfigError", "--timeout must be a positive number"),
    BadInput("timeout-nan", "--timeout nan", "--timeout nan", "hi", "ConfigError",
             "--timeout must be a positive number of seconds, at most 1,000,000 (about 11 days), got nan."),
    BadInput("timeout-inf", "--timeout inf", "--timeout inf", "hi", "ConfigError",
             "--timeout must be a positive number of seconds, at most 1,000,000 (about 11 days), got inf."),
    BadInput("timeout-1e308", "--timeout 1e308", "--timeout 1e308", "hi", "ConfigError",
             "--timeout must be a positive number of seconds, at most 1,000,000 (about 11 days), got 1e+308."),
    BadInput("config-timeout-nan", "`%config DashScopeMagics.timeout = float('nan')` (refused, value kept)", "", "hi",
             "TraitError", "DashScopeMagics.timeout must be a positive number of seconds, at most 1,000,000",
             source="%config DashScopeMagics.timeout = float('nan')"),
    BadInput("bad-quotes", "unbalanced quotes in the flags", '--system "oops', "hi", "UsageError", "check the quotes"),
]


def _row_param(row: BadInput) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=row.pending)] if row.pending else []
    return pytest.param(row, id=row.id, marks=marks)


def _prepare_row(row: BadInput, shell: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in row.env:
        if value:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    if row.key_file is not None:
        key_file = tmp_path / "api_key"
        key_file.write_text(row.key_file, encoding="utf-8")
        monkeypatch.setenv("DASHSCOPE_API_KEY_FILE_PATH", str(key_file))
    if row.setup:
        assert shell.run_cell(row.setup).error_in_exec is None


@pytest.mark.parametrize("row", [_row_param(b) for b in BAD_INPUTS])
def test_bad_input(fake_env, shell, monkeypatch, caplog, tmp_path: Path, row: BadInput) -> None:
    from IPython.utils.capture import capture_output

    _prepare_row(row, shell, monkeypatch, tmp_path)
    if row.source is not None and row.source.startswith("%config"):
        return _check_config_row(shell, row, caplog)
    source = row.source or f"%%dashscope {row.line}\n{row.body}"
    with warnings.catch_warnings(record=True) as caught, capture_output() as cap:
        warnings.simplefilter("always")
        result = shell.run_cell(source)
    error = result.error_in_exec
    assert type(error).__name__ == row.error, (error, cap.stdout)
    assert row.message in str(error)
    # UsageError goes to stderr, our errors' one-line _render_traceback_ to stdout.
    printed = [line for line in (cap.stdout + cap.stderr).splitlines() if line.strip()]
    assert len(printed) == 1 and "Traceback" not in cap.stdout + cap.stderr, printed
    for fragment in (ROW_KEY, ROW_KEY[3:15], ROW_KEY[-10:]):
        assert fragment not in cap.stdout + cap.stderr + str(error)
    assert fake_env.generation_requests == [] or row.id == "unknown-plugin"
    if row.id == "unknown-plugin":
        assert any("Known plugins: ocr, calculator" in str(w.message) for w in caught)


def _check_config_row(shell: Any, row: BadInput, caplog: pytest.LogCaptureFixture) -> None:
    """%config catches the validator's error and logs its message: one line, old value kept."""
    from IPython.utils.capture import capture_output

    magics = shell.magics_manager.registry["DashScopeMagics"]
    try:
        with caplog.at_level(logging.ERROR), capture_output() as cap:
            result = shell.run_cell(row.source)
        logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert result.error_in_exec is None and "Traceback" not in cap.stdout + cap.stderr
        assert len(logged) == 1 and row.message in logged[0] and "\n" not in logged[0], logged
        assert magics.timeout == 180.0
    finally:
        shell.config.DashScopeMagics.pop("timeout", None)
        magics.timeout = 180.0


def test_api_bad_inputs_raise_config_errors(fake_dashscope) -> None:
    kwargs = dict(api_key="sk-test", base_url=fake_dashscope.base_url)
    with pytest.raises(ConfigError, match="The prompt is empty"):
        dashmagic.run("  ", **kwargs)
    with pytest.raises(ConfigError, match="--file expects a URL"):
        dashmagic.run("x", files=["report.pdf"], **kwargs)
    with pytest.raises(ConfigError, match="not an http"):
        dashmagic.run("x", api_key="k", base_url="ftp://x")
    with pytest.raises(ConfigError, match="seed must be an integer"):
        dashmagic.run("x", seed="42", **kwargs)  # type: ignore[arg-type]
    assert fake_dashscope.generation_requests == []


# -- recordings and record destinations ------------------------------------------------------------
# A recording is untrusted input (it may be shared, hand-edited or cut by a crash): every damaged
# line is one short line naming the file and the line, raised when the session is made, before
# anything is sent. ``damage`` rewrites a good exchange line (a JSON object) into the bad one.
@dataclass(frozen=True)
class BadRecording:
    id: str
    situation: str
    damage: Callable[[dict[str, Any]], Any]
    message: str
    torn: bool = False  # the file ends inside this line (no newline, not valid JSON)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    def damage(line: dict[str, Any]) -> Any:
        *parents, last = path.split(".")
        target = line
        for name in parents:
            target = target[name]
        target[last] = value
        return line
    return damage


BAD_RECORDINGS: list[BadRecording] = [
    BadRecording("chunks-ints", "chunks that are numbers", _set("response.chunks", [1, 2]),
                 "response.chunks[0] is the number 1, not text"),
    BadRecording("response-string", "a response that is a string", _set("response", "abc"),
                 "response is text, not an object"),
    BadRecording("response-list", "a response that is a list", _set("response", [1, 2]),
                 "response is a list, not an object"),
    BadRecording("header-pairs", "response headers as a list of pairs of numbers", _set("response.headers", [[1, 2]]),
                 "response.headers is a list, not an object"),
    BadRecording("header-int", "a response header value that is a number", _set("response.headers", {"Retry-After": 5}),
                 "response.headers['Retry-After'] is the number 5, not text"),
    BadRecording("error-text", 'error: "abc"', _set("response.error", "abc"), "response.error is text, not an object"),
    BadRecording("error-kind", "an unknown error kind", _set("response.error", {"kind": "boom", "message": ""}),
                 "response.error.kind 'boom' is not one of"),
    BadRecording("status-text", "a status that is text", _set("response.status", "200"),
                 "response.status is text, not an HTTP status"),
    BadRecording("bad-base64", "chunks_b64 that is not base64", _set("response", {"status": 200, "chunks_b64": ["%%"]}),
                 "response.chunks_b64[0] is not base64"),
    BadRecording("request-list", "a request that is a list", _set("request", []), "request is a list, not an object"),
    BadRecording("deep", "a line nested 100,000 deep", lambda line: "[" * 100_000 + "]" * 100_000,
                 "it is nested too deeply"),
    BadRecording("torn", "a torn last line (the file ends inside it)", lambda line: line, "the line is cut short",
                 torn=True),
]

_GOOD_LINE: dict[str, Any] = {
    "type": "exchange",
    "request": {"method": "POST", "path": "/api/v1/x", "headers": {}, "body": {"model": "m"}},
    "response": {"status": 200, "headers": {"Content-Type": "application/json"}, "chunks": ["{}"], "complete": True},
}


def _damaged_file(tmp_path: Path, row: BadRecording) -> Path:
    import copy
    import json

    bad = row.damage(copy.deepcopy(_GOOD_LINE))
    text = bad if isinstance(bad, str) else json.dumps(bad)
    path = tmp_path / "shared.jsonl"
    body = json.dumps({"dashmagic_recording": 2}) + "\n" + json.dumps(_GOOD_LINE) + "\n"
    path.write_text(body + (text[: len(text) // 2] if row.torn else text + "\n"), encoding="utf-8")
    return path


@pytest.mark.parametrize("row", BAD_RECORDINGS, ids=[r.id for r in BAD_RECORDINGS])
def test_bad_recording(shell, tmp_path: Path, row: BadRecording) -> None:
    from IPython.utils.capture import capture_output

    path = _damaged_file(tmp_path, row)
    with capture_output() as cap:
        result = shell.run_cell(f"%%dashscope --replay {path}\nhi")
    error = result.error_in_exec
    assert type(error) is ConfigError, (error, cap.stdout)
    message = str(error)
    assert row.message in message and f"{str(path)!r} is damaged at line 3" in message, message
    assert "\n" not in message and len(message) < 300
    printed = [line for line in (cap.stdout + cap.stderr).splitlines() if line.strip()]
    assert len(printed) == 1 and "Traceback" not in cap.stdout + cap.stderr, printed


@dataclass(frozen=True)
class BadDestination:
    id: str
    situation: str
    mode: str
    path: Callable[[Path], str]
    message: str


def _file_as_folder(tmp_path: Path) -> str:
    (tmp_path / "notes.txt").write_text("a file", encoding="utf-8")
    return str(tmp_path / "notes.txt" / "rec.jsonl")


BAD_DESTINATIONS: list[BadDestination] = [
    BadDestination("record-empty", "`--record ''`", "record", lambda tmp: "", "--record needs a file path"),
    BadDestination("replay-empty", "`--replay ''`", "replay", lambda tmp: "", "--replay needs a file path"),
    BadDestination("record-folder", "`--record DIR` (a folder)", "record", lambda tmp: str(tmp), "is a folder"),
    BadDestination("record-under-file", "`--record FILE/x.jsonl` (a file where a folder should be)", "record",
                   _file_as_folder, "is a file, not a folder"),
]


@pytest.mark.parametrize("row", BAD_DESTINATIONS, ids=[r.id for r in BAD_DESTINATIONS])
def test_bad_record_destination_is_refused_before_sending(fake_dashscope, tmp_path: Path, row: BadDestination) -> None:
    from dashmagic.transport import open_sessions, session_for

    before = open_sessions()
    with pytest.raises(ConfigError) as info:
        session_for(row.mode, row.path(tmp_path))
    assert row.message in str(info.value) and "\n" not in str(info.value)
    assert open_sessions() == before and fake_dashscope.generation_requests == []


def test_a_recording_that_fails_after_the_answer_keeps_the_answer(fake_dashscope, tmp_path: Path) -> None:
    from dashmagic.transport import session_for

    path = tmp_path / "rec.jsonl"
    failures: list[str] = []
    with session_for("record", path, on_error=failures.append) as session:
        path.unlink()
        path.mkdir()  # the disk changed under the kernel: the line cannot be written
        trace = dashmagic.run(CALC, plugins=["calculator"], seed=42, api_key="sk-test",
                              base_url=fake_dashscope.base_url, session=session)
    assert trace.ok and "1219253925" in trace.text
    assert len(failures) == 1 and "Cannot write the recording file" in failures[0] and "\n" not in failures[0]
    assert session.get_adapter("http://x").errors == failures


# -- the document ---------------------------------------------------------------------------------
def _fault_row(f: Fault) -> str:
    outcome = f"`{f.error.__name__}`" if f.error else "completes"
    retried = "no" if f.requests <= 1 else f"yes ({f.requests} tries)"
    if f.id in ("refused", "connect-timeout"):
        retried = "yes (3 tries)"
    return f"| {f.situation} | {outcome} | {f.message or '—'} | {retried} | {'yes' if f.partial else '—'} |"


def _cell(text: str) -> str:
    return "`" + text.replace("|", "\\|") + "`"


def _pending_note() -> list[str]:
    reasons = sorted({b.pending for b in BAD_INPUTS if b.pending})
    return ["† Not yet: " + "; ".join(reasons) + ".", ""] if reasons else []


def _bad_input_row(b: BadInput) -> str:
    mark = " †" if b.pending else ""
    return f"| {b.situation}{mark} | `{b.error}` | {_cell(b.message)} |"


def _limit_rows() -> list[str]:
    from test_stream_limits import LIMITS

    return [
        "## Limits",
        "",
        "Raw replies played from a loopback socket (`tests/test_stream_limits.py`; one test per row):",
        "",
        "| the server sends | what happens |",
        "|---|---|",
        *(f"| {situation} | {outcome} |" for _, situation, outcome in LIMITS),
        "",
    ]


def render_doc() -> str:
    lines = [
        "# Reliability: what happens when things go wrong",
        "",
        "Generated from `tests/test_reliability.py` (`python tests/test_reliability.py --write`); a test",
        "checks this file against the rows, and every row is a passing test against the loopback fake.",
        "",
        "Retries: 429 (`Throttling.*`), 500/502/503/504 and connection failures before any response byte,",
        "at most `retries` tries (default 3, `DashScopeMagics.retries`, `run(retries=…)`), exponential",
        "backoff with jitter, `Retry-After` honoured; each retry is a visible note in the output. Never",
        "retried: other 4xx, read timeouts, and anything once a reply has started (no duplicated answers,",
        "no double cost).",
        "",
        "## Faults",
        "",
        "| situation | outcome | the user sees | retried | partial trace kept |",
        "|---|---|---|---|---|",
        *(_fault_row(f) for f in FAULTS),
        "",
        "## Bad input",
        "",
        "Each gets a one-line message in the cell output and no traceback; the exception keeps its type.",
        "",
        "| input | error | message contains |",
        "|---|---|---|",
        *(_bad_input_row(b) for b in BAD_INPUTS),
        "",
        *_pending_note(),
        "## Recordings",
        "",
        "A recording is untrusted input: shared, hand-edited or cut by a crash. A damaged line is a",
        "`ConfigError` of one line naming the file and the line, raised when the replay session is made",
        "(`%%dashscope --replay PATH`), before anything is sent; never a traceback.",
        "",
        "| the recording holds | error | message contains |",
        "|---|---|---|",
        *(f"| {r.situation} | `ConfigError` | {_cell(r.message)} |" for r in BAD_RECORDINGS),
        "",
        "The record destination is checked when the session is made (`dashmagic.transport.session_for`,",
        "`check_record_destination`), before the billable request is sent:",
        "",
        "| destination | error | message contains |",
        "|---|---|---|",
        *(f"| {d.situation} | `ConfigError` | {_cell(d.message)} |" for d in BAD_DESTINATIONS),
        "",
        "If writing the recording fails after the answer arrived (disk full, the file replaced), the",
        "answer is kept: the recording adapter never raises into the reading of the reply; it reports",
        "`Cannot write the recording file …` to its `on_error` callback and keeps it in `errors`.",
        "",
        *_limit_rows(),
    ]
    return "\n".join(lines)


def test_document_matches_the_rows() -> None:
    assert DOC.read_text(encoding="utf-8") == render_doc(), "run: python tests/test_reliability.py --write"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(render_doc(), encoding="utf-8")
        print(f"wrote {DOC}")
