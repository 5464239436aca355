"""Does a long streamed answer cost O(1) per event? stream() and %%dashscope at 1k–8k SSE events.

Run: python benchmarks/streaming_cost.py [--runs N] [--sizes 1000,2000,4000,8000] [--no-huge]

The answer is one ``message`` reply (Thought + Final Answer, Markdown, Chinese and ASCII mixed)
whose content is exactly ``events × 4`` characters, so the fake (``chunk_chars=4``,
``event_delay=0``) streams it in exactly ``events`` SSE events. Both stream shapes are run:

* snapshot (the default, ``incremental_output`` false): every event repeats the whole text so
  far, so the bytes on the wire grow quadratically with the answer and decoding each event's
  JSON is inherently linear in the text so far;
* incremental (``--param incremental_output=true`` / ``parameters={"incremental_output": True}``):
  each event is a delta of 4 characters.

The fake runs in a *separate process* (``benchmarks/_queue_server.py``, replies scripted over a
pipe), because building and JSON-encoding thousands of growing events costs it more CPU than the
client spends and ``time.process_time()`` counts every thread of the measuring process.

Measured, per size and mode (medians of ``--runs`` runs):

(a) client CPU per event of ``dashmagic.stream()`` consuming every snapshot; split, offline on
    the same frames, into SSE decoding (``dashmagic.sse.SSEDecoder``), bare ``json.loads`` of
    the payloads, and ``TraceBuilder.feed``; the rest of (a) is HTTP reading (urllib3) and the
    per-call constant;
(b) CPU per event of a whole ``%%dashscope --stream`` cell in a real InteractiveShell with a
    fake kernel (live display, throttled at 0.1 s) under ``capture_output()``;
(c) display updates and bytes sent to the frontend (``last_display.updates``/``.bytes_sent``),
    against the throttle's bound (one update per interval plus the placeholder, the first
    content and the final one);
(d) time from the client decoding the first SSE event (``SSEDecoder.feed`` returning it) to the
    first publish with content (a DisplayPublisher recording ``perf_counter()``; the first
    publish is the "waiting" placeholder), warm (pipeline already imported), and cold: the first
    cell of a fresh process (``--cold-probe``), where the renderers are imported on first use.

Last, one huge event (the fake's ``huge_response`` fault: a 10 MiB answer in a single SSE data
line is a documented reliability case) through ``SSEDecoder`` in 64 KiB chunks, as
``_read_chunks`` reads them, against ``json.loads`` of the same data.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    API_KEY,
    FakeKernel,
    FakeProcess,
    machine,
    magics_of,
    make_shell,
    median,
    point_env_at,
    run_cell,
    table,
)

CHUNK = 4
SIZES = (1000, 2000, 4000, 8000)
MODES = ("snapshot", "incremental")
HUGE_MIB = (1, 2, 4)
PROMPT = "Write a long answer."
HERE = Path(__file__).resolve().parent

_BODY = (
    "第{n}段:流式输出的每个事件都会更新这段文字。The quick brown fox **jumps** over the lazy dog; "
    "数据 `{n}` 行,结果如下。\n\n- 要点 {n}:增量输出 *incremental output*\n- 要点 {n}b:完整快照\n\n"
)


def answer_text(chars: int) -> str:
    head = "Thought: 我现在可以作答了。\nFinal Answer: "
    body = []
    size = len(head)
    n = 1
    while size < chars:
        piece = _BODY.format(n=n)
        body.append(piece)
        size += len(piece)
        n += 1
    return (head + "".join(body))[:chars]


def make_reply(events: int) -> dict[str, Any]:
    text = answer_text(events * CHUNK)
    return {
        "output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": text}}]},
        "usage": {"input_tokens": 12, "output_tokens": events, "total_tokens": events + 12},
        "request_id": f"bench-{events}",
    }


def expected_answer(events: int) -> str:
    return answer_text(events * CHUNK).partition("Final Answer:")[2].strip()


# -- first-event and publish timestamps ----------------------------------------------------------

FIRST_EVENT: list[float | None] = [None]


def hook_first_event() -> None:
    """Record when the client has decoded the first SSE event (before JSON/trace/render)."""
    from dashmagic.sse import SSEDecoder

    original = SSEDecoder.feed
    if getattr(original, "_bench_hook", False):
        return

    def feed(self: Any, chunk: bytes) -> Any:
        events = original(self, chunk)
        if events and FIRST_EVENT[0] is None:
            FIRST_EVENT[0] = time.perf_counter()
        return events

    feed._bench_hook = True  # type: ignore[attr-defined]
    SSEDecoder.feed = feed  # type: ignore[method-assign]


def timing_publisher() -> Any:
    from IPython.core.displaypub import CapturingDisplayPublisher

    class TimingPublisher(CapturingDisplayPublisher):  # type: ignore[misc]
        """Records when each bundle is published and its size; keeps only the last output."""

        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []
            self.sizes: list[int] = []

        def publish(self, data: Any, metadata: Any = None, source: Any = None, **kwargs: Any) -> None:
            self.times.append(time.perf_counter())
            self.sizes.append(sum(len(v) for v in data.values()))
            self.outputs[:] = []
            super().publish(data, metadata, source, **kwargs)

    return TimingPublisher()


# -- the measurements ----------------------------------------------------------------------------


def run_stream(fake: FakeProcess, events: int, incremental: bool) -> dict[str, float]:
    import dashmagic

    assert fake.command(json.dumps(make_reply(events), ensure_ascii=False)) == "queued"
    params = {"incremental_output": True} if incremental else None
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    last = None
    for last in dashmagic.stream(PROMPT, plugins=["calculator"], parameters=params, api_key=API_KEY,
                                 base_url=fake.base_url, timeout=(10, 120)):
        pass
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    assert last is not None and last.ok and last.events == events, (last.status, last.events)
    assert last.answer == expected_answer(events)
    return {"cpu": cpu, "wall": wall}


def run_sdk(fake: FakeProcess, events: int, incremental: bool) -> dict[str, float]:
    """Reference: the dashscope SDK's Generation.call(stream=True) on the same stream."""
    import dashscope
    from dashscope import Generation

    dashscope.base_http_api_url = fake.base_url
    assert fake.command(json.dumps(make_reply(events), ensure_ascii=False)) == "queued"
    extra = {"incremental_output": True} if incremental else {}
    gc.collect()
    cpu0 = time.process_time()
    count = 0
    for response in Generation.call(model="qwen-plus", messages=[{"role": "user", "content": PROMPT}],
                                    result_format="message", plugins={"calculator": {}}, api_key=API_KEY,
                                    stream=True, **extra):
        assert response.status_code == 200, response
        count += 1
    cpu = time.process_time() - cpu0
    assert count == events
    return {"sdk_cpu": cpu}


