"""What runs on each lab device, per platform: processes, their readiness, their config files.

Platform quirks are data here as in :mod:`bgpgen.platforms`; the supervisor only executes it.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import Problem
from ..model import Device, Platform
from .plan import LabDevice, LabError

FRR_BIN = "/usr/lib/frr"
CLI_PORT = 8022  #: the switch CLI (vtysh) over SSH, the way Netmiko drives a switch

#: binary -> Debian package, checked before a lab starts
BINARIES = {"ip": "iproute2", "gobgpd": "gobgpd", "gobgp": "gobgpd", "bird": "bird2",
            "birdc": "bird2", "vtysh": "frr", f"{FRR_BIN}/zebra": "frr",
            f"{FRR_BIN}/bgpd": "frr", "/usr/sbin/sshd": "openssh-server",
            "ssh-keygen": "openssh-client", "ssh": "openssh-client"}


@dataclass(frozen=True, slots=True)
class Proc:
    device: str
    name: str
    netns: str
    argv: list[str]
    log: str
    ready: dict[str, Any]          #: {"listen": port} or {"path": file}
    hostname: str = ""
    after: str = ""                #: start once this process of the same device is ready


@dataclass(frozen=True, slots=True)
class Post:
    """A command run in a device's namespace once every process is ready."""

    device: str
    netns: str
    argv: list[str]


@dataclass(slots=True)
class DevicePaths:
    root: str

    @property
    def etc(self) -> str:
        return f"{self.root}/etc"

    @property
    def run(self) -> str:
        return f"{self.root}/run"

    def config(self, platform: Platform) -> str:
        return {Platform.GOBGP: f"{self.etc}/gobgpd.toml", Platform.GOBGP_RS: f"{self.etc}/gobgpd.toml",
                Platform.BIRD: f"{self.etc}/bird.conf", Platform.FRR: f"{self.etc}/frr.conf"}[platform]


def check_binaries() -> None:
    missing = [(b, pkg) for b, pkg in BINARIES.items() if shutil.which(b) is None]
    if missing:
        b, pkg = missing[0]
        raise LabError(Problem("", "lab", f"{b} is not installed",
                               f"apt-get install {pkg} (or run scripts/setup)"))


def bootstrap(device: Device) -> str:
    """A config with no sessions: what a freshly installed device runs."""
    if device.platform in (Platform.GOBGP, Platform.GOBGP_RS):
        return (f'[global.config]\n  as = {device.asn}\n  router-id = "{device.router_id}"\n'
                f"  port = {device.bgp_port}\n")
    if device.platform is Platform.BIRD:
        return f"log stderr all;\nrouter id {device.router_id};\nprotocol device {{\n}}\n"
    return (f"frr defaults traditional\nhostname {device.name}\nservice integrated-vtysh-config\n"
            "ip forwarding\nipv6 forwarding\n!\n")


def processes(dev: LabDevice, device: Device, paths: DevicePaths, lab_root: str) -> list[Proc]:
    """The daemons of one device and its sshd."""
    p = paths
    log = f"{p.root}/log"
    procs: list[Proc] = []
    cfg = p.config(dev.platform)
    if dev.platform in (Platform.GOBGP, Platform.GOBGP_RS):
        procs.append(Proc(dev.name, "gobgpd", dev.netns,
                          ["gobgpd", "-f", cfg, "-t", "toml", "--pprof-disable",
                           f"--api-hosts=127.0.0.1:{dev.api_port}"],
                          f"{log}/gobgpd.log", {"listen": dev.api_port}, dev.name))
    elif dev.platform is Platform.BIRD:
        procs.append(Proc(dev.name, "bird", dev.netns,
                          ["bird", "-f", "-c", cfg, "-s", f"{p.run}/bird.ctl", "-P",
                           f"{p.run}/bird.pid"], f"{log}/bird.log",
                          {"path": f"{p.run}/bird.ctl"}, dev.name))
    else:
        common = ["-A", "127.0.0.1", "-P", "0", "-z", f"{p.run}/zserv.api", "--vty_socket",
                  p.run, "-u", "frr", "-g", "frr", "--log", "stdout"]
        procs.append(Proc(dev.name, "zebra", dev.netns,
                          [f"{FRR_BIN}/zebra", "-i", f"{p.run}/zebra.pid", *common],
                          f"{log}/zebra.log", {"path": f"{p.run}/zserv.api"}, dev.name))
        procs.append(Proc(dev.name, "bgpd", dev.netns,
                          [f"{FRR_BIN}/bgpd", "-i", f"{p.run}/bgpd.pid", "-p",
                           str(device.bgp_port), *common],
                          f"{log}/bgpd.log", {"path": f"{p.run}/bgpd.vty"}, dev.name,
                          # bgpd retries a missing zebra only after seconds, and until it
                          # has zebra, peers stay Idle (no next-hop tracking).
                          after="zebra"))
    procs.append(Proc(dev.name, "sshd", dev.netns,
                      ["/usr/sbin/sshd", "-D", "-f", f"{p.etc}/sshd_config", "-E",
                       f"{log}/sshd.log"], f"{log}/sshd.stderr", {"listen": dev.ssh_port},
                      dev.name))
    return procs


def sshd_config(dev: LabDevice, paths: DevicePaths, lab_root: str) -> str:
    lines = [f"ListenAddress {dev.mgmt_ip}:{dev.ssh_port}",
             f"HostKey {lab_root}/ssh/host_ed25519", f"PidFile {paths.run}/sshd.pid",
             f"AuthorizedKeysFile {lab_root}/ssh/authorized_keys", "UsePAM no",
             "StrictModes no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
             "PermitRootLogin prohibit-password", "PrintMotd no", "AcceptEnv LANG",
             "Subsystem sftp internal-sftp"]
    if dev.platform is Platform.FRR:
        lines.insert(1, f"ListenAddress {dev.mgmt_ip}:{CLI_PORT}")
        lines += [f"Match LocalPort {CLI_PORT}", f"  ForceCommand {paths.etc}/cli.sh"]
    return "\n".join(lines) + "\n"


def cli_script(paths: DevicePaths) -> str:
    """The switch CLI over SSH: vtysh, interactive (Netmiko) or one command (ssh host CMD)."""
    vtysh = f"vtysh --vty_socket {paths.run} --config_dir {paths.etc}"
    return ("#!/bin/sh\n"
            f'[ -n "$SSH_ORIGINAL_COMMAND" ] && exec {vtysh} -c "$SSH_ORIGINAL_COMMAND"\n'
            f"exec {vtysh}\n")


def as_json(items: list[Proc] | list[Post]) -> list[dict[str, Any]]:
    return [asdict(x) for x in items]


@dataclass(slots=True)
class Spec:
    """What the supervisor runs."""

    procs: list[Proc] = field(default_factory=list)
    post: list[Post] = field(default_factory=list)
