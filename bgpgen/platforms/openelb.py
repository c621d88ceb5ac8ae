"""openelb: a node whose BGP speaker is OpenELB (inventory: ``speaker: openelb``).

bgpgen renders the switch side as for any node and, for the cluster, OpenELB's resources
(upstream openelb/openelb, config/crd/bases, network.kubesphere.io/v1alpha2): the ``default``
``BgpConf`` (the nodes' AS, or one per rack with ``asPerRack``; the port the nodes listen on)
and a ``BgpPeer`` per switch address, node AS and profile, selecting its nodes by rack label (or
hostname). OpenELB takes a session password as text in the resource (``authPassword``), and
bgpgen never writes a secret's value into a resource: a profile with a password is refused for
OpenELB nodes. OpenELB announces service addresses (its Eip pools): give its nodes ``vips``.
"""

from __future__ import annotations

from typing import Any

from ..model import Fabric, Node, Platform
from . import k8s

VERSION = "network.kubesphere.io/v1alpha2"
_AFI = {"ipv4": "AFI_IP", "ipv6": "AFI_IP6"}


def resources(fabric: Fabric, nodes: tuple[Node, ...]) -> list[dict[str, Any]]:
    label = fabric.cluster.rack_label
    asns = {n.asn for n in nodes}
    ports = {n.bgp_port for n in nodes}
    if len(ports) > 1:
        raise k8s.unsupported("nodes[].bgp_port", f"OpenELB listens on one BGP port, its nodes use "
                              f"{sorted(ports)}", "give every openelb node the same bgp_port")
    conf: dict[str, Any] = {"listenPort": ports.pop()}
    if len(asns) == 1:
        conf["as"] = asns.pop()
    else:
        per_rack: dict[str, set[int]] = {}
        for n in nodes:
            per_rack.setdefault(n.rack or "", set()).add(n.asn)
        if any(len(v) > 1 for v in per_rack.values()):
            raise k8s.unsupported("nodes[].asn", "OpenELB takes one AS per cluster or per rack; "
                                  "these nodes differ within a rack",
                                  "give the openelb nodes of a rack one asn")
        conf["asPerRack"] = {r: v.pop() for r, v in sorted(per_rack.items())}
    out: list[dict[str, Any]] = [{"apiVersion": VERSION, "kind": "BgpConf",
                                  "metadata": k8s.meta("default", fabric), "spec": conf}]
    for p in k8s.peerings(fabric, nodes):
        prof = p.profile
        if prof.password:
            raise k8s.unsupported(f"profiles.{prof.name}.password",
                                  f"profile {prof.name} has a password, and "
                                  "OpenELB's BgpPeer takes it as text (authPassword): bgpgen "
                                  "writes no secret values into resources",
                                  "use a profile without password for openelb nodes")
        spec: dict[str, Any] = {
            "conf": {"peerAs": p.switch_asn, "neighborAddress": p.address},
            "afiSafis": [{"config": {"family": {"afi": _AFI[p.family], "safi": "SAFI_UNICAST"},
                                     "enabled": True}}],
            "timers": {"config": {"holdTime": str(prof.timers.hold),
                                  "keepaliveInterval": str(prof.timers.keepalive),
                                  "connectRetry": str(prof.timers.connect_retry)}},
            "transport": {"remotePort": fabric.device(p.switch).bgp_port},
            "nodeSelector": p.match_expressions(label)}
        if prof.graceful_restart:
            spec["gracefulRestart"] = {"enabled": True, "restartTime": prof.restart_time}
        if prof.multihop:
            spec["ebgpMultihop"] = {"enabled": True, "multihopTtl": prof.multihop}
        out.append({"apiVersion": VERSION, "kind": "BgpPeer",
                    "metadata": k8s.meta(p.name, fabric), "spec": spec})
    return out


SPEC = k8s.unconfigured_spec(Platform.OPENELB, "a node whose BGP speaker is OpenELB", resources)
