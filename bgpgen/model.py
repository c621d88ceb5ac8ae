"""The vendor-neutral BGP model: frozen objects that templates and later stages read.

Both ends of a session come from one :class:`Session`, so the two configs cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from .frozen import quick_pickle
from .netutil import Address, Interface, Network, host_network


class Role(StrEnum):
    NODE = "node"
    SWITCH = "switch"


class Platform(StrEnum):
    """What runs on a device; the key of the platform registry (:mod:`bgpgen.platforms`)."""

    GOBGP = "gobgp"        #: a node speaking BGP with gobgpd
    BIRD = "bird"          #: a node speaking BGP with BIRD 2
    FRR = "frr"            #: a ToR switch running FRR
    CUMULUS = "cumulus"    #: a ToR switch running Cumulus Linux (its FRR, plain files)
    SONIC = "sonic"        #: a ToR switch running SONiC (its FRR in split mode)
    EOS = "eos"            #: a ToR switch running Arista EOS
    JUNOS = "junos"        #: a ToR switch running Juniper Junos
    NXOS = "nxos"          #: a ToR switch running Cisco NX-OS
    GOBGP_RS = "gobgp-rs"  #: a gobgpd route server standing in for a switch
    EXTERNAL = "external"  #: a node whose BGP speaker bgpgen does not configure (its own program)
    METALLB = "metallb"    #: a node whose speaker is MetalLB (configured by cluster resources)
    CALICO = "calico"      #: a node whose speaker is Calico's BIRD (cluster resources)
    CILIUM = "cilium"      #: a node whose speaker is Cilium's BGP control plane (resources)
    OPENELB = "openelb"    #: a node whose speaker is OpenELB (cluster resources)


class Manage(StrEnum):
    """How much of a switch's config bgpgen manages."""

    PART = "bgp-part"  #: its part only (its objects, its peer groups, the nodes' neighbors)
    WHOLE = "whole"    #: the whole config: what bgpgen renders is what the switch runs


class Passive(StrEnum):
    """Which end waits for the other to connect."""

    NONE = "none"
    NODE = "node"
    SWITCH = "switch"


@dataclass(frozen=True, slots=True)
class SecretRef:
    """Where a secret lives; never its value. ``declared_in`` / ``line``: where it was declared.

    ``file`` is absolute (a relative reference is taken from the inventory directory). Only the
    name is printed: a rendered file holds the secret's token, never where its value comes from,
    so the input digests (which print the model) do not change when the inventory moves.
    """

    name: str
    env: str | None = field(repr=False)
    file: str | None = field(repr=False)
    declared_in: str = field(repr=False)
    line: int | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Timers:
    hold: int = 90
    keepalive: int = 30
    connect_retry: int = 120


@dataclass(frozen=True, slots=True)
class Profile:
    """Session settings shared by both ends."""

    name: str
    families: tuple[str, ...] = ("ipv4", "ipv6")
    timers: Timers = Timers()
    graceful_restart: bool = False
    restart_time: int = 120
    bfd: bool = False
    multihop: int | None = None
    max_prefix: int | None = None
    password: SecretRef | None = None
    peer_group: str = ""
    default_originate: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class Mgmt:
    """How to reach a device, as the inventory says; the user's ssh config comes first
    (:mod:`bgpgen.reach`). None: not said here."""

    host: str | None = None
    port: int = 22
    user: str = "root"
    key: str | None = None          #: an identity file
    jump: str | None = None         #: ProxyJump: bastions, comma-separated
    ssh_host: str | None = None     #: the ssh config Host to use instead of the device name
    become: bool | None = None      #: privileged steps through sudo -n; None: unless root


@dataclass(frozen=True, slots=True)
class Device:
    """A node or a switch: anything bgpgen renders a config for."""

    name: str
    role: Role
    platform: Platform
    asn: int
    router_id: str
    interfaces: tuple[Interface, ...]
    rack: str | None = None
    description: str = ""
    mgmt: Mgmt | None = None
    profile: str = "default"
    bgp_port: int = 179
    api_port: int = 50051


@dataclass(frozen=True, slots=True)
class Node(Device):
    group: str | None = None
    pod_cidrs: tuple[Network, ...] = ()
    vips: tuple[Address, ...] = ()
    next_hop: tuple[tuple[str, Address], ...] = ()
    _own: dict[str, tuple[Network, ...]] = field(default_factory=dict, init=False,
                                                 compare=False, repr=False)

    def __post_init__(self) -> None:
        for family, version in (("ipv4", 4), ("ipv6", 6)):
            pods = tuple(p for p in self.pod_cidrs if p.version == version)
            vips = tuple(_host_net(v) for v in self.vips if v.version == version)
            self._own[family] = pods + vips

    def prefixes(self, family: str) -> tuple[Network, ...]:
        """What this node originates in one address family: pod CIDRs, then VIP host routes."""
        return self._own[family]

    def is_vip(self, prefix: Network) -> bool:
        """True for a VIP host route of this node (as opposed to a pod CIDR)."""
        return prefix.prefixlen == prefix.max_prefixlen and prefix.network_address in self.vips

    def next_hop_for(self, family: str) -> Address | None:
        for fam, addr in self.next_hop:
            if fam == family:
                return addr
        return None


