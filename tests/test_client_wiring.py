"""The Client is the one place a call is wired: sessions, options, threads, figures, pickling."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path
from typing import Any

import pytest

import dashmagic
from dashmagic import Client
from dashmagic.config import Timeouts
from dashmagic.errors import ConfigError, RateLimitError
from dashmagic.render import mimebundle
from dashmagic.transport import open_sessions

from _seed import BY_NAME, user_prompt

PLOT = BY_NAME["code_interpreter_plot"]
CALC = BY_NAME["calculator"]


def _plot_kwargs() -> dict[str, Any]:
    return {"plugins": PLOT.plugins, "seed": 42}


def test_run_and_stream_close_every_session_they_open(tmp_path: Path, fake_dashscope: Any) -> None:
    start = open_sessions()
    live = {"api_key": fake_dashscope.api_key, "base_url": fake_dashscope.base_url}
    for _ in range(3):
        dashmagic.run(user_prompt(CALC), plugins=CALC.plugins, mode="record", recordings=tmp_path / "r.jsonl", **live)
    assert open_sessions() == start
    for _ in range(3):
        trace = dashmagic.run(user_prompt(CALC), plugins=CALC.plugins, mode="replay", recordings=tmp_path / "r.jsonl")
        assert trace.ok
    list(dashmagic.stream(user_prompt(CALC), plugins=CALC.plugins, **live))
    dashmagic.run(user_prompt(CALC), plugins=CALC.plugins, **live)
    assert open_sessions() == start


def test_a_stream_abandoned_half_way_still_closes_its_session(fake_dashscope: Any) -> None:
    start = open_sessions()
    snapshots = dashmagic.stream(user_prompt(CALC), plugins=CALC.plugins, api_key=fake_dashscope.api_key,
                                 base_url=fake_dashscope.base_url)
    next(snapshots)
    snapshots.close()  # e.g. a consumer that breaks out of its loop
    assert open_sessions() == start


def test_a_client_opens_one_session_and_reuses_it(fake_dashscope: Any) -> None:
    start = open_sessions()
    with Client(api_key=fake_dashscope.api_key, base_url=fake_dashscope.base_url) as client:
        for _ in range(3):
            assert client.run(user_prompt(CALC), plugins=CALC.plugins).ok
        assert open_sessions() == start + 1
    assert open_sessions() == start
    with pytest.raises(ConfigError, match="closed"):
        client.run("again")


def test_threads_share_one_client(fake_dashscope: Any) -> None:
    results: list[Any] = []
    errors: list[BaseException] = []
    with Client(api_key=fake_dashscope.api_key, base_url=fake_dashscope.base_url) as client:

        def work() -> None:
            try:
                results.append(client.run(user_prompt(CALC), plugins=CALC.plugins))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors and len(results) == 8
    assert {t.answer for t in results} == {results[0].answer} and results[0].answer
    assert len(fake_dashscope.generation_requests) == 8  # eight real calls, not one shared reply


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), 1e308, (-1, 5), (5,), "10", True])
def test_bad_timeouts_are_one_line_config_errors(timeout: Any) -> None:
    with pytest.raises(ConfigError) as info:
        Client(timeout=timeout)
    assert "\n" not in str(info.value) and "timeout" in str(info.value)


def test_options_are_validated_once_into_frozen_values() -> None:
    client = Client(timeout=(3, 7), deadline=30, retries=2)
    assert client.timeouts == Timeouts(connect=3.0, read=7.0, total=30.0)
    with pytest.raises(AttributeError):
        client.timeouts.read = 1  # type: ignore[misc]
    with pytest.raises(ConfigError, match="Unknown Client option"):
        Client(timout=3)  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="retries"):
        Client(retries=0)


def test_settings_are_read_once_when_the_client_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHMAGIC_MODE", "replay")
    client = Client()
    monkeypatch.setenv("DASHMAGIC_MODE", "live")
    assert client.mode == "replay" and client.recordings == "demo"


def test_the_api_path_embeds_figures_too() -> None:
    trace = dashmagic.run(user_prompt(PLOT), mode="replay", **_plot_kwargs())
    assert trace.figures and trace.images and trace.images[0].ok
    assert 'src="data:image/png;base64,' in mimebundle(trace)["text/html"]
    bare = dashmagic.run(user_prompt(PLOT), mode="replay", embed_images=False, **_plot_kwargs())
    assert bare.figures and not bare.images
    assert 'src="data:image/png' not in mimebundle(bare)["text/html"]


def test_a_stored_trace_displays_what_the_cell_showed(shell: Any) -> None:
    from IPython.utils.capture import capture_output

    with capture_output() as cap:
        shell.run_cell(f"%%dashscope --replay demo --plugins code_interpreter --seed 42 --out dm_t\n{user_prompt(PLOT)}")
    shown = cap.outputs[-1].data["text/html"]
    again = mimebundle(shell.user_ns["dm_t"])["text/html"]
    assert 'src="data:image/png;base64,' in shown
    assert again == shown


def test_traces_and_errors_carrying_them_pickle(fake_dashscope: Any) -> None:
    trace = dashmagic.run(user_prompt(PLOT), mode="replay", **_plot_kwargs())
    back = pickle.loads(pickle.dumps(trace))
    assert back == trace and mimebundle(back) == mimebundle(trace)
    fake_dashscope.inject("throttle", times=5)
    with pytest.raises(RateLimitError) as info:
        dashmagic.run("x", api_key=fake_dashscope.api_key, base_url=fake_dashscope.base_url, retries=1)
    error = pickle.loads(pickle.dumps(info.value.trace))
    assert error.status == "error" and error.error is not None and error.error.type == "RateLimitError"


def test_a_key_given_as_a_string_is_validated_like_one_from_the_environment() -> None:
    with pytest.raises(ConfigError) as info:
        Client(api_key="sk-abc\u200bdef0123456789")
    assert "api_key=" in str(info.value) and "abc" not in str(info.value)


def test_each_trace_gets_its_own_figure_budget() -> None:
    with Client(mode="replay") as client:
        first = client.run(user_prompt(PLOT), **_plot_kwargs())
        second = client.run(user_prompt(PLOT), **_plot_kwargs())
        call = client.build(user_prompt(PLOT), **_plot_kwargs())
        one, two = client.image_cache(call, client.key()), client.image_cache(call, client.key())
    assert first.images and second.images and first.images[0].ok and second.images[0].ok
    assert one is not two and one.session is two.session  # a budget per trace, one figure session


def test_a_recording_that_cannot_be_written_keeps_the_answer_and_says_so(
    tmp_path: Path, fake_dashscope: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dashmagic.transport.record as record

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(record, "append_line", disk_full)
    trace = dashmagic.run(user_prompt(CALC), plugins=CALC.plugins, mode="record", recordings=tmp_path / "r.jsonl",
                          api_key=fake_dashscope.api_key, base_url=fake_dashscope.base_url)
    assert trace.ok and trace.answer  # the billable answer arrived and is kept
    assert any("The recording failed" in note and "No space left on device" in note for note in trace.notes)
    assert "The recording failed" in mimebundle(trace)["text/plain"]


def test_the_fakes_command_line_refuses_bad_values_in_one_line() -> None:
    import subprocess
    import sys

    for argv in (["--port", "99999"], ["--chunk-chars", "0"], ["--event-delay", "nan"], ["--port", "x"]):
        done = subprocess.run([sys.executable, "-m", "dashmagic.testing", *argv], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        errors = [line for line in done.stderr.splitlines() if "error:" in line]
        assert len(errors) == 1 and errors[0].startswith("python -m dashmagic.testing: error: argument")
