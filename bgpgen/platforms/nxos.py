"""nxos: a ToR switch running Cisco NX-OS (inventory: a switch with ``platform: nxos``).

Render: bgpgen's part in NX-OS syntax: per-node prefix-lists and inbound route-maps, a ``template
peer`` per profile and family (timers, password, BFD, ``maximum-prefix``), one ``neighbor``
section per session inheriting it, ``maximum-paths`` and ``bestpath as-path multipath-relax``
for anycast VIPs.

Passwords: NX-OS shows a BGP password back as type 3 (encrypted with a key of its own, not
reversible here). bgpgen pushes it in clear (``password 0``) and writes a keyed digest of it in
the template's description (``bgpgen peer group key:<8 hex>``: HMAC-SHA256 keyed with the
password over the switch and template names). A running template whose digest matches keeps its
type 3 line, so an unchanged password is no change; a changed one is pushed again.

Plan: ``show running-config`` over the CLI session; the aimed config is the running one with
bgpgen's part replaced; the commands are hier_config's NX-OS remediation.

Push, NX-OS's safety net with bgpgen's own deadline: ``checkpoint NAME`` of the running config,
the commands in a ``configure session`` (a refused command: ``abort``, nothing changed),
``verify`` (the check before activation), ``commit``, the config read back and the sessions
awaited. Confirmed after the fabric's verify gate (``copy running-config startup-config``, the
checkpoint removed) — but only within bgpgen's confirm deadline (NX-OS has no commit timer):
a confirm that comes later, or any failure, is ``rollback running-config checkpoint NAME``.

State: ``show ip bgp summary``, ``show bgp ipv6 unicast summary``, ``show ip bgp`` and ``show bgp
ipv6 unicast`` (parsed with ntc-templates' TextFSM templates).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any


from ..artifacts import Artifact
from ..changes import Action, Cost, DevicePlan
from ..errors import Problem
from ..model import Fabric, Manage, Passive, Platform, Role
from ..netos import as_cli, parse_table
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
    from ..targets import Target

CONFIG = "nxos.conf"
PATHS = Paths("running-config", "", "")
SECRET_LINE = re.compile(r"(password [037] )(\S+)()")
MANAGE_LINE = re.compile(r"^!bgpgen manage: (\S+)$", re.M)
#: seconds between the commit and the latest confirm bgpgen accepts (NX-OS has no timer)
CONFIRM_DEADLINE = 600.0
SYNTAX = ownership.Syntax(closers=frozenset({"!", "end", "exit"}), comment="!",
                          skip=("Building configuration", "Current configuration",
                                "!Command:", "!Running configuration", "!Time:"),
                          close={}, default_close="")
OWN = (
    ownership.Own((r"ip prefix-list BGPGEN-\S+ .*",)),
    ownership.Own((r"ipv6 prefix-list BGPGEN-\S+ .*",)),
    ownership.Own((r"route-map BGPGEN-\S+ .*",), subtree=True),
    ownership.Own((r"router bgp {asn}", r"template peer (?:{groups})"), subtree=True),
    ownership.Own((r"router bgp {asn}", r"neighbor (?:{ours})"), subtree=True),
    ownership.Own((r"router bgp {asn}", r"bestpath as-path multipath-relax")),
    ownership.Own((r"router bgp {asn}", r"address-family ipv[46] unicast", r"maximum-paths .*")),
)
DESCRIPTION = "description bgpgen peer group"


class NxosPart(ownership.BgpPart):
    """NX-OS names its peer groups ``template peer G`` and its members ``neighbor X`` sections
    that ``inherit peer G``."""

    def rules(self, intended: ownership.Tree,
              running: ownership.Tree | None = None) -> list[tuple[list[re.Pattern[str]], bool]]:
        bgp = ownership.own_bgp(intended) or "router bgp 0"
        want, have = intended.get(bgp, {}), (running or {}).get(bgp, {})
        groups = {ln.split()[2] for ln in want if ln.startswith("template peer ")}
        groups |= {ln.split()[2] for ln, sub in have.items() if ln.startswith("template peer ")
                   and any(c.startswith(DESCRIPTION) for c in sub)}
        ours = {ln.split()[1] for ln in want if ln.startswith("neighbor ")}
        ours |= {ln.split()[1] for ln, sub in have.items() if ln.startswith("neighbor ")
                 and any(c.split()[:2] == ["inherit", "peer"] and c.split()[2] in groups
                         for c in sub if len(c.split()) > 2)}
        return ownership.compile_rules(self.own, {
            "asn": re.escape(bgp.split()[2]),
            "groups": "|".join(re.escape(g) for g in sorted(groups)) or "(?!)",
            "ours": "|".join(re.escape(o) for o in sorted(ours)) or "(?!)"})


PART = NxosPart(SYNTAX, OWN, group=("peer",), member=("inherit", "peer"), router_id="router-id ")


# --- escaping ----------------------------------------------------------------------------------

nxos_word = word_filter("an NX-OS word")

nxos_line = line_filter("an NX-OS line", "!#")


# --- passwords ---------------------------------------------------------------------------------

def key_digest(device: str, template: str, password: str) -> str:
    """The keyed digest of a password that the template's description carries."""
    mac = hmac.new(password.encode(), f"bgpgen/{device}/{template}".encode(), hashlib.sha256)
    return mac.hexdigest()[:8]


