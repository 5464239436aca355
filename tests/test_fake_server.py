"""The loopback fake DashScope (dashmagic.testing), exercised over real sockets with requests."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from dashmagic.testing import (
    EXCHANGES_PATH,
    FIGURE_PATH,
    GENERATION_PATH,
    PLOT_OSS_PATH,
    Exchange,
    FakeDashScope,
    Fault,
    format_event,
    load_exchanges,
    parse_sse,
    sse_events,
)
from dashmagic.testing.pytest_plugin import fake_dashscope  # noqa: F401 - the fixture under test

SEED_PAGE = Path(__file__).resolve().parents[1].parent / "shared" / "seed" / "plugin-call-examples.txt"
# The page's seven curl requests and response bodies, verbatim, carried so the checks below run on
# every machine; test_seed_excerpt_is_verbatim_from_the_seed_page proves where it came from.
SEED_EXCERPT = Path(__file__).resolve().parent / "data" / "plugin-call-examples.excerpt.txt"
EXCHANGES = {e.name: e for e in load_exchanges()}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeDashScope]:
    with FakeDashScope(api_key="sk-test") as server:
        yield server


@pytest.fixture
def raw_fake() -> Iterator[FakeDashScope]:
    """Answers with the documented JSON untouched."""
    with FakeDashScope(api_key="sk-test", rewrite_figure_urls=False) as server:
        yield server


def post(
    fake: FakeDashScope,
    body: Any,
    plugins: Any = None,
    *,
    stream: bool = False,
    key: str | None = "sk-test",
    headers: dict[str, str] | None = None,
    timeout: Any = 10,
    raw_body: bytes | None = None,
) -> requests.Response:
    sent: dict[str, str] = {"Content-Type": "application/json"}
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    if plugins is not None:
        sent["X-DashScope-Plugin"] = plugins if isinstance(plugins, str) else json.dumps(plugins)
    if stream:
        sent["X-DashScope-SSE"] = "enable"
    sent.update(headers or {})
    data = raw_body if raw_body is not None else json.dumps(body, ensure_ascii=False).encode("utf-8")
    return requests.post(
        fake.base_url + "/services/aigc/text-generation/generation",
        data=data,
        headers=sent,
        stream=stream,
        timeout=timeout,
    )


def post_exchange(fake: FakeDashScope, exchange: Exchange, **kwargs: Any) -> requests.Response:
    return post(fake, exchange.request, exchange.plugins, **kwargs)


def read_all(resp: requests.Response) -> bytes:
    return b"".join(resp.iter_content(chunk_size=None))


def events_of(resp: requests.Response) -> list[dict[str, Any]]:
    frames, rest = parse_sse(read_all(resp))
    assert rest == b""
    return [frame.json() for frame in frames]


def body_with(prompt: str, result_format: str | None = "message", **parameters: Any) -> dict[str, Any]:
    params = dict(parameters)
    if result_format:
        params["result_format"] = result_format
    return {
        "model": "qwen-plus",
        "input": {
            "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": prompt},
            ]
        },
        "parameters": params,
    }


def final_answer(exchange: Exchange) -> str:
    choice = exchange.response["output"]["choices"][0]
    text: str = choice["messages"][-1]["content"] if "messages" in choice else choice["message"]["content"]
    return text


# -- the transcription of the vendor page -----------------------------------------------------


def _seed_blocks(text: str) -> tuple[list[Any], list[Any], list[Any]]:
    """(plugin headers, request bodies, response bodies), in page order, found by scanning."""
    decoder = json.JSONDecoder()
    plugins = [json.loads(m[1]) for m in re.finditer(r"--header 'X-DashScope-Plugin: (\{.*?\})'", text)]
    bodies = [decoder.raw_decode(text, m.end())[0] for m in re.finditer(r"--data-raw '", text)]
    # Response blocks are the JSON documents whose opening brace stands alone on a line.
    responses = [decoder.raw_decode(text, m.start())[0] for m in re.finditer(r"(?m)^\{\s*$", text)]
    return plugins, bodies, responses


def _seed_excerpt(page: str) -> str:
    """The vendor page's curl commands and response blocks, byte for byte, in page order."""
    decoder = json.JSONDecoder()
    spans: list[tuple[int, int]] = []
    for m in re.finditer(r"(?m)^curl ", page):
        data = page.index("--data-raw '", m.start()) + len("--data-raw '")
        end = decoder.raw_decode(page, data)[1]
        assert page[end] == "'", page[m.start():end + 1]
        spans.append((m.start(), end + 1))
    spans += [(m.start(), decoder.raw_decode(page, m.start())[1]) for m in re.finditer(r"(?m)^\{\s*$", page)]
    return SEED_EXCERPT_HEADER + "\n\n".join(page[a:b] for a, b in sorted(spans)) + "\n"


