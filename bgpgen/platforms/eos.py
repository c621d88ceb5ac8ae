"""eos: a ToR switch running Arista EOS (inventory: a switch with ``platform: eos``).

Render: bgpgen's part of the switch in EOS's syntax (``ip prefix-list`` blocks with ``seq``
lines, route-maps, ``neighbor G peer group``, ``maximum-accepted-routes`` — counted after the
inbound policy, ``maximum-paths ... ecmp`` for anycast VIPs). A password is rendered in clear
(``password 0``) and turned into EOS's type 7 form, keyed by its peer group, before it is
compared or pushed: that is how EOS shows it back, so a no-op plan is empty and no password
crosses the wire in clear.

Plan: ``show running-config`` over the CLI session; the aimed config is the running one with
bgpgen's part replaced (:class:`~.ownership.BgpPart`); the commands that get there are
hier_config's remediation for EOS (``no`` lines first, sections exited as EOS exits them).

Push, EOS's own safety net: the commands go into a named ``configure session`` (nothing runs
yet; a refused command aborts the session: nothing changed), ``commit timer`` activates them
with a deadline, the running config is read back (nothing left to change) and the sessions
awaited; ``configure session NAME commit`` makes it final — after the fabric's verify gate when
there is one — and ``copy running-config startup-config`` saves it. Anything failing before
that: ``configure session NAME abort`` puts the previous config back; a controller that dies
leaves the timer to expire, and EOS rolls back by itself.

State: ``show ip[v6] bgp summary | json`` and ``show ip[v6] bgp | json``.
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any


from ..artifacts import Artifact
from ..changes import Action, DevicePlan
from ..errors import Problem
from ..model import Fabric, Passive, Platform, Role
from ..netos import CliError, as_cli
from ..secrets import fill, redact
from ..state import ESTABLISHED, DeviceState, Peer, RibEntry
from ..transport import RemoteError, Transport
from . import frr, ownership
from .base import (
    RUN_ID,
    Checker,
    DeployFailed,
    FileSpec,
    Outcome,
    Paths,
    PlatformSpec,
    Session,
    StateReader,
    Status,
    line_filter,
    word_filter,
    need,
    proceed,
    read_sessions,
    shown,
    wait_sessions,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers import Cipher, modes
    from ..targets import Target

CONFIG = "eos.conf"
#: not files: the switch's running config, read and changed through its CLI
PATHS = Paths("running-config", "", "")
SECRET_LINE = re.compile(r"(password (?:0|7) )(\S+)()")
SYNTAX = ownership.Syntax(closers=frozenset({"!", "end", "exit", "exit-address-family"}),
                          comment="!", skip=("Building configuration", "Current configuration",
                                             "! Command:", "! device:", "! boot system"),
                          close={}, default_close="")
#: bgpgen's part of an EOS switch: its objects (BGPGEN-*), its peer groups and their members,
#: the neighbors it renders, the ECMP lines it needs
OWN = (
    ownership.Own((r"ip prefix-list BGPGEN-\S+",), subtree=True),
    ownership.Own((r"ipv6 prefix-list BGPGEN-\S+",), subtree=True),
    ownership.Own((r"route-map BGPGEN-\S+ .*",), subtree=True),
    ownership.Own((r"router bgp {asn}", r"neighbor (?:{ours}) .*")),
    ownership.Own((r"router bgp {asn}", r"bgp bestpath as-path multipath-relax")),
    ownership.Own((r"router bgp {asn}", r"maximum-paths .*")),
    ownership.Own((r"router bgp {asn}", r"address-family .*", r"neighbor (?:{ours}) .*")),
)
PART = ownership.BgpPart(SYNTAX, OWN, group=("peer", "group"), member=("peer", "group"),
                         router_id="router-id ")
#: how long a commit stays unconfirmed before EOS rolls it back by itself
COMMIT_TIMER = 600
MANAGE_LINE = frr.MANAGE_LINE


# --- escaping ----------------------------------------------------------------------------------

eos_word = word_filter("an EOS word")

eos_line = line_filter("an EOS line", "!")


# --- type 7 passwords --------------------------------------------------------------------------
# EOS encrypts a BGP password with DES (3DES with one key) in CBC mode, IV zero, under a key
# derived from "<peer group or neighbor>_passwd"; the text is a 4-byte header (a signature and
# the padding length) and the password, zero-padded to the block size. Deterministic: the same
# password and peer group always give the same text (Kristian Köhntopp worked it out:
# https://blog.koehntopp.info/2021/11/22/arista-type-7-passwords.html).

_SEED = bytes.fromhex("d5a8c91ef5d58a23")
_SIGNATURE = bytes.fromhex("4c88bb")


def _des_key(name: str) -> bytes:
    key = bytearray(_SEED)
    for i, b in enumerate(f"{name}_passwd".encode()):
        key[i & 7] ^= b
    out = bytearray()
    for b in key:  # seven bits of each byte, the eighth their odd parity
        high = b & 0x7E
        out.append(high | (0 if bin(high).count("1") % 2 else 1))
    return bytes(out)


def _cipher(name: str) -> Cipher[modes.CBC]:
    # imported on first use: only an EOS switch with a password needs it
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes
    key = _des_key(name)
    return Cipher(TripleDES(key * 3), modes.CBC(bytes(8)))  # 3DES with one key is DES


def type7(name: str, password: str) -> str:
    """EOS's type 7 form of a BGP password of peer group (or neighbor) ``name``."""
    data = password.encode()
    pad = (8 - (len(data) + 4) % 8) % 8
    enc = _cipher(name).encryptor()
    out = enc.update(_SIGNATURE + bytes([pad * 16 + 0xE]) + data + bytes(pad)) + enc.finalize()
    return base64.b64encode(out).decode()


