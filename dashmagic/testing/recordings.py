"""Build recordings offline: the bundled demo, and the notebooks' own recordings.

    python -m dashmagic.testing.recordings demo              # dashmagic/demo/seed.jsonl + current.jsonl
    python -m dashmagic.testing.recordings notebook NB.ipynb REC.jsonl [--replies R.json]
                                                             [--answers A.json] [--batch-poll-step S]

Everything is recorded against the loopback fake (:class:`FakeDashScope`), never against the
live service: the seven exchanges are the vendor's documented responses, replayed by the fake
with their original (long expired) figure URLs. Those URLs cannot be fetched, so their figure
lines are written here, honestly: the code_interpreter plot is re-created by running the
plugin's own documented code with matplotlib (``fig-001.png``); the text_to_image picture is
lost, so it is recorded as the 403 "Request has expired" that OSS gives for an expired URL.

``current.jsonl`` holds today's generation (built-in tools in the body): the fake's scripted
answers (:mod:`dashmagic.testing.scripts`) for thinking, the built-in code interpreter, web search
with sources and citations, and a function-call request, as listed in :data:`CURRENT_DEMO`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterable, cast

from .exchanges import FIGURE_PATH, load_exchanges
from .oss import EXPIRED_XML
from .server import FakeDashScope

__all__ = ["CURRENT_DEMO", "CURRENT_DEMO_PATH", "CURRENT_NOTE", "DEMO_PATH", "SEED_NOTE", "WEATHER_TOOL",
           "ScriptedFake", "record_current_demo", "add_seed_figures", "record_demo", "record_notebook", "seed_figure_urls"]

DEMO_PATH = Path(__file__).resolve().parent.parent / "demo" / "seed.jsonl"
CURRENT_DEMO_PATH = DEMO_PATH.with_name("current.jsonl")
SEED_NOTE = (
    "Recorded from dashmagic's loopback fake (dashmagic.testing), which answers with the seven "
    "responses documented on DashScope's plugin example page; not a live DashScope session. "
    "The code_interpreter figure was re-created locally by running the plugin's documented code "
    "with matplotlib (the service's original image expired); the text_to_image picture expired "
    "and is not available, so it replays as OSS's 403 'Request has expired'."
)
CURRENT_NOTE = (
    "Recorded from dashmagic's loopback fake (dashmagic.testing), which answers today's generation "
    "(thinking, the built-in code interpreter, web search, function calls) with scripted answers in the "
    "service's documented wire format (dashmagic/testing/scripts.py); not a live DashScope session."
)
#: The function tool of the weather examples, in the service's format (the README and notebook 04 show it).
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string", "description": "A city, e.g. Hangzhou"}},
            "required": ["location"],
        },
    },
}
_SOURCES_AND_CITATIONS: dict[str, Any] = {"sources": True, "citations": True}
#: The demo's current-generation exchanges: (prompt, keyword arguments, framings recorded).
#: Prompts differ per feature because the demo matches loosely (model and prompt, not the body).
CURRENT_DEMO: tuple[tuple[str, dict[str, Any], tuple[bool, ...]], ...] = (
    ("What is 1+1?", {"thinking": True}, (False, True)),
    ("请问 1+1 是多少？", {"thinking": True}, (False, True)),
    ("123的21次方是多少？", {"code_interpreter": True}, (True,)),  # the interpreter needs streaming
    ("What is 123 to the power of 21?", {"code_interpreter": True}, (True,)),
    ("Who won the 2022 FIFA World Cup?", {"search": _SOURCES_AND_CITATIONS}, (False, True)),
    ("What changed in pandas 3.0?", {"search": {**_SOURCES_AND_CITATIONS, "strategy": "max"}}, (False, True)),
    ("What's the weather like in Hangzhou and Beijing?", {"tools": [WEATHER_TOOL]}, (False, True)),
)
PLOT_NOTE = "Re-created locally by running the plugin's documented code with matplotlib; the original expired."
T2I_NOTE = "The original picture's signed URL expired; the image is not available and was not invented."


def seed_figure_urls() -> tuple[str, str]:
    """The documented figure URLs, as the fetcher requests them (http upgraded to https)."""
    plot = t2i = ""
    for exchange in load_exchanges():
        for message in exchange.response["output"]["choices"][0].get("messages", []):
            content = message.get("content", "")
            if message.get("role") != "plugin":
                continue
            if exchange.name == "code_interpreter_plot":
                plot = content[content.index("(") + 1 : content.rindex(")")]
            if exchange.name == "text_to_image":
                t2i = json.loads(content)["url"].replace("http://", "https://", 1)
    return plot, t2i


def add_seed_figures(path: Path) -> None:
    from ..recording import record_figure

    plot, t2i = seed_figure_urls()
    record_figure(path, plot, 200, "image/png", FIGURE_PATH.read_bytes(), note=PLOT_NOTE)
    record_figure(path, t2i, 403, "application/xml", EXPIRED_XML, note=T2I_NOTE)


def _prompt(exchange: Any) -> tuple[str, tuple[str, ...]]:
    content = exchange.request["input"]["messages"][-1]["content"]
    if isinstance(content, str):
        return content, ()
    return content[0]["text"], tuple(part["file"] for part in content if "file" in part)


def record_demo(path: Path = DEMO_PATH) -> Path:
    """The seven documented exchanges, each non-streaming and streaming."""
    import dashmagic

    from ..config import Secret
    from ..transport import RecordingAdapter, new_session

    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with FakeDashScope(rewrite_figure_urls=False) as fake, new_session() as session:
        session.mount("http://", RecordingAdapter(path, Secret(fake.api_key), note=SEED_NOTE))
        for exchange in load_exchanges():
            prompt, files = _prompt(exchange)
            kwargs: dict[str, Any] = dict(plugins=exchange.plugins, seed=42, files=files, api_key=fake.api_key,
                          base_url=fake.base_url, session=session)
            dashmagic.run(prompt, **kwargs)
            list(dashmagic.stream(prompt, **kwargs))
    add_seed_figures(path)
    return path


def record_current_demo(path: Path = CURRENT_DEMO_PATH) -> Path:
    """Today's generation for ``--replay demo``: each entry of :data:`CURRENT_DEMO`, in its framings."""
    import dashmagic

    from ..config import Secret
    from ..transport import RecordingAdapter, new_session

    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with FakeDashScope() as fake, new_session() as session:
        session.mount("http://", RecordingAdapter(path, Secret(fake.api_key), note=CURRENT_NOTE))
        for prompt, options, framings in CURRENT_DEMO:
            kwargs: dict[str, Any] = dict(options, api_key=fake.api_key, base_url=fake.base_url, session=session)
            for streamed in framings:
                if streamed:
                    list(dashmagic.stream(prompt, **kwargs))
                else:
                    dashmagic.run(prompt, **kwargs)
    return path


