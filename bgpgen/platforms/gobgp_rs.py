"""gobgp-rs: a gobgpd route server standing in for a ToR switch (inventory: a switch with
``platform: gobgp``). Passive toward its clients; each client's routes are reflected to the
others, so verify reads them from each client's adj-in."""

from __future__ import annotations

from typing import Any

from ..model import Device, Fabric, Node, Passive, Platform, Role
from . import gobgpd
from .base import FileSpec


def context(fabric: Fabric, device: Device) -> dict[str, Any]:
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


SPEC = gobgpd.spec_for(
    platform=Platform.GOBGP_RS,
    role=Role.SWITCH,
    description="a gobgpd route server standing in for a switch",
    files=(FileSpec(gobgpd.CONFIG, "gobgp_rs/gobgpd.toml.j2", gobgpd.PATHS.config),
           gobgpd.DROP_IN_FILE),
    context=context,
    route_server=True,
    default_passive=Passive.SWITCH,
)