def type7_clear(name: str, text: str) -> str | None:
    """The password of a type 7 text, None when it is not one (another key, garbage)."""
    try:
        dec = _cipher(name).decryptor()
        raw = dec.update(base64.b64decode(text, validate=True)) + dec.finalize()
    except ValueError:
        return None
    pad = raw[3] >> 4 if len(raw) > 3 else 8
    if raw[:3] != _SIGNATURE or pad >= 8:
        return None
    return raw[4:len(raw) - pad].decode(errors="replace")


_PASSWORD = re.compile(r"^(\s*neighbor (\S+) password )0 (\S+)$", re.M)


def encrypted(text: str) -> str:
    """A filled render with each ``password 0 CLEAR`` in its type 7 form, as EOS shows it."""
    return _PASSWORD.sub(lambda m: f"{m.group(1)}7 {type7(m.group(2), m.group(3))}", text)


def masked(text: str, values: Mapping[str, str]) -> str:
    """EOS text fit to show: a type 7 password of a known secret as its token, any other
    password as ``<secret:changed>`` (type 7 is reversible: never shown)."""
    by_value = {v: k for k, v in values.items()}

    def sub(m: re.Match[str]) -> str:
        clear = type7_clear(m.group(2), m.group(3))
        name = by_value.get(clear or "", "changed")
        return f"{m.group(1)}<secret:{name}>"
    text = re.sub(r"^(\s*(?:no )?neighbor (\S+) password 7 )(\S+)", sub, text, flags=re.M)
    return shown(SECRET_LINE, text, values)


# --- the templates' context, the checker -------------------------------------------------------

context = frr.port_179_context("EOS")


def _lines(text: str) -> Counter[str]:
    return Counter(ln.strip() for ln in text.splitlines()
                   if ln.strip() and not ln.lstrip().startswith("!"))


def parse_back(text: str) -> str:
    """'' when hier_config's EOS parser reads the file back whole: every line in a block of its
    own indentation (EOS indents by three), none lost or changed."""
    for n, ln in enumerate(text.splitlines(), 1):
        indent = len(ln) - len(ln.lstrip(" "))
        if ln.strip() and not ln.lstrip().startswith("!") and indent % 3:
            return f"line {n}: indented by {indent}, not a multiple of 3: {ln.strip()[:60]}"
    back = ownership.hc_lines("ARISTA_EOS", text)
    lost = _lines(text) - _lines("\n".join(back))
    if lost:
        return f"hier_config does not read back: {next(iter(lost))[:80]}"
    return ""


