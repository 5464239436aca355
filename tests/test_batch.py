"""dashmagic.batch against the loopback fake: the whole Batch API life cycle, offline, real sockets."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dashmagic
from dashmagic import batch
from dashmagic.batch import BatchInfo, BatchJob, BatchProgress, build_lines, compatible_base
from dashmagic.client import Client
from dashmagic.errors import (
    AuthenticationError,
    ConfigError,
    DashmagicError,
    Interrupted,
    ProtocolError,
    RecordingMiss,
    TimeoutError,
)
from dashmagic.testing import FakeDashScope
from dashmagic.testing.batch import FAIL_MARK, TEST_ANSWER, FakeBatches, batches_of
from dashmagic.transport import open_sessions

KEY = "sk-canary-batch-7f3a9c1e55d24b08"
PROMPTS = ["first", f"second {FAIL_MARK}", "third", "fourth"]


@pytest.fixture
def fake() -> Iterator[FakeDashScope]:
    with FakeDashScope(api_key=KEY) as server:
        yield server


@pytest.fixture
def state(fake: FakeDashScope) -> FakeBatches:
    return batches_of(fake).configure(validate_delay=1, row_delay=1, finalize_delay=1, poll_step=0.5)


def opts(fake: FakeDashScope, **more: Any) -> dict[str, Any]:
    return {"api_key": KEY, "base_url": fake.base_url, "retries": 2, "backoff": 0.01, **more}


def one_line_without_key(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text and KEY not in text and KEY[:12] not in text
    assert len(text) < 700
    return text


def test_submit_watch_results_in_input_order_with_a_failed_row(fake: FakeDashScope, state: FakeBatches) -> None:
    sessions = open_sessions()
    with batch.submit(PROMPTS, model="qwen-plus", **opts(fake)) as job:
        assert job.status == "validating" and job.id.startswith("batch_")
        seen: list[tuple[str, int]] = []
        job.wait(poll=0.01, on_update=lambda j: seen.append((j.status, j.request_counts.done)))
        assert job.status == "completed" and job.request_counts.total == 4
        statuses = [s for s, _ in seen]
        assert statuses[0] == "validating" and statuses[-1] == "completed"
        assert "in_progress" in statuses and "finalizing" in statuses
        assert [d for _, d in seen] == sorted(d for _, d in seen)  # the counts only grow
        traces = job.results()
    assert open_sessions() == sessions  # the job closed the client it made
    assert [t.status for t in traces] == ["complete", "error", "complete", "complete"]
    assert [t.answer for t in traces] == ["Answer to: first", None, "Answer to: third", "Answer to: fourth"]
    assert [t.request.prompt for t in traces] == PROMPTS
    ok = traces[0]
    assert ok.request_id and ok.usage.total_tokens and ok.model == "qwen-plus" and ok.finish_reason == "stop"
    failed = traces[1]
    assert failed.error is not None and failed.error.code == "DataInspectionFailed"
    assert failed.error.status_code == 400 and failed.error.request_id == failed.request_id


def test_the_input_file_is_openai_chat_lines_built_from_validated_options(fake: FakeDashScope, state: FakeBatches) -> None:
    with batch.submit(["a", "b"], model="qwen-max", system="Be brief.", seed=7,
                      parameters={"temperature": 0.2, "enable_thinking": False}, **opts(fake)):
        pass
    upload, create = fake.requests[0], fake.requests[1]
    assert upload.path == "/compatible-mode/v1/files" and "multipart/form-data" in (upload.header("Content-Type") or "")
    assert b'name="purpose"\r\n\r\nbatch' in upload.body
    stored = state.files[create.json["input_file_id"]]
    assert stored.data in upload.body and stored.filename.endswith(".jsonl")
    lines = [json.loads(x) for x in stored.data.splitlines()]
    assert [x["custom_id"] for x in lines] == ["0", "1"]
    assert lines[0] == {"custom_id": "0", "method": "POST", "url": "/v1/chat/completions", "body": {
        "model": "qwen-max", "seed": 7, "temperature": 0.2, "enable_thinking": False,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "a"}]}}
    assert create.json == {"input_file_id": create.json["input_file_id"], "endpoint": "/v1/chat/completions",
                           "completion_window": "24h"}
    assert all(r.header("Authorization") == f"Bearer {KEY}" for r in fake.requests)


def test_template_and_rows_fill_one_prompt_per_row_like_map(fake: FakeDashScope, state: FakeBatches) -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"review": ["great {x}", "awful"], "stars": [5, 1]}, index=["r1", "r2"])
    data, infos, labels = build_lines(template="Classify: {{ row.review }} ({{ row['stars'] }})", rows=frame)
    bodies = [json.loads(x)["body"] for x in data.splitlines()]
    assert [b["messages"][-1]["content"] for b in bodies] == ["Classify: great {x} (5)", "Classify: awful (1)"]
    assert [i.prompt for i in infos] == ["Classify: great {x} (5)", "Classify: awful (1)"] and labels == ["r1", "r2"]
    _, from_dicts, numbers = build_lines(template="{{ row.q }}", rows=[{"q": "one"}, {"q": "two"}])
    assert [i.prompt for i in from_dicts] == ["one", "two"] and numbers == [0, 1]
    with batch.submit(template="{{ row.review }}", rows=frame, **opts(fake)) as job:
        result = job.wait(poll=0.01).to_frame()
    assert list(result.index) == ["r1", "r2"]  # frame["label"] = job.to_frame()["answer"] lines up
    assert list(result["answer"]) == ["Answer to: great {x}", "Answer to: awful"]


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"prompts": ["ok", ""]}, "Row 1"),
    ({"prompts": ["ok"], "plugins": ["calculator"]}, "plugins"),
    ({"prompts": ["ok"], "parameters": {"incremental_output": True}}, "incremental_output"),
    ({"prompts": "one string"}, "many prompts"),
    ({"prompts": []}, "no prompts"),
    ({"template": "{{ row.x }}"}, "rows="),
])
def test_bad_input_is_one_line_and_nothing_is_uploaded(fake: FakeDashScope, kwargs: dict[str, Any], words: str) -> None:
    prompts = kwargs.pop("prompts", None)
    with pytest.raises(ConfigError) as caught:
        batch.submit(prompts, **kwargs, **opts(fake))
    assert words in one_line_without_key(caught.value)
    assert fake.requests == []


def test_too_many_prompts_are_refused_before_uploading(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "MAX_LINES", 3)
    with pytest.raises(ConfigError, match="at most 3 prompts"):
        build_lines(["a", "b", "c", "d"])


def test_failed_validation_reports_the_service_errors_on_every_row(fake: FakeDashScope, state: FakeBatches) -> None:
    state.configure(max_lines=2)
    with batch.submit(["a", "b", "c"], **opts(fake)) as job:
        job.wait(poll=0.01)
        assert job.status == "failed"
        assert job.info.errors and "InvalidFile.TooManyLines" in job.info.errors[0]
        traces = job.results()
    assert [t.status for t in traces] == ["error"] * 3
    assert all(t.error is not None and t.error.type == "NotRun" and "failed validation" in t.error.message
               for t in traces)


def test_the_test_model_over_100_lines_fails_validation(fake: FakeDashScope, state: FakeBatches) -> None:
    with batch.submit([f"q{i}" for i in range(101)], model="batch-test-model", **opts(fake)) as job:
        assert job.wait(poll=0.01).status == "failed"
        assert "TestModelLimit" in job.info.errors[0]
    with batch.submit(["q"], model="batch-test-model", **opts(fake)) as job:
        assert [t.answer for t in job.wait(poll=0.01).results()] == [TEST_ANSWER]


def test_expiry_keeps_finished_rows_and_marks_the_rest(fake: FakeDashScope, state: FakeBatches) -> None:
    state.configure(validate_delay=0, row_delay=10, poll_step=0, expire_after=25)
    with batch.submit(PROMPTS, **opts(fake)) as job:
        state.advance(100)
        traces = job.wait(poll=0.01).results()
    assert job.status == "expired"
    assert [t.status for t in traces] == ["complete", "error", "error", "error"]
    assert traces[1].error is not None and traces[1].error.code == "DataInspectionFailed"
    assert traces[2].error is not None and traces[2].error.code == "batch_expired"


def test_cancel_then_results_keep_what_ran(fake: FakeDashScope, state: FakeBatches) -> None:
    state.configure(validate_delay=0, row_delay=10, poll_step=0, cancel_delay=5)
    with batch.submit(PROMPTS, **opts(fake)) as job:
        state.advance(12)
        assert job.cancel().status == "cancelling"
        with pytest.raises(ConfigError, match="still cancelling"):
            job.results()
        state.advance(5)
        traces = job.wait(poll=0.01).results()
        assert job.status == "cancelled"
        sent = len(fake.requests)
        job.cancel().refresh()  # a finished job never changes: nothing is sent
        assert len(fake.requests) == sent
    assert [t.status for t in traces] == ["complete", "error", "error", "error"]
    assert traces[3].error is not None and traces[3].error.type == "NotRun"
    assert "cancelled" in traces[3].error.message


def test_attach_from_a_fresh_client_finds_the_job_and_its_results(fake: FakeDashScope, state: FakeBatches) -> None:
    with batch.submit(PROMPTS, **opts(fake)) as job:
        batch_id = job.id
    with Client(**opts(fake)) as client:  # a "kernel restart": only the id survives
        again = batch.attach(batch_id, client=client)
        assert again.id == batch_id and again.status in batch.ACTIVE
        traces = again.watch(poll=0.01, progress=False).results()
        again.close()  # the caller's client stays open
        assert client.run  # still usable
    assert [t.answer for t in traces] == ["Answer to: first", None, "Answer to: third", "Answer to: fourth"]
    assert traces[0].request.model == "qwen-plus"
    assert dashmagic.batch.attach is batch.attach


def test_attach_to_an_unknown_id_is_a_one_line_api_error(fake: FakeDashScope) -> None:
    with pytest.raises(DashmagicError) as caught:
        batch.attach("batch_does-not-exist", **opts(fake))
    assert "404" in one_line_without_key(caught.value)
    with pytest.raises(ConfigError):
        batch.attach("", **opts(fake))


def test_to_frame_has_maps_columns(fake: FakeDashScope, state: FakeBatches) -> None:
    pytest.importorskip("pandas")
    with batch.submit(PROMPTS, **opts(fake)) as job:
        frame = job.wait(poll=0.01).to_frame()
        assert list(frame.columns) == list(dashmagic.to_frame(job.results()).columns)
    assert list(frame.columns) == ["answer", "status", "input_tokens", "output_tokens", "request_id", "error"]
    assert list(frame["status"]) == ["complete", "error", "complete", "complete"]
    assert frame["answer"][0] == "Answer to: first" and "DataInspectionFailed" in frame["error"][1]


def test_watch_hands_each_state_to_maps_progress_views(fake: FakeDashScope, state: FakeBatches) -> None:
    states: list[Any] = []
    with batch.submit(PROMPTS, **opts(fake)) as job:
        job.watch(poll=0.01, progress=states.append)
    assert states[0].total is None and not states[0].finished  # validating: no rows counted yet
    assert states[-1].finished and (states[-1].total, states[-1].done, states[-1].failed) == (4, 4, 1)
    assert [s.done for s in states] == sorted(s.done for s in states)


def test_watch_in_a_terminal_is_one_rewritten_text_line(
    fake: FakeDashScope, state: FakeBatches, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashmagic import progress

    out = io.StringIO()
    monkeypatch.setattr(progress, "choose_view", lambda *a, **k: progress.TextView(out))
    with batch.submit(PROMPTS, **opts(fake)) as job:
        job.watch(poll=0.01)
    text = out.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1 and "\r" in text
    assert "4/4 · 3 ok · 1 failed" in text.rsplit("\r", 1)[1]


def test_watch_in_a_kernel_updates_one_output_in_place(
    fake: FakeDashScope, state: FakeBatches, shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ipywidgets: one HTML output updated through its display id."""
    import sys

    from IPython.utils.capture import capture_output

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # an import of it now fails, as when not installed

    with batch.submit(PROMPTS, **opts(fake)) as job, capture_output() as captured:
        job.watch(poll=0.01, live=True)
    outputs = captured.outputs
    assert outputs and not outputs[0].update and all(o.update for o in outputs[1:])
    final = outputs[-1].data
    assert "4/4 · 3 ok · 1 failed" in final["text/plain"]
    assert 'value="4" max="4"' in final["text/html"]


