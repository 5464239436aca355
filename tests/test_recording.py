"""Record against the loopback fake, stop it, replay offline: same traces, same bytes, same errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import requests

import dashmagic
from dashmagic import client
from dashmagic.config import DEFAULT_BASE_URL, Secret
from dashmagic.errors import ConfigError, ProtocolError, RateLimitError, RecordingMiss, TransportError
from dashmagic.recording import REDACTED, fingerprint, fingerprint_key, record_figure, redact_chunks, reset_replays
from dashmagic.transport import RecordingAdapter, ReplayAdapter, image_session_for, session_for
from dashmagic.client import build_call
from dashmagic.scrub import MASK
from dashmagic.testing import PLOT_OSS_PATH, TEXT_TO_IMAGE_OSS_PATH, FakeDashScope
from dashmagic.trace import Trace

from _seed import BY_NAME, EXCHANGES, files, user_prompt

CANARY = "sk-canary-7f3a9c1e5b2d4a6f8e0c"
OFFLINE = "sk-not-used-in-replay"


# -- helpers -----------------------------------------------------------------------------------


def _kwargs(exchange, base_url: str, key: str, session) -> dict[str, Any]:
    return dict(
        plugins=exchange.plugins, seed=42, files=files(exchange), api_key=key, base_url=base_url, session=session
    )


def _same(a: Trace, b: Trace) -> None:
    """Equal as a user sees them: everything but wall time, the URL (host differs) and notes."""
    assert a.steps == b.steps
    assert a.usage == b.usage
    assert a.request_id == b.request_id
    assert a.status == b.status
    assert a.finish_reason == b.finish_reason
    assert a.events == b.events
    assert a.error == b.error
    assert a.messages == b.messages
    assert a.model == b.model


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _exchanges(path: Path) -> list[dict[str, Any]]:
    return [item for item in _lines(path) if item.get("type") == "exchange"]


def _reply(text: str) -> dict[str, Any]:
    return {
        "output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": text}}]},
        "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
    }


@pytest.fixture
def fake():
    with FakeDashScope(api_key="sk-test") as server:
        yield server


# -- the seed exchanges, JSON and SSE, round trip ------------------------------------------------


def test_seed_exchanges_record_and_replay_under_another_host(tmp_path: Path) -> None:
    path = tmp_path / "rec" / "seed.jsonl"  # parent folder created on demand
    recorded: dict[str, tuple[Trace, list[Trace]]] = {}
    with FakeDashScope(api_key="sk-test") as fake:
        session = session_for("record", str(path), key=Secret(fake.api_key))
        for exchange in EXCHANGES:
            kw = _kwargs(exchange, fake.base_url, fake.api_key, session)
            final = client.run(user_prompt(exchange), **kw)
            snaps = list(client.stream(user_prompt(exchange), **kw))
            recorded[exchange.name] = (final, snaps)
    # The fake is gone: replay must not need it, and runs under the real default base URL.
    replay = session_for("replay", str(path))
    for exchange in EXCHANGES:
        kw = _kwargs(exchange, DEFAULT_BASE_URL, OFFLINE, replay)
        final, snaps = recorded[exchange.name]
        assert final.status == "complete"
        _same(client.run(user_prompt(exchange), **kw), final)
        again = list(client.stream(user_prompt(exchange), **kw))
        assert len(again) == len(snaps) > 2
        for old, new in zip(snaps, again):
            _same(old, new)

    lines = _lines(path)
    assert set(lines[0]) == {"dashmagic_recording", "note"} and lines[0]["dashmagic_recording"] == 2
    exchanges = _exchanges(path)
    assert len(exchanges) == 2 * len(EXCHANGES)
    first = exchanges[0]
    assert set(first) == {"type", "request", "response", "recorded_at"}
    assert first["request"]["path"] == "/api/v1/services/aigc/text-generation/generation"
    # Every X-DashScope-* header, JSON values parsed; nothing else (no Authorization, no Accept).
    assert first["request"]["headers"] == {"x-dashscope-plugin": EXCHANGES[0].plugins}
    assert exchanges[1]["request"]["headers"] == {"x-dashscope-plugin": EXCHANGES[0].plugins, "x-dashscope-sse": "enable"}
    assert first["request"]["body"] == {**EXCHANGES[0].request, "parameters": {"result_format": "message", "seed": 42}}
    assert first["response"]["headers"] == {"Content-Type": "application/json;charset=UTF-8"}
    assert all(e["response"]["complete"] for e in exchanges)
    # Human-readable: Chinese prompts are stored as text, not \\u escapes.
    assert user_prompt(EXCHANGES[0]) in path.read_text(encoding="utf-8")


def test_stream_replays_the_recorded_chunk_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    exchange = BY_NAME["calculator"]
    with FakeDashScope(api_key="sk-test", event_delay=0.005) as fake:
        session = session_for("record", path, key=Secret(fake.api_key))
        live = list(client.stream(user_prompt(exchange), **_kwargs(exchange, fake.base_url, fake.api_key, session)))
    (line,) = _exchanges(path)
    chunks = line["response"]["chunks"]
    assert len(chunks) > 1
    assert all(chunk.endswith("\n\n") for chunk in chunks)  # the fake flushes whole events
    assert "".join(chunks).count("event:result") == live[-1].events

    # Read the raw body of a replayed response the way the client does: read1() per chunk.
    replay = session_for("replay", path)
    call = build_call(user_prompt(exchange), plugins=exchange.plugins, seed=42, stream=True, base_url=DEFAULT_BASE_URL)
    response = replay.post(call.url, data=call.body_bytes(), headers=dict(call.headers), stream=True)
    assert response.status_code == 200 and response.reason == "OK"
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.url == call.url and response.request.url == call.url
    assert response.encoding == "UTF-8"
    got = []
    while chunk := response.raw.read1(65536):
        got.append(chunk.decode("utf-8"))
    response.close()
    assert got == chunks

    snaps = list(client.stream(user_prompt(exchange), **_kwargs(exchange, DEFAULT_BASE_URL, OFFLINE, replay)))
    assert len(snaps) == len(live)
    for old, new in zip(live, snaps):
        _same(old, new)


def test_replayed_response_works_with_plain_requests_reading(tmp_path: Path, fake) -> None:
    path = tmp_path / "p.jsonl"
    exchange = BY_NAME["ocr"]
    session = session_for("record", path, key=Secret(fake.api_key))
    client.run(user_prompt(exchange), **_kwargs(exchange, fake.base_url, fake.api_key, session))
    list(client.stream(user_prompt(exchange), **_kwargs(exchange, fake.base_url, fake.api_key, session)))
    replay = session_for("replay", path)
    for streaming in (False, True):
        call = build_call(user_prompt(exchange), plugins=exchange.plugins, seed=42, stream=streaming,
                          base_url=fake.base_url)

        def post(**kw: Any) -> requests.Response:
            return replay.post(call.url, data=call.body_bytes(), headers=dict(call.headers), **kw)

        whole = post().content  # stream=False: requests reads .content through raw.stream()
        lines = list(post(stream=True).iter_lines())
        pieces = list(post(stream=True).iter_content(None))
        assert b"".join(pieces) == whole
        assert b"\n".join(lines).replace(b"\n", b"") == whole.replace(b"\n", b"")
        if streaming:
            assert whole.startswith(b"id:1\nevent:result\n")
        else:
            assert json.loads(whole)["request_id"]


def test_a_json_recording_answers_a_stream_request_and_vice_versa(tmp_path: Path, fake) -> None:
    path = tmp_path / "x.jsonl"
    exchange = BY_NAME["calculator"]
    session = session_for("record", path, key=Secret(fake.api_key))
    final = client.run(user_prompt(exchange), **_kwargs(exchange, fake.base_url, fake.api_key, session))
    replay = session_for("replay", path)
    snaps = list(client.stream(user_prompt(exchange), **_kwargs(exchange, DEFAULT_BASE_URL, OFFLINE, replay)))
    assert len(snaps) == 2  # one JSON payload, then the final snapshot
    _same(snaps[-1], final)


# -- matching ------------------------------------------------------------------------------------


def test_identical_requests_replay_in_order_and_wrap_around(tmp_path: Path, fake) -> None:
    path = tmp_path / "same.jsonl"
    fake.queue_reply(_reply("first answer"))
    fake.queue_reply(_reply("second answer"))
    session = session_for("record", path, key=Secret(fake.api_key))
    kw = dict(api_key=fake.api_key, base_url=fake.base_url, session=session)
    assert [client.run("same question", **kw).answer for _ in range(2)] == ["first answer", "second answer"]
    fake.stop()
    replay = session_for("replay", path)
    kw = dict(api_key=OFFLINE, base_url=DEFAULT_BASE_URL, session=replay)
    answers = [client.run("same question", **kw).answer for _ in range(5)]
    assert answers == ["first answer", "second answer", "first answer", "second answer", "first answer"]
    # A new replay session (the next cell) over the same file continues the order...
    kw["session"] = session_for("replay", path)
    assert client.run("same question", **kw).answer == "second answer"
    # ...until the replays are reset (or the file changes on disk).
    reset_replays()
    kw["session"] = session_for("replay", path)
    assert client.run("same question", **kw).answer == "first answer"
    with path.open("a", encoding="utf-8") as fh:
        fh.write("\n")
    kw["session"] = session_for("replay", path)
    assert client.run("same question", **kw).answer == "first answer"


def test_fingerprint_ignores_host_and_key_but_keeps_the_users_data() -> None:
    body = json.dumps({"model": "qwen-plus", "input": {"messages": []},
                       "parameters": {"seed": 7, "request_id": "volatile-1"}}).encode()
    headers = {"X-DashScope-Plugin": '{"calculator":{},"ocr":{}}', "x-dashscope-sse": "enable",
               "Authorization": "Bearer k", "Accept": "text/event-stream"}
    a = fingerprint("post", "http://127.0.0.1:5000/api/v1/services/x?q=1", headers, body)
    # Another host, key, header case, JSON key order and spacing, volatile field: same request.
    b = fingerprint("POST", "https://dashscope.aliyuncs.com/api/v1/services/x",
                    {"x-dashscope-plugin": '{ "ocr": {}, "calculator": {} }', "X-DashScope-SSE": " enable",
                     "Authorization": "Bearer z"}, body.replace(b"volatile-1", b"volatile-2"))
    assert fingerprint_key(a) == fingerprint_key(b)
    assert a == {"method": "POST", "path": "/api/v1/services/x",
                 "headers": {"x-dashscope-plugin": {"calculator": {}, "ocr": {}}, "x-dashscope-sse": "enable"},
                 "body": {"model": "qwen-plus", "input": {"messages": []}, "parameters": {"seed": 7}}}
    c = fingerprint("POST", "https://dashscope.aliyuncs.com/api/v1/services/x", headers, body.replace(b"7", b"8"))
    assert fingerprint_key(c) != fingerprint_key(a)
    d = fingerprint("POST", "https://h/api/v1/services/x", {**headers, "X-DashScope-Plugin": '{"ocr":{}}'}, body)
    assert fingerprint_key(d) != fingerprint_key(a)  # another header value is another request
    assert fingerprint_key(a) == json.dumps(a, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert fingerprint("GET", "http://h/p", {}, None) == {"method": "GET", "path": "/p", "headers": {}, "body": None}


def test_no_header_is_known_by_name_outside_the_format_1_reader() -> None:
    """Record and replay are generic: the wire format's headers live with the wire format."""
    import dashmagic

    root = Path(dashmagic.__file__).parent
    for path in [*(root / "recording").glob("*.py"), *(root / "transport").glob("*.py")]:
        text = path.read_text(encoding="utf-8").lower()
        if path.name != "legacy.py":
            assert "x-dashscope-plugin" not in text and "x-dashscope-sse" not in text, path.name


