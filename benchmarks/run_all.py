"""Run every dashmagic benchmark, one after the other, printing their tables to stdout.

Run: python benchmarks/run_all.py [--runs N] [--only NAME ...]

The benchmarks run sequentially (never in parallel: the machine has 2 cores and each benchmark
compares cases side by side within its own run). ``--runs`` is passed on to each of them (their
own defaults apply otherwise). Nothing is written to disk; a benchmark that cannot run (e.g.
the quickstart notebook is missing) says so in its output.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("import_time", "client_overhead", "streaming_cost", "replay_notebook")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, help="passed on to every benchmark")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these")
    args = parser.parse_args()
    summary = []
    for name in args.only or BENCHMARKS:
        command = [sys.executable, str(HERE / f"{name}.py")]
        if args.runs is not None:
            command += ["--runs", str(args.runs)]
        print(f"# {name}: python benchmarks/{name}.py{'' if args.runs is None else f' --runs {args.runs}'}", flush=True)
        print(flush=True)
        start = time.perf_counter()
        code = subprocess.run(command, stderr=subprocess.STDOUT).returncode
        elapsed = time.perf_counter() - start
        summary.append((name, code, elapsed))
        print(flush=True)
        print(f"({name}: exit status {code}, {elapsed:.0f} s)", flush=True)
        print(flush=True)
    print("# summary")
    for name, code, elapsed in summary:
        print(f"  {name:16} {'ok' if code == 0 else f'FAILED (exit {code})':18} {elapsed:6.0f} s")
    return 0 if all(code == 0 for _, code, _ in summary) else 1


if __name__ == "__main__":
    raise SystemExit(main())