def keyed(device: str, aim: str, running: str) -> str:
    """The aimed config with each bgpgen template's description carrying its password's digest,
    and the running type 3 line kept where the running digest matches (the password is
    unchanged: no change)."""
    want, have = ownership.parse(aim, SYNTAX), ownership.parse(running, SYNTAX)
    bgp = ownership.own_bgp(want)
    if bgp is None:
        return aim
    for tpl, sub in want[bgp].items():
        password = next((c for c in sub if c.startswith("password 0 ")), None)
        if not tpl.startswith("template peer ") or password is None:
            continue
        digest = key_digest(device, tpl.split()[2], password.split(None, 2)[2])
        ran = have.get(bgp, {}).get(tpl, {})
        kept = next((c for c in ran if c.startswith("password 3 ")), None)
        same = f"{DESCRIPTION} key:{digest}" in ran and kept is not None
        new: ownership.Tree = {}
        for line, children in sub.items():
            if line.startswith(DESCRIPTION):
                new[f"{DESCRIPTION} key:{digest}"] = children
            elif line == password and same and kept is not None:
                new[kept] = children
            else:
                new[line] = children
        want[bgp][tpl] = new
    return "\n".join(ownership.render(want, SYNTAX)) + "\n"


def masked(text: str, values: Mapping[str, str]) -> str:
    return shown(SECRET_LINE, text, values)


# --- plan and push -----------------------------------------------------------------------------

def aim_of(name: str, rendered: str, running: str) -> str:
    """The config the switch is to run, its passwords keyed against ``running``."""
    m = MANAGE_LINE.search(rendered)
    aim = rendered if m and Manage(m.group(1)) is Manage.WHOLE else \
        PART.target(name, running, rendered)
    return keyed(name, aim, running)


def left(name: str, rendered: str, now: str) -> list[str]:
    """What the running config ``now`` still lacks of the render (read back after a commit:
    a password pushed in clear now shows as type 3 under its digest)."""
    return remediation(now, aim_of(name, rendered, now))


def remediation(running: str, aim: str) -> list[str]:
    return ownership.hc_remediation("CISCO_NXOS", running, aim, sectional_exiting=True)


def classify(commands: list[str], plan: DevicePlan) -> None:
    """Sessions touched and the cost, from the remediation's ``neighbor`` sections and lines."""
    flat: list[str] = []
    section = ""
    for c in commands:
        body, depth = c.strip(), len(c) - len(c.lstrip())
        if depth == 2 and body.startswith(("neighbor ", "no neighbor ")):
            section = body.removeprefix("no ")
            flat.append(("no " if body.startswith("no ") else "") + f"{section} remote-as 0")
        elif depth == 2 and body.startswith("template peer "):
            section = "neighbor " + body.split()[2]
        elif depth >= 4 and section and body not in ("exit", "exit-address-family"):
            neg = body.startswith("no ")
            flat.append(("no " if neg else "") + f"{section} {body.removeprefix('no ')}")
        elif depth <= 2:
            section = ""
            if body not in ("exit",):
                flat.append(body)
    removed = [ln.removeprefix("no ") for ln in flat if ln.startswith("no ")]
    added = [ln for ln in flat if not ln.startswith("no ")]
    frr.classify_delta(removed, added, plan, applied_by="the config session")


def _running(cli: Any) -> str:
    return str(cli.send("show running-config"))


_CHECKPOINT = re.compile(r"^\d+\) (bgpgen-\S+?):?$", re.M)


