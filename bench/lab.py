"""Benchmark: `bgpgen lab up` to all sessions Established, and `lab down`, against in the same
run the bare cost of the same thing from a shell script (the limit): the same namespaces and
links (`ip -batch`), the same daemons with the same configs (`ip netns exec` + `unshare`), the
same FRR config load and gobgp route adds, and teardown by PID and `ip netns del`.

Sizes: 20, 50 and 250 nodes (a ToR pair per 40), from gen.py. Needs root. Runs interleave. Both
sides raise the kernel's neighbour-table and inotify limits the lab needs (bgpgen.lab.limits
computes them; the script writes the same values with sysctl -w and puts the old ones back) and
use a /22 management range (250 nodes and 14 ToRs do not fit a /24).

    .venv/bin/python bench/lab.py [--sizes 20,50,250] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from gen import generate  # noqa: E402

from bgpgen import lab, load_fabric, render  # noqa: E402
from bgpgen.lab import _device_files, _ssh_keys, limits, mounts, run_dirs  # noqa: E402
from bgpgen.lab.mounts import DeviceFs  # noqa: E402
from bgpgen.lab.netns import create  # noqa: E402
from bgpgen.lab.layout import LabLayout, layout  # noqa: E402
from bgpgen.model import Fabric  # noqa: E402
from bgpgen.secrets import resolve_all  # noqa: E402

MGMT = "198.19.252.0/22"


def established(fabric: Fabric, vtysh: Callable[[str, str], str]) -> bool:
    """Every switch reports every one of its sessions Established (read from FRR)."""
    for sw in fabric.switches:
        try:
            data = json.loads(vtysh(sw.name, "show bgp summary json") or "{}")
        except ValueError:
            return False
        up = sum(1 for af in data.values() for p in (af.get("peers") or {}).values()
                 if p.get("state") == "Established")
        if up < len(fabric.sessions_of(sw.name)):
            return False
    return True


def wait_established(fabric: Fabric, vtysh: Callable[[str, str], str]) -> None:
    deadline = time.monotonic() + 300
    while not established(fabric, vtysh):
        if time.monotonic() > deadline:
            raise SystemExit("sessions did not come up within 300 s")
        time.sleep(0.05)


VERIFY: list[float] = []


def bgpgen_once(fabric: Fabric, name: str, inv: Path) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    info = lab.up(fabric, name, MGMT, render_configs=True, inventory=inv)
    t1 = time.perf_counter()
    devices = info["devices"]
    wait_established(fabric, lambda dev, cmd: lab.run_on(devices[dev], ["vtysh", "-c", cmd]).stdout)
    t2 = time.perf_counter()
    try:  # untimed above: bgpgen verify on the lab passes (every session, route, next hop)
        v0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "bgpgen.cli", "verify", "--lab", name,
                            "--wait", "60"], capture_output=True, text=True)
        VERIFY.append(time.perf_counter() - v0)
        if r.returncode != 0:
            raise SystemExit(f"verify failed on the lab: {r.stdout[-2000:]}{r.stderr[-500:]}")
    finally:
        t2b = time.perf_counter()
        lab.down(name)
    t3 = time.perf_counter()
    return t1 - t0, t2 - t0, t3 - t2b


def _ready_test(ready: dict[str, object]) -> str:
    if "path" in ready:
        return f"[ -e {shlex.quote(str(ready['path']))} ]"
    return f"ss -Hltn 'sport = :{ready['listen']}' | grep -q ."


def shell_scripts(fabric: Fabric, p: LabLayout, d: Path) -> tuple[Path, Path]:
    """Prepare files (untimed) and write the up / down shell scripts of the limit: per device,
    one unshare that makes the same mount namespace (the same setup lines bgpgen runs), starts
    the device's daemons in order, then runs its post commands once they answer."""
    build = render(fabric)
    _ssh_keys(d)
    procs, post = _device_files(p, fabric, d, build, resolve_all(build.secrets))
    (d / "pids").mkdir()
    wanted = limits.needs(p, len(procs))
    keys = " ".join(k.replace("/", ".") for k in wanted)
    lines = ["#!/bin/bash", "set -e", f"cd {d}",
             f"sysctl -n {keys} | awk '{{print $1}}' > {d}/sysctl.before"]
    lines += [f"[ $(sysctl -n {k.replace('/', '.')} | awk '{{print $1}}') -ge {v} ] || "
              f"sysctl -qw {k.replace('/', '.')}={v}" for k, v in wanted.items()]
    for dev in p.devices:
        fs = DeviceFs(d / "dev" / dev.name, dev.name)
        body = [mounts.setup_script(fs, run_dirs(fabric.device(dev.name)), lab.root()),
                f"echo $$ > {d}/pids/{dev.name}"]
        mine = [x for x in procs if x.device == dev.name]
        for proc in mine:
            if proc.after:
                dep = next(x for x in mine if x.name == proc.after)
                body.append(f"until {_ready_test(dep.ready)}; do sleep 0.02; done")
            body.append(" ".join(shlex.quote(a) for a in proc.argv) + f" > {proc.log} 2>&1 &")
        for proc in mine:  # like the supervisor: every daemon ready before the post commands
            body.append(f"until {_ready_test(proc.ready)}; do sleep 0.02; done")
        for cmd in (c for c in post if c.device == dev.name):
            argv = " ".join(shlex.quote(a) for a in cmd.argv)
            body.append(f"until {argv} >/dev/null 2>&1; do sleep 0.05; done")
        body.append("wait")
        script = "\n".join(body)
        lines.append(f"ip netns exec {dev.netns} unshare --mount --uts --propagation private "
                     f"bash -c {shlex.quote(script)} > {d}/dev/{dev.name}/log/shell.out 2>&1 &")
    up = d / "up.sh"
    up.write_text("\n".join(lines) + "\n")
    spaces = " ".join(p.namespaces)
    links = " ".join([p.bridge] + [v for _, v in p.mgmt_links])
    down = d / "down.sh"
    down.write_text("#!/bin/bash\n"
                    f"for ns in {spaces}; do kill -9 $(ip netns pids $ns) 2>/dev/null; done\n"
                    f"(for l in {links}; do echo link del $l; done; "
                    f"for ns in {spaces}; do echo netns del $ns; done) | ip -force -batch -\n"
                    f"paste -d= <(echo {keys} | tr ' ' '\\n') {d}/sysctl.before | "
                    "xargs -n1 sysctl -qw\n")
    return up, down


