"""dashmagic.map over the loopback fake: real threads, real sockets, every failure kept per row."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

import dashmagic
from dashmagic.batch_map import RowLog, parse_json_answer, to_frame
from dashmagic.errors import ConfigError, ServerError
from dashmagic.trace_json import from_json, to_json

pd = pytest.importorskip("pandas")


def options(fake: Any, **extra: Any) -> dict[str, Any]:
    return {"api_key": "sk-test", "base_url": fake.base_url, "progress": False, "rpm": 60_000, **extra}


def reply(content: str) -> dict[str, Any]:
    return {"output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": content}}]},
            "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}}


# -- ordering and inputs ----------------------------------------------------------------------


def test_results_come_back_in_input_order(fake_dashscope) -> None:
    fake_dashscope.pace(latency=0.01)
    prompts = [f"question {i}" for i in range(40)]
    traces = dashmagic.map(prompts, concurrency=8, **options(fake_dashscope))
    assert isinstance(traces, list) and len(traces) == 40
    assert [t.status for t in traces] == ["complete"] * 40
    assert [t.answer for t in traces] == [f"(fake DashScope) no scripted answer for: question {i}" for i in range(40)]
    assert traces.sent == 40 and len(fake_dashscope.generation_requests) == 40


def test_a_series_and_a_generator_and_message_lists(fake_dashscope) -> None:
    series = pd.Series(["a", "b"], index=["x", "y"])
    traces = dashmagic.map(series, **options(fake_dashscope))
    assert traces.labels == ["x", "y"] and [t.request.prompt for t in traces] == ["a", "b"]
    traces = dashmagic.map((p for p in ["c", [{"role": "user", "content": "d"}]]), **options(fake_dashscope))
    assert [t.ok for t in traces] == [True, True]


def test_template_over_dataframe_rows_is_brace_safe(fake_dashscope) -> None:
    df = pd.DataFrame({"review": ["good", "bad"]}, index=[10, 20])
    traces = dashmagic.map(template='Classify {"x": 1} {{ row.review }} #{{ index }}', rows=df, **options(fake_dashscope))
    assert [t.request.prompt for t in traces] == ['Classify {"x": 1} good #10', 'Classify {"x": 1} bad #20']
    frame = to_frame(traces)
    df["label"] = frame["answer"]
    assert df.loc[20, "label"].endswith("bad #20")


def test_template_over_a_list_of_dicts(fake_dashscope) -> None:
    traces = dashmagic.map(template="{{ row.name }}/{{ row['n'] }}", rows=[{"name": "a", "n": 1}], **options(fake_dashscope))
    assert traces[0].request.prompt == "a/1"


@pytest.mark.parametrize("kwargs, message", [
    ({"prompts": "one prompt"}, "needs a list of prompts"),
    ({"template": "x {{ row.a }}"}, "needs rows="),
    ({"prompts": ["a"], "rows": [{}]}, "rows= needs template="),
    ({"prompts": ["a"], "concurrency": 0}, "concurrency must be"),
])
def test_bad_batch_arguments_are_one_line(fake_dashscope, kwargs: dict[str, Any], message: str) -> None:
    prompts = kwargs.pop("prompts", None)
    with pytest.raises(ConfigError, match=message):
        dashmagic.map(prompts, **options(fake_dashscope), **kwargs)
    assert fake_dashscope.generation_requests == []


# -- failures, one per row ---------------------------------------------------------------------


def test_every_failure_kind_stays_on_its_row(fake_dashscope) -> None:
    # concurrency 1: the fake's faults are consumed in order, so each lands on a known row.
    for fault in ("server_error", "access_denied", "reset_before_response", "garbage_json", "reset_mid_stream"):
        fake_dashscope.inject(fault)
    prompts = ["r0", "r1", "r2", "r3", "r4", "", "r6"]
    traces = dashmagic.map(prompts, concurrency=1, retries=1, **options(fake_dashscope))
    kinds = [(t.status, t.error.type if t.error else None) for t in traces]
    assert kinds == [
        ("error", "ServerError"), ("error", "PermissionDeniedError"), ("error", "TransportError"),
        ("error", "ProtocolError"), ("error", "TransportError"), ("error", "ConfigError"), ("complete", None),
    ]
    assert traces[0].error is not None and traces[0].error.status_code == 500
    assert "empty" in traces[5].error.message  # the bad prompt never went out
    assert len(fake_dashscope.generation_requests) == 6


def test_a_bad_template_value_fails_only_its_row(fake_dashscope) -> None:
    traces = dashmagic.map(template="{{ row.missing }}", rows=[{"a": 1}], **options(fake_dashscope))
    assert traces[0].status == "error" and "missing" in traces[0].error.message


def test_raise_errors_raises_the_first_error_after_every_row_finished(fake_dashscope) -> None:
    fake_dashscope.inject("server_error")
    with pytest.raises(ServerError) as info:
        dashmagic.map(["a", "b", "c"], concurrency=1, retries=1, raise_errors=True, **options(fake_dashscope))
    traces = info.value.traces  # type: ignore[attr-defined]
    assert [t.status for t in traces] == ["error", "complete", "complete"]
    assert info.value.trace is traces[0]


def test_a_429_storm_is_paced_not_retried_in_a_storm(fake_dashscope) -> None:
    # The service allows 20/s; the client believes 100/s: AIMD and Retry-After find the limit.
    fake_dashscope.pace(rate=20, burst=4)
    traces = dashmagic.map([f"p{i}" for i in range(40)], concurrency=8, backoff=0.01,
                           **{**options(fake_dashscope), "rpm": 6000})
    assert all(t.ok for t in traces)
    sent = len(fake_dashscope.generation_requests)
    assert fake_dashscope.throttled == sent - 40
    assert sent <= 40 * 2  # far from 8 threads x 3 tries hammering the limit


def test_injected_throttles_cost_one_request_each(fake_dashscope) -> None:
    fake_dashscope.inject("throttle", times=5)
    traces = dashmagic.map([f"p{i}" for i in range(10)], concurrency=4, backoff=0.001, **options(fake_dashscope))
    assert all(t.ok for t in traces)
    assert len(fake_dashscope.generation_requests) == 15


# -- Ctrl-C --------------------------------------------------------------------------------


def test_ctrl_c_keeps_finished_rows_and_marks_the_rest_interrupted(fake_dashscope, tmp_path: Path) -> None:
    fake_dashscope.pace(latency=0.2)
    record = tmp_path / "rows.jsonl"

    def interrupt(state: Any) -> None:
        if state.done >= 2 and not state.finished:
            raise KeyboardInterrupt

    traces = dashmagic.map([f"p{i}" for i in range(30)], concurrency=2, record=record,
                           **{**options(fake_dashscope), "progress": interrupt})
    assert len(traces) == 30
    statuses = [t.status for t in traces]
    assert set(statuses) <= {"complete", "interrupted"}
    done = [i for i, s in enumerate(statuses) if s == "complete"]
    assert len(done) >= 2
    assert all(traces[i].error is not None for i, s in enumerate(statuses) if s == "interrupted")
    assert "Stopped" in traces[-1].error.message
    kept = RowLog(record).answers
    assert len(kept) >= len(done)  # every finished row was saved as it finished
    assert len(fake_dashscope.generation_requests) < 30


# -- resume and replay -------------------------------------------------------------------------


def test_resume_after_a_torn_record_sends_only_the_missing_rows(fake_dashscope, tmp_path: Path) -> None:
    record = tmp_path / "rows.jsonl"
    first = dashmagic.map([f"p{i}" for i in range(5)], record=record, **options(fake_dashscope))
    lines = record.read_bytes().splitlines(keepends=True)
    assert len(lines) == 5 and all(json.loads(line)["dashmagic_rows"] == 1 for line in lines)
    with record.open("ab") as fh:
        fh.write(lines[0][: len(lines[0]) // 2])  # a crash in the middle of an append
    fake_dashscope.clear()
    fake_dashscope.inject("server_error")
    again = dashmagic.map([f"p{i}" for i in range(7)], record=record, retries=1, concurrency=1, **options(fake_dashscope))
    assert [t.answer for t in again[:5]] == [t.answer for t in first]
    assert again.sent == 2 and len(fake_dashscope.generation_requests) == 2
    assert [t.status for t in again[5:]] == ["error", "complete"]
    fake_dashscope.clear()
    third = dashmagic.map([f"p{i}" for i in range(7)], record=record, **options(fake_dashscope))
    assert third.sent == 1 and all(t.ok for t in third)  # the failed row is asked again, once
    assert all(line.endswith(b"\n") for line in record.read_bytes().splitlines(keepends=True))


def test_a_damaged_middle_line_is_one_line_naming_it(tmp_path: Path) -> None:
    record = tmp_path / "rows.jsonl"
    record.write_text('{"nope": 1}\n{"also": 2}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="line 1 is damaged"):
        RowLog(record)


def test_replay_answers_the_whole_batch_offline(fake_dashscope, tmp_path: Path) -> None:
    record = tmp_path / "rows.jsonl"
    df = pd.DataFrame({"q": [f"q{i}" for i in range(25)]})
    live = dashmagic.map(template="Q: {{ row.q }}", rows=df, record=record, **options(fake_dashscope))
    fake_dashscope.stop()  # nothing is listening any more
    offline = dashmagic.map(template="Q: {{ row.q }}", rows=df, record=record, mode="replay", progress=False,
                            base_url="http://127.0.0.1:9/api/v1")
    assert [t.answer for t in offline] == [t.answer for t in live] and offline.sent == 0
    missing = dashmagic.map(["never asked"], record=record, mode="replay", progress=False)
    assert missing[0].status == "error" and missing[0].error.type == "RecordingMiss"


def test_replay_without_the_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        dashmagic.map(["a"], record=tmp_path / "none.jsonl", mode="replay", progress=False)


def test_the_record_never_holds_the_key(fake_dashscope, tmp_path: Path) -> None:
    record = tmp_path / "rows.jsonl"
    dashmagic.map(["say sk-test please"], record=record, **options(fake_dashscope))
    assert b"sk-test" not in record.read_bytes()


# -- traces as JSON, and the DataFrame ---------------------------------------------------------


@pytest.mark.parametrize("prompt, plugins", [("12345*98765是多少", ["calculator"]), ("画一个y=x^2的函数图", ["code_interpreter"])])
def test_trace_json_round_trips_seed_traces(fake_dashscope, prompt: str, plugins: list[str]) -> None:
    trace = dashmagic.run(prompt, plugins=plugins, seed=42, api_key="sk-test", base_url=fake_dashscope.base_url)
    data = json.loads(json.dumps(to_json(trace)))
    back = from_json(data)
    assert to_json(back) == to_json(trace)
    assert back.steps == trace.steps and back.images == trace.images
    assert back._repr_mimebundle_() == trace._repr_mimebundle_()


@pytest.mark.parametrize("bad", [[], {"v": 2}, {"v": 1, "status": "weird"}, {"v": 1, "steps": [{"kind": "nope"}]},
                                 {"v": 1, "usage": {"input_tokens": "3"}}, {"v": 1, "images": [{"data_b64": "!!"}]}])
def test_a_malformed_stored_trace_is_one_value_error(bad: Any) -> None:
    with pytest.raises(ValueError):
        from_json(bad)


def test_json_answers_are_parsed_fenced_or_bare() -> None:
    assert parse_json_answer('Here:\n```json\n{"label": "pos"}\n```') == {"label": "pos"}
    assert parse_json_answer('{"label": "neg"}') == {"label": "neg"}
    assert parse_json_answer('The answer is {"a": 1} done') == {"a": 1}
    assert parse_json_answer("no json here") is None
    assert parse_json_answer("{" * 100_000) is None  # hostile: one attempt each, linear


def test_to_frame_has_a_column_per_json_field(fake_dashscope) -> None:
    for content in ('```json\n{"label": "pos", "score": 1}\n```', '{"label": "neg"}'):
        fake_dashscope.queue_reply(reply(content))
    traces = dashmagic.map(["Reply as JSON: a", "Reply as JSON: b"], concurrency=1, **options(fake_dashscope))
    frame = to_frame(traces)
    assert list(frame["label"]) == ["pos", "neg"] and list(frame["status"]) == ["complete", "complete"]
    assert list(frame["input_tokens"]) == [3, 3] and frame["request_id"].notna().all()
    assert "json" not in to_frame(traces, json=False).columns


def test_to_frame_without_pandas_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ConfigError, match="needs pandas"):
        to_frame([])


# -- the magic ---------------------------------------------------------------------------------


def test_magic_over_a_dataframe_fills_a_column_and_shows_a_summary(fake_env, shell, tmp_path: Path) -> None:
    from IPython.utils.capture import capture_output

    shell.user_ns["dm_df"] = pd.DataFrame({"review": ["good", "bad", "<b>odd</b>"]})
    record = tmp_path / "rows.jsonl"
    with capture_output() as cap:
        result = shell.run_cell(f"%%dashscope --over dm_df --into label --out dm_ts --record {record}\n"
                                "Classify: {{ row.review }}")
    assert result.error_in_exec is None
    df = shell.user_ns["dm_df"]
    assert df["label"].str.contains("Classify: bad").sum() == 1
    assert len(shell.user_ns["dm_ts"]) == 3
    summary = cap.outputs[-1].data
    assert "3 rows: 3 complete" in summary["text/plain"]
    assert "<b>odd" not in summary["text/html"] and "&lt;b&gt;odd" in summary["text/html"]
    fake_env.clear()
    with capture_output():
        result = shell.run_cell(f"%%dashscope --over dm_df --into again --replay {record}\nClassify: {{{{ row.review }}}}")
    assert result.error_in_exec is None and fake_env.generation_requests == []
    assert list(shell.user_ns["dm_df"]["again"]) == list(df["label"])


def test_magic_into_a_json_field(fake_env, shell) -> None:
    from IPython.utils.capture import capture_output

    for label in ("pos", "neg"):
        fake_env.queue_reply(reply(f'{{"label": "{label}"}}'))
    shell.user_ns["dm_rows"] = [{"t": "a"}, {"t": "b"}]
    with capture_output():
        result = shell.run_cell("%%dashscope --over dm_rows --into label=label --concurrency 1\nJSON please: {{ row.t }}")
    assert result.error_in_exec is None
    assert [r["label"] for r in shell.user_ns["dm_rows"]] == ["pos", "neg"]


@pytest.mark.parametrize("line, message", [
    ("--over dm_nothing", "--over needs the name"),
    ("--into label", "--into works with --over"),
    ("--over dm_rows --chat", "does not take --chat"),
    ("--over dm_rows --into =x", "--into needs a column"),
])
def test_magic_refuses_bad_batch_flags(fake_env, shell, line: str, message: str) -> None:
    from IPython.utils.capture import capture_output

    shell.user_ns["dm_rows"] = [{"t": "a"}]
    with capture_output():
        result = shell.run_cell(f"%%dashscope {line}\nx {{{{ row.t }}}}")
    assert isinstance(result.error_in_exec, ConfigError) and message in str(result.error_in_exec)
    assert fake_env.generation_requests == []
