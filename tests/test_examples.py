"""Every example the user is shown runs as written, offline: the magic's help and the README.

The examples are extracted, not copied: the Examples section of ``%%dashscope?`` and every
README ``` block holding a ``%%dashscope`` / ``%dashscope`` line (a ```text block is a
synopsis, not an example). Each block is a sequence of notebook cells separated by blank lines;
each cell runs in a real InteractiveShell with replay semantics (``DASHMAGIC_MODE=replay``:
the bundled demo, no key, no network), in a Jupyter-like kernel and in a terminal shell.
Also here: the demo's matching rules that make this possible (any seed, framing or form).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from IPython.utils.capture import capture_output

from dashmagic.errors import RecordingMiss
from dashmagic.magic import DashScopeMagics
from dashmagic.recording.fingerprint import fingerprint
from dashmagic.recording.matching import Answers
from dashmagic.recording.store import read_recording, resolve_recordings
from dashmagic.request import STREAM_HEADERS

README = Path(__file__).resolve().parent.parent / "README.md"
MAGIC_LINE = re.compile(r"^%%?dashscope\b", re.M)


class FakeKernel:
    _allow_stdin = False


def _cells(block: str) -> list[str]:
    """A block of example text → its cells (blank-line separated; prompts here are one line)."""
    return [c.strip("\n") for c in re.split(r"\n\s*\n", block.strip("\n")) if c.strip()]


def help_examples() -> list[list[str]]:
    """The help's Examples: one sequence of cells (a later cell may use an earlier one's names)."""
    doc = DashScopeMagics.dashscope.__doc__ or ""
    lines = doc[doc.index("\nExamples"):].split("\n")
    body: list[str] = []
    for line in lines:
        if line.startswith("    "):
            body.append(line[4:])
        elif line.strip() and body:
            break  # the first unindented line after the examples ends the section
        elif not line.strip() and body:
            body.append("")
    text = "\n".join(body)
    return [_cells(text)] if MAGIC_LINE.search(text) else []


def readme_examples() -> list[list[str]]:
    blocks = re.findall(r"^```([^\n]*)\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)
    return [_cells(body) for info, body in blocks if info.strip() != "text" and MAGIC_LINE.search(body)]


EXAMPLES = [("help", i, cells) for i, cells in enumerate(help_examples())] + [
    ("readme", i, cells) for i, cells in enumerate(readme_examples())
]


def test_the_examples_were_found() -> None:
    help_cells = [c for cells in help_examples() for c in cells]
    assert len(help_cells) >= 5 and sum(c.startswith("%%dashscope") for c in help_cells) >= 3
    assert any(c.startswith("%dashscope ") for c in help_cells)  # the line form too
    assert any("%%dashscope --plugins code_interpreter" in c for cells in readme_examples() for c in cells)


def test_help_opens_cleanly_and_shows_the_examples(shell) -> None:
    with capture_output() as cap:
        shell.run_line_magic("pinfo", "%%dashscope")
    text = re.sub(r"\x1b\[[0-9;]*m", "", cap.stdout)
    first = [line for line in text.splitlines() if line.strip()][:4]
    # Two lines on the two generations open the help, then the docstring's own first line.
    assert first[0] == "Docstring:"
    assert first[1].startswith("Today's tools (body parameters): --thinking, --code-interpreter, --search")
    assert first[2].startswith("The older generation (the X-DashScope-Plugin header") and "--plugins" in first[2]
    assert first[3] == "Ask a DashScope model, with plugins or today's built-in tools, and show the trace."
    assert "::" not in text.split("Examples", 1)[0]
    assert "12345*98765是多少" in text and "--plugins PLUGINS" in text and "%%dashscope [--plugins" in text


@pytest.mark.parametrize("in_kernel", [True, False], ids=["kernel", "terminal"])
@pytest.mark.parametrize("where, index, cells", EXAMPLES, ids=[f"{w}-{i}" for w, i, _ in EXAMPLES])
def test_example_runs_as_written(shell, monkeypatch, where: str, index: int, cells: list[str], in_kernel: bool) -> None:
    monkeypatch.setenv("DASHMAGIC_MODE", "replay")
    if in_kernel:
        shell.kernel = FakeKernel()
    try:
        for source in cells:
            with capture_output() as cap:
                result = shell.run_cell(source)
            assert result.error_in_exec is None, f"{source!r}: {result.error_in_exec}"
            assert "Error" not in cap.stdout and cap.stderr == "", (source, cap.stdout, cap.stderr)
            if MAGIC_LINE.match(source):
                final = cap.outputs[-1]
                assert final.metadata["dashmagic"]["status"] == "complete", source
                assert final.data["text/plain"].strip()
    finally:
        if in_kernel:
            del shell.kernel
        for name in ("t", "a", "b"):
            shell.user_ns.pop(name, None)


# -- the demo's matching rule ------------------------------------------------------------------
def _request(prompt: str, plugins: str, *, seed: int | None, stream: bool, system: str = "You are a helpful assistant.") -> dict:
    import json

    headers = {"X-DashScope-Plugin": json.dumps({plugins: {}})}
    if stream:
        headers["X-DashScope-SSE"] = "enable"
    parameters: dict = {"result_format": "message"}
    if seed is not None:
        parameters["seed"] = seed
    body = {"model": "qwen-plus", "input": {"messages": [{"role": "system", "content": system},
                                                         {"role": "user", "content": prompt}]},
            "parameters": parameters}
    return fingerprint("POST", "https://h/api/v1/services/aigc/text-generation/generation", headers,
                       json.dumps(body).encode())


def _seed_file() -> Path:
    """The demo's seed exchanges (the plugin generation); the demo holds other files too."""
    return Path(str(next(s for s in resolve_recordings("demo") if Path(str(s)).name == "seed.jsonl")))


