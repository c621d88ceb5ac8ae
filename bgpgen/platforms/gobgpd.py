"""gobgpd, the daemon behind two platforms (a node's speaker and a route server): its file,
checker, change classifier, push, state reader and lab process. The two platform modules
(:mod:`.gobgp`, :mod:`.gobgp_rs`) put these together with their own template and context.

Push: ``gobgpd -d`` on an uploaded temporary file, an atomic rename, SIGHUP (a restart when
``[global]`` changed: gobgpd ignores it on SIGHUP), then the originated routes reconciled with
the gobgp CLI (gobgpd's TOML cannot originate routes). Undo: the previous file back, SIGHUP or
restart, routes reconciled again.
"""

from __future__ import annotations

import json
import re
import time
import tomllib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..artifacts import Artifact
from ..changes import Action, Cost, DevicePlan, unified
from ..errors import Problem
from ..model import Device, Fabric, Node, Passive, Platform, Role
from ..secrets import fill, redact
from ..state import ESTABLISHED, DaemonError, DeviceState, Peer, RibEntry
from ..transport import RemoteError, Transport, check, shell
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
    last_error,
    need,
    persist,
    proceed,
    read_sessions,
    set_sessions,
    shown,
    wait_sessions,
)

if TYPE_CHECKING:
    from ..targets import Target

CONFIG = "gobgpd.toml"
ORIGINATE = "originate.json"
DROP_IN = "gobgpd.service.conf"
PREV = ".bgpgen-prev"
#: Debian's gobgpd.service runs ``gobgpd -f /etc/gobgpd.conf``
PATHS = Paths("/etc/gobgpd.conf", "/run/gobgp", "/etc")
UNIT = "gobgpd"
ORIGINATE_PATH = "/etc/gobgpd.originate.json"
#: Debian's unit runs gobgpd as a dynamic user, which cannot read a root-only file, and reloads
#: with ``gobgpd -r`` (a graceful-restart flag, not a reload): bgpgen's drop-in fixes both.
DROP_IN_TEXT = """# Installed by bgpgen. gobgpd's config holds BGP passwords, so it is root's alone (0600):
# gobgpd runs as root rather than Debian's dynamic user, and a reload is SIGHUP (gobgpd
# re-reads its file; `gobgpd -r` is a graceful-restart flag, not a reload).
[Service]
DynamicUser=no
ExecReload=
ExecReload=/bin/kill -HUP $MAINPID
"""
CHECKER = Checker(("gobgpd", "-d", "-t", "toml", "-f", "{file}"), "gobgpd", "gobgpd")
SECRET_LINE = re.compile(r'(auth-password = ")([^"]*)(")')
BINARIES = {"gobgpd": "gobgpd", "gobgp": "gobgpd"}
_STATES = {1: "Idle", 2: "Connect", 3: "Active", 4: "OpenSent", 5: "OpenConfirm", 6: ESTABLISHED}
SEP = "@@bgpgen@@"
CONFIG_MARK = "@@bgpgen-config@@"
_TOML_PLAIN = re.compile(r"[A-Za-z0-9 ._:/<>@,+=()-]*")


# --- escaping ----------------------------------------------------------------------------------

def toml_str(value: object) -> str:
    """A TOML basic string (JSON string escaping is valid TOML).

    >>> toml_str('say "hi"')
    '"say \\\\"hi\\\\""'
    """
    text = str(value)
    if _TOML_PLAIN.fullmatch(text):
        return f'"{text}"'  # nothing to escape: skip the encoder (hot path on large fabrics)
    return json.dumps(text, ensure_ascii=True)


def toml_bool(value: object) -> str:
    return "true" if value else "false"


FILTERS = {"toml_str": toml_str, "toml_bool": toml_bool}


# --- files -------------------------------------------------------------------------------------

