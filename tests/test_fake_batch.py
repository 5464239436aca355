"""The fake's Batch File API (dashmagic.testing.batch), driven over real loopback sockets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from dashmagic.testing import FakeDashScope
from dashmagic.testing.batch import FAIL_MARK, TEST_ANSWER, TEST_MODEL, FakeBatches, batches_of

KEY = "sk-fake-batch-0123456789"


@pytest.fixture
def fake() -> Iterator[FakeDashScope]:
    with FakeDashScope(api_key=KEY) as server:
        yield server


@pytest.fixture
def state(fake: FakeDashScope) -> FakeBatches:
    return batches_of(fake)


def _url(fake: FakeDashScope, path: str) -> str:
    return fake.url_for("/compatible-mode/v1" + path)


def _auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def line(i: int, prompt: str = "hello", model: str = "qwen-plus", **extra: Any) -> dict[str, Any]:
    return {"custom_id": str(i), "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": f"{prompt} {i}"}]}, **extra}


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(x).encode() + b"\n" for x in lines)


def upload(fake: FakeDashScope, data: bytes, purpose: str = "batch") -> requests.Response:
    return requests.post(_url(fake, "/files"), headers=_auth(), data={"purpose": purpose},
                         files={"file": ("in.jsonl", data, "application/jsonl")}, timeout=10)


def create(fake: FakeDashScope, data: bytes) -> dict[str, Any]:
    uploaded = upload(fake, data)
    assert uploaded.status_code == 200, uploaded.text
    reply = requests.post(_url(fake, "/batches"), headers=_auth(), timeout=10, json={
        "input_file_id": uploaded.json()["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def get(fake: FakeDashScope, batch_id: str) -> dict[str, Any]:
    reply = requests.get(_url(fake, f"/batches/{batch_id}"), headers=_auth(), timeout=10)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def content(fake: FakeDashScope, file_id: str) -> list[dict[str, Any]]:
    reply = requests.get(_url(fake, f"/files/{file_id}/content"), headers=_auth(), timeout=10)
    assert reply.status_code == 200
    return [json.loads(x) for x in reply.content.splitlines()]


def test_upload_returns_a_batch_file_object(fake: FakeDashScope) -> None:
    data = jsonl([line(0), line(1)])
    reply = upload(fake, data)
    assert reply.status_code == 200
    body = reply.json()
    assert body["id"].startswith("file-batch-") and body["object"] == "file"
    assert body["bytes"] == len(data) and body["purpose"] == "batch" and body["filename"] == "in.jsonl"
    again = requests.get(_url(fake, f"/files/{body['id']}/content"), headers=_auth(), timeout=10)
    assert again.content == data
    meta = requests.get(_url(fake, f"/files/{body['id']}"), headers=_auth(), timeout=10).json()
    assert meta == body


def test_every_route_needs_the_key_and_answers_in_the_openai_error_shape(fake: FakeDashScope) -> None:
    for method, path in (("GET", "/batches/x"), ("POST", "/batches"), ("POST", "/files"), ("GET", "/files/x/content")):
        reply = requests.request(method, _url(fake, path), headers=_auth("sk-wrong-key-000"), timeout=10)
        assert reply.status_code == 401
        error = reply.json()["error"]
        assert error["code"] == "invalid_api_key" and reply.json()["request_id"]


def test_upload_refuses_other_purposes_a_missing_file_and_oversized_bodies(fake: FakeDashScope, state: FakeBatches) -> None:
    assert upload(fake, jsonl([line(0)]), purpose="fine-tune").status_code == 400
    assert requests.post(_url(fake, "/files"), headers=_auth(), data={"purpose": "batch"}, timeout=10).status_code == 400
    state.configure(max_bytes=100)
    big = upload(fake, b"x" * 500)
    assert big.status_code == 400 and big.json()["error"]["code"] == "InvalidFile.TooLarge"


def test_create_checks_endpoint_window_and_file(fake: FakeDashScope) -> None:
    file_id = upload(fake, jsonl([line(0)])).json()["id"]
    good = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    for bad in ({**good, "endpoint": "/v1/embeddings"}, {**good, "completion_window": "48h"},
                {**good, "input_file_id": "file-batch-missing"}):
        reply = requests.post(_url(fake, "/batches"), headers=_auth(), json=bad, timeout=10)
        assert reply.status_code == 400, bad
    assert requests.post(_url(fake, "/batches"), headers=_auth(), data=b"[1,", timeout=10).status_code == 400


def test_life_cycle_validating_in_progress_finalizing_completed(fake: FakeDashScope, state: FakeBatches) -> None:
    state.configure(validate_delay=10, row_delay=5, finalize_delay=3)
    batch = create(fake, jsonl([line(0), line(1, FAIL_MARK), line(2)]))
    assert batch["status"] == "validating" and batch["id"].startswith("batch_")
    assert batch["request_counts"] == {"total": 0, "completed": 0, "failed": 0}
    assert batch["completion_window"] == "24h" and batch["expires_at"] - batch["created_at"] == 24 * 3600
    seen = []
    for step in (9, 1, 5, 5, 5, 2, 1):
        state.advance(step)
        now = get(fake, batch["id"])
        seen.append((now["status"], now["request_counts"]["completed"], now["request_counts"]["failed"]))
    assert seen == [("validating", 0, 0), ("in_progress", 0, 0), ("in_progress", 1, 0), ("in_progress", 1, 1),
                    ("finalizing", 2, 1), ("finalizing", 2, 1), ("completed", 2, 1)]
    done = get(fake, batch["id"])
    assert done["request_counts"]["total"] == 3
    assert all(done[k] is not None for k in ("in_progress_at", "finalizing_at", "completed_at"))
    assert done["failed_at"] is None and done["errors"] is None
    output = content(fake, done["output_file_id"])
    assert [row["custom_id"] for row in output] == ["0", "2"]
    first = output[0]
    assert set(first) == {"id", "custom_id", "response", "error"} and first["error"] is None
    assert first["response"]["status_code"] == 200 and first["response"]["request_id"]
    chat = first["response"]["body"]
    assert chat["object"] == "chat.completion" and chat["choices"][0]["message"]["content"] == "Answer to: hello 0"
    assert chat["usage"]["total_tokens"] == chat["usage"]["prompt_tokens"] + chat["usage"]["completion_tokens"]
    errors = content(fake, done["error_file_id"])
    assert [row["custom_id"] for row in errors] == ["1"]
    assert errors[0]["error"]["code"] == "DataInspectionFailed" and errors[0]["response"]["status_code"] == 400


def test_the_test_model_answers_small_files_only(fake: FakeDashScope, state: FakeBatches) -> None:
    ok = create(fake, jsonl([line(i, model=TEST_MODEL) for i in range(100)]))
    done = get(fake, ok["id"])
    assert done["status"] == "completed" and done["request_counts"]["completed"] == 100
    assert content(fake, done["output_file_id"])[0]["response"]["body"]["choices"][0]["message"]["content"] == TEST_ANSWER
    too_many = get(fake, create(fake, jsonl([line(i, model=TEST_MODEL) for i in range(101)]))["id"])
    assert too_many["status"] == "failed" and too_many["failed_at"] is not None
    assert too_many["errors"]["data"][0]["code"] == "InvalidFile.TestModelLimit"
    assert too_many["output_file_id"] is None and too_many["error_file_id"] is None


@pytest.mark.parametrize(("data", "code"), [
    (b"{not json\n", "InvalidFile.Line"),
    (jsonl([{"custom_id": "0", "method": "GET", "url": "/v1/chat/completions", "body": {}}]), "InvalidFile.Line"),
    (jsonl([line(0), line(0)]), "InvalidFile.Line"),
    (jsonl([line(0), line(1, model="qwen-max")]), "InvalidFile.MixedModels"),
    (b"\n\n", "InvalidFile"),
])
def test_validation_fails_the_batch_with_line_numbered_errors(fake: FakeDashScope, data: bytes, code: str) -> None:
    batch = get(fake, create(fake, data)["id"])
    assert batch["status"] == "failed"
    errors = batch["errors"]["data"]
    assert errors[0]["code"] == code and isinstance(errors[0]["line"], int) and errors[0]["message"]


def test_the_line_limit_fails_validation(fake: FakeDashScope, state: FakeBatches) -> None:
    state.configure(max_lines=3)
    batch = get(fake, create(fake, jsonl([line(i) for i in range(4)]))["id"])
    assert batch["status"] == "failed" and batch["errors"]["data"][0]["code"] == "InvalidFile.TooManyLines"


def test_expiry_keeps_the_rows_that_ran_and_lists_the_rest_as_expired(fake: FakeDashScope, state: FakeBatches) -> None:
    state.configure(row_delay=10, expire_after=25)
    batch = create(fake, jsonl([line(i) for i in range(5)]))
    state.advance(30)
    done = get(fake, batch["id"])
    assert done["status"] == "expired" and done["expired_at"] is not None
    assert done["request_counts"] == {"total": 5, "completed": 2, "failed": 3}
    assert [r["custom_id"] for r in content(fake, done["output_file_id"])] == ["0", "1"]
    expired = content(fake, done["error_file_id"])
    assert [r["custom_id"] for r in expired] == ["2", "3", "4"]
    assert all(r["response"] is None and r["error"]["code"] == "batch_expired" for r in expired)


def test_cancel_goes_through_cancelling_to_cancelled(fake: FakeDashScope, state: FakeBatches) -> None:
    state.configure(row_delay=10, cancel_delay=5)
    batch = create(fake, jsonl([line(i) for i in range(4)]))
    state.advance(15)
    reply = requests.post(_url(fake, f"/batches/{batch['id']}/cancel"), headers=_auth(), timeout=10)
    assert reply.status_code == 200 and reply.json()["status"] == "cancelling"
    state.advance(4)
    assert get(fake, batch["id"])["status"] == "cancelling"
    state.advance(1)
    done = get(fake, batch["id"])
    assert done["status"] == "cancelled" and done["cancelled_at"] is not None
    assert done["request_counts"] == {"total": 4, "completed": 1, "failed": 0}
    assert [r["custom_id"] for r in content(fake, done["output_file_id"])] == ["0"]
    again = requests.post(_url(fake, f"/batches/{batch['id']}/cancel"), headers=_auth(), timeout=10)
    assert again.status_code == 400


def test_poll_step_moves_the_clock_on_every_retrieve(fake: FakeDashScope, state: FakeBatches) -> None:
    state.configure(validate_delay=1, row_delay=1, poll_step=1)
    batch = create(fake, jsonl([line(0), line(1)]))
    statuses = [get(fake, batch["id"])["status"] for _ in range(3)]
    assert statuses == ["in_progress", "in_progress", "completed"]


def test_list_unknown_ids_and_routes(fake: FakeDashScope) -> None:
    batch = create(fake, jsonl([line(0)]))
    listed = requests.get(_url(fake, "/batches"), headers=_auth(), timeout=10).json()
    assert listed["object"] == "list" and [b["id"] for b in listed["data"]] == [batch["id"]]
    assert requests.get(_url(fake, "/batches/batch_nope"), headers=_auth(), timeout=10).status_code == 404
    assert requests.get(_url(fake, "/files/file-nope/content"), headers=_auth(), timeout=10).status_code == 404
    assert requests.post(_url(fake, "/batches/x/pause"), headers=_auth(), timeout=10).status_code == 404
    # The other routes of the fake are untouched by the Batch API's hook.
    assert requests.get(fake.url_for("/oss/nowhere/x.png"), timeout=10).status_code == 404


def test_requests_are_recorded_like_every_other_route(fake: FakeDashScope) -> None:
    create(fake, jsonl([line(0)]))
    paths = [(r.method, r.path) for r in fake.requests]
    assert paths == [("POST", "/compatible-mode/v1/files"), ("POST", "/compatible-mode/v1/batches")]
    assert fake.requests[1].json["completion_window"] == "24h"


def test_queued_raw_replies_answer_the_next_request_verbatim(fake: FakeDashScope, state: FakeBatches) -> None:
    state.queue_raw(200, b"{not json", "application/json")
    reply = requests.get(_url(fake, "/batches/anything"), headers=_auth(), timeout=10)
    assert reply.status_code == 200 and reply.content == b"{not json"
    assert requests.get(_url(fake, "/batches/anything"), headers=_auth(), timeout=10).status_code == 404


def test_the_official_openai_sdk_parses_the_fakes_objects(fake: FakeDashScope, state: FakeBatches) -> None:
    openai = pytest.importorskip("openai", reason="the openai package is not installed (optional SDK-parse check)")
    sdk = openai.OpenAI(api_key=KEY, base_url=_url(fake, ""))
    uploaded = sdk.files.create(file=("in.jsonl", jsonl([line(0)])), purpose="batch")
    batch = sdk.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert sdk.batches.retrieve(batch.id).status == "completed"
