"""How bgpgen talks to one device: a :class:`Transport` runs commands and moves files.

:class:`SshTransport` is the real one: one SSH session per device, carried by Netmiko (host keys
checked against known_hosts, keys or the agent for authentication). Commands run on exec
channels of that session, for their exit codes; files go over SFTP on the same transport and
replace their target atomically. Anything with the same methods (a recording replayed in a
test, a user's own connection) can stand in for it: platform modules see only the protocol.
"""

from __future__ import annotations

import os
import secrets
import shlex
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol


from .errors import BgpgenError, Problem

if TYPE_CHECKING:
    import paramiko

    from .reach import Hop
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

    def exec(self, command: str, timeout: float | None = None,
             stdin: str | None = None) -> CommandResult:
        """Run a shell command (``stdin`` fed to it), for at most ``timeout`` seconds (the
        transport's command timeout when None); a command that takes longer is killed on the
        device and raises :class:`RemoteError`."""
        ...

    def read(self, path: str) -> str | None:
        """A file's text, or None when it does not exist."""
        ...

    def write(self, path: str, text: str, mode: int = 0o600, owner: str | None = None) -> None:
        """Write ``path`` atomically (a temporary file beside it, then a rename), with its
        mode (and owner, ``user:group``) set before it takes the old file's place."""
        ...

    def rename(self, src: str, dst: str) -> None: ...


def check(t: Transport, command: str, what: str, timeout: float | None = None) -> str:
    """Run a command that must succeed; returns its stdout alone (fit to parse)."""
    res = t.exec(command, timeout)
    if not res.ok:
        last = " | ".join(res.output.strip().splitlines()[-3:]) or f"exit code {res.rc}"
        raise RemoteError(Problem("", t.target.name, f"{what} failed: {last}", ""))
    return res.stdout


class BecomeError(RemoteError):
    """sudo asks for a password (or refuses) on a device."""


def _ssh() -> Any:
    """paramiko, imported on first use (a render never needs its 0.07 s)."""
    import paramiko
    return paramiko


def connect_options(t: Target) -> dict[str, Any]:
    """Netmiko ConnectHandler arguments for a target (also Nornir's connection extras).

    Netmiko takes one key file (and insists that it exists); the others, the agent and every
    known_hosts file are added when :func:`open_client` connects.
    """
    keys = [k for k in t.ssh.keys if os.path.isfile(k)]
    known = [k for k in t.ssh.known_hosts if os.path.isfile(k)]
    opts: dict[str, Any] = {
        "device_type": "linux", "host": t.host, "port": t.port, "username": t.user,
        "use_keys": bool(keys), "allow_agent": True, "ssh_strict": True,
        "system_host_keys": False, "alt_host_keys": bool(known),
        "alt_key_file": known[0] if known else "", "conn_timeout": 8, "auth_timeout": 8,
        "banner_timeout": 8, "fast_cli": True}
    if keys:
        opts["key_file"] = keys[0]
    return opts


def no_delay(client: Any) -> None:
    """Send small SSH packets at once: without TCP_NODELAY every exec channel waits ~40 ms on
    Nagle and delayed ACKs (measured: 44 ms -> 3 ms per command)."""
    transport = client.get_transport() if client is not None else None
    sock = getattr(transport, "sock", None)
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _client(hop: Hop, sock: Any = None) -> paramiko.SSHClient:
    import paramiko
    """A connected SSH client for one hop (a bastion): host key checked, keys or agent."""
    client = paramiko.SSHClient()
    for path in hop.known_hosts:
        if os.path.isfile(path):
            client.load_system_host_keys(path)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    keys = [k for k in hop.keys if os.path.isfile(k)]
    # paramiko takes a list of key files (its stubs say one): like OpenSSH's IdentityFile lines
    client.connect(hop.host, hop.port, hop.user, key_filename=keys or None,  # type: ignore[arg-type]
                   look_for_keys=not keys, allow_agent=True, timeout=8, auth_timeout=8,
                   banner_timeout=8, sock=sock)
    no_delay(client)
    return client


