"""A network OS's CLI over real SSH, for the platforms no lab can run (EOS, NX-OS, Junos).

:class:`CliServer` is a small paramiko SSH server on 127.0.0.1 (a host key of its own, public
key login for one key): each login gets an interactive shell that echoes what is typed, prints a
prompt, and hands every command line to the :class:`Device` behind it. A device keeps its
running config, its config sessions and its pending commits across connections, and records
every command it was sent, so a test can assert the exact sequence a push sends.

What a device answers is either recorded output of the real OS (``recorded`` show commands; each
recording names its source) or the effect of a config command, computed with hier_config's
model of that OS (``future``): this is a stand-in for the switch's behaviour, not the switch.
"""

from __future__ import annotations

import hashlib
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
from hier_config import Platform as HcPlatform
from hier_config import get_hconfig


@dataclass
class Device:
    """A switch's CLI: subclasses answer commands (``handle``) and say their prompt."""

    hostname: str
    running: str
    recorded: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    #: a command the device refuses (a regular expression searched in the line)
    refuse: str | None = None
    #: the connection drops when a command matching this arrives (after it ran, with ``after``)
    drop: str | None = None
    drop_after: bool = True
    saved: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def prompt(self) -> str:  # pragma: no cover - each OS has its own
        raise NotImplementedError

    def handle(self, line: str) -> str:  # pragma: no cover - each OS has its own
        raise NotImplementedError


@dataclass
class Eos(Device):
    """Arista EOS: exec mode, named config sessions, commit timers (rolled back by
    :meth:`expire`), ``show running-config`` as EOS prints it."""

    session: str | None = None
    sessions: dict[str, list[str]] = field(default_factory=dict)
    #: session -> the running config before its timed commit
    pending: dict[str, str] = field(default_factory=dict)

    def prompt(self) -> str:
        if self.session is not None:
            return f"{self.hostname}(config-s-{self.session[:6]})#"
        return f"{self.hostname}#"

    def _future(self, commands: list[str]) -> str:
        lines = [c for c in commands if c.strip() not in ("exit", "exit-address-family")]
        run = get_hconfig(HcPlatform.ARISTA_EOS, self.running)
        new = run.future(get_hconfig(HcPlatform.ARISTA_EOS, "\n".join(lines)))
        return _eos_text(new.dump_simple())

    def expire(self) -> None:
        """Every pending commit's timer runs out: EOS puts the previous config back."""
        for name, previous in list(self.pending.items()):
            self.running = previous
            del self.pending[name]

    def handle(self, line: str) -> str:
        cmd = line.strip()
        if self.refuse and re.search(self.refuse, cmd):
            return f"% Invalid input (at token 0: '{cmd.split()[0]}')"
        if cmd.startswith("terminal width"):
            return f"Width set to {cmd.split()[-1]} columns."
        if cmd == "terminal length 0":
            return "Pagination disabled."
        if not cmd:
            return ""
        if self.session is not None:
            return self._in_session(cmd, line)
        if cmd == "show running-config":
            return (f"! Command: show running-config\n! device: {self.hostname} "
                    f"(vEOS-lab, EOS-4.31.2F)\n!\n{self.running}end")
        if cmd in self.recorded:
            return self.recorded[cmd]
        m = re.fullmatch(r"configure session (\S+)( commit| abort)?", cmd)
        if m and not m.group(2):
            self.session = m.group(1)
            self.sessions.setdefault(self.session, [])
            return ""
        if m and m.group(2) == " commit":
            if m.group(1) not in self.pending:
                return f"% Session {m.group(1)} has no pending commit"
            del self.pending[m.group(1)]
            self.sessions.pop(m.group(1), None)
            return ""
        if m and m.group(2) == " abort":
            if m.group(1) in self.pending:
                self.running = self.pending.pop(m.group(1))
            self.sessions.pop(m.group(1), None)
            return ""
        m = re.fullmatch(r"no configure session (\S+)", cmd)
        if m:
            self.sessions.pop(m.group(1), None)
            return ""
        if cmd in ("copy running-config startup-config", "write memory"):
            self.saved = self.running
            return "Copy completed successfully."
        if cmd == "end":
            return ""
        return f"% Invalid input (at token 0: '{cmd.split()[0]}')"

    def _in_session(self, cmd: str, line: str) -> str:
        assert self.session is not None
        name = self.session
        m = re.fullmatch(r"commit timer (\d\d):(\d\d):(\d\d)", cmd)
        if m:
            self.pending[name] = self.running
            self.running = self._future(self.sessions[name])
            self.session = None
            return ""
        if cmd == "commit":
            self.running = self._future(self.sessions.pop(name))
            self.session = None
            return ""
        if cmd == "abort":
            self.sessions.pop(name, None)
            self.session = None
            return ""
        if cmd == "end":
            self.session = None
            return ""
        self.sessions[name].append(line.rstrip())
        return ""


