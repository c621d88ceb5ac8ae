"""What the lab-backed benchmarks share: a lab of gen.py's inventory, runs interleaved with
their baseline, medians printed as a table row."""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

from gen import generate

from bgpgen import lab, load_fabric

Timed = Callable[[Path, int], float]


def side_by_side(name: str, nodes: int, ours: Timed, limit: Timed, repeat: int, workers: int,
                 titles: tuple[str, str], before: Callable[[Path], None] | None = None) -> None:
    """Start a lab of ``nodes`` nodes, time ``ours`` and ``limit`` alternately, print a table."""
    if os.geteuid() != 0:
        raise SystemExit("this benchmark needs root")
    os.environ.setdefault("BGPGEN_BENCH_MD5", "bench-secret")
    with tempfile.TemporaryDirectory() as tmp:
        inv = generate(nodes, Path(tmp) / "inv")
        lab.up(load_fabric(inv), name, render_configs=True)
        try:
            if before is not None:
                before(inv)
            times: dict[str, list[float]] = {"ours": [], "limit": []}
            for _ in range(repeat):
                times["ours"].append(ours(inv, workers))
                times["limit"].append(limit(inv, workers))
        finally:
            lab.down(name)
    b, p = statistics.median(times["ours"]), statistics.median(times["limit"])
    print(f"| lab | {titles[0]} | {titles[1]} | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| 2 ToRs + {nodes} nodes, {workers} workers | {b:.2f} s | {p:.2f} s | {b / p:.2f}x |")
    print(f"(medians of {repeat}; all runs: bgpgen "
          f"{', '.join(f'{x:.2f}' for x in times['ours'])}; baseline "
          f"{', '.join(f'{x:.2f}' for x in times['limit'])})")
