"""Model stage, part one (assembling the model): turn the schema-valid document into typed objects, checking values.

Every value that a schema cannot judge is checked here: prefixes are network addresses, ASNs are
in range and not reserved, references resolve, names and addresses are unique, timers make sense,
and prefixes do not overlap (one sorted sweep, never pairwise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Iterator
from typing import Any

from . import asn as asnlib
from .loader import PathT
from .model import (Cluster, Device, Manage, Mgmt, Node, Platform, Profile, Role, SecretRef,
                    Switch, Timers, Uplink, VipPool)
from .platforms import by_inventory_name, spec, spine_platform
from .netutil import (Address, Interface, Network, Tagged, check_host, overlaps,
                      parse_address, parse_interface, parse_network, span)
from .problems import Collector

DEFAULT_PROFILE = "default"


@dataclass(slots=True)
class Parts:
    """What :func:`build` hands to :mod:`bgpgen.derive`."""

    name: str
    description: str
    cluster: Cluster
    profiles: dict[str, Profile]
    secrets: dict[str, SecretRef]
    racks: tuple[str, ...]
    management: Mgmt = Mgmt()
    ssh_config: str | None = None
    switches: list[tuple[int, Switch]] = field(default_factory=list)
    spines: list[Switch] = field(default_factory=list)
    nodes: list[tuple[int, Node]] = field(default_factory=list)
    sessions: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    context: NodeContext | None = None


@dataclass(frozen=True, slots=True)
class NodeContext:
    """Everything besides its own entry that a node is assembled from: the node groups (raw,
    by name, with their index), the fabric's management defaults (raw), the profiles, the
    declared racks and the default profile. Kept by :mod:`bgpgen.model_cache` to assemble the
    nodes of an edited file alone."""

    groups: dict[str, tuple[int, dict[str, Any]]]
    mgmt_defaults: dict[str, Any]
    profiles: dict[str, Profile]
    racks: frozenset[str]
    default_profile: str


def node(i: int, raw: dict[str, Any], ctx: NodeContext, out: Collector) -> Node:
    """One schema-valid node entry (``nodes[i]``) as a :class:`Node`, its problems in ``out``."""
    refs = _Refs(out, ctx.profiles, set(ctx.racks), ctx.default_profile)
    return _node(i, raw, ctx.groups, ctx.mgmt_defaults, refs)


def build(doc: dict[str, Any], out: Collector) -> Parts | None:
    fabric = doc["fabric"]
    secrets = _secrets(doc.get("secrets", {}), out)
    profiles = _profiles(doc.get("profiles", {}), secrets, out)
    default = fabric.get("profile", DEFAULT_PROFILE)
    if default not in profiles:
        if "profile" in fabric or profiles:
            out.add(("fabric", "profile"), f"profile '{default}' is not defined",
                    f"define profiles.{default} or name one of: {', '.join(sorted(profiles))}")
        profiles[default] = Profile(name=default, peer_group=_peer_group_name(default))
    cluster = _cluster(doc["cluster"], out)
    racks = _racks(doc.get("racks", []), out)
    parts = Parts(fabric["name"], fabric.get("description", ""), cluster, profiles, secrets, racks)
    mgmt_defaults = fabric.get("management", {})
    parts.management = _mgmt({}, mgmt_defaults) or Mgmt()
    if "ssh_config" in mgmt_defaults:  # relative to the inventory; an absolute path stays
        parts.ssh_config = str(out.source.root / mgmt_defaults["ssh_config"])
    refs = _Refs(out, profiles, set(racks), default)
    parts.spines = _spines(doc.get("spines", []), out)
    for i, raw in enumerate(doc["switches"]):
        sw = _switch(i, raw, mgmt_defaults, refs, parts.spines)
        if sw is not None:
            parts.switches.append((i, sw))
    groups = _groups(doc.get("node_groups", []), refs)
    parts.context = NodeContext(groups, mgmt_defaults, profiles, frozenset(racks), default)
    for i, raw in enumerate(doc["nodes"]):
        parts.nodes.append((i, _node(i, raw, groups, mgmt_defaults, refs)))
    parts.sessions = list(enumerate(doc.get("sessions", [])))
    _unique(parts, out)
    _check_prefixes(parts, out)
    return parts


@dataclass(slots=True)
class _Refs:
    out: Collector
    profiles: dict[str, Profile]
    racks: set[str]
    default_profile: str

    def profile(self, path: PathT, name: str | None) -> str:
        name = name or self.default_profile
        if name not in self.profiles:
            self.out.add(path, f"profile '{name}' is not defined",
                         f"define profiles.{name} or use one of: {', '.join(sorted(self.profiles))}")
        return name

    def rack(self, path: PathT, name: str | None) -> str | None:
        if name is not None and name not in self.racks:
            known = ", ".join(sorted(self.racks)) or "none declared"
            self.out.add(path, f"rack '{name}' is not declared",
                         f"add it under racks: (declared: {known})")
        return name


def _peer_group_name(profile: str) -> str:
    return "NODES" if profile == DEFAULT_PROFILE else f"NODES-{profile.upper()}"


def _secrets(raw: dict[str, dict[str, str]], out: Collector) -> dict[str, SecretRef]:
    refs = {}
    for name, ref in raw.items():
        where = out.source.problem(("secrets", name), "")
        file = ref.get("file")
        if file is not None:
            file = str(out.source.root / file)  # an absolute path stays absolute
        refs[name] = SecretRef(name, ref.get("env"), file, where.file, where.line)
    return refs


def _profiles(raw: dict[str, dict[str, Any]], secrets: dict[str, SecretRef],
              out: Collector) -> dict[str, Profile]:
    profiles: dict[str, Profile] = {}
    for name, p in raw.items():
        path: PathT = ("profiles", name)
        t = p.get("timers", {})
        hold = t.get("hold", 90)
        keepalive = t.get("keepalive", hold // 3 if "hold" in t else 30)
        if 0 < hold < 3:
            out.add((*path, "timers", "hold"), f"hold time {hold} is not allowed (RFC 4271)",
                    "use 0 (no keepalives) or 3 seconds or more")
        elif hold == 0 and keepalive != 0:
            out.add((*path, "timers", "keepalive"), "keepalive must be 0 when hold is 0",
                    "set keepalive: 0 or a hold time of 3 or more")
        elif keepalive > hold // 3:
            out.add((*path, "timers", "keepalive"),
                    f"keepalive {keepalive} is more than a third of hold {hold}",
                    f"use keepalive <= {hold // 3}")
        secret = p.get("password")
        if secret is not None and secret not in secrets:
            out.add((*path, "password"), f"secret '{secret}' is not defined",
                    f"add secrets.{secret}: {{env: VARIABLE}} or {{file: PATH}}")
        gr = p.get("graceful_restart", {})
        profiles[name] = Profile(
            name=name, families=tuple(p.get("families", ("ipv4", "ipv6"))),
            timers=Timers(hold, keepalive, t.get("connect_retry", 120)),
            graceful_restart=gr.get("enabled", False), restart_time=gr.get("restart_time", 120),
            bfd=p.get("bfd", False), multihop=p.get("multihop"), max_prefix=p.get("max_prefix"),
            password=secrets.get(secret) if secret else None,
            peer_group=p.get("peer_group", _peer_group_name(name)),
            default_originate=p.get("default_originate", False),
            description=p.get("description", ""))
    _shared_peer_groups(profiles, out)
    return profiles


def _shared_peer_groups(profiles: dict[str, Profile], out: Collector) -> None:
    """Profiles that name the same peer group must agree on what a peer group carries: on a
    switch they are one group, and one of them would silently win (a node keeping a password
    its other end dropped)."""
    first: dict[str, Profile] = {}
    for name, p in profiles.items():
        other = first.setdefault(p.peer_group, p)
        if other is p:
            continue
        differ = [k for k in ("timers", "password", "multihop", "bfd", "default_originate",
                              "graceful_restart", "restart_time", "max_prefix")
                  if getattr(p, k) != getattr(other, k)]
        if differ:
            out.add(("profiles", name, "peer_group"), f"profile {name} shares peer group "
                    f"{p.peer_group} with profile {other.name} but differs in "
                    f"{', '.join(differ)}", "give it a peer_group of its own, or make the two "
                    "profiles agree")


def _net(out: Collector, path: PathT, text: str) -> Network | None:
    try:
        return parse_network(text)
    except ValueError as exc:
        hint = f"use {str(exc).rsplit(' ', 1)[-1]}" if "host bits" in str(exc) else \
            "write a network address with its length, e.g. 10.244.1.0/24"
        out.add(path, str(exc), hint)
        return None


def _addr(out: Collector, path: PathT, text: str) -> Address | None:
    try:
        return parse_address(text)
    except ValueError as exc:
        out.add(path, str(exc), "write an IPv4 or IPv6 address, e.g. 203.0.113.10")
        return None


def _cluster(raw: dict[str, Any], out: Collector) -> Cluster:
    path: PathT = ("cluster",)
    pods = [_net(out, (*path, "pod_cidrs", i), t) for i, t in enumerate(raw["pod_cidrs"])]
    svcs = [_net(out, (*path, "service_cidrs", i), t)
            for i, t in enumerate(raw.get("service_cidrs", []))]
    pools: list[VipPool] = []
    seen: set[str] = set()
    for i, pool in enumerate(raw.get("vip_pools", [])):
        if pool["name"] in seen:
            out.add((*path, "vip_pools", i, "name"), f"VIP pool '{pool['name']}' is defined twice",
                    "give each pool its own name")
        seen.add(pool["name"])
        net = _net(out, (*path, "vip_pools", i, "cidr"), pool["cidr"])
        if net is not None:
            pools.append(VipPool(pool["name"], net))
    mask = raw.get("node_mask", {})
    return Cluster(raw["name"], tuple(p for p in pods if p),
                   (("ipv4", mask.get("ipv4", 24)), ("ipv6", mask.get("ipv6", 64))),
                   tuple(s for s in svcs if s), tuple(pools),
                   raw.get("rack_label", "topology.kubernetes.io/zone"))


def _racks(raw: list[dict[str, Any]], out: Collector) -> tuple[str, ...]:
    names: list[str] = []
    for i, rack in enumerate(raw):
        if rack["name"] in names:
            out.add(("racks", i, "name"), f"rack '{rack['name']}' is declared twice",
                    "keep one entry per rack")
        names.append(rack["name"])
    return tuple(dict.fromkeys(names))


def _asn(out: Collector, path: PathT, value: int | str | None) -> int:
    if value is None:
        out.add(path, "no AS number", "set asn: on the device or its node group")
        return 0
    try:
        asn = asnlib.parse_asn(value)
    except ValueError as exc:
        out.add(path, str(exc), "an AS number such as 65001, 4200000000 or asdot 1.10")
        return 0
    reason = asnlib.reserved_reason(asn)
    if reason:
        out.add(path, f"AS {asn} cannot be used: {reason}",
                "use a private AS: 64512-65534 or 4200000000-4294967294")
    return asn


def _interfaces(out: Collector, path: PathT, raw: list[str]) -> tuple[Interface, ...]:
    found = (_interface(out, (*path, i), text) for i, text in enumerate(raw))
    return tuple(iface for iface in found if iface is not None)


def _interface(out: Collector, path: PathT, text: str) -> Interface | None:
    """A device's address on a link, with its length (None, said, when it is not one)."""
    try:
        iface = parse_interface(text)
    except ValueError as exc:
        out.add(path, str(exc), "write the device's address on the link, e.g. 10.1.1.10/24")
        return None
    net = iface.network
    if net.prefixlen < net.max_prefixlen - 1 and iface.ip in (net.network_address,
                                                              net.broadcast_address):
        out.add(path, f"{text} is the {'network' if iface.ip == net.network_address else 'broadcast'}"
                " address of its subnet, not a host address",
                f"use a host address inside {net}")
        return None
    return iface