# --- plan and push -----------------------------------------------------------------------------

def aim_of(name: str, rendered: str, running: str) -> str:
    """What the switch is to run: the render (manage: whole), or the running config with
    bgpgen's part replaced (manage: bgp-part)."""
    from ..model import Manage
    m = MANAGE_LINE.search(rendered)
    if m and Manage(m.group(1)) is Manage.WHOLE:
        return rendered
    return PART.target(name, running, rendered)


def remediation(running: str, aim: str) -> list[str]:
    """The commands that turn ``running`` into ``aim`` (hier_config's EOS driver), each
    section entered and exited."""
    return ownership.hc_remediation("ARISTA_EOS", running, aim, sectional_exiting=True)


_EXITS = ("exit", "exit-address-family")


def classify(commands: list[str], plan: DevicePlan) -> None:
    """The sessions a remediation touches and what activating it costs."""
    removed = [c.strip()[3:] for c in commands if c.strip().startswith("no ")]
    added = [c.strip() for c in commands if c.strip() and not c.strip().startswith("no ")
             and c.strip() not in _EXITS]
    frr.classify_delta(removed, added, plan, applied_by="the config session")


class EosDriver:
    def _aim(self, t: Transport, files: Mapping[str, Artifact], values: Mapping[str, str],
             running: str) -> str:
        return aim_of(t.target.name, encrypted(fill(need(files, CONFIG).text, values)), running)

    def plan(self, t: Transport, files: Mapping[str, Artifact],
             values: Mapping[str, str]) -> DevicePlan:
        cli = as_cli(t)
        p = DevicePlan(cli.target.name, cli.target.platform.value)
        running = cli.send("show running-config")
        commands = remediation(running, self._aim(t, files, values, running))
        if commands:
            p.diff = [masked(c, values) for c in commands]
            classify(commands, p)
            p.action = Action.UPDATE
        return p

    def apply(self, t: Transport, p: DevicePlan, files: Mapping[str, Artifact],
              values: Mapping[str, str], timeout: float) -> Outcome:
        cli = as_cli(t)
        name = cli.target.name
        running = cli.send("show running-config")
        aim = self._aim(t, files, values, running)
        commands = remediation(running, aim)
        if not commands:
            return Outcome(Status.UNCHANGED, "")
        session = f"bgpgen-{RUN_ID}"
        before = read_sessions(t, READ)
        try:
            cli.send(f"configure session {session}")
            for c in commands:
                cli.send(c)
        except CliError as exc:  # refused: nothing ran
            self._forget(cli, session)
            raise DeployFailed(Problem("", name, f"{redact(exc.problems[0].message, values)}; "
                                       "the config session was aborted: nothing changed",
                                       "")) from None
        except RemoteError as exc:
            self._forget(cli, session)
            raise DeployFailed(Problem("", name, f"{exc.problems[0].message}; the config "
                                       "session was never committed: nothing changed",
                                       "")) from None
        proceed(t, p)
        p.extra["session"] = session
        p.extra["activated"] = True
        try:
            cli.send(f"commit timer {_hms(max(COMMIT_TIMER, timeout * 4))}")
            left = remediation(cli.send("show running-config"), aim)
            if left:
                raise DeployFailed(Problem("", name, "read back: the switch does not run the "
                                           f"new config ({len(left)} commands left)", ""))
            wait_sessions(t, READ, before, timeout)
            if not p.defer_confirm:
                self.confirm(t, p)
        except RemoteError as exc:
            message = redact(exc.problems[0].message, values)
            self._abort(cli, session, timeout)
            raise DeployFailed(Problem("", name, f"{message}; the commit was rolled back "
                                       f"(configure session {session} abort)", "")) from None
        return Outcome(Status.CHANGED, p.cost_detail)

    def _forget(self, cli: Any, session: str) -> None:
        """An uncommitted session is dropped (``abort`` in it; over a new session after a lost
        one: ``no configure session``). Best effort: an uncommitted session changes nothing."""
        for command in ("abort", f"no configure session {session}"):
            try:
                cli.send(command)
                return
            except RemoteError:
                continue

    def _abort(self, cli: Any, session: str, timeout: float) -> None:
        try:
            cli.send("end")
        except RemoteError:
            pass
        try:
            cli.send(f"configure session {session} abort")
        except RemoteError as exc:
            raise DeployFailed(Problem("", cli.target.name, "could not abort the commit: "
                                       f"{exc.problems[0].message}; EOS rolls it back itself "
                                       f"when its commit timer expires", "")) from None

    def confirm(self, t: Transport, p: DevicePlan) -> None:
        cli = as_cli(t)
        session = p.extra.get("session")
        if not session:
            return
        try:
            cli.send(f"configure session {session} commit")
        except CliError as exc:  # the timer ran out: EOS already put the previous config back
            raise DeployFailed(Problem("", cli.target.name, "the confirm came too late: "
                                       f"{exc.problems[0].message}; EOS rolled the commit back "
                                       "when its timer ran out", "")) from None
        cli.send("copy running-config startup-config")

    def rollback(self, t: Transport, p: DevicePlan, timeout: float) -> None:
        session = p.extra.get("session")
        if session:
            self._abort(as_cli(t), str(session), timeout)


