"""Verify stage: read every peer (sessions and RIBs) and compare with what the model expects.

Collection goes over the same SSH sessions as deploy (Nornir, in parallel); each daemon's output
is normalised into :class:`DeviceView` (sessions and RIB entries). Expectations come from the
model, never from the devices: every session Established on both ends; every expected route in
the receiving RIB with the right next hop from the right peer; nothing nobody expects.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .collect import ESTABLISHED, gobgp_state, parse_sessions, shell
from .model import Fabric, Node, Platform, Route, Session
from .targets import Target

SEP = "@@bgpgen@@"


@dataclass(frozen=True, slots=True)
class Peer:
    address: str
    state: str
    uptime: float | None = None     #: seconds Established
    hold: int | None = None         #: negotiated hold time
    received: int | None = None
    accepted: int | None = None
    sent: int | None = None


@dataclass(frozen=True, slots=True)
class RibEntry:
    prefix: str
    next_hop: str
    peer: str        #: the address it came from; "" for a route the device originates
    as_path: str = ""


@dataclass(slots=True)
class DeviceView:
    device: str
    peers: dict[str, Peer] = field(default_factory=dict)
    rib: list[RibEntry] = field(default_factory=list)
    error: str = ""      #: the device could not be read at all (SSH): verify cannot judge it
    down: str = ""       #: reached, but the BGP daemon does not answer: a finding


# --- collection commands and parsers, per platform ----------------------------------------------

def command(t: Target, fabric: Fabric) -> str:
    """One shell command that prints everything verify needs from a device, sections split."""
    if t.platform in (Platform.GOBGP, Platform.GOBGP_RS):
        g = ["gobgp", "-p", str(t.api_port), "-j"]
        parts = [shell([*g, "neighbor"])]
        parts += [shell([*g, "global", "rib", "-a", fam]) for fam in ("ipv4", "ipv6")]
        if t.platform is Platform.GOBGP_RS:
            for s in fabric.sessions_of(t.name):
                parts.append(f"echo {shell([str(s.node_address)])}; " + shell(
                    [*g, "neighbor", str(s.node_address), "adj-in", "-a", s.family]))
        return f"; echo {SEP}; ".join(parts)
    if t.platform is Platform.BIRD:
        b = ["birdc", "-s", t.bird_socket]
        return f"{shell([*b, 'show', 'protocols', 'all'])}; echo {SEP}; " \
               f"{shell([*b, 'show', 'route', 'all'])}"
    # One vtysh for the three commands: its JSON answers follow each other (split in _frr).
    return shell(["vtysh", "--vty_socket", t.run, "-c", "show bgp summary json", "-c",
                  "show bgp ipv4 unicast json", "-c", "show bgp ipv6 unicast json"])


def _json_docs(text: str) -> list[str]:
    """Consecutive JSON documents (what vtysh prints for several -c) as separate texts."""
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


def parse(t: Target, output: str, now: float | None = None) -> DeviceView:
    parts = _json_docs(output) if t.platform is Platform.FRR else output.split(SEP + "\n")
    view = DeviceView(t.name)
    if t.platform in (Platform.GOBGP, Platform.GOBGP_RS):
        _gobgp(view, parts, now or time.time())
    elif t.platform is Platform.BIRD:
        _bird(view, parts)
    else:
        _frr(view, parts)
    return view


def _gobgp(view: DeviceView, parts: list[str], now: float) -> None:
    for n in json.loads(parts[0] or "[]") or []:
        timers = n.get("timers", {}).get("state", {})
        afs = [a.get("state", {}) for a in n.get("afi_safis", [])]
        state = gobgp_state(n)
        addr = n["conf"]["neighbor_address"]
        up = timers.get("uptime", {}).get("seconds")
        view.peers[addr] = Peer(
            addr, state, now - up if up and state == ESTABLISHED else None,
            timers.get("negotiated_hold_time"), sum(a.get("received", 0) for a in afs),
            sum(a.get("accepted", 0) for a in afs), sum(a.get("advertised", 0) for a in afs))
    for chunk in parts[1:3]:
        view.rib += _gobgp_paths(json.loads(chunk or "{}") or {}, None)
    for chunk in parts[3:]:
        addr, _, body = chunk.partition("\n")
        view.rib += _gobgp_paths(json.loads(body or "{}") or {}, addr.strip())


def _gobgp_paths(data: dict[str, Any], peer: str | None) -> list[RibEntry]:
    out = []
    for prefix, paths in data.items():
        for p in paths:
            nh = next((a.get("nexthop", "") for a in p.get("attrs", [])
                       if a.get("type") in (3, 14)), "")
            asns = [str(x) for a in p.get("attrs", []) if a.get("type") == 2
                    for seg in a.get("as_paths", []) for x in seg.get("asns", [])]
            src = peer if peer is not None else p.get("neighbor-ip", "")
            src = "" if src in ("<nil>", None) else src
            out.append(RibEntry(prefix, "" if nh in ("0.0.0.0", "::") else nh, src,
                                " ".join(asns)))
    return out


_BIRD_ROUTE = re.compile(r"^(\S+)?\s+(\w+) \[(\w+) [^\]]*\]")


def _bird(view: DeviceView, parts: list[str]) -> None:
    proto_peer: dict[str, str] = {}
    name = None
    for line in parts[0].splitlines():
        cols = line.split()
        if len(cols) >= 2 and cols[1] == "BGP":
            name = cols[0]
        elif line.strip().startswith("Neighbor address:") and name:
            proto_peer[name] = line.split(":", 1)[1].strip()
    counts: dict[str, dict[str, int]] = {}  # per protocol: hold, imported, exported
    name = None
    for line in parts[0].splitlines():
        cols = line.split()
        if len(cols) >= 2 and cols[1] == "BGP":
            name = cols[0]
        elif name and line.strip().startswith("Hold timer:") and "/" in line:
            counts.setdefault(name, {})["hold"] = int(line.rsplit("/", 1)[1].split()[0])
        elif name and line.strip().startswith("Routes:"):
            found = re.findall(r"(\d+) (imported|exported)", line)
            counts.setdefault(name, {}).update({k: int(v) for v, k in found})
    by_addr = {addr: counts.get(proto, {}) for proto, addr in proto_peer.items()}
    for addr, state in parse_sessions(Platform.BIRD, parts[0]).items():
        c = by_addr.get(addr, {})
        view.peers[addr] = Peer(addr, state, None, c.get("hold"), c.get("imported"),
                                c.get("imported"), c.get("exported"))
    prefix = None
    entry: dict[str, str] | None = None

    def flush() -> None:
        if entry is not None:
            view.rib.append(RibEntry(entry["prefix"], entry.get("nh", ""), entry["peer"],
                                     entry.get("path", "")))
    for line in (parts[1] if len(parts) > 1 else "").splitlines():
        m = _BIRD_ROUTE.match(line)
        if m and (m.group(1) or prefix):
            flush()
            prefix = m.group(1) or prefix
            proto = m.group(3)
            entry = {"prefix": prefix or "", "peer": proto_peer.get(proto, "")}
        elif entry is not None and "BGP.next_hop:" in line:
            entry["nh"] = line.split(":", 1)[1].split()[0]
        elif entry is not None and "BGP.as_path:" in line:
            entry["path"] = line.split(":", 1)[1].strip()
    flush()


def _frr(view: DeviceView, parts: list[str]) -> None:
    summary = json.loads(parts[0] or "{}")
    for af in summary.values():
        if not isinstance(af, dict):
            continue
        for addr, v in (af.get("peers") or {}).items():
            up = v.get("peerUptimeMsec")
            view.peers[addr] = Peer(addr, v.get("state", "?"),
                                    up / 1000 if up and v.get("state") == ESTABLISHED else None,
                                    None, v.get("pfxRcd"), v.get("pfxRcd"), v.get("pfxSnt"))
    for chunk in parts[1:3]:
        data = json.loads(chunk or "{}")
        for prefix, paths in (data.get("routes") or {}).items():
            for p in paths:
                nhs = [n["ip"] for n in p.get("nexthops", []) if n.get("scope") != "link-local"]
                peer = p.get("peerId", "")
                view.rib.append(RibEntry(prefix, nhs[0] if nhs else "",
                                         "" if peer in ("(unspec)", "0.0.0.0", "::") else peer,
                                         p.get("path", "")))


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

    @property
    def ok(self) -> bool:
        return self.switch_state == ESTABLISHED and self.node_state == ESTABLISHED and \
            not self.missing and not self.wrong_next_hop and not self.unexpected


@dataclass(slots=True)
class Report:
    rows: list[SessionRow]
    problems: list[str]
    errors: list[str]
    routes_expected: int
    routes_ok: int
    implicated: set[str] = field(default_factory=set)  #: devices some failed check involves

    @property
    def ok(self) -> bool:
        return not self.problems and not self.errors and all(r.ok for r in self.rows)

    @property
    def exit(self) -> int:
        return 1 if self.errors else (0 if self.ok else 3)


def _state(view: DeviceView | None, peer: Peer | None) -> str:
    if peer is not None:
        return peer.state
    if view is None or view.error:
        return "unread"
    return "daemon down" if view.down else "not configured"


def evaluate(fabric: Fabric, views: Mapping[str, DeviceView],
             devices: set[str] | None = None, pending: set[str] | None = None) -> Report:
    """Compare what the devices hold with what the model expects.

    ``pending``: devices that have not received their new config yet (a later batch of a
    rollout): routes they originate are not expected yet, and what they send is not judged.
    """
    chosen = devices if devices is not None else {d.name for d in fabric.devices}
    pending = pending or set()
    by_session: dict[str, list[Route]] = {}
    for r in fabric.routes:
        by_session.setdefault(r.session, []).append(r)
    sessions = [s for s in fabric.sessions if s.node in chosen or s.switch in chosen]
    rows = [_row(s, views, by_session.get(s.id, []), pending) for s in sessions]
    row_of: dict[tuple[str, str], SessionRow] = {}
    for row, s in zip(rows, sessions):
        row_of[(s.switch, str(s.node_address))] = row
        row_of[(s.node, str(s.switch_address))] = row
    stray = _unexpected(fabric, views, chosen - pending, row_of, pending)
    problems = [f"unexpected route: {text}" for text in stray]
    problems += [f"{v.device}: BGP daemon not answering: {v.down}" for v in views.values()
                 if v.down and v.device in chosen]
    for row in rows:
        for what, items in (("missing", row.missing), ("wrong next hop", row.wrong_next_hop),
                            ("unexpected", row.unexpected)):
            problems += [f"{what}: {x} (session {row.id})" for x in items]
        for end, state in ((row.switch, row.switch_state), (row.node, row.node_state)):
            if state != ESTABLISHED:
                problems.append(f"session {row.id} is {state} on {end}")
    implicated = {v.device for v in views.values() if v.error or v.down}
    implicated |= {end for row in rows if not row.ok for end in (row.switch, row.node)}
    implicated |= {text.split(" on ", 1)[1].split()[0] for text in stray}
    return Report(rows, problems, [f"{v.device}: {v.error}" for v in views.values() if v.error],
                  sum(r.expected for r in rows), sum(r.received for r in rows),
                  implicated & chosen)


def _row(s: Session, views: Mapping[str, DeviceView], routes: list[Route],
         pending: set[str]) -> SessionRow:
    """One session: both ends' states, and the routes it should carry, found or not."""
    sw, nd = views.get(s.switch), views.get(s.node)
    sp = sw.peers.get(str(s.node_address)) if sw else None
    np_ = nd.peers.get(str(s.switch_address)) if nd else None
    row = SessionRow(s.id, s.switch, s.node, s.family, _state(sw, sp), _state(nd, np_),
                     sp.uptime if sp else None, 0, 0)
    for r in routes:
        holder = views.get(r.seen_by)
        if r.origin in pending or holder is None or holder.error:
            continue
        row.expected += 1
        # From the node on the switch; from the switch on a node (a route server's clients too).
        peer = str(s.node_address) if r.seen_by == s.switch else str(s.switch_address)
        found = [e for e in holder.rib if e.prefix == str(r.prefix) and e.peer == peer]
        if not found:
            row.missing.append(f"{r.prefix} from {r.origin} on {r.seen_by}")
        elif not any(e.next_hop == str(r.next_hop) for e in found):
            row.wrong_next_hop.append(f"{r.prefix} on {r.seen_by}: next hop "
                                      f"{found[0].next_hop}, expected {r.next_hop}")
        else:
            row.received += 1
    return row


