"""How to reach a device, the way ``ssh DEVICE`` would: the user's OpenSSH client config first,
then what the inventory's ``mgmt`` says, then OpenSSH's own defaults.

The destination is the device's ``mgmt.ssh_host`` alias if it has one, else its name. For that
destination the ssh config (``--ssh-config FILE``, the inventory's ``fabric.management.ssh_config``,
or ``~/.ssh/config``) gives ``HostName``, ``Port``, ``User``, ``IdentityFile``, ``ProxyJump``
(one or more bastions, each looked up the same way) and ``UserKnownHostsFile``; whatever it
leaves unset comes from the inventory (``mgmt: {host, port, user, key, jump}``) and then from
OpenSSH's defaults. Host keys are always checked: an unknown one is refused, whatever
``StrictHostKeyChecking`` says.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path

import paramiko

from .errors import BgpgenError, Problem
from .model import Mgmt

DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
DEFAULT_KEYS = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")
MAX_JUMPS = 8


class ReachError(BgpgenError):
    """An ssh config or a management setting cannot be used."""


@dataclass(frozen=True, slots=True)
class Hop:
    """One SSH endpoint: a device or a bastion on the way to it."""

    alias: str                      #: what it is called (ssh config Host, or the device)
    host: str
    port: int
    user: str
    keys: tuple[str, ...]           #: identity files; empty: the agent and default keys
    known_hosts: tuple[str, ...]    #: host keys are checked against these files

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Reach:
    """The device's endpoint and the bastions before it, in order."""

    ssh: Hop
    jumps: tuple[Hop, ...] = ()


def load_config(path: Path | None) -> paramiko.SSHConfig:
    """Parse an OpenSSH client config (an empty one for None)."""
    if path is None:
        return paramiko.SSHConfig()
    try:
        return paramiko.SSHConfig.from_path(str(path))
    except OSError as exc:
        raise ReachError(Problem(str(path), "--ssh-config", f"cannot read it: {exc.strerror}",
                                 "give an OpenSSH client config file")) from None
    except Exception as exc:  # noqa: BLE001 - paramiko raises several types on bad syntax
        raise ReachError(Problem(str(path), "--ssh-config", f"not a valid ssh config: {exc}",
                                 "check it with ssh -G -F FILE HOST")) from None


def default_config() -> Path | None:
    user = Path(os.path.expanduser("~/.ssh/config"))
    return user if user.is_file() else None


def _expand(path: str, host: str, user: str, port: int, alias: str) -> str:
    """OpenSSH's %-tokens that make sense here, and ~."""
    for token, value in (("%h", host), ("%r", user), ("%p", str(port)), ("%n", alias),
                         ("%d", os.path.expanduser("~")), ("%u", getpass.getuser()),
                         ("%%", "%")):
        path = path.replace(token, value)
    return os.path.expanduser(path)


def hop(config: paramiko.SSHConfig, dest: str, fill: Mgmt | None = None) -> Hop:
    """The endpoint ``ssh dest`` would reach, with ``fill`` for what the config leaves unset."""
    user_part, _, rest = dest.rpartition("@") if "@" in dest else ("", "", dest)
    name, port_text = rest, ""
    if rest.count(":") == 1:  # host:port (a bare IPv6 address has more colons)
        name, _, port_text = rest.partition(":")
    found = config.lookup(name)
    host = found.get("hostname", name)
    if host == name and fill is not None and fill.host:
        host = fill.host
    port = int(port_text or found.get("port") or (fill.port if fill else 0) or 22)
    user = user_part or found.get("user") or (fill.user if fill else "") or getpass.getuser()
    keys = [_expand(k, host, user, port, name) for k in found.get("identityfile", [])]
    if not keys and fill is not None and fill.key:
        keys = [os.path.expanduser(fill.key)]
    known = found.get("userknownhostsfile", " ".join(DEFAULT_KNOWN_HOSTS)).split()
    return Hop(name, host, port, user, tuple(keys),
               tuple(_expand(k, host, user, port, name) for k in known))


def reach(config: paramiko.SSHConfig, device: str, mgmt: Mgmt | None) -> Reach:
    """How to reach a device: its endpoint and its bastions."""
    dest = mgmt.ssh_host if mgmt is not None and mgmt.ssh_host else device
    end = hop(config, dest, mgmt)
    found = config.lookup(dest.rpartition("@")[2].split(":")[0])
    jump = found.get("proxyjump") or (mgmt.jump if mgmt is not None else None)
    jumps: list[Hop] = []
    seen = {end.alias}
    while jump and jump.lower() != "none":
        chain = [hop(config, j.strip()) for j in jump.split(",") if j.strip()]
        jumps[:0] = chain  # a bastion's own ProxyJump comes before it
        first = chain[0].alias
        if first in seen or len(jumps) > MAX_JUMPS:
            raise ReachError(Problem("", device, f"ProxyJump loops or is longer than "
                                     f"{MAX_JUMPS} hops at {first}",
                                     "fix the ProxyJump lines of your ssh config"))
        seen.add(first)
        jump = config.lookup(first).get("proxyjump")
    return Reach(end, tuple(jumps))
