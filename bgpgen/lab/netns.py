"""Network namespaces, veth links and bridges with iproute2: one batch for the root namespace
and one per lab namespace (``ip -n NS -batch -``), so a 50-node lab costs a few dozen execs."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

from ..errors import Problem
from .nsenter import sysctl
from .layout import LabError, LabLayout


def _batch(lines: list[str], netns: str | None = None, force: bool = False) -> str:
    argv = ["ip"] + (["-n", netns] if netns else []) + (["-force"] if force else []) + \
        ["-batch", "-"]
    proc = subprocess.run(argv, input="\n".join(lines) + "\n", capture_output=True, text=True)
    if proc.returncode != 0 and not force:
        where = f" in {netns}" if netns else ""
        raise LabError(Problem("", "lab", f"ip -batch failed{where}: "
                               f"{proc.stderr.strip().splitlines()[-1] if proc.stderr else ''}",
                               "run bgpgen lab down, then retry"))
    return proc.stderr


def _v6(addr: str) -> str:
    return " nodad" if ":" in addr else ""


def check_range(mgmt_net: str) -> None:
    """Refuse a management range that overlaps an address or route already on the machine."""
    want = ipaddress.ip_network(mgmt_net)
    used: list[tuple[str, str]] = []
    for argv in (["ip", "-j", "addr"], ["ip", "-j", "-4", "route"], ["ip", "-j", "-6", "route"]):
        out = subprocess.run(argv, capture_output=True, text=True).stdout or "[]"
        for entry in json.loads(out):
            for info in entry.get("addr_info", []):
                used.append((f"{info['local']}/{info['prefixlen']}",
                             f"address on {entry.get('ifname')}"))
            dst = entry.get("dst")
            if dst and dst != "default":
                used.append((dst if "/" in dst else f"{dst}/{32 if ':' not in dst else 128}",
                             f"route via {entry.get('dev', '?')}"))
    for net_text, what in used:
        try:
            net = ipaddress.ip_network(net_text, strict=False)
        except ValueError:
            continue
        if net.version == want.version and net.overlaps(want):
            raise LabError(Problem("", "--mgmt-range", f"{want} overlaps {net} ({what}) on this "
                                   "machine", "pick a free range with --mgmt-range, e.g. "
                                   "203.0.113.0/24"))


def create(layout: LabLayout) -> None:
    """Create every namespace, bridge and link of the layout."""
    prefix = ipaddress.ip_network(layout.mgmt_net).prefixlen
    root = [f"link add {layout.bridge} type bridge",
            f"addr add {layout.gateway}/{prefix} dev {layout.bridge}",
            f"link set {layout.bridge} up"]
    _batch(root + [f"netns add {ns}" for ns in layout.namespaces])
    # No duplicate address detection in the lab: addresses (link-local ones included, which
    # IPv6 next hops need) are usable at once instead of after a second or two.
    for ns in layout.namespaces:
        sysctl(ns, {"net/ipv6/conf/all/accept_dad": "0", "net/ipv6/conf/default/accept_dad": "0"})
    root = []
    for ns, veth in layout.mgmt_links:
        root += [f"link add {veth} type veth peer name mgmt0 netns {ns}",
                 f"link set {veth} master {layout.bridge}", f"link set {veth} up"]
    by_name = {d.name: d for d in layout.devices}
    for link in layout.links:
        root.append(f"link add {link.node_if} netns {by_name[link.node].netns} type veth "
                    f"peer name {link.switch_if} netns {by_name[link.switch].netns}")
    _batch(root)
    inner: dict[str, list[str]] = {ns: ["link set lo up"] for ns in layout.namespaces}
    for d in layout.devices:
        inner[d.netns].append(f"addr add {d.mgmt_ip}/{prefix} dev mgmt0")
        if d.fabric_addrs:
            inner[d.netns] += ["link add fabric type bridge"]
            inner[d.netns] += [f"addr add {a} dev fabric{_v6(a)}" for a in d.fabric_addrs]
            inner[d.netns] += ["link set fabric up"]
    if layout.bastion is not None:
        b = layout.bastion
        inner[b.netns].append(f"addr add {b.mgmt_ip}/{prefix} dev mgmt0")
    for ns in layout.namespaces:
        inner[ns].append("link set mgmt0 up")
    for link in layout.links:
        sw, node = by_name[link.switch].netns, by_name[link.node].netns
        inner[sw] += [f"link set {link.switch_if} master fabric", f"link set {link.switch_if} up"]
        inner[node] += [f"addr add {a} dev {link.node_if}{_v6(a)}" for a in link.node_addrs]
        inner[node].append(f"link set {link.node_if} up")
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda ns: _batch(inner[ns], ns), layout.namespaces))


def netns_pids(spaces: list[str]) -> list[int]:
    """Processes inside any of these namespaces (what ``ip netns pids`` does, in one pass)."""
    inodes = set()
    for ns in spaces:
        try:
            inodes.add(os.stat(f"/run/netns/{ns}").st_ino)
        except OSError:
            continue
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.stat(f"/proc/{entry.name}/ns/net").st_ino in inodes:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def existing_namespaces() -> set[str]:
    out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True).stdout
    return {e["name"] for e in json.loads(out or "[]")}


def destroy(namespaces: list[str], root_links: list[str]) -> None:
    """Remove root-side links first (their peers go with them), then the namespaces."""
    have = existing_namespaces()
    links = set(all_links())
    lines = [f"link del {name}" for name in root_links if name in links]
    lines += [f"netns del {ns}" for ns in namespaces if ns in have]
    if lines:
        _batch(lines, force=True)


def all_links() -> list[str]:
    out = subprocess.run(["ip", "-j", "link"], capture_output=True, text=True).stdout
    return [e["ifname"] for e in json.loads(out or "[]")]


def lab_links(tag: str) -> list[str]:
    """Root-namespace links of a lab, found by their name prefix (for a crashed lab up)."""
    return [name for name in all_links() if name.startswith(f"bg{tag}")]