def apply_set(lines: list[str], commands: list[str]) -> list[str]:
    """Junos ``set`` and ``delete`` commands applied in order to a config of ``set`` lines: a
    ``delete`` removes the statement and everything under it."""
    out = list(lines)
    for c in commands:
        c = c.strip()
        if c.startswith("set ") and c not in out:
            out.append(c)
        elif c.startswith("delete "):
            path = "set " + c.removeprefix("delete ")
            out = [ln for ln in out if ln != path and not ln.startswith(path + " ")]
    return out


@dataclass
class Junos(Device):
    """Juniper Junos: operational and configuration mode, ``configure exclusive`` (refused
    while ``locked_by`` holds the database), ``commit check``, ``commit confirmed`` (rolled back
    by :meth:`expire`), ``rollback N``; ``running`` is ``show configuration | display set``."""

    user: str = "admin"
    editing: bool = False
    candidate: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)  #: rollback 1, 2, ...
    pending: bool = False
    locked_by: str | None = None
    #: a candidate line matching this fails ``commit check``
    refuse_commit: str | None = None

    def prompt(self) -> str:
        return f"{self.user}@{self.hostname}" + ("# " if self.editing else "> ")

    def expire(self) -> None:
        """The commit confirmed was not confirmed in time: Junos rolls it back."""
        if self.pending:
            self.running = self.history.pop(0)
            self.pending = False

    def _commit(self) -> None:
        new = "".join(ln + "\n" for ln in self.candidate)
        if new != self.running:
            self.history.insert(0, self.running)
            self.running = new

    def handle(self, line: str) -> str:
        cmd = line.strip()
        if cmd == "set cli screen-width 511":
            return "Screen width set to 511"
        if cmd == "set cli complete-on-space off":
            return "Disabling complete-on-space"
        if cmd == "set cli screen-length 0":
            return "Screen length set to 0"
        if not cmd:
            return ""
        if self.editing:
            return self._edit(cmd)
        if cmd == "show configuration | display set":
            return self.running.rstrip("\n")
        if cmd == "show system commit":
            top = ("0   2026-11-27 07:50:01 UTC by admin via cli commit confirmed, rollback in "
                   "10mins\n    bgpgen" if self.pending else
                   "0   2026-11-27 07:50:01 UTC by root via other")
            return top + "\n1   2026-11-27 06:00:00 UTC by admin via cli"
        if cmd in self.recorded:
            return self.recorded[cmd]
        if cmd == "configure exclusive":
            if self.locked_by:
                return (f"error: configuration database locked by:\n  {self.locked_by} "
                        "terminal pts/1 (pid 4242) on since 2026-11-27 06:58:01 UTC\n"
                        "      exclusive [edit]")
            self.editing = True
            self.candidate = [ln for ln in self.running.splitlines() if ln.strip()]
            return ("warning: uncommitted changes will be discarded on exit\n"
                    "Entering configuration mode\n\n[edit]")
        return "                  ^\nunknown command.\n"

    def _edit(self, cmd: str) -> str:
        if self.refuse and re.search(self.refuse, cmd):
            return "                  ^\nsyntax error."
        if cmd.startswith(("set ", "delete ")):
            self.candidate = apply_set(self.candidate, [cmd])
            return "\n[edit]"
        if cmd == "commit check":
            bad = [ln for ln in self.candidate if self.refuse_commit
                   and re.search(self.refuse_commit, ln)]
            if bad:
                return ("[edit protocols bgp]\n  'group'\n    error: " + bad[0][:40]
                        + "\nerror: configuration check-out failed")
            return "configuration check succeeds\n\n[edit]"
        m = re.fullmatch(r"commit confirmed (\d+)(?: comment .*)?", cmd)
        if m:
            self._commit()
            self.pending = True
            return (f"commit confirmed will be automatically rolled back in {m.group(1)} "
                    "minutes unless confirmed\ncommit complete\n\n[edit]")
        if re.fullmatch(r"commit(?: comment .*)?", cmd):
            self._commit()
            self.pending = False
            return "commit complete\n\n[edit]"
        m = re.fullmatch(r"rollback (\d+)", cmd)
        if m:
            n = int(m.group(1))
            if n == 0:
                self.candidate = [ln for ln in self.running.splitlines() if ln.strip()]
            elif n <= len(self.history):
                self.candidate = [ln for ln in self.history[n - 1].splitlines() if ln.strip()]
            else:
                return "error: rollback file does not exist"
            return "load complete\n\n[edit]"
        if cmd == "exit configuration-mode":
            self.editing = False
            return "Exiting configuration mode"
        return "                  ^\nsyntax error."


