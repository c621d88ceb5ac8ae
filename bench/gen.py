"""Generate a synthetic inventory of N nodes, one ToR pair per 40 nodes (FRR), nodes alternating
gobgp and bird speakers. Used by the benchmarks; deterministic for a given N."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import yaml

NODES_PER_RACK = 40


def generate(n: int, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    racks = (n + NODES_PER_RACK - 1) // NODES_PER_RACK
    peering = list(ipaddress.ip_network("198.18.0.0/15").subnets(new_prefix=24))
    mgmt = ipaddress.ip_network("100.64.0.0/10").hosts()
    fabric = {
        "fabric": {"name": f"bench{n}", "profile": "default"},
        "profiles": {"default": {"families": ["ipv4"], "password": "md5", "max_prefix": 50,
                                 "timers": {"hold": 9, "keepalive": 3, "connect_retry": 5},
                                 "graceful_restart": {"enabled": True}}},
        "secrets": {"md5": {"env": "BGPGEN_BENCH_MD5"}},
        "racks": [{"name": f"r{r}"} for r in range(racks)],
        "cluster": {"name": "bench", "pod_cidrs": ["10.0.0.0/8"], "node_mask": {"ipv4": 24},
                    "service_cidrs": ["172.16.0.0/16"],
                    "vip_pools": [{"name": "pub", "cidr": "203.0.113.0/24"}]},
    }
    switches = []
    for r in range(racks):
        for side in (0, 1):
            net = peering[2 * r + side]
            switches.append({"name": f"tor-r{r}-{'ab'[side]}", "platform": "frr",
                             "rack": f"r{r}", "asn": 4210000000 + 2 * r + side,
                             "router_id": str(net.network_address + 254),
                             "peering": [f"{net.network_address + 1}/24"],
                             "mgmt": {"host": str(next(mgmt))}})
    nodes = []
    for i in range(n):
        r, k = divmod(i, NODES_PER_RACK)
        a, b = peering[2 * r], peering[2 * r + 1]
        node = {"name": f"node-{i:05d}", "rack": f"r{r}",
                "speaker": "gobgp" if i % 2 == 0 else "bird", "asn": 4200000000 + i,
                "peering": [f"{a.network_address + 10 + k}/24", f"{b.network_address + 10 + k}/24"],
                "mgmt": {"host": str(next(mgmt))},
                "pod_cidrs": [f"10.{i >> 8}.{i & 255}.0/24"]}
        if i % 10 == 0:
            node["vips"] = [f"203.0.113.{i // 10 % 250 + 1}"]
        nodes.append(node)
    for name, doc in (("fabric.yaml", fabric), ("switches.yaml", {"switches": switches}),
                      ("nodes.yaml", {"nodes": nodes})):
        (out / name).write_text(yaml.dump(doc, Dumper=yaml.CSafeDumper, sort_keys=False))
    return out


if __name__ == "__main__":
    import sys
    generate(int(sys.argv[1]), Path(sys.argv[2]))
