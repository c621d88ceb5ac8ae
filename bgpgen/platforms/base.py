"""The platform contract: everything bgpgen knows about one platform, in one :class:`PlatformSpec`.

Every field is required, so a platform module that forgets a hook fails the type check (and its
construction), never falls back to another platform's behaviour. A hook that a platform really
does not have is an explicit ``None`` (``drain``), which callers turn into a clear refusal.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from ..artifacts import Artifact
from ..changes import DevicePlan
from ..errors import Problem, RenderError
from ..model import Device, Fabric, Node, Passive, Platform, Role
from ..netutil import Network
from ..secrets import redact
from ..state import ESTABLISHED, DeviceState
from ..transport import RemoteError, Transport

if TYPE_CHECKING:
    from ..targets import Target

Context = Callable[[Fabric, Device], dict[str, Any]]
#: This run's mark in temporary names on devices: two runs never share a candidate file.
RUN_ID = f"{os.getpid()}-{secrets.token_hex(3)}"


class DeployFailed(RemoteError):
    """A push failed on one device; the device was restored (or left untouched)."""


class RestoreFailed(DeployFailed):
    """A push failed on one device and its previous config could not be confirmed back."""


class Interrupted(DeployFailed):
    """The deploy was interrupted before this device's push was activated: untouched."""


class Status(StrEnum):
    """What a push did to one device."""

    CHANGED = "changed"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    SKIPPED = "skipped"  #: not pushed: the deploy was interrupted first


class Runs(StrEnum):
    """Which config a device runs after a deploy, file and daemon agreeing (as far as bgpgen
    could confirm: ``unknown`` says it could not, and why is in the message)."""

    NEW = "new"
    PREVIOUS = "previous"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    message: str = ""


def proceed(t: Transport, p: DevicePlan) -> None:
    """The last point before a push activates anything: an interrupted deploy stops here."""
    if p.stop is not None and p.stop.is_set():
        raise Interrupted(Problem("", t.target.name, "interrupted before activation: "
                                  "left untouched", ""))


def persist(t: Transport, what: str, step: Callable[[], None], seconds: float) -> None:
    """Run a restoring ``step`` until it succeeds or ``seconds`` pass: a daemon or a session
    that stalls for a while gets its previous config back once it answers again.
    Raises :class:`RestoreFailed` saying what is left where."""
    deadline = time.monotonic() + max(seconds, 1.0)
    while True:
        try:
            step()
            return
        except RemoteError as exc:
            if time.monotonic() > deadline:
                raise RestoreFailed(Problem("", t.target.name, f"{what} failed for "
                                            f"{seconds:.0f} s: {exc.problems[0].message}",
                                            "")) from None
        time.sleep(1.0)


@dataclass(frozen=True, slots=True)
class FileSpec:
    """One file a device gets: from a template, or built in Python (``build``)."""

    name: str
    template: str | None
    target: str  #: where the file lives on a device (Debian's path)
    build: Callable[[Fabric, Device], str] | None = None
    mode: int = 0o600           #: on the device: never world-readable when it holds a secret
    owner: str = "root:root"    #: on the device: the daemon's user must be able to read it
    #: applied to the rendered text: a mark the daemon can be asked about (BIRD's digest)
    stamp: Callable[[str], str] | None = None


@dataclass(frozen=True, slots=True)
class Paths:
    """Where the platform's files and sockets are on a target (real fleet defaults)."""

    config: str   #: the daemon's main config file
    run: str      #: runtime directory: BIRD's control socket, FRR's vty sockets
    confdir: str  #: FRR's config directory (frr-reload --confdir)


@dataclass(frozen=True, slots=True)
class Checker:
    """The daemon's own syntax checker; ``{file}`` and ``{dir}`` are filled in. A platform
    with no checker that runs here (a vendor OS) parses its files back in Python instead:
    ``parse`` (text -> '' when it parses back, else what is wrong), named ``binary``."""

    argv: tuple[str, ...]
    binary: str
    package: str  #: the Debian package that ships it
    #: files the checker expects in its scratch directory ``{dir}``: name -> text
    scratch: Mapping[str, str] = field(default_factory=dict)
    parse: Callable[[str], str] | None = None


class Session(StrEnum):
    """How bgpgen talks to a device of this platform."""

    #: a Linux host (gobgpd, BIRD, FRR, Cumulus, SONiC): commands on exec channels with their
    #: exit codes, files over SFTP, a lock file while it is pushed
    SHELL = "shell"
    #: a network OS's CLI on one interactive session, as Netmiko drives it (EOS, NX-OS,
    #: Junos): show commands and config sessions, the platform's own commit and rollback
    CLI = "cli"


class Driver(Protocol):
    """Plan and push, the safest way the platform has."""

    def plan(self, t: Transport, files: Mapping[str, Artifact],
             values: Mapping[str, str]) -> DevicePlan: ...

    def apply(self, t: Transport, p: DevicePlan, files: Mapping[str, Artifact],
              values: Mapping[str, str], timeout: float) -> Outcome: ...

    def confirm(self, t: Transport, p: DevicePlan) -> None:
        """Make a push final. After a verified fabric only."""

    def rollback(self, t: Transport, p: DevicePlan, timeout: float) -> None:
        """Put the previous config back after a push that the fabric's verify rejected."""


