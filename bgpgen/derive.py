"""Model stage, part two: derive every session (both ends) and every expected route, once.

By default each node peers with every switch in its rack, over each address family of its
profile for which the two share a subnet. Explicit ``sessions:`` entries add sessions (other
racks, multihop, loopback setups) or override the derived ones (profile, passive end, addresses).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import fields
from ipaddress import ip_network
from typing import Any

from . import asn as asnlib
from .assemble import Parts
from .loader import PathT
from .model import Fabric, Node, Passive, Profile, Role, Route, Session, Switch
from .netutil import Address, family, parse_address
from .platforms import REGISTRY, spec
from .problems import Collector

_COMPARED = [f.name for f in fields(Profile) if f.name not in ("name", "description", "peer_group")]
_DEFAULTS = {"ipv4": ip_network("0.0.0.0/0"), "ipv6": ip_network("::/0")}


def derive(parts: Parts, out: Collector) -> Fabric:
    nodes = {n.name: (i, n) for i, n in parts.nodes}
    switches = {s.name: (i, s) for i, s in parts.switches}
    by_rack: dict[str, list[Switch]] = {}
    for _, sw in parts.switches:
        if sw.rack is not None:
            by_rack.setdefault(sw.rack, []).append(sw)
    explicit: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    for i, raw in parts.sessions:
        ok = True
        for end, table in (("node", nodes), ("switch", switches)):
            if raw[end] not in table:
                out.add(("sessions", i, end), f"{end} '{raw[end]}' is not in the inventory",
                        f"name one of the {end}s defined under {end}s:")
                ok = False
        if ok:
            explicit.setdefault((raw["node"], raw["switch"]), []).append((i, raw))
    explicit_by_node: dict[str, list[str]] = {}
    for n_name, s_name in explicit:
        explicit_by_node.setdefault(n_name, []).append(s_name)
    sessions: dict[str, Session] = {}
    for i, node in parts.nodes:
        sessions.update((s.id, s) for s in node_sessions(parts, out, i, node, by_rack, switches,
                                                         explicit, explicit_by_node))
    ordered = tuple(sorted(sessions.values(), key=lambda s: s.id))
    return Fabric(
        name=parts.name, description=parts.description, cluster=parts.cluster,
        management=parts.management, ssh_config=parts.ssh_config,
        profiles=tuple(sorted(parts.profiles.values(), key=lambda p: p.name)),
        secrets=tuple(sorted(parts.secrets.values(), key=lambda s: s.name)),
        racks=parts.racks,
        switches=tuple(sorted((s for _, s in parts.switches), key=lambda d: d.name)),
        spines=tuple(parts.spines),
        nodes=tuple(sorted((n for _, n in parts.nodes), key=lambda d: d.name)),
        sessions=ordered, routes=routes(ordered, {n: v[1] for n, v in nodes.items()},
                                          {n: v[1] for n, v in switches.items()}))


def node_sessions(parts: Parts, out: Collector, i: int, node: Node,
                  by_rack: dict[str, list[Switch]], switches: dict[str, tuple[int, Switch]],
                  explicit: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]],
                  explicit_by_node: dict[str, list[str]]) -> list[Session]:
    """The sessions of one node (``nodes[i]``): with every switch of its rack (``by_rack``, the
    switches in inventory order) and every switch an explicit entry pairs it with."""
    peers = list(by_rack.get(node.rack or "", []))
    peers += [switches[s][1] for s in explicit_by_node.get(node.name, [])
              if switches[s][1] not in peers]
    mine: list[Session] = []
    for sw in peers:
        mine += _pair(parts, out, (i, node), (switches[sw.name][0], sw),
                      explicit.get((node.name, sw.name), []))
    _families_covered(out, i, node, mine)
    return mine


def _profile(parts: Parts, out: Collector, node: tuple[int, Node], sw: tuple[int, Switch],
             name: str | None, path: PathT | None) -> Profile | None:
    if name is not None:
        if name not in parts.profiles:
            assert path is not None
            out.add((*path, "profile"), f"profile '{name}' is not defined",
                    f"use one of: {', '.join(sorted(parts.profiles))}")
            return None
        return parts.profiles[name]
    a, b = parts.profiles.get(node[1].profile), parts.profiles.get(sw[1].profile)
    if a is None or b is None:
        return None  # already reported by the builder
    if a is b:
        return b
    diff = [f for f in _COMPARED if getattr(a, f) != getattr(b, f)]
    if diff:
        what = ", ".join(f"{f} ({_show(getattr(a, f))} vs {_show(getattr(b, f))})" for f in diff)
        out.add(("nodes", node[0], "profile"),
                f"{node[1].name} (profile {a.name}) and {sw[1].name} (profile {b.name}) "
                f"disagree on {what}",
                "use one profile on both ends, or name one in an explicit sessions: entry")
        return None
    return b


def _show(value: object) -> str:
    return getattr(value, "name", None) or str(value)


def _pair(parts: Parts, out: Collector, node: tuple[int, Node], sw: tuple[int, Switch],
          overrides: list[tuple[int, dict[str, Any]]]) -> list[Session]:
    """The sessions between one node and one switch."""
    n, s = node[1], sw[1]
    base_over = addressed = None
    if overrides:  # explicit sessions: rare (a node of a rack pairs with its switches alone)
        base_over = next((o for o in overrides if "node_address" not in o[1]), None)
        addressed = [o for o in overrides if "node_address" in o[1] or "switch_address" in o[1]]
    opath: PathT | None = ("sessions", base_over[0]) if base_over else None
    profile = _profile(parts, out, node, sw, base_over[1].get("profile") if base_over else None,
                       opath)
    found: dict[str, tuple[Address, Address, dict[str, Any] | None, PathT | None]] = {}
    if profile is not None and n.rack is not None and n.rack == s.rack:
        for fam in profile.families:
            pair = _shared(n, s, fam)
            if pair:
                found[fam] = (*pair, base_over[1] if base_over else None, opath)
    for i, raw in addressed or ():
        path: PathT = ("sessions", i)
        if "node_address" not in raw or "switch_address" not in raw:
            out.add(path, "give both node_address and switch_address, or neither",
                    "both ends of the session need an address")
            continue
        na = _own_address(out, (*path, "node_address"), n, raw["node_address"])
        sa = _own_address(out, (*path, "switch_address"), s, raw["switch_address"])
        if na is None or sa is None:
            continue
        if na.version != sa.version:
            out.add((*path, "switch_address"), f"{sa} and {na} are of different families",
                    "both ends of a session use the same address family")
            continue
        found[family(na)] = (na, sa, raw, path)
    if not found and (n.rack != s.rack or n.rack is None) and overrides:
        out.add(("sessions", overrides[0][0]),
                f"{n.name} and {s.name} are not in the same rack, so no session is derived",
                "give node_address and switch_address")
    elif not found and n.rack == s.rack and n.rack is not None and profile is not None:
        subnets = ", ".join(str(i.network) for i in s.interfaces) or "none"
        out.add(("nodes", node[0], "peering"),
                f"{n.name} has no peering address in a subnet of {s.name} ({subnets})",
                f"add an address in {s.name}'s subnet, or an explicit session with multihop")
    result = []
    for fam, (na, sa, given, where) in sorted(found.items()):
        session = _session(parts, out, node, sw, fam, na, sa, given, where, profile)
        if session is not None:
            result.append(session)
    return result


def _shared(n: Node, s: Switch, fam: str) -> tuple[Address, Address] | None:
    for si in s.interfaces:
        if family(si) != fam:
            continue
        for ni in n.interfaces:
            if ni.version == si.version and ni.ip in si.network:
                return ni.ip, si.ip
    return None


def _own_address(out: Collector, path: PathT, dev: Node | Switch, text: str) -> Address | None:
    try:
        addr = parse_address(text)
    except ValueError as exc:
        out.add(path, str(exc), "write an IP address")
        return None
    if not any(i.ip == addr for i in dev.interfaces):
        mine = ", ".join(str(i.ip) for i in dev.interfaces)
        out.add(path, f"{addr} is not one of {dev.name}'s peering addresses ({mine})",
                f"add it to {dev.name}'s peering: list or use one of those")
        return None
    return addr


def _session(parts: Parts, out: Collector, node: tuple[int, Node], sw: tuple[int, Switch],
             fam: str, na: Address, sa: Address, raw: dict[str, Any] | None,
             path: PathT | None, base: Profile | None) -> Session | None:
    n, s = node[1], sw[1]
    profile = base
    if raw is not None and "profile" in raw and path is not None:
        profile = _profile(parts, out, node, sw, raw["profile"], path)
    if profile is None:
        return None
    where: PathT = path or ("nodes", node[0])
    given = raw or {}
    for end, dev in (("node_asn", n), ("switch_asn", s)) if given else ():
        if end in given:
            try:
                pinned = asnlib.parse_asn(given[end])
            except ValueError as exc:
                out.add((*where, end), str(exc), "an AS number such as 65001 or asdot 1.10")
                continue
            if pinned != dev.asn:
                out.add((*where, end), f"the session expects AS {pinned} but {dev.name} has AS {dev.asn}",
                        f"make {dev.name}'s asn and the session's {end} agree")
    if fam not in profile.families:
        out.add(where, f"profile {profile.name} does not carry {fam}",
                f"add {fam} to profiles.{profile.name}.families")
    on_link = na == sa or any(sa in i.network for i in n.interfaces if i.ip == na)
    if not on_link and profile.multihop is None and n.asn != s.asn:
        out.add(where, f"{n.name} {na} and {s.name} {sa} share no subnet and the session is single-hop",
                f"set multihop in profiles.{profile.name}, or use addresses on a shared subnet")
    if na == sa and n.bgp_port == s.bgp_port:
        out.add(where, f"both ends are {na} port {n.bgp_port}: the session would reach itself",
                "give the node and the switch different bgp_port values")
    for dev in (n, s) if profile.bfd else ():
        if not spec(dev.platform).bfd:
            key = "speaker" if dev.role is Role.NODE else "platform"
            able = " or ".join(ps.inventory_name for ps in REGISTRY.values()
                               if ps.bfd and ps.role is dev.role)
            out.add(where, f"{dev.name} runs {dev.platform} ({spec(dev.platform).description}), "
                    f"which has no BFD, and profile {profile.name} asks for it",
                    f"use {key}: {able}, or a profile with bfd: false")
    if profile.default_originate and not spec(s.platform).default_originate:
        out.add(where, f"default_originate is not supported on {s.platform} switches, {s.name} "
                f"is {s.platform}", f"set default_originate: false in profiles.{profile.name}")
    passive = spec(s.platform).default_passive
    return Session(
        id=f"{s.name}:{n.name}:{fam}", node=n.name, switch=s.name, family=fam,
        node_address=na, switch_address=sa, node_asn=n.asn, switch_asn=s.asn,
        node_port=n.bgp_port, switch_port=s.bgp_port, profile=profile,
        passive=Passive(given["passive"]) if "passive" in given else passive,
        description=given.get("description", ""))


def _families_covered(out: Collector, i: int, node: Node, sessions: list[Session]) -> None:
    have = {s.family for s in sessions}
    for fam in ("ipv4", "ipv6"):
        if node.prefixes(fam) and fam not in have:
            out.add(("nodes", i, "pod_cidrs"),
                    f"{node.name} has {fam} prefixes but no {fam} session to announce them on",
                    f"give it an {fam} peering address on its switches' subnets, "
                    "or drop those prefixes")


def routes(sessions: tuple[Session, ...], nodes: dict[str, Node],
           switches: dict[str, Switch]) -> tuple[Route, ...]:
    """Every route the sessions' ends are expected to hold, sorted by who sees it."""
    clients = _clients(sessions, switches)
    found = [r for s in sessions for r in _emitted(s, nodes[s.node], clients)]
    found.sort(key=route_key)
    return tuple(found)


