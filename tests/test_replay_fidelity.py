"""Record against the loopback fake, stop it, replay: the rendered output is the same."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from IPython.utils.capture import capture_output

from dashmagic.testing import FakeDashScope

from _seed import BY_NAME, NAMES, files, user_prompt

_ELAPSED = re.compile(r"\d+(\.\d+)? (ms|s)\b")


class Kernelish:
    _allow_stdin = False


def _normal(data: dict) -> dict:
    """Wall time is the only thing allowed to differ between a live run and its replay."""
    return {mime: _ELAPSED.sub("<time>", text) for mime, text in data.items()}


def _cell(shell, line: str, body: str) -> list:
    with capture_output() as cap:
        result = shell.run_cell(f"%%dashscope {line}\n{body}")
    assert result.error_in_exec is None, cap.stdout
    return cap.outputs


def _line(name: str, mode: str) -> str:
    exchange = BY_NAME[name]
    flags = f"--plugins {','.join(exchange.plugins)} --seed 42 " + " ".join(f"--file {f}" for f in files(exchange))
    return f"{flags} {mode}"


@pytest.mark.parametrize("stream", ["--stream", "--no-stream"])
def test_record_then_replay_with_the_fake_stopped(shell, monkeypatch, tmp_path: Path, stream: str) -> None:
    shell.kernel = Kernelish()  # live updates on, as in Jupyter
    recording = tmp_path / "session.jsonl"
    recorded: dict[str, list] = {}
    recorded_traces: dict[str, object] = {}
    try:
        with FakeDashScope(api_key="sk-test") as fake:
            monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", fake.base_url)
            port = fake.port
            monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-test")
            for name in NAMES:
                recorded[name] = _cell(shell, _line(name, f"{stream} --record {recording} --out dm_rec"),
                                       user_prompt(BY_NAME[name]))
                recorded_traces[name] = shell.user_ns["dm_rec"]
        with socket.socket() as probe:  # the fake is really gone
            assert probe.connect_ex(("127.0.0.1", port)) != 0
        monkeypatch.delenv("DASHSCOPE_API_KEY")
        for name in NAMES:
            replayed = _cell(shell, _line(name, f"{stream} --replay {recording} --out dm_rep"), user_prompt(BY_NAME[name]))
            assert _normal(replayed[-1].data) == _normal(recorded[name][-1].data), name
            assert replayed[-1].metadata == recorded[name][-1].metadata
            # Same event boundaries. (How many live updates were sent depends on wall-clock
            # timing through the throttle, so it is not compared.)
            before, after = recorded_traces[name], shell.user_ns["dm_rep"]
            assert (after.events, after.steps, after.usage) == (before.events, before.steps, before.usage)
    finally:
        del shell.kernel
    plot = _normal(recorded["code_interpreter_plot"][-1].data)["text/html"]
    assert plot.count('<img src="data:image/png;base64,') == 1  # the figure survived, offline
    text = recording.read_text(encoding="utf-8")
    assert "sk-test" not in text and "Authorization" not in text


@pytest.mark.parametrize("name", NAMES)
def test_bundled_demo_replays_every_seed_exchange(shell, monkeypatch, name: str) -> None:
    monkeypatch.setenv("DASHMAGIC_MODE", "replay")  # no file given: the bundled demo
    outputs = _cell(shell, _line(name, "--no-stream"), user_prompt(BY_NAME[name]))
    html = outputs[-1].data["text/html"]
    assert BY_NAME[name].response["request_id"] in html
    if name == "code_interpreter_plot":
        assert html.count('<img src="data:image/png;base64,') == 1
    if name == "text_to_image":
        assert "<img" not in html.split("</style>", 1)[1] and "403" in html
    outputs = _cell(shell, _line(name, "--stream --replay demo"), user_prompt(BY_NAME[name]))
    assert BY_NAME[name].response["request_id"] in outputs[-1].data["text/plain"]


def test_replay_miss_is_a_clear_one_line_error(shell, monkeypatch) -> None:
    monkeypatch.setenv("DASHMAGIC_MODE", "replay")
    with capture_output() as cap:
        result = shell.run_cell("%%dashscope --plugins calculator\nsomething never recorded")
    error = result.error_in_exec
    assert type(error).__name__ == "RecordingMiss"
    message = str(error)
    assert "seed.jsonl" in message and "calculator" in message and "something never recorded" in message
    assert "--record" in message and "Traceback" not in cap.stdout
