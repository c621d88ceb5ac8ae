"""Benchmark: a no-op `bgpgen deploy` over a lab of 2 ToRs + 20 nodes against, in the same run,
the limit: one parallel round of plain OpenSSH sessions to the same hosts, each running the
commands bgpgen's plan runs there (read the config, list originated routes, frr-reload --test
on the candidate). Same worker count. Needs root.

    .venv/bin/python bench/deploy.py [--repeat 5] [--workers 10]
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

from bgpgen import lab, load_fabric, render  # noqa: E402
from bgpgen.cli import main  # noqa: E402
from bgpgen.platforms import spec  # noqa: E402
from bgpgen.platforms.frr import FRR_RELOAD  # noqa: E402
from bgpgen.secrets import fill, resolve_all  # noqa: E402

NAME = "benchdeploy"


def plain_round(inv: Path, workers: int) -> float:
    fabric = load_fabric(inv)
    build = render(fabric)
    values = resolve_all(build.secrets)
    info = lab.overlay(NAME)["devices"]
    jobs = []
    for d in fabric.devices:
        e = info[d.name]
        conf = next(a for a in build.artifacts if a.device == d.name and a.target == spec(
            d.platform).paths.config)
        if d.platform.value == "frr":  # the running config (bgpgen's part is merged into it),
            # frr-reload's plan on Debian's paths, and the saved file against what runs
            cmd = ("vtysh -c 'show running-config' >/dev/null; "
                   f'f=$(mktemp) && cat > "$f" && {FRR_RELOAD} --test --stdout --bindir /usr/bin '
                   '--confdir /etc/frr --rundir /var/run/frr --vty_socket /var/run/frr "$f"; '
                   'rm -f "$f"; cat /etc/frr/frr.conf; vtysh -c "show running-config"')
            stdin = fill(conf.text, values)
        elif d.platform.value == "gobgp":  # the config, the unit drop-in, the originated routes,
            # and the running neighbors against the file
            cmd = ("cat /etc/gobgpd.conf /etc/systemd/system/gobgpd.service.d/bgpgen.conf; "
                   f"gobgp -p {e['api_port']} -j neighbor; "
                   f"gobgp -p {e['api_port']} -j global rib -a ipv4; "
                   f"gobgp -p {e['api_port']} -j global rib -a ipv6")
            stdin = ""
        else:  # the file, and the mark of what BIRD runs
            cmd, stdin = ("cat /etc/bird/bird.conf; birdc eval bgpgen_config; "
                          "birdc show status"), ""
        jobs.append((lab.ssh_argv(NAME, d.name) + [cmd], stdin))
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda j: subprocess.run(j[0], input=j[1], capture_output=True, text=True,
                                               check=True), jobs))
    return time.perf_counter() - t0


def bgpgen_noop(inv: Path, workers: int) -> float:
    out = io.StringIO()
    t0 = time.perf_counter()
    code = main(["deploy", "-i", str(inv), "--lab", NAME, "--yes", "--workers", str(workers)],
                stdout=out, stderr=io.StringIO())
    elapsed = time.perf_counter() - t0
    assert code == 0 and "No changes" in out.getvalue(), out.getvalue()
    return elapsed


def main_() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workers", type=int, default=10)
    args = ap.parse_args()
    side_by_side(NAME, 20, bgpgen_noop, plain_round, args.repeat, args.workers,
                 ("no-op bgpgen deploy", "one parallel round of plain ssh"))


if __name__ == "__main__":
    main_()