def _demo() -> Answers:
    return Answers(read_recording(resolve_recordings("demo")), STREAM_HEADERS)


@pytest.mark.parametrize("seed", [None, 42, 7])
@pytest.mark.parametrize("stream", [False, True])
def test_demo_answers_any_seed_with_its_own_framing(seed: int | None, stream: bool) -> None:
    exchange = _demo().match(_request("12345*98765是多少", "calculator", seed=seed, stream=stream, system="  Be brief. "))
    assert exchange is not None
    assert exchange.request["headers"].get("x-dashscope-sse") == ("enable" if stream else None)


def test_demo_still_misses_another_prompt_or_plugin() -> None:
    answers = _demo()
    assert answers.match(_request("12345*98765是多少", "ocr", seed=None, stream=False)) is None
    assert answers.match(_request("2+2是多少", "calculator", seed=None, stream=False)) is None


def test_a_users_recording_stays_strict(tmp_path: Path) -> None:
    import shutil

    mine = tmp_path / "mine.jsonl"
    shutil.copy(_seed_file(), mine)  # the same exchanges, but not the demo
    answers = Answers(read_recording([mine]), STREAM_HEADERS)
    other_seed = _request("12345*98765是多少", "calculator", seed=7, stream=False)
    assert answers.match(other_seed) is None
    assert "parameters.seed" in answers.miss_message(other_seed)  # says what differs
    assert answers.match(other_seed, strict=False) is not None
    assert answers.match(_request("12345*98765是多少", "calculator", seed=42, stream=False)) is not None


def test_the_magic_names_the_miss_for_a_user_recording(shell, tmp_path: Path) -> None:
    import shutil

    mine = tmp_path / "mine.jsonl"
    shutil.copy(_seed_file(), mine)
    with capture_output():
        result = shell.run_cell(f"%dashscope --replay {mine} --plugins calculator --seed 7 12345*98765是多少")
    assert isinstance(result.error_in_exec, RecordingMiss) and "parameters.seed" in str(result.error_in_exec)


CURRENT_FORMS = [
    ("%%dashscope --thinking\nWhat is 1+1?", "reasoning"),
    ("%%dashscope --code-interpreter\n123的21次方是多少？", "code_execution"),
    ("%%dashscope --search --citations\nWho won the 2022 FIFA World Cup?", "search"),
    ("%%dashscope --tools weather\nWhat's the weather like in Hangzhou and Beijing?", "function_call"),
]


@pytest.mark.parametrize("source, kind", CURRENT_FORMS, ids=[k for _, k in CURRENT_FORMS])
def test_the_demo_answers_todays_generation(shell, monkeypatch, source: str, kind: str) -> None:
    from dashmagic.testing.recordings import WEATHER_TOOL

    monkeypatch.setenv("DASHMAGIC_MODE", "replay")
    shell.user_ns["weather"] = WEATHER_TOOL
    try:
        with capture_output():
            result = shell.run_cell(source.replace("\n", " --out t\n", 1))
        assert result.error_in_exec is None, result.error_in_exec
        trace = shell.user_ns["t"]
        assert trace.status == "complete" and kind in [step.kind for step in trace.steps], trace.steps
    finally:
        for name in ("t", "weather"):
            shell.user_ns.pop(name, None)


def test_the_bundled_current_demo_is_what_the_tool_records(tmp_path: Path) -> None:
    """dashmagic/demo/current.jsonl can be regenerated: the tool records the same requests."""
    from dashmagic.recording.fingerprint import fingerprint_key
    from dashmagic.testing.recordings import CURRENT_DEMO_PATH, record_current_demo

    fresh = read_recording([record_current_demo(tmp_path / "current.jsonl")])
    bundled = read_recording([CURRENT_DEMO_PATH])
    assert [fingerprint_key(e.request) for e in fresh.exchanges] == [fingerprint_key(e.request) for e in bundled.exchanges]
    assert all(e.status == 200 and e.complete for e in bundled.exchanges) and len(bundled.exchanges) == 12