def reroute(before: tuple[Route, ...], sessions: tuple[Session, ...], nodes: dict[str, Node],
            switches: dict[str, Switch], affected: set[str]) -> tuple[Route, ...]:
    """:func:`routes` of ``sessions`` from ``before`` (the routes of an earlier set of sessions)
    where only the sessions of the ``affected`` nodes may differ, and every node that shares a
    route server with one of them (address family included) is in ``affected`` too: a route is
    the same as before unless its originating session (the default route's: the one it is
    sent on) belongs to an affected node."""
    kept = [r for r in before if (r.seen_by if r.kind == "default" else r.origin) not in affected]
    mine = [s for s in sessions if s.node in affected]
    servers = {(s.switch, s.family) for s in mine if spec(switches[s.switch].platform).route_server}
    clients = _clients((s for s in sessions if (s.switch, s.family) in servers), switches)
    found = sorted((r for s in mine for r in _emitted(s, nodes[s.node], clients)), key=route_key)
    if len(found) > 64:
        kept += found
        kept.sort(key=route_key)
    else:
        for r in found:
            bisect.insort(kept, r, key=route_key)
    return tuple(kept)


def route_key(r: Route) -> tuple[str, int, int, int, str, str]:
    """The order of routes: by who sees them, then prefix, originator and session."""
    return (r.seen_by, r.prefix.version, int(r.prefix.network_address), r.prefix.prefixlen,
            r.origin, r.session)