SEED_EXCERPT_HEADER = (
    "# Verbatim excerpt of DashScope's documentation page of plugin call examples: its seven curl\n"
    "# requests and their response bodies, byte for byte, in page order (nothing else of the page).\n"
    "# tests/test_fake_server.py checks dashmagic/testing/exchanges.json and the fake's JSON against\n"
    "# it; in the development checkout it also checks that this file is exactly what _seed_excerpt()\n"
    "# takes from ../shared/seed/plugin-call-examples.txt.\n\n"
)


def test_seed_excerpt_is_verbatim_from_the_seed_page() -> None:
    """Provenance of the carried excerpt; the checks that use it run everywhere (below)."""
    if not SEED_PAGE.exists():
        pytest.skip(
            f"seed page not found at {SEED_PAGE} (only beside the development checkout): this checks "
            "only where tests/data/plugin-call-examples.excerpt.txt came from; the transcription and "
            "byte-for-byte tests run from that excerpt anyway"
        )
    page = SEED_PAGE.read_text(encoding="utf-8")
    assert SEED_EXCERPT.read_text(encoding="utf-8") == _seed_excerpt(page), (
        "regenerate: python -c 'import sys; sys.path.insert(0, \"tests\"); import test_fake_server as t; "
        "t.SEED_EXCERPT.write_text(t._seed_excerpt(t.SEED_PAGE.read_text(encoding=\"utf-8\")), encoding=\"utf-8\")'"
    )
    assert _seed_blocks(page) == _seed_blocks(SEED_EXCERPT.read_text(encoding="utf-8"))


def test_exchanges_json_equals_every_block_of_the_seed_page() -> None:
    plugins, bodies, responses = _seed_blocks(SEED_EXCERPT.read_text(encoding="utf-8"))
    stored = json.loads(EXCHANGES_PATH.read_text(encoding="utf-8"))
    assert len(responses) == len(bodies) == len(plugins) == len(stored) == 7
    assert [e["response"] for e in stored] == responses
    assert [e["request"] for e in stored] == bodies
    assert [e["plugins"] for e in stored] == plugins


def test_exchange_names_and_shape() -> None:
    assert list(EXCHANGES) == [
        "ocr",
        "calculator",
        "text_to_image",
        "hotel",
        "pdf_extracter",
        "code_interpreter_equation",
        "code_interpreter_plot",
    ]
    for exchange in EXCHANGES.values():
        assert exchange.request["parameters"] == {"result_format": "message", "seed": 42}
        assert exchange.prompt
    assert EXCHANGES["hotel"].plugins == {"haozhu_recommend_hotel": {}}


def test_json_indent_4_reproduces_the_seed_page_byte_for_byte() -> None:
    page = SEED_EXCERPT.read_bytes()
    with FakeDashScope(rewrite_figure_urls=False, json_indent=4) as fake:
        for exchange in EXCHANGES.values():
            assert post_exchange(fake, exchange).content in page


# -- non-streaming answers --------------------------------------------------------------------


@pytest.mark.parametrize("name", list(EXCHANGES))
def test_seed_exchange_non_streaming_is_the_documented_json(raw_fake: FakeDashScope, name: str) -> None:
    exchange = EXCHANGES[name]
    resp = post_exchange(raw_fake, exchange)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json() == exchange.response


def test_code_interpreter_exchanges_differ_by_prompt(raw_fake: FakeDashScope) -> None:
    plot = post_exchange(raw_fake, EXCHANGES["code_interpreter_plot"]).json()
    equation = post_exchange(raw_fake, EXCHANGES["code_interpreter_equation"]).json()
    assert plot["request_id"] == "47f1da7f-6833-9122-868c-c29cfa658728"
    assert equation["request_id"] == "f9a3c2e0-55ba-9e7f-b386-b9efe90003ac"


def test_ascii_escaped_body_and_padded_prompt_still_match(raw_fake: FakeDashScope) -> None:
    exchange = EXCHANGES["calculator"]
    body = json.loads(json.dumps(exchange.request))
    body["input"]["messages"][-1]["content"] = "  " + exchange.prompt + "\n"
    resp = post(raw_fake, None, exchange.plugins, raw_body=json.dumps(body).encode("ascii"))
    assert resp.json() == exchange.response


def test_list_form_content_matches_on_its_text_part(raw_fake: FakeDashScope) -> None:
    exchange = EXCHANGES["pdf_extracter"]
    assert isinstance(exchange.request["input"]["messages"][-1]["content"], list)
    assert post_exchange(raw_fake, exchange).json() == exchange.response


def test_plugin_set_is_part_of_the_match(raw_fake: FakeDashScope) -> None:
    exchange = EXCHANGES["calculator"]
    resp = post(raw_fake, exchange.request, {"calculator": {}, "ocr": {}})
    assert resp.json()["request_id"] != exchange.response["request_id"]