def test_format_1_recordings_still_replay(tmp_path: Path, fake) -> None:
    """A format-1 line stored two headers as `plugins` and `stream`; it answers as before."""
    path = tmp_path / "v2.jsonl"
    exchange = BY_NAME["calculator"]
    session = session_for("record", path, key=Secret(fake.api_key))
    live = client.run(user_prompt(exchange), **_kwargs(exchange, fake.base_url, fake.api_key, session))
    live_stream = list(client.stream(user_prompt(exchange), **_kwargs(exchange, fake.base_url, fake.api_key, session)))
    old = tmp_path / "v1.jsonl"
    lines = _lines(path)
    lines[0]["dashmagic_recording"] = 1
    for line in lines[1:]:
        headers = line["request"].pop("headers")
        line["request"]["plugins"] = headers.get("x-dashscope-plugin", {})
        line["request"]["stream"] = headers.get("x-dashscope-sse") == "enable"
    old.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    replay = session_for("replay", old)
    _same(client.run(user_prompt(exchange), **_kwargs(exchange, DEFAULT_BASE_URL, OFFLINE, replay)), live)
    again = list(client.stream(user_prompt(exchange), **_kwargs(exchange, DEFAULT_BASE_URL, OFFLINE, replay)))
    assert len(again) == len(live_stream)
    _same(again[-1], live_stream[-1])


