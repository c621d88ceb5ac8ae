"""external: a node whose BGP speaker bgpgen does not configure (inventory: ``speaker:
external``): a program of one's own (a MetalLB- or OpenELB-like controller embedding gobgp, a
hand-written gobgpd or ExaBGP), or anything else that announces the node's prefixes.

bgpgen renders and pushes the switch side of its sessions as for any node, renders nothing for
the node itself, never connects to it, and verify judges its sessions from the switches alone:
session state, the prefixes received from it and their next hops, nothing it should not
announce (FRR switches keep what a node sent before their inbound policy). In a lab the node
gets its namespace, addresses, routes and sshd, and no daemon: one starts one's own program in
it with ``bgpgen lab exec NODE -- PROGRAM``.
"""

from __future__ import annotations

from ..model import Platform
from .k8s import unconfigured_spec

SPEC = unconfigured_spec(Platform.EXTERNAL,
                         "a node whose BGP speaker bgpgen does not configure", None)
