"""A canary key goes through every scenario; it must appear nowhere it does not belong.

Outputs, error messages, reprs, exception chains and their formatted tracebacks, log records,
`%xmode Verbose` tracebacks, `%config`, `--dry-run`, recordings and a saved notebook.
"""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path

import pytest
from IPython.utils.capture import capture_output

import dashmagic
from dashmagic.testing import FakeDashScope

from test_reliability import BAD_INPUTS, FAULTS

CANARY = "sk-canary-7d3f0e91ab5c44"
FRAGMENTS = (CANARY, CANARY[3:15], CANARY[-10:])


class Kernelish:
    _allow_stdin = False


def _exception_text(error: BaseException | None) -> str:
    if error is None:
        return ""
    chain = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return f"{error}\n{error!r}\n{chain}\n{getattr(error, 'trace', None)!r}"


def _assert_clean(text: str, where: str) -> None:
    for fragment in FRAGMENTS:
        assert fragment not in text, f"key fragment {fragment!r} found in {where}"


@pytest.fixture
def canary_fake(monkeypatch):
    with FakeDashScope(api_key=CANARY) as fake:
        monkeypatch.setenv("DASHSCOPE_API_KEY", CANARY)
        monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", fake.base_url)
        yield fake


def test_every_fault_through_the_api(canary_fake, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    seen = []
    for row in FAULTS:
        canary_fake.reset()
        if row.inject:
            canary_fake.inject(row.inject[0], **row.inject[1])
        base = canary_fake.base_url if row.id != "refused" else "http://127.0.0.1:9/api/v1"
        try:
            result = (list(dashmagic.stream("hi", base_url=base, timeout=row.timeout)) if row.stream
                      else [dashmagic.run("hi", base_url=base, timeout=row.timeout)])
            seen.append(repr(result[-1]) + str(result[-1]))
        except dashmagic.DashmagicError as error:
            seen.append(_exception_text(error))
    seen.append("\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records))
    _assert_clean("\n".join(seen), "API errors, traces or logs")


def test_every_fault_and_bad_input_through_the_magic_with_recording(canary_fake, shell, tmp_path: Path) -> None:
    shell.kernel = Kernelish()
    recording = tmp_path / "canary.jsonl"
    seen = []
    try:
        for row in FAULTS:
            canary_fake.reset()
            if row.inject:
                canary_fake.inject(row.inject[0], **row.inject[1])
            with capture_output() as cap:
                result = shell.run_cell(f"%%dashscope {'--stream' if row.stream else '--no-stream'} --record {recording}\nhi")
            seen += [cap.stdout, cap.stderr, json.dumps([(o.data, o.metadata) for o in cap.outputs], ensure_ascii=False),
                     _exception_text(result.error_in_exec)]
        canary_fake.reset()
        for bad in BAD_INPUTS:
            with capture_output() as cap:
                result = shell.run_cell(f"%%dashscope {bad.line}\n{bad.body[:100] if bad.body else bad.body}")
            seen += [cap.stdout, cap.stderr, _exception_text(result.error_in_exec)]
        shell.run_line_magic("xmode", "Verbose")
        canary_fake.inject("throttle", times=5)
        with capture_output() as cap:
            shell.run_cell("%%dashscope --no-stream\nhi")
        seen += [cap.stdout, cap.stderr]
        canary_fake.inject("slow", seconds=1)
        with capture_output() as cap:  # an error raised from requests' own frames, shown verbosely
            shell.run_cell("%%dashscope --no-stream --timeout 0.2\nhi")
        seen += [cap.stdout, cap.stderr]
        with capture_output() as cap:
            shell.run_cell("%%dashscope --dry-run --plugins calculator\nhi")
            shell.run_line_magic("config", "DashScopeMagics")
        seen += [cap.stdout, json.dumps([o.data for o in cap.outputs], ensure_ascii=False)]
    finally:
        shell.run_line_magic("xmode", "Context")
        del shell.kernel
    _assert_clean("\n".join(seen), "notebook output")
    assert recording.exists()
    _assert_clean(recording.read_text(encoding="utf-8"), "the recording")


def test_key_echoed_by_the_service_is_scrubbed_from_recordings(canary_fake, tmp_path: Path) -> None:
    canary_fake.queue_reply({"output": {"choices": [{"finish_reason": "stop", "message": {
        "role": "assistant", "content": f"your key is {CANARY}, Bearer {CANARY}"}}]}})
    recording = tmp_path / "echo.jsonl"
    list(dashmagic.stream("hi", mode="record", recordings=str(recording)))
    _assert_clean(recording.read_text(encoding="utf-8"), "a recording of an echoed key")


def test_saved_notebook_never_holds_the_key(canary_fake, tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext dashmagic"),
        nbformat.v4.new_code_cell("%%dashscope --plugins calculator --seed 42 --out t\n12345*98765是多少"),
        nbformat.v4.new_code_cell("t"),
        nbformat.v4.new_code_cell("%%dashscope --dry-run\nhello"),
        nbformat.v4.new_code_cell("%config DashScopeMagics"),
    ]
    NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    saved = tmp_path / "saved.ipynb"
    nbformat.write(nb, saved)
    text = saved.read_text(encoding="utf-8")
    assert "1219253925" in text  # the call really happened in the kernel
    _assert_clean(text, "the saved notebook")


def _echo(text: str) -> dict[str, object]:
    return {"output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": text}}]}}


