"""Generate a synthetic inventory of N nodes (up to 131,072), one FRR ToR pair per 40 nodes, nodes
alternating gobgp and bird speakers. Used by every benchmark; deterministic for a given N.

Address plan (none of it overlaps this machine's addresses, and nothing here leaves a lab):
- peering links: one /24 per ToR from 10.128.0.0/9 (32,768 links, 16,384 racks);
- pod CIDRs: one /26 per node from 10.0.0.0/9 (131,072 nodes);
- management: hosts of 100.64.0.0/10; VIPs: 203.0.113.0/24, one per ten nodes (anycast: they
  repeat across racks, which is what ECMP is for).

``--split`` writes one nodes file per rack (``nodes-r00042.yaml``), as a large inventory is kept in
practice (a rack's owner edits a rack's file); ``change`` makes the one-node-changed variant: the
node's pod CIDR moves to the first unused /26.

    python bench/gen.py N DIR [--split]
    python bench/gen.py --change NODE_INDEX DIR
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import yaml

NODES_PER_RACK = 40
MAX_NODES = 1 << 17  # /26s in 10.0.0.0/9


def _pod(i: int) -> str:
    return str(ipaddress.IPv4Network((0x0A000000 + (i << 6), 26)))


def _link(k: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network((0x0A800000 + (k << 8), 24))


def generate(n: int, out: Path, split: bool = False) -> Path:
    if not 0 < n <= MAX_NODES:
        raise SystemExit(f"gen.py: {n} nodes: between 1 and {MAX_NODES} (the /26s of 10.0.0.0/9)")
    out.mkdir(parents=True, exist_ok=True)
    racks = (n + NODES_PER_RACK - 1) // NODES_PER_RACK
    mgmt = ipaddress.ip_network("100.64.0.0/10").hosts()
    fabric = {
        "fabric": {"name": f"bench{n}", "profile": "default"},
        "profiles": {"default": {"families": ["ipv4"], "password": "md5", "max_prefix": 50,
                                 "timers": {"hold": 9, "keepalive": 3, "connect_retry": 5},
                                 "graceful_restart": {"enabled": True}}},
        "secrets": {"md5": {"env": "BGPGEN_BENCH_MD5"}},
        "racks": [{"name": f"r{r}"} for r in range(racks)],
        "cluster": {"name": "bench", "pod_cidrs": ["10.0.0.0/9"], "node_mask": {"ipv4": 26},
                    "service_cidrs": ["172.16.0.0/16"],
                    "vip_pools": [{"name": "pub", "cidr": "203.0.113.0/24"}]},
    }
    switches = []
    for r in range(racks):
        for side in (0, 1):
            net = _link(2 * r + side)
            switches.append({"name": f"tor-r{r}-{'ab'[side]}", "platform": "frr",
                             "rack": f"r{r}", "asn": 4210000000 + 2 * r + side,
                             "router_id": str(net.network_address + 254),
                             "peering": [f"{net.network_address + 1}/24"],
                             "mgmt": {"host": str(next(mgmt))}})
    per_rack: list[list[dict[str, object]]] = [[] for _ in range(racks)]
    for i in range(n):
        r, k = divmod(i, NODES_PER_RACK)
        a, b = _link(2 * r), _link(2 * r + 1)
        node: dict[str, object] = {
            "name": f"node-{i:05d}", "rack": f"r{r}",
            "speaker": "gobgp" if i % 2 == 0 else "bird", "asn": 4200000000 + i,
            "peering": [f"{a.network_address + 10 + k}/24", f"{b.network_address + 10 + k}/24"],
            "mgmt": {"host": str(next(mgmt))}, "pod_cidrs": [_pod(i)]}
        if i % 10 == 0:
            node["vips"] = [f"203.0.113.{i // 10 % 250 + 1}"]
        per_rack[r].append(node)
    files: list[tuple[str, object]] = [("fabric.yaml", fabric),
                                       ("switches.yaml", {"switches": switches})]
    if split:
        files += [(f"nodes-r{r:05d}.yaml", {"nodes": nodes}) for r, nodes in enumerate(per_rack)]
    else:
        files.append(("nodes.yaml", {"nodes": [x for rack in per_rack for x in rack]}))
    for name, doc in files:
        (out / name).write_text(yaml.dump(doc, Dumper=yaml.CSafeDumper, sort_keys=False))
    return out


def change(inv: Path, index: int) -> Path:
    """The one-node-changed variant, in place: node ``index``'s pod CIDR becomes the first /26
    no node uses. Returns the file that changed (only its bytes differ)."""
    nodes = sorted(inv.glob("nodes*.yaml"))
    texts = [f.read_text() for f in nodes]
    free = sum(t.count("\n  pod_cidrs:\n") for t in texts)
    while any(f"  - {_pod(free)}\n" in t for t in texts):
        free += 1
    file = nodes[0] if len(nodes) == 1 else inv / f"nodes-r{index // NODES_PER_RACK:05d}.yaml"
    text = file.read_text()
    new, count = re.subn(rf"^(- name: node-{index:05d}\n(?:  .*\n)*?  pod_cidrs:\n  - )\S+$",
                         rf"\g<1>{_pod(free)}", text, count=1, flags=re.M)
    assert count == 1, f"node {index} not found in {file}"
    file.write_text(new)
    return file


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("nodes", nargs="?", type=int)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--split", action="store_true")
    ap.add_argument("--change", type=int, metavar="NODE_INDEX")
    args = ap.parse_args()
    if args.change is not None:
        print(change(args.dir, args.change))
    else:
        generate(args.nodes, args.dir, args.split)