def open_client(conn: Any, t: Target) -> None:
    """Connect Netmiko's SSH client for ``t`` (through its bastions, if any).

    Netmiko builds the client (its host key policy, its key and agent handling); bgpgen adds
    every known_hosts file and identity file of the target and the ProxyJump chain, then uses
    exec channels on that session: the interactive shell and its prompt discovery (~0.2 s of
    sleeps per device) are skipped.
    """
    params = conn._connect_params_dict()
    keys = [k for k in t.ssh.keys if os.path.isfile(k)]
    if len(keys) > 1:  # Netmiko was given the first
        params["key_filename"] = keys
    elif not keys:  # like OpenSSH without IdentityFile: the agent, then the default keys
        params["look_for_keys"] = True
    sock = None
    jumps: list[paramiko.SSHClient] = []
    for i, hop in enumerate(t.jumps):
        try:
            jumps.append(_client(hop, sock))
            nxt = t.jumps[i + 1] if i + 1 < len(t.jumps) else t.ssh
            transport = jumps[-1].get_transport()
            assert transport is not None
            sock = transport.open_channel("direct-tcpip", (nxt.host, nxt.port), ("", 0))
        except Exception as exc:  # noqa: BLE001 - said in one line, naming the bastion
            for c in jumps:
                c.close()
            raise RemoteError(Problem("", t.name, f"bastion {hop.alias}: "
                                      f"{describe_ssh(exc, hop)}", "")) from None
    params["sock"] = sock
    client = conn._build_ssh_client()
    for path in t.ssh.known_hosts[1:]:
        if os.path.isfile(path):
            client.load_system_host_keys(path)
    client.connect(**params)
    no_delay(client)
    conn.remote_conn_pre = client
    conn.bgpgen_jumps = jumps  # closed with the connection (fleet.close)


def describe_ssh(exc: BaseException, hop: Hop) -> str:
    """One line for an SSH failure at ``hop``, naming what was tried and the fix."""
    text = " ".join(str(exc).split())
    if isinstance(exc, _ssh().BadHostKeyException):
        return (f"host key verification failed: the host key of {hop.host}:{hop.port} has CHANGED from the one in "
                f"{', '.join(hop.known_hosts)}; if that is expected, remove the old entry "
                f"(ssh-keygen -R) and add the new one after checking it")
    if isinstance(exc, _ssh().SSHException) and "not found in known_hosts" in text:
        return (f"host key verification failed: unknown host key for {hop.host}:{hop.port} (not in "
                f"{', '.join(hop.known_hosts)}); check its fingerprint, then add it: "
                f"ssh-keyscan -p {hop.port} {hop.host} >> {hop.known_hosts[0]}")
    if isinstance(exc, _ssh().AuthenticationException):
        tried = ", ".join(hop.keys) if hop.keys else "the SSH agent and default keys"
        return f"authentication failed as {hop.user}@{hop.host}:{hop.port} with {tried}"
    text = text.removeprefix("[Errno None] ")
    return f"{hop} unreachable: {text[:160] or type(exc).__name__}"