def _unexpected(fabric: Fabric, views: Mapping[str, DeviceView], judged: set[str],
                row_of: dict[tuple[str, str], SessionRow], pending: set[str]) -> list[str]:
    """RIB entries nobody expects: filed under their session's row, or returned."""
    expected_at: dict[str, set[str]] = {}
    for r in fabric.routes:
        expected_at.setdefault(r.seen_by, set()).add(str(r.prefix))
    stray = []
    for name in sorted(judged):
        view = views.get(name)
        if view is None or view.error:
            continue
        device = fabric.device(name)
        own = {str(p) for fam in ("ipv4", "ipv6") for p in device.prefixes(fam)} \
            if isinstance(device, Node) else set()
        wanted = expected_at.get(name, set())
        for e in view.rib:
            if e.prefix in wanted or (e.peer == "" and e.prefix in own):
                continue
            text = f"{e.prefix} on {name}" + (f" from {e.peer}" if e.peer else " (originated there)")
            row = row_of.get((name, e.peer))
            if row is None:
                stray.append(text)
            elif row.node not in pending and row.switch not in pending:
                row.unexpected.append(text)
    return stray


def format_table(report: Report) -> list[list[str]]:
    out = []
    for r in report.rows:
        up = f"{r.uptime:.0f}s" if r.uptime is not None else "-"
        out.append([r.switch, r.node, r.family, r.switch_state, r.node_state, up,
                    str(r.expected), str(r.received), str(len(r.missing) + len(r.wrong_next_hop)),
                    str(len(r.unexpected))])
    return out


