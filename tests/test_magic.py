"""%%dashscope in a real InteractiveShell against the loopback fake: outputs, flags, config."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import warnings

import pytest
from IPython.utils.capture import capture_output

from dashmagic._constants import DEFAULT_IMAGE_HOSTS
from dashmagic.errors import AuthenticationError, ConfigError, Interrupted, RateLimitError
from dashmagic.magic import DashScopeMagics
from dashmagic.trace import Trace

from _seed import BY_NAME, NAMES, files, user_prompt


class FakeKernel:
    """What `_in_kernel`/`_can_prompt` look at on a Jupyter shell: `shell.kernel`, `_allow_stdin`."""

    def __init__(self, allow_stdin: bool = False) -> None:
        self._allow_stdin = allow_stdin


@pytest.fixture
def kernel_shell(shell):
    shell.kernel = FakeKernel()
    yield shell
    del shell.kernel


def magics(shell) -> DashScopeMagics:
    return shell.magics_manager.registry["DashScopeMagics"]


def cell(shell, line: str, body: str | None):
    """Run the magic the way a notebook cell does; return (captured, error_in_exec)."""
    source = f"%%dashscope {line}\n{body}" if body is not None else f"%dashscope {line}"
    with capture_output() as cap:
        result = shell.run_cell(source)
    return cap, result.error_in_exec


def seed_line(name: str, extra: str = "") -> tuple[str, str]:
    exchange = BY_NAME[name]
    line = f"--plugins {','.join(exchange.plugins)} --seed 42 " + " ".join(f"--file {f}" for f in files(exchange))
    return f"{line} {extra}".strip(), user_prompt(exchange)


# -- loading ---------------------------------------------------------------------------------
def test_load_is_cheap_and_imports_no_requests_or_widgets() -> None:
    code = (
        "import sys\nfrom IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\nip.run_line_magic('load_ext', 'dashmagic')\n"
        "print(sorted(m for m in ('requests', 'ipywidgets', 'markdown_it', 'nh3') if m in sys.modules))\n"
        "print('dashscope' in ip.magics_manager.magics['cell'], 'dashscope' in ip.magics_manager.magics['line'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "True True"


def test_unload_and_reload_leave_no_stale_state(shell) -> None:
    first = magics(shell)
    shell.run_line_magic("config", "DashScopeMagics.model = 'qwen-max'")
    shell.run_line_magic("unload_ext", "dashmagic")
    assert "dashscope" not in shell.magics_manager.magics["cell"]
    assert "dashscope_reset" not in shell.magics_manager.magics["line"]
    assert "DashScopeMagics" not in shell.magics_manager.registry
    assert first not in shell.configurables
    shell.run_line_magic("load_ext", "dashmagic")
    second = magics(shell)
    assert second is not first and second in shell.configurables
    assert sum(isinstance(c, DashScopeMagics) for c in shell.configurables) == 1
    # %config values live in the shell's config, so they survive a reload as users expect.
    assert second.model == "qwen-max"
    shell.run_line_magic("reload_ext", "dashmagic")
    assert sum(isinstance(c, DashScopeMagics) for c in shell.configurables) == 1
    shell.config.DashScopeMagics.pop("model", None)


def test_help_shows_flags_and_examples(shell) -> None:
    doc = DashScopeMagics.dashscope.__doc__
    for flag in ("--plugins", "--model", "--system", "--seed", "--file", "--param", "--stream", "--no-stream",
                 "--out", "--chat", "--dry-run", "--timeout", "--no-interpolate", "--record", "--replay"):
        assert flag in doc
    assert "Examples" in doc and "画一个y=x^2的函数图" in doc


# -- the seven exchanges, rendered -------------------------------------------------------------
@pytest.mark.parametrize("streaming", [False, True], ids=["no-stream", "stream"])
@pytest.mark.parametrize("name", NAMES)
def test_seed_exchange_renders_as_one_bundle(fake_env, kernel_shell, name: str, streaming: bool) -> None:
    line, body = seed_line(name, "--stream" if streaming else "--no-stream")
    cap, error = cell(kernel_shell, line, body)
    assert error is None, cap.stdout
    outputs = cap.outputs
    final = outputs[-1]
    assert set(final.data) == {"text/plain", "text/html"}
    html, text = final.data["text/html"], final.data["text/plain"]
    assert 'class="dashmagic-trace' in html
    exchange = BY_NAME[name]
    assert exchange.response["request_id"] in html and exchange.response["request_id"] in text
    assert final.metadata["dashmagic"]["status"] == "complete"
    assert final.metadata["dashmagic"]["request_id"] == exchange.response["request_id"]
    # One display, updated in place: the first output carries the display id, the rest are updates.
    display_id = outputs[0].transient["display_id"]
    assert all(o.update and o.transient["display_id"] == display_id for o in outputs[1:])
    if streaming:
        assert len(outputs) >= 3  # waiting, at least one partial, final
    assert "Signature=" not in html and "OSSAccessKeyId" not in html and "Signature=" not in text


def test_live_updates_are_throttled(fake_env, kernel_shell) -> None:
    fake_env.chunk_chars = 1  # ~100 events for the hotel answer
    line, body = seed_line("hotel", "--stream")
    kernel_shell.run_line_magic("config", "DashScopeMagics.update_interval = 10.0")
    try:
        cap, error = cell(kernel_shell, line, body)
    finally:
        kernel_shell.run_line_magic("config", "DashScopeMagics.update_interval = 0.1")
    assert error is None
    # waiting + first event + final: the throttle held back everything in between.
    assert len(cap.outputs) == 3
    assert magics(kernel_shell).last_display.updates == 3


def test_terminal_shell_prints_only_the_final_trace(fake_env, shell) -> None:
    line, body = seed_line("calculator", "--stream")
    cap, error = cell(shell, line, body)
    assert error is None
    assert len(cap.outputs) == 1 and not cap.outputs[0].update
    assert "12345 * 98765 = 1219253925" in cap.outputs[0].data["text/plain"]


def test_line_magic(fake_env, shell) -> None:
    cap, error = cell(shell, "--plugins calculator --seed 42 12345*98765是多少", None)
    assert error is None and "1219253925" in cap.outputs[-1].data["text/plain"]
    assert fake_env.generation_requests[-1].json["input"]["messages"][-1]["content"] == "12345*98765是多少"


def test_magic_returns_nothing_and_out_stores_the_trace(fake_env, shell) -> None:
    line, body = seed_line("code_interpreter_equation", "--out dm_t")
    with capture_output() as cap:
        result = shell.run_cell(f"%%dashscope {line}\n{body}")
    assert result.result is None and len(cap.outputs) == 1  # rendered once, not also as Out[]
    trace = shell.user_ns["dm_t"]
    assert isinstance(trace, Trace) and trace.plugin_results[0].view.outputs[0].text == "(33, 67)"


# -- flags --------------------------------------------------------------------------------------
def test_model_system_seed_param_flags(fake_env, shell) -> None:
    _, error = cell(shell, '--model qwen-max --system "Be brief." --seed 7 --param temperature=0.2 '
                           '--param \'stop=["x"]\' --param tag=plain', "hello")
    assert error is None
    sent = fake_env.generation_requests[-1].json
    assert sent["model"] == "qwen-max"
    assert sent["input"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["parameters"] == {"result_format": "message", "seed": 7, "temperature": 0.2, "stop": ["x"], "tag": "plain"}


def test_file_flag_makes_list_content(fake_env, shell) -> None:
    line, body = seed_line("pdf_extracter")
    cap, error = cell(shell, line, body)
    assert error is None
    assert fake_env.generation_requests[-1].json == BY_NAME["pdf_extracter"].request
    assert "QWEN_TECHNICAL_REPORT.pdf" in cap.outputs[-1].data["text/html"]


def test_unknown_plugin_is_sent_with_a_warning(fake_env, shell) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, error = cell(shell, "--plugins calculator,weather", "x")
    assert any("weather" in str(w.message) and "code_interpreter" in str(w.message) for w in caught)
    assert json.loads(fake_env.generation_requests[-1].header("X-DashScope-Plugin")) == {"calculator": {}, "weather": {}}
    assert error is not None and error.code == "InvalidPlugin.AccessDenied"  # the fake's account lacks it


def test_stream_flags_choose_the_sse_header(fake_env, shell) -> None:
    cell(shell, "--stream", "a")
    assert fake_env.generation_requests[-1].header("X-DashScope-SSE") == "enable"
    cell(shell, "--no-stream", "a")
    assert fake_env.generation_requests[-1].header("X-DashScope-SSE") is None


def test_chat_sends_earlier_turns_with_plugin_messages(fake_env, shell) -> None:
    line, body = seed_line("calculator", "--chat")
    cell(shell, line, body)
    cell(shell, "--chat --plugins calculator", "再加1")
    sent = fake_env.generation_requests[-1].json["input"]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "plugin", "assistant", "user"]
    assert sent[1]["content"] == body and sent[2]["plugin_call"]["name"] == "calculator"
    cell(shell, "--plugins calculator", "no chat")  # a cell without --chat neither sends nor extends
    assert len(fake_env.generation_requests[-1].json["input"]["messages"]) == 2
    with capture_output() as cap:
        shell.run_line_magic("dashscope_reset", "")
    assert "2 turns forgotten" in cap.stdout
    cell(shell, "--chat", "fresh")
    assert len(fake_env.generation_requests[-1].json["input"]["messages"]) == 2


def test_dry_run_shows_the_request_and_sends_nothing(fake_env, shell, monkeypatch) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-canary-dry-run-0000")
    cap, error = cell(shell, "--plugins code_interpreter --dry-run --seed 42", "画一个y=x^2的函数图")
    assert error is None and fake_env.generation_requests == []
    text = cap.outputs[0].data["text/plain"]
    assert f"POST {fake_env.base_url}/services/aigc/text-generation/generation" in text
    assert 'X-DashScope-Plugin: {"code_interpreter":{}}' in text
    assert "Authorization: Bearer <your key, masked>" in text
    assert '"seed": 42' in text and "画一个y=x^2的函数图" in cap.outputs[0].data["text/html"]
    assert "canary" not in str(cap.outputs[0].data)


def test_dry_run_works_without_a_key(shell) -> None:
    cap, error = cell(shell, "--dry-run", "hello")
    assert error is None and "dashscope.aliyuncs.com" in cap.outputs[0].data["text/plain"]


def test_timeout_flag_sets_the_read_timeout(fake_env, shell) -> None:
    fake_env.inject("slow", seconds=1.0)
    cap, error = cell(shell, "--timeout 0.3 --no-stream", "hello")
    assert type(error).__name__ == "TimeoutError" and error.phase == "read"
    assert "0.3 s" in str(error)


# -- config traits -----------------------------------------------------------------------------
def test_config_traits_are_defaults(fake_env, shell) -> None:
    run = lambda line: shell.run_line_magic("config", line)  # noqa: E731
    run("DashScopeMagics.model = 'qwen-turbo'")
    run("DashScopeMagics.system = ''")
    run("DashScopeMagics.plugins = ['calculator']")
    run("DashScopeMagics.stream = True")
    try:
        cell(shell, "", "12345*98765是多少")
        sent = fake_env.generation_requests[-1]
        assert sent.json["model"] == "qwen-turbo"
        assert [m["role"] for m in sent.json["input"]["messages"]] == ["user"]
        assert json.loads(sent.header("X-DashScope-Plugin")) == {"calculator": {}}
        assert sent.header("X-DashScope-SSE") == "enable"
        cell(shell, "--model qwen-max --plugins ocr", "x")  # flags override config
        assert fake_env.generation_requests[-1].json["model"] == "qwen-max"
    finally:
        for name in ("model", "system", "plugins", "stream"):
            shell.config.DashScopeMagics.pop(name, None)
        magics(shell).model, magics(shell).system = "qwen-plus", "You are a helpful assistant."
        magics(shell).plugins, magics(shell).stream = [], None


def test_bad_config_values_are_refused(shell) -> None:
    with capture_output() as cap:
        shell.run_line_magic("config", "DashScopeMagics.mode = 'sometimes'")
    assert magics(shell).mode == ""
    with capture_output():
        shell.run_line_magic("config", "DashScopeMagics.timeout = -1")
    assert magics(shell).timeout == 180.0
    # The refused values linger in the shell's config; a reload must not choke on them.
    with pytest.warns(UserWarning, match="invalid DashScopeMagics config"):
        shell.run_line_magic("reload_ext", "dashmagic")
    assert magics(shell).mode == "" and magics(shell).timeout == 180.0


def test_config_listing_never_shows_the_key(shell, monkeypatch) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-canary-config-1234")
    with capture_output() as cap:
        shell.run_line_magic("config", "DashScopeMagics")
    for trait in ("model", "system", "plugins", "stream", "timeout", "embed_images", "max_image_bytes", "image_hosts"):
        assert f"DashScopeMagics.{trait}" in cap.stdout
    assert "canary" not in cap.stdout and "api_key" not in cap.stdout


# -- interpolation --------------------------------------------------------------------------------
def test_single_braces_are_literal_and_double_braces_interpolate(fake_env, shell) -> None:
    shell.user_ns["dm_n"] = 3
    shell.user_ns["dm_d"] = {"k": "{{ dm_n }} {x}"}
    body = 'json {"a": 1} and {k: v for k, v in d.items()} and {{ dm_n * 2 }} and {{dm_d}}'
    _, error = cell(shell, "", body)
    assert error is None
    sent = fake_env.generation_requests[-1].json["input"]["messages"][-1]["content"]
    # Values are not re-scanned: braces inside a value stay as they are.
    assert sent == "json {\"a\": 1} and {k: v for k, v in d.items()} and 6 and {'k': '{{ dm_n }} {x}'}"


def test_no_interpolate_sends_braces(fake_env, shell) -> None:
    cell(shell, "--no-interpolate", "{{ not_defined }}")
    assert fake_env.generation_requests[-1].json["input"]["messages"][-1]["content"] == "{{ not_defined }}"


def test_unknown_name_is_a_one_line_error(fake_env, shell) -> None:
    cap, error = cell(shell, "", "hello {{ dm_missing_name }}")
    assert isinstance(error, ConfigError) and "'dm_missing_name' is not defined" in str(error)
    assert "Traceback" not in cap.stdout and cap.stdout.strip().count("\n") == 0
    assert fake_env.generation_requests == []


def test_line_is_not_var_expanded(fake_env, shell) -> None:
    shell.user_ns["dm_x"] = "EXPANDED"
    cell(shell, "--plugins calculator what is {dm_x} $dm_x", None)
    assert fake_env.generation_requests[-1].json["input"]["messages"][-1]["content"] == "what is {dm_x} $dm_x"


# -- errors, interrupts and the key --------------------------------------------------------------
def test_http_error_is_one_line_with_code_and_request_id(fake_env, shell) -> None:
    fake_env.inject("throttle", times=5)
    shell.run_line_magic("config", "DashScopeMagics.retries = 1")
    try:
        cap, error = cell(shell, "", "hello")
    finally:
        shell.run_line_magic("config", "DashScopeMagics.retries = 3")
    assert isinstance(error, RateLimitError) and error.code == "Throttling.RateQuota" and error.request_id
    lines = [l for l in cap.stdout.splitlines() if l.strip()]
    assert lines == [f"RateLimitError: {error}"] and "Traceback" not in cap.stdout


def test_empty_cell(shell) -> None:
    cap, error = cell(shell, "", "   \n  ")
    assert isinstance(error, ConfigError) and "The cell is empty" in str(error)


def test_bad_flag_is_a_usage_error(shell) -> None:
    cap, error = cell(shell, "--plugins", "x")
    assert type(error).__name__ == "UsageError" and "Traceback" not in cap.stdout


def test_missing_key_offers_getpass_in_an_interactive_kernel(fake_env, shell, monkeypatch) -> None:
    monkeypatch.delenv("DASHSCOPE_API_KEY")
    shell.kernel = FakeKernel(allow_stdin=True)
    asked: list[str] = []
    magics(shell)._getpass = lambda prompt: asked.append(prompt) or "sk-test"
    try:
        cap, error = cell(shell, "--plugins calculator", "12345*98765是多少")
        assert error is None and len(asked) == 1
        cell(shell, "--plugins calculator", "12345*98765是多少")  # kept for the session: not asked again
        assert len(asked) == 1
        assert "sk-test" not in str([o.data for o in cap.outputs]) + cap.stdout
    finally:
        del shell.kernel


def test_missing_key_without_a_prompt_lists_the_safe_ways(shell) -> None:
    cap, error = cell(shell, "", "hello")
    assert isinstance(error, ConfigError)
    assert "DASHSCOPE_API_KEY" in str(error) and "~/.dashscope/api_key" in str(error)
    assert "Traceback" not in cap.stdout


def test_interrupt_closes_the_stream_and_keeps_the_partial_trace(fake_env, kernel_shell) -> None:
    fake_env.inject("stall", seconds=5.0)
    # A real SIGINT, as the kernel's stop button sends: it interrupts the blocked socket read.
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    line, body = seed_line("calculator", "--stream --out dm_partial")
    cap, error = cell(kernel_shell, line, body)
    timer.cancel()
    assert isinstance(error, Interrupted)
    trace = kernel_shell.user_ns["dm_partial"]
    assert trace.status == "interrupted" and trace.plugin_calls  # the first event was kept
    final = cap.outputs[-1]
    assert final.metadata["dashmagic"]["status"] == "interrupted"
    assert "[interrupted]" in final.data["text/plain"]
    assert trace.elapsed < 4.0  # stopped at once, not when the stalled server woke up


def test_canary_key_never_appears_in_any_output(fake_dashscope, kernel_shell, monkeypatch) -> None:
    canary = "sk-canary-5f2e9d0c7b"
    fake_dashscope.api_key = canary
    monkeypatch.setenv("DASHSCOPE_API_KEY", canary)
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", fake_dashscope.base_url)
    seen: list[str] = []
    for fault in ("throttle", "bad_gateway_html", "reset_mid_stream", "error_event_mid", "garbage_json"):
        fake_dashscope.inject(fault, times=3)
        cap, error = cell(kernel_shell, "--stream", "hello")
        seen += [cap.stdout, cap.stderr, str(error), repr(error), json.dumps([o.data for o in cap.outputs], ensure_ascii=False)]
        fake_dashscope.reset()
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-canary-wrong-key-00")
    cap, error = cell(kernel_shell, "--xmode-not-a-flag", "x")
    seen.append(cap.stdout)
    kernel_shell.run_line_magic("xmode", "Verbose")
    try:
        cap, error = cell(kernel_shell, "", "hello")
        seen += [cap.stdout, cap.stderr, str(error)]
    finally:
        kernel_shell.run_line_magic("xmode", "Context")
    with capture_output() as cap:
        kernel_shell.run_line_magic("config", "DashScopeMagics")
    seen.append(cap.stdout)
    everything = "\n".join(seen)
    assert "canary" not in everything, everything[:2000]


# -- figures ---------------------------------------------------------------------------------------
def _img_srcs(html: str) -> list[str]:
    return re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)


def test_code_interpreter_figure_is_embedded(fake_env, shell) -> None:
    line, body = seed_line("code_interpreter_plot")
    cap, error = cell(shell, line, body)
    assert error is None
    srcs = _img_srcs(cap.outputs[-1].data["text/html"])
    assert len(srcs) == 1 and srcs[0].startswith("data:image/png;base64,")
    png = base64.b64decode(srcs[0].split(",", 1)[1])
    assert png.startswith(b"\x89PNG") and png == (fake_env.exchanges and __import__("dashmagic.testing", fromlist=["x"]).FIGURE_PATH.read_bytes())
    figure_gets = [r for r in fake_env.requests if r.method == "GET"]
    assert len(figure_gets) == 1 and figure_gets[0].header("Authorization") is None


def test_expired_text_to_image_shows_link_and_reason(fake_env, shell) -> None:
    line, body = seed_line("text_to_image")
    cap, error = cell(shell, line, body)
    html = cap.outputs[-1].data["text/html"]
    assert error is None and _img_srcs(html) == []
    assert "403" in html and "Signature" not in html


@pytest.mark.parametrize(
    "setting, reason",
    [
        ("DashScopeMagics.max_image_bytes = 100", "limit"),
        ("DashScopeMagics.embed_images = False", "not fetched"),
    ],
)
def test_figure_refusals(fake_env, shell, setting: str, reason: str) -> None:
    shell.run_line_magic("config", setting)
    try:
        line, body = seed_line("code_interpreter_plot")
        cap, error = cell(shell, line, body)
    finally:
        magics(shell).max_image_bytes, magics(shell).embed_images = 5 * 1024 * 1024, True
        shell.config.DashScopeMagics.pop("max_image_bytes", None)
        shell.config.DashScopeMagics.pop("embed_images", None)
    html = cap.outputs[-1].data["text/html"]
    assert _img_srcs(html) == [] and reason in html


def test_figure_from_a_host_off_the_list_is_not_fetched(fake_env, shell) -> None:
    fake_env.queue_reply({
        "output": {"choices": [{"finish_reason": "stop", "messages": [
            {"role": "assistant", "content": "Thought: plot", "plugin_call": {"name": "code_interpreter", "arguments": "```py\nplot()\n```"}},
            {"role": "plugin", "name": "code_interpreter", "content": "![fig](https://evil.example/x.png?Signature=abc)",
             "status": {"code": 200, "name": "success", "message": "ok"}},
            {"role": "assistant", "content": "Final Answer: done"}]}]},
        "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}})
    cap, error = cell(shell, "--plugins code_interpreter", "plot")
    html = cap.outputs[-1].data["text/html"]
    assert _img_srcs(html) == [] and "allow-list" in html and "Signature" not in html
    assert [r for r in fake_env.requests if r.method == "GET"] == []


def test_live_updates_can_be_turned_off_for_nbval(fake_env, kernel_shell, monkeypatch) -> None:
    monkeypatch.setenv("DASHMAGIC_LIVE", "0")
    line, body = seed_line("calculator", "--stream")
    cap, error = cell(kernel_shell, line, body)
    assert error is None and len(cap.outputs) == 1 and not cap.outputs[0].update
    monkeypatch.delenv("DASHMAGIC_LIVE")
    kernel_shell.run_line_magic("config", "DashScopeMagics.live_updates = False")
    try:
        cap, _ = cell(kernel_shell, line, body)
        assert len(cap.outputs) == 1
    finally:
        magics(kernel_shell).live_updates = None
        kernel_shell.config.DashScopeMagics.pop("live_updates", None)


def test_an_error_before_any_step_is_shown_once(fake_env, kernel_shell) -> None:
    fake_env.inject("access_denied")
    cap, error = cell(kernel_shell, "--plugins ocr", "hi")
    assert error is not None
    # The "waiting" placeholder is blanked; the one-line error is the only message.
    assert cap.outputs[-1].data == {"text/plain": ""}
    assert str(error) not in json.dumps([o.data for o in cap.outputs], ensure_ascii=False)


def test_flag_typos_get_hints(shell) -> None:
    cap, error = cell(shell, "--plug calculator", "hi")
    assert type(error).__name__ == "UsageError" and "--plug" in str(error)  # no silent abbreviation
    cap, error = cell(shell, "--temperature 0.2", "hi")
    assert "--param temperature=0.2" in str(error)
    cap, error = cell(shell, "--dry-run stray words", "hi")
    assert isinstance(error, ConfigError) and "stray words" in str(error)


def test_image_hosts_trait_is_the_allow_list(fake_env, shell) -> None:
    # "localhost" is allowed by config but is not the configured base URL host (127.0.0.1:PORT):
    # the fetcher then applies the public-host rules and refuses the loopback address.
    url = f"http://localhost:{fake_env.port}/oss/x/fig.png?Signature=abc"
    fake_env.queue_reply({
        "output": {"choices": [{"finish_reason": "stop", "messages": [
            {"role": "assistant", "content": "Thought: plot", "plugin_call": {"name": "code_interpreter", "arguments": "```py\nplot()\n```"}},
            {"role": "plugin", "name": "code_interpreter", "content": f"![fig]({url})",
             "status": {"code": 200, "name": "success", "message": "ok"}},
            {"role": "assistant", "content": "Final Answer: done"}]}]},
        "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}})
    shell.run_line_magic("config", "DashScopeMagics.image_hosts = ['localhost']")
    try:
        cap, error = cell(shell, "--plugins code_interpreter", "plot")
    finally:
        magics(shell).image_hosts = list(DEFAULT_IMAGE_HOSTS)
        shell.config.DashScopeMagics.pop("image_hosts", None)
    html = cap.outputs[-1].data["text/html"]
    assert error is None and _img_srcs(html) == []
    assert "allow-list" not in html and "localhost" in html  # allowed by the trait, refused for its address
    assert [r for r in fake_env.requests if r.method == "GET"] == []


# -- the first five minutes: typos, keys, one error line, terminal ---------------------------
@pytest.mark.parametrize("typo, meant", [("--plugin calculator", "--plugins"), ("--strem", "--stream"),
                                         ("--modle qwen-max", "--model"), ("--plugin=calculator", "--plugins")])
def test_flag_typo_suggests_the_flag_meant(shell, typo: str, meant: str) -> None:
    cap, error = cell(shell, typo, "hi")
    name = typo.split()[0].split("=")[0]
    assert type(error).__name__ == "UsageError"
    assert str(error).startswith(f"%dashscope: unknown flag {name}; did you mean {meant}?")
    assert "Traceback" not in cap.stdout


def test_misspelled_plugin_is_refused_before_sending(fake_env, shell) -> None:
    cap, error = cell(shell, "--plugins calculater", "12345*98765是多少")
    assert isinstance(error, ConfigError)
    assert str(error).startswith("unknown plugin 'calculater'; did you mean 'calculator'?")
    assert fake_env.generation_requests == []  # nothing was sent
    cap, error = cell(shell, "--plugins pdf_extractor", "x")
    assert isinstance(error, ConfigError) and "'pdf_extracter'" in str(error)


def test_a_wrong_typed_key_is_forgotten_and_asked_for_again(fake_env, shell, monkeypatch) -> None:
    monkeypatch.delenv("DASHSCOPE_API_KEY")
    shell.kernel = FakeKernel(allow_stdin=True)
    typed = iter(["sk-wrong-typed-0000", fake_env.api_key])
    asked: list[str] = []
    magics(shell)._getpass = lambda prompt: asked.append(prompt) or next(typed)
    try:
        cap, error = cell(shell, "--plugins calculator", "12345*98765是多少")
        assert isinstance(error, AuthenticationError) and len(asked) == 1
        assert "the key you typed was forgotten: run the cell again to enter another" in cap.stdout
        cap, error = cell(shell, "--plugins calculator", "12345*98765是多少")
        assert error is None and len(asked) == 2  # asked again, and the new key works
        cell(shell, "--plugins calculator", "12345*98765是多少")
        assert len(asked) == 2  # a good key is kept for the session
        assert "sk-wrong-typed" not in cap.stdout + str([o.data for o in cap.outputs])
    finally:
        del shell.kernel


def test_a_wrong_key_from_the_environment_is_never_forgotten(fake_env, shell, monkeypatch) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-wrong-env-0000")
    shell.kernel = FakeKernel(allow_stdin=True)
    asked: list[str] = []
    magics(shell)._getpass = lambda prompt: asked.append(prompt) or "sk-never"
    try:
        for _ in range(2):
            cap, error = cell(shell, "--plugins calculator", "x")
            assert isinstance(error, AuthenticationError) and "forgotten" not in str(error)
        assert asked == []
    finally:
        del shell.kernel


def test_an_error_after_steps_is_shown_once_with_one_request_id(fake_env, kernel_shell) -> None:
    fake_env.inject("error_event_mid")
    line, body = seed_line("calculator", "--stream")
    cap, error = cell(kernel_shell, line, body)
    assert error is not None and error.status_code == 500
    final = cap.outputs[-1]
    text = final.data["text/plain"]
    request_id = final.metadata["dashmagic"]["request_id"]
    # The details live in the trace; the cell's one line names the error and points there.
    assert cap.stdout.strip() == (f"ServerError: DashScope returned HTTP 500 InternalError; details in the trace "
                                  f"above (request id {request_id}).")
    assert cap.stderr == ""
    service_text = "An internal error has occured"
    assert (cap.stdout + text).count(service_text) == 1 and final.data["text/html"].count(service_text) == 1
    ids = set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", cap.stdout + text + final.data["text/html"]))
    assert ids == {request_id} and error.trace.request_id == request_id


def test_an_error_before_anything_is_one_full_line(fake_env, kernel_shell) -> None:
    fake_env.inject("error_event_first")
    cap, error = cell(kernel_shell, "--plugins calculator --stream", "x")
    assert cap.outputs[-1].data == {"text/plain": ""}
    assert cap.stdout.strip() == f"ApiError: {error}" and "DataInspectionFailed" in cap.stdout
    assert "details in the trace" not in cap.stdout


def test_stop_before_the_first_byte_does_not_claim_a_partial_trace(fake_env, kernel_shell) -> None:
    fake_env.inject("throttle")  # one retry: the trace gets a note, so it stays on screen
    fake_env.inject("slow", seconds=3.0)
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    cap, error = cell(kernel_shell, "--plugins calculator --stream --out dm_stopped", "x")
    timer.cancel()
    assert isinstance(error, Interrupted) and "before any reply arrived" in str(error)
    shown = cap.stdout + json.dumps([o.data for o in cap.outputs], ensure_ascii=False)
    assert "partial trace" not in shown
    assert kernel_shell.user_ns["dm_stopped"].steps == ()


def test_reprs_a_user_reads(shell, monkeypatch) -> None:
    import pickle

    from dashmagic.trace import Answer, CodeBlock, Usage

    monkeypatch.setenv("DASHMAGIC_MODE", "replay")
    cap, error = cell(shell, "--plugins code_interpreter --out dm_t", "画一个y=x^2的函数图")
    trace = shell.user_ns["dm_t"]
    assert error is None and pickle.loads(pickle.dumps(trace)) == trace  # repr only: equality, pickling kept
    text = repr(trace)
    assert text.startswith("Trace(status='complete', model='qwen-plus'") and "\n  steps=[\n" in text
    assert "mappingproxy" not in text and "Signature" not in text and "OSSAccessKeyId" not in text
    # Multi-line code reads as a block, one line per line of code.
    assert "\n    plt.plot(x, y)\n" in repr(trace.code_blocks[0]) and repr(CodeBlock("x = 1")) == "CodeBlock(code='x = 1')"
    assert repr(Usage(1, 2, 3)) == "Usage(input_tokens=1, output_tokens=2, total_tokens=3)"
    assert repr(Usage(1, 2, 3, plugins={"calculator": 1})).endswith("plugins={'calculator': 1})")
    long = repr(Answer("x" * 1_000_000))
    assert len(long) < 200 and "(+999920 chars)" in long
    assert Answer("a") == Answer("a") and hash(Usage(1)) == hash(Usage(1))


def test_terminal_streams_the_answer_as_it_arrives(fake_env, shell) -> None:
    fake_env.chunk_chars = 2  # the answer arrives in many small events
    pieces: list[str] = []
    from dashmagic import display as display_module

    real = display_module.LiveDisplay.__init__

    def spy(self, **kwargs):  # record each write as it happens, then pass it on to stdout
        real(self, **kwargs, write=lambda text: (pieces.append(text), print(text, end="")))

    display_module.LiveDisplay.__init__ = spy
    try:
        line, body = seed_line("calculator", "--stream")
        cap, error = cell(shell, line, body)
    finally:
        display_module.LiveDisplay.__init__ = real
    answer = "12345*98765的结果是1219253925。"
    assert error is None and len(pieces) > 3 and "".join(pieces).strip() == answer  # incrementally, once
    assert cap.stdout.count(answer) == 1  # the streamed text; the transcript is the one display
    assert len(cap.outputs) == 1 and answer in cap.outputs[0].data["text/plain"]


def test_terminal_figure_says_where_its_bytes_are(fake_env, shell, tmp_path) -> None:
    line, body = seed_line("code_interpreter_plot", "--out dm_fig")
    cap, error = cell(shell, line, body)
    text = cap.outputs[-1].data["text/plain"]
    assert error is None and "(embedded)" not in text
    assert re.search(r"\[figure\] fig-001: \d+\.\d kB PNG, kept in dm_fig\.images\[0\]; save with "
                     r"dm_fig\.images\[0\]\.save\('fig-001\.png'\)", text), text
    image = shell.user_ns["dm_fig"].images[0]
    saved = image.save(tmp_path / "fig-001.png")
    assert saved.read_bytes() == image.data and image.data.startswith(b"\x89PNG")
    # In a notebook the figure is shown, so its text/plain line stays as it was.
    shell.kernel = FakeKernel()
    try:
        cap, _ = cell(shell, line, body)
    finally:
        del shell.kernel
    assert "(embedded)" in cap.outputs[-1].data["text/plain"]
