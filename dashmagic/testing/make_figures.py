"""Re-create ``fig-001.png``, the figure of the seed's code_interpreter plot exchange.

This is a LOCAL RE-RUN of the code the plugin documented in its ``plugin_call.arguments``
(``np.linspace(-10, 10, 400)``, ``y = x**2``, ``plt.plot``, the title, the grid), drawn with
matplotlib's Agg backend. It is NOT the image the service produced: that one lived behind a
signed OSS URL which expired in November 2023 and was never published. The fake serves this file
at the rewritten URL so clients can be tested with a real PNG.

    python -m dashmagic.testing.make_figures [--out PATH]

The output is deterministic for a given matplotlib/FreeType version: no ``Software`` or other
PNG text metadata, a fixed size and DPI, and nothing random in the drawing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["DPI", "main", "render_plot"]

DPI = 72  # 461 x 346 px: small enough to live in the package (well under 40 KB)
DEFAULT_OUT = Path(__file__).with_name("fig-001.png")


def render_plot(out: Path) -> Path:
    """Run the documented plot code and save it as PNG at ``out``."""
    import matplotlib

    matplotlib.use("Agg")  # headless; must happen before pyplot is imported
    import matplotlib.pyplot as plt
    import numpy as np

    with plt.rc_context({"figure.figsize": (6.4, 4.8), "figure.dpi": DPI}):
        fig = plt.figure()
        # --- the plugin's own code, verbatim except for plt.show() ---
        x = np.linspace(-10, 10, 400)
        y = x**2

        plt.plot(x, y)
        plt.title("Function Graph: $y=x^2$")
        plt.grid(True)
        # --- end of the plugin's code ---
        fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
        plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dashmagic.testing.make_figures", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output file (default: {DEFAULT_OUT.name} in the package)"
    )
    args = parser.parse_args(argv)
    path = render_plot(args.out)
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