@dataclass
class Nxos(Device):
    """Cisco NX-OS: ``checkpoint`` and ``rollback running-config checkpoint``, ``configure
    session`` with ``verify``, ``commit`` and ``abort``; a password given in clear is shown back
    as type 3 (here: a digest standing in for NX-OS's encryption)."""

    session: str | None = None
    commands: list[str] = field(default_factory=list)
    checkpoints: dict[str, str] = field(default_factory=dict)
    #: a session line matching this fails ``verify``
    refuse_verify: str | None = None

    def prompt(self) -> str:
        return f"{self.hostname}(config-s)#" if self.session is not None else f"{self.hostname}#"

    def _future(self) -> str:
        lines = [c for c in self.commands if c.strip() not in ("exit", "end")]
        run = get_hconfig(HcPlatform.CISCO_NXOS, self.running)
        new = run.future(get_hconfig(HcPlatform.CISCO_NXOS, "\n".join(lines)))
        text = "\n".join(new.dump_simple()) + "\n"
        return re.sub(r"password 0 (\S+)", lambda m: "password 3 " + hashlib.md5(
            m.group(1).encode()).hexdigest(), text)

    def handle(self, line: str) -> str:
        cmd = line.strip()
        if self.refuse and re.search(self.refuse, cmd):
            return "% Invalid command at '^' marker."
        if cmd in ("terminal width 511", "terminal length 0") or not cmd:
            return ""
        if self.session is not None:
            if cmd == "verify":
                bad = [c for c in self.commands if self.refuse_verify
                       and re.search(self.refuse_verify, c)]
                return f"% Failed to verify: {bad[0].strip()}" if bad else \
                    "Verification Successful"
            if cmd == "commit":
                self.running = self._future()
                self.session, self.commands = None, []
                return "Commit Successful"
            if cmd == "abort":
                self.session, self.commands = None, []
                return ""
            if cmd == "end":
                self.session, self.commands = None, []
                return ""
            self.commands.append(line.rstrip())
            return ""
        if cmd == "show running-config":
            return (f"!Command: show running-config\n!Time: Fri Nov 27 07:50:00 2026\n\n"
                    f"{self.running}")
        if cmd == "show checkpoint summary user":
            return "User Checkpoint Summary\n" + "-" * 80 + "\n" + "".join(
                f"{i}) {name}:\nCreated by admin\nCreated at Fri, 07:50:00 27 Nov 2026\n"
                f"Size is {len(text)} bytes\nDescription: None\n\n"
                for i, (name, text) in enumerate(self.checkpoints.items(), 1))
        if cmd in self.recorded:
            return self.recorded[cmd]
        m = re.fullmatch(r"(no )?checkpoint (\S+)", cmd)
        if m and m.group(1):
            self.checkpoints.pop(m.group(2), None)
            return ""
        if m:
            self.checkpoints[m.group(2)] = self.running
            return "Done"
        m = re.fullmatch(r"configure session (\S+)", cmd)
        if m:
            self.session, self.commands = m.group(1), []
            return ""
        m = re.fullmatch(r"rollback running-config checkpoint (\S+)", cmd)
        if m:
            if m.group(1) not in self.checkpoints:
                return f"% Checkpoint {m.group(1)} does not exist"
            self.running = self.checkpoints[m.group(1)]
            return ("Note: Applying config parallelly may fail Rollback verification\n"
                    "Collecting Running-Config\nGenerating Rollback Patch\n"
                    "Executing Rollback Patch\nRollback completed successfully.")
        if cmd == "copy running-config startup-config":
            self.saved = self.running
            return "[########################################] 100%\nCopy complete."
        if cmd == "end":
            return ""
        return "% Invalid command at '^' marker."


