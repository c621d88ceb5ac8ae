"""cilium: a node whose BGP speaker is Cilium's BGP control plane (inventory: ``speaker:
cilium``).

bgpgen renders the switch side as for any node and, for the cluster, Cilium's v2 resources
(upstream cilium/cilium, pkg/k8s/apis/cilium.io/client/crds/v2, cilium.io/v2, Cilium 1.18 and
later): a ``CiliumBGPClusterConfig`` per set of nodes and node AS (nodes selected by rack
label, or by hostname), one BGP instance with a peer per switch address; a
``CiliumBGPPeerConfig`` per profile and switch port (timers, graceful restart, multihop, the
families, the password as ``authSecretRef``: the Secret ``bgpgen-SECRET``, key ``password``, in
Cilium's BGP secrets namespace, kube-system by default); one ``CiliumBGPAdvertisement``
announcing each node's pod CIDR and, when the cluster has VIP pools, LoadBalancer IPs.
"""

from __future__ import annotations

from typing import Any

from ..model import Fabric, Node, Platform
from . import k8s

VERSION = "cilium.io/v2"
ADVERTISE = "bgpgen.io/advertise"


def resources(fabric: Fabric, nodes: tuple[Node, ...]) -> list[dict[str, Any]]:
    label = fabric.cluster.rack_label
    out: list[dict[str, Any]] = []
    configs: dict[str, dict[str, Any]] = {}
    instances: dict[tuple[str, tuple[str, ...], int], list[dict[str, Any]]] = {}
    for p in k8s.peerings(fabric, nodes):
        prof, port = p.profile, fabric.device(p.switch).bgp_port
        cname = f"bgpgen-{prof.name.lower()}" + ("" if port == 179 else f"-port{port}")
        if cname not in configs:
            spec: dict[str, Any] = {
                "timers": {"holdTimeSeconds": prof.timers.hold,
                           "keepAliveTimeSeconds": prof.timers.keepalive,
                           "connectRetryTimeSeconds": prof.timers.connect_retry},
                "gracefulRestart": {"enabled": prof.graceful_restart,
                                    "restartTimeSeconds": prof.restart_time},
                "families": [{"afi": fam, "safi": "unicast",
                              "advertisements": {"matchLabels": {ADVERTISE: fabric.name}}}
                             for fam in prof.families]}
            if port != 179:
                spec["transport"] = {"peerPort": port}
            if prof.multihop:
                spec["ebgpMultihop"] = prof.multihop
            secret = k8s.secret_name(prof)
            if secret:
                spec["authSecretRef"] = secret
            configs[cname] = {"apiVersion": VERSION, "kind": "CiliumBGPPeerConfig",
                              "metadata": k8s.meta(cname, fabric), "spec": spec}
        key, chosen = p.selector(label)
        instances.setdefault((key, tuple(chosen), p.node_asn), []).append(
            {"name": f"{p.switch}-{p.family}", "peerAddress": p.address,
             "peerASN": p.switch_asn, "peerConfigRef": {"name": cname}})
    for (key, values, asn), peers in sorted(instances.items()):
        who = values[0] if len(values) == 1 else f"{values[0]}-and-{len(values) - 1}-more"
        name = f"bgpgen-{who}-as{asn}"[:253]
        out.append({"apiVersion": VERSION, "kind": "CiliumBGPClusterConfig",
                    "metadata": k8s.meta(name, fabric),
                    "spec": {"nodeSelector": {"matchExpressions": [
                                 {"key": key, "operator": "In", "values": list(values)}]},
                             "bgpInstances": [{"name": f"as{asn}", "localASN": asn,
                                               "peers": peers}]}})
    out += [configs[n] for n in sorted(configs)]
    adverts: list[dict[str, Any]] = [{"advertisementType": "PodCIDR"}]
    if fabric.cluster.vip_pools:
        adverts.append({"advertisementType": "Service",
                        "service": {"addresses": ["LoadBalancerIP"]},
                        # every Service (a selector is required to select any)
                        "selector": {"matchExpressions": [
                            {"key": "bgpgen.io/no-advertise", "operator": "DoesNotExist"}]}})
    meta = k8s.meta("bgpgen", fabric)
    meta["labels"][ADVERTISE] = fabric.name
    out.append({"apiVersion": VERSION, "kind": "CiliumBGPAdvertisement", "metadata": meta,
                "spec": {"advertisements": adverts}})
    return out


SPEC = k8s.unconfigured_spec(Platform.CILIUM, "a node whose BGP speaker is Cilium's", resources)