def _hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


# --- reading state -----------------------------------------------------------------------------

SUMMARY = ("show ip bgp summary | json", "show ipv6 bgp summary | json")
ROUTES = ("show ip bgp | json", "show ipv6 bgp | json")


def sessions_command(t: Target) -> str:
    return "\n".join(SUMMARY)


def _peers(doc: Any) -> dict[str, Any]:
    vrf = (doc.get("vrfs") or {}).get("default") or {}
    peers = vrf.get("peers") or {}
    return peers if isinstance(peers, dict) else {}


def parse_sessions(output: str) -> dict[str, str]:
    return {addr: str(v.get("peerState", "?")) for doc in frr.json_docs(output)
            for addr, v in _peers(json.loads(doc)).items()}


def state_command(t: Target, fabric: Fabric) -> str:
    return "\n".join((*SUMMARY, *ROUTES))


def parse_state(t: Target, output: str, now: float) -> DeviceState:
    docs = [json.loads(d) for d in frr.json_docs(output)]
    view = DeviceState(t.name)
    for doc in docs[:2]:
        for addr, v in _peers(doc).items():
            state = str(v.get("peerState", "?"))
            since = v.get("upDownTime")
            up = now - float(since) if state == ESTABLISHED and since else None
            view.peers[addr] = Peer(addr, state, up, None, v.get("prefixReceived"),
                                    v.get("prefixAccepted"), None)
    for doc in docs[2:4]:
        vrf = (doc.get("vrfs") or {}).get("default") or {}
        for prefix, entry in (vrf.get("bgpRouteEntries") or {}).items():
            for path in entry.get("bgpRoutePaths") or []:
                kind = path.get("routeType") or {}
                peer = (path.get("peerEntry") or {}).get("peerAddr", "")
                view.rib.append(RibEntry(prefix, path.get("nextHop", ""),
                                         "" if peer in ("", "0.0.0.0", "::") else peer,
                                         (path.get("asPathEntry") or {}).get("asPath", ""),
                                         bool(kind.get("active") or kind.get("ecmp"))))
    return view


READ = StateReader(state_command, parse_state, sessions_command, parse_sessions)


SPEC = PlatformSpec(
    platform=Platform.EOS,
    role=Role.SWITCH,
    inventory_name="eos",
    description="a ToR switch running Arista EOS",
    configured=True,
    files=(FileSpec(CONFIG, "eos/eos.conf.j2", PATHS.config),),
    context=context,
    checker=Checker((), "hier_config (EOS)", "hier-config", parse=parse_back),
    netmiko_device_type="arista_eos",
    session=Session.CLI,
    paths=PATHS,
    secret_line=SECRET_LINE,
    classify=lambda old, new, plan: classify(remediation(old, new), plan),
    driver=EosDriver(),
    state=READ,
    lab=None,
    bfd=True,
    default_originate=True,
    route_server=False,
    default_passive=Passive.NONE,
    drain=None,
    filters={"eos_word": eos_word, "eos_line": eos_line},
    part=PART.target,
    resources=None,
)
