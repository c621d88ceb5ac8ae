"""Lab layout: from the model, which namespaces, links, addresses and daemons a lab needs. Pure.

Devices whose sessions run over loopback (both ends on 127.0.0.0/8 or ::1) share one namespace,
as they would share one host; every other device gets its own. Each node is linked to each
switch it peers with: a veth pair whose switch end joins that switch's fabric bridge, which
carries the switch's peering addresses; the node end carries the node's addresses in those
subnets. Management is a bridge in the root namespace with one address per device.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass, field

from ..errors import BgpgenError, Problem
from ..model import Device, Fabric, Platform, Role

NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,14}")


class LabError(BgpgenError):
    """The lab cannot be built, started or torn down."""


@dataclass(frozen=True, slots=True)
class Link:
    """A veth pair between a node's namespace and a switch's namespace."""

    node: str
    switch: str
    node_if: str
    switch_if: str
    node_addrs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LabDevice:
    name: str
    platform: Platform
    netns: str
    mgmt_ip: str
    ssh_port: int
    api_port: int
    fabric_addrs: tuple[str, ...] = ()  #: a switch's addresses, on its fabric bridge


BASTION = "bgpgen-bastion"  #: the lab's bastion host (lab up --bastion)


@dataclass(frozen=True, slots=True)
class Bastion:
    """A host on the management network that is the only way in to the devices."""

    name: str
    netns: str
    mgmt_ip: str


@dataclass(frozen=True, slots=True)
class LabLayout:
    name: str
    tag: str  #: short hash used in root-namespace interface names (<= 15 characters)
    mgmt_net: str
    gateway: str
    bridge: str
    devices: tuple[LabDevice, ...]
    links: tuple[Link, ...]
    namespaces: tuple[str, ...]
    mgmt_links: tuple[tuple[str, str], ...] = field(default=())  #: (netns, root-side veth)
    bastion: Bastion | None = None

    def device(self, name: str) -> LabDevice:
        for d in self.devices:
            if d.name == name:
                return d
        raise LabError(Problem("", name, f"no device {name} in lab {self.name}",
                               "see bgpgen lab status"))


def netns_name(lab: str, device: str) -> str:
    """Lab namespaces are ``bgpgen.LAB.DEVICE``: dots cannot occur in lab or device names, so
    one lab's namespaces never match another's prefix."""
    return f"bgpgen.{lab}.{device}"


def tag_of(name: str) -> str:
    """Four hex digits naming a lab in root-namespace interface names (15 characters at most).

    >>> tag_of("lab")
    'a511'
    """
    return hashlib.sha256(name.encode()).hexdigest()[:4]


def check_name(name: str) -> None:
    if not NAME.fullmatch(name):
        raise LabError(Problem("", "--name", f"lab name {name!r} is not valid",
                               "use up to 15 lower-case letters, digits and hyphens"))


def _loopback_groups(fabric: Fabric) -> dict[str, str]:
    """Device -> representative device of its shared namespace (union-find over loopback)."""
    parent = {d.name: d.name for d in fabric.devices}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for s in fabric.sessions:
        if s.node_address.is_loopback and s.switch_address.is_loopback:
            a, b = find(s.node), find(s.switch)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {d: find(d) for d in parent}


def layout(fabric: Fabric, name: str, mgmt_net: str, bastion: bool = False) -> LabLayout:
    check_name(name)
    tag = tag_of(name)
    net = ipaddress.ip_network(mgmt_net)
    hosts = net.hosts()
    gateway = str(next(hosts))
    group = _loopback_groups(fabric)
    devices: list[LabDevice] = []
    for d in fabric.devices:
        try:
            ip = str(next(hosts))
        except StopIteration:
            raise LabError(Problem("", "--mgmt-range", f"{net} has too few addresses for "
                                   f"{len(fabric.devices)} devices",
                                   "give a larger --mgmt-range")) from None
        devices.append(LabDevice(
            name=d.name, platform=d.platform, netns=netns_name(name, group[d.name]),
            mgmt_ip=ip, ssh_port=22, api_port=d.api_port,
            fabric_addrs=tuple(str(i) for i in d.interfaces if not i.ip.is_loopback)
            if d.role is Role.SWITCH else ()))
    for sp in fabric.spines:  # bgpgen does not manage them; the lab runs them
        try:
            ip = str(next(hosts))
        except StopIteration:
            raise LabError(Problem("", "--mgmt-range", f"{net} has too few addresses for "
                                   "the devices and the spines",
                                   "give a larger --mgmt-range")) from None
        devices.append(LabDevice(name=sp.name, platform=sp.platform,
                                 netns=netns_name(name, sp.name), mgmt_ip=ip, ssh_port=22,
                                 api_port=sp.api_port,
                                 fabric_addrs=tuple(str(i) for i in sp.interfaces)))
    jump = None
    if bastion:
        if any(d.name == BASTION for d in fabric.devices):
            raise LabError(Problem("", "--bastion", f"the inventory has a device named "
                                   f"{BASTION}", "rename it, or run the lab without --bastion"))
        try:
            jump = Bastion(BASTION, netns_name(name, BASTION), str(next(hosts)))
        except StopIteration:
            raise LabError(Problem("", "--mgmt-range", f"{net} has no address left for the "
                                   "bastion", "give a larger --mgmt-range")) from None
    links = _links(fabric, {d.name: d for d in devices})
    namespaces = tuple(dict.fromkeys([*(d.netns for d in devices),
                                      *([jump.netns] if jump else [])]))
    mgmt_links = tuple((ns, f"bg{tag}m{i}") for i, ns in enumerate(namespaces))
    return LabLayout(name, tag, str(net), gateway, f"bg{tag}br", tuple(devices), links,
                     namespaces, mgmt_links, jump)


def _links(fabric: Fabric, lab: dict[str, LabDevice]) -> tuple[Link, ...]:
    links: dict[tuple[str, str], Link] = {}
    counters: dict[str, int] = {}  # per switch: its ports n1, n2, ...
    ports: dict[str, int] = {}     # per node: its uplinks fab0, fab1, ...
    for s in fabric.sessions:
        if s.node_address.is_loopback or (s.node, s.switch) in links:
            continue
        if lab[s.node].netns == lab[s.switch].netns:
            continue
        node: Device = fabric.device(s.node)
        switch: Device = fabric.device(s.switch)
        nets = [i.network for i in switch.interfaces]
        mine = tuple(str(i) for i in node.interfaces if any(i.ip in n for n in nets))
        k = counters[s.switch] = counters.get(s.switch, 0) + 1
        j = ports[s.node] = ports.get(s.node, -1) + 1
        links[(s.node, s.switch)] = Link(s.node, s.switch, f"fab{j}", f"n{k}", mine)
    for sw in fabric.switches:  # a ToR's uplinks: its end carries its address, the spine's
        for j, u in enumerate(sw.uplinks):  # joins the spine's bridge
            k = counters[u.spine] = counters.get(u.spine, 0) + 1
            links[(sw.name, u.spine)] = Link(sw.name, u.spine, f"up{j}", f"t{k}",
                                             (str(u.address),))
    return tuple(links.values())
