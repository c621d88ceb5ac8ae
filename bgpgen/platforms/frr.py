"""frr: a ToR switch running FRR (inventory: a switch with ``platform: frr``).

Plan: ``frr-reload.py --test`` against the candidate (fed on stdin into a private temporary
file); push: ``frr-reload.py --reload`` with the running config kept first
(``frr.conf.bgpgen-prev``), read back with ``--test`` (nothing left to change), and the running
config saved as ``frr.conf`` (what FRR loads when it starts); undo: a reload of the kept config,
saved again. State: ``vtysh`` JSON; drift: ``frr.conf`` written by bgpgen against ``show
running-config``.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..artifacts import Artifact
from ..changes import Action, Cost, DevicePlan
from ..errors import Problem, RenderError
from ..model import Device, Fabric, Manage, Node, Passive, Platform, Profile, Role, Switch
from ..netutil import Network
from ..secrets import fill, redact
from ..state import ESTABLISHED, DeviceState, Peer, RibEntry
from ..transport import RemoteError, Transport, check, shell
from . import ownership
from .ownership import Own, Syntax
from .base import (
    Session,
    RUN_ID,
    Checker,
    Context,
    Daemon,
    DeployFailed,
    FileSpec,
    DeviceFiles,
    LabSetup,
    Outcome,
    Paths,
    PlatformSpec,
    StateReader,
    Status,
    line_filter,
    word_filter,
    last_error,
    need,
    own_prefixes,
    persist,
    proceed,
    read_sessions,
    shown,
    wait_sessions,
)

if TYPE_CHECKING:
    from ..targets import Target

CONFIG = "frr.conf"
PREV = ".bgpgen-prev"
#: the first line of a frr.conf that bgpgen saved from the running config
SAVED = "! Saved by bgpgen from the running config (show running-config)"
SEP = "@@bgpgen@@"
CONFIG_MARK = "@@bgpgen-config@@"
PATHS = Paths("/etc/frr/frr.conf", "/var/run/frr", "/etc/frr")
SECRET_LINE = re.compile(r"(password )(\S+)()")
FRR_RELOAD = "/usr/lib/frr/frr-reload.py"
FRR_BIN = "/usr/lib/frr"
CONFIG_FILE = FileSpec(CONFIG, "frr/frr.conf.j2", PATHS.config, mode=0o640, owner="frr:frr")
#: the first line of every rendered frr.conf: how much of the switch bgpgen manages
MANAGE_LINE = re.compile(r"^! bgpgen manage: (\S+)$", re.M)
#: FRR's config as a tree: what closes a block, what is a comment, what is not config
SYNTAX = Syntax(closers=frozenset({"!", "exit", "exit-address-family", "exit-vrf", "end",
                                   "exit-vnc"}),
                comment="!", skip=("Building configuration", "Current configuration"),
                close={"address-family ": "exit-address-family", "vrf ": "exit-vrf",
                       "route-map ": "exit", "router ": "exit", "interface ": "exit"},
                default_close="exit")
#: bgpgen's part of an FRR switch (manage: bgp-part): its objects (BGPGEN-*), the peer groups
#: it renders or made ("description bgpgen peer group") and their members, the neighbors it
#: renders ({ours}), the ECMP line it needs; never router bgp itself, its router-id or its
#: other settings, interfaces, other neighbors or peer groups.
OWN = (
    Own((r"ip prefix-list BGPGEN-\S+ .*",)),
    Own((r"ipv6 prefix-list BGPGEN-\S+ .*",)),
    Own((r"route-map BGPGEN-\S+ .*",), subtree=True),
    Own((r"router bgp {asn}", r"neighbor (?:{ours}) .*")),
    Own((r"router bgp {asn}", r"bgp bestpath as-path multipath-relax")),
    Own((r"router bgp {asn}", r"address-family .*", r"neighbor (?:{ours}) .*")),
)
CLI_PORT = 8022  #: the switch CLI (vtysh) over SSH in the lab, the way Netmiko drives a switch
#: the line before the JSON answers that names the peers whose received routes follow them
RECEIVED = "@@bgpgen-received@@"


# --- escaping ----------------------------------------------------------------------------------

frr_word = word_filter("an FRR word")

frr_line = line_filter("an FRR line", "!#")


# --- the templates' context --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class FrrPeer:
    """A node as an FRR switch sees it: its prefixes, and its prefix-list and route-map names
    per family (a family without prefixes has a route-map but no prefix-list)."""

    name: str
    own: tuple[tuple[str, tuple[Network, ...]], ...]
    families: tuple[str, ...]
    prefix_list: dict[str, str]
    route_map: dict[str, str]


@dataclass(frozen=True, slots=True)
class FrrGroup:
    name: str
    family: str
    profile: Profile


_TAG = {"ipv4": "V4", "ipv6": "V6"}


def _peer(node: Node, families: tuple[str, ...]) -> FrrPeer:
    own = tuple(own_prefixes(node))
    return FrrPeer(node.name, own, families,
                   {fam: f"BGPGEN-{node.name}-{_TAG[fam]}" for fam, _ in own},
                   {fam: f"BGPGEN-{node.name}-IN-{_TAG[fam]}" for fam in families})


def context(fabric: Fabric, device: Device) -> dict[str, Any]:
    sessions = fabric.sessions_of(device.name)
    peers: dict[str, FrrPeer] = {}
    groups: dict[str, FrrGroup] = {}
    group_of: dict[str, str] = {}
    route_map_of: dict[str, str] = {}
    fams: dict[str, set[str]] = {}
    for s in sessions:
        fams.setdefault(s.node, set()).add(s.family)
    for s in sessions:
        node = fabric.device(s.node)
        assert isinstance(node, Node)
        if s.node not in peers:
            peers[s.node] = _peer(node, tuple(sorted(fams[s.node])))
        gname = f"{s.profile.peer_group}-{_TAG[s.family]}"
        groups.setdefault(gname, FrrGroup(gname, s.family, s.profile))
        group_of[s.id] = gname
        route_map_of[s.id] = peers[s.node].route_map[s.family]
    gr = max((s.profile.restart_time for s in sessions if s.profile.graceful_restart), default=0)
    manage = device.manage if isinstance(device, Switch) else Manage.WHOLE
    return {"sessions": sessions, "peers": list(peers.values()), "manage": str(manage),
            "groups": sorted(groups.values(), key=lambda g: g.name),
            "group_of": group_of, "route_map_of": route_map_of, "graceful_restart": gr,
            "families": sorted({s.family for s in sessions})}


# --- classification ----------------------------------------------------------------------------

_NBR = re.compile(r"^\s*neighbor (\S+) (\S+)")
_RESETTING = ("password", "timers", "port", "ebgp-multihop", "passive", "update-source",
              "local-as")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def classify(old: str, new: str, plan: DevicePlan) -> None:
    """Two whole configs: classify the lines that differ."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    old_set, new_set = set(old_lines), set(new_lines)
    classify_delta([ln for ln in old_lines if ln not in new_set],
                   [ln for ln in new_lines if ln not in old_set], plan)