def test_figure_urls_are_rewritten_to_the_fake_and_served(fake: FakeDashScope) -> None:
    exchange = EXCHANGES["code_interpreter_plot"]
    body = post_exchange(fake, exchange).json()
    content = body["output"]["choices"][0]["messages"][1]["content"]
    url = re.fullmatch(r"!\[fig-001\]\((.*)\)", content)[1]  # type: ignore[index]
    assert url.startswith(fake.origin + PLOT_OSS_PATH + "?OSSAccessKeyId=")
    assert "&Expires=1700539477&Signature=" in url  # the signed-looking query is kept
    # Apart from the URL, the answer is the documented one.
    documented = json.dumps(exchange.response, ensure_ascii=False)
    assert json.dumps(body, ensure_ascii=False).replace(fake.origin + "/oss/", "https://") == documented
    image = requests.get(url, timeout=5)
    assert image.status_code == 200
    assert image.headers["Content-Type"] == "image/png"
    assert image.content.startswith(PNG_MAGIC)
    assert image.content == FIGURE_PATH.read_bytes()


def test_text_to_image_url_points_at_the_fake_and_is_expired(fake: FakeDashScope) -> None:
    exchange = EXCHANGES["text_to_image"]
    body = post_exchange(fake, exchange).json()
    plugin_content = json.loads(body["output"]["choices"][0]["messages"][1]["content"])  # still valid JSON
    url = plugin_content["url"]
    assert url.startswith(fake.origin + "/oss/dashscope-result-bj.oss-cn-beijing.aliyuncs.com/1d/44/")
    assert "?Expires=1700623514&OSSAccessKeyId=" in url
    resp = requests.get(url, timeout=5)
    assert resp.status_code == 403
    assert resp.headers["Content-Type"] == "application/xml"
    assert b"<Error><Code>AccessDenied</Code><Message>Request has expired.</Message></Error>" in resp.content


def test_unsigned_input_urls_are_not_rewritten(fake: FakeDashScope) -> None:
    exchange = EXCHANGES["ocr"]
    assert post_exchange(fake, exchange).json() == exchange.response


def test_figure_file_is_a_small_png() -> None:
    data = FIGURE_PATH.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) < 40_000
    assert b"Software" not in data  # no tool/version stamp, so regeneration is deterministic