def stale_checkpoints(cli: Any) -> list[str]:
    """bgpgen's checkpoints on the switch that are not this run's."""
    listed = str(cli.send("show checkpoint summary user"))
    return [c for c in _CHECKPOINT.findall(listed) if c != f"bgpgen-{RUN_ID}"]


class NxosDriver:
    def _aim(self, files: Mapping[str, Artifact], values: Mapping[str, str], name: str,
             running: str) -> str:
        return aim_of(name, fill(need(files, CONFIG).text, values), running)

    def _left(self, files: Mapping[str, Artifact], values: Mapping[str, str], cli: Any
              ) -> list[str]:
        return left(cli.target.name, fill(need(files, CONFIG).text, values), _running(cli))

    def plan(self, t: Transport, files: Mapping[str, Artifact],
             values: Mapping[str, str]) -> DevicePlan:
        cli = as_cli(t)
        p = DevicePlan(cli.target.name, cli.target.platform.value)
        running = _running(cli)
        commands = remediation(running, self._aim(files, values, cli.target.name, running))
        if commands:
            p.diff = [masked(c, values) for c in commands]
            classify(commands, p)
            p.action = Action.UPDATE
        # NX-OS has no commit timer: a run that died between its commit and its confirm left
        # its checkpoint (the config before it) on the switch, and the switch runs its push
        stale = stale_checkpoints(cli)
        if stale:
            p.extra["stale"] = stale
            p.diff += [f"! checkpoint {c}: left by an earlier run that never confirmed or "
                       "rolled back its push (the switch runs what it pushed); removed"
                       for c in stale]
            p.raise_cost(Cost.HITLESS, "stale checkpoints of earlier runs removed")
            p.action = Action.UPDATE
        return p

    def apply(self, t: Transport, p: DevicePlan, files: Mapping[str, Artifact],
              values: Mapping[str, str], timeout: float) -> Outcome:
        cli = as_cli(t)
        name = cli.target.name
        running = _running(cli)
        aim = self._aim(files, values, name, running)
        commands = remediation(running, aim)
        for stale in p.extra.get("stale") or ():
            proceed(t, p)
            cli.send(f"no checkpoint {stale}")
        if not commands:
            return Outcome(Status.CHANGED if p.extra.get("stale") else Status.UNCHANGED,
                           "stale checkpoints removed" if p.extra.get("stale") else "")
        checkpoint = f"bgpgen-{RUN_ID}"
        before = read_sessions(t, READ)
        cli.send(f"checkpoint {checkpoint}")
        try:
            cli.send(f"configure session {checkpoint}")
            for c in commands:
                cli.send(c)
            cli.send("verify")
        except RemoteError as exc:
            self._abort(cli, checkpoint)
            raise DeployFailed(Problem("", name, f"{redact(exc.problems[0].message, values)}"
                                       "; the config session was aborted: nothing changed",
                                       "")) from None
        proceed(t, p)
        p.extra["checkpoint"] = checkpoint
        p.extra["activated"] = True
        p.extra["committed_at"] = time.time()
        try:
            cli.send("commit")
            missing = self._left(files, values, cli)
            if missing:
                raise DeployFailed(Problem("", name, "read back: the switch does not run the "
                                           f"new config ({len(missing)} commands left)", ""))
            wait_sessions(t, READ, before, timeout)
            if not p.defer_confirm:
                self.confirm(t, p)
        except RemoteError as exc:
            message = redact(exc.problems[0].message, values)
            self._rollback(cli, checkpoint)
            raise DeployFailed(Problem("", name, f"{message}; rolled back (rollback "
                                       f"running-config checkpoint {checkpoint})",
                                       "")) from None
        return Outcome(Status.CHANGED, p.cost_detail)

    def _abort(self, cli: Any, checkpoint: str) -> None:
        for command in ("abort", f"no checkpoint {checkpoint}"):
            try:
                cli.send(command)
            except RemoteError:
                continue

    def _rollback(self, cli: Any, checkpoint: str) -> None:
        try:
            cli.send("end")
        except RemoteError:
            pass
        try:
            cli.send(f"rollback running-config checkpoint {checkpoint}", timeout=300)
            cli.send(f"no checkpoint {checkpoint}")
        except RemoteError as exc:
            raise DeployFailed(Problem("", cli.target.name, "could not roll back: "
                                       f"{exc.problems[0].message}; the checkpoint {checkpoint} "
                                       "is kept on the switch", "")) from None

    def confirm(self, t: Transport, p: DevicePlan) -> None:
        cli = as_cli(t)
        checkpoint = p.extra.get("checkpoint")
        if not checkpoint:
            return
        late = time.time() - float(p.extra.get("committed_at") or 0)
        if late > CONFIRM_DEADLINE:
            self._rollback(cli, str(checkpoint))
            raise DeployFailed(Problem("", cli.target.name, f"the confirm came {late:.0f} s "
                                       f"after the commit, past bgpgen's deadline of "
                                       f"{CONFIRM_DEADLINE:.0f} s: rolled back to the "
                                       f"checkpoint {checkpoint}", ""))
        cli.send("copy running-config startup-config", timeout=300)
        cli.send(f"no checkpoint {checkpoint}")

    def rollback(self, t: Transport, p: DevicePlan, timeout: float) -> None:
        checkpoint = p.extra.get("checkpoint")
        if checkpoint:
            self._rollback(as_cli(t), str(checkpoint))