def test_recording_miss_is_raised_unwrapped_with_an_actionable_message(tmp_path: Path, fake) -> None:
    path = tmp_path / "miss.jsonl"
    exchange = BY_NAME["calculator"]
    session = session_for("record", path, key=Secret(fake.api_key))
    client.run(user_prompt(exchange), **_kwargs(exchange, fake.base_url, fake.api_key, session))
    replay = session_for("replay", path)
    prompt = "What is the square root of two, to fifty decimal places, please?"
    with pytest.raises(RecordingMiss) as info:
        dashmagic.run(prompt, plugins=["calculator"], model="qwen-max", api_key=OFFLINE, session=replay)
    error = info.value
    assert type(error) is RecordingMiss  # not wrapped by requests or the transport
    assert error.trace is not None and error.trace.status == "error"
    message = str(error)
    assert str(path) in message
    assert "calculator" in message and "'qwen-max'" in message and "not streaming" in message
    assert prompt[:40] in message and prompt not in message
    assert f"--record {path}" in message and f"DASHMAGIC_MODE=record DASHMAGIC_RECORDINGS={path}" in message
    assert "\n" not in message

    # Same plugins and prompt, another seed: the message says what differs.
    with pytest.raises(RecordingMiss, match=r"differs in parameters\.seed"):
        client.run(user_prompt(exchange), **{**_kwargs(exchange, DEFAULT_BASE_URL, OFFLINE, replay), "seed": 1})
    # ...which strict=False forgives.
    loose = requests.Session()
    loose.mount("https://", ReplayAdapter(path, strict=False))
    trace = client.run(user_prompt(exchange), **{**_kwargs(exchange, DEFAULT_BASE_URL, OFFLINE, loose), "seed": 1})
    assert trace.ok and "1219253925" in trace.text