def test_make_figures_is_deterministic(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from dashmagic.testing.make_figures import render_plot

    first = render_plot(tmp_path / "a.png").read_bytes()
    second = render_plot(tmp_path / "b.png").read_bytes()
    assert first == second and first.startswith(PNG_MAGIC) and len(first) < 40_000


# -- streaming --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(EXCHANGES))
def test_seed_exchange_streams_growing_snapshots(raw_fake: FakeDashScope, name: str) -> None:
    exchange = EXCHANGES[name]
    resp = post_exchange(raw_fake, exchange, stream=True)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/event-stream;charset=UTF-8"
    assert resp.headers["Connection"] == "close"
    assert "Content-Length" not in resp.headers
    body = read_all(resp)
    assert b"[DONE]" not in body
    frames, rest = parse_sse(body)
    assert rest == b""
    assert [f.id for f in frames] == [str(i) for i in range(1, len(frames) + 1)]
    assert {f.event for f in frames} == {"result"}
    assert all(f.comments == ("HTTP_STATUS/200",) for f in frames)
    assert all("\n" not in (f.data or "") for f in frames)
    payloads = [f.json() for f in frames]
    assert payloads[-1] == exchange.response
    assert [p["output"]["choices"][0]["finish_reason"] for p in payloads[:-1]] == ["null"] * (len(payloads) - 1)
    assert {p["request_id"] for p in payloads} == {exchange.response["request_id"]}
    # The answer only ever grows.
    answers = [a for a in (_answer_so_far(p, exchange) for p in payloads) if a is not None]
    assert answers and answers[-1] == final_answer(exchange)
    assert all(answers[-1].startswith(a) for a in answers)
    tokens = [p["usage"]["output_tokens"] for p in payloads]
    assert tokens == sorted(tokens)


def _answer_so_far(payload: dict[str, Any], exchange: Exchange) -> str | None:
    """The final answer's text in a snapshot, or None while the trace has not reached it."""
    choice = payload["output"]["choices"][0]
    documented = exchange.response["output"]["choices"][0].get("messages", [])
    if "message" not in choice and len(choice["messages"]) != len(documented):
        return None
    text: str = choice["message"]["content"] if "message" in choice else choice["messages"][-1]["content"]
    return text


def _last_content(payload: dict[str, Any]) -> Any:
    choice = payload["output"]["choices"][0]
    return (choice["messages"][-1] if "messages" in choice else choice["message"]).get("content")


def test_plugin_trace_streams_call_then_result_then_answer(raw_fake: FakeDashScope) -> None:
    exchange = EXCHANGES["calculator"]
    documented = exchange.response["output"]["choices"][0]["messages"]
    payloads = events_of(post_exchange(raw_fake, exchange, stream=True))
    snapshots = [p["output"]["choices"][0]["messages"] for p in payloads]
    assert snapshots[0] == documented[:1]  # the plugin_call with its Thought
    assert snapshots[1] == documented[:2]  # + the plugin result
    assert snapshots[2][:2] == documented[:2]
    assert snapshots[2][2]["content"] == documented[2]["content"][:8]  # chunk_chars defaults to 8
    assert len(payloads) == 2 + -(-len(documented[2]["content"]) // 8)


# The real service refuses deltas with the legacy code_interpreter plugin (a real 400,
# protocol-current.md §2), so those two exchanges are checked for the refusal instead.
LEGACY_CODE = [n for n, e in EXCHANGES.items() if "code_interpreter" in e.plugins]


@pytest.mark.parametrize("name", [n for n in EXCHANGES if n not in LEGACY_CODE])
def test_incremental_output_deltas_concatenate_to_the_answer(raw_fake: FakeDashScope, name: str) -> None:
    exchange = EXCHANGES[name]
    body = json.loads(json.dumps(exchange.request))
    body["parameters"]["incremental_output"] = True
    payloads = events_of(post(raw_fake, body, exchange.plugins, stream=True))
    choices = [p["output"]["choices"][0] for p in payloads]
    assert [c["finish_reason"] for c in choices] == ["null"] * (len(choices) - 1) + ["stop"]
    assert payloads[-1]["usage"] == exchange.response["usage"]
    if "messages" in exchange.response["output"]["choices"][0]:
        documented = exchange.response["output"]["choices"][0]["messages"]
        deltas = [c["messages"] for c in choices]
        assert all(len(d) == 1 for d in deltas)
        assert deltas[0][0] == documented[0] and deltas[1][0] == documented[1]  # whole, once
        assert "".join(d[0]["content"] for d in deltas[2:]) == documented[2]["content"]
        assert all(d[0]["role"] == "assistant" and "plugin_call" not in d[0] for d in deltas[2:])
    else:
        assert "".join(c["message"]["content"] for c in choices) == final_answer(exchange)


@pytest.mark.parametrize("name", LEGACY_CODE)
def test_incremental_output_with_the_code_interpreter_plugin_is_refused(raw_fake: FakeDashScope, name: str) -> None:
    exchange = EXCHANGES[name]
    body = json.loads(json.dumps(exchange.request))
    body["parameters"]["incremental_output"] = True
    resp = post(raw_fake, body, exchange.plugins, stream=True)
    assert resp.status_code == 400 and resp.headers["Content-Type"].startswith("application/json")
    assert resp.json()["code"] == "InvalidParameter"
    assert resp.json()["message"] == "Plugins=[['code_interpreter']] don't support incremental_output"


def test_events_arrive_one_by_one() -> None:
    with FakeDashScope(event_delay=0.2, chunk_chars=1000, rewrite_figure_urls=False) as fake:
        start = time.monotonic()
        resp = post_exchange(fake, EXCHANGES["calculator"], stream=True)
        arrivals = [time.monotonic() - start for line in resp.iter_lines() if line.startswith(b"id:")]
    assert len(arrivals) == 3, arrivals  # call, result, whole answer
    # Sent at 0, 0.2 and 0.4 s: each must arrive when sent, not be held back until the end.
    assert arrivals[2] >= 0.38, arrivals
    assert arrivals[0] < arrivals[2] - 0.3, arrivals
    assert arrivals[0] + 0.15 < arrivals[1] < arrivals[2] - 0.15, arrivals


def test_close_delimited_framing_is_available() -> None:
    with FakeDashScope(sse_framing="close", rewrite_figure_urls=False) as fake:
        resp = post_exchange(fake, EXCHANGES["calculator"], stream=True)
        assert "Transfer-Encoding" not in resp.headers
        assert events_of(resp)[-1] == EXCHANGES["calculator"].response


def test_stream_ignores_a_stream_field_in_the_body(raw_fake: FakeDashScope) -> None:
    body = json.loads(json.dumps(EXCHANGES["calculator"].request))
    body["parameters"]["stream"] = True  # not how DashScope streams: only the header counts
    resp = post(raw_fake, body, EXCHANGES["calculator"].plugins)
    assert resp.headers["Content-Type"].startswith("application/json")


# -- sse_events / format_event as pure functions ----------------------------------------------


def test_format_event_exact_bytes() -> None:
    assert format_event(3, {"a": "é"}) == 'id:3\nevent:result\n:HTTP_STATUS/200\ndata:{"a":"é"}\n\n'.encode()
    assert (
        format_event(1, "x", "error", 500, status_line=True)
        == b"id:1\nevent:error\n:HTTP_STATUS/500\nstatus:500\ndata:x\n\n"
    )


def test_sse_events_text_format_and_odd_payloads() -> None:
    response = {
        "output": {"text": "abcdefghij", "finish_reason": "stop"},
        "usage": {"input_tokens": 1, "output_tokens": 5, "total_tokens": 6},
        "request_id": "r",
    }
    snaps = sse_events(response, chunk_chars=4)
    assert [e["output"]["text"] for e in snaps] == ["abcd", "abcdefgh", "abcdefghij"]
    assert [e["output"]["finish_reason"] for e in snaps] == ["null", "null", "stop"]
    deltas = sse_events(response, chunk_chars=4, incremental=True)
    assert "".join(e["output"]["text"] for e in deltas) == "abcdefghij"
    hostile = {"output": {"choices": "nope"}, "request_id": "r"}
    assert sse_events(hostile) == [hostile]
    empty = {"output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": ""}}]}}
    assert sse_events(empty) == [empty]
    with pytest.raises(ValueError):
        sse_events(response, chunk_chars=0)