def test_watch_drives_an_ipywidgets_bar_when_the_library_is_there(
    fake: FakeDashScope, state: FakeBatches, shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ipywidgets is not installed here: a stand-in module checks the wiring (values, one output)."""
    import sys
    import types

    from IPython.utils.capture import capture_output

    made: list[Any] = []

    class Widget:
        def __init__(self, *children: Any, **traits: Any) -> None:
            self.children = children
            self.__dict__.update(traits)
            made.append(self)

        def _repr_mimebundle_(self, **_: Any) -> dict[str, str]:
            return {"text/plain": "a widget"}

        def close(self) -> None:
            self.closed = True

    stand_in = types.ModuleType("ipywidgets")
    stand_in.IntProgress = stand_in.HTML = stand_in.HBox = Widget  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ipywidgets", stand_in)
    monkeypatch.setattr("dashmagic.progress._live_kernel", lambda: (True, True, True))  # a Jupyter server's kernel
    with batch.submit(PROMPTS, **opts(fake)) as job, capture_output() as captured:
        job.watch(poll=0.01, live=True)
    bar, label, box = made[0], made[1], made[2]
    assert (bar.value, bar.max, bar.bar_style) == (4, 4, "danger")  # one row failed
    assert "3 ok · 1 failed" in label.value
    # Shown once and updated in place, then replaced by a static final line (saved notebooks).
    texts = [o.data["text/plain"] for o in captured.outputs]
    assert texts[0] == "a widget" and len(texts) == 2 and "3 ok · 1 failed" in texts[1] and box.closed


def test_progress_html_escapes_what_the_server_sent() -> None:
    view = BatchProgress("batch_<script>", "in_progress", batch.RequestCounts(3, 1, 1))
    assert "<script>" not in view.html() and "&lt;script&gt;" in view.html()
    assert view._repr_mimebundle_(include=["text/plain"]) == {"text/plain": view.text}


def test_wait_is_bounded_and_ctrl_c_leaves_the_job_running(fake: FakeDashScope, state: FakeBatches) -> None:
    state.configure(poll_step=0, validate_delay=1000)
    with batch.submit(PROMPTS, **opts(fake)) as job:
        with pytest.raises(TimeoutError) as caught:
            job.wait(poll=0.01, timeout=0.05)
        assert "keeps running" in one_line_without_key(caught.value)

        def interrupt(_: BatchJob) -> None:
            raise KeyboardInterrupt

        with pytest.raises(Interrupted) as stopped:
            job.wait(poll=0.01, on_update=interrupt)
        assert job.id in one_line_without_key(stopped.value) and "attach" in str(stopped.value)
        assert stopped.value._render_traceback_() == [f"Interrupted: {stopped.value}"]
        with pytest.raises(ConfigError):
            job.wait(poll=0)


def test_record_then_replay_a_whole_job_offline(fake: FakeDashScope, state: FakeBatches, tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    with batch.submit(PROMPTS, **opts(fake, mode="record", recordings=str(path))) as job:
        live = [(t.status, t.answer) for t in job.wait(poll=0.01).results()]
        polls = sum(1 for r in fake.requests if r.method == "GET" and "/batches/" in r.path)
    assert KEY not in path.read_text(encoding="utf-8")
    recorded = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()[1:]]
    assert {r["type"] for r in recorded} == {"exchange"}
    assert sum(1 for r in recorded if r["request"]["method"] == "GET" and "/batches/" in r["request"]["path"]) == polls
    offline = {"mode": "replay", "recordings": str(path), "base_url": "http://127.0.0.1:9/api/v1"}
    for _ in range(2):  # a notebook run twice in one kernel replays the same job again
        with batch.submit(PROMPTS, **offline) as job:
            states: list[str] = []
            job.wait(poll=3600, on_update=lambda j: states.append(j.status))  # replay never sleeps
            assert states[-1] == "completed" and "in_progress" in states
            assert [(t.status, t.answer) for t in job.results()] == live
    with pytest.raises(RecordingMiss):
        batch.submit(["other prompts"], **offline)


def test_the_key_never_appears_in_results_errors_reprs_or_outputs(fake: FakeDashScope, state: FakeBatches) -> None:
    with batch.submit(PROMPTS, **opts(fake)) as job:
        job.wait(poll=0.01)
        # A hostile (or buggy) service echoes the key in an answer, an error and a request id.
        echoed = [
            {"custom_id": "0", "error": None, "response": {"status_code": 200, "request_id": f"id-{KEY}", "body": {
                "model": "qwen-plus", "choices": [{"message": {"role": "assistant", "content": f"key: {KEY}"}}]}}},
            {"custom_id": "1", "error": {"code": "Leak", "message": f"your key {KEY} is bad"}, "response": None},
        ]
        state.files[job.info.output_file_id or ""].data = b"".join(json.dumps(e).encode() + b"\n" for e in echoed)
        traces = job.results()
        shown = repr(job) + str(job._repr_mimebundle_()) + repr(traces) + "".join(str(t) for t in traces)
        shown += str(job.to_frame().to_dict()) if _has_pandas() else ""
    assert KEY not in shown and KEY[:12] not in shown
    assert traces[0].answer is not None and traces[0].answer.startswith("key: ")
    assert traces[1].error is not None and "your key" in traces[1].error.message
    state.queue_raw(500, json.dumps({"error": {"code": "X", "message": f"bad key {KEY}"}}).encode())
    state.queue_raw(500, json.dumps({"error": {"code": "X", "message": f"bad key {KEY}"}}).encode())
    with pytest.raises(DashmagicError) as caught:
        batch.attach("batch_x", **opts(fake))
    assert "bad key" in one_line_without_key(caught.value)


def _has_pandas() -> bool:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True


def test_a_wrong_key_is_one_authentication_line(fake: FakeDashScope) -> None:
    with pytest.raises(AuthenticationError) as caught:
        batch.submit(["a"], **opts(fake, api_key="sk-wrong-000000000000"))
    text = one_line_without_key(caught.value)
    assert "invalid_api_key" in text and "sk-wrong-000000000000" not in text


@pytest.mark.parametrize(("status", "body", "content_type", "words"), [
    (200, b"{not json", "application/json", "not valid JSON"),
    (200, b"[1, 2]", "application/json", "not an object"),
    (200, json.dumps({"id": "batch_x", "status": 7}).encode(), "application/json", "string 'id' and 'status'"),
    (200, json.dumps({"id": "batch_x", "status": "dancing"}).encode(), "application/json", "unknown batch status"),
    (200, json.dumps({"id": "batch_x", "status": "completed", "request_counts": "lots"}).encode(),
     "application/json", "request_counts"),
    (200, json.dumps({"id": "batch_x", "status": "completed", "request_counts": {"total": "x"}}).encode(),
     "application/json", "whole counts"),
    (200, json.dumps({"id": "batch_other", "status": "completed"}).encode(), "application/json", "answered about"),
    (200, b"\xff\xfe{}", "application/json", "UTF-8"),
    (404, b"<html><title>Not \x1b[2J Found</title></html>", "text/html", "404: non-JSON error page: Not"),
])
def test_hostile_batch_replies_are_one_line(fake: FakeDashScope, state: FakeBatches, status: int, body: bytes,
                                            content_type: str, words: str) -> None:
    with Client(**opts(fake)) as client:
        job = BatchJob(client, BatchInfo("batch_x", "validating", batch.RequestCounts()))
        state.queue_raw(status, body, content_type)
        with pytest.raises(DashmagicError) as caught:
            job.refresh()
    text = one_line_without_key(caught.value)
    assert words in text and "\x1b" not in text


@pytest.mark.parametrize(("line", "words"), [
    (b"{broken\n", "not JSON"),
    (b"[1]\n", "not a JSON object"),
    (json.dumps({"custom_id": "999999999", "response": None}).encode() + b"\n", "not a row number"),
    (json.dumps({"custom_id": "-1"}).encode() + b"\n", "not a row number"),
])
def test_hostile_result_files_are_one_line(fake: FakeDashScope, state: FakeBatches, line: bytes, words: str) -> None:
    with batch.submit(PROMPTS, **opts(fake)) as job:
        job.wait(poll=0.01)
        state.files[job.info.output_file_id or ""].data = line
        with pytest.raises(ProtocolError) as caught:
            job.results()
    assert words in one_line_without_key(caught.value)


def test_result_lines_of_the_wrong_shape_become_row_errors(fake: FakeDashScope, state: FakeBatches) -> None:
    with batch.submit(PROMPTS, **opts(fake)) as job:
        job.wait(poll=0.01)
        weird = [{"custom_id": "0", "response": {"status_code": 200, "body": {"choices": "nope"}}, "error": None},
                 {"custom_id": "2", "response": "x", "error": {"message": "\x1b[31mred\u202e", "code": 5}}]
        state.files[job.info.output_file_id or ""].data = b"".join(json.dumps(w).encode() + b"\n" for w in weird)
        traces = job.results()
    assert traces[0].status == "error" and traces[0].error is not None and traces[0].error.type == "ProtocolError"
    assert traces[2].error is not None and "\x1b" not in traces[2].error.message and "\u202e" not in traces[2].error.message
    assert traces[3].error is not None and traces[3].error.type == "NotRun"  # its line was replaced


def test_transient_errors_on_polls_are_retried_but_batch_creation_is_not(fake: FakeDashScope, state: FakeBatches) -> None:
    with Client(**opts(fake, retries=3)) as client:
        with batch.submit(PROMPTS, client=client) as job:
            state.queue_raw(502, b"<html><title>502 Bad Gateway</title></html>", "text/html")
            assert job.refresh().status in batch.STATES  # retried once, then answered
        before = len([r for r in fake.requests if r.path.endswith("/batches")])
        state.queue_raw(503, b"{}", "application/json")  # answers the upload
        with pytest.raises(DashmagicError):
            batch.submit(PROMPTS, client=client)
        assert len([r for r in fake.requests if r.path.endswith("/batches")]) == before  # never a second job


def test_compatible_base_and_client_option_checks() -> None:
    assert compatible_base("https://dashscope-intl.aliyuncs.com/api/v1") == "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
    assert compatible_base("http://127.0.0.1:8080/api/v1/") == "http://127.0.0.1:8080/compatible-mode/v1"
    with Client(mode="replay") as client:
        with pytest.raises(ConfigError, match="not both"):
            batch.submit(["a"], client=client, mode="replay")
    with pytest.raises(ConfigError, match="Unknown"):
        batch.attach("batch_x", mode="replay", model="x")  # type: ignore[call-arg]