# -- secrets -------------------------------------------------------------------------------------


def test_the_key_never_reaches_the_file_even_when_the_service_echoes_it(tmp_path: Path) -> None:
    path = tmp_path / "canary.jsonl"
    echoed = f"Your key is {CANARY}, sent as Bearer {CANARY}."
    with FakeDashScope(api_key=CANARY) as fake:
        fake.queue_reply(_reply(echoed))
        fake.queue_reply(_reply(echoed))
        fake.queue_reply({"code": "InvalidApiKey", "message": f"bad key {CANARY}"}, status=401)
        session = session_for("record", path, key=Secret(CANARY))
        kw = dict(api_key=CANARY, base_url=fake.base_url, session=session)
        # The canary really came back, and the client hid it before anyone could see it.
        assert client.run("echo my key", **kw).text == f"Your key is {MASK}, sent as Bearer {MASK}."
        assert CANARY not in list(client.stream("echo my key", **kw))[-1].text
        with pytest.raises(dashmagic.AuthenticationError):
            client.run("echo my key again", **kw)
        # A recording session without a key still scrubs the bearer token the request carried.
        bare = tmp_path / "no-key.jsonl"
        fake.queue_reply(_reply(echoed))
        client.run("echo my key", api_key=CANARY, base_url=fake.base_url, session=session_for("record", bare))
    for recording in (path, bare):
        text = recording.read_text(encoding="utf-8")
        assert "Authorization" not in text
        # Nor any piece of 10+ characters (a streamed snapshot holds a growing prefix of it).
        assert not any(CANARY[i : i + 10] in text for i in range(len(CANARY) - 9))
        assert REDACTED in text
    assert len(_exchanges(path)) == 3
    replay = session_for("replay", path)
    trace = client.run("echo my key", api_key=OFFLINE, base_url=DEFAULT_BASE_URL, session=replay)
    assert trace.text == f"Your key is {REDACTED}, sent as {REDACTED}."