def _router_id(out: Collector, path: PathT, raw: str | None,
               ifaces: tuple[Interface, ...]) -> str:
    if raw is not None:
        try:
            rid = parse_address(raw)
        except ValueError as exc:
            out.add(path, str(exc), "a router-id is an IPv4 address such as 10.0.0.1")
            return raw
        if rid.version != 4:
            out.add(path, f"{raw} is not an IPv4 address", "a router-id is an IPv4 address "
                    "such as 10.0.0.1")
        return raw
    v4 = [i.ip for i in ifaces if i.version == 4]
    if not v4:
        out.add(path, "no router_id and no IPv4 peering address to take it from",
                "set router_id: to an IPv4 address unique in the fabric")
        return ""
    return str(v4[0])


def _mgmt_host(out: Collector, path: PathT, raw: dict[str, Any] | None) -> None:
    if raw is not None and "host" in raw:
        try:
            check_host(raw["host"])
        except ValueError as exc:
            out.add((*path, "mgmt", "host"), str(exc), "write the address as it prints "
                    "(e.g. 198.51.100.11), or a DNS name")


def _mgmt(raw: dict[str, Any] | None, defaults: dict[str, Any],
          group: dict[str, Any] | None = None) -> Mgmt | None:
    """A device's management settings: its own, else its group's, else the fabric's."""
    if raw is None:
        return None
    g = group or {}

    def pick(key: str, fallback: Any = None) -> Any:
        return raw.get(key, g.get(f"mgmt_{key}", defaults.get(key, fallback)))
    return Mgmt(raw.get("host"), pick("port", 22), pick("user", "root"), pick("key"),
                pick("jump"), raw.get("ssh_host"), pick("become"))


