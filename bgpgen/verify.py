"""Verify stage: read every peer (sessions and RIBs) and compare with what the model expects.

Collection goes over the same SSH sessions as deploy (Nornir, in parallel); each daemon's output
is normalised by its platform module into a :class:`~bgpgen.state.DeviceState`. Expectations come from the
model, never from the devices: every session Established on both ends; every expected route in
the receiving RIB with the right next hop from the right peer; nothing nobody expects. What is
wrong comes out as :class:`Finding` objects (device, peer, family, session, kind, message).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from .model import Fabric, Node, Role, Route, Session, Switch
from .state import ESTABLISHED, DeviceState

#: a node end that bgpgen does not read (its speaker is external): judged from the switch
EXTERNAL = "external"


class FindingKind(StrEnum):
    """What verify can find wrong. ``unreadable`` makes the run an error (exit 1); every other
    kind is a finding about the fabric (exit 3)."""

    SESSION_DOWN = "session_down"
    MISSING = "missing"
    WRONG_NEXT_HOP = "wrong_next_hop"
    UNEXPECTED = "unexpected"
    DAEMON_DOWN = "daemon_down"
    DRIFT = "drift"              #: the daemon runs other settings than its own config file
    #: a prefix several nodes announce (an anycast VIP) is not forwarded over all of them
    ECMP = "ecmp"
    UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing verify found wrong: where (device, peer, family, session) and what."""

    kind: FindingKind
    device: str
    message: str
    peer: str = ""
    family: str = ""
    session: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"kind": str(self.kind), "device": self.device, "peer": self.peer,
                "family": self.family, "session": self.session, "message": self.message}


# --- expectations -------------------------------------------------------------------------------

@dataclass(slots=True)
class SessionRow:
    id: str
    switch: str
    node: str
    family: str
    switch_state: str
    node_state: str
    uptime: float | None
    expected: int
    received: int
    missing: list[str] = field(default_factory=list)
    wrong_next_hop: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    pending: bool = False   #: one end is not deployed yet: not judged

    @property
    def up(self) -> bool:
        """Established on both ends (an external node's end: as its switch sees it)."""
        return self.switch_state == ESTABLISHED and self.node_state in (ESTABLISHED, EXTERNAL)

    @property
    def ok(self) -> bool:
        if self.pending:
            return True
        return self.up and not self.missing and not self.wrong_next_hop and not self.unexpected


@dataclass(slots=True)
class VerifyReport:
    rows: list[SessionRow]
    findings: list[Finding]
    routes_expected: int
    routes_ok: int
    chosen: set[str] = field(default_factory=set)  #: the devices judged
    #: every prefix several nodes announce to a switch, with the next hops it is forwarded over
    ecmp: list[Ecmp] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        """Devices that could not be read at all."""
        return [f for f in self.findings if f.kind is FindingKind.UNREADABLE]

    @property
    def problems(self) -> list[Finding]:
        """Findings about the fabric."""
        return [f for f in self.findings if f.kind is not FindingKind.UNREADABLE]

    @property
    def implicated(self) -> set[str]:
        """Devices some failed check involves (read again by :func:`wait`)."""
        found = {f.device for f in self.findings}
        found |= {end for row in self.rows if not row.ok for end in (row.switch, row.node)}
        return found & self.chosen

    @property
    def ok(self) -> bool:
        return not self.findings and all(r.ok for r in self.rows)

    @property
    def exit(self) -> int:
        return 1 if self.errors else (0 if self.ok else 3)


def _state(view: DeviceState | None, peer: str) -> str:
    if view is None or view.error:
        return "unread"
    if peer in view.peers:
        return view.peers[peer].state
    return "daemon down" if view.down else "not configured"