def classify_delta(removed: list[str], added: list[str], plan: DevicePlan,
                   applied_by: str = "frr-reload") -> None:
    """Lines to delete and lines to add: sessions touched and the cost of the change
    (``applied_by``: what applies the delta, as the plan says it)."""
    removed = [ln for ln in removed if ln.strip()]
    added = [ln for ln in added if ln.strip()]

    def remote_as(lines: list[str]) -> set[str]:
        return {m.group(1) for ln in lines if (m := _NBR.match(ln)) and m.group(2) == "remote-as"}
    ra, rr = remote_as(added), remote_as(removed)
    plan.sessions_added = sorted(ra - rr)
    plan.sessions_removed = sorted(rr - ra)
    touched = {m.group(1) for ln in added + removed if (m := _NBR.match(ln))
               and m.group(2) in _RESETTING}
    peers = {x for x in touched | (ra & rr) if _is_ip(x)}
    groups = sorted(x for x in touched if not _is_ip(x))
    plan.sessions_changed = sorted(peers - set(plan.sessions_added) - set(plan.sessions_removed))
    if plan.sessions_changed:
        plan.raise_cost(Cost.RESET, "these sessions reset: " + ", ".join(plan.sessions_changed))
    if groups and (rr or not ra):
        plan.raise_cost(Cost.RESET, "peer-group settings change (members reset): "
                        + ", ".join(groups))
    if any("route-map" in ln or "prefix-list" in ln for ln in added + removed):
        plan.raise_cost(Cost.SOFT, "inbound policy re-applied (soft reset), sessions stay up")
    if plan.sessions_removed:
        plan.raise_cost(Cost.RESET, "removed sessions go down: "
                        + ", ".join(plan.sessions_removed))
    if added or removed:
        plan.raise_cost(Cost.HITLESS, f"{applied_by} applies the delta; new neighbors are "
                        "hitless")