def _spines(raw: list[dict[str, Any]], out: Collector) -> list[Switch]:
    """Spines bgpgen does not manage, as the lab runs them (FRR)."""
    spines = []
    for i, s in enumerate(raw):
        path: PathT = ("spines", i)
        addr = _interface(out, (*path, "address"), s["address"])
        if addr is None:
            continue
        spines.append(Switch(
            name=s["name"], role=Role.SWITCH, platform=spine_platform(),
            asn=_asn(out, (*path, "asn"), s["asn"]),
            router_id=_router_id(out, (*path, "router_id"), s.get("router_id"), (addr,)),
            interfaces=(addr,), description=s.get("description", "")))
    return spines


def _uplinks(out: Collector, path: PathT, raw: list[str],
             spines: list[Switch]) -> tuple[Uplink, ...]:
    ups = []
    for j, iface in enumerate(_interfaces(out, path, raw)):
        spine = next((s for s in spines for a in s.interfaces if iface.ip in a.network), None)
        if spine is None:
            out.add((*path, j), f"{iface} is on no spine's subnet",
                    "give an address in a subnet of spines[].address, or define that spine")
            continue
        ups.append(Uplink(iface, spine.name, spine.asn, spine.interfaces[0].ip))
    return tuple(ups)


def _switch(i: int, raw: dict[str, Any], mgmt_defaults: dict[str, Any],
            refs: _Refs, spines: list[Switch]) -> Switch | None:
    path: PathT = ("switches", i)
    ifaces = _interfaces(refs.out, (*path, "peering"), raw["peering"])
    platform = by_inventory_name(Role.SWITCH)[raw["platform"]]  # the schema allows no other
    _mgmt_host(refs.out, path, raw.get("mgmt"))
    return Switch(
        name=raw["name"], role=Role.SWITCH, platform=platform,
        asn=_asn(refs.out, (*path, "asn"), raw["asn"]),
        router_id=_router_id(refs.out, (*path, "router_id"), raw.get("router_id"), ifaces),
        interfaces=ifaces, rack=refs.rack((*path, "rack"), raw.get("rack")),
        description=raw.get("description", ""), mgmt=_mgmt(raw.get("mgmt"), mgmt_defaults),
        profile=refs.profile((*path, "profile"), raw.get("profile")),
        bgp_port=raw.get("bgp_port", 179), api_port=raw.get("api_port", 50051),
        manage=_manage(refs.out, (*path, "manage"), platform, raw.get("manage")),
        uplinks=_uplinks(refs.out, (*path, "uplinks"), raw.get("uplinks", []), spines))