def _eos_text(lines: tuple[str, ...] | list[str]) -> str:
    """hier_config's dump (two spaces a level) as EOS prints it (three), blocks closed by '!'."""
    out: list[str] = []
    for ln in lines:
        depth = (len(ln) - len(ln.lstrip(" "))) // 2
        if depth == 0 and out:
            out.append("!")
        out.append("   " * depth + ln.strip())
    return "\n".join(out) + "\n!\n" if out else ""


class _Server(paramiko.ServerInterface):
    def __init__(self, key: paramiko.PKey) -> None:
        self.key = key
        self.shell = threading.Event()

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        ok = key.get_base64() == self.key.get_base64()
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED if kind == "session" else \
            paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_pty_request(self, *args: object) -> bool:
        return True

    def check_channel_shell_request(self, channel: paramiko.Channel) -> bool:
        self.shell.set()
        return True


@dataclass
class CliServer:
    """An SSH server on 127.0.0.1 in front of one :class:`Device`."""

    device: Device
    client_key: paramiko.PKey
    host_key: paramiko.PKey
    port: int = 0
    logins: int = 0
    _sock: socket.socket | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _transports: list[paramiko.Transport] = field(default_factory=list)

    def start(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for tr in self._transports:
            tr.close()
        if self._sock is not None:
            self._sock.close()
        for t in self._threads:
            t.join(timeout=5)

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, conn: socket.socket) -> None:
        tr = paramiko.Transport(conn)
        self._transports.append(tr)
        tr.add_server_key(self.host_key)
        server = _Server(self.client_key)
        try:
            tr.start_server(server=server)
            chan = tr.accept(10)
            if chan is None or not server.shell.wait(10):
                return
            self.logins += 1
            self._shell(chan, tr)
        except (paramiko.SSHException, EOFError, OSError):
            pass
        finally:
            tr.close()

    def _shell(self, chan: paramiko.Channel, tr: paramiko.Transport) -> None:
        dev = self.device
        chan.sendall(f"Last login: {time.ctime()}\r\n{dev.prompt()}".encode())
        buf = b""
        while not self._stop.is_set():
            data = chan.recv(4096)
            if not data:
                return
            buf += data
            while b"\n" in buf or b"\r" in buf:
                cut = min(i for i in (buf.find(b"\n"), buf.find(b"\r")) if i >= 0)
                raw, buf = buf[:cut], buf[cut + 1:]
                if buf[:1] == b"\n" and raw is not None:
                    buf = buf[1:]
                line = raw.decode(errors="replace")
                with dev.lock:
                    if line.strip():
                        dev.log.append(line.strip())
                    drop = dev.drop is not None and line.strip() and \
                        re.search(dev.drop, line.strip())
                    if drop and not dev.drop_after:
                        dev.drop = None
                        tr.close()
                        return
                    out = dev.handle(line)
                    if drop:
                        dev.drop = None
                        tr.close()
                        return
                    text = line + "\r\n" + (out.replace("\n", "\r\n") + "\r\n" if out else "")
                    chan.sendall((text + dev.prompt()).encode())