def originate(fabric: Fabric, device: Device) -> str:
    """What a gobgp node adds with ``gobgp global rib add``: gobgpd's TOML cannot originate."""
    assert isinstance(device, Node)
    entries = []
    for fam in ("ipv4", "ipv6"):
        nh = device.next_hop_for(fam)
        for prefix in device.prefixes(fam):
            entry = {"family": fam, "prefix": str(prefix)}
            if nh is not None:
                entry["next_hop"] = str(nh)
            entries.append(entry)
    return _indented({"device": device.name, "originate": entries})


def _indented(doc: dict[str, Any]) -> str:
    """``json.dumps(doc, indent=1) + "\\n"`` for :func:`originate`'s document (a name and a
    list of flat objects of strings), written out: with an indent, the standard library encodes
    in Python (26 us a node; a test compares the two).

    >>> doc = {"device": "n1", "originate": [{"family": "ipv4", "prefix": "10.0.0.0/24"}]}
    >>> _indented(doc) == json.dumps(doc, indent=1) + "\\n"
    True
    """
    rows = [",\n".join(f"   {json.dumps(k)}: {json.dumps(v)}" for k, v in e.items())
            for e in doc["originate"]]
    listed = "[\n" + ",\n".join(f"  {{\n{r}\n  }}" for r in rows) + "\n ]" if rows else "[]"
    return f'{{\n "device": {json.dumps(doc["device"])},\n "originate": {listed}\n}}\n'


# --- classification ----------------------------------------------------------------------------

