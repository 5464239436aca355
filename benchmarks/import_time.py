"""How much `import dashmagic` and `%load_ext dashmagic` cost, against bare baselines.

Run: python benchmarks/import_time.py [--runs N]

Each measurement is a fresh interpreter (so nothing is cached in sys.modules), timed
from outside with perf_counter; the median of N runs is printed next to the baseline of the
same run, as a difference and a ratio, because these machines are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

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

IN_PROCESS = (
    "import time\n"
    "from IPython.core.interactiveshell import InteractiveShell\n"
    "from traitlets.config import Config\n"
    "c = Config(); c.HistoryManager.hist_file = ':memory:'\n"
    "ip = InteractiveShell.instance(config=c)\n"
    "t = time.perf_counter(); ip.run_line_magic('load_ext', 'dashmagic'); print(time.perf_counter() - t)\n"
)


def wall(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env={"IPYTHONDIR": "/tmp/dashmagic-bench-ipython", "PATH": ""})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    runs = parser.parse_args().runs
    medians: dict[str, float] = {}
    for name, code in CASES.items():
        wall(code)  # warm the OS file cache
        medians[name] = statistics.median(wall(code) for _ in range(runs))
    base = medians["python -c pass"]
    shell = medians["bare InteractiveShell"]
    print(f"{'case':42} {'median':>10} {'vs baseline':>14}")
    for name, value in medians.items():
        ref = base if "InteractiveShell" not in name else shell
        print(f"{name:42} {value * 1000:8.1f} ms {(value - ref) * 1000:+10.1f} ms ({value / ref:.2f}x)")
    inproc = statistics.median(
        float(subprocess.run([sys.executable, "-c", IN_PROCESS], check=True, capture_output=True, text=True,
                             env={"IPYTHONDIR": "/tmp/dashmagic-bench-ipython", "PATH": ""}).stdout)
        for _ in range(runs)
    )
    print(f"{'%load_ext dashmagic, timed in-process':42} {inproc * 1000:8.1f} ms   (target: < 20 ms)")
    print(f"median of {runs} runs each; python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
