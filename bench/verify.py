"""Benchmark: `bgpgen verify` over a lab of 2 ToRs + 20 nodes against, in the same run, the
limit: one parallel round of plain OpenSSH sessions to the same hosts running the same show
commands (the exact command line verify runs on each device). Same worker count. Needs root.

    .venv/bin/python bench/verify.py [--repeat 5] [--workers 10]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import side_by_side  # noqa: E402

from bgpgen import lab, load_fabric  # noqa: E402
from bgpgen.cli import main  # noqa: E402
from bgpgen.platforms import spec  # noqa: E402
from bgpgen.targets import from_inventory  # noqa: E402

NAME = "benchverify"


def plain_round(inv: Path, workers: int) -> float:
    fabric = load_fabric(inv)
    targets = from_inventory(fabric, lab.lab_dir(NAME) / "ssh_config")
    jobs = [lab.ssh_argv(NAME, d.name) + [spec(d.platform).state.command(targets[d.name], fabric)]
            for d in fabric.devices]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda argv: subprocess.run(argv, capture_output=True, check=True), jobs))
    return time.perf_counter() - t0


def bgpgen_verify(inv: Path, workers: int) -> float:
    out = io.StringIO()
    t0 = time.perf_counter()
    code = main(["verify", "-i", str(inv), "--lab", NAME, "--workers", str(workers)],
                stdout=out, stderr=io.StringIO())
    elapsed = time.perf_counter() - t0
    assert code == 0, out.getvalue()[-2000:]
    return elapsed


def _converged(inv: Path) -> None:
    code = main(["verify", "-i", str(inv), "--lab", NAME, "--wait", "60"],
                stdout=io.StringIO(), stderr=io.StringIO())
    assert code == 0, "the lab did not converge"


def main_() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workers", type=int, default=10)
    args = ap.parse_args()
    side_by_side(NAME, 20, bgpgen_verify, plain_round, args.repeat, args.workers,
                 ("bgpgen verify", "one parallel round of plain ssh, same commands"), _converged)


if __name__ == "__main__":
    main_()