@dataclass(frozen=True, slots=True)
class StateReader:
    """How to read a device's sessions and RIB, and how to parse what it prints."""

    #: one shell command printing everything verify needs
    command: Callable[[Target, Fabric], str]
    #: its output -> the normalised view (raises ValueError / KeyError on garbage)
    parse: Callable[[Target, str, float], DeviceState]
    #: a cheaper command printing session states only
    sessions_command: Callable[[Target], str]
    parse_sessions: Callable[[str], dict[str, str]]


@dataclass(frozen=True, slots=True)
class Daemon:
    """One process the lab runs for a device, as a service manager would. ``name`` is also
    its unit for the lab's ``systemctl``; paths in ``argv`` and ``ready`` are the device's."""

    name: str
    argv: tuple[str, ...]
    ready: dict[str, Any]   #: {"listen": port} or {"path": file inside the device}
    after: str = ""         #: start once this daemon of the same device is ready


class DeviceFiles(Protocol):
    """A lab device's filesystem, seen from the host (:class:`bgpgen.lab.mounts.DeviceFs`)."""

    def path(self, inside: str) -> Path:
        """Where a file of the device is on the host."""
        ...

    def mkdirs(self, inside: str) -> Path:
        """:meth:`path`, with its parent directories made (owned as on the host)."""
        ...


@dataclass(frozen=True, slots=True)
class LabSetup:
    """What the lab runs for a device of this platform."""

    #: the daemons (the lab adds the sshd)
    daemons: Callable[[Device], list[Daemon]]
    #: a config with no sessions: what a freshly installed device runs
    bootstrap: Callable[[Device], str]
    #: extra files on the device before the daemons start; returns commands to run once they
    #: are ready (e.g. loading routes)
    prepare: Callable[[Device, DeviceFiles, Mapping[str, Artifact]], list[tuple[str, ...]]]
    #: binaries the lab needs -> Debian package
    binaries: Mapping[str, str]
    #: the user the daemons run as (their runtime directory is theirs), None: root
    user: str | None
    #: a second SSH port offering the device's own CLI (``prepare`` installs it as
    #: ``/usr/local/sbin/bgpgen-device-cli``), None: none
    cli_port: int | None
    #: the config of a spine bgpgen does not manage, run on this platform by the lab (its
    #: sessions to the ToRs' uplinks); None: the lab does not run spines on this platform
    spine: Callable[[Fabric, Device], str] | None


@dataclass(frozen=True, slots=True)
class PlatformSpec:
    """Everything about one platform. Every field is required: see the module docstring."""

    platform: Platform
    role: Role
    inventory_name: str          #: how the inventory names it (a switch platform, a speaker)
    description: str
    #: bgpgen renders, pushes and reads this device. False: a speaker someone else runs (a
    #: program of one's own, a Kubernetes speaker configured through cluster resources): no
    #: files, no target, no push; verify judges its sessions from the switches' side alone
    configured: bool
    files: tuple[FileSpec, ...]
    #: the templates' context: a function of the device, its sessions and the devices at their
    #: other ends (and the fabric's name), nothing else: the input digest that lets a re-render
    #: skip a device covers exactly those (bgpgen.inputs)
    context: Context
    checker: Checker
    netmiko_device_type: str
    session: Session
    paths: Paths
    secret_line: re.Pattern[str]  #: groups: before, password, after
    #: offline classification of a change (old text, new text) into sessions touched and cost
    classify: Callable[[str, str, DevicePlan], None]
    driver: Driver
    state: StateReader
    #: what a lab runs for it; None: no lab can run it here (a vendor OS without an image):
    #: ``lab up`` refuses such a device in one line
    lab: LabSetup | None
    #: feature limits the semantic checks enforce
    bfd: bool
    default_originate: bool
    #: a switch that reflects every client's routes to the other clients
    route_server: bool
    default_passive: Passive
    #: graceful shutdown on (True) or off (False); None: the platform cannot drain
    drain: Callable[[Transport, Device, bool], None] | None
    #: Jinja2 filters that escape (or refuse) a value for this platform's syntax
    filters: Mapping[str, Callable[[object], str]]
    #: bgpgen's part of a switch of this platform (``manage: bgp-part``): (device name, its
    #: running config, the render) -> the config a push aims at: the running config with
    #: bgpgen's part replaced. None: the platform pushes whole configs only
    part: Callable[[str, str, str], str] | None
    #: the Kubernetes objects a speaker bgpgen does not configure itself reads (MetalLB,
    #: Calico, Cilium, OpenELB): (fabric, its nodes of this platform) -> objects, rendered into
    #: the build's _kubernetes/ directory. None: none (every other platform)
    resources: Callable[[Fabric, tuple[Node, ...]], list[dict[str, Any]]] | None

    @property
    def config_file(self) -> str:
        """The artifact that is the daemon's main config (what the checker reads)."""
        return next(f.name for f in self.files if f.target == self.paths.config)