def test_redaction_survives_a_key_split_across_chunks() -> None:
    chunks = [b"data: abc sk-se", b"cret-key-1 tail\n\n", b"id:2 Bearer sk-secret-key-1\n\n", b'growing "sk-secret-k"']
    out = redact_chunks(chunks, ["sk-secret-key-1"])
    # The boundary inside the key moves to its end; a long prefix (a growing snapshot) goes too.
    assert out == [b"data: abc <redacted>", b" tail\n\n", b"id:2 <redacted>\n\n", b'growing "<redacted>"']
    assert redact_chunks(chunks, ["absent-key"]) is chunks
    assert redact_chunks([b"sk-test and sk-tes"], ["sk-test"]) == [b"<redacted> and sk-tes"]


# -- errors and broken streams -------------------------------------------------------------------


def test_an_error_exchange_replays_as_the_same_error(tmp_path: Path, fake) -> None:
    path = tmp_path / "throttle.jsonl"
    exchange = BY_NAME["calculator"]
    fake.inject("throttle")
    session = session_for("record", path, key=Secret(fake.api_key))
    with pytest.raises(RateLimitError) as live:
        client.run(user_prompt(exchange), retries=1, **_kwargs(exchange, fake.base_url, fake.api_key, session))
    (line,) = _exchanges(path)
    assert line["response"]["status"] == 429 and line["response"]["complete"] is True
    fake.stop()
    replay = session_for("replay", path)
    with pytest.raises(RateLimitError) as again:
        client.run(user_prompt(exchange), retries=1, **_kwargs(exchange, DEFAULT_BASE_URL, OFFLINE, replay))
    assert str(again.value) == str(live.value)
    assert (again.value.status_code, again.value.code, again.value.request_id) == (
        429, "Throttling.RateQuota", live.value.request_id)


def test_a_retried_exchange_replays_with_the_same_retry(tmp_path: Path, fake) -> None:
    path = tmp_path / "retry.jsonl"
    exchange = BY_NAME["calculator"]
    fake.inject("throttle")
    call = build_call(user_prompt(exchange), plugins=exchange.plugins, stream=False, base_url=fake.base_url)
    session = session_for("record", path, key=Secret(fake.api_key))
    with client.Client(api_key=fake.api_key, base_url=fake.base_url, session=session, backoff=0.01) as live_client:
        live = list(live_client.execute(call))[-1]
    assert live.ok and len(live.notes) == 1
    assert [e["response"]["status"] for e in _exchanges(path)] == [429, 200]
    replay = session_for("replay", path)
    offline = build_call(user_prompt(exchange), plugins=exchange.plugins, stream=False, base_url=DEFAULT_BASE_URL)
    with client.Client(mode="replay", session=replay) as replay_client:
        for _ in range(2):  # and again: the queue wraps around to the 429
            again = list(replay_client.execute(offline))[-1]
            _same(again, live)
            assert [n.split(" in ")[0] for n in again.notes] == [n.split(" in ")[0] for n in live.notes]


def test_a_stream_cut_mid_event_records_incomplete_and_replays_the_same_error(tmp_path: Path, fake) -> None:
    path = tmp_path / "cut.jsonl"
    exchange = BY_NAME["calculator"]
    fake.inject("cut_mid_event")
    session = session_for("record", path, key=Secret(fake.api_key))
    with pytest.raises(TransportError) as live:
        list(client.stream(user_prompt(exchange), retries=1, **_kwargs(exchange, fake.base_url, fake.api_key, session)))
    (line,) = _exchanges(path)
    assert line["response"]["complete"] is False and "error" not in line["response"]
    assert not "".join(line["response"]["chunks"]).endswith("\n\n")
    fake.stop()
    replay = session_for("replay", path)
    with pytest.raises(TransportError) as again:
        list(client.stream(user_prompt(exchange), retries=1, **_kwargs(exchange, DEFAULT_BASE_URL, OFFLINE, replay)))
    assert str(again.value) == str(live.value)
    assert "middle of an event" in str(again.value)
    _same(again.value.trace, live.value.trace)