def run_magic(shell: Any, fake: FakeProcess, events: int, incremental: bool) -> dict[str, float]:
    from IPython.utils.capture import capture_output

    assert fake.command(json.dumps(make_reply(events), ensure_ascii=False)) == "queued"
    flags = "--plugins calculator --stream --out dm_bench" + (" --param incremental_output=true" if incremental else "")
    cell = f"%%dashscope {flags}\n{PROMPT}\n"
    shell.kernel = FakeKernel()
    FIRST_EVENT[0] = None
    try:
        with capture_output():
            publisher = shell.display_pub = timing_publisher()  # restored by capture_output
            gc.collect()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            run_cell(shell, cell)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        del shell.kernel
    trace = shell.user_ns.pop("dm_bench")
    assert trace.ok and trace.events == events and trace.answer == expected_answer(events)
    view = magics_of(shell).last_display
    first = FIRST_EVENT[0]
    assert first is not None and len(publisher.times) >= 2 and publisher.times[1] >= first
    return {
        "cpu": cpu,
        "wall": wall,
        "updates": view.updates,
        "bytes": view.bytes_sent,
        "final": publisher.sizes[-1],
        "latency": publisher.times[1] - first,
        "interval": view.interval,
    }


def frames_for(events: int, incremental: bool) -> list[bytes]:
    """The exact SSE frames the fake sends for this reply."""
    from dashmagic.testing import format_event, sse_events

    payloads = sse_events(make_reply(events), chunk_chars=CHUNK, incremental=incremental)
    assert len(payloads) == events
    return [format_event(i + 1, p) for i, p in enumerate(payloads)]


