"""One SSH session per device, carried by Netmiko (host keys checked against known_hosts, keys
or the agent for authentication). Commands run on exec channels of that session, for their exit
codes; files go over SFTP on the same transport and replace their target atomically."""

from __future__ import annotations

import posixpath
import stat
from dataclasses import dataclass
from typing import Any

from .errors import BgpgenError, Problem
from .targets import Target


class RemoteError(BgpgenError):
    """A command or a transfer on a device failed."""


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
class Remote:
    """Commands and files on one device over an open Netmiko connection."""

    conn: Any
    target: Target

    @property
    def _client(self) -> Any:
        return self.conn.remote_conn_pre

    def run3(self, command: str, timeout: float = 60,
             stdin: str | None = None) -> tuple[int, str, str]:
        """Run a shell command (``stdin`` fed to it); returns (exit code, stdout, stderr)."""
        inp, out, err = self._client.exec_command(command, timeout=timeout)
        if stdin is not None:
            inp.write(stdin.encode())
            inp.channel.shutdown_write()
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
        return out.channel.recv_exit_status(), stdout, stderr

    def run(self, command: str, timeout: float = 60, stdin: str | None = None) -> tuple[int, str]:
        """Run a shell command; returns (exit code, stdout + stderr)."""
        rc, out, err = self.run3(command, timeout, stdin)
        return rc, out + err

    def check(self, command: str, what: str, timeout: float = 60) -> str:
        """Run a command that must succeed; returns its stdout alone (fit to parse)."""
        rc, out, err = self.run3(command, timeout)
        if rc != 0:
            text = out + err
            last = " | ".join(text.strip().splitlines()[-3:]) or f"exit code {rc}"
            raise RemoteError(Problem("", self.target.name, f"{what} failed: {last}", ""))
        return out

    def read(self, path: str) -> str | None:
        """A file's text, or None when it does not exist."""
        sftp = self._client.open_sftp()
        try:
            with sftp.open(path, "r") as fh:
                data: bytes = fh.read()
            return data.decode(errors="replace")
        except FileNotFoundError:
            return None
        finally:
            sftp.close()

    def write(self, path: str, text: str, mode: int = 0o600, owner: str | None = None) -> None:
        """Write ``path`` atomically: a temporary file beside it, then a rename."""
        tmp = posixpath.join(posixpath.dirname(path), f".{posixpath.basename(path)}.bgpgen-tmp")
        sftp = self._client.open_sftp()
        try:
            with sftp.open(tmp, "w") as fh:
                fh.write(text.encode())
            sftp.chmod(tmp, mode)
            if owner:
                self.check(f"chown {owner} {tmp}", "chown")
            sftp.posix_rename(tmp, path)
        finally:
            sftp.close()

    def rename(self, src: str, dst: str) -> None:
        sftp = self._client.open_sftp()
        try:
            sftp.posix_rename(src, dst)
        finally:
            sftp.close()

    def copy(self, src: str, dst: str) -> None:
        self.check(f"cp -p {src} {dst}", f"backup of {src}")

    def mtime(self, path: str) -> float | None:
        sftp = self._client.open_sftp()
        try:
            st = sftp.stat(path)
            return float(st.st_mtime or 0) if stat.S_ISREG(st.st_mode or 0) else None
        except FileNotFoundError:
            return None
        finally:
            sftp.close()
