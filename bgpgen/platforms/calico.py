"""calico: a node whose BGP speaker is Calico's (inventory: ``speaker: calico``).

bgpgen renders the switch side as for any node and, for the cluster, Calico's resources
(upstream projectcalico/calico, api/config/crd, projectcalico.org/v3, the 3.34 line):
``BGPPeer`` per switch address, node AS and profile (``localASNumber`` is the nodes' AS,
``nodeSelector`` a Calico selector on the rack label, or on hostnames), and the ``default``
``BGPConfiguration``: no node-to-node mesh (the ToRs carry the routes), the VIP pools announced
as service LoadBalancer IPs, bgpgen's BGP port when it is not 179. The password is the Secret
``bgpgen-SECRET``, key ``password``, in calico-node's namespace. Calico announces its own IPAM
blocks: make the nodes' ``pod_cidrs`` those blocks (verify expects what the inventory says).
"""

from __future__ import annotations

from typing import Any

from ..model import Fabric, Node, Platform
from . import k8s

VERSION = "projectcalico.org/v3"


def _selector(key: str, values: list[str]) -> str:
    return f"{key} in {{{', '.join(repr(v) for v in values)}}}"


def resources(fabric: Fabric, nodes: tuple[Node, ...]) -> list[dict[str, Any]]:
    label = fabric.cluster.rack_label
    out: list[dict[str, Any]] = []
    ports = {n.bgp_port for n in nodes}
    conf: dict[str, Any] = {"nodeToNodeMeshEnabled": False, "logSeverityScreen": "Info"}
    if len(ports) > 1:
        raise k8s.unsupported("nodes[].bgp_port", f"Calico nodes listen on one BGP port, these use "
                              f"{sorted(ports)}", "give every calico node the same bgp_port")
    if ports != {179}:
        conf["listenPort"] = ports.pop()
    pools = k8s.pools(fabric)
    if pools:
        conf["serviceLoadBalancerIPs"] = [{"cidr": cidr} for _, cidr in pools]
    out.append({"apiVersion": VERSION, "kind": "BGPConfiguration",
                "metadata": k8s.meta("default", fabric), "spec": conf})
    for p in k8s.peerings(fabric, nodes):
        prof = p.profile
        port = fabric.device(p.switch).bgp_port
        address = p.address if port == 179 else (
            f"{p.address}:{port}" if p.family == "ipv4" else f"[{p.address}]:{port}")
        spec: dict[str, Any] = {"peerIP": address, "asNumber": p.switch_asn,
                                "localASNumber": p.node_asn,
                                "nodeSelector": _selector(*p.selector(label)),
                                "keepaliveTime": f"{prof.timers.keepalive}s"}
        if prof.graceful_restart:
            spec["maxRestartTime"] = f"{prof.restart_time}s"
        secret = k8s.secret_name(prof)
        if secret:
            spec["password"] = {"secretKeyRef": {"name": secret, "key": k8s.SECRET_KEY}}
        out.append({"apiVersion": VERSION, "kind": "BGPPeer",
                    "metadata": k8s.meta(p.name, fabric), "spec": spec})
    return out


SPEC = k8s.unconfigured_spec(Platform.CALICO, "a node whose BGP speaker is Calico's", resources)