def run_offline(frames: list[bytes], incremental: bool) -> dict[str, float]:
    """SSE decoding, bare json.loads and TraceBuilder.feed of the same frames, timed apart."""
    from dashmagic.events import TraceBuilder
    from dashmagic.request import build_call
    from dashmagic.sse import SSEDecoder

    info = build_call(PROMPT, plugins=["calculator"], stream=True, base_url="http://127.0.0.1:1/api/v1").info
    gc.collect()
    decoder = SSEDecoder()
    t0 = time.process_time()
    data = [event.data for frame in frames for event in decoder.feed(frame)]
    t1 = time.process_time()
    payloads = [json.loads(d) for d in data]
    t2 = time.process_time()
    builder = TraceBuilder(info)
    for payload in payloads:
        builder.feed(payload, incremental=incremental)
    t3 = time.process_time()
    assert builder.trace.events == len(frames)
    del data, payloads
    from dashmagic.render import mimebundle

    t4 = time.process_time()
    mimebundle(builder.trace)
    t5 = time.process_time()
    return {"sse": t1 - t0, "json": t2 - t1, "builder": t3 - t2, "render": t5 - t4,
            "wire": sum(len(f) for f in frames) / len(frames)}


def run_huge(mib: int) -> dict[str, float]:
    from dashmagic.sse import SSEDecoder

    body = json.dumps({"output": {"choices": [{"message": {"role": "assistant", "content": "x" * (mib << 20)}}]}})
    frame = b"id:2\nevent:result\n:HTTP_STATUS/200\ndata:" + body.encode() + b"\n\n"
    gc.collect()
    decoder = SSEDecoder()
    t0 = time.process_time()
    out = []
    for start in range(0, len(frame), 65536):
        out.extend(decoder.feed(frame[start : start + 65536]))
    out.extend(decoder.close())
    t1 = time.process_time()
    json.loads(out[0].data)
    t2 = time.process_time()
    assert len(out) == 1
    return {"sse": t1 - t0, "json": t2 - t1}


def run_huge_http(fake: FakeProcess, mib: int) -> float:
    """The huge_response fault through stream() over HTTP: CPU seconds for the whole call."""
    import dashmagic

    assert fake.command(json.dumps({"__inject__": "huge_response", "size": mib << 20})) == "queued"
    gc.collect()
    cpu0 = time.process_time()
    last = None
    for last in dashmagic.stream(PROMPT, api_key=API_KEY, base_url=fake.base_url, timeout=(10, 120)):
        pass
    assert last is not None and last.ok and last.events == 2
    return time.process_time() - cpu0


# -- cold first update (fresh process) -------------------------------------------------------------


def cold_probe(base_url: str, events: int) -> None:
    """Child mode: the first %%dashscope cell of a fresh process; prints one JSON line."""
    point_env_at(base_url)
    hook_first_event()
    shell = make_shell()
    result = run_magic_cold(shell, events)
    print(json.dumps(result))


def run_magic_cold(shell: Any, events: int) -> dict[str, float]:
    from IPython.utils.capture import capture_output

    shell.kernel = FakeKernel()
    FIRST_EVENT[0] = None
    with capture_output():
        publisher = shell.display_pub = timing_publisher()
        cpu0 = time.process_time()
        run_cell(shell, f"%%dashscope --plugins calculator --stream\n{PROMPT}\n")
        cpu = time.process_time() - cpu0
    first = FIRST_EVENT[0]
    assert first is not None and len(publisher.times) >= 2
    return {"latency": publisher.times[1] - first, "cpu": cpu}