def test_sse_events_walks_multi_step_traces_generically() -> None:
    call = {"role": "assistant", "content": "Thought: a", "plugin_call": {"name": "calculator", "arguments": "{}"}}
    result = {
        "role": "plugin",
        "name": "calculator",
        "content": "1",
        "status": {"code": 200, "name": "Success", "message": "ok"},
    }
    response = {
        "output": {
            "choices": [
                {
                    "finish_reason": "stop",
                    "messages": [
                        call,
                        result,
                        dict(call, content="Thought: b"),
                        dict(result, content="2"),
                        {"role": "assistant", "content": "Final Answer: 12"},
                    ],
                }
            ]
        },
        "request_id": "r",
    }
    snaps = sse_events(response, chunk_chars=10)
    assert [len(e["output"]["choices"][0]["messages"]) for e in snaps] == [1, 2, 3, 4, 5, 5]
    assert snaps[-1] == response
    deltas = sse_events(response, chunk_chars=10, incremental=True)
    assert [d["output"]["choices"][0]["messages"][0]["content"] for d in deltas] == [
        "Thought: a",
        "1",
        "Thought: b",
        "2",
        "Final Answ",
        "er: 12",
    ]


# -- authentication, plugin header, body checks ------------------------------------------------


@pytest.mark.parametrize("key", [None, "sk-wrong"])
def test_missing_or_wrong_key_is_401(fake: FakeDashScope, key: str | None) -> None:
    resp = post_exchange(fake, EXCHANGES["calculator"], key=key)
    assert resp.status_code == 401
    body = resp.json()
    assert body["code"] == "InvalidApiKey" and body["message"] == "Invalid API-key provided."
    assert UUID_RE.match(body["request_id"])


def test_header_names_are_case_insensitive(raw_fake: FakeDashScope) -> None:
    exchange = EXCHANGES["calculator"]
    resp = post(
        raw_fake,
        exchange.request,
        key=None,
        stream=False,
        headers={
            "authorization": "Bearer sk-test",
            "x-dashscope-plugin": '{"calculator":{}}',
            "x-dashscope-sse": "enable",
        },
    )
    assert events_of(resp)[-1] == exchange.response


def test_unknown_plugin_is_403(fake: FakeDashScope) -> None:
    resp = post(fake, body_with("hi"), {"quark_search": {}})
    assert resp.status_code == 403
    assert resp.json()["code"] == "InvalidPlugin.AccessDenied"
    assert resp.json()["message"] == 'Plugin ["quark_search"] access denied.'


def test_allowed_plugins_can_be_narrowed() -> None:
    with FakeDashScope(allowed_plugins={"calculator"}) as fake:
        assert post_exchange(fake, EXCHANGES["calculator"]).status_code == 200
        resp = post_exchange(fake, EXCHANGES["ocr"])
        assert resp.status_code == 403 and resp.json()["message"] == 'Plugin ["ocr"] access denied.'


@pytest.mark.parametrize("header", ["{not json", '["ocr"]', '"ocr"'])
def test_malformed_plugin_header_is_400(fake: FakeDashScope, header: str) -> None:
    resp = post(fake, body_with("hi"), header)
    assert resp.status_code == 400 and resp.json()["code"] == "InvalidParameter"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"input": {"prompt": "hi"}}, "BadRequest.EmptyModel"),
        ({"model": "", "input": {"prompt": "hi"}}, "BadRequest.EmptyModel"),
        ({"model": "qwen-plus", "parameters": {}}, "BadRequest.EmptyInput"),
        ({"model": "qwen-plus", "input": {}}, "BadRequest.EmptyInput"),
        (["not", "an", "object"], "InvalidParameter"),
    ],
)
def test_body_checks(fake: FakeDashScope, body: Any, code: str) -> None:
    resp = post(fake, body, {"calculator": {}})
    assert resp.status_code == 400 and resp.json()["code"] == code


def test_non_json_body_is_400(fake: FakeDashScope) -> None:
    resp = post(fake, None, raw_body=b"\xff not json")
    assert resp.status_code == 400 and resp.json()["code"] == "InvalidParameter"