def evaluate(fabric: Fabric, views: Mapping[str, DeviceState],
             devices: set[str] | None = None, pending: set[str] | None = None,
             healthy: set[str] | None = None) -> VerifyReport:
    """Compare what the devices hold with what the model expects.

    ``pending``: devices that have not received their new config yet (a later batch of a
    rollout): routes they originate are not expected yet, and what they send is not judged;
    a session with a pending end is pending (not judged) unless it is in ``healthy`` (the
    sessions that were up on both ends before the batch), which must still be up.
    """
    from .platforms import spec
    chosen = devices if devices is not None else {d.name for d in fabric.devices}
    pending = pending or set()
    external = {d.name for d in fabric.nodes if not spec(d.platform).configured}
    by_session: dict[str, list[Route]] = {}
    for r in fabric.routes:
        by_session.setdefault(r.session, []).append(r)
    sessions = [s for s in fabric.sessions if s.node in chosen or s.switch in chosen]
    findings: list[Finding] = []
    rows = [_row(s, views, by_session.get(s.id, []), pending, healthy or set(), findings,
                 s.node in external) for s in sessions]
    row_of: dict[tuple[str, str], tuple[SessionRow, Session]] = {}
    for row, s in zip(rows, sessions):
        row_of[(s.switch, str(s.node_address))] = (row, s)
        row_of[(s.node, str(s.switch_address))] = (row, s)
    findings += _unexpected(fabric, views, chosen - pending, row_of, pending)
    findings += _dropped(fabric, views, chosen - pending, row_of, pending)
    ecmp = _ecmp(fabric, views, chosen, pending, findings)
    for v in views.values():
        if v.device not in chosen:
            continue
        if v.error:
            findings.append(Finding(FindingKind.UNREADABLE, v.device, f"{v.device}: {v.error}"))
        elif v.down:
            findings.append(Finding(FindingKind.DAEMON_DOWN, v.device,
                                    f"{v.device}: BGP daemon not answering: {v.down}"))
        findings += [Finding(FindingKind.DRIFT, v.device,
                             f"drift: {v.device}'s BGP daemon runs other settings than its "
                             f"config file for {peer} (bgpgen deploy puts it back on its file)",
                             peer, "ipv6" if ":" in peer else "ipv4")
                     for peer in v.drift]
        if v.drift_detail:
            findings.append(Finding(FindingKind.DRIFT, v.device,
                                    f"drift: {v.device}: {v.drift_detail} (bgpgen deploy loads "
                                    "its file)"))
    return VerifyReport(rows, findings, sum(r.expected for r in rows),
                        sum(r.received for r in rows), chosen, ecmp)


@dataclass(frozen=True, slots=True)
class Ecmp:
    """A prefix several nodes announce to one switch: the next hops it should forward over,
    and those it does."""

    switch: str
    prefix: str
    expected: tuple[str, ...]
    used: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return set(self.expected) <= set(self.used)

    def as_dict(self) -> dict[str, object]:
        return {"switch": self.switch, "prefix": self.prefix, "expected": list(self.expected),
                "used": list(self.used), "ok": self.ok}


def _ecmp(fabric: Fabric, views: Mapping[str, DeviceState], chosen: set[str],
          pending: set[str], findings: list[Finding]) -> list[Ecmp]:
    """Each prefix that several nodes announce to a switch (an anycast VIP) is forwarded over
    every one of them there (FRR: its best path and multipaths)."""
    want: dict[tuple[str, str], set[str]] = {}
    for r in fabric.routes:
        if r.seen_by in chosen and r.seen_by not in pending and r.origin not in pending \
                and fabric.device(r.seen_by).role is Role.SWITCH:
            want.setdefault((r.seen_by, str(r.prefix)), set()).add(str(r.next_hop))
    out = []
    for (switch, prefix), hops in sorted(want.items()):
        view = views.get(switch)
        if len(hops) < 2 or view is None or view.error or view.down:
            continue
        used = {e.next_hop for e in view.rib if e.prefix == prefix and e.selected is not False}
        e = Ecmp(switch, prefix, tuple(sorted(hops)), tuple(sorted(used & hops)))
        out.append(e)
        if not e.ok:
            lost = ", ".join(sorted(hops - used))
            findings.append(Finding(FindingKind.ECMP, switch,
                                    f"ecmp: {prefix} on {switch} is forwarded over "
                                    f"{', '.join(e.used) or 'no node'}, not over {lost} (of "
                                    f"{len(hops)} announcing nodes)"))
    return out


