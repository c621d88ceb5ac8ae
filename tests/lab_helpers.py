"""Helpers for lab tests: snapshots of what exists on the machine, and polling the daemons."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from bgpgen.lab import run_on

T = TypeVar("T")
DAEMONS = ("gobgpd", "bird", "zebra", "bgpd", "sshd", "bgpgen.lab.supervisor", "vtysh")


def processes() -> set[tuple[int, str, str]]:
    """Live (non-zombie) daemon-like processes: (pid, start time, command line)."""
    found = set()
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and any(d in cmd for d in DAEMONS):
            found.add((int(p.name), fields[19], cmd.strip()))
    return found


def snapshot() -> dict[str, Any]:
    links = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True,
                                      text=True).stdout)
    spaces = json.loads(subprocess.run(["ip", "-j", "netns", "list"], capture_output=True,
                                       text=True).stdout or "[]")
    mounts = sorted(ln.split()[4] for ln in Path("/proc/self/mountinfo").read_text().splitlines()
                    if "bgpgen" in ln)
    return {"netns": sorted(n["name"] for n in spaces), "links": sorted(l["ifname"] for l in links),
            "procs": processes(), "mounts": mounts, "kernel": kernel_limits()}


def kernel_limits() -> dict[str, str]:
    """The kernel settings a lab may raise (bgpgen.lab.limits), as they are now."""
    from bgpgen.lab import limits
    keys = [t.format(i) for t in limits.NEIGH for i in (1, 2, 3)] + [limits.INOTIFY]
    return {k: (limits.PROC / k).read_text().strip() for k in keys}


def assert_clean(before: dict[str, Any], lab_dir: Path) -> None:
    after = snapshot()
    deadline = time.monotonic() + 5  # PID 1 reaps orphans a little late
    while after["procs"] - before["procs"] and time.monotonic() < deadline:
        time.sleep(0.1)
        after = snapshot()
    assert after["netns"] == before["netns"]
    assert after["links"] == before["links"]
    assert after["mounts"] == before["mounts"], "lab mounts left behind"
    assert after["kernel"] == before["kernel"], "kernel settings not put back"
    assert after["procs"] - before["procs"] == set()
    assert not lab_dir.exists()


def wait_for(fn: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")


def vtysh_json(entry: dict[str, Any], command: str) -> Any:
    r = run_on(entry, ["vtysh", "-c", command])
    return json.loads(r.stdout or "{}")


def gobgp_json(entry: dict[str, Any], *args: str) -> Any:
    r = run_on(entry, ["gobgp", "-p", str(entry["api_port"]), "-j", *args])
    return json.loads(r.stdout or "null")


def is_root() -> bool:
    return os.geteuid() == 0


def edited_inventory(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """A copy of dc1 with one edit in one file."""
    import shutil

    from .conftest import EXAMPLES
    inv = tmp_path / "inv"
    shutil.copytree(EXAMPLES["dc1"], inv, ignore=shutil.ignore_patterns("examples"))
    text = (inv / file).read_text()
    assert old in text
    (inv / file).write_text(text.replace(old, new))
    return inv


def changed_inventory(tmp_path: Path) -> Path:
    """dc1 with node-r1-03's IPv4 pod CIDR moved (a change to it and its two switches)."""
    return edited_inventory(tmp_path, "nodes.yaml", "[10.244.3.0/24,", "[10.244.33.0/24,")


def timers_inventory(tmp_path: Path) -> Path:
    """dc1 with hold 12 and keepalive 4 on every session (a change to every neighbor)."""
    return edited_inventory(tmp_path, "fabric.yaml", "timers: {hold: 9, keepalive: 3,",
                            "timers: {hold: 12, keepalive: 4,")