def test_a_connection_reset_mid_stream_replays_as_a_broken_connection(tmp_path: Path, fake) -> None:
    path = tmp_path / "reset.jsonl"
    exchange = BY_NAME["calculator"]
    fake.inject("reset_mid_stream")
    session = session_for("record", path, key=Secret(fake.api_key))
    with pytest.raises(TransportError) as live:
        list(client.stream(user_prompt(exchange), retries=1, **_kwargs(exchange, fake.base_url, fake.api_key, session)))
    (line,) = _exchanges(path)
    assert line["response"]["complete"] is False
    assert line["response"]["error"]["kind"] == "connection_broken"
    base_url = fake.base_url  # same host in the message: it names the host it could not read from
    fake.stop()
    replay = session_for("replay", path)
    with pytest.raises(TransportError) as again:
        list(client.stream(user_prompt(exchange), retries=1, **_kwargs(exchange, base_url, OFFLINE, replay)))
    assert str(again.value) == str(live.value)
    _same(again.value.trace, live.value.trace)


def test_invalid_utf8_is_recorded_as_base64_and_replays_the_same_error(tmp_path: Path, fake) -> None:
    path = tmp_path / "utf8.jsonl"
    exchange = BY_NAME["calculator"]
    fake.inject("invalid_utf8", times=2)
    session = session_for("record", path, key=Secret(fake.api_key))
    live = []
    for streaming in (False, True):
        call = client.stream if streaming else client.run
        with pytest.raises(ProtocolError) as info:
            result = call(user_prompt(exchange), **_kwargs(exchange, fake.base_url, fake.api_key, session))
            list(result) if streaming else None
        live.append(str(info.value))
    lines = _exchanges(path)
    assert all("chunks_b64" in e["response"] and "chunks" not in e["response"] for e in lines)
    assert b"\xff\xfe" in base64.b64decode(lines[0]["response"]["chunks_b64"][0])
    replay = session_for("replay", path)
    for streaming, message in zip((False, True), live):
        call = client.stream if streaming else client.run
        with pytest.raises(ProtocolError) as info:
            result = call(user_prompt(exchange), **_kwargs(exchange, DEFAULT_BASE_URL, OFFLINE, replay))
            list(result) if streaming else None
        assert str(info.value) == message


# -- figures -------------------------------------------------------------------------------------


def test_figures_are_recorded_through_the_image_session_and_replayed_offline(tmp_path: Path, fake) -> None:
    path = tmp_path / "fig.jsonl"
    plot = fake.url_for(PLOT_OSS_PATH) + "?Expires=1700000000&Signature=abc%3D"
    expired = fake.url_for(TEXT_TO_IMAGE_OSS_PATH) + "?Signature=x"
    moved = fake.add_file("/oss/example/moved.png", b"", "text/plain", status=302, headers={"Location": plot})
    images = image_session_for("record", path)
    assert images.trust_env is False and images.auth is None
    live_plot = images.get(plot, timeout=5)
    live_expired = images.get(expired, timeout=5)
    live_moved = images.get(moved, timeout=5)
    assert live_plot.status_code == 200 and live_plot.content.startswith(b"\x89PNG")
    assert live_expired.status_code == 403
    assert live_moved.status_code == 200 and len(live_moved.history) == 1
    record_figure(path, "https://example.com/extra.png?sig=1", 200, "image/png", b"extra-bytes", note="added by hand")
    fake.stop()

    figures = [item for item in _lines(path) if item.get("type") == "figure"]
    assert figures[0]["url"] == plot and figures[0]["content_type"] == "image/png"
    assert figures[-1]["note"] == "added by hand"
    replay = image_session_for("replay", path)
    got = replay.get(plot)
    assert (got.status_code, got.headers["Content-Type"], got.content) == (200, "image/png", live_plot.content)
    assert replay.get(plot.split("?")[0]).content == live_plot.content  # matched without the query
    got = replay.get(expired)
    assert (got.status_code, got.content) == (403, live_expired.content)
    got = replay.get(moved)
    assert got.status_code == 200 and got.content == live_plot.content and len(got.history) == 1
    assert replay.get("https://example.com/extra.png").content == b"extra-bytes"
    unknown = replay.get("https://example.com/nowhere.png")
    assert unknown.status_code == 404 and b"No recorded figure" in unknown.content