def _row(s: Session, views: Mapping[str, DeviceState], routes: list[Route],
         pending: set[str], healthy: set[str], findings: list[Finding],
         external: bool = False) -> SessionRow:
    """One session: both ends' states, and the routes it should carry, found or not. The node
    end of an external speaker is not read: its session is judged from the switch (its state,
    what the switch receives from the node), and what the node receives is not judged."""
    sw, nd = views.get(s.switch), views.get(s.node)
    sp = sw.peers.get(str(s.node_address)) if sw else None
    row = SessionRow(s.id, s.switch, s.node, s.family, _state(sw, str(s.node_address)),
                     EXTERNAL if external else _state(nd, str(s.switch_address)),
                     sp.uptime if sp else None, 0, 0)
    if external:
        routes = [r for r in routes if r.seen_by != s.node]
    if s.node in pending or s.switch in pending:
        if s.id not in healthy:  # the other end is not deployed yet: nothing to judge
            row.pending = True
            return row
        routes = []  # it was up before the batch: it must still be up (routes may change)
    for r in routes:
        holder = views.get(r.seen_by)
        if r.origin in pending or r.seen_by in pending or holder is None or holder.error:
            continue
        row.expected += 1
        # From the node on the switch; from the switch on a node (a route server's clients too).
        peer = str(s.node_address) if r.seen_by == s.switch else str(s.switch_address)
        found = [e for e in holder.rib if e.prefix == str(r.prefix) and e.peer == peer]
        if not found:
            text = f"{r.prefix} from {r.origin} on {r.seen_by}"
            row.missing.append(text)
            findings.append(Finding(FindingKind.MISSING, r.seen_by,
                                    f"missing: {text} (session {s.id})", peer, s.family, s.id))
        elif not any(e.next_hop == str(r.next_hop) for e in found):
            text = f"{r.prefix} on {r.seen_by}: next hop {found[0].next_hop}, expected " \
                   f"{r.next_hop}"
            row.wrong_next_hop.append(text)
            findings.append(Finding(FindingKind.WRONG_NEXT_HOP, r.seen_by,
                                    f"wrong next hop: {text} (session {s.id})", peer, s.family,
                                    s.id))
        else:
            row.received += 1
    for end, addr, state in ((s.switch, str(s.node_address), row.switch_state),
                             (s.node, str(s.switch_address), row.node_state)):
        if state not in (ESTABLISHED, EXTERNAL):
            findings.append(Finding(FindingKind.SESSION_DOWN, end,
                                    f"session {s.id} is {state} on {end}", addr, s.family, s.id))
    return row


def _unexpected(fabric: Fabric, views: Mapping[str, DeviceState], judged: set[str],
                row_of: dict[tuple[str, str], tuple[SessionRow, Session]],
                pending: set[str]) -> list[Finding]:
    """RIB entries nobody expects (also filed under their session's row)."""
    expected_at: dict[str, set[str]] = {}
    for r in fabric.routes:
        expected_at.setdefault(r.seen_by, set()).add(str(r.prefix))
    stray: list[Finding] = []
    for name in sorted(judged):
        view = views.get(name)
        if view is None or view.error:
            continue
        device = fabric.device(name)
        own = {str(p) for fam in ("ipv4", "ipv6") for p in device.prefixes(fam)} \
            if isinstance(device, Node) else set()
        # a switch's uplinks are its own sessions, not bgpgen's: what they bring is not judged
        uplinks = {str(u.spine_address) for u in device.uplinks} \
            if isinstance(device, Switch) else set()
        wanted = expected_at.get(name, set())
        for e in view.rib:
            if e.prefix in wanted or (e.peer == "" and e.prefix in own) or e.peer in uplinks:
                continue
            text = f"{e.prefix} on {name}" + (f" from {e.peer}" if e.peer else " (originated there)")
            family = "ipv6" if ":" in e.prefix else "ipv4"
            hit = row_of.get((name, e.peer))
            if hit is None:
                stray.append(Finding(FindingKind.UNEXPECTED, name, f"unexpected route: {text}",
                                     e.peer, family))
            elif hit[0].node not in pending and hit[0].switch not in pending:
                row, s = hit
                row.unexpected.append(text)
                stray.append(Finding(FindingKind.UNEXPECTED, name,
                                     f"unexpected: {text} (session {s.id})", e.peer, s.family,
                                     s.id))
    return stray


