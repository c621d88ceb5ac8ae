"""What the platforms of nodes bgpgen does not configure share: external speakers and the
Kubernetes speakers (MetalLB, Calico, Cilium, OpenELB), whose BGP is configured through cluster
resources rendered from the same sessions as the switch side.

A speaker of this kind has no files, no target and no push (see :mod:`.external`): its
:attr:`PlatformSpec.resources` gives the Kubernetes objects, and verify judges its sessions from
the switches. The objects peer per rack where they can: one peering per switch address, node AS
and profile, selecting its nodes by the cluster's rack label when they are all of that rack's
nodes of this speaker (``cluster.rack_label``), by ``kubernetes.io/hostname`` otherwise.
Passwords are references to Kubernetes Secrets (``bgpgen-SECRET``, key ``password``, which the
user creates), never values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..artifacts import Artifact
from ..changes import DevicePlan
from ..errors import BgpgenError, Problem, RenderError
from ..model import Device, Fabric, Node, Passive, Platform, Profile, Role
from ..state import DeviceState
from ..transport import Transport
from .base import (Checker, Daemon, DeviceFiles, LabSetup, Outcome, Paths, PlatformSpec,
                   Session, StateReader)

if TYPE_CHECKING:
    from ..targets import Target

Resources = Callable[[Fabric, tuple[Node, ...]], list[dict[str, Any]]]
#: where a lab gives the node's own program a runtime directory
PATHS = Paths(config="", run="/run/bgp", confdir="")
NEVER = re.compile(r"(?!)(.)(.)(.)")  #: no line of such a speaker holds a secret of ours
HOSTNAME = "kubernetes.io/hostname"
SECRET_KEY = "password"


class NotConfigured(BgpgenError):
    """bgpgen has no target for a speaker it does not configure."""


def _refuse(what: str) -> NotConfigured:
    return NotConfigured(Problem("", "speaker", f"bgpgen does not {what} a speaker it does "
                                 "not configure", "it has no target: select its switches"))


class UnconfiguredDriver:
    """Never called: such a node has no target (see :mod:`bgpgen.targets`)."""

    def plan(self, t: Transport, files: Mapping[str, Artifact],
             values: Mapping[str, str]) -> DevicePlan:
        raise _refuse("plan")

    def apply(self, t: Transport, p: DevicePlan, files: Mapping[str, Artifact],
              values: Mapping[str, str], timeout: float) -> Outcome:
        raise _refuse("push to")

    def confirm(self, t: Transport, p: DevicePlan) -> None:
        raise _refuse("confirm on")

    def rollback(self, t: Transport, p: DevicePlan, timeout: float) -> None:
        raise _refuse("roll back")


def _no_state(t: Target, fabric: Fabric) -> str:
    raise _refuse("read")


def _parse(t: Target, text: str, seconds: float) -> DeviceState:
    raise _refuse("read")


def _classify(old: str, new: str, plan: DevicePlan) -> None:
    """No files, nothing to classify."""


def _context(fabric: Fabric, device: Device) -> dict[str, Any]:
    return {}


def _no_daemons(device: Device) -> list[Daemon]:
    return []


def _no_bootstrap(device: Device) -> str:
    return ""


def _nothing(device: Device, fs: DeviceFiles, files: Mapping[str, Artifact]
             ) -> list[tuple[str, ...]]:
    return []


def unconfigured_spec(platform: Platform, description: str,
                      resources: Resources | None) -> PlatformSpec:
    """The spec of a node speaker bgpgen does not configure itself."""
    return PlatformSpec(
        platform=platform, role=Role.NODE, inventory_name=platform.value,
        description=description, configured=False, files=(), context=_context,
        checker=Checker((), "true", "coreutils"), netmiko_device_type="linux", paths=PATHS,
        secret_line=NEVER, classify=_classify, driver=UnconfiguredDriver(),
        # lab status asks every device for its sessions: these have none bgpgen can read
        state=StateReader(_no_state, _parse, lambda t: "true", lambda text: {}),
        session=Session.SHELL,
        lab=LabSetup(daemons=_no_daemons, bootstrap=_no_bootstrap, prepare=_nothing,
                     binaries={}, user=None, cli_port=None, spine=None),
        bfd=True,  # bgpgen renders only the switch side; BFD there is the switch's
        default_originate=False, route_server=False, default_passive=Passive.NONE,
        drain=None, filters={}, part=None, resources=resources)


# --- what the speakers' resources are made of ---------------------------------------------------

@dataclass(frozen=True, slots=True)
class Peering:
    """Sessions that one resource describes: one switch address, its AS, the nodes' AS, one
    family and profile, and the nodes that take part (how they are selected)."""

    switch: str
    address: str
    switch_asn: int
    node_asn: int
    family: str
    profile: Profile
    nodes: tuple[str, ...]
    racks: tuple[str, ...]
    by_rack: bool  #: the nodes are exactly their racks' nodes of this speaker

    @property
    def name(self) -> str:
        """A resource name: lowercase, digits and '-' (a DNS label)."""
        return f"bgpgen-{self.switch}-{self.family}-as{self.node_asn}"

    def selector(self, rack_label: str) -> tuple[str, list[str]]:
        """The node label and its values that select this peering's nodes."""
        return (rack_label, list(self.racks)) if self.by_rack else (HOSTNAME, list(self.nodes))

    def match_expressions(self, rack_label: str) -> dict[str, Any]:
        key, values = self.selector(rack_label)
        return {"matchExpressions": [{"key": key, "operator": "In", "values": values}]}