def shell_once(fabric: Fabric, name: str) -> tuple[float, float, float]:
    p = layout(fabric, name, MGMT)
    # Not under /run, /etc, /var or /usr/local: each device mounts its own over those.
    d = Path(tempfile.mkdtemp(prefix="bench-", dir="/tmp"))
    d.chmod(0o711)
    up, down = shell_scripts(fabric, p, d)

    def vtysh(dev: str, cmd: str) -> str:
        try:
            pid = (d / "pids" / dev).read_text().strip()
        except OSError:
            return ""
        return subprocess.run(["nsenter", "-t", pid, "-m", "-n", "vtysh", "-c", cmd],
                              capture_output=True, text=True).stdout
    t0 = time.perf_counter()
    create(p)  # the same ip -batch calls bgpgen makes: the limit cannot do fewer
    subprocess.run(["bash", str(up)], check=True)
    t1 = time.perf_counter()
    wait_established(fabric, vtysh)
    t2 = time.perf_counter()
    subprocess.run(["bash", str(down)], check=True, capture_output=True)
    t3 = time.perf_counter()
    shutil.rmtree(d)
    return t1 - t0, t2 - t0, t3 - t2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sizes", default="20,50,250")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/lab.py needs root")
    os.environ["BGPGEN_BENCH_MD5"] = "bench-secret"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.sizes.split(",")):
            label = f"{2 * -(-n // 40)} ToRs + {n} nodes"
            inv = generate(n, Path(tmp) / f"inv{n}")
            fabric = load_fabric(inv)
            res: dict[str, list[tuple[float, float, float]]] = {"bgpgen": [], "shell": []}
            for _ in range(args.repeat):
                res["bgpgen"].append(bgpgen_once(fabric, "benchlab", inv))
                res["shell"].append(shell_once(fabric, "benchsh"))
            med = {k: tuple(statistics.median(x[i] for x in v) for i in range(3))
                   for k, v in res.items()}
            rows.append((label, med))
            print(label, json.dumps(med), "verify", [round(v, 2) for v in VERIFY], flush=True)
            VERIFY.clear()
    print()
    print("| lab | bgpgen up | bgpgen up -> Established | shell script -> Established | ratio "
          "| bgpgen down | shell down | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, m in rows:
        b, s = m["bgpgen"], m["shell"]
        print(f"| {label} | {b[0]:.2f} s | {b[1]:.2f} s | {s[1]:.2f} s | {b[1] / s[1]:.2f}x | "
              f"{b[2]:.2f} s | {s[2]:.2f} s | {b[2] / s[2]:.2f}x |")


if __name__ == "__main__":
    main()
