"""Platform quirks as data: one :class:`PlatformSpec` per :class:`Platform`, in one registry.

A spec says which files a device of that platform gets, where they live on the target, how the
daemon's own checker is called, and which Netmiko device type reaches it. Templates get a
context built here from the model, and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .model import Device, Fabric, Node, Platform
from .netutil import Network


@dataclass(frozen=True, slots=True)
class FileSpec:
    """One file a device gets: the template that makes it (None: built in Python)."""

    name: str
    template: str | None
    target: str  #: where the file lives on the device


@dataclass(frozen=True, slots=True)
class PlatformSpec:
    platform: Platform
    files: tuple[FileSpec, ...]
    #: The daemon's own syntax checker; ``{file}`` and ``{dir}`` are filled in. Empty: none.
    check: tuple[str, ...]
    check_binary: str
    debian_package: str
    netmiko_device_type: str
    context: Callable[[Fabric, Device], dict[str, Any]]


def _own(node: Node) -> list[tuple[str, tuple[Network, ...]]]:
    return [(fam, node.prefixes(fam)) for fam in ("ipv4", "ipv6") if node.prefixes(fam)]


def _node_context(fabric: Fabric, device: Device) -> dict[str, Any]:
    assert isinstance(device, Node)
    own = _own(device)
    return {"sessions": fabric.sessions_of(device.name), "own": own,
            "own_families": {fam for fam, _ in own},
            "next_hop": {fam: str(addr) for fam, addr in device.next_hop}}


def _rs_context(fabric: Fabric, device: Device) -> dict[str, Any]:
    sessions = fabric.sessions_of(device.name)
    client_sets = []
    for s in sessions:
        node = fabric.device(s.node)
        assert isinstance(node, Node)
        if node.prefixes(s.family):
            client_sets.append((s.node, s.family, node.prefixes(s.family)))
    listen = sorted({str(s.switch_address) for s in sessions})
    return {"sessions": sessions, "client_sets": client_sets, "listen": listen,
            "client_keys": {(n, f) for n, f, _ in client_sets}}


@dataclass(frozen=True, slots=True)
class _FrrPeer:
    """A node as an FRR switch sees it: its prefixes, and its prefix-list and route-map names
    per family (a family without prefixes has a route-map but no prefix-list)."""

    name: str
    own: tuple[tuple[str, tuple[Network, ...]], ...]
    families: tuple[str, ...]
    prefix_list: dict[str, str]
    route_map: dict[str, str]


def _frr_peer(node: Node, families: tuple[str, ...]) -> _FrrPeer:
    own = tuple(_own(node))
    tag = {"ipv4": "V4", "ipv6": "V6"}
    return _FrrPeer(node.name, own, families,
                    {fam: f"BGPGEN-{node.name}-{tag[fam]}" for fam, _ in own},
                    {fam: f"BGPGEN-{node.name}-IN-{tag[fam]}" for fam in families})


@dataclass(frozen=True, slots=True)
class _FrrGroup:
    name: str
    family: str
    profile: Any


def _frr_context(fabric: Fabric, device: Device) -> dict[str, Any]:
    sessions = fabric.sessions_of(device.name)
    peers: dict[str, _FrrPeer] = {}
    groups: dict[str, _FrrGroup] = {}
    group_of: dict[str, str] = {}
    route_map_of: dict[str, str] = {}
    fams: dict[str, set[str]] = {}
    for s in sessions:
        fams.setdefault(s.node, set()).add(s.family)
    for s in sessions:
        node = fabric.device(s.node)
        assert isinstance(node, Node)
        if s.node not in peers:
            peers[s.node] = _frr_peer(node, tuple(sorted(fams[s.node])))
        peer = peers[s.node]
        gname = f"{s.profile.peer_group}-{'V4' if s.family == 'ipv4' else 'V6'}"
        groups.setdefault(gname, _FrrGroup(gname, s.family, s.profile))
        group_of[s.id] = gname
        route_map_of[s.id] = peer.route_map[s.family]
    gr = max((s.profile.restart_time for s in sessions if s.profile.graceful_restart), default=0)
    return {"sessions": sessions, "peers": list(peers.values()),
            "groups": sorted(groups.values(), key=lambda g: g.name),
            "group_of": group_of, "route_map_of": route_map_of, "graceful_restart": gr,
            "families": sorted({f"{s.family}" for s in sessions})}


REGISTRY: dict[Platform, PlatformSpec] = {
    Platform.GOBGP: PlatformSpec(
        Platform.GOBGP,
        (FileSpec("gobgpd.toml", "gobgp/gobgpd.toml.j2", "/etc/gobgp/gobgpd.toml"),
         FileSpec("originate.json", None, "/etc/gobgp/originate.json")),
        ("gobgpd", "-d", "-t", "toml", "-f", "{file}"), "gobgpd", "gobgpd", "linux",
        _node_context),
    Platform.GOBGP_RS: PlatformSpec(
        Platform.GOBGP_RS,
        (FileSpec("gobgpd.toml", "gobgp_rs/gobgpd.toml.j2", "/etc/gobgp/gobgpd.toml"),),
        ("gobgpd", "-d", "-t", "toml", "-f", "{file}"), "gobgpd", "gobgpd", "linux",
        _rs_context),
    Platform.BIRD: PlatformSpec(
        Platform.BIRD,
        (FileSpec("bird.conf", "bird/bird.conf.j2", "/etc/bird/bird.conf"),),
        ("bird", "-p", "-c", "{file}"), "bird", "bird2", "linux", _node_context),
    Platform.FRR: PlatformSpec(
        Platform.FRR,
        (FileSpec("frr.conf", "frr/frr.conf.j2", "/etc/frr/frr.conf"),),
        ("vtysh", "--config_dir", "{dir}", "-C", "-f", "{file}"), "vtysh", "frr", "cisco_ios",
        _frr_context),
}


def spec(platform: Platform) -> PlatformSpec:
    """The spec of a platform; every :class:`Platform` member has one (a test checks)."""
    return REGISTRY[platform]