def test_a_server_that_echoes_the_key_never_gets_it_shown(canary_fake, shell) -> None:
    """An answer, a growing stream, a 401 message: the key is masked before anything sees it."""
    from dashmagic.render import mimebundle
    from dashmagic.scrub import MASK

    canary_fake.queue_reply(_echo(f"your key is {CANARY}, Bearer {CANARY}"))
    snapshots = list(dashmagic.stream("echo"))
    for snapshot in snapshots:  # every snapshot, not only the last: a growing stream spells it out
        _assert_clean(repr(snapshot) + str(snapshot) + json.dumps(mimebundle(snapshot)), "a streamed snapshot")
    assert MASK in snapshots[-1].text
    canary_fake.queue_reply(_echo(f"again {CANARY}"))
    trace = dashmagic.run("echo")
    _assert_clean(repr(trace) + json.dumps(mimebundle(trace)) + json.dumps(trace.history()), "a run() trace")
    canary_fake.queue_reply({"code": "InvalidApiKey", "message": f"Invalid API-key provided: {CANARY}"}, status=401)
    with pytest.raises(dashmagic.AuthenticationError) as info:
        dashmagic.run("echo")
    _assert_clean(_exception_text(info.value), "a 401 that echoes the key")
    # The same through the magic, under %xmode Verbose (frame locals are printed there).
    shell.run_line_magic("xmode", "Verbose")
    try:
        for reply, status in ((_echo(f"k={CANARY}"), 200), ({"code": "InvalidApiKey", "message": CANARY}, 401)):
            canary_fake.queue_reply(reply, status=status)
            with capture_output() as cap:
                result = shell.run_cell("%%dashscope --stream\necho")
            shown = cap.stdout + cap.stderr + json.dumps([o.data for o in cap.outputs])
            _assert_clean(shown + _exception_text(result.error_in_exec), "the magic's output")
    finally:
        shell.run_line_magic("xmode", "Context")


def test_a_key_spelled_out_across_delta_events_is_masked() -> None:
    """With incremental_output the key may arrive a few characters per event: the folded text
    holds it whole, and a growing tail holds its beginning — both are masked."""
    from _wire import Reply, result_event, wire_server

    from dashmagic.render import mimebundle

    pieces = ["The key: "] + [CANARY[i : i + 4] for i in range(0, len(CANARY), 4)] + [" done"]
    events = [result_event(p) for p in pieces] + [result_event("", "stop")]
    with wire_server(Reply(pieces=[(0, e) for e in events])) as server:
        snapshots = list(dashmagic.stream("x", api_key=CANARY, base_url=server.base_url,
                                          parameters={"incremental_output": True}))
    for snapshot in snapshots:
        _assert_clean(str(snapshot) + json.dumps(mimebundle(snapshot)) + json.dumps(snapshot.history()), "a delta snapshot")
    assert snapshots[-1].text.startswith("The key: sk-…") and snapshots[-1].text.endswith(" done")


def test_a_gateway_page_that_echoes_the_key_is_scrubbed() -> None:
    from _wire import Reply, wire_server

    page = f"<html><title>502 for Bearer {CANARY}</title></html>".encode()
    reply = Reply(status=502, headers=(("Content-Type", "text/html"),), pieces=[(0, page)], length=True)
    with wire_server(reply) as server:
        with pytest.raises(dashmagic.ServerError) as info:
            dashmagic.run("x", api_key=CANARY, base_url=server.base_url, retries=1)
    _assert_clean(_exception_text(info.value), "a 502 page")


def test_saved_notebook_and_html_export_never_hold_an_echoed_key(canary_fake, tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    for _ in range(2):
        canary_fake.queue_reply(_echo(f"Your key is {CANARY}."))
    canary_fake.queue_reply({"code": "InvalidApiKey", "message": f"bad key {CANARY}"}, status=401)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext dashmagic"),
        nbformat.v4.new_code_cell("%%dashscope --stream --out t\necho"),
        nbformat.v4.new_code_cell("%%dashscope --no-stream\necho"),
        nbformat.v4.new_code_cell("%%dashscope\necho"),
        nbformat.v4.new_code_cell("t.text"),
    ]
    NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    saved = tmp_path / "saved.ipynb"
    nbformat.write(nb, saved)
    text = saved.read_text(encoding="utf-8")
    assert "Your key is sk-" in text  # the echo really arrived, masked
    _assert_clean(text, "the saved notebook")
    html, _ = HTMLExporter().from_notebook_node(nb)
    _assert_clean(html, "the notebook's HTML export")


@pytest.mark.parametrize(
    ("key", "line"),
    [
        (CANARY + "\u200b", ""),                        # a zero-width space from a copy-paste
        (CANARY + "\n# old key sk-older-0123456789", ""),  # a two-line key
        (CANARY, "--plugins 酒店推荐插件"),              # the hotel plugin's display name
        (CANARY, "--timeout nan"),
        (CANARY, "--timeout inf"),
    ],
)
def test_verbose_tracebacks_never_show_odd_keys_or_plugin_names(canary_fake, shell, monkeypatch, key: str, line: str) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", key)
    shell.run_line_magic("xmode", "Verbose")
    try:
        with capture_output() as cap:
            result = shell.run_cell(f"%%dashscope --no-stream {line}\nhi")
    finally:
        shell.run_line_magic("xmode", "Context")
    shown = cap.stdout + cap.stderr + json.dumps([o.data for o in cap.outputs])
    assert "Traceback" not in shown
    _assert_clean(shown + _exception_text(result.error_in_exec), f"%xmode Verbose with {line or 'an odd key'}")