def _dropped(fabric: Fabric, views: Mapping[str, DeviceState], judged: set[str],
             row_of: dict[tuple[str, str], tuple[SessionRow, Session]],
             pending: set[str]) -> list[Finding]:
    """What a node sent its switch that is not its own, though the switch's inbound policy
    dropped it (so it is in no RIB): a speaker announcing what it should not, seen where the
    switch keeps what it received before policy."""
    own: dict[tuple[str, str], set[str]] = {}
    for r in fabric.routes:
        own.setdefault((r.seen_by, r.origin), set()).add(str(r.prefix))
    out: list[Finding] = []
    for name in sorted(judged):
        view = views.get(name)
        if view is None or view.error or not view.received:
            continue
        in_rib = {(e.peer, e.prefix) for e in view.rib}
        for peer, prefixes in sorted(view.received.items()):
            hit = row_of.get((name, peer))
            if hit is None or hit[1].switch != name or hit[1].node in pending:
                continue
            row, s = hit
            for prefix in prefixes:
                if prefix in own.get((name, s.node), set()) or (peer, prefix) in in_rib:
                    continue  # expected, or in the RIB (reported as unexpected there)
                text = (f"{prefix} from {s.node} on {name}, dropped by {name}'s inbound "
                        "policy (not one of the node's prefixes)")
                row.unexpected.append(text)
                out.append(Finding(FindingKind.UNEXPECTED, name,
                                   f"unexpected: {text} (session {s.id})", peer, s.family,
                                   s.id))
    return out


def healthy_sessions(report: VerifyReport) -> set[str]:
    """The sessions up on both ends (what a rollout's gate must not make worse)."""
    return {r.id for r in report.rows if r.up}


def format_table(report: VerifyReport) -> list[list[str]]:
    out = []
    for r in report.rows:
        up = f"{r.uptime:.0f}s" if r.uptime is not None else "-"
        out.append([r.switch, r.node, r.family, r.switch_state, r.node_state, up,
                    str(r.expected), str(r.received), str(len(r.missing) + len(r.wrong_next_hop)),
                    str(len(r.unexpected))])
    return out


def summary(report: VerifyReport) -> str:
    both = sum(1 for r in report.rows if r.up)
    external = len({r.node for r in report.rows if r.node_state == EXTERNAL})
    return (f"Verify: {both}/{len(report.rows)} sessions Established on both ends"
            + (f" ({external} nodes with an external speaker: judged from their switches)"
               if external else "") + ", "
            f"{report.routes_ok}/{report.routes_expected} expected routes in place, "
            f"{len(report.problems)} problems" + (f", {len(report.errors)} devices unreadable"
                                                  if report.errors else "") + ".")


def as_json(report: VerifyReport) -> str:
    return json.dumps({"format": 2, "ok": report.ok, "exit": report.exit,
                       "summary": summary(report),
                       "findings": [f.as_dict() for f in report.findings],
                       "problems": [f.message for f in report.problems],
                       "errors": [f.message for f in report.errors],
                       "sessions": [{"id": r.id, "switch": r.switch, "node": r.node,
                                     "family": r.family, "switch_state": r.switch_state,
                                     "node_state": r.node_state, "uptime": r.uptime,
                                     "expected": r.expected, "received": r.received,
                                     "missing": r.missing, "wrong_next_hop": r.wrong_next_hop,
                                     "unexpected": r.unexpected} for r in report.rows],
                       "ecmp": [e.as_dict() for e in report.ecmp]},
                      indent=1) + "\n"


Collector = Callable[[set[str] | None], dict[str, DeviceState]]


def wait(fabric: Fabric, collect: Collector, seconds: float,
         devices: set[str] | None = None, pending: set[str] | None = None,
         healthy: set[str] | None = None,
         stop: threading.Event | None = None) -> VerifyReport:
    """Collect and evaluate until everything holds or ``seconds`` pass.

    The first round reads every device; later rounds read again only the devices that some
    failed check involves (both ends of a session that is not up, the holder of a missing,
    wrong or unexpected route), keeping the others' last answer. On a 2-core machine a full
    round of 12 devices takes over a second; this keeps ``--wait`` within about a second of
    convergence.
    """
    deadline = time.monotonic() + seconds
    views = collect(None)
    while True:
        report = evaluate(fabric, views, devices, pending, healthy)
        if report.ok or time.monotonic() >= deadline or (stop is not None and stop.is_set()):
            return report
        time.sleep(0.05)
        views.update(collect(report.implicated or None))