def test_trailing_slash_and_unknown_routes(raw_fake: FakeDashScope) -> None:
    exchange = EXCHANGES["calculator"]
    resp = requests.post(
        raw_fake.base_url + "/services/aigc/text-generation/generation/",
        json=exchange.request,
        headers={"Authorization": "Bearer sk-test", "X-DashScope-Plugin": '{"calculator":{}}'},
        timeout=5,
    )
    assert resp.json() == exchange.response
    assert requests.post(raw_fake.base_url + "/services/nope", json={}, timeout=5).status_code == 404
    assert requests.get(raw_fake.origin + GENERATION_PATH, timeout=5).status_code == 405


# -- default and queued replies ----------------------------------------------------------------


def test_default_reply_when_nothing_is_scripted(fake: FakeDashScope) -> None:
    prompt = "Tell me something nobody scripted, in a sentence that is longer than sixty characters."
    body = post(fake, body_with(prompt), {"calculator": {}}).json()
    content = body["output"]["choices"][0]["message"]["content"]
    assert content == f"(fake DashScope) no scripted answer for: {prompt[:60]}"
    assert body["output"]["choices"][0]["finish_reason"] == "stop"
    assert UUID_RE.match(body["request_id"])
    assert body["usage"]["total_tokens"] == body["usage"]["input_tokens"] + body["usage"]["output_tokens"]


def test_default_reply_honours_text_result_format(fake: FakeDashScope) -> None:
    body = post(fake, body_with("hello", result_format=None)).json()
    assert body["output"]["text"].startswith("(fake DashScope) no scripted answer for: hello")


def test_queued_replies_come_first_fifo_and_get_a_request_id(raw_fake: FakeDashScope) -> None:
    first = {"output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": "one"}}]}}
    raw_fake.queue_reply(first)
    raw_fake.queue_reply(
        {"code": "Arrearage", "message": "Access denied, plesase make sure your account is in good standing."},
        status=400,
    )
    exchange = EXCHANGES["calculator"]
    one = post_exchange(raw_fake, exchange).json()
    assert one["output"] == first["output"] and UUID_RE.match(one["request_id"])
    two = post_exchange(raw_fake, exchange)
    assert two.status_code == 400 and two.json()["code"] == "Arrearage" and "request_id" in two.json()
    assert post_exchange(raw_fake, exchange).json() == exchange.response  # queue drained


def test_queued_reply_is_streamed_and_rewritten(fake: FakeDashScope) -> None:
    url = "https://dashscope-x.oss-cn-beijing.aliyuncs.com/a/b.png?Expires=1&Signature=abc"
    fake.queue_reply(
        {
            "output": {
                "choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": f"![x]({url})"}}]
            }
        }
    )
    payloads = events_of(post(fake, body_with("anything"), stream=True))
    assert (
        _last_content(payloads[-1])
        == f"![x]({fake.origin}/oss/dashscope-x.oss-cn-beijing.aliyuncs.com/a/b.png?Expires=1&Signature=abc)"
    )


# -- recording ---------------------------------------------------------------------------------


def test_requests_are_recorded(fake: FakeDashScope) -> None:
    exchange = EXCHANGES["pdf_extracter"]
    post_exchange(fake, exchange, stream=True).close()
    requests.get(fake.url_for(PLOT_OSS_PATH) + "?x=1", timeout=5)
    recorded = fake.requests
    assert [(r.method, r.path) for r in recorded] == [("POST", GENERATION_PATH), ("GET", PLOT_OSS_PATH + "?x=1")]
    first = recorded[0]
    assert "X-DashScope-Plugin" in first.headers  # names as sent
    assert first.header("x-dashscope-plugin") == '{"pdf_extracter": {}}'
    assert first.header("AUTHORIZATION") == "Bearer sk-test"
    assert first.plugins == {"pdf_extracter": {}} and first.streaming
    assert first.json == exchange.request
    assert first.body == json.dumps(exchange.request, ensure_ascii=False).encode("utf-8")
    assert fake.generation_requests == recorded[:1]
    fake.clear()
    assert fake.requests == []


# -- served files ------------------------------------------------------------------------------


def test_add_file_serves_anything_including_redirects(fake: FakeDashScope) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
    svg_url = fake.add_file("/oss/evil/a.svg", svg, "image/svg+xml")
    assert requests.get(svg_url, timeout=5).content == svg
    html_url = fake.add_file("/oss/evil/b.png", b"<html>not a png</html>", "image/png")
    assert requests.get(html_url, timeout=5).headers["Content-Type"] == "image/png"
    hop = fake.add_file(
        "/oss/evil/c.png",
        b"",
        "text/plain",
        status=302,
        headers={"Location": "http://169.254.169.254/latest/meta-data/"},
    )
    resp = requests.get(hop, allow_redirects=False, timeout=5)
    assert resp.status_code == 302 and resp.headers["Location"] == "http://169.254.169.254/latest/meta-data/"
    head = requests.head(fake.url_for(PLOT_OSS_PATH), timeout=5)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == FIGURE_PATH.stat().st_size
    missing = requests.get(fake.url_for("/oss/nowhere/x.png"), timeout=5)
    assert missing.status_code == 404 and b"<Code>NoSuchKey</Code>" in missing.content


