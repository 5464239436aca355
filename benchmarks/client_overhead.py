"""Client CPU per call: dashmagic run()/stream() vs the dashscope SDK's Generation.call, same request.

Run: python benchmarks/client_overhead.py [--runs N] [--calls N]

The request is the calculator seed exchange (plugins {"calculator": {}}, "12345*98765是多少",
seed 42, result_format "message"), answered by the loopback fake DashScope running in a
*separate process* (``python -m dashmagic.testing --event-delay 0``), so ``time.process_time()``
here counts only the client: building the request, HTTP, SSE parsing, JSON decoding, and the
client's own objects (dashmagic Traces / SDK GenerationResponses). Streaming answers are 10
events (chunk_chars 8); every snapshot/response is consumed.

Sessions: the SDK (2.0.2) sends every synchronous call through one pooled, process-wide
``requests.Session`` (``_get_shared_sync_session``), and so does dashmagic since it pools live
calls (``transport.shared_session``); the "default" rows measure that path and the
``session=shared`` rows a caller-supplied session, which should now cost the same. The fake answers
SSE with ``Connection: close``, so a stream can never reuse a connection.

Method: every round runs each case for ``--calls`` calls back to back (order rotated between
rounds, garbage collected before each batch), so all cases see the same machine load; the
per-call mean of each batch is one sample, the table shows the median over ``--runs`` rounds
and the dashmagic/SDK ratio is the median of the per-round ratios (paired, robust to noise).

Then "full magic with rendering": %%dashscope cells in a real InteractiveShell under
``capture_output()``: terminal-like (no kernel: one display at the end) and with a fake kernel
(live display: "waiting" placeholder, throttled updates, final update). CPU ms per cell.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    API_KEY,
    FakeKernel,
    FakeProcess,
    machine,
    make_shell,
    median,
    point_env_at,
    run_cell,
    spread,
    table,
)

PROMPT = "12345*98765是多少"
PLUGINS = {"calculator": {}}
SEED = 42
SYSTEM = "You are a helpful assistant."  # dashmagic's default system message; sent to the SDK too


def measure(fn: Callable[[], Any], calls: int) -> tuple[float, float]:
    """(CPU ms per call, wall ms per call) over a batch of ``calls`` calls."""
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(calls):
        fn()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return cpu * 1000 / calls, wall * 1000 / calls


def rounds(cases: dict[str, Callable[[], Any]], runs: int, calls: int, warmup: int = 3) -> dict[str, dict[str, list[float]]]:
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    names = list(cases)
    samples: dict[str, dict[str, list[float]]] = {n: {"cpu": [], "wall": []} for n in names}
    for index in range(runs):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            cpu, wall = measure(cases[name], calls)
            samples[name]["cpu"].append(cpu)
            samples[name]["wall"].append(wall)
    return samples


def client_cases(base_url: str) -> tuple[dict[str, Callable[[], Any]], Callable[[], None]]:
    import dashscope
    import requests
    from dashscope import Generation

    import dashmagic
    from dashmagic.transport import new_session

    dashscope.base_http_api_url = base_url
    shared = new_session()
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
    common = {"plugins": PLUGINS, "seed": SEED, "api_key": API_KEY, "base_url": base_url}

    def dm_run() -> None:
        trace = dashmagic.run(PROMPT, **common)
        assert trace.ok and trace.answer and "1219253925" in trace.answer

    def dm_run_shared() -> None:
        trace = dashmagic.run(PROMPT, session=shared, **common)
        assert trace.ok

    def dm_stream() -> None:
        last = None
        for last in dashmagic.stream(PROMPT, **common):
            pass
        assert last is not None and last.ok and last.events == 10

    def dm_stream_shared() -> None:
        last = None
        for last in dashmagic.stream(PROMPT, session=shared, **common):
            pass
        assert last is not None and last.ok

    sdk_args = {
        "model": "qwen-plus", "messages": messages, "result_format": "message", "plugins": PLUGINS,
        "api_key": API_KEY, "seed": SEED,
    }

    def sdk_call() -> None:
        response = Generation.call(stream=False, **sdk_args)
        assert response.status_code == 200, response

    def sdk_stream() -> None:
        count = 0
        for response in Generation.call(stream=True, **sdk_args):
            assert response.status_code == 200, response
            count += 1
        assert count == 10

    cases = {
        "dashmagic run() default (pooled session)": dm_run,
        "dashmagic run(session=shared)": dm_run_shared,
        "SDK Generation.call(stream=False)": sdk_call,
        "dashmagic stream() default (pooled session)": dm_stream,
        "dashmagic stream(session=shared)": dm_stream_shared,
        "SDK Generation.call(stream=True)": sdk_stream,
    }
    assert isinstance(shared, requests.Session)
    return cases, shared.close


def render_case(base_url: str) -> dict[str, Callable[[], Any]]:
    import dashmagic
    from dashmagic.render import mimebundle

    trace = dashmagic.run(PROMPT, plugins=PLUGINS, seed=SEED, api_key=API_KEY, base_url=base_url)
    return {"render final trace: mimebundle() (text/plain + text/html)": lambda: mimebundle(trace)}


def magic_cases(shell: Any) -> dict[str, Callable[[], Any]]:
    from IPython.utils.capture import capture_output

    cell = f"%%dashscope --plugins calculator --seed 42 {{flags}}\n{PROMPT}\n"

    def runner(flags: str, kernel: bool) -> Callable[[], None]:
        text = cell.format(flags=flags)

        def go() -> None:
            if kernel:
                shell.kernel = FakeKernel()
            try:
                with capture_output() as cap:
                    run_cell(shell, text)
            finally:
                if kernel:
                    del shell.kernel
            assert cap.outputs and "1219253925" in cap.outputs[-1].data["text/plain"]

        return go

    def baseline() -> None:
        with capture_output():
            run_cell(shell, "x = 1")

    return {
        "baseline: run_cell('x = 1')": baseline,
        "%%dashscope --no-stream, terminal (no kernel)": runner("--no-stream", kernel=False),
        "%%dashscope --no-stream, kernel (live display)": runner("--no-stream", kernel=True),
        "%%dashscope --stream, kernel (live display)": runner("--stream", kernel=True),
    }


def sdk_session_note() -> str:
    try:
        from dashscope.api_entities import http_request
    except ImportError:  # pragma: no cover - other SDK layouts
        return "could not inspect the SDK's session handling."
    import dashscope

    version = getattr(dashscope, "__version__", "?")
    if hasattr(http_request, "_get_shared_sync_session"):
        return (f"the SDK ({version}) sends every call through one pooled, process-wide requests.Session "
                "(http_request._get_shared_sync_session), as dashmagic's run()/stream() and the magic do "
                "(transport.shared_session). SSE answers close the connection, so streams cannot reuse one.")
    return f"the SDK ({version}) has no shared session: it opens one per call, like dashmagic's default."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="rounds; medians are over rounds (default 7)")
    parser.add_argument("--calls", type=int, default=30, help="calls per case per round (default 30)")
    args = parser.parse_args()

    with FakeProcess() as fake:
        point_env_at(fake.base_url)
        cases, close_shared = client_cases(fake.base_url)
        try:
            samples = rounds(cases, args.runs, args.calls)
        finally:
            close_shared()
        render = rounds(render_case(fake.base_url), args.runs, args.calls)
        shell = make_shell()
        magic = rounds(magic_cases(shell), args.runs, max(5, args.calls // 2))

    def ratio(name: str, sdk: str, key: str) -> float:
        return median(a / b for a, b in zip(samples[name][key], samples[sdk][key]))

    rows = []
    for name, data in samples.items():
        sdk = "SDK Generation.call(stream=False)" if "run(" in name or "False" in name else "SDK Generation.call(stream=True)"
        is_sdk = name.startswith("SDK")
        rows.append([
            name,
            f"{median(data['cpu']):.2f}",
            spread(data["cpu"]),
            f"{median(data['wall']):.2f}",
            "1 (reference)" if is_sdk else f"{ratio(name, sdk, 'cpu'):.2f}",
            "1 (reference)" if is_sdk else f"{ratio(name, sdk, 'wall'):.2f}",
        ])
    print(table(
        ["case (calculator seed exchange)", "CPU ms/call", "CPU range", "wall ms/call", "CPU ÷ SDK", "wall ÷ SDK"],
        rows,
        title=f"## Client overhead per call (median of {args.runs} rounds × {args.calls} calls; server in another process)",
    ))
    print()
    print(f"Sessions: {sdk_session_note()}")
    print()
    print("Target: dashmagic CPU per call ≤ the SDK's (CPU ÷ SDK ≤ 1). Checks:")
    for name in samples:
        if name.startswith("SDK"):
            continue
        sdk = "SDK Generation.call(stream=False)" if "run(" in name else "SDK Generation.call(stream=True)"
        value = ratio(name, sdk, "cpu")
        print(f"  {name:48} {value:5.2f}  {'met' if value <= 1.0 else 'MISSED'}")
    print()
    mrows = [[n, f"{median(d['cpu']):.2f}", spread(d["cpu"]), f"{median(d['wall']):.2f}"] for n, d in {**render, **magic}.items()]
    print(table(
        ["full magic with rendering", "CPU ms/cell", "CPU range", "wall ms/cell"],
        mrows,
        title=f"## %%dashscope cells in a real InteractiveShell under capture_output() (median of {args.runs} rounds)",
    ))
    print()
    print(f"machine: {machine()}")


if __name__ == "__main__":
    main()