class ScriptedFake(FakeDashScope):
    """The fake, answering chosen prompts (the last user text) with a scripted reply each.

    For a notebook whose many rows run concurrently: queued replies would go to whichever
    request arrives first, a reply keyed by its prompt always goes to its own row.
    """

    def __init__(self, answers: dict[str, dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.answers = answers

    def _answer(self, request: Any) -> Any:
        from .exchanges import prompt_text
        from .server import _Reply

        reply = self.answers.get(prompt_text(request.json) or "") if isinstance(request.json, dict) else None
        return _Reply(reply) if reply is not None else super()._answer(request)


def record_notebook(
    notebook: Path, recording: Path, replies: Iterable[dict[str, Any]] = (), note: str = SEED_NOTE,
    answers: dict[str, dict[str, Any]] | None = None, batch_poll_step: float = 0.0,
) -> Path:
    """Execute ``notebook`` in record mode against the fake; non-seed prompts get ``replies`` in order.

    ``answers`` maps a prompt to its scripted reply (any order, any concurrency); a Batch API job
    moves on by ``batch_poll_step`` fake seconds per status poll (the fake's clock otherwise stands).

    The replies are scripted answers for a lesson, served by the fake and recorded like any
    exchange; the notebook must say so where it shows them (and ``note`` in the file's header).
    The recording kernel does not fetch figures: the documented figure URLs point at real OSS
    hosts, which a recording run must not contact; their figure lines are added afterwards.
    """
    import tempfile

    import nbformat
    from nbclient import NotebookClient

    recording.unlink(missing_ok=True)
    ipython_dir = Path(tempfile.mkdtemp(prefix="dashmagic-record-"))
    (ipython_dir / "profile_default").mkdir()
    (ipython_dir / "profile_default" / "ipython_kernel_config.py").write_text("c.DashScopeMagics.embed_images = False\n")
    with ScriptedFake(answers or {}, rewrite_figure_urls=False) as fake:
        if batch_poll_step:
            from .batch import batches_of

            batches_of(fake).configure(poll_step=batch_poll_step, validate_delay=batch_poll_step,
                                       row_delay=batch_poll_step / 8, finalize_delay=batch_poll_step)
        for reply in replies:
            fake.queue_reply(reply)
        from ..config import Secret
        from ..transport import RecordingAdapter

        RecordingAdapter(recording, Secret(fake.api_key), note=note).close()  # writes the header
        env = {
            "DASHMAGIC_MODE": "record",
            "DASHMAGIC_RECORDINGS": str(recording.resolve()),
            "DASHSCOPE_HTTP_BASE_URL": fake.base_url,
            "DASHSCOPE_API_KEY": fake.api_key,
            "DASHMAGIC_LIVE": "0",
            "IPYTHONDIR": str(ipython_dir),
        }
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            nb = cast(Any, nbformat).read(notebook, as_version=4)  # nbformat is untyped
            NotebookClient(nb, timeout=120, kernel_name="python3",
                           resources={"metadata": {"path": str(notebook.parent)}}).execute()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    add_seed_figures(recording)
    return recording


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    demo = sub.add_parser("demo", help="rebuild the bundled demo recording")
    demo.add_argument("--out", type=Path, default=DEMO_PATH)
    demo.add_argument("--current-out", type=Path, default=CURRENT_DEMO_PATH)
    nb = sub.add_parser("notebook", help="record a notebook's exchanges")
    nb.add_argument("notebook", type=Path)
    nb.add_argument("recording", type=Path)
    nb.add_argument("--replies", type=Path, help="JSON list of scripted replies for non-seed prompts")
    nb.add_argument("--answers", type=Path, help="JSON object: prompt -> scripted reply (for concurrent rows)")
    nb.add_argument("--batch-poll-step", type=float, default=0.0, help="fake seconds a Batch API job moves per poll")
    nb.add_argument("--note", default=SEED_NOTE, help="the recording's header note (say where answers came from)")
    args = parser.parse_args(argv)
    if args.what == "demo":
        print(record_demo(args.out))
        print(record_current_demo(args.current_out))
    else:
        replies = json.loads(args.replies.read_text(encoding="utf-8")) if args.replies else []
        answers = json.loads(args.answers.read_text(encoding="utf-8")) if args.answers else None
        print(record_notebook(args.notebook, args.recording, replies, args.note, answers, args.batch_poll_step))
    return 0


if __name__ == "__main__":
    sys.exit(main())