# --- helpers platform modules share ------------------------------------------------------------

def escape_error(what: str, value: object) -> RenderError:
    """A value a template cannot write safely in this syntax."""
    return RenderError(Problem("", "", f"{value!r} cannot be written as {what}",
                               "remove quotes, backslashes and control characters"))


def control_chars(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def word_filter(what: str) -> Callable[[object], str]:
    """A template filter for one word of a CLI syntax: no white space or control characters."""
    def word(value: object) -> str:
        text = str(value)
        if not text or any(c.isspace() for c in text) or control_chars(text):
            raise escape_error(what, text)
        return text
    return word


def line_filter(what: str, comments: str) -> Callable[[object], str]:
    """A template filter for the rest of a CLI line (a description): no control characters,
    no leading comment character (``comments``)."""
    def line(value: object) -> str:
        text = str(value).strip()
        if control_chars(text):
            raise escape_error(what, text)
        return text.lstrip(comments) or "-"
    return line


def mask(secret_line: re.Pattern[str], text: str, values: Mapping[str, str]) -> str:
    """Device text with every password value replaced: a known value by its token, any other
    by ``<secret:changed>``. Nothing that leaves this function holds a secret."""
    by_value = {v: k for k, v in values.items()}

    def sub(m: re.Match[str]) -> str:
        value = m.group(2)
        if value.startswith("<secret:"):
            return m.group(0)
        return f"{m.group(1)}<secret:{by_value.get(value, 'changed')}>{m.group(3)}"
    return secret_line.sub(sub, text)


def shown(secret_line: re.Pattern[str], text: str, values: Mapping[str, str]) -> str:
    """Device text fit to show: known secret values as tokens, any other password masked."""
    return mask(secret_line, redact(text, values), values)


def need(files: Mapping[str, Artifact], name: str) -> Artifact:
    art = files.get(name)
    if art is None:  # pragma: no cover - the platform's own FileSpecs guarantee the file
        raise KeyError(name)
    return art


def read_sessions(t: Transport, reader: StateReader) -> dict[str, str] | None:
    """Peer -> state, or None when the daemon does not answer (or answers garbage)."""
    try:
        res = t.exec(reader.sessions_command(t.target))
        return reader.parse_sessions(res.stdout) if res.ok else None
    except (RemoteError, ValueError, KeyError, TypeError, AttributeError):
        return None


def wait_sessions(t: Transport, reader: StateReader, before: dict[str, str] | None,
                  timeout: float) -> None:
    """Every session that was Established before the push is Established again in time (a
    daemon that does not answer has not re-established anything)."""
    needed = {peer for peer, state in (before or {}).items() if state == ESTABLISHED}
    if not needed:
        return
    deadline = time.monotonic() + timeout
    while True:
        now = read_sessions(t, reader)
        down = (sorted(p for p in needed if p in now and now[p] != ESTABLISHED)
                if now is not None else ["(the daemon does not answer)"])
        if not down:
            return
        if time.monotonic() > deadline:
            raise DeployFailed(Problem("", t.target.name, f"sessions did not re-establish "
                                       f"within {timeout:.0f} s: {', '.join(down)}", ""))
        time.sleep(0.5)


def last_error(text: str) -> str:
    """The line of a checker's output that says what is wrong (gobgpd logs JSON lines)."""
    # frr-reload logs "2026-11-27 01:53:30,704  ERROR: ..." lines: its errors say it
    lines = [re.sub(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\s+", "", ln)
             for ln in text.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("ERROR:", "CRITICAL:"))]
    if errors:
        return errors[-1][:300]
    for ln in reversed(lines):
        try:
            entry = json.loads(ln)
        except ValueError:
            return ln.strip()[:300]
        if isinstance(entry, dict) and entry.get("level") in ("fatal", "error"):
            return " ".join(str(entry.get("Error") or entry.get("msg")).split())[:300]
    return (lines or ["no output"])[-1][:300]


def set_sessions(plan: DevicePlan, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """Sessions added / removed / changed between two maps of peer -> its settings."""
    plan.sessions_added = sorted(set(new) - set(old))
    plan.sessions_removed = sorted(set(old) - set(new))
    plan.sessions_changed = sorted(k for k in set(old) & set(new) if old[k] != new[k])


def own_prefixes(node: Node) -> list[tuple[str, tuple[Network, ...]]]:
    """What a node originates, per address family that has something."""
    return [(fam, node.prefixes(fam)) for fam in ("ipv4", "ipv6") if node.prefixes(fam)]


def node_context(fabric: Fabric, device: Device) -> dict[str, Any]:
    """The templates' context for a node's speaker (gobgp, BIRD)."""
    assert isinstance(device, Node)
    own = own_prefixes(device)
    return {"sessions": fabric.sessions_of(device.name), "own": own,
            "own_families": {fam for fam, _ in own},
            "next_hop": {fam: str(addr) for fam, addr in device.next_hop}}
