"""Where each device is and how to reach it: from the inventory (a real fleet) or from a lab's
connection overlay (``--lab NAME``), so deploy and verify treat both the same way."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BgpgenError, Problem
from .model import Device, Fabric, Platform
from .platforms import spec


class TargetError(BgpgenError):
    """A device cannot be reached as described."""


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    platform: Platform
    host: str
    port: int
    user: str
    key: str | None             #: private key file; None: the SSH agent / default keys
    known_hosts: str            #: host keys are always verified against this file
    config: str                 #: the daemon's config file on the device
    run: str                    #: runtime dir: BIRD control socket, FRR vty sockets
    confdir: str                #: FRR config dir (frr-reload --confdir)
    api_port: int               #: gobgpd gRPC port
    lab: bool = False


def from_inventory(fabric: Fabric) -> dict[str, Target]:
    """Targets of a real fleet: management addresses from the inventory, the user's keys."""
    known = os.path.expanduser("~/.ssh/known_hosts")
    out: dict[str, Target] = {}
    for d in fabric.devices:
        if d.mgmt is None:
            continue
        paths = spec(d.platform).paths
        out[d.name] = Target(d.name, d.platform, d.mgmt.host, d.mgmt.port, d.mgmt.user, None,
                             known, paths.config, paths.run, paths.confdir, d.api_port)
    return out


def from_overlay(fabric: Fabric, overlay: dict[str, Any]) -> dict[str, Target]:
    """Targets of a lab: everything from its overlay."""
    out: dict[str, Target] = {}
    for d in fabric.devices:
        e = overlay["devices"].get(d.name)
        if e is None:
            continue
        out[d.name] = Target(d.name, d.platform, e["host"], e["port"], e["user"], e["key"],
                             e["known_hosts"], e["config"], e["run"],
                             str(Path(e["config"]).parent), e["api_port"], lab=True)
    return out


def select(fabric: Fabric, targets: dict[str, Target], limit: list[str] | None) -> list[Device]:
    """Devices matching ``--limit`` (names, globs, ``group:NAME``, ``rack:NAME``,
    ``role:node|switch``), in model order."""
    from fnmatch import fnmatchcase
    if not limit:
        return [d for d in fabric.devices if d.name in targets]
    chosen: list[Device] = []
    for d in fabric.devices:
        for pat in limit:
            kind, _, value = pat.partition(":") if ":" in pat else ("", "", pat)
            hit = (kind == "group" and getattr(d, "group", None) == value) or \
                  (kind == "rack" and d.rack == value) or \
                  (kind == "role" and d.role.value == value) or \
                  (kind == "" and fnmatchcase(d.name, value))
            if hit and d not in chosen:
                chosen.append(d)
    if not chosen:
        raise TargetError(Problem("", "--limit", f"{', '.join(limit)} matches no device",
                                  "use device names, globs, group:NAME, rack:NAME or role:node"))
    missing = [d.name for d in chosen if d.name not in targets]
    if missing:
        raise TargetError(Problem("", "--limit", f"no management address for {missing[0]}",
                                  "add mgmt: to the device in the inventory"))
    return chosen