# -- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (Fault.THROTTLE, 429, "Throttling.RateQuota"),
        ("access_denied", 403, "InvalidPlugin.AccessDenied"),
        ("server_error", 500, "InternalError"),
    ],
)
def test_json_error_faults(raw_fake: FakeDashScope, fault: Any, status: int, code: str) -> None:
    raw_fake.inject(fault)
    resp = post_exchange(raw_fake, EXCHANGES["calculator"], stream=True)  # up-front errors are JSON
    assert resp.status_code == status and resp.headers["Content-Type"].startswith("application/json")
    assert resp.json()["code"] == code and UUID_RE.match(resp.json()["request_id"])
    if code == "Throttling.RateQuota":
        assert resp.json()["message"] == "Requests rate limit exceeded, please try again later."
    if code == "InvalidPlugin.AccessDenied":
        assert resp.json()["message"] == 'Plugin ["calculator"] access denied.'
    # One use only: the next request is normal again.
    assert post_exchange(raw_fake, EXCHANGES["calculator"]).json() == EXCHANGES["calculator"].response


def test_faults_are_fifo_and_counted(fake: FakeDashScope) -> None:
    fake.inject("throttle", times=2)
    fake.inject("server_error")
    statuses = [post_exchange(fake, EXCHANGES["calculator"]).status_code for _ in range(4)]
    assert statuses == [429, 429, 500, 200]


def test_unknown_fault_name_lists_the_valid_ones(fake: FakeDashScope) -> None:
    with pytest.raises(ValueError, match="throttle"):
        fake.inject("meteor_strike")


def test_bad_gateway_html(fake: FakeDashScope) -> None:
    fake.inject("bad_gateway_html")
    resp = post_exchange(fake, EXCHANGES["calculator"])
    assert resp.status_code == 502 and resp.headers["Content-Type"] == "text/html"
    assert resp.content.startswith(b"<html>")


def test_unavailable_sends_retry_after(fake: FakeDashScope) -> None:
    fake.inject("unavailable", retry_after=7)
    resp = post_exchange(fake, EXCHANGES["calculator"])
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "7"
    assert resp.json()["code"] == "ServiceUnavailable"


def test_reset_before_response(fake: FakeDashScope) -> None:
    fake.inject("reset_before_response")
    with pytest.raises(requests.ConnectionError):
        post_exchange(fake, EXCHANGES["calculator"])
    assert len(fake.requests) == 1  # the request was read and recorded first


def test_reset_mid_stream(raw_fake: FakeDashScope) -> None:
    raw_fake.inject("reset_mid_stream", after_events=2)
    resp = post_exchange(raw_fake, EXCHANGES["calculator"], stream=True)
    assert resp.status_code == 200
    received = b""
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        for chunk in resp.iter_content(chunk_size=None):
            received += chunk
    frames, rest = parse_sse(received)
    assert [f.id for f in frames] == ["1", "2"] and rest == b""


def test_stall_trips_a_client_read_timeout_mid_stream(raw_fake: FakeDashScope) -> None:
    raw_fake.inject("stall", seconds=2)
    resp = post_exchange(raw_fake, EXCHANGES["calculator"], stream=True, timeout=(2, 0.3))
    lines = resp.iter_lines()
    assert next(lines) == b"id:1"
    with pytest.raises(requests.ConnectionError):  # requests wraps the streaming ReadTimeoutError
        for _ in lines:
            pass


def test_stall_delays_a_json_answer(raw_fake: FakeDashScope) -> None:
    raw_fake.inject("stall", seconds=2)
    with pytest.raises(requests.ReadTimeout):
        post_exchange(raw_fake, EXCHANGES["calculator"], timeout=(2, 0.3))


def test_slow_delays_the_headers_then_answers(raw_fake: FakeDashScope) -> None:
    raw_fake.inject("slow", seconds=0.3)
    start = time.monotonic()
    resp = post_exchange(raw_fake, EXCHANGES["calculator"])
    assert time.monotonic() - start >= 0.3
    assert resp.json() == EXCHANGES["calculator"].response
    raw_fake.inject("slow", seconds=2)
    with pytest.raises(requests.ReadTimeout):
        post_exchange(raw_fake, EXCHANGES["calculator"], timeout=(2, 0.2))


def test_garbage_json(fake: FakeDashScope) -> None:
    fake.inject("garbage_json", times=2)
    resp = post_exchange(fake, EXCHANGES["calculator"])
    assert resp.status_code == 200 and resp.content == b'{"output": [not json'
    with pytest.raises(ValueError):
        resp.json()
    frames, _ = parse_sse(read_all(post_exchange(fake, EXCHANGES["calculator"], stream=True)))
    assert [f.data for f in frames] == ['{"output": [not json']


