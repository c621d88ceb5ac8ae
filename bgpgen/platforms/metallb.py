"""metallb: a node whose BGP speaker is MetalLB (inventory: ``speaker: metallb``).

bgpgen renders the switch side as for any node and, for the cluster, MetalLB's resources
(upstream metallb/metallb, config/crd/bases, the chart 0.16 line): ``BGPPeer``
(metallb.io/v1beta2) per switch address, node AS and profile, selecting its nodes by rack label
(or hostname); ``IPAddressPool`` (metallb.io/v1beta1) per VIP pool; one ``BGPAdvertisement``
(metallb.io/v1beta1) announcing those pools to bgpgen's peers. The password is the Secret
``bgpgen-SECRET`` in ``metallb-system`` (MetalLB reads its key ``password``). MetalLB announces
service addresses, not pod CIDRs: give its nodes ``vips`` and no ``pod_cidrs`` (verify expects
what the inventory says).
"""

from __future__ import annotations

from typing import Any

from ..model import Fabric, Node, Platform
from . import k8s

NAMESPACE = "metallb-system"
V_PEER, V_POOL = "metallb.io/v1beta2", "metallb.io/v1beta1"


def resources(fabric: Fabric, nodes: tuple[Node, ...]) -> list[dict[str, Any]]:
    label = fabric.cluster.rack_label
    out: list[dict[str, Any]] = []
    peers = []
    for p in k8s.peerings(fabric, nodes):
        prof = p.profile
        if prof.bfd:
            raise k8s.unsupported(f"profiles.{prof.name}.bfd",
                                  f"profile {prof.name} asks for BFD, which bgpgen "
                                  "does not render for MetalLB (it needs a BFDProfile)",
                                  "use a profile with bfd: false for MetalLB nodes")
        spec: dict[str, Any] = {
            "myASN": p.node_asn, "peerASN": p.switch_asn, "peerAddress": p.address,
            "holdTime": f"{prof.timers.hold}s", "keepaliveTime": f"{prof.timers.keepalive}s",
            "connectTime": f"{prof.timers.connect_retry}s",
            "enableGracefulRestart": prof.graceful_restart,
            "nodeSelectors": [p.match_expressions(label)]}
        port = _port(fabric, p)
        if port != 179:
            spec["peerPort"] = port
        if prof.multihop:
            spec["ebgpMultiHop"] = True
        secret = k8s.secret_name(prof)
        if secret:
            spec["passwordSecret"] = {"name": secret, "namespace": NAMESPACE}
        peers.append(p.name)
        out.append({"apiVersion": V_PEER, "kind": "BGPPeer",
                    "metadata": k8s.meta(p.name, fabric, NAMESPACE), "spec": spec})
    pools = k8s.pools(fabric)
    for name, cidr in pools:
        out.append({"apiVersion": V_POOL, "kind": "IPAddressPool",
                    "metadata": k8s.meta(f"bgpgen-{name}", fabric, NAMESPACE),
                    "spec": {"addresses": [cidr]}})
    if pools:
        out.append({"apiVersion": V_POOL, "kind": "BGPAdvertisement",
                    "metadata": k8s.meta("bgpgen", fabric, NAMESPACE),
                    "spec": {"ipAddressPools": [f"bgpgen-{n}" for n, _ in pools],
                             "peers": peers}})
    return out


def _port(fabric: Fabric, p: k8s.Peering) -> int:
    return fabric.device(p.switch).bgp_port


SPEC = k8s.unconfigured_spec(Platform.METALLB, "a node whose BGP speaker is MetalLB", resources)