@dataclass(frozen=True, slots=True)
class Uplink:
    """A switch's session to a spine that bgpgen does not manage: part of the switch's own
    config, which bgpgen keeps (the lab provisions it)."""

    address: Interface     #: the switch's address on the spine's subnet
    spine: str
    spine_asn: int
    spine_address: Address


@dataclass(frozen=True, slots=True)
class Switch(Device):
    manage: Manage = Manage.WHOLE
    uplinks: tuple[Uplink, ...] = ()


@dataclass(frozen=True, slots=True)
class Session:
    """One BGP session, both ends. A session carries the unicast family of its transport."""

    id: str
    node: str
    switch: str
    family: str
    node_address: Address
    switch_address: Address
    node_asn: int
    switch_asn: int
    node_port: int
    switch_port: int
    profile: Profile
    passive: Passive = Passive.NONE
    description: str = ""

    @property
    def ebgp(self) -> bool:
        return self.node_asn != self.switch_asn


@dataclass(frozen=True, slots=True)
class Route:
    """A prefix some device is expected to hold: who originates it, with what next hop, via what.

    The fields are in alphabetical order, the order of the keys of a route in ``manifest.json``:
    the manifest encodes routes as they are (orjson keeps a dataclass's field order)."""

    kind: str  # pod | vip | default
    next_hop: Address
    origin: str
    prefix: Network
    seen_by: str
    session: str


@dataclass(frozen=True, slots=True)
class VipPool:
    name: str
    cidr: Network


@dataclass(frozen=True, slots=True)
class Cluster:
    name: str
    pod_cidrs: tuple[Network, ...]
    node_mask: tuple[tuple[str, int], ...]
    service_cidrs: tuple[Network, ...] = ()
    vip_pools: tuple[VipPool, ...] = ()
    #: the node label that names a node's rack (Kubernetes speakers' per-rack node selectors)
    rack_label: str = "topology.kubernetes.io/zone"


@dataclass(frozen=True, slots=True)
class Fabric:
    """The whole validated inventory with its derived sessions and expected routes."""

    name: str
    cluster: Cluster
    profiles: tuple[Profile, ...]
    secrets: tuple[SecretRef, ...]
    racks: tuple[str, ...]
    switches: tuple[Switch, ...]
    nodes: tuple[Node, ...]
    sessions: tuple[Session, ...]
    routes: tuple[Route, ...]
    description: str = ""
    #: spines bgpgen does not manage (not devices: nothing is rendered, planned or pushed for
    #: them); the lab runs them so that the ToRs' uplinks are real sessions
    spines: tuple[Switch, ...] = ()
    management: Mgmt = Mgmt()       #: the fabric's defaults for every device
    ssh_config: str | None = None   #: the inventory's OpenSSH client config (absolute)
    _by_name: dict[str, Device] = field(default_factory=dict, init=False, compare=False,
                                        repr=False)
    _sessions_by: dict[str, list[Session]] = field(default_factory=dict, init=False,
                                                   compare=False, repr=False)
    _routes_by: dict[str, list[Route]] = field(default_factory=dict, init=False, compare=False,
                                               repr=False)
    #: each device's input digest before the templates' part (:mod:`bgpgen.inputs` fills it,
    #: :mod:`bgpgen.model_cache` keeps it with the model, so unchanged devices are not hashed)
    inputs: dict[str, bytes] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({d.name: d for d in (*self.switches, *self.nodes)})
        for s in self.sessions:
            self._sessions_by.setdefault(s.node, []).append(s)
            self._sessions_by.setdefault(s.switch, []).append(s)
        for r in self.routes:
            self._routes_by.setdefault(r.seen_by, []).append(r)

    @property
    def devices(self) -> tuple[Device, ...]:
        """Switches first, then nodes, each in name order."""
        return (*self.switches, *self.nodes)

    def device(self, name: str) -> Device:
        return self._by_name[name]

    def sessions_of(self, name: str) -> tuple[Session, ...]:
        return tuple(self._sessions_by.get(name, ()))

    def routes_seen_by(self, name: str) -> tuple[Route, ...]:
        return tuple(self._routes_by.get(name, ()))


def _host_net(addr: Address) -> Network:
    return host_network(addr)


def _unguarded_reprs() -> None:
    """Model objects are trees (frozen, built bottom-up), so their ``repr`` needs no guard
    against cycles; without it, printing them is 20% faster (input digests print every one)."""
    import dataclasses

    for obj in list(globals().values()):
        if isinstance(obj, type) and dataclasses.is_dataclass(obj) \
                and obj.__module__ in (__name__, Interface.__module__) \
                and hasattr(obj.__repr__, "__wrapped__"):
            obj.__repr__ = obj.__repr__.__wrapped__  # type: ignore[method-assign]


_unguarded_reprs()
_PROFILE_TEXT: dict[int, tuple[Profile, str]] = {}
_profile_repr = Profile.__repr__


def _kept_profile_repr(self: Profile) -> str:
    """A profile's repr, made once: profiles are few, and each session's repr holds its
    profile's (input digests print every session)."""
    got = _PROFILE_TEXT.get(id(self))
    if got is None or got[0] is not self:
        got = _PROFILE_TEXT[id(self)] = (self, _profile_repr(self))
    return got[1]


Profile.__repr__ = _kept_profile_repr  # type: ignore[method-assign, assignment]

for _cls in (SecretRef, Timers, Profile, Mgmt, Node, Uplink, Switch, Session, Route, VipPool,
             Cluster, Fabric):
    quick_pickle(_cls)
