"""How bgpgen talks to one device: a :class:`Transport` runs commands and moves files.

:class:`SshTransport` is the real one: one SSH session per device, carried by Netmiko (host keys
checked against known_hosts, keys or the agent for authentication). Commands run on exec
channels of that session, for their exit codes; files go over SFTP on the same transport and
replace their target atomically. Anything with the same methods (a recording replayed in a
test, a user's own connection) can stand in for it: platform modules see only the protocol.
"""

from __future__ import annotations

import posixpath
import shlex
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .errors import BgpgenError, Problem

if TYPE_CHECKING:
    from .targets import Target


class RemoteError(BgpgenError):
    """A command or a transfer on a device failed."""


def shell(argv: Sequence[str]) -> str:
    """One shell command line from words, each quoted.

    >>> shell(["vtysh", "-c", "show bgp summary json"])
    "vtysh -c 'show bgp summary json'"
    """
    return " ".join(shlex.quote(a) for a in argv)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What one command on a device gave back."""

    rc: int
    stdout: str
    stderr: str = ""

    @property
    def output(self) -> str:
        """stdout and stderr together (for messages, never for parsing)."""
        return self.stdout + self.stderr

    @property
    def ok(self) -> bool:
        return self.rc == 0


class Transport(Protocol):
    """Commands and files on one device. Platform modules use nothing else to reach it."""

    @property
    def target(self) -> Target: ...

    def exec(self, command: str, timeout: float = 60,
             stdin: str | None = None) -> CommandResult:
        """Run a shell command (``stdin`` fed to it)."""
        ...

    def read(self, path: str) -> str | None:
        """A file's text, or None when it does not exist."""
        ...

    def write(self, path: str, text: str, mode: int = 0o600) -> None:
        """Write ``path`` atomically (a temporary file beside it, then a rename)."""
        ...

    def rename(self, src: str, dst: str) -> None: ...


def check(t: Transport, command: str, what: str, timeout: float = 60) -> str:
    """Run a command that must succeed; returns its stdout alone (fit to parse)."""
    res = t.exec(command, timeout)
    if not res.ok:
        last = " | ".join(res.output.strip().splitlines()[-3:]) or f"exit code {res.rc}"
        raise RemoteError(Problem("", t.target.name, f"{what} failed: {last}", ""))
    return res.stdout


def copy(t: Transport, src: str, dst: str) -> None:
    """Copy a file on the device, keeping its mode and owner (a backup)."""
    check(t, f"cp -p {shlex.quote(src)} {shlex.quote(dst)}", f"backup of {src}")


def connect_options(t: Target) -> dict[str, Any]:
    """Netmiko ConnectHandler arguments for a target (also Nornir's connection extras)."""
    opts: dict[str, Any] = {
        "device_type": "linux", "host": t.host, "port": t.port, "username": t.user,
        "use_keys": True, "allow_agent": t.key is None, "ssh_strict": True,
        "system_host_keys": False, "alt_host_keys": True, "alt_key_file": t.known_hosts,
        "conn_timeout": 8, "auth_timeout": 8, "banner_timeout": 8, "fast_cli": True}
    if t.key:
        opts["key_file"] = t.key
    return opts


@dataclass(slots=True)
class SshTransport:
    """A :class:`Transport` over an open Netmiko connection (its paramiko client)."""

    conn: Any
    target: Target

    @property
    def _client(self) -> Any:
        return self.conn.remote_conn_pre

    def exec(self, command: str, timeout: float = 60,
             stdin: str | None = None) -> CommandResult:
        inp, out, err = self._client.exec_command(command, timeout=timeout)
        if stdin is not None:
            inp.write(stdin.encode())
            inp.channel.shutdown_write()
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
        return CommandResult(out.channel.recv_exit_status(), stdout, stderr)

    def read(self, path: str) -> str | None:
        sftp = self._client.open_sftp()
        try:
            with sftp.open(path, "r") as fh:
                data: bytes = fh.read()
            return data.decode(errors="replace")
        except FileNotFoundError:
            return None
        finally:
            sftp.close()

    def write(self, path: str, text: str, mode: int = 0o600) -> None:
        tmp = posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.bgpgen-tmp")
        sftp = self._client.open_sftp()
        try:
            with sftp.open(tmp, "w") as fh:
                fh.write(text.encode())
            sftp.chmod(tmp, mode)
            sftp.posix_rename(tmp, path)
        finally:
            sftp.close()

    def rename(self, src: str, dst: str) -> None:
        sftp = self._client.open_sftp()
        try:
            sftp.posix_rename(src, dst)
        finally:
            sftp.close()

    def mtime(self, path: str) -> float | None:
        sftp = self._client.open_sftp()
        try:
            st = sftp.stat(path)
            return float(st.st_mtime or 0) if stat.S_ISREG(st.st_mode or 0) else None
        except FileNotFoundError:
            return None
        finally:
            sftp.close()