def _manage(out: Collector, path: PathT, platform: Platform, raw: str | None) -> Manage:
    """bgp-part where the platform can push a part alone (the safe default), else whole."""
    it = spec(platform)
    if raw is None:
        return Manage.PART if it.part is not None else Manage.WHOLE
    if raw == Manage.PART and it.part is None:
        out.add(path, f"platform {it.inventory_name} pushes whole configs only",
                "remove manage:, or say manage: whole")
        return Manage.WHOLE
    return Manage(raw)


def _groups(raw: list[dict[str, Any]], refs: _Refs) -> dict[str, tuple[int, dict[str, Any]]]:
    groups: dict[str, tuple[int, dict[str, Any]]] = {}
    for i, g in enumerate(raw):
        path: PathT = ("node_groups", i)
        if g["name"] in groups:
            refs.out.add((*path, "name"), f"node group '{g['name']}' is defined twice",
                         "give each group its own name")
        refs.rack((*path, "rack"), g.get("rack"))
        if "profile" in g:
            refs.profile((*path, "profile"), g["profile"])
        groups[g["name"]] = (i, g)
    return groups


def _node(i: int, raw: dict[str, Any], groups: dict[str, tuple[int, dict[str, Any]]],
          mgmt_defaults: dict[str, Any], refs: _Refs) -> Node:
    path: PathT = ("nodes", i)
    out = refs.out
    group: dict[str, Any] = {}
    gpath: PathT = path
    if "group" in raw:
        if raw["group"] not in groups:
            out.add((*path, "group"), f"node group '{raw['group']}' is not defined",
                    f"define it under node_groups: (defined: {', '.join(sorted(groups)) or 'none'})")
        else:
            gi, group = groups[raw["group"]]
            gpath = ("node_groups", gi)

    def pick(key: str) -> Any:
        return raw.get(key, group.get(key))

    _mgmt_host(out, path, raw.get("mgmt"))
    speakers = by_inventory_name(Role.NODE)
    speaker = pick("speaker")
    if speaker is None:
        out.add((*path, "speaker"), "no BGP speaker",
                f"set speaker: {' or '.join(speakers)}, here or in its group")
    asn_path = (*path, "asn") if "asn" in raw or not group else (*gpath, "asn")
    ifaces = _interfaces(out, (*path, "peering"), raw["peering"])
    pods = [_net(out, (*path, "pod_cidrs", j), t) for j, t in enumerate(raw.get("pod_cidrs", []))]
    vips = [_addr(out, (*path, "vips", j), t) for j, t in enumerate(raw.get("vips", []))]
    next_hop: list[tuple[str, Address]] = []
    for fam, text in sorted(raw.get("next_hop", {}).items()):
        addr = _addr(out, (*path, "next_hop", fam), text)
        if addr is not None and (addr.version == 4) != (fam == "ipv4"):
            out.add((*path, "next_hop", fam), f"{addr} is not an {fam} address",
                    f"give an {fam} address")
        elif addr is not None:
            next_hop.append((fam, addr))
    return Node(
        name=raw["name"], role=Role.NODE,
        # without a speaker the problem above stops the run; the node is still built whole
        platform=speakers.get(speaker) or next(iter(speakers.values())),
        asn=_asn(out, asn_path, pick("asn")),
        router_id=_router_id(out, (*path, "router_id"), raw.get("router_id"), ifaces),
        interfaces=ifaces, rack=refs.rack((*path, "rack"), raw.get("rack")) or group.get("rack"),
        description=raw.get("description", group.get("description", "")),
        mgmt=_mgmt(raw.get("mgmt"), mgmt_defaults, group),
        profile=refs.profile((*path, "profile"), raw.get("profile")) if "profile" in raw
        else group.get("profile", refs.default_profile),
        bgp_port=pick("bgp_port") or 179, api_port=raw.get("api_port", 50051),
        group=raw.get("group"), pod_cidrs=tuple(p for p in pods if p),
        vips=tuple(v for v in vips if v), next_hop=tuple(next_hop))


