"""What runs on each lab device: its platform's daemons (from the platform module) and an sshd,
as processes for the supervisor, with their directories and config files.

Platform quirks live in each platform's :class:`~bgpgen.platforms.base.LabSetup`; this module
only adds what every lab device shares (the sshd, the directories) and the supervisor executes
the result.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import Problem
from ..model import Device
from ..platforms import REGISTRY, spec
from ..platforms.base import LabDirs
from .layout import LabDevice, LabError

#: binaries every lab needs -> Debian package (platform binaries come from the platforms)
BINARIES = {"ip": "iproute2", "/usr/sbin/sshd": "openssh-server",
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


def config_path(dirs: LabDirs, device: Device) -> str:
    """Where a lab device's daemon reads its main config."""
    return f"{dirs.etc}/{spec(device.platform).config_file}"


def check_binaries() -> None:
    needed = dict(BINARIES)
    for ps in REGISTRY.values():
        needed.update(ps.lab.binaries)
    missing = [(b, pkg) for b, pkg in needed.items() if shutil.which(b) is None]
    if missing:
        b, pkg = missing[0]
        raise LabError(Problem("", "lab", f"{b} is not installed",
                               f"apt-get install {pkg} (or run scripts/setup)"))


def processes(dev: LabDevice, device: Device, dirs: LabDirs) -> list[Proc]:
    """The daemons of one device and its sshd."""
    procs = [Proc(dev.name, d.name, dev.netns, list(d.argv), d.log, d.ready, dev.name, d.after)
             for d in spec(device.platform).lab.daemons(device, dirs)]
    procs.append(Proc(dev.name, "sshd", dev.netns,
                      ["/usr/sbin/sshd", "-D", "-f", f"{dirs.etc}/sshd_config", "-E",
                       f"{dirs.log}/sshd.log"], f"{dirs.log}/sshd.stderr",
                      {"listen": dev.ssh_port}, dev.name))
    return procs


def sshd_config(dev: LabDevice, device: Device, dirs: LabDirs, lab_root: str) -> str:
    lines = [f"ListenAddress {dev.mgmt_ip}:{dev.ssh_port}",
             f"HostKey {lab_root}/ssh/host_ed25519", f"PidFile {dirs.run}/sshd.pid",
             f"AuthorizedKeysFile {lab_root}/ssh/authorized_keys", "UsePAM no",
             "StrictModes no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
             "PermitRootLogin prohibit-password", "PrintMotd no", "AcceptEnv LANG",
             "Subsystem sftp internal-sftp"]
    cli_port = spec(device.platform).lab.cli_port
    if cli_port is not None:  # the device's own CLI, as a switch offers it
        lines.insert(1, f"ListenAddress {dev.mgmt_ip}:{cli_port}")
        lines += [f"Match LocalPort {cli_port}", f"  ForceCommand {dirs.etc}/cli.sh"]
    return "\n".join(lines) + "\n"


def as_json(items: list[Proc] | list[Post]) -> list[dict[str, Any]]:
    return [asdict(x) for x in items]
