"""Where each device is and how to reach it: one code path for a real fleet and a lab.

A device is reached as ``ssh DEVICE`` would reach it (:mod:`bgpgen.reach`: the OpenSSH client
config, then the inventory's ``mgmt``); its files are where its platform keeps them. A lab is
only another ssh config (``--lab NAME`` reads the one ``bgpgen lab up`` wrote).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from paramiko import SSHConfig

from . import selection
from .errors import BgpgenError, Problem
from .model import Device, Fabric, Platform
from .platforms import spec
from .reach import Hop, default_config, load_config, reach


class TargetError(BgpgenError):
    """A device cannot be reached as described."""


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    platform: Platform
    ssh: Hop                    #: the device's SSH endpoint
    jumps: tuple[Hop, ...]      #: bastions on the way, in order
    become: bool                #: privileged steps through ``sudo -n``
    config: str                 #: the daemon's config file on the device
    run: str                    #: runtime dir: BIRD control socket, FRR vty sockets
    confdir: str                #: FRR config dir (frr-reload --confdir)
    api_port: int               #: gobgpd gRPC port

    @property
    def host(self) -> str:
        return self.ssh.host

    @property
    def port(self) -> int:
        return self.ssh.port

    @property
    def user(self) -> str:
        return self.ssh.user


def target(device: Device, fabric: Fabric, config: SSHConfig) -> Target:
    """One device's target, reached through ``config`` (a parsed ssh config)."""
    mgmt = device.mgmt or fabric.management
    way = reach(config, device.name, mgmt)
    become = mgmt.become if mgmt.become is not None else way.ssh.user != "root"
    where = spec(device.platform).paths
    return Target(device.name, device.platform, way.ssh, way.jumps, become, where.config,
                  where.run, where.confdir, device.api_port)


def ssh_config_of(fabric: Fabric, given: Path | None) -> Path | None:
    """The ssh config in force: --ssh-config, the inventory's, or ~/.ssh/config."""
    if given is not None:
        if not Path(given).is_file():
            raise TargetError(Problem(str(given), "--ssh-config", "no such file",
                                      "give an OpenSSH client config file"))
        return Path(given)
    if fabric.ssh_config is not None:
        if not Path(fabric.ssh_config).is_file():
            raise TargetError(Problem(fabric.ssh_config, "fabric.management.ssh_config",
                                      "no such file", "fix the path (relative to the "
                                      "inventory) or remove the setting"))
        return Path(fabric.ssh_config)
    return default_config()


def from_inventory(fabric: Fabric, config_file: Path | None = None,
                   only: set[str] | None = None) -> dict[str, Target]:
    """Targets of every device bgpgen configures (or ``only`` these), reached through the ssh
    config in force. A node whose speaker is external has none: bgpgen never connects to it."""
    cfg = load_config(ssh_config_of(fabric, config_file))
    return {d.name: target(d, fabric, cfg) for d in fabric.devices
            if (only is None or d.name in only) and spec(d.platform).configured}


def limited(fabric: Fabric, limit: list[str]) -> list[Device]:
    """Devices matching ``--limit`` (:mod:`bgpgen.selection`: Ansible's syntax), in model
    order, or a one-line error."""
    try:
        return selection.select(fabric, limit)
    except selection.PatternError as exc:
        raise TargetError(Problem("", "--limit", str(exc), "names and globs, rack:NAME, "
                                  "role:node|switch, group:NAME; ',' joins, '&' intersects, "
                                  "'!' excludes (e.g. rack:r1,&role:node,!node-r1-03)")
                          ) from None


def select(fabric: Fabric, targets: dict[str, Target], limit: list[str] | None) -> list[Device]:
    """The devices to work on: those ``--limit`` selects, else every device with a target."""
    if not limit:
        return [d for d in fabric.devices if d.name in targets]
    chosen = [d for d in limited(fabric, limit) if spec(d.platform).configured]
    if not chosen:
        raise TargetError(Problem("", "--limit", "selects only nodes whose speaker is external: "
                                  "bgpgen does not configure or read them",
                                  "select their switches (e.g. role:switch,rack:NAME)"))
    missing = [d.name for d in chosen if d.name not in targets]
    if missing:
        raise TargetError(Problem("", "--limit", f"{missing[0]} is not in this lab",
                                  "start the lab from this inventory"))
    return chosen
