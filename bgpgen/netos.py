"""How bgpgen talks to a network OS (EOS, NX-OS, Junos): its CLI on one interactive session.

A switch of these platforms has no shell to run commands in and no files to replace: bgpgen
drives its CLI the way an operator (and Netmiko) does, one command at a time on an interactive
session, reading each command's output up to the next prompt. :class:`CliTransport` is that
session, opened by Netmiko for the platform's device type (its prompt handling, paging and
terminal width set up) over the same SSH connection code as every other device (known_hosts,
keys, ProxyJump: :func:`bgpgen.transport.open_client`).

It also answers the :class:`~bgpgen.transport.Transport` protocol, so the fleet's generic steps
(reading state) work unchanged: ``exec`` runs CLI commands, one per line, and says whether the
device refused one. There are no files: ``read`` and ``write`` refuse.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import Problem
from .transport import CommandResult, RemoteError, open_client

if TYPE_CHECKING:
    from .targets import Target

#: what a CLI prints when it refuses a command (EOS, NX-OS: "% Invalid input"; Junos: "error:",
#: "syntax error", "unknown command")
REFUSED = re.compile(r"^\s*(% .*|error: .*|syntax error.*|unknown command.*|Invalid command.*)$",
                     re.M | re.I)


class CliError(RemoteError):
    """The device refused a command (what it printed is in the message)."""


def open_session(conn: Any, t: Target) -> None:
    """Open ``conn`` (a Netmiko connection of the platform's device type, not yet connected)
    as Netmiko would, over bgpgen's SSH client: an interactive shell, its session prepared
    (prompt found, paging off, terminal width set)."""
    from netmiko.channel import SSHChannel
    open_client(conn, t)
    conn.remote_conn = conn.remote_conn_pre.invoke_shell(term="vt100", width=511, height=1000)
    conn.remote_conn.settimeout(conn.blocking_timeout)
    conn.channel = SSHChannel(conn=conn.remote_conn, encoding=conn.encoding)
    conn.special_login_handler()
    conn._try_session_preparation()


def _lost() -> tuple[type[BaseException], ...]:
    """What a lost or stalled session raises (paramiko and Netmiko imported on first use: a
    render never needs them)."""
    import paramiko
    from netmiko.exceptions import NetmikoTimeoutException, ReadTimeout
    return (OSError, EOFError, paramiko.SSHException, NetmikoTimeoutException, ReadTimeout)


def parse_table(**kw: Any) -> list[dict[str, Any]]:
    """ntc-templates' TextFSM parse of a show command's output (``platform``, ``command``,
    ``data``), imported on first use."""
    from ntc_templates.parse import parse_output
    rows: list[dict[str, Any]] = parse_output(**kw)
    return rows


@dataclass(slots=True)
class CliTransport:
    """One CLI session on a network OS. ``reopen`` makes a new one after a lost session."""

    conn: Any
    target: Target
    command_timeout: float = 60.0
    reopen: Callable[[], Any] | None = None
    refused: re.Pattern[str] = REFUSED
    sent: list[str] = field(default_factory=list)  #: every command, in order (never shown)
    _broken: bool = False

    def _session(self) -> Any:
        if self._broken:
            if self.reopen is None:
                raise RemoteError(Problem("", self.target.name, "the CLI session was lost", ""))
            try:
                self.conn.disconnect()
            except _lost():  # a dead session may fail to close
                pass
            try:
                self.conn = self.reopen()
            except _lost() as exc:
                raise RemoteError(Problem("", self.target.name, "cannot reconnect: "
                                          + " ".join(str(exc).split())[:160], "")) from None
            self._broken = False
        return self.conn

    def send(self, command: str, timeout: float | None = None) -> str:
        """One CLI command; its output (without the echo and the prompt). A command the
        device refuses raises :class:`CliError`; a lost or stalled session
        :class:`RemoteError` (the next command opens a new one)."""
        conn = self._session()
        self.sent.append(command)
        try:
            # any prompt of the device: exec mode, a config session, its sub-modes
            prompt = re.escape(str(conn.base_prompt)) + r"[^\r\n]*[#>]"
            out: str = conn.send_command(command, read_timeout=timeout or self.command_timeout,
                                         expect_string=prompt, strip_prompt=True,
                                         strip_command=True)
        except _lost() as exc:
            self._broken = True
            channel = getattr(conn, "remote_conn", None)
            gone = channel is None or channel.closed or not channel.get_transport().is_active()
            from netmiko.exceptions import ReadTimeout
            stalled = isinstance(exc, (ReadTimeout, TimeoutError))
            what = "lost the connection" if gone or not stalled else "timed out"
            raise RemoteError(Problem("", self.target.name, f"{what} during "
                                      f"'{command.split()[0] if command.split() else ''}': "
                                      f"{' '.join(str(exc).split())[:120] or type(exc).__name__}",
                                      "")) from None
        bad = self.refused.search(out)
        if bad:
            raise CliError(Problem("", self.target.name, f"{self.target.name} refused "
                                   f"'{command.strip()[:80]}': {bad.group(1).strip()[:160]}", ""))
        return out

    # --- the Transport protocol ------------------------------------------------------------

    def exec(self, command: str, timeout: float | None = None,
             stdin: str | None = None) -> CommandResult:
        """CLI commands, one per line: their outputs one after the other; exit code 1 when
        the device refused one (its message on stderr)."""
        outs: list[str] = []
        for line in command.splitlines():
            if not line.strip():
                continue
            try:
                outs.append(self.send(line, timeout))
            except CliError as exc:
                return CommandResult(1, "\n".join(outs), exc.problems[0].message)
        return CommandResult(0, "\n".join(outs) + ("\n" if outs else ""), "")

    def read(self, path: str) -> str | None:
        raise RemoteError(Problem("", self.target.name, f"{self.target.name} is a network OS: "
                                  "bgpgen reads its config through its CLI, not as a file", ""))

    def write(self, path: str, text: str, mode: int = 0o600, owner: str | None = None) -> None:
        raise RemoteError(Problem("", self.target.name, f"{self.target.name} is a network OS: "
                                  "bgpgen configures it through its CLI, not as a file", ""))

    def rename(self, src: str, dst: str) -> None:
        self.write(dst, "")


def as_cli(t: Any) -> CliTransport:
    """The CLI session of a transport, or a one-line error: a platform whose driver needs the
    CLI got a shell transport (a Nornir host of the wrong platform)."""
    if isinstance(t, CliTransport):
        return t
    name = getattr(getattr(t, "target", None), "name", "?")
    raise RemoteError(Problem("", name, f"{name} needs a CLI session (a network OS)",
                              "give its Nornir host the platform's netmiko device type"))