_CLAIMED = {"name": "name", "router_id": "router-id", "peering": "peering address",
            "mgmt": "management address"}


def _unique(parts: Parts, out: Collector) -> None:
    """Names, router-ids, peering addresses and management endpoints are each unique."""
    devices: list[tuple[PathT, Device]] = [(("switches", i), d) for i, d in parts.switches]
    devices += [(("nodes", i), d) for i, d in parts.nodes]
    seen: dict[tuple[str, object], str] = {}
    for path, d in devices:
        for kind, value, at in claims(d):
            owner = f"{path[0]}[{path[1]}]" if kind == "name" else d.name
            other = seen.setdefault((kind, value), owner)
            if other != owner:
                what = _CLAIMED[kind]
                out.add((*path, *at), f"{what} {value} is also used by {other}",
                        f"give each device its own {what}")


def _check_prefixes(parts: Parts, out: Collector) -> None:
    """Pod CIDRs in the cluster, of the right length, and no forbidden overlaps (sorted sweeps)."""
    c = parts.cluster
    shared: list[Tagged[PathT]] = []
    shared += [Tagged(n, ("cluster", "pod_cidrs", i)) for i, n in enumerate(c.pod_cidrs)]
    shared += [Tagged(n, ("cluster", "service_cidrs", i)) for i, n in enumerate(c.service_cidrs)]
    shared += [Tagged(p.cidr, ("cluster", "vip_pools", i, "cidr")) for i, p in enumerate(c.vip_pools)]
    subnets: dict[Network, PathT] = {}
    for kind, devs in (("switches", parts.switches), ("nodes", parts.nodes)):
        for i, d in devs:
            for j, net in peering_subnets(d):
                subnets.setdefault(net, (kind, i, "peering", j))
    shared += [Tagged(n, p) for n, p in subnets.items()]
    for a, b in overlaps(shared):
        out.add(b.tag, f"{b.net} overlaps {a.net} ({out.where(a.tag)})",
                "pod, service, VIP and peering ranges must be disjoint")
    pods: list[Tagged[PathT]] = []
    for i, node in parts.nodes:
        pods += node_prefixes(i, node, c, out)
    for a, b in overlaps(pods):
        out.add(b.tag, f"pod CIDR {b.net} overlaps {a.net} ({out.where(a.tag)})",
                "give each node its own pod CIDR")