def _clients(sessions: Iterable[Session],
             switches: dict[str, Switch]) -> dict[tuple[str, str], list[Session]]:
    """The sessions of each route server, by address family."""
    clients: dict[tuple[str, str], list[Session]] = {}
    for s in sessions:
        if spec(switches[s.switch].platform).route_server:
            clients.setdefault((s.switch, s.family), []).append(s)
    return clients


def _emitted(s: Session, node: Node,
             clients: dict[tuple[str, str], list[Session]]) -> Iterator[Route]:
    """The routes one session gives: the node's prefixes to its switch (and, through a route
    server, to its other clients of another AS), and a default route to the node."""
    nh = node.next_hop_for(s.family) or s.node_address
    for prefix in node.prefixes(s.family):
        kind = "vip" if node.is_vip(prefix) else "pod"
        yield Route(prefix=prefix, origin=node.name, next_hop=nh, seen_by=s.switch,
                    session=s.id, kind=kind)
        for other in clients.get((s.switch, s.family), []):
            if other.node != s.node and other.node_asn != s.node_asn:
                yield Route(prefix=prefix, origin=node.name, next_hop=nh, seen_by=other.node,
                            session=other.id, kind=kind)
    if s.profile.default_originate:
        yield Route(prefix=_DEFAULTS[s.family], origin=s.switch, next_hop=s.switch_address,
                    seen_by=s.node, session=s.id, kind="default")