def summary(report: Report) -> str:
    both = sum(1 for r in report.rows if r.switch_state == ESTABLISHED == r.node_state)
    return (f"Verify: {both}/{len(report.rows)} sessions Established on both ends, "
            f"{report.routes_ok}/{report.routes_expected} expected routes in place, "
            f"{len(report.problems)} problems" + (f", {len(report.errors)} devices unreadable"
                                                  if report.errors else "") + ".")


def as_json(report: Report) -> str:
    return json.dumps({"format": 1, "ok": report.ok, "exit": report.exit,
                       "summary": summary(report), "problems": report.problems,
                       "errors": report.errors,
                       "sessions": [{"id": r.id, "switch": r.switch, "node": r.node,
                                     "family": r.family, "switch_state": r.switch_state,
                                     "node_state": r.node_state, "uptime": r.uptime,
                                     "expected": r.expected, "received": r.received,
                                     "missing": r.missing, "wrong_next_hop": r.wrong_next_hop,
                                     "unexpected": r.unexpected} for r in report.rows]},
                      indent=1) + "\n"


Collector = Callable[[set[str] | None], dict[str, DeviceView]]


def wait(fabric: Fabric, collect: Collector, seconds: float,
         devices: set[str] | None = None, pending: set[str] | None = None) -> Report:
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
        report = evaluate(fabric, views, devices, pending)
        if report.ok or time.monotonic() >= deadline:
            return report
        time.sleep(0.05)
        views.update(collect(report.implicated or None))