# --- reading state -----------------------------------------------------------------------------

SUMMARY = ("show ip bgp summary", "show bgp ipv6 unicast summary")
ROUTES = ("show ip bgp", "show bgp ipv6 unicast")



def sessions_command(t: Target) -> str:
    return "\n".join(SUMMARY)


def _peers(text: str) -> dict[str, Peer]:
    out: dict[str, Peer] = {}
    for r in parse_table(platform="cisco_nxos", command="show ip bgp summary", data=text):
        word = r["state_pfxrcd"]
        up = word.isdigit()
        out[r["bgp_neigh"]] = Peer(r["bgp_neigh"], ESTABLISHED if up else word.split()[0],
                                   None, None, int(word) if up else None,
                                   int(word) if up else None, None)
    return out


def parse_sessions(output: str) -> dict[str, str]:
    return {a: p.state for a, p in _peers(output).items()}


def state_command(t: Target, fabric: Fabric) -> str:
    return "\n".join((*SUMMARY, *ROUTES))


def parse_state(t: Target, output: str, now: float) -> DeviceState:
    """The summaries' text, then the tables' (a table starts with "BGP routing table")."""
    at = output.find("BGP routing table")
    summaries, tables = (output[:at], output[at:]) if at >= 0 else (output, "")
    view = DeviceState(t.name)
    view.peers = _peers(summaries)
    for r in parse_table(platform="cisco_nxos", command="show ip bgp", data=tables):
        # the peer is the next hop: nodes peer from the address they announce as next hop
        view.rib.append(RibEntry(r["network"], r["next_hop"], r["next_hop"], r["as_path"],
                                 r["path_selection"].strip() in (">", "|")))
    return view


READ = StateReader(state_command, parse_state, sessions_command, parse_sessions)


context = frr.port_179_context("NX-OS")


def parse_back(text: str) -> str:
    """'' when hier_config's NX-OS parser reads the file back whole (two spaces a level)."""
    for n, ln in enumerate(text.splitlines(), 1):
        indent = len(ln) - len(ln.lstrip(" "))
        if ln.strip() and not ln.lstrip().startswith("!") and indent % 2:
            return f"line {n}: indented by {indent}, not a multiple of 2: {ln.strip()[:60]}"
    back = {ln.strip() for ln in ownership.hc_lines("CISCO_NXOS", text)}
    lost = [ln.strip() for ln in text.splitlines()
            if ln.strip() and not ln.lstrip().startswith("!") and ln.strip() not in back]
    return f"hier_config does not read back: {lost[0][:80]}" if lost else ""


SPEC = PlatformSpec(
    platform=Platform.NXOS,
    role=Role.SWITCH,
    inventory_name="nxos",
    description="a ToR switch running Cisco NX-OS",
    configured=True,
    files=(FileSpec(CONFIG, "nxos/nxos.conf.j2", PATHS.config),),
    context=context,
    checker=Checker((), "hier_config (NX-OS)", "hier-config", parse=parse_back),
    netmiko_device_type="cisco_nxos",
    session=Session.CLI,
    paths=PATHS,
    secret_line=SECRET_LINE,
    classify=lambda old, new, plan: classify(remediation(old, new), plan),
    driver=NxosDriver(),
    state=READ,
    lab=None,
    bfd=True,
    default_originate=True,
    route_server=False,
    default_passive=Passive.NONE,
    drain=None,
    filters={"nxos_word": nxos_word, "nxos_line": nxos_line},
    part=PART.target,
    resources=None,
)