def peerings(fabric: Fabric, nodes: tuple[Node, ...]) -> list[Peering]:
    """Every session of these nodes, grouped into peerings (see :class:`Peering`)."""
    mine = {n.name for n in nodes}
    rack_of = {n.name: n.rack or "" for n in nodes}
    per_rack: dict[str, set[str]] = {}
    for n in nodes:
        per_rack.setdefault(rack_of[n.name], set()).add(n.name)
    groups: dict[tuple[str, str, int, int, str, str], list[str]] = {}
    profile_of: dict[str, Profile] = {}
    for s in fabric.sessions:
        if s.node in mine:
            key = (s.switch, str(s.switch_address), s.switch_asn, s.node_asn, s.family,
                   s.profile.name)
            groups.setdefault(key, []).append(s.node)
            profile_of[s.profile.name] = s.profile
    out = []
    for (sw, addr, sw_asn, node_asn, fam, prof), members in sorted(groups.items()):
        racks = tuple(sorted({rack_of[m] for m in members}))
        by_rack = all(r and per_rack[r] <= set(members) for r in racks)
        out.append(Peering(sw, addr, sw_asn, node_asn, fam, profile_of[prof],
                           tuple(sorted(members)), racks, by_rack))
    return out


def secret_name(profile: Profile) -> str | None:
    """The Kubernetes Secret that holds the profile's password (key ``password``)."""
    return f"bgpgen-{profile.password.name}" if profile.password else None


def meta(name: str, fabric: Fabric, namespace: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if namespace is not None:
        out["namespace"] = namespace
    out["labels"] = {"app.kubernetes.io/managed-by": "bgpgen",
                     "bgpgen.io/fabric": fabric.name}
    return out


def pools(fabric: Fabric) -> list[tuple[str, str]]:
    """The cluster's VIP pools: (name, CIDR)."""
    return [(p.name, str(p.cidr)) for p in fabric.cluster.vip_pools]


def unsupported(place: str, what: str, hint: str) -> BgpgenError:
    """What a speaker's resources cannot say, at its place in the inventory."""
    return RenderError(Problem("", place, what, hint))


__all__ = ["HOSTNAME", "Peering", "Resources", "meta", "peerings", "pools", "secret_name",
           "unconfigured_spec"]