def test_live_image_session_is_a_plain_session_without_the_key() -> None:
    images = image_session_for("live", None, key=Secret(CANARY))
    assert isinstance(images, requests.Session) and images.trust_env is False
    assert images.auth is None and "Authorization" not in images.headers


# -- sessions and configuration ------------------------------------------------------------------


def test_session_for_modes_and_their_errors(tmp_path: Path) -> None:
    live = session_for("LIVE", None)
    adapter = live.get_adapter("https://dashscope.aliyuncs.com")
    assert isinstance(adapter, requests.adapters.HTTPAdapter) and adapter.max_retries.total == 0

    with pytest.raises(ConfigError, match="live, record or replay"):
        session_for("playback", None)
    with pytest.raises(ConfigError, match="live, record or replay"):
        image_session_for("vcr", None)
    with pytest.raises(ConfigError, match="exactly one file"):
        session_for("record", None)
    with pytest.raises(ConfigError, match="exactly one file"):
        session_for("record", [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")])
    with pytest.raises(ConfigError, match="read-only"):
        session_for("record", "demo")
    missing = tmp_path / "nope" / "missing.jsonl"
    with pytest.raises(ConfigError) as info:
        session_for("replay", str(missing))
    assert str(missing) in str(info.value)
    with pytest.raises(ConfigError, match="needs recordings"):
        session_for("replay", None)

    recording = session_for("record", tmp_path / "deep" / "er" / "new.jsonl")
    assert isinstance(recording.get_adapter("http://127.0.0.1"), RecordingAdapter)
    assert isinstance(recording.get_adapter("https://dashscope.aliyuncs.com"), RecordingAdapter)
    assert _lines(tmp_path / "deep" / "er" / "new.jsonl")[0]["dashmagic_recording"] == 2
    replay = session_for("replay", [tmp_path / "deep" / "er" / "new.jsonl"])
    assert isinstance(replay.get_adapter("https://dashscope.aliyuncs.com"), ReplayAdapter)


def test_demo_recordings_resolve_lazily() -> None:
    from importlib.resources import files as package_files

    folder = package_files("dashmagic").joinpath("demo")
    bundled = folder.is_dir() and any(p.name.endswith(".jsonl") for p in folder.iterdir())
    if bundled:
        assert isinstance(session_for("replay", "demo").get_adapter("https://x"), ReplayAdapter)
    else:
        with pytest.raises(ConfigError, match=r"dashmagic/demo/\*\.jsonl"):
            session_for("replay", "demo")


def test_malformed_or_newer_recordings_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"dashmagic_recording": 1}\n{not json\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="damaged at line 2"):
        session_for("replay", bad)
    newer = tmp_path / "newer.jsonl"
    newer.write_text('{"dashmagic_recording": 99}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="version 99"):
        session_for("replay", newer)


def test_several_recordings_and_a_folder_replay_together(tmp_path: Path, fake) -> None:
    folder = tmp_path / "recs"
    for name in ("calculator", "ocr"):
        exchange = BY_NAME[name]
        session = session_for("record", folder / f"{name}.jsonl", key=Secret(fake.api_key))
        client.run(user_prompt(exchange), **_kwargs(exchange, fake.base_url, fake.api_key, session))
    fake.stop()
    for recordings in (folder, [folder / "calculator.jsonl", folder / "ocr.jsonl"]):
        replay = session_for("replay", recordings)
        for name in ("calculator", "ocr"):
            exchange = BY_NAME[name]
            assert client.run(user_prompt(exchange), **_kwargs(exchange, DEFAULT_BASE_URL, OFFLINE, replay)).ok