# --- reading state -----------------------------------------------------------------------------

def _vtysh(t: Target, *commands: str) -> str:
    argv = ["vtysh", "--vty_socket", t.run]
    for c in commands:
        argv += ["-c", c]
    return shell(argv)


def sessions_command(t: Target) -> str:
    return _vtysh(t, "show bgp summary json")


def parse_sessions(output: str) -> dict[str, str]:
    peers: dict[str, str] = {}
    for af in json.loads(output or "{}").values():
        for peer, v in (af.get("peers") or {}).items() if isinstance(af, dict) else ():
            peers[peer] = v.get("state", "?")
    return peers


def state_command_with(running: str) -> Callable[[Target, Fabric], str]:
    """The state command of an FRR switch whose running config (of what bgpgen compares with
    its saved file) ``running`` prints."""
    def state_command(t: Target, fabric: Fabric) -> str:
        # One vtysh for the JSON commands: its answers follow each other (what each node sent,
        # before the inbound policy, last: its peers are listed first, in order). Then what
        # runs and the saved file, compared in memory (never shown). The exit code is the JSON
        # vtysh's, last.
        peers = [(s.family, str(s.node_address)) for s in fabric.sessions_of(t.name)
                 if s.switch == t.name]
        received = [f"show bgp {fam} unicast neighbors {addr} received-routes json"
                    for fam, addr in peers]
        return (f"echo {CONFIG_MARK}; cat -- {shell([t.config])}; echo {SEP}; "
                + _vtysh(t, running) + f"; echo {SEP}; "
                + f"echo {shell([RECEIVED, *(a for _, a in peers)])}; "
                + _vtysh(t, "show bgp summary json", "show bgp ipv4 unicast json",
                         "show bgp ipv6 unicast json", *received))
    return state_command


state_command = state_command_with("show running-config")


def body(text: str) -> list[str]:
    """A config's lines as ``show running-config`` prints them, without its headers."""
    skip = ("Building configuration", "Current configuration", SAVED)
    return [ln for ln in text.splitlines() if ln.strip() and not ln.startswith(skip)]


def saved(running: str) -> str:
    """The text bgpgen saves as frr.conf: the running config, marked as saved by bgpgen."""
    return SAVED + "\n" + "\n".join(body(running)) + "\n"


def apart(file_text: str | None, running: str) -> str:
    """'' when a frr.conf bgpgen saved equals what runs (or the file is not bgpgen's)."""
    if file_text is None or not file_text.startswith(SAVED):
        return ""
    if body(file_text) == body(running):
        return ""
    return (f"{CONFIG} differs from the running config ({len(body(file_text))} saved lines, "
            f"{len(body(running))} running): a restart of FRR would change its BGP")


def json_docs(text: str) -> list[str]:
    """Consecutive JSON documents (what vtysh prints for several -c) as separate texts.

    >>> json_docs('{"a": 1}\\n{"b": [2]}\\n')
    ['{"a": 1}', '{"b": [2]}']
    """
    dec = json.JSONDecoder()
    docs, i = [], 0
    while i < len(text):
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        _, end = dec.raw_decode(text, i)
        docs.append(text[i:end])
        i = end
    return docs


def parse_state_with(apart: Callable[[str | None, str], str]
                     ) -> Callable[[Target, str, float], DeviceState]:
    """The parser of :func:`state_command_with`'s output; ``apart`` says whether the saved
    file and the running config differ ('' when they agree)."""
    def parse(t: Target, output: str, now: float) -> DeviceState:
        return _parse_state(t, output, now, apart)
    return parse


def parse_state(t: Target, output: str, now: float) -> DeviceState:
    return _parse_state(t, output, now, apart)