def run_cold(fake: FakeProcess, events: int = 200) -> dict[str, float]:
    assert fake.command(json.dumps(make_reply(events), ensure_ascii=False)) == "queued"
    out = subprocess.run(
        [sys.executable, __file__, "--cold-probe", fake.base_url, "--sizes", str(events)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


# -- main --------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement; medians are printed (default 3)")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated event counts")
    parser.add_argument("--no-huge", action="store_true", help="skip the single huge event case")
    parser.add_argument("--sdk", action="store_true",
                        help="also time the dashscope SDK's Generation.call(stream=True) as a reference (slow: "
                             "its iter_lines makes 8,000 snapshot events cost ~10 s)")
    parser.add_argument("--cold-probe", metavar="BASE_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.cold_probe:
        cold_probe(args.cold_probe, sizes[0])
        return

    hook_first_event()
    results: dict[tuple[str, int], dict[str, list[float]]] = {}
    huge: dict[int, dict[str, list[float]]] = {}
    cold: list[float] = []
    started = time.perf_counter()
    with FakeProcess([str(HERE / "_queue_server.py"), "--chunk-chars", str(CHUNK), "--event-delay", "0"]) as fake:
        point_env_at(fake.base_url)
        shell = make_shell()
        run_stream(fake, 50, False)  # warm: imports, connections, renderers
        run_magic(shell, fake, 50, False)
        frames = {(m, n): frames_for(n, m == "incremental") for m in MODES for n in sizes}
        for run in range(args.runs):
            for mode in MODES:
                incremental = mode == "incremental"
                for n in sizes:
                    row = results.setdefault((mode, n), {})
                    measured = {
                        **{f"stream_{k}": v for k, v in run_stream(fake, n, incremental).items()},
                        **{f"magic_{k}": v for k, v in run_magic(shell, fake, n, incremental).items()},
                        **run_offline(frames[(mode, n)], incremental),
                        **(run_sdk(fake, n, incremental) if args.sdk else {}),
                    }
                    for key, value in measured.items():
                        row.setdefault(key, []).append(value)
            cold.append(run_cold(fake)["latency"])
            if not args.no_huge:
                for mib in HUGE_MIB:
                    entry = huge.setdefault(mib, {})
                    for key, value in run_huge(mib).items():
                        entry.setdefault(key, []).append(value)
                    entry.setdefault("http", []).append(run_huge_http(fake, mib))
        del frames
    report(results, sizes, huge, cold, args.runs, time.perf_counter() - started, args.sdk)


def report(results: dict[tuple[str, int], dict[str, list[float]]], sizes: list[int],
           huge: dict[int, dict[str, list[float]]], cold: list[float], runs: int, elapsed: float,
           sdk: bool = False) -> None:
    def med(mode: str, n: int, key: str) -> float:
        return median(results[(mode, n)][key])

    def per_event_us(mode: str, n: int, key: str) -> float:
        return med(mode, n, key) / n * 1e6

    lo, hi = sizes[0], sizes[-1]

    def growth(mode: str, key: str) -> str:
        return f"{med(mode, hi, key) / med(mode, lo, key):.2f}"

    for mode in MODES:
        rows = []
        for n in sizes:
            ours = per_event_us(mode, n, "sse") + per_event_us(mode, n, "builder")
            rest = per_event_us(mode, n, "stream_cpu") - ours - per_event_us(mode, n, "json")
            rows.append([
                n,
                f"{med(mode, n, 'wire') / 1000:.1f}",
                f"{per_event_us(mode, n, 'stream_cpu'):.1f}",
                f"{per_event_us(mode, n, 'json'):.1f}",
                f"{per_event_us(mode, n, 'sse'):.1f}",
                f"{per_event_us(mode, n, 'builder'):.1f}",
                f"{rest:.1f}",
                f"{med(mode, n, 'stream_wall'):.2f}",
                *([f"{per_event_us(mode, n, 'sdk_cpu'):.1f}"] if sdk else []),
            ])
        # per-event ratio = ratio of totals × lo/hi
        scale = lo / hi
        ratio = [f"{hi}/{lo} per event", growth(mode, "wire")]
        for key in ("stream_cpu", "json", "sse", "builder"):
            ratio.append(f"{med(mode, hi, key) / med(mode, lo, key) * scale:.2f}")
        ratio += ["", ""]
        if sdk:
            ratio.append(f"{med(mode, hi, 'sdk_cpu') / med(mode, lo, 'sdk_cpu') * scale:.2f}")
        rows.append(ratio)
        print(table(
            ["events", "avg event kB", "(a) stream() CPU µs/event", "bare json.loads", "SSE decode",
             "TraceBuilder", "HTTP+rest", "stream() wall s", *(["SDK stream=True CPU µs/event"] if sdk else [])],
            rows,
            title=f"## {mode} mode (a): stream() client CPU per event and its parts (median of {runs} runs)",
        ))
        print()
        rows = []
        for n in sizes:
            rows.append([
                n,
                f"{per_event_us(mode, n, 'magic_cpu'):.1f}",
                f"{per_event_us(mode, n, 'magic_cpu') - per_event_us(mode, n, 'stream_cpu'):.1f}",
                f"{med(mode, n, 'magic_wall'):.2f}",
                f"{med(mode, n, 'magic_wall') / med(mode, n, 'stream_wall'):.2f}",
                f"{med(mode, n, 'render') * 1000:.1f}",
            ])
        rows.append([f"{hi}/{lo} per event",
                     f"{med(mode, hi, 'magic_cpu') / med(mode, lo, 'magic_cpu') * scale:.2f}", "", "", "",
                     growth(mode, "render")])
        print(table(
            ["events", "(b) %%dashscope cell CPU µs/event", "minus stream() (display)", "cell wall s",
             "cell wall ÷ stream() wall", "one render of the final trace, ms"],
            rows,
            title=f"## {mode} mode (b): the whole %%dashscope --stream cell, live display (median of {runs} runs)",
        ))
        print()

    rows = []
    for mode in MODES:
        for n in sizes:
            wall = med(mode, n, "magic_wall")
            interval = med(mode, n, "magic_interval")
            bound = int(wall / interval) + 3
            updates = med(mode, n, "magic_updates")
            final = med(mode, n, "magic_final")
            rows.append([
                mode, n, f"{updates:.0f}", f"{bound}", f"{med(mode, n, 'magic_bytes') / 1e6:.2f} MB",
                f"{final / 1e3:.0f} kB", f"{n * final / 1e6:.0f} MB",
                f"{med(mode, n, 'magic_latency') * 1000:.1f}",
            ])
    print(table(
        ["mode", "events", "(c) updates", "throttle bound", "bytes to frontend", "final bundle",
         "events × final bundle (unthrottled upper bound)", "(d) first update ms (warm)"],
        rows,
        title=f"## Live display: updates, bytes to the frontend, first visible update (median of {runs} runs)",
    ))
    print()
    print(f"(d) cold (first cell in a fresh process, 200 events): first update {median(cold) * 1000:.1f} ms "
          f"after the first event (runs: {', '.join(f'{c * 1000:.1f}' for c in cold)})")
    print()
    if huge:
        rows = []
        for mib, entry in huge.items():
            rows.append([f"{mib} MiB", f"{median(entry['sse']) * 1000:.0f}", f"{median(entry['json']) * 1000:.1f}",
                         f"{median(entry['sse']) / median(entry['json']):.0f}×", f"{median(entry['http']) * 1000:.0f}"])
        print(table(
            ["one SSE event of", "SSEDecoder CPU ms (64 KiB chunks)", "json.loads CPU ms", "SSE ÷ JSON",
             "stream() over HTTP, CPU ms (huge_response fault)"],
            rows,
            title=f"## One huge event (median of {runs} runs)",
        ))
        print()
    targets(results, sizes, cold)
    print()
    print(f"machine: {machine()}")
    print(f"total time {elapsed:.0f} s")


def targets(results: dict[tuple[str, int], dict[str, list[float]]], sizes: list[int], cold: list[float]) -> None:
    lo, hi = sizes[0], sizes[-1]

    def pe(mode: str, n: int, key: str) -> float:
        return median(results[(mode, n)][key]) / n

    print("Targets (CPU per event flat: ratio ≤ 1.25):")
    for mode in MODES:
        ours_lo = pe(mode, lo, "sse") + pe(mode, lo, "builder")
        ours_hi = pe(mode, hi, "sse") + pe(mode, hi, "builder")
        wire = median(results[(mode, hi)]["wire"]) / median(results[(mode, lo)]["wire"])
        jsn = pe(mode, hi, "json") / pe(mode, lo, "json")
        print(f"  {mode:11} payload bytes/event grow {wire:.2f}×, bare json.loads/event {jsn:.2f}×")
        for label, value in (
            ("stream() CPU/event", pe(mode, hi, "stream_cpu") / pe(mode, lo, "stream_cpu")),
            ("our code (SSE+TraceBuilder) CPU/event", ours_hi / ours_lo),
            ("magic CPU/event", pe(mode, hi, "magic_cpu") / pe(mode, lo, "magic_cpu")),
        ):
            verdict = "flat" if value <= 1.25 else "GROWS"
            print(f"  {mode:11} {label:40} {hi}/{lo} = {value:5.2f}  {verdict}")
    for mode in MODES:
        for n in sizes:
            entry = results[(mode, n)]
            bound = int(median(entry["magic_wall"]) / median(entry["magic_interval"])) + 3
            ok = median(entry["magic_updates"]) <= bound
            print(f"  {mode:11} {n:5} events: updates {median(entry['magic_updates']):.0f} ≤ throttle bound {bound}: "
                  f"{'met' if ok else 'MISSED'}")
    worst = max(median(results[(m, n)]["magic_latency"]) for m in MODES for n in sizes)
    print(f"  first visible update ≤ 50 ms after the first event: warm worst {worst * 1000:.1f} ms "
          f"{'met' if worst <= 0.05 else 'MISSED'}; cold {median(cold) * 1000:.1f} ms "
          f"{'met' if median(cold) <= 0.05 else 'MISSED'}")


if __name__ == "__main__":
    main()
