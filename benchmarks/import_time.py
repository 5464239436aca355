"""How much `import dashmagic` and `%load_ext dashmagic` cost, against bare baselines.

Run: python benchmarks/import_time.py [--runs N]

Each measurement is a fresh interpreter (so nothing is cached in sys.modules), timed
from outside with perf_counter; the cases are run round-robin (one of each per round), so
every case sees the same machine load, and the median of N rounds is printed next to the
baseline of the same rounds, as a difference and a ratio, because these machines are noisy.
The "added" column is the median of the per-round differences (paired).

Last, ``%load_ext dashmagic`` timed inside the process (perf_counter around the line magic,
after the shell exists): the number the < 20 ms target is about. The extension must not import
requests or ipywidgets at load time (asserted).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IPYTHONDIR = os.path.join(tempfile.gettempdir(), "dashmagic-bench-ipython")
TARGET_MS = 20.0

CASES = {
    "python -c pass": "pass",
    "import dashmagic": "import dashmagic",
    "bare InteractiveShell": (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "from traitlets.config import Config\n"
        "c = Config(); c.HistoryManager.hist_file = ':memory:'\n"
        "ip = InteractiveShell.instance(config=c)\n"
    ),
    "InteractiveShell + %load_ext dashmagic": (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "from traitlets.config import Config\n"
        "c = Config(); c.HistoryManager.hist_file = ':memory:'\n"
        "ip = InteractiveShell.instance(config=c)\n"
        "ip.run_line_magic('load_ext', 'dashmagic')\n"
        "import sys; assert 'requests' not in sys.modules and 'ipywidgets' not in sys.modules\n"
    ),
}
BASELINE = {
    "python -c pass": None,
    "import dashmagic": "python -c pass",
    "bare InteractiveShell": "python -c pass",
    "InteractiveShell + %load_ext dashmagic": "bare InteractiveShell",
}

IN_PROCESS = (
    "import time\n"
    "from IPython.core.interactiveshell import InteractiveShell\n"
    "from traitlets.config import Config\n"
    "c = Config(); c.HistoryManager.hist_file = ':memory:'\n"
    "ip = InteractiveShell.instance(config=c)\n"
    "t = time.perf_counter(); ip.run_line_magic('load_ext', 'dashmagic'); print(time.perf_counter() - t)\n"
    "import sys; assert 'requests' not in sys.modules and 'ipywidgets' not in sys.modules\n"
)


def _env() -> dict[str, str]:
    # No user site, no ~/.ipython; this checkout first on the path (works without installing).
    return {"IPYTHONDIR": IPYTHONDIR, "PATH": "", "PYTHONPATH": str(ROOT)}


def wall(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=_env())
    return time.perf_counter() - start


def in_process() -> float:
    out = subprocess.run([sys.executable, "-c", IN_PROCESS], check=True, capture_output=True, text=True, env=_env())
    return float(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    runs = parser.parse_args().runs
    for code in CASES.values():
        wall(code)  # warm the OS file cache
    samples: dict[str, list[float]] = {name: [] for name in CASES}
    inproc: list[float] = []
    for _ in range(runs):
        for name, code in CASES.items():
            samples[name].append(wall(code))
        inproc.append(in_process())

    print(f"## Import and extension load (fresh interpreter per measurement, median of {runs} rounds)")
    print()
    print(f"| {'case':40} | {'median':>10} | {'baseline':22} | {'added (paired)':>15} | {'ratio':>6} |")
    print(f"|{'-' * 42}|{'-' * 12}|{'-' * 24}|{'-' * 17}|{'-' * 8}|")
    for name, values in samples.items():
        ref = BASELINE[name]
        value = statistics.median(values)
        if ref is None:
            print(f"| {name:40} | {value * 1000:7.1f} ms | {'—':22} | {'—':>15} | {'—':>6} |")
            continue
        added = statistics.median(a - b for a, b in zip(values, samples[ref]))
        ratio = value / statistics.median(samples[ref])
        print(f"| {name:40} | {value * 1000:7.1f} ms | {ref:22} | {added * 1000:+12.1f} ms | {ratio:5.2f}x |")
    load = statistics.median(inproc)
    print()
    print(f"%load_ext dashmagic timed in-process: median {load * 1000:.1f} ms "
          f"(runs {min(inproc) * 1000:.1f}–{max(inproc) * 1000:.1f} ms); target < {TARGET_MS:.0f} ms: "
          f"{'met' if load * 1000 < TARGET_MS else 'MISSED'}")
    print(f"python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