def _parse_state(t: Target, output: str, now: float,
                 apart: Callable[[str | None, str], str]) -> DeviceState:
    chunks = output.split(SEP + "\n")
    file_text = None
    if len(chunks) == 3 and chunks[0].startswith(CONFIG_MARK + "\n"):
        file_text = chunks.pop(0).split("\n", 1)[1]
    last = chunks[-1]
    asked: list[str] = []
    if last.startswith(RECEIVED):
        head, _, last = last.partition("\n")
        asked = head.split()[1:]
    parts = json_docs(last)
    view = DeviceState(t.name)
    for peer, doc in zip(asked, parts[3:], strict=False):
        got = json.loads(doc)
        if isinstance(got, dict) and "receivedRoutes" in got:  # soft-reconfiguration is on
            view.received[peer] = sorted(got["receivedRoutes"] or {})
    if file_text is not None and chunks[0].strip():
        view.drift_detail = apart(file_text, chunks[0])
    for af in json.loads(parts[0] if parts else "{}").values():
        if not isinstance(af, dict):
            continue
        for addr, v in (af.get("peers") or {}).items():
            up = v.get("peerUptimeMsec")
            view.peers[addr] = Peer(addr, v.get("state", "?"),
                                    up / 1000 if up and v.get("state") == ESTABLISHED else None,
                                    None, v.get("pfxRcd"), v.get("pfxRcd"), v.get("pfxSnt"))
    for chunk in parts[1:3]:
        for prefix, paths in (json.loads(chunk or "{}").get("routes") or {}).items():
            for p in paths:
                nhs = [n["ip"] for n in p.get("nexthops", []) if n.get("scope") != "link-local"]
                peer = p.get("peerId", "")
                view.rib.append(RibEntry(prefix, nhs[0] if nhs else "",
                                         "" if peer in ("(unspec)", "0.0.0.0", "::") else peer,
                                         p.get("path", ""),
                                         bool(p.get("multipath") or p.get("bestpath"))))
    return view


READ = StateReader(state_command, parse_state, sessions_command, parse_sessions)


# --- the push ----------------------------------------------------------------------------------

def _reload_argv(t: Target, mode: str, path: str) -> list[str]:
    return [FRR_RELOAD, mode, "--stdout", "--bindir", "/usr/bin", "--confdir", t.confdir,
            "--rundir", t.run, "--vty_socket", t.run, path]


def _soft_in(t: Transport) -> None:
    """Ask every peer to resend its routes (route refresh: hitless), so that routes an older
    inbound policy rejected are judged again by the policy now in place."""
    t.exec(_vtysh(t.target, "clear bgp ipv4 unicast * soft in",
                  "clear bgp ipv6 unicast * soft in"))


def reload_lines(text: str) -> tuple[list[str], list[str]]:
    """frr-reload --test output -> (commands to delete, commands to add), as it prints them:
    each command after its context lines (repeated per command: what vtysh needs)."""
    delete: list[str] = []
    add: list[str] = []
    into: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("Lines To Delete"):
            into = delete
        elif line.startswith("Lines To Add"):
            into = add
        elif into is not None and line.strip() and not line.startswith("==="):
            if " INFO: " in line or " WARNING: " in line or " ERROR: " in line:
                continue
            into.append(line)
    return delete, add


def collapsed(lines: list[str]) -> list[str]:
    """Lines fit to show: a context line frr-reload repeats for each command, once."""
    out: list[str] = []
    for ln in lines:
        if not out or out[-1] != ln:
            out.append(ln)
    return out


def reload_delta(text: str) -> tuple[list[str], list[str]]:
    """frr-reload --test output -> (lines to delete, lines to add), fit to show."""
    delete, add = reload_lines(text)
    return collapsed(delete), collapsed(add)


