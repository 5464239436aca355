"""%dashscope_code and %%dashscope --run-locally in a real shell, against the loopback fake."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from dashmagic.errors import RecordingMiss
from dashmagic.trace import LocalRun, Trace

from _code_reply import code_reply

ASK = "--plugins code_interpreter --no-stream"


def magics(shell):  # type: ignore[no-untyped-def]
    return shell.magics_manager.registry["DashScopeMagics"]


def ask(shell, fake, code: str, line: str = ASK):  # type: ignore[no-untyped-def]
    fake.queue_reply(code_reply(code))
    with capture_output() as cap:
        result = shell.run_cell(f"%%dashscope {line}\nplease compute")
    return cap, result.error_in_exec


@pytest.fixture
def next_inputs(shell, monkeypatch):  # type: ignore[no-untyped-def]
    calls: list[tuple[str, bool]] = []
    monkeypatch.setattr(shell, "set_next_input", lambda text, replace=False: calls.append((text, replace)))
    return calls


def test_code_goes_into_the_next_cell_and_never_runs(shell, fake_env, next_inputs, tmp_path) -> None:
    marker = tmp_path / "ran.txt"
    code = f"open({str(marker)!r}, 'w').write('x')\n6 * 7"
    ask(shell, fake_env, code)
    shell.run_line_magic("dashscope_code", "")
    assert next_inputs == [(code + "\n", False)]
    assert not marker.exists()


def test_nth_block_and_from_a_stored_trace(shell, fake_env, next_inputs) -> None:
    ask(shell, fake_env, "a = 1", line=ASK + " --out dm_first")
    ask(shell, fake_env, "b = 2")
    shell.run_line_magic("dashscope_code", "--from dm_first")
    shell.run_line_magic("dashscope_code", "1")
    assert [text for text, _ in next_inputs] == ["a = 1\n", "b = 2\n"]
    with pytest.raises(UsageError, match="1 code block; give 1 to 1"):
        shell.run_line_magic("dashscope_code", "3")
    with pytest.raises(UsageError, match="no such variable"):
        shell.run_line_magic("dashscope_code", "--from dm_missing")


def test_all_blocks_are_joined_in_order(shell, next_inputs) -> None:
    from dashmagic.trace import CodeExecution, RequestInfo

    shell.user_ns["dm_t"] = Trace(RequestInfo("m"), steps=(CodeExecution("x = 1\n"), CodeExecution("print(x)")))
    shell.run_line_magic("dashscope_code", "--from dm_t")
    assert next_inputs == [("x = 1\n\nprint(x)\n", False)]


def test_no_trace_and_no_code_are_one_line_messages(shell, fake_env, next_inputs, capsys) -> None:
    magics(shell).last_trace = None
    shell.run_line_magic("dashscope_code", "")
    fake_env.queue_reply({"output": {"choices": [{"finish_reason": "stop", "messages": [
        {"role": "assistant", "content": "Final Answer: 4"}]}]}})
    with capture_output():
        shell.run_cell("%%dashscope --no-stream\nwhat is 2+2")
    shell.run_line_magic("dashscope_code", "")
    lines = capsys.readouterr().out.strip().split("\n")
    assert next_inputs == [] and len(lines) == 2
    assert "no trace yet" in lines[0] and "holds no code" in lines[1]


def test_invisible_characters_are_named_in_one_warning_and_kept(shell, fake_env, next_inputs) -> None:
    code = 'access = "user\u202e \u2066# admin\u2069\u2066"\nprint(access)'
    ask(shell, fake_env, code)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shell.run_line_magic("dashscope_code", "")
    assert next_inputs == [(code + "\n", False)]  # exact: the warning is the visibility
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "\n" not in message and "U+202E RIGHT-TO-LEFT OVERRIDE" in message and "U+2066" in message
    assert "line 1 col 15" in message and not any(c in message for c in "\u202e\u2066\u2069")


def test_run_locally_flag_adds_a_labelled_local_step(shell, fake_env, tmp_path) -> None:
    cap, error = ask(shell, fake_env, "print('hello from here')\n6 * 7", line=ASK + " --run-locally --out dm_t")
    assert error is None
    trace = shell.user_ns["dm_t"]
    run = trace.local_runs[-1]
    assert run.ok and run.stdout == "hello from here\n" and run.value == "42"
    html = cap.outputs[-1].data["text/html"]
    assert "Ran here, not on DashScope" in html and "execute_result" in html  # beside the service's result
    assert "[local run] Ran here, not on DashScope" in cap.outputs[-1].data["text/plain"]


def test_nothing_runs_without_the_flag(shell, fake_env, tmp_path) -> None:
    marker = tmp_path / "ran.txt"
    ask(shell, fake_env, f"open({str(marker)!r}, 'w').write('x')", line=ASK + " --out dm_t")
    assert shell.user_ns["dm_t"].local_runs == () and not marker.exists()


def test_invisible_code_is_refused_unless_allowed(shell, fake_env, tmp_path) -> None:
    marker = tmp_path / "ran.txt"
    code = f"open({str(marker)!r}, 'w').write('x')  # \u202e"
    ask(shell, fake_env, code, line=ASK + " --run-locally --out dm_t")
    run = shell.user_ns["dm_t"].local_runs[-1]
    assert run.status == "refused" and "U+202E" in run.reason and not marker.exists()
    ask(shell, fake_env, code, line=ASK + " --run-locally --allow-invisible --out dm_t")
    run = shell.user_ns["dm_t"].local_runs[-1]
    assert run.ok and marker.exists() and "U+202E" in run.reason


def test_allow_invisible_alone_is_refused(shell, fake_env) -> None:
    _, error = ask(shell, fake_env, "1", line=ASK + " --allow-invisible")
    assert error is not None and "--run-locally" in str(error)


def test_a_local_run_is_recorded_then_replayed_without_running(shell, fake_env, tmp_path) -> None:
    recording = tmp_path / "rec.jsonl"
    marker = tmp_path / "count.txt"
    code = f"import pathlib\np = pathlib.Path({str(marker)!r})\np.write_text(p.read_text() + 'x' if p.exists() else 'x')\nprint('ran')"
    _, error = ask(shell, fake_env, code, line=ASK + f" --run-locally --record {recording} --out dm_rec")
    assert error is None and marker.read_text() == "x"
    lines = [json.loads(line) for line in recording.read_text().splitlines()]
    assert [line.get("type") for line in lines[1:]] == ["exchange", "local_run"]
    assert fake_env.api_key not in recording.read_text()

    with capture_output():
        result = shell.run_cell(f"%%dashscope {ASK} --run-locally --replay {recording} --out dm_rep\nplease compute")
    assert result.error_in_exec is None
    replayed = shell.user_ns["dm_rep"].local_runs[-1]
    assert replayed.replayed and replayed.stdout == "ran\n" and marker.read_text() == "x"  # nothing ran
    assert replayed.code_sha256 == shell.user_ns["dm_rec"].local_runs[-1].code_sha256


def test_replay_never_runs_code_it_has_no_recording_for(tmp_path) -> None:
    from dashmagic.trace import CodeExecution, RequestInfo

    recording = tmp_path / "rec.jsonl"
    recording.write_text('{"dashmagic_recording": 2}\n')
    marker = tmp_path / "ran.txt"
    trace = Trace(RequestInfo("m"), steps=(CodeExecution(f"open({str(marker)!r}, 'w')"),))
    with pytest.raises(RecordingMiss, match="replay never runs code"):
        trace.run_locally(mode="replay", recordings=str(recording))
    assert not marker.exists()


def test_the_local_step_renders_without_ipython(tmp_path) -> None:
    from dashmagic.trace import CodeExecution, RequestInfo

    trace = Trace(RequestInfo("m"), steps=(CodeExecution("print('<b>x</b>')"),), status="complete")
    done = trace.run_locally(mode="live")
    assert isinstance(done.steps[-1], LocalRun)
    html = done._repr_mimebundle_()["text/html"]
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html



def test_the_key_never_reaches_the_child_and_is_masked_in_its_output(shell, fake_env, tmp_path) -> None:
    code = "import os\nprint(os.environ.get('DASHSCOPE_API_KEY'))"
    _, error = ask(shell, fake_env, code, line=ASK + " --run-locally --out dm_t")
    assert error is None and shell.user_ns["dm_t"].local_runs[-1].stdout == "None\n"

    from dashmagic.config import Secret
    from dashmagic.local_run import local_run_for
    from dashmagic.scrub import KeyScrubber

    canary = "sk-canary-0123456789abcdef"
    leak = tmp_path / "key.txt"  # code can still read a key file: what it prints is masked
    leak.write_text(canary)
    recording = tmp_path / "rec.jsonl"
    run = local_run_for([f"print(open({str(leak)!r}).read())"], mode="record", recordings=str(recording),
                        scrub=KeyScrubber(Secret(canary)).text, secrets=[canary])
    assert canary not in run.stdout and "hidden" in run.stdout
    assert canary not in recording.read_text()
