"""What runs on each lab device: its platform's daemons (from the platform module) and an sshd,
as processes for the supervisor.

Platform quirks live in each platform's :class:`~bgpgen.platforms.base.LabSetup`; this module
adds what every lab device shares (the sshd) and the supervisor executes the result. Paths in
a process's arguments are the device's own (its mount namespace shows /etc, /run, ... as a
real host has them); its log is a file on the host that the supervisor opens for it.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import Problem
from ..model import Device
from ..platforms import REGISTRY, lab_of
from .layout import LabDevice, LabError

#: binaries every lab needs -> Debian package (platform binaries come from the platforms)
BINARIES = {"ip": "iproute2", "/usr/sbin/sshd": "openssh-server", "unshare": "util-linux",
            "ssh-keygen": "openssh-client", "ssh": "openssh-client", "sudo": "sudo"}


@dataclass(frozen=True, slots=True)
class Proc:
    device: str
    name: str
    netns: str
    mnt: str                       #: the device's mount namespace file
    uts: str                       #: the device's UTS namespace file
    argv: list[str]
    log: str                       #: on the host
    ready: dict[str, Any]          #: {"listen": port} or {"path": file inside the device}
    after: str = ""                #: start once this process of the same device is ready


@dataclass(frozen=True, slots=True)
class Post:
    """A command run on a device once every process is ready."""

    device: str
    netns: str
    mnt: str
    uts: str
    argv: list[str]


def check_binaries() -> None:
    needed = dict(BINARIES)
    for ps in REGISTRY.values():
        needed.update(ps.lab.binaries if ps.lab else {})
    missing = [(b, pkg) for b, pkg in needed.items() if shutil.which(b) is None]
    if missing:
        b, pkg = missing[0]
        raise LabError(Problem("", "lab", f"{b} is not installed",
                               f"apt-get install {pkg} (or run scripts/setup)"))


def processes(dev: LabDevice, device: Device, mnt: str, uts: str, log: str) -> list[Proc]:
    """The daemons of one device and its sshd."""
    procs = [Proc(dev.name, d.name, dev.netns, mnt, uts, list(d.argv), f"{log}/{d.name}.log",
                  d.ready, d.after)
             for d in lab_of(device.platform).daemons(device)]
    procs.append(Proc(dev.name, "sshd", dev.netns, mnt, uts,
                      ["/usr/sbin/sshd", "-D", "-e", "-f", "/etc/ssh/sshd_config"],
                      f"{log}/sshd.log", {"listen": dev.ssh_port}))
    return procs


def sshd_config(dev: LabDevice | None, device: Device | None, listen: str = "",
                only_from: str | None = None) -> str:
    """A lab host's /etc/ssh/sshd_config: keys only, one authorized_keys file per user;
    ``only_from``: the one address logins may come from (the bastion's)."""
    lines = [f"ListenAddress {dev.mgmt_ip}:{dev.ssh_port}" if dev else f"ListenAddress {listen}",
             "HostKey /etc/ssh/ssh_host_ed25519_key", "PidFile /run/sshd.pid",
             "AuthorizedKeysFile /etc/ssh/authorized_keys/%u", "UsePAM no",
             "PasswordAuthentication no", "KbdInteractiveAuthentication no",
             "PermitRootLogin prohibit-password", "PrintMotd no", "AcceptEnv LANG",
             "Subsystem sftp internal-sftp"]
    if only_from is not None:
        lines.append(f"AllowUsers *@{only_from}")
    cli_port = lab_of(device.platform).cli_port if device is not None else None
    if dev is not None and cli_port is not None:  # the device's own CLI, as a switch offers it
        lines.insert(1, f"ListenAddress {dev.mgmt_ip}:{cli_port}")
        lines += [f"Match LocalPort {cli_port}", "  ForceCommand /usr/local/sbin/bgpgen-device-cli"]
    return "\n".join(lines) + "\n"


def as_json(items: list[Proc] | list[Post]) -> list[dict[str, Any]]:
    return [asdict(x) for x in items]