def _neighbors(text: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    try:
        data = tomllib.loads(text) if text else {}
    except tomllib.TOMLDecodeError:
        data = {}
    nbrs = {n.get("config", {}).get("neighbor-address", "?"): n for n in data.get("neighbors", [])}
    rest = {k: v for k, v in data.items() if k not in ("neighbors", "global")}
    return data.get("global", {}), nbrs, rest


def classify(old: str, new: str, plan: DevicePlan) -> None:
    """Sessions touched and the cost of activating ``new`` where ``old`` runs."""
    og, on, orest = _neighbors(old)
    ng, nn, nrest = _neighbors(new)
    set_sessions(plan, on, nn)
    if og != ng and old:
        plan.raise_cost(Cost.RESTART, "[global] changed: gobgpd restarts, every session resets")
    if len(plan.sessions_changed) > 1:
        plan.raise_cost(Cost.RESTART, "gobgpd applies one changed neighbor per SIGHUP: "
                        "restart, every session resets")
    if plan.sessions_changed:
        plan.raise_cost(Cost.RESET, "changed neighbors reset: " + ", ".join(plan.sessions_changed))
    if orest != nrest or plan.sessions_added or plan.sessions_removed:
        plan.raise_cost(Cost.HITLESS,
                        "SIGHUP: policies and added/removed neighbors, others untouched")


# --- reading state -----------------------------------------------------------------------------

def _gobgp_argv(t: Target) -> list[str]:
    return ["gobgp", "-p", str(t.api_port)]


def session_state(neighbor: Mapping[str, Any]) -> str:
    """The session state of one entry of ``gobgp -j neighbor`` (an int there; 6 = up)."""
    state = neighbor.get("state", {})
    code = state.get("session_state", 0) if isinstance(state, dict) else 0
    return _STATES.get(code, str(code))


def sessions_command(t: Target) -> str:
    return shell([*_gobgp_argv(t), "-j", "neighbor"])


def parse_sessions(output: str) -> dict[str, str]:
    return {n["conf"]["neighbor_address"]: session_state(n)
            for n in json.loads(output or "[]") or []}


def state_command(route_server: bool) -> Any:
    def command(t: Target, fabric: Fabric) -> str:
        g = [*_gobgp_argv(t), "-j"]
        parts = [shell([*g, "neighbor"])]
        parts += [shell([*g, "global", "rib", "-a", fam]) for fam in ("ipv4", "ipv6")]
        if route_server:  # a route server's clients' routes are in adj-in, not the global RIB
            for s in fabric.sessions_of(t.name):
                parts.append(f"echo {shell([str(s.node_address)])}; " + shell(
                    [*g, "neighbor", str(s.node_address), "adj-in", "-a", s.family]))
        # the config file last: what runs is compared with it (in memory; never shown)
        parts.append(f"echo {CONFIG_MARK}; cat -- {shell([t.config])}")
        return f"; echo {SEP}; ".join(parts)
    return command


def parse_state(t: Target, output: str, now: float) -> DeviceState:
    parts = output.split(SEP + "\n")
    config = None
    if parts and parts[-1].startswith(CONFIG_MARK + "\n"):
        config = parts.pop().split("\n", 1)[1]
    view = DeviceState(t.name)
    neighbors = json.loads(parts[0] or "[]") or []
    if isinstance(neighbors, dict) and "error" in neighbors:  # {"error": "context deadline..."}
        raise DaemonError(f"gobgp: {neighbors['error']}")
    for n in neighbors:
        timers = n.get("timers", {}).get("state", {})
        afs = [a.get("state", {}) for a in n.get("afi_safis", [])]
        state = session_state(n)
        addr = n["conf"]["neighbor_address"]
        up = timers.get("uptime", {}).get("seconds")
        view.peers[addr] = Peer(
            addr, state, now - up if up and state == ESTABLISHED else None,
            timers.get("negotiated_hold_time"), sum(a.get("received", 0) for a in afs),
            sum(a.get("accepted", 0) for a in afs), sum(a.get("advertised", 0) for a in afs))
    for chunk in parts[1:3]:
        view.rib += _paths(json.loads(chunk or "{}") or {}, None)
    for chunk in parts[3:]:
        addr, _, body = chunk.partition("\n")
        view.rib += _paths(json.loads(body or "{}") or {}, addr.strip())
    if config:
        view.drift = _apart(config, json.loads(parts[0] or "[]") or [])
    return view


def _next_hop(path: Mapping[str, Any]) -> str:
    return next((a.get("nexthop", "") for a in path.get("attrs", [])
                 if a.get("type") in (3, 14)), "")


def _paths(data: dict[str, Any], peer: str | None) -> list[RibEntry]:
    out: list[RibEntry] = []
    if "error" in data and not isinstance(data["error"], list):
        return out  # a neighbor that is not established has no adj-in: no routes from it
    for prefix, paths in data.items():
        for p in paths:
            nh = _next_hop(p)
            asns = [str(x) for a in p.get("attrs", []) if a.get("type") == 2
                    for seg in a.get("as_paths", []) for x in seg.get("asns", [])]
            src = peer if peer is not None else p.get("neighbor-ip", "")
            src = "" if src in ("<nil>", None) else src
            out.append(RibEntry(prefix, "" if nh in ("0.0.0.0", "::") else nh, src,
                                " ".join(asns)))
    return out


def reader(route_server: bool) -> StateReader:
    return StateReader(state_command(route_server), parse_state, sessions_command,
                       parse_sessions)


# --- the push ----------------------------------------------------------------------------------

def _gobgp(t: Transport, *args: str) -> str:
    return check(t, shell([*_gobgp_argv(t.target), *args]), f"gobgp {args[0]}")


def _originate_path(t: Target) -> str:
    """Beside the config: /etc/gobgpd.conf -> /etc/gobgpd.originate.json."""
    return t.config.rsplit(".", 1)[0] + ".originate.json"


def drop_in(fabric: Fabric, device: Device) -> str:
    return DROP_IN_TEXT


DROP_IN_FILE = FileSpec(DROP_IN, None, f"/etc/systemd/system/{UNIT}.service.d/bgpgen.conf",
                        drop_in, 0o644)


def _drop_in_path() -> str:
    return DROP_IN_FILE.target


def _systemctl(t: Transport, *args: str, what: str) -> str:
    return check(t, shell(["systemctl", *args, UNIT]), what)


_NEXT = "--bgpgen-next--"


def _local_routes(t: Transport) -> dict[tuple[str, str], str]:
    """Originated routes in gobgpd's global RIB: (family, prefix) -> next hop ('' for self).
    Both families in one command (a line of JSON each)."""
    gobgp = shell(_gobgp_argv(t.target))
    text = check(t, f"{gobgp} -j global rib -a ipv4 && echo {_NEXT} && "
                 f"{gobgp} -j global rib -a ipv6", "gobgp global rib")
    out: dict[tuple[str, str], str] = {}
    for fam, doc in zip(("ipv4", "ipv6"), text.split(_NEXT)):
        data = json.loads(doc.strip() or "{}") or {}
        for prefix, paths in data.items():
            for path in paths:
                if path.get("neighbor-ip") not in (None, "<nil>", ""):
                    continue
                nh = _next_hop(path)
                out[(fam, prefix)] = "" if nh in ("0.0.0.0", "::") else nh
    return out


def _wanted_routes(text: str | None) -> dict[tuple[str, str], str]:
    entries = json.loads(text)["originate"] if text else []
    return {(e["family"], e["prefix"]): e.get("next_hop", "") for e in entries}


def _reconcile(t: Transport, wanted: dict[tuple[str, str], str],
               have: dict[tuple[str, str], str] | None = None) -> None:
    """gobgpd's originated routes made ``wanted``: one read (``have``: known without one, as
    right after a restart: gobgpd keeps originated routes in memory only), then every
    withdrawal and announcement in one command (stopping at the first that fails)."""
    if have is None:
        have = _local_routes(t)
    argv = _gobgp_argv(t.target)
    steps = [shell([*argv, "global", "rib", "del", "-a", fam, prefix])
             for (fam, prefix), nh in sorted(have.items()) if wanted.get((fam, prefix)) != nh]
    steps += [shell([*argv, "global", "rib", "add", "-a", fam, prefix,
                     *(["nexthop", nh] if nh else []), "origin", "igp"])
              for (fam, prefix), nh in sorted(wanted.items()) if have.get((fam, prefix)) != nh]
    if steps:
        check(t, " && ".join(steps), "gobgp global rib add/del")


def _settings(n: Mapping[str, Any], running: bool) -> tuple[object, ...]:
    """What must match between a neighbor in the file and the same neighbor running."""
    if running:
        c, tc = n.get("conf", {}), n.get("timers", {}).get("config", {})
        return (c.get("peer_asn"), c.get("description", ""), c.get("auth_password", ""),
                tc.get("hold_time"), tc.get("keepalive_interval"), tc.get("connect_retry"))
    c, tc = n.get("config", {}), n.get("timers", {}).get("config", {})
    return (c.get("peer-as"), c.get("description", ""), c.get("auth-password", ""),
            tc.get("hold-time"), tc.get("keepalive-interval"), tc.get("connect-retry"))


def _apart(config_text: str, running: list[Any]) -> list[str]:
    """Neighbors whose running settings (``gobgp -j neighbor``) differ from the file."""
    try:
        data = tomllib.loads(config_text)
    except tomllib.TOMLDecodeError:
        return []
    want = {n.get("config", {}).get("neighbor-address"): _settings(n, False)
            for n in data.get("neighbors", [])}
    have = {n.get("conf", {}).get("neighbor_address"): _settings(n, True) for n in running}
    return sorted(str(a) for a in set(want) | set(have) if want.get(a) != have.get(a))


def drift(t: Transport, config_text: str) -> list[str]:
    """Neighbors whose running settings differ from ``config_text`` (values filled in), read
    from gobgpd itself: what the file says is not always what runs (a SIGHUP applies one
    changed neighbor; a reload can be lost). Passwords are compared, never shown."""
    return _apart(config_text, json.loads(_gobgp(t, "-j", "neighbor") or "[]") or [])


def _settle(t: Transport, config_text: str, seconds: float = 3.0) -> list[str]:
    """Wait for a SIGHUP to be applied (gobgpd applies it asynchronously); what still differs."""
    deadline = time.monotonic() + seconds
    while True:
        apart = drift(t, config_text)
        if not apart or time.monotonic() > deadline:
            return apart
        time.sleep(0.1)


def _keep_previous(t: Transport, config: str, originate_at: str | None,
                   mkdir: str | None) -> bool:
    """In one command: the config (and the originate file) kept as ``*.bgpgen-prev``, the
    drop-in's directory made when one is to be written. Whether there was a config."""
    q = shell([config])
    script = f"had=0; if [ -e {q} ]; then cp -p -- {q} {shell([config + PREV])} || exit 1; had=1; fi"
    if originate_at is not None:
        o = shell([originate_at])
        script += f"; if [ -e {o} ]; then cp -p -- {o} {shell([originate_at + PREV])} || exit 1; fi"
    if mkdir is not None:
        script += f"; mkdir -p -- {shell([mkdir])} || exit 1"
    out = check(t, script + '; echo "$had"', f"backup of {config}")
    return out.strip().endswith("1")


def _reload(t: Transport) -> None:
    """SIGHUP to the main process: gobgpd re-reads its file (what bgpgen's drop-in makes
    ``systemctl reload`` do; said directly, so it works before the drop-in is in place)."""
    _systemctl(t, "kill", "--signal=HUP", "--kill-whom=main", what="SIGHUP gobgpd")
    time.sleep(0.3)  # gobgpd applies a SIGHUP asynchronously


def _restart(t: Transport, timeout: float, daemon_reload: bool = False) -> None:
    """Restart gobgpd and wait, on the device, until its API answers: one command.
    ``systemctl restart`` returns once the old process is gone and the new one started (as
    systemd does for a simple unit); the loop then waits for gobgpd's own readiness."""
    ready = shell([*_gobgp_argv(t.target), "global"])
    tries = max(1, int(timeout * 10))
    script = ((("systemctl daemon-reload && ") if daemon_reload else "")
              + f"{shell(['systemctl', 'restart', UNIT])} || exit 4; i=0; "
              f"until {ready} >/dev/null 2>&1; do i=$((i + 1)); "
              f"[ $i -gt {tries} ] && exit 3; sleep 0.1; done")
    res = t.exec(script, timeout=timeout + 10)
    if res.rc == 3:
        raise DeployFailed(Problem("", t.target.name, "gobgpd did not come back after a "
                                   f"restart (its API did not answer within {timeout:.0f} s)",
                                   ""))
    if not res.ok:
        raise RemoteError(Problem("", t.target.name, "restart gobgpd failed: "
                                  f"{res.output.strip()[:200] or 'exit ' + str(res.rc)}", ""))


class GobgpdDriver:
    """Plan and push for gobgpd; ``read`` is the platform's state reader."""

    def __init__(self, read: StateReader) -> None:
        self.read = read

    def plan(self, t: Transport, files: Mapping[str, Artifact],
             values: Mapping[str, str]) -> DevicePlan:
        target = t.target
        conf, orig = need(files, CONFIG), files.get(ORIGINATE)
        p = DevicePlan(target.name, target.platform.value)
        current = t.read(target.config) or ""
        same = current == fill(conf.text, values)
        p.extra["config_same"] = same
        if not same:
            text = shown(SECRET_LINE, current, values)
            p.diff += unified(text, conf.text, CONFIG)
            classify(text, conf.text, p)
        else:  # the file is right: is it what runs?
            apart = drift(t, current)
            if apart:
                p.extra["drift"] = apart
                p.diff.append(f"~ gobgpd runs other settings than its file for: "
                              f"{', '.join(apart)}")
                p.sessions_changed = apart
                p.raise_cost(Cost.RESTART, "file and daemon apart: gobgpd restarts to run "
                             "its file, every session resets")
        unit = files.get(DROP_IN)
        if unit is not None:
            running = t.read(_drop_in_path()) or ""
            if running != unit.text:
                p.extra["config_same"] = False
                p.diff += unified(running, unit.text, DROP_IN)
                p.raise_cost(Cost.RESTART, "gobgpd's unit drop-in changes: daemon-reload and "
                             "restart, every session resets")
        wanted = _wanted_routes(orig.text if orig else None)
        have = _local_routes(t)
        for (fam, prefix), nh in sorted(have.items()):
            if wanted.get((fam, prefix)) != nh:
                p.diff.append(f"-originate {prefix}" + (f" nexthop {nh}" if nh else ""))
        for (fam, prefix), nh in sorted(wanted.items()):
            if have.get((fam, prefix)) != nh:
                p.diff.append(f"+originate {prefix}" + (f" nexthop {nh}" if nh else ""))
        if p.diff and p.cost == Cost.NONE:
            p.raise_cost(Cost.HITLESS, "hitless: originated routes added / withdrawn")
        p.action = Action.UPDATE if p.diff else Action.NONE
        return p

    def apply(self, t: Transport, p: DevicePlan, files: Mapping[str, Artifact],
              values: Mapping[str, str], timeout: float) -> Outcome:
        target, read = t.target, self.read
        conf, orig = need(files, CONFIG), files.get(ORIGINATE)
        wanted = _wanted_routes(orig.text if orig else None)
        before = read_sessions(t, read)
        if p.extra["config_same"] and not p.extra.get("drift"):
            _reconcile(t, wanted)
            return Outcome(Status.CHANGED, "originated routes reconciled")
        if p.extra["config_same"]:  # file right, daemon not: restart it onto its file
            try:
                _restart(t, timeout)
                _reconcile(t, wanted)
                apart = drift(t, fill(conf.text, values))
                if apart:
                    raise DeployFailed(Problem("", target.name, "gobgpd still runs other "
                                               "settings than its file after a restart: "
                                               + ", ".join(apart), ""))
                wait_sessions(t, read, before, timeout)
            except RemoteError as exc:
                raise DeployFailed(Problem("", target.name, exc.problems[0].message, "")
                                   ) from None
            return Outcome(Status.CHANGED, "gobgpd restarted to run its file")
        new = f"{target.config}.bgpgen-new-{RUN_ID}"
        t.write(new, fill(conf.text, values), 0o600)  # root's alone (see DROP_IN_TEXT)
        try:
            res = t.exec(shell(["gobgpd", "-d", "-t", "toml", "-f", new]))
            if not res.ok:
                raise DeployFailed(Problem("", target.name, "gobgpd -d rejects the config: "
                                           + last_error(redact(res.output, values)), ""))
            proceed(t, p)
            originate_at = _originate_path(target)
            unit = files.get(DROP_IN)
            unit_new = unit is not None and t.read(_drop_in_path()) != unit.text
            had_file = _keep_previous(t, target.config, originate_at if orig else None,
                                      _drop_in_path().rsplit("/", 1)[0] if unit_new else None)
        except RemoteError as exc:
            t.exec(f"rm -f {shell([new])}")
            if isinstance(exc, DeployFailed):
                raise
            raise DeployFailed(Problem("", target.name, redact(exc.problems[0].message, values),
                                       "")) from None
        restart = p.cost == Cost.RESTART or unit_new
        p.extra.update(had_file=had_file, restart=restart, pushed=True, activated=True)
        try:
            t.rename(new, target.config)
            if orig:
                t.write(originate_at, orig.text, 0o644)
            if unit is not None and unit_new:  # its directory made with the backups
                t.write(_drop_in_path(), unit.text, 0o644)
            text = fill(conf.text, values)
            if restart:
                _restart(t, timeout, daemon_reload=unit_new)
            else:
                _reload(t)
            apart = _settle(t, text)
            restarted = restart
            if apart and not restart:  # read back: what SIGHUP did not apply, a restart does
                _restart(t, timeout)
                apart, restarted = drift(t, text), True
            if apart:
                raise DeployFailed(Problem("", target.name, "gobgpd does not run its new "
                                           f"file for {', '.join(apart)}", ""))
            _reconcile(t, wanted, {} if restarted else None)  # a new gobgpd originates nothing
            wait_sessions(t, read, before, timeout)
        except RemoteError as exc:
            message = redact(exc.problems[0].message, values)
            self._restore(t, had_file, restart, timeout, leftover=new)
            raise DeployFailed(Problem("", target.name, f"{message}; previous config "
                                       "restored", "")) from None
        return Outcome(Status.CHANGED, p.cost_detail)

    def confirm(self, t: Transport, p: DevicePlan) -> None:
        return None  # the previous file stays beside the new one as *.bgpgen-prev

    def rollback(self, t: Transport, p: DevicePlan, timeout: float) -> None:
        if p.extra.get("pushed"):
            self._restore(t, p.extra["had_file"], p.extra["restart"], timeout)
        else:  # only routes were reconciled: put back what the previous originate.json says
            _reconcile(t, _wanted_routes(t.read(_originate_path(t.target))))

    def _restore(self, t: Transport, had_file: bool, restart: bool, timeout: float,
                 leftover: str | None = None) -> None:
        """The previous files back and gobgpd running them, read back; retried while gobgpd
        or the session stalls. ``leftover``: a new file that may not have been renamed."""
        target = t.target
        originate_at = _originate_path(target)

        def step() -> None:
            if leftover is not None:
                check(t, f"rm -f -- {shell([leftover])}", "removing the new file")
            if had_file and t.read(target.config + PREV) is not None:
                t.rename(target.config + PREV, target.config)
            if t.read(originate_at + PREV) is not None:
                t.rename(originate_at + PREV, originate_at)
            if restart:
                _restart(t, timeout)
            else:
                _reload(t)
            previous = t.read(target.config)
            if previous is not None and _settle(t, previous):
                _restart(t, timeout)  # what SIGHUP did not put back, a restart does
                if drift(t, previous):
                    raise RemoteError(Problem("", target.name, "gobgpd does not run its "
                                              "previous file after a restart", ""))
            _reconcile(t, _wanted_routes(t.read(originate_at)))
        persist(t, "putting the previous config back", step, timeout)


# --- the lab -----------------------------------------------------------------------------------

def daemons(device: Device) -> list[Daemon]:
    """gobgpd as bgpgen's drop-in makes Debian's unit run it (root, /etc/gobgpd.conf)."""
    return [Daemon(UNIT, ("gobgpd", "-f", PATHS.config, "-t", "toml", "--pprof-disable",
                          f"--api-hosts=127.0.0.1:{device.api_port}"),
                   {"listen": device.api_port})]


def bootstrap(device: Device) -> str:
    return (f'[global.config]\n  as = {device.asn}\n  router-id = "{device.router_id}"\n'
            f"  port = {device.bgp_port}\n")


def prepare(device: Device, files: DeviceFiles,
            artifacts: Mapping[str, Artifact]) -> list[tuple[str, ...]]:
    """Rendered originated routes are loaded once gobgpd answers, as the deployer does."""
    orig = artifacts.get(ORIGINATE)
    if orig is None:
        return []
    files.mkdirs(ORIGINATE_PATH).write_text(orig.text)
    post = []
    for e in json.loads(orig.text)["originate"]:
        argv = ["gobgp", "-p", str(device.api_port), "global", "rib", "add", "-a",
                e["family"], e["prefix"]]
        argv += ["nexthop", e["next_hop"]] if "next_hop" in e else []
        post.append((*argv, "origin", "igp"))
    return post


def spec_for(*, platform: Platform, role: Role, description: str, files: tuple[FileSpec, ...],
             context: Context, route_server: bool, default_passive: Passive) -> PlatformSpec:
    """A platform whose daemon is gobgpd: what differs is its role, files and context."""
    read = reader(route_server)
    return PlatformSpec(
        platform=platform, role=role, inventory_name="gobgp", description=description,
        configured=True, files=files, context=context, checker=CHECKER, netmiko_device_type="linux",
        paths=PATHS, secret_line=SECRET_LINE, classify=classify, driver=GobgpdDriver(read),
        state=read,
        session=Session.SHELL,
        lab=LabSetup(daemons=daemons, bootstrap=bootstrap, prepare=prepare, binaries=BINARIES,
                     user=None, cli_port=None, spine=None),
        bfd=False,  # gobgpd 3.10 has no BFD (native BFD came in 4.5)
        default_originate=False, route_server=route_server, default_passive=default_passive,
        drain=None, filters=FILTERS, part=None, resources=None)