def _keygen(path: Path) -> paramiko.PKey:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)],
                   check=True)
    return paramiko.Ed25519Key.from_private_key_file(str(path))


@contextmanager
def serving(device: Device, tmp: Path) -> Iterator[tuple[CliServer, Path]]:
    """A server for ``device`` and an OpenSSH client config reaching it as its hostname (the
    key and known_hosts files beside it, in ``tmp``)."""
    key = _keygen(tmp / "id")
    server = CliServer(device, key, _keygen(tmp / "host_key"))
    server.start()
    known = tmp / "known_hosts"
    known.write_text(f"[127.0.0.1]:{server.port} {server.host_key.get_name()} "
                     f"{server.host_key.get_base64()}\n")
    cfg = tmp / "ssh_config"
    cfg.write_text(f"Host {device.hostname}\n  HostName 127.0.0.1\n  Port {server.port}\n"
                   f"  User admin\n  IdentityFile {tmp / 'id'}\n  IdentitiesOnly yes\n"
                   f"  UserKnownHostsFile {known}\n")
    try:
        yield server, cfg
    finally:
        server.stop()



def cli_push(platform: Any, inventory: Path, device: str, cfg: Path) -> tuple[Any, Any]:
    """A push of ``device`` through its platform's driver over bgpgen's own CLI session (the
    fleet's code), left unconfirmed as before a verify gate: (transport, plan)."""
    from bgpgen import load_fabric, render
    from bgpgen.fleet import nornir_for, ssh_transport
    from bgpgen.netos import CliTransport
    from bgpgen.secrets import resolve_all
    from bgpgen.targets import from_inventory
    fabric = load_fabric(inventory)
    targets = from_inventory(fabric, cfg, only={device})
    nr = nornir_for([fabric.device(device)], targets, 1, 10.0)
    t = ssh_transport(nr.inventory.hosts[device], targets[device], nr.config)
    assert isinstance(t, CliTransport)
    build = render(fabric)
    values = resolve_all(build.secrets)
    p = platform.driver.plan(t, build.files_of(device), values)
    p.defer_confirm = True  # a verify gate follows
    out = platform.driver.apply(t, p, build.files_of(device), values, 5.0)
    assert out.status.value == "changed", out
    return t, p


def deploy_over(cli: Any, inventory: Path, cfg: Path, device: str, *more: str) -> Any:
    """``bgpgen deploy`` of one device of ``inventory`` through the ssh config ``cfg``."""
    return cli("deploy", "-i", str(inventory), "--ssh-config", str(cfg), "--limit", device,
               "--yes", *more)


def flat(r: Any) -> str:
    """A command's output with the result table's line wrapping undone."""
    return " ".join(str(r.out).replace("│", " ").split())


def lost_after(cli: Any, inventory: Path, cfg: Path, device: Device, command: str) -> Any:
    """Deploy with the connection dropped right after ``command`` ran on the device; the one
    device's result (JSON)."""
    import json
    device.drop = command
    r = deploy_over(cli, inventory, cfg, device.hostname, "--format", "json",
                    "--command-timeout", "3")
    assert r.code == 1, r.out
    res = json.loads(r.out[r.out.index("{"):])["results"][0]
    assert (res["status"], res["runs"]) == ("failed", "previous"), res
    assert "lost the connection" in res["message"] and "rolled back" in res["message"], res
    return res


def failed_gate(cli: Any, inventory: Path, cfg: Path, device: Device) -> Any:
    """``deploy --verify`` of one switch whose nodes are not there: the push goes in, the
    fabric's verify gate fails (the nodes' sessions are down), and bgpgen rolls the switch back.
    The device's result (JSON)."""
    import json
    r = deploy_over(cli, inventory, cfg, device.hostname, "--verify", "--timeout", "3",
                    "--format", "json")
    assert r.code == 1, r.out
    res = json.loads(r.out[r.out.index("{"):])["results"][0]
    assert (res["status"], res["runs"]) == ("rolled_back", "previous"), res
    assert "verify failed" in res["message"], res
    return res
