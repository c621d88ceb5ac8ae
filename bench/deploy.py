"""Benchmark: `bgpgen deploy` over a lab of gen.py's inventory against, in the same run, one
parallel round of plain OpenSSH sessions to the same hosts doing the same work. Same worker
count. Needs root.

No-op (the default): bgpgen's deploy finds nothing to do; the plain round runs the commands
bgpgen's plan runs on each host (read the config, list originated routes, frr-reload --test on
the candidate, the drift reads).

First deploy (``--first``): every device starts from the lab's bootstrap config (a fresh lab per
run, not timed); bgpgen pushes the whole fabric; the plain round sends each host one shell
script doing what bgpgen's push does there, step for step: the candidate written and checked by
the daemon's own checker, the previous file kept, the new one moved in and activated, read back
(gobgpd: drop-in, daemon-reload, restart, wait for its API, originate the routes; BIRD:
configure check, configure with timeout, read the mark, confirm; FRR: read the running config,
frr-reload --test, keep the running config, frr-reload --reload, soft in, --test again, save).
The FRR candidate (the running config with bgpgen's part in it) is computed before the clock
starts for the plain round, inside it for bgpgen. After each plain round, bgpgen's own plan of
the fabric must find nothing to change (the same end state).

    .venv/bin/python bench/deploy.py [--repeat 5] [--workers 10] [--nodes 20] [--first]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shlex
import statistics
import tempfile
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import side_by_side  # noqa: E402
from gen import generate  # noqa: E402

from bgpgen import lab, load_fabric, render  # noqa: E402
from bgpgen.cli import main  # noqa: E402
from bgpgen.platforms import spec  # noqa: E402
from bgpgen.platforms import frr  # noqa: E402
from bgpgen.platforms.frr import FRR_RELOAD  # noqa: E402
from bgpgen.platforms.gobgpd import DROP_IN_FILE, ORIGINATE_PATH  # noqa: E402
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


def _put(path: str, text: str, mode: str) -> str:
    """Shell: write ``text`` to ``path`` (base64 in the script: one session per host)."""
    b64 = base64.b64encode(text.encode()).decode()
    return f"printf %s {b64} | base64 -d > {path} && chmod {mode} {path}"


def first_scripts(inv: Path) -> list[tuple[list[str], str]]:
    """Per device: ssh argv and the script that pushes its rendered config from bootstrap."""
    fabric = load_fabric(inv)
    build = render(fabric)
    values = resolve_all(build.secrets)
    info = lab.overlay(NAME)["devices"]
    jobs = []
    reload = (f"{FRR_RELOAD} {{mode}} --stdout --bindir /usr/bin --confdir /etc/frr "
              "--rundir /var/run/frr --vty_socket /var/run/frr /run/frr/cand.conf")
    for d in fabric.devices:
        e = info[d.name]
        files = {a.name: fill(a.text, values) for a in build.artifacts if a.device == d.name}
        kind = d.platform.value
        if kind == "frr":
            running = lab.run_on(e, ["vtysh", "-c", "show running-config"]).stdout
            aim = frr.part_target(d.name, running, files[frr.CONFIG])
            lines = ["set -e", "vtysh -c 'show running-config' >/dev/null",
                     _put("/run/frr/cand.conf", aim, "600"),
                     reload.format(mode="--test") + " >/dev/null",
                     "vtysh -c 'show running-config' > /etc/frr/frr.conf.bgpgen-prev",
                     reload.format(mode="--reload") + " >/dev/null",
                     "vtysh -c 'clear bgp ipv4 unicast * soft in' "
                     "-c 'clear bgp ipv6 unicast * soft in' >/dev/null",
                     reload.format(mode="--test") + " >/dev/null",
                     "{ echo '! Saved by bgpgen from the running config (show running-config)';"
                     " vtysh -c 'show running-config' | grep -v -e '^Building configuration' "
                     "-e '^Current configuration' -e '^$'; } > /etc/frr/frr.conf.new && "
                     "chown frr:frr /etc/frr/frr.conf.new && chmod 640 /etc/frr/frr.conf.new && "
                     "mv /etc/frr/frr.conf.new /etc/frr/frr.conf",
                     "rm -f /run/frr/cand.conf"]
        elif kind == "gobgp":
            port = e["api_port"]
            gobgp = f"gobgp -p {port}"
            adds = [f"{gobgp} global rib add -a {r['family']} {r['prefix']}"
                    + (f" nexthop {r['next_hop']}" if r.get("next_hop") else "") + " origin igp"
                    for r in json.loads(files["originate.json"])["originate"]]
            lines = ["set -e", "cat /etc/gobgpd.conf >/dev/null",
                     f"{gobgp} -j global rib -a ipv4 >/dev/null",
                     _put("/etc/gobgpd.conf.new", files["gobgpd.toml"], "600"),
                     "gobgpd -d -t toml -f /etc/gobgpd.conf.new >/dev/null",
                     "cp -p /etc/gobgpd.conf /etc/gobgpd.conf.bgpgen-prev",
                     "mv /etc/gobgpd.conf.new /etc/gobgpd.conf",
                     _put(ORIGINATE_PATH + ".new", files["originate.json"], "644"),
                     f"mv {ORIGINATE_PATH}.new {ORIGINATE_PATH}",
                     f"mkdir -p {os.path.dirname(DROP_IN_FILE.target)}",
                     _put(DROP_IN_FILE.target + ".new", files[DROP_IN_FILE.name], "644"),
                     f"mv {DROP_IN_FILE.target}.new {DROP_IN_FILE.target}",
                     "systemctl daemon-reload", "systemctl restart gobgpd",
                     f"until {gobgp} global >/dev/null 2>&1; do sleep 0.1; done",
                     *adds, f"{gobgp} -j neighbor >/dev/null"]
        else:  # bird
            lines = ["set -e", "cat /etc/bird/bird.conf >/dev/null",
                     _put("/etc/bird/bird.conf.new", files["bird.conf"], "640"),
                     "chown root:bird /etc/bird/bird.conf.new",
                     "birdc configure check '\"/etc/bird/bird.conf.new\"' >/dev/null",
                     "cp -p /etc/bird/bird.conf /etc/bird/bird.conf.bgpgen-prev",
                     "mv /etc/bird/bird.conf.new /etc/bird/bird.conf",
                     "birdc configure '\"/etc/bird/bird.conf\"' timeout 90 >/dev/null",
                     "birdc eval bgpgen_config >/dev/null",
                     "birdc configure confirm >/dev/null", "birdc eval bgpgen_config >/dev/null"]
        jobs.append((lab.ssh_argv(NAME, d.name) + ["sh -c " + shlex.quote("\n".join(lines))],
                     ""))
    return jobs


def plain_first(jobs: list[tuple[list[str], str]], workers: int) -> float:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = list(pool.map(lambda j: subprocess.run(j[0], input=j[1], capture_output=True,
                                                      text=True), jobs))
    elapsed = time.perf_counter() - t0
    bad = [r for r in done if r.returncode != 0]
    assert not bad, bad[0].stderr[-400:]
    return elapsed


def bgpgen_first(inv: Path, workers: int) -> float:
    out = io.StringIO()
    t0 = time.perf_counter()
    code = main(["deploy", "-i", str(inv), "--lab", NAME, "--yes", "--workers", str(workers)],
                stdout=out, stderr=io.StringIO())
    elapsed = time.perf_counter() - t0
    assert code == 0 and "0 failed" in out.getvalue(), out.getvalue()[-2000:]
    return elapsed


def first_deploy(nodes: int, repeat: int, workers: int) -> None:
    """A fresh lab per run (bootstrap configs); bgpgen's first deploy and, in its own fresh lab,
    the plain round; then a no-op deploy and the plain no-op round on the deployed lab."""
    if os.geteuid() != 0:
        raise SystemExit("this benchmark needs root")
    os.environ.setdefault("BGPGEN_BENCH_MD5", "bench-secret")
    times: dict[str, list[float]] = {"first": [], "plain_first": [], "noop": [],
                                     "plain_noop": []}
    with tempfile.TemporaryDirectory() as tmp:
        inv = generate(nodes, Path(tmp) / "inv")
        fabric = load_fabric(inv)
        for _ in range(repeat):
            lab.up(fabric, NAME)
            try:
                times["first"].append(bgpgen_first(inv, workers))
                times["noop"].append(bgpgen_noop(inv, workers))
                times["plain_noop"].append(plain_round(inv, workers))
            finally:
                lab.down(NAME)
            lab.up(fabric, NAME)
            try:
                jobs = first_scripts(inv)
                times["plain_first"].append(plain_first(jobs, workers))
                bgpgen_noop(inv, workers)  # the same end state: bgpgen finds nothing to do
            finally:
                lab.down(NAME)
    med = {k: statistics.median(v) for k, v in times.items()}
    switches = len(fabric.switches)
    print("| lab | work | bgpgen deploy | one parallel round of plain ssh | ratio |")
    print("|---|---|---:|---:|---:|")
    for key, plain, title in (("first", "plain_first", "first deploy (from bootstrap)"),
                              ("noop", "plain_noop", "no-op deploy")):
        print(f"| {switches} ToRs + {nodes} nodes, {workers} workers | {title} | "
              f"{med[key]:.2f} s | {med[plain]:.2f} s | {med[key] / med[plain]:.2f}x |")
    print(f"(medians of {repeat}; all runs: " + "; ".join(
        f"{k} {', '.join(f'{x:.2f}' for x in v)}" for k, v in times.items()) + ")")


def main_() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workers", type=int, default=10)
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--first", action="store_true", help="first deploy and no-op, fresh labs")
    args = ap.parse_args()
    if args.first:
        first_deploy(args.nodes, args.repeat, args.workers)
        return
    side_by_side(NAME, args.nodes, bgpgen_noop, plain_round, args.repeat, args.workers,
                 ("no-op bgpgen deploy", "one parallel round of plain ssh"))


if __name__ == "__main__":
    main_()