def node_prefixes(i: int, node: Node, c: Cluster, out: Collector) -> list[Tagged[PathT]]:
    """A node's pod CIDRs, tagged with their place (``nodes[i]``), after the checks that need
    no other node: inside a cluster pod CIDR, of the cluster's node length; its VIPs in a pool."""
    masks = dict(c.node_mask)
    cluster = [(cp.version, *span(cp)) for cp in c.pod_cidrs]
    pods: list[Tagged[PathT]] = []
    for j, net in enumerate(node.pod_cidrs):
        path: PathT = ("nodes", i, "pod_cidrs", j)
        fam = "ipv4" if net.version == 4 else "ipv6"
        first, last = span(net)
        if not any(v == net.version and lo <= first and last <= hi for v, lo, hi in cluster):
            inside = ", ".join(str(p) for p in c.pod_cidrs if p.version == net.version) or "none"
            out.add(path, f"{net} is not inside a cluster pod CIDR ({inside})",
                    "pick a prefix inside cluster.pod_cidrs")
        elif net.prefixlen != masks[fam]:
            out.add(path, f"{net} is a /{net.prefixlen}, the cluster gives nodes /{masks[fam]}",
                    f"use a /{masks[fam]} or change cluster.node_mask.{fam}")
        pods.append(Tagged(net, path))
    for j, vip in enumerate(node.vips):
        if not any(vip in p.cidr for p in c.vip_pools):
            out.add(("nodes", i, "vips", j), f"VIP {vip} is in no VIP pool",
                    "add it to a pool under cluster.vip_pools or pick an address in one")
    return pods


def claims(d: Device) -> Iterator[tuple[str, object, PathT]]:
    """What a device must not share with any other (:func:`_unique`'s rules), with its place in
    the device's entry: its name, its router-id, its peering addresses (loopbacks aside) and its
    management endpoint."""
    yield "name", d.name, ("name",)
    if d.router_id:
        yield "router_id", d.router_id, ("router_id",)
    for j, iface in enumerate(d.interfaces):
        if not iface.ip.is_loopback:
            yield "peering", iface.ip, ("peering", j)
    if d.mgmt is not None and d.mgmt.host is not None:
        yield "mgmt", f"{d.mgmt.host}:{d.mgmt.port}", ("mgmt", "host")


def peering_subnets(d: Device) -> Iterator[tuple[int, Network]]:
    """The subnets of a device's peering addresses (loopbacks aside), with each address's index,
    which must not overlap the cluster's ranges or any other subnet (:func:`_check_prefixes`)."""
    for j, iface in enumerate(d.interfaces):
        if not iface.ip.is_loopback:
            yield j, iface.network