def test_cut_mid_event_ends_cleanly_without_the_blank_line(raw_fake: FakeDashScope) -> None:
    raw_fake.inject("cut_mid_event")
    body = read_all(post_exchange(raw_fake, EXCHANGES["calculator"], stream=True))  # no exception
    assert not body.endswith(b"\n\n")
    frames, rest = parse_sse(body)
    assert [f.id for f in frames] == ["1", "2"]
    assert rest.startswith(b"id:3\nevent:result\n")


def test_error_event_first(fake: FakeDashScope) -> None:
    fake.inject("error_event_first")
    resp = post_exchange(fake, EXCHANGES["calculator"], stream=True)
    assert resp.status_code == 200 and resp.headers["x-dashscope-finished"] == "true"
    body = read_all(resp)
    assert body.startswith(b"id:1\nevent:error\n:HTTP_STATUS/400\ndata:{")
    frames, rest = parse_sse(body)
    assert len(frames) == 1 and rest == b""
    assert frames[0].json()["code"] == "DataInspectionFailed"
    assert frames[0].json()["message"] == "Input or output data may contain inappropriate content."


@pytest.mark.parametrize("status_line", [False, True])
def test_error_event_mid(raw_fake: FakeDashScope, status_line: bool) -> None:
    raw_fake.inject("error_event_mid", after_events=3, status_line=status_line)
    frames, rest = parse_sse(read_all(post_exchange(raw_fake, EXCHANGES["calculator"], stream=True)))
    assert rest == b""
    assert [f.event for f in frames] == ["result"] * 3 + ["error"]
    assert frames[-1].id == "4" and frames[-1].comments == ("HTTP_STATUS/500",)
    assert frames[-1].status == ("500" if status_line else None)
    assert frames[-1].json()["code"] == "InternalError"


def test_sse_only_faults_answer_with_sse_even_to_a_json_request(fake: FakeDashScope) -> None:
    fake.inject("error_event_first")
    resp = post_exchange(fake, EXCHANGES["calculator"])
    assert resp.headers["Content-Type"].startswith("text/event-stream")


def test_huge_response(fake: FakeDashScope) -> None:
    fake.inject("huge_response", times=2, size=10 * 1024 * 1024)
    body = post_exchange(fake, EXCHANGES["calculator"]).json()
    assert len(body["output"]["choices"][0]["message"]["content"]) == 10 * 1024 * 1024
    frames, rest = parse_sse(read_all(post_exchange(fake, EXCHANGES["calculator"], stream=True)))
    assert rest == b"" and len(frames) == 2
    assert len(frames[-1].data or "") > 10 * 1024 * 1024
    assert frames[-1].json()["output"]["choices"][0]["finish_reason"] == "stop"


def test_invalid_utf8(fake: FakeDashScope) -> None:
    fake.inject("invalid_utf8", times=2)
    for stream in (False, True):
        resp = post_exchange(fake, EXCHANGES["calculator"], stream=stream)
        data = read_all(resp)
        assert resp.status_code == 200 and b"\xff\xfe" in data
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")


def test_stop_does_not_wait_for_a_stalled_handler() -> None:
    fake = FakeDashScope(rewrite_figure_urls=False).start()
    fake.inject("stall", seconds=30)
    resp = post_exchange(fake, EXCHANGES["calculator"], stream=True, timeout=5)
    assert next(resp.iter_lines()) == b"id:1"
    start = time.monotonic()
    fake.stop()
    assert time.monotonic() - start < 2
    resp.close()


# -- packaging: light import, CLI ---------------------------------------------------------------


def test_import_is_light() -> None:
    heavy = "('requests', 'matplotlib', 'numpy', 'pytest')"
    code = f"import sys, dashmagic.testing; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
    assert out.stdout.strip() == "[]"


def test_cli_prints_the_base_url_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dashmagic.testing", "--quiet", "--event-delay", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        hint = proc.stdout.readline()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v1", base_url)
        assert f"DASHSCOPE_HTTP_BASE_URL={base_url}" in hint and "DASHSCOPE_API_KEY=sk-test" in hint
        exchange = EXCHANGES["calculator"]
        resp = requests.post(
            base_url + "/services/aigc/text-generation/generation",
            json=exchange.request,
            timeout=5,
            headers={"Authorization": "Bearer sk-test", "X-DashScope-Plugin": '{"calculator":{}}'},
        )
        assert resp.json()["request_id"] == exchange.response["request_id"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_pytest_plugin_fixture_is_a_started_fake(fake_dashscope: FakeDashScope) -> None:  # noqa: F811
    assert fake_dashscope.api_key == "sk-test"
    assert requests.get(fake_dashscope.url_for(PLOT_OSS_PATH), timeout=5).status_code == 200
