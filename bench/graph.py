"""Benchmark: `bgpgen graph` of gen.py's inventory (10 racks x 40 nodes at 400 nodes): the time to
draw the SVG (model, Graphviz source, Graphviz's layout) and its size, beside Graphviz alone on
the same source (the layout engine's own floor: what any tool drawing this picture pays).

    .venv/bin/python bench/graph.py [--nodes 400] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from gen import generate  # noqa: E402

from bgpgen import graph, load_fabric  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--collapse", type=int, default=0, help="0: every node drawn")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inv = generate(args.nodes, Path(tmp) / "inv")
        ours, floor, size = [], [], 0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fabric = load_fabric(inv)
            source = graph.dot(fabric, graph.edges(fabric), args.collapse or None)
            text = graph.svg(source)
            ours.append(time.perf_counter() - t0)
            size = len(text.encode())
            t0 = time.perf_counter()
            subprocess.run(["dot", "-Tsvg"], input=source, capture_output=True, text=True,
                           check=True)
            floor.append(time.perf_counter() - t0)
    b, f = statistics.median(ours), statistics.median(floor)
    print("| nodes | session edges drawn | bgpgen graph (svg) | dot alone on the same source "
          "| SVG size |")
    print("|---:|---:|---:|---:|---:|")
    drawn = text.count('class="edge session') + text.count('class="edge summary')
    print(f"| {args.nodes} | {drawn} | {b:.2f} s | {f:.2f} s | "
          f"{size / 1e6:.2f} MB |")
    print(f"(medians of {args.repeat}; collapse {'off' if not args.collapse else args.collapse})")


if __name__ == "__main__":
    main()