def _delta(t: Transport, text: str, values: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """What frr-reload would delete and add to make ``text`` (filled) run, as lines fit to
    show. The candidate goes in on stdin, into a private temporary file that frr-reload reads
    and that is removed at once: nothing is left on the device."""
    test = shell(_reload_argv(t.target, "--test", "__CAND__")).replace("__CAND__", '"$f"')
    res = t.exec(f'f=$(mktemp) && cat > "$f" && {test}; rc=$?; rm -f "$f"; exit $rc',
                 stdin=text)
    if not res.ok:
        raise DeployFailed(Problem("", t.target.name, "frr-reload.py --test failed: "
                                   + last_error(redact(res.output, values)), ""))
    delete, add = reload_delta(res.stdout)  # stderr may hold login noise (sshd, sudo)
    # FRR does not print defaults: "ip forwarding" is shown only as "no ip forwarding" when
    # off, so frr-reload always offers to add it. It is a change only if "no" is deleted.
    for fwd in ("ip forwarding", "ipv6 forwarding"):
        if fwd in add and f"no {fwd}" not in delete:
            add.remove(fwd)
    return ([shown(SECRET_LINE, ln, values) for ln in delete],
            [shown(SECRET_LINE, ln, values) for ln in add])


def _running(t: Transport) -> str:
    return check(t, _vtysh(t.target, "show running-config"), "show running-config")


def _save(t: Transport) -> None:
    """frr.conf := what runs (FRR loads it when it starts), as ``write memory`` would."""
    t.write(t.target.config, saved(_running(t)), CONFIG_FILE.mode, CONFIG_FILE.owner)


def _remove(t: Transport, path: str) -> None:
    """Remove a file, a second time over a new session if the first one stalled."""
    try:
        t.exec(shell(["rm", "-f", path]))
    except RemoteError:
        t.exec(shell(["rm", "-f", path]))


def _reload(t: Transport, path: str, what: str) -> None:
    res = t.exec(shell(_reload_argv(t.target, "--reload", path)))
    if not res.ok:
        raise RemoteError(Problem("", t.target.name, f"{what} failed: "
                                  + last_error(res.output), ""))


#: bgpgen's part of an FRR switch: its rules, how FRR names a peer group and its members
PART = ownership.BgpPart(SYNTAX, OWN, group=("peer-group",), member=("peer-group",),
                         router_id="bgp router-id ")
_rules = PART.rules
#: the config a bgp-part push aims at: the running config with bgpgen's part replaced
part_target = PART.target


def _aim(name: str, rendered: str, running: str) -> str:
    """What the switch is to run: the render (manage: whole), or the running config with
    bgpgen's part replaced (manage: bgp-part)."""
    if manage_of(rendered) is Manage.WHOLE:
        return rendered
    return part_target(name, running, rendered)


def manage_of(text: str) -> Manage:
    m = MANAGE_LINE.search(text)
    return Manage(m.group(1)) if m else Manage.WHOLE


def port_179_context(syntax: str) -> Context:
    """The switch-side context for a syntax whose neighbors are always on port 179 (EOS,
    NX-OS, Junos render no remote port): a node on another port is refused in one line."""
    def switch_context(fabric: Fabric, device: Device) -> dict[str, Any]:
        ctx = context(fabric, device)
        for s in ctx["sessions"]:
            if s.node_port != 179:
                raise RenderError(Problem("", device.name, f"{s.node} peers on port "
                                          f"{s.node_port}: bgpgen renders {syntax} neighbors "
                                          "on port 179 only", f"set {s.node}'s bgp_port to "
                                          "179, or use another switch platform"))
        return ctx
    return switch_context


def delta_plan(p: DevicePlan, delete: list[str], add: list[str], gap: Callable[[], str],
               save: str) -> DevicePlan:
    """A plan from a delta (lines to delete and to add, fit to show); when there is none, from
    ``gap()``: the saved file apart from what runs ('' when not), mended by ``save``."""
    if delete or add:
        p.diff = [f"-{ln}" for ln in delete] + [f"+{ln}" for ln in add]
        classify_delta(delete, add, p)
        p.action = Action.UPDATE
        return p
    said = gap()  # runs right: is it saved?
    if said:
        p.extra["drift"] = said
        p.diff = [f"~ {said}: saved"]
        p.raise_cost(Cost.HITLESS, f"file and daemon apart: {save}")
        p.action = Action.UPDATE
    return p


class FrrDriver:
    def plan(self, t: Transport, files: Mapping[str, Artifact],
             values: Mapping[str, str]) -> DevicePlan:
        target = t.target
        conf = need(files, CONFIG)
        p = DevicePlan(target.name, target.platform.value)
        running = _running(t)
        delete, add = _delta(t, _aim(target.name, fill(conf.text, values), running), values)
        return delta_plan(p, delete, add, lambda: apart(t.read(target.config), running),
                          "the running config is saved")

    def apply(self, t: Transport, p: DevicePlan, files: Mapping[str, Artifact],
              values: Mapping[str, str], timeout: float) -> Outcome:
        target = t.target
        if p.extra.get("drift"):
            proceed(t, p)
            _save(t)
            return Outcome(Status.CHANGED, "the running config saved as " + CONFIG)
        running = _running(t)  # what the push aims from, and what a restore puts back
        text = _aim(target.name, fill(need(files, CONFIG).text, values), running)
        before = read_sessions(t, READ)
        candidate = f"{target.run}/bgpgen-candidate-{RUN_ID}.conf"
        try:
            t.write(candidate, text, 0o600)  # read by frr-reload, as root
            t.write(target.config + PREV, saved(running), 0o600)
            proceed(t, p)
            p.extra["activated"] = True
            try:
                _reload(t, candidate, "frr-reload.py --reload")
                _soft_in(t)
                left = _delta(t, text, values)  # read back: nothing left to change
                if left[0] or left[1]:
                    raise DeployFailed(Problem("", target.name, "read back: bgpd does not run "
                                               f"the new config ({len(left[0])} lines to delete,"
                                               f" {len(left[1])} to add)", ""))
                wait_sessions(t, READ, before, timeout)
                _save(t)
            except RemoteError as exc:
                message = redact(exc.problems[0].message, values)
                self._restore(t, timeout)
                raise DeployFailed(Problem("", target.name, f"{message}; the previous running "
                                           "config was reloaded and saved", "")) from None
        finally:
            _remove(t, candidate)  # it holds the secret: never left behind
        return Outcome(Status.CHANGED, p.cost_detail)

    def _restore(self, t: Transport, timeout: float) -> None:
        target = t.target
        prev = target.config + PREV

        def step() -> None:
            _reload(t, prev, "frr-reload.py --reload of the previous config")
            _soft_in(t)
            _save(t)
        persist(t, "reloading the previous config", step, timeout)

    def confirm(self, t: Transport, p: DevicePlan) -> None:
        return None  # saved at apply; the previous running config stays as frr.conf.bgpgen-prev

    def rollback(self, t: Transport, p: DevicePlan, timeout: float) -> None:
        if not p.extra.get("drift"):
            self._restore(t, timeout)


def drain(t: Transport, device: Device, on: bool) -> None:
    """``bgp graceful-shutdown``: peers see GRACEFUL_SHUTDOWN and move their traffic away."""
    check(t, _vtysh(t.target, "conf t", f"router bgp {device.asn}",
                    ("" if on else "no ") + "bgp graceful-shutdown"), "graceful-shutdown")


# --- the lab -----------------------------------------------------------------------------------

def daemons_with(profile: str | None = None, confdir: str | None = None
                 ) -> Callable[[Device], list[Daemon]]:
    """zebra and bgpd as an FRR package runs them: its defaults ``profile`` (``-F``), and in
    split mode (``confdir``) each reading its own file there (``-f``)."""
    def daemons(device: Device) -> list[Daemon]:
        common = ("-A", "127.0.0.1", "-P", "0", "-u", "frr", "-g", "frr", "--log", "stdout",
                  *(("-F", profile) if profile else ()))

        def own(daemon: str) -> tuple[str, ...]:
            return ("-f", f"{confdir}/{daemon}.conf") if confdir else ()
        return [Daemon("zebra", (f"{FRR_BIN}/zebra", *common, *own("zebra")),
                       {"path": "/run/frr/zserv.api"}),
                # bgpd retries a missing zebra only after seconds, and until it has zebra,
                # peers stay Idle (no next-hop tracking).
                Daemon("bgpd", (f"{FRR_BIN}/bgpd", "-p", str(device.bgp_port), *common,
                                *own("bgpd")), {"path": "/run/frr/bgpd.vty"}, after="zebra")]
    return daemons


#: zebra and bgpd as Debian's frr runs them: its default paths (/var/run/frr, /etc/frr)
daemons = daemons_with()


def bootstrap_with(defaults: str = "traditional", split: bool = False
                   ) -> Callable[[Device], str]:
    """A switch's config before bgpgen: its own BGP (as provisioned), and lines of its own that
    bgpgen must keep; FRR's ``defaults`` profile; ``split``: bgpd's own file only (zebra's
    lines are in zebra's file)."""
    def bootstrap(device: Device) -> str:
        ups = device.uplinks if isinstance(device, Switch) else ()
        nbrs = "".join(f" neighbor {u.spine_address} remote-as {u.spine_asn}\n"
                       f" neighbor {u.spine_address} description uplink to {u.spine}\n"
                       for u in ups)
        af = "".join(f"  neighbor {u.spine_address} activate\n" for u in ups)
        zebra = ("" if split else "ip forwarding\nipv6 forwarding\n!\n"
                 + ("interface up0\n description uplink to the spines\nexit\n!\n" if ups
                    else ""))
        return (f"frr defaults {defaults}\nhostname {device.name}\n"
                + ("no " if split else "") + "service integrated-vtysh-config\n" + zebra
                + "ip prefix-list SITE-AGGREGATES seq 5 permit 198.18.0.0/15 le 32\n!\n"
                f"router bgp {device.asn}\n bgp router-id {device.router_id}\n"
                " bgp log-neighbor-changes\n no bgp ebgp-requires-policy\n"
                " no bgp default ipv4-unicast\n bgp graceful-restart\n" + nbrs
                + (f" !\n address-family ipv4 unicast\n{af} exit-address-family\n" if ups
                   else "")
                + "exit\n!\n")
    return bootstrap


#: what a switch running Debian's FRR runs before bgpgen
bootstrap = bootstrap_with()


#: what a lab spine announces to the ToRs: the rest of the data centre (never a default route:
#: nothing in a lab routes out of it)
SPINE_AGGREGATE = "198.19.0.0/16"


def spine_config(fabric: Fabric, spine: Device) -> str:
    """A spine bgpgen does not manage, as the lab runs it: a session to each ToR uplink on its
    subnet, an aggregate announced to them."""
    ups = [(sw, u) for sw in fabric.switches for u in sw.uplinks if u.spine == spine.name]
    nbrs = "".join(f" neighbor {u.address.ip} remote-as {sw.asn}\n"
                   f" neighbor {u.address.ip} description {sw.name}\n" for sw, u in ups)
    af = f"  network {SPINE_AGGREGATE}\n" + "".join(f"  neighbor {u.address.ip} activate\n"
                                                    for _, u in ups)
    return (f"frr defaults traditional\nhostname {spine.name}\nservice integrated-vtysh-config\n"
            "ip forwarding\n!\n"
            f"router bgp {spine.asn}\n bgp router-id {spine.router_id}\n"
            " no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n"
            " no bgp network import-check\n" + nbrs
            + f" !\n address-family ipv4 unicast\n{af} exit-address-family\nexit\n!\n")


def prepare(device: Device, files: DeviceFiles,
            artifacts: Mapping[str, Artifact]) -> list[tuple[str, ...]]:
    """vtysh's own config, the switch CLI for SSH, and loading the config once FRR runs."""
    vtysh_conf = files.mkdirs("/etc/frr/vtysh.conf")
    vtysh_conf.write_text("service integrated-vtysh-config\n")
    shutil.chown(vtysh_conf, "frr", "frr")
    cli = files.mkdirs("/usr/local/sbin/bgpgen-device-cli")
    cli.write_text("#!/bin/sh\n# The switch CLI over SSH: vtysh, interactive or one command.\n"
                   '[ -n "$SSH_ORIGINAL_COMMAND" ] && exec vtysh -c "$SSH_ORIGINAL_COMMAND"\n'
                   "exec vtysh\n")
    cli.chmod(0o755)
    return [("vtysh", "-b")]


#: what a lab runs for an FRR switch (Cumulus and SONiC start from it)
LAB = LabSetup(daemons=daemons, bootstrap=bootstrap, prepare=prepare,
             binaries={"vtysh": "frr", f"{FRR_BIN}/zebra": "frr", f"{FRR_BIN}/bgpd": "frr",
                       FRR_RELOAD: "frr-pythontools"},
             user="frr", cli_port=CLI_PORT, spine=spine_config)

SPEC = PlatformSpec(
    platform=Platform.FRR,
    role=Role.SWITCH,
    inventory_name="frr",
    description="a ToR switch running FRR",
    configured=True,
    files=(CONFIG_FILE,),
    context=context,
    checker=Checker(("vtysh", "--config_dir", "{dir}", "-C", "-f", "{file}"), "vtysh", "frr",
                    {"vtysh.conf": "service integrated-vtysh-config\n"}),
    netmiko_device_type="cisco_ios",
    paths=PATHS,
    secret_line=SECRET_LINE,
    classify=classify,
    driver=FrrDriver(),
    state=READ,
    session=Session.SHELL,
    lab=LAB,
    bfd=True,
    default_originate=True,
    route_server=False,
    default_passive=Passive.NONE,
    drain=drain,
    filters={"frr_word": frr_word, "frr_line": frr_line},
    part=part_target,
    resources=None,
)