@dataclass(slots=True)
class SshTransport:
    """A :class:`Transport` over an open Netmiko connection (its paramiko client).

    Every change is a command on an exec channel, so a non-root deploy user's privileged steps
    all go through ``sudo -n`` (``target.become``) the same way. A file is written into a
    temporary file that ``mktemp`` creates beside it with mode 0600, given its final mode and
    owner, then renamed over the old one. Reads need no shell when no sudo is needed: they go
    over one SFTP session per device.
    """

    conn: Any
    target: Target
    #: how long one command may take (Ansible's ``command_timeout``); it is killed on the
    #: device after that, so nothing bgpgen gave up on goes on running there
    command_timeout: float = 60.0
    _sftp: Any = None
    _broken: bool = False
    _ids: dict[str, int] | None = None  #: the device's user and group names, read once

    @property
    def _client(self) -> Any:
        if self._broken:  # a stalled or lost session: the next step gets a new one
            self._reconnect()
        return self.conn.remote_conn_pre

    def _reconnect(self) -> None:
        old, self._sftp = self.conn.remote_conn_pre, None
        try:
            old.close()
        except (OSError, EOFError, _ssh().SSHException):  # a dead session may fail to close
            pass
        for jump in getattr(self.conn, "bgpgen_jumps", []):
            jump.close()
        try:
            open_client(self.conn, self.target)
        except (OSError, EOFError, _ssh().SSHException) as exc:
            raise RemoteError(Problem("", self.target.name, "cannot reconnect: "
                                      + describe_ssh(exc, self.target.ssh), "")) from None
        self._broken = False

    def _wrap(self, command: str, limit: float) -> str:
        # killed on the device when it overruns: a timed-out step never completes behind
        # bgpgen's back (SIGKILL: exit 137 says it was this limit, not the command's own)
        bounded = f"timeout -s KILL {limit:g} sh -c {shlex.quote(command)}"
        return f"sudo -n -- {bounded}" if self.target.become else bounded

    def exec(self, command: str, timeout: float | None = None,
             stdin: str | None = None) -> CommandResult:
        limit = timeout if timeout is not None else self.command_timeout
        try:
            inp, out, err = self._client.exec_command(self._wrap(command, limit),
                                                      timeout=limit + 2)
            if stdin is not None:
                inp.write(stdin.encode())
                inp.channel.shutdown_write()
            stdout = out.read().decode(errors="replace")
            stderr = err.read().decode(errors="replace")
            res = CommandResult(out.channel.recv_exit_status(), stdout, stderr)
        except (OSError, EOFError, _ssh().SSHException) as exc:
            # A timeout or a lost connection mid-command: a RemoteError like any other failure,
            # so that the push in progress restores what it changed (or says it could not),
            # over a new session.
            self._broken = True
            what = "timed out" if isinstance(exc, TimeoutError) else "lost the connection"
            raise RemoteError(Problem("", self.target.name, f"{what} during "
                                      f"{command.split()[0][:40]}: "
                                      f"{' '.join(str(exc).split())[:120] or type(exc).__name__}",
                                      "")) from None
        # 137: ``timeout`` reports the kill; -1: it went down with its command (SIGKILL to
        # its process group), so sshd sent a signal instead of an exit status
        if res.rc in (137, -1) and not stdout and not stderr:
            raise RemoteError(Problem("", self.target.name, f"timed out after {limit:g} s "
                                      f"during {command.split()[0][:40]} (killed on the device)",
                                      "raise --command-timeout if the device is only slow"))
        if self.target.become and res.rc == 1 and stderr.startswith("sudo:"):
            t = self.target
            raise BecomeError(Problem("", t.name, f"sudo -n on {t.name} refuses {t.user}: "
                                      f"{' '.join(stderr.split())[:160]}",
                                      f"give {t.user} passwordless sudo (NOPASSWD) there, or "
                                      "deploy as root"))
        return res

    def _lost(self, what: str, exc: BaseException) -> RemoteError:
        """A session lost or stalled during ``what``: the next step gets a new one."""
        self._broken = True
        return RemoteError(Problem("", self.target.name, f"{what}: "
                                   f"{' '.join(str(exc).split())[:120] or type(exc).__name__}",
                                   ""))

    def _sftp_session(self) -> Any:
        if self._broken:  # a stalled SFTP session is not used again: a new session, new SFTP
            self._reconnect()
        if self._sftp is None:
            self._sftp = self._client.open_sftp()
            self._sftp.get_channel().settimeout(self.command_timeout)
        return self._sftp

    def read(self, path: str) -> str | None:
        if not self.target.become:  # no shell needed: one SFTP session per device, kept
            try:
                with self._sftp_session().open(path, "r") as fh:
                    data: bytes = fh.read()
                return data.decode(errors="replace")
            except FileNotFoundError:
                return None
            except (OSError, EOFError, _ssh().SSHException) as exc:
                raise self._lost(f"cannot read {path}", exc) from None
        res = self.exec(f"if [ -e {shlex.quote(path)} ]; then cat -- {shlex.quote(path)}; "
                        "else exit 3; fi")
        if res.rc == 3:
            return None
        if not res.ok:
            raise RemoteError(Problem("", self.target.name, f"cannot read {path}: "
                                      f"{res.output.strip()[:200]}", ""))
        return res.stdout

    def write(self, path: str, text: str, mode: int = 0o600, owner: str | None = None) -> None:
        if not self.target.become and self._sftp_write(path, text, mode, owner):
            return
        # mktemp makes it 0600: the owner changes first, the mode last, so that the secret is
        # never readable by anyone the final owner and mode do not allow
        script = ('t=$(mktemp "$(dirname -- "$1")/.$(basename -- "$1").bgpgen-XXXXXX") || exit 1; '
                  'if cat > "$t"'
                  + (f' && chown {shlex.quote(owner)} "$t"' if owner else "")
                  + f' && chmod {mode:o} "$t" && mv -f -- "$t" "$1"; then exit 0; fi; '
                  'rm -f -- "$t"; exit 1')
        res = self.exec(f"sh -c {shlex.quote(script)} bgpgen {shlex.quote(path)}", stdin=text)
        if not res.ok:
            raise RemoteError(Problem("", self.target.name, f"cannot write {path}: "
                                      f"{res.output.strip()[:200] or 'exit ' + str(res.rc)}",
                                      ""))

    def _owner_ids(self, owner: str) -> tuple[int, int] | None:
        """``user:group`` as the device numbers them (its /etc/passwd and /etc/group, read
        once over SFTP); None when either is not there (the shell's chown says why)."""
        if self._ids is None:
            ids: dict[str, int] = {}
            for kind, file in (("u", "/etc/passwd"), ("g", "/etc/group")):
                for line in (self.read(file) or "").splitlines():
                    parts = line.split(":")
                    if len(parts) > 2 and parts[2].isdigit():
                        ids.setdefault(f"{kind}:{parts[0]}", int(parts[2]))
            self._ids = ids
        user, _, group = owner.partition(":")
        uid, gid = self._ids.get(f"u:{user}"), self._ids.get(f"g:{group or user}")
        return None if uid is None or gid is None else (uid, gid)

    def _sftp_write(self, path: str, text: str, mode: int, owner: str | None) -> bool:
        """The write over the SFTP session (no command to start): a new temporary file beside
        ``path`` created 0600 (the mode is given to open(2) itself, so the secret is never
        readable by anyone else, not even for a moment), written, given its owner and its
        mode, renamed over ``path``. False when the server refuses any of it (a full disk, a
        read-only file system): nothing is left, and the shell's write says why in words."""
        from paramiko.sftp import SFTPError

        ids = None if owner is None else self._owner_ids(owner)
        if owner is not None and ids is None:
            return False
        head, _, base = path.rpartition("/")
        tmp = f"{head}/.{base}.bgpgen-{secrets.token_hex(4)}"
        created = False
        try:
            sftp = self._sftp_session()
            self._create(sftp, tmp, 0o600, text)  # removes it again if the write fails
            created = True
            if ids is not None:  # the owner first, the mode last (as the shell's write)
                sftp.chown(tmp, *ids)
            sftp.chmod(tmp, mode)
            sftp.posix_rename(tmp, path)
            return True
        except (EOFError, TimeoutError, _ssh().SSHException) as exc:  # lost or stalled
            raise self._lost(f"cannot write {path}", exc) from None
        except (OSError, SFTPError):
            if created:
                try:
                    self._sftp_session().remove(tmp)
                except OSError:
                    pass
            return False

    @staticmethod
    def _create(sftp: Any, path: str, mode: int, text: str) -> None:
        """A new file (not there before: O_EXCL) made with ``mode`` by open(2) itself, then
        ``text`` written into it. OSError (or paramiko's SFTPError) when refused."""
        from paramiko.sftp import CMD_HANDLE, CMD_OPEN, SFTP_FLAG_CREATE, SFTP_FLAG_EXCL
        from paramiko.sftp import SFTP_FLAG_WRITE, SFTPError
        from paramiko.sftp_attr import SFTPAttributes
        from paramiko.sftp_file import SFTPFile

        attrs = SFTPAttributes()
        attrs.st_mode = mode
        kind, msg = sftp._request(CMD_OPEN, path, SFTP_FLAG_WRITE | SFTP_FLAG_CREATE
                                  | SFTP_FLAG_EXCL, attrs)
        if kind != CMD_HANDLE:
            raise SFTPError(f"no handle for {path}")
        fh = SFTPFile(sftp, msg.get_binary(), "wb")
        try:
            fh.write(text.encode())
            fh.close()  # written out here: a full disk says so now
        except BaseException:
            for undo in (fh.close, lambda: sftp.remove(path)):  # nothing half-written left
                try:
                    undo()
                except Exception:  # noqa: BLE001 - the first failure is the one raised
                    pass
            raise

    def create_new(self, path: str, text: str, mode: int = 0o644) -> bool | None:
        """Make ``path`` with ``text`` unless it exists (a lock file), over the SFTP session:
        True when made, False when it was there. None when that cannot be said over SFTP
        (through sudo, or refused for another reason): the shell is to do it."""
        from paramiko.sftp import SFTPError

        if self.target.become:
            return None
        try:
            sftp = self._sftp_session()
            try:
                self._create(sftp, path, mode, text)
                return True
            except (OSError, SFTPError):
                pass
            try:  # SFTP says "Failure" for an existing file as for anything else: look
                sftp.stat(path)
                return False
            except (OSError, SFTPError):
                return None
        except (EOFError, TimeoutError, _ssh().SSHException) as exc:  # lost or stalled
            raise self._lost(f"cannot create {path}", exc) from None

    def remove_if(self, path: str, needle: str) -> bool | None:
        """Remove ``path`` if its text holds ``needle`` (this run's own lock), over the SFTP
        session: True removed, False not (absent, or another's). None: the shell is to do it."""
        from paramiko.sftp import SFTPError

        if self.target.become:
            return None
        text = self.read(path)
        if text is None or needle not in text:
            return False
        try:
            self._sftp_session().remove(path)
            return True
        except (EOFError, TimeoutError, _ssh().SSHException) as exc:  # lost or stalled
            raise self._lost(f"cannot remove {path}", exc) from None
        except (OSError, SFTPError):
            return None

    def rename(self, src: str, dst: str) -> None:
        if not self.target.become:  # rename(2) over the SFTP session: no command to start
            try:
                self._sftp_session().posix_rename(src, dst)
                return
            except (EOFError, TimeoutError, _ssh().SSHException) as exc:  # lost or stalled
                raise self._lost(f"cannot rename {src}", exc) from None
            except OSError:  # refused (another filesystem, permissions): mv says why
                pass
        check(self, f"mv -f -- {shlex.quote(src)} {shlex.quote(dst)}", f"rename of {src}")
